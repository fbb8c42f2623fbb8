"""Each kind of interlock tripping: output, real-time byte, job action, event, audit."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest

from laserd.errors import InterlockOpen, NotFound
from laserd.safety import Trip
from laserd.settings import ConfigError
from tests.safety.rig import COOLANT, CUSTOM, ESTOP, KEY, LASER_PIN, LID, Rig, in_thread, until

ALL_KINDS = [LID, ESTOP, COOLANT, KEY, CUSTOM]


@pytest.mark.parametrize("cuts_beam", [True, False], ids=["cuts_beam", "no_cut"])
@pytest.mark.parametrize("interlock", ALL_KINDS, ids=[i["kind"] for i in ALL_KINDS])
async def test_each_kind_trips(rig: Rig, interlock: dict, cuts_beam: bool) -> None:
    sup = await rig.started(
        interlocks=[interlock], laser_enable={"pin": LASER_PIN, "cuts_beam": cuts_beam}
    )
    sup.arm()
    laser = rig.pin(LASER_PIN)
    assert laser.state is True and sup.armed

    in_thread(lambda: sup.drive(interlock["name"], False))

    # The reflex has happened by the time the driving thread returns.
    assert laser.state is False and not sup.armed
    resumable = cuts_beam and interlock["kind"] != "estop"
    expected_byte = 0x84 if resumable else 0x18
    assert rig.line.bytes_written == [expected_byte]
    assert rig.line.wait_received(1) == [expected_byte]
    await until(lambda: rig.trips)
    action = "pause" if resumable else "fail"
    assert rig.trips == [(interlock["name"], interlock["kind"], action)]
    assert rig.interlock_events(interlock["name"])[-1] is False
    await until(lambda: rig.audits)
    event, details = rig.audits[-1]
    assert event == "interlock_tripped"
    assert details["name"] == interlock["name"] and details["action"] == action
    assert details["byte"] == f"0x{expected_byte:02X}" and details["byte_sent"] is True
    assert sup.open_interlocks() == [interlock["name"]]
    assert sup.last_trip is not None and sup.last_trip.action == action


async def test_coolant_loss_pauses_when_the_output_cuts_the_beam(rig: Rig) -> None:
    sup = await rig.started(interlocks=[COOLANT], laser_enable={"pin": LASER_PIN})
    in_thread(lambda: sup.drive("coolant", False))
    await until(lambda: rig.trips)
    assert rig.trips == [("coolant", "coolant", "pause")]
    assert rig.line.bytes_written == [0x84]


async def test_without_a_laser_enable_pin_a_door_gets_a_soft_reset(rig: Rig) -> None:
    # cuts_beam is configured but nothing is wired to cut: 0x84 would let the beam fire while
    # GRBL decelerates, so the supervisor must fall back to the soft reset.
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": None, "cuts_beam": True})
    assert not sup.cuts_beam
    in_thread(lambda: sup.drive("lid", False))
    assert rig.line.bytes_written == [0x18]
    await until(lambda: rig.trips)
    assert rig.trips == [("lid", "lid", "fail")]


@pytest.mark.parametrize("pull_up", [True, False], ids=["pull_up", "pull_down"])
async def test_broken_wire_reads_unsafe_at_start_and_blocks_arming(
    rig: Rig, pull_up: bool
) -> None:
    # Nothing drives the mock pin: it sits at its pull, i.e. an open circuit.
    sup = rig.build(interlocks=[{**LID, "pull_up": pull_up}], laser_enable={"pin": LASER_PIN})
    await sup.start()
    assert not sup.all_safe()
    assert sup.open_interlocks() == ["lid"]
    with pytest.raises(InterlockOpen) as err:
        sup.arm()
    assert err.value.details == {"open": ["lid"]}
    assert err.value.status == 409 and err.value.code == "interlock_open"
    with pytest.raises(InterlockOpen):
        sup.check_can_start()
    assert rig.pin(LASER_PIN).state is False and not sup.armed
    # Mending the wire (closing the circuit) makes it safe after its debounce.
    sup.drive("lid", True)
    await until(sup.all_safe)
    sup.arm()
    assert rig.pin(LASER_PIN).state is True


async def test_a_wire_broken_mid_job_is_a_trip(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    sup.arm()
    pin = rig.pin(LID["pin"])
    # Pull-up, normally closed: a cut wire lets the pull-up win, the pin goes high.
    in_thread(pin.drive_high)
    assert rig.pin(LASER_PIN).state is False
    assert rig.line.bytes_written == [0x84]


async def test_normally_open_wiring(rig: Rig) -> None:
    sup = rig.build(interlocks=[{**LID, "normally_closed": False}])
    # Pulled up and normally open: an open circuit (high) is the safe state.
    await sup.start()
    assert sup.all_safe()
    in_thread(rig.pin(LID["pin"]).drive_low)
    assert rig.line.bytes_written == [0x84]
    assert not sup.all_safe()


async def test_two_inputs_at_once(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID, ESTOP], laser_enable={"pin": LASER_PIN})
    sup.arm()
    barrier = threading.Barrier(2)

    def trip(name: str) -> None:
        barrier.wait(timeout=5)
        sup.drive(name, False)

    threads = [threading.Thread(target=trip, args=(n,)) for n in ("lid", "estop")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(rig.line.bytes_written) == [0x18, 0x84]
    assert sorted(rig.line.wait_received(2)) == [0x18, 0x84]
    assert rig.pin(LASER_PIN).state is False
    await until(lambda: len(rig.trips) == 2)
    assert sorted(rig.trips) == [("estop", "estop", "fail"), ("lid", "lid", "pause")]
    assert sorted(sup.open_interlocks()) == ["estop", "lid"]
    # Closing one is not enough.
    sup.drive("lid", True)
    await until(lambda: sup.open_interlocks() == ["estop"])
    assert not sup.all_safe()
    with pytest.raises(InterlockOpen):
        sup.arm()
    sup.drive("estop", True)
    await until(sup.all_safe)


async def test_link_down_still_drops_the_output_and_records_it(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    sup.arm()
    rig.line.connected = False
    in_thread(lambda: sup.drive("lid", False))
    assert rig.pin(LASER_PIN).state is False
    await until(lambda: rig.audits)
    assert rig.audits[-1][1]["byte_sent"] is False
    assert sup.last_trip is not None and not sup.last_trip.byte_sent


async def test_a_realtime_writer_that_raises_does_not_stop_the_record(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})

    def broken(_byte: int) -> bool:
        raise OSError("port vanished")

    sup._realtime = broken
    in_thread(lambda: sup.drive("lid", False))
    await until(lambda: rig.trips)
    assert rig.trips == [("lid", "lid", "pause")]


async def test_an_async_trip_handler_is_run(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID])
    seen: list[str] = []

    async def handler(trip: Trip) -> None:
        await asyncio.sleep(0)
        seen.append(f"{trip.kind}:{trip.name}:{trip.action}")

    rig.hub.on(Trip, handler)
    in_thread(lambda: sup.drive("lid", False))
    await until(lambda: seen)
    assert seen == ["lid:lid:pause"]
    rig.hub.off(Trip, handler)


async def test_snapshot_and_summary(rig: Rig) -> None:
    sup = await rig.started(
        interlocks=[LID, ESTOP], start_button={"pin": 22, "bounce_ms": 0}
    )
    in_thread(lambda: sup.drive("estop", False))
    snap = sup.snapshot()
    assert [s["name"] for s in snap] == ["lid", "estop", "start"]
    assert snap[0] == {
        "name": "lid",
        "kind": "lid",
        "pin": 17,
        "safe": True,
        "since": snap[0]["since"],
    }
    assert snap[1]["safe"] is False and snap[1]["kind"] == "estop"
    assert snap[2]["kind"] == "start" and snap[2]["pin"] == 22
    for item in snap:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item["since"])
    assert sup.summary() == {"ok": False, "open": ["estop"]}


async def test_drive_unknown_name(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID])
    with pytest.raises(NotFound):
        sup.drive("door", False)


async def test_two_inputs_on_one_pin_is_a_config_error(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="GPIO"):
        rig.build(interlocks=[LID, {**ESTOP, "pin": LID["pin"]}])
