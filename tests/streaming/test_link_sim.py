"""GrblLink through the real pty against the simulated GRBL controller.

Every test opens the simulator's stable symlink with the link's real serial code, so
termios, partial reads, baud pacing, the 128-byte receive buffer (overflows recorded) and the
controller's state machine are all real. Motion runs at a high time scale so the wire is what
takes time; the biggest test streams 12,000 lines at a fast baud rate to stay quick.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from laserd.events import EventHub
from laserd.grbl.controller import Alarm, ControllerChanged
from laserd.grbl.errors import ControllerReset, GrblAlarm, GrblError, LinkDown, StreamCancelled
from laserd.grbl.link import GrblLink, StreamProgress, iter_file_lines
from laserd.grbl.protocol import RT
from tests.bench.rasterlines import iter_raster_lines, write_raster_file

FAST_BAUD = 921_600


def _final_xy(lines: list[str]) -> tuple[float, float]:
    x = y = 0.0
    for line in lines:
        if m := re.search(r"X(-?[\d.]+)", line):
            x = float(m.group(1))
        if m := re.search(r"Y(-?[\d.]+)", line):
            y = float(m.group(1))
    return x, y


async def _until(predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def open_link():
    links: list[GrblLink] = []

    async def factory(sim, **kw) -> GrblLink:
        kw.setdefault("reconnect_s", 0.2)
        kw.setdefault("banner_timeout_s", 0.3)
        link = GrblLink(sim.link_path, sim.baudrate, **kw)
        links.append(link)
        await link.start()
        await link.connect(timeout_s=20)
        return link

    yield factory
    for link in links:
        await link.close()


async def test_streams_12k_lines_in_order_without_overflow(make_sim, open_link, tmp_path: Path):
    sim = make_sim(baudrate=FAST_BAUD, time_scale=1000)
    hub = EventHub()
    states: set[str] = set()
    link = await open_link(sim, hub=hub)
    hub.on(ControllerChanged, lambda change: states.add(link.state))
    count = 12_000
    path = tmp_path / "raster.gcode"
    write_raster_file(path, count)
    expected = list(iter_raster_lines(count))
    sim.clear_record()
    seen: list[StreamProgress] = []

    progress = await asyncio.wait_for(
        link.stream(iter_file_lines(path), on_progress=lambda p: seen.append(
            StreamProgress(p.lines_sent, p.lines_acked))), 120)

    assert progress.lines_acked == progress.lines_sent == count
    assert progress.last_lineno == count
    record = sim.record
    assert record.rx_overflows == 0 and record.faults == []
    assert record.lines_executed == count and record.errors == []
    assert list(record.last_lines) == expected[-len(record.last_lines):]  # in order, intact
    # Progress was reported, throttled, never acknowledging more than was sent.
    assert 1 <= len(seen) < count / 10
    assert all(p.lines_acked <= p.lines_sent for p in seen)
    assert [p.lines_acked for p in seen] == sorted(p.lines_acked for p in seen)
    # Final position: where the last raster move ends, on the simulator and in our status.
    x, y = _final_xy(expected)
    await _until(lambda: sim.state == "Idle", what="idle")
    assert sim.position_mm[:2] == pytest.approx((x, y), abs=1e-6)
    await _until(lambda: link.status is not None and link.state == "idle"
                 and link.status.mpos.x == pytest.approx(x, abs=1e-3), what="final status")
    assert link.status.mpos.y == pytest.approx(y, abs=1e-3)
    assert "run" in states and "idle" in states


async def test_comments_with_realtime_characters_do_not_hold(make_sim, open_link):
    sim = make_sim(baudrate=FAST_BAUD)
    link = await open_link(sim)
    lines = ["G21 G90 (mm! absolute?)", "M4 S0 ; laser on ~ dynamic", "G1 F3000"]
    for i in range(400):
        lines.append(f"G1 X{i % 50}.5 S{i} (step {i}: go! really? yes~)")
        lines.append(f"; pause here? no! ~{i}")
    lines.append("M5 (laser off!)")
    sim.clear_record()

    progress = await asyncio.wait_for(link.stream(list(enumerate(lines, 1))), 60)

    assert progress.lines_acked == len(lines)
    sent_realtime = {byte for _, byte in sim.record.realtime_log}
    assert sent_realtime <= {RT.STATUS}  # only our own status polls
    assert sim.record.lines_executed == len(lines) - 400  # comment-only lines are not sent
    assert sim.record.rx_overflows == 0
    assert not sim.state.startswith("Hold") and link.state != "hold"


async def test_error_mid_stream_names_line_and_meaning(make_sim, open_link):
    sim = make_sim()
    link = await open_link(sim)
    sim.clear_record()
    sim.error_on_line(150, 33)
    lines = list(enumerate(iter_raster_lines(600), 1))

    with pytest.raises(GrblError) as info:
        await asyncio.wait_for(link.stream(lines), 60)

    err = info.value
    assert err.lineno == 150 and err.line == lines[149][1]
    assert err.grbl_code == 33 and "target" in err.meaning
    assert err.status == 409 and err.details["lineno"] == 150
    assert not link.streaming
    # Nothing after the failure is sent beyond what was already in the buffer.
    await asyncio.sleep(0.3)
    assert sim.record.lines_received < 150 + 20
    assert sim.record.rx_overflows == 0
    assert await link.command("G4 P0") == []  # the link is still usable


async def test_alarm_mid_stream_fails_at_once(make_sim, open_link):
    sim = make_sim(time_scale=20)
    link = await open_link(sim)
    task = asyncio.create_task(link.stream(list(enumerate(iter_raster_lines(3000), 1))))
    await _until(lambda: sim.record.lines_executed > 200, what="progress")
    sim.raise_alarm(1)

    with pytest.raises(GrblAlarm) as info:
        await asyncio.wait_for(task, 10)

    assert info.value.alarm_code == 1
    assert link.alarm == Alarm(1, info.value.meaning)
    await _until(lambda: link.state == "alarm", what="alarm state")
    assert sim.record.rx_overflows == 0
    # After the reset GRBL asks for, the link is in step again (nothing stray is matched).
    await link.reset()
    replies = await link.command("$$")
    assert any(line.startswith("$0=") for line in replies)
    assert link.settings["$0"]


async def test_unplug_fails_stream_at_once_and_reconnects_after_replug(make_sim, open_link):
    sim = make_sim()
    hub = EventHub()
    changes: list[tuple[str, str]] = []
    link = await open_link(sim, hub=hub)
    hub.on(ControllerChanged, lambda change: changes.append((change.cause, link.state)))
    task = asyncio.create_task(link.stream(list(enumerate(iter_raster_lines(5000), 1))))
    await _until(lambda: sim.record.lines_executed > 300, what="progress")
    unplugged_at = time.monotonic()
    sim.unplug()

    with pytest.raises(LinkDown):
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - unplugged_at < 2.0
    assert link.state == "disconnected" and not link.connected
    assert link.realtime(RT.STATUS) is False
    with pytest.raises(LinkDown):
        await link.command("G0 X0")

    await asyncio.sleep(0.5)  # a few reconnect attempts fail while the port is gone
    sim.replug()
    await _until(lambda: link.connected, timeout_s=20, what="reconnect")
    assert link.state in ("idle", "alarm")
    assert link.settings["$32"] is not None
    assert await link.command("G4 P0") == []
    causes = [cause for cause, _ in changes]
    assert ("disconnected", "disconnected") in changes
    assert "connected" in causes[causes.index("disconnected"):]


async def test_pause_resume_mid_stream(make_sim, open_link):
    sim = make_sim(time_scale=20)
    link = await open_link(sim)
    lines = list(enumerate(iter_raster_lines(2500), 1))
    task = asyncio.create_task(link.stream(lines))
    await _until(lambda: sim.record.lines_executed > 300, what="progress")

    assert link.pause()
    await _until(lambda: sim.state == "Hold:0", what="hold complete")
    await _until(lambda: link.state == "hold", what="hold reported")
    held_at = sim.record.lines_executed
    await asyncio.sleep(0.4)
    # The planner fills and then nothing moves on while held.
    assert sim.record.lines_executed - held_at <= 20
    assert not task.done()

    assert link.resume()
    progress = await asyncio.wait_for(task, 60)
    assert progress.lines_acked == len(lines)
    assert sim.record.rx_overflows == 0


async def test_cancel_mid_stream_leaves_a_consistent_state(make_sim, open_link):
    sim = make_sim(time_scale=20)
    link = await open_link(sim)
    task = asyncio.create_task(link.stream(list(enumerate(iter_raster_lines(4000), 1))))
    await _until(lambda: sim.record.lines_executed > 300, what="progress")

    await asyncio.wait_for(link.cancel(), 20)

    with pytest.raises(StreamCancelled):
        await task
    assert not link.streaming
    assert link.bytes_in_flight == 0
    sent = sim.record.lines_executed
    await asyncio.sleep(0.3)
    assert sim.record.lines_executed == sent  # nothing more was sent after the reset
    # The hold completed before the reset: no ALARM:3, position kept, machine idle.
    assert 3 not in sim.record.alarms
    await _until(lambda: link.state == "idle", what="idle after cancel")
    assert sim.state == "Idle" and not sim.laser_on
    assert await link.command("G0 X0 Y0") == []


async def test_reset_from_another_thread_fails_the_stream(make_sim, open_link):
    sim = make_sim(time_scale=20)
    link = await open_link(sim)
    task = asyncio.create_task(link.stream(list(enumerate(iter_raster_lines(4000), 1))))
    await _until(lambda: sim.record.lines_executed > 200, what="progress")

    banners = sim.record.banners
    await asyncio.to_thread(link.realtime, RT.RESET)

    with pytest.raises(ControllerReset):
        await asyncio.wait_for(task, 5)
    await _until(lambda: sim.record.banners > banners and link.state == sim.state.lower(),
                 what="link state in step with the controller after its reset")
    if link.state == "alarm":  # reset during motion: position may be lost (ALARM:3)
        assert link.alarm is not None and link.alarm.code == 3
        await link.command("$X")
    assert await link.command("G4 P0") == []
    assert sim.record.rx_overflows == 0


async def test_full_planner_makes_the_sender_wait_without_overflow(make_sim, open_link):
    """Slow motion keeps the planner full, so the receive buffer fills up too: only exact
    character counting keeps it from overflowing. (A sender that overruns the count by more
    than the one line GRBL holds in its line buffer overflows here — checked with a link
    told the buffer is 180 bytes: 37 overflows. At a high time scale it never fills.)"""
    sim = make_sim(time_scale=20)
    link = await open_link(sim)
    lines = ["G90", "G21", "M4S0", "G1F3000"]
    for i in range(160):  # long-ish moves with long lines: ~30 bytes each
        x = 10 + (i % 2) * 5.125
        lines.append(f"G1X{x:.3f}Y{(i % 7) * 1.25 + 0.001:.3f}S{100 + i % 900}")
    lines.append("M5")
    sim.clear_record()
    peak = 0

    def watch(_p: StreamProgress) -> None:
        nonlocal peak
        peak = max(peak, link.bytes_in_flight)

    progress = await asyncio.wait_for(
        link.stream(enumerate(lines, 1), on_progress=watch, progress_interval_s=0.02), 120
    )
    assert progress.lines_acked == len(lines)
    rec = sim.record_snapshot()
    assert rec.rx_overflows == 0, rec.faults
    assert peak > link.rx_buffer_bytes - 40, f"the buffer never filled (peak {peak})"
