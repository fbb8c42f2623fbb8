"""Debounce applies to the return to safe only; bounce and chatter never flap the state."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from laserd.errors import InterlockOpen
from laserd.events import EventHub
from tests.safety.rig import LASER_PIN, LID, Rig, SerialLine, in_thread, until

SLOW_LID = {**LID, "debounce_ms": 300}


async def test_first_unsafe_edge_acts_despite_a_long_debounce(rig: Rig) -> None:
    sup = await rig.started(interlocks=[{**LID, "debounce_ms": 1000}])

    def open_lid() -> float:
        t0 = time.monotonic()
        sup.drive("lid", False)
        return time.monotonic() - t0

    took_s = in_thread(open_lid)
    # Done within the edge's own callback: the byte is out when it returns, and sooner
    # than the 1 s debounce could have let it out (the bound holds on a busy machine too;
    # a thread's start is not counted).
    assert rig.line.bytes_written == [0x84]
    assert took_s < 1.0


async def test_return_to_safe_waits_for_the_debounce(rig: Rig) -> None:
    sup = await rig.started(interlocks=[SLOW_LID], laser_enable={"pin": LASER_PIN})
    in_thread(lambda: sup.drive("lid", False))
    t_closed = time.monotonic()
    sup.drive("lid", True)
    await asyncio.sleep(0.05)
    if time.monotonic() - t_closed < 0.25:  # a busy machine may have slept far longer
        assert not sup.all_safe()
    await until(sup.all_safe)
    assert time.monotonic() - t_closed >= 0.29
    assert rig.interlock_events("lid") == [False, True]


async def test_chatter_on_return_does_not_flap(rig: Rig) -> None:
    sup = await rig.started(interlocks=[SLOW_LID], laser_enable={"pin": LASER_PIN})
    in_thread(lambda: sup.drive("lid", False))
    await until(lambda: rig.trips)

    def chatter() -> None:
        for _ in range(200):
            sup.drive("lid", True)
            sup.drive("lid", False)

    in_thread(chatter)
    # One trip, one byte: the repeated unsafe edges of a bouncing contact are not new trips.
    assert rig.line.bytes_written == [0x84]
    await asyncio.sleep(0.4)  # longer than the debounce: every pending confirmation is void
    assert not sup.all_safe()
    assert rig.interlock_events("lid") == [False]
    assert len(rig.trips) == 1

    sup.drive("lid", True)  # the contact settles closed
    await until(sup.all_safe)
    await asyncio.sleep(0.35)
    assert rig.interlock_events("lid") == [False, True]


async def test_a_bounce_shorter_than_the_debounce_is_not_a_return(rig: Rig) -> None:
    sup = await rig.started(interlocks=[SLOW_LID])
    in_thread(lambda: sup.drive("lid", False))
    sup.drive("lid", True)
    sup.drive("lid", False)  # reopened well within 300 ms
    await asyncio.sleep(0.45)
    assert not sup.all_safe()
    assert rig.line.bytes_written == [0x84]


async def test_a_return_that_reads_unsafe_at_confirmation_does_not_count(rig: Rig) -> None:
    """An edge lost by the driver must not leave the input marked safe: the pin is re-read."""
    sup = await rig.started(interlocks=[SLOW_LID])
    in_thread(lambda: sup.drive("lid", False))
    sup.drive("lid", True)
    # Open the circuit behind the callback's back (as if the edge was never reported).
    pin = rig.pin(LID["pin"])
    pin._state = True
    await asyncio.sleep(0.45)
    assert not sup.all_safe()


async def test_chatter_against_arming_never_leaves_the_laser_on(rig: Rig) -> None:
    """Stress the lock-free ordering between the reflex thread and the loop.

    A thread makes the lid chatter while the loop confirms returns (debounce 0) and keeps
    trying to arm. Whatever interleaving happens, once the lid ends open the output is off
    and the input is unsafe.
    """
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    laser = rig.pin(LASER_PIN)
    stop = threading.Event()

    def chatter() -> None:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            sup.drive("lid", True)
            time.sleep(0)
            sup.drive("lid", False)
        stop.set()

    thread = threading.Thread(target=chatter)
    thread.start()
    armed_at_least_once = False
    while not stop.is_set():
        try:
            sup.arm()
            armed_at_least_once = True
        except InterlockOpen:
            pass
        await asyncio.sleep(0)
    thread.join(timeout=10)
    await asyncio.sleep(0.05)
    assert not sup.all_safe()
    assert laser.state is False and not sup.armed
    # Sanity: the loop really got to arm during the chatter, so the race was exercised.
    assert armed_at_least_once or len(rig.trips) >= 1


class RacyPin(MockPin):
    """A mock pin that lets a test slip an edge in while the supervisor reads the pin."""

    during_read: Callable[[], None] | None = None

    def _get_state(self) -> bool:
        state = super()._get_state()
        hook, self.during_read = self.during_read, None
        if hook is not None:
            hook()
        return state


async def test_an_edge_racing_the_safe_confirmation_wins(line: SerialLine) -> None:
    """The lid reopens exactly while the loop confirms its return to safe.

    The reflex sees an input that is not yet safe and stays quiet; the confirmation must then
    notice it was overtaken instead of marking an open lid as safe.
    """
    hub = EventHub()
    factory = MockFactory(pin_class=RacyPin)
    rig = Rig(factory, line, hub)
    try:
        sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
        in_thread(lambda: sup.drive("lid", False))
        pin = rig.pin(LID["pin"])
        pin.during_read = lambda: in_thread(lambda: sup.drive("lid", False))
        sup.drive("lid", True)  # the confirmation (debounce 0) runs on the loop next
        await until(lambda: pin.during_read is None)
        await asyncio.sleep(0.05)
        assert pin.state is True  # open circuit (pull-up, normally closed)
        assert not sup.all_safe()
        with pytest.raises(InterlockOpen):
            sup.arm()
    finally:
        for sup in rig.supervisors:
            await sup.close()
        factory.close()


async def test_a_missed_edge_is_caught_by_the_poll(rig: Rig) -> None:
    sup = await rig.started(interlocks=[SLOW_LID], laser_enable={"pin": LASER_PIN})
    sup.arm()
    pin = rig.pin(LID["pin"])
    pin._state = True  # the lid opens, but the driver never reports the edge
    await until(lambda: rig.line.bytes_written == [0x84])
    assert rig.pin(LASER_PIN).state is False and not sup.armed
    await until(lambda: rig.trips == [("lid", "lid", "pause")])
    pin._state = False  # the lid closes, unreported too: still debounced before it counts
    await asyncio.sleep(0.1)
    assert not sup.all_safe()
    await until(sup.all_safe)
    assert rig.interlock_events("lid") == [False, True]


async def test_an_unreadable_input_counts_as_open(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    sup.arm()
    pin = rig.pin(LID["pin"])

    def unreadable() -> bool:
        raise OSError("GPIO read failed")

    pin._get_state = unreadable
    await until(lambda: rig.line.bytes_written == [0x84])
    assert rig.pin(LASER_PIN).state is False
    with pytest.raises(InterlockOpen):
        sup.arm()
