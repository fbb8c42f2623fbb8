"""The reflex does not need the event loop; the heartbeat does (on purpose)."""

from __future__ import annotations

import asyncio
import threading
import time

from laserd.safety import Trip
from tests.safety.rig import LASER_PIN, LID, Rig, until


async def test_reflex_while_the_event_loop_is_stalled(rig: Rig) -> None:
    sup = await rig.started(interlocks=[LID], laser_enable={"pin": LASER_PIN})
    sup.arm()
    laser = rig.pin(LASER_PIN)
    listener_ns: list[int] = []
    rig.hub.on(Trip, lambda _: listener_ns.append(time.perf_counter_ns()))

    stalled = threading.Event()
    window: dict[str, int] = {}
    edge: dict[str, object] = {}

    def stall() -> None:
        window["start"] = time.perf_counter_ns()
        stalled.set()
        time.sleep(0.1)  # the loop is frozen for 100 ms
        window["end"] = time.perf_counter_ns()

    def trip_during_stall() -> None:
        stalled.wait(timeout=10)
        edge["t"] = time.perf_counter_ns()
        sup.drive("lid", False)
        edge["after"] = time.perf_counter_ns()
        edge["laser"] = laser.state
        edge["received"] = rig.line.wait_received(1, timeout_s=0.08)
        edge["received_at"] = time.perf_counter_ns()

    thread = threading.Thread(target=trip_during_stall)
    thread.start()
    asyncio.get_running_loop().call_soon(stall)
    await until(lambda: "end" in window)
    thread.join(timeout=10)

    start, end = window["start"], window["end"]
    assert start <= edge["t"] <= end
    assert edge["laser"] is False  # the output was down when drive() returned...
    assert edge["after"] < end  # ...which was inside the stall
    (byte, written_ns, _thread), = rig.line.written
    assert byte == 0x84 and start <= written_ns < end
    # The byte crossed the pty during the stall too.
    assert edge["received"] == [0x84]
    assert rig.line.received[0][1] < end
    # The record (listener, event) waited for the loop.
    await until(lambda: listener_ns)
    assert listener_ns[0] >= end


async def test_heartbeat_toggles_while_the_loop_runs_and_freezes_with_it(rig: Rig) -> None:
    sup = await rig.started(
        interlocks=[LID],
        laser_enable={"pin": LASER_PIN, "mode": "heartbeat", "heartbeat_hz": 50},
    )
    laser = rig.pin(LASER_PIN)
    laser.clear_states()
    await asyncio.sleep(0.2)
    assert len(laser.states) == 1  # not armed: no wave
    sup.arm()
    await asyncio.sleep(0.4)
    toggles_running = len(laser.states) - 1
    assert toggles_running >= 6  # 40 expected at 50 Hz; generous for a busy machine

    counts: list[int] = []

    def stall() -> None:
        counts.append(len(laser.states))
        time.sleep(0.2)
        counts.append(len(laser.states))

    asyncio.get_running_loop().call_soon(stall)
    await asyncio.sleep(0)
    await until(lambda: len(counts) == 2)
    assert counts[0] == counts[1]  # no edge at all while the loop was frozen

    await asyncio.sleep(0.2)
    assert len(laser.states) > counts[1]  # the wave comes back with the loop
    sup.disarm()
    await asyncio.sleep(0.05)
    settled = len(laser.states)
    await asyncio.sleep(0.2)
    assert laser.state is False and len(laser.states) == settled


async def test_a_trip_stops_the_heartbeat(rig: Rig) -> None:
    sup = await rig.started(
        interlocks=[LID],
        laser_enable={"pin": LASER_PIN, "mode": "heartbeat", "heartbeat_hz": 100},
    )
    laser = rig.pin(LASER_PIN)
    sup.arm()
    await asyncio.sleep(0.1)
    threading.Thread(target=lambda: sup.drive("lid", False)).start()
    await until(lambda: rig.trips)
    await asyncio.sleep(0.02)
    settled = len(laser.states)
    await asyncio.sleep(0.2)
    assert laser.state is False and not sup.armed
    assert len(laser.states) == settled
