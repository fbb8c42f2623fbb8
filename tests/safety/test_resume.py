"""Resume gates: open interlocks, the resume delay, and a trip racing a resume."""

from __future__ import annotations

import threading

import pytest

from laserd.errors import Conflict, InterlockOpen
from laserd.safety import CYCLE_START
from tests.safety.rig import ESTOP, LASER_PIN, LID, FakeClock, Rig, in_thread, until


async def _tripped_and_closed(rig: Rig, clock: FakeClock) -> object:
    sup = rig.build(
        clock=clock, interlocks=[LID], laser_enable={"pin": LASER_PIN}, resume_delay_s=3
    )
    sup.drive_all_safe()
    await sup.start()
    clock.advance(60)  # long after start-up
    in_thread(lambda: sup.drive("lid", False))
    with pytest.raises(InterlockOpen):
        sup.check_can_resume()
    sup.drive("lid", True)
    await until(sup.all_safe)
    return sup


async def test_resume_before_the_delay_is_refused_with_seconds_left(rig: Rig) -> None:
    clock = FakeClock()
    sup = await _tripped_and_closed(rig, clock)
    with pytest.raises(Conflict) as err:
        sup.check_can_resume()
    assert err.value.code == "resume_delay" and err.value.status == 409
    assert err.value.details["seconds_left"] == pytest.approx(3.0)
    clock.advance(2.0)
    with pytest.raises(Conflict) as err:
        sup.check_can_resume()
    assert err.value.details["seconds_left"] == pytest.approx(1.0)
    clock.advance(1.01)
    sup.check_can_resume()  # allowed now
    # Nothing resumed by itself: the supervisor never wrote "~".
    assert CYCLE_START not in rig.line.bytes_written


async def test_resume_refused_while_open(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID, ESTOP])
    in_thread(lambda: sup.drive("estop", False))
    with pytest.raises(InterlockOpen) as err:
        sup.check_can_resume()
    assert err.value.details == {"open": ["estop"]}


async def test_trip_while_a_resume_is_in_flight(rig: Rig) -> None:
    """The lid opens after the resume check passed but before "~" reached the controller.

    The trip's 0x84 then arrives *before* the "~" and would be undone by it; the supervisor
    must notice and repeat the trip byte so that it is the last word, and refuse the resume.
    """
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})

    def runner_sends_cycle_start() -> None:
        # The race, made certain: the edge lands between the check and the "~".
        t = threading.Thread(target=lambda: sup.drive("lid", False))
        t.start()
        t.join(timeout=10)
        rig.line.realtime(CYCLE_START)

    with pytest.raises(InterlockOpen):
        sup.resume(runner_sends_cycle_start)
    assert rig.line.bytes_written == [0x84, CYCLE_START, 0x84]
    assert rig.line.wait_received(3) == [0x84, CYCLE_START, 0x84]
    assert rig.pin(LASER_PIN).state is False


async def test_resume_without_a_race_sends_nothing_extra(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID])
    sup.resume(lambda: rig.line.realtime(CYCLE_START))
    assert rig.line.bytes_written == [CYCLE_START]


async def test_token_form_of_the_resume_gate(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID, ESTOP])
    token = sup.check_can_resume()
    in_thread(lambda: sup.drive("estop", False))
    rig.line.realtime(CYCLE_START)
    with pytest.raises(InterlockOpen):
        sup.confirm_resumed(token)
    assert rig.line.bytes_written == [0x18, CYCLE_START, 0x18]
