"""The simulated GRBL's motion: timing, planner, hold/resume, reset, door, jog, laser, limits.

Timing checks use the controller core on a hand-driven clock (exact), or loose bounds on
the real pty (a busy machine only makes things slower, never faster than simulated time).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from laserd.grbl.sim.core import GrblCore
from laserd.grbl.sim.record import SimRecord

if TYPE_CHECKING:
    from collections.abc import Callable

    from laserd.grbl.sim import SimulatedGrbl
    from tests.streaming.conftest import PtyClient

BANNER = "Grbl 1.1h ['$' for help]"


def run_core(
    lines: list[str], *, step_s: float = 0.001, limit_s: float = 60.0, **settings: float
) -> tuple[GrblCore, float]:
    """Feed lines to a bare core on a fake clock; return it and the simulated run time."""
    core = GrblCore(
        record=SimRecord(), now=0.0, settings={int(k[1:]): v for k, v in settings.items()}
    )
    core.power_up()
    core.receive("".join(line + "\n" for line in lines).encode(), 0.0)
    t = 0.0
    started = None
    while t < limit_s:
        t += step_s
        core.tick(t)
        if started is None and core.state == "Run":
            started = t - step_s
        if started is not None and core.state == "Idle" and core.pending is None:
            return core, t - started
    raise AssertionError(f"still {core.state_text()} after {limit_s} s")


def test_trapezoid_time_of_a_single_move() -> None:
    # 100 mm at 100 mm/s with 1000 mm/s²: 0.1 s up, 0.9 s cruise, 0.1 s down.
    core, seconds = run_core(["G1 X100 F6000"])
    assert seconds == pytest.approx(1.1, abs=0.005)
    assert core.motion.position() == pytest.approx((100.0, 0.0, 0.0))


def test_short_move_never_reaches_cruise() -> None:
    # 1 mm with 1000 mm/s²: a triangle, 2 * sqrt(1 / 1000) s.
    _, seconds = run_core(["G1 X1 F6000"])
    assert seconds == pytest.approx(2 * (1 / 1000) ** 0.5, abs=0.003)


def test_rapids_use_max_rate_and_feed_is_capped() -> None:
    _, rapid_s = run_core(["G0 X100"])  # $110 = 6000 mm/min
    _, capped_s = run_core(["G1 X100 F60000"])  # capped to the same 6000 mm/min
    assert rapid_s == pytest.approx(1.1, abs=0.005)
    assert capped_s == pytest.approx(rapid_s, abs=0.005)


def test_collinear_blocks_keep_speed_and_corners_slow_down() -> None:
    _, one_s = run_core(["G1 X100 F6000"])
    _, split_s = run_core(["G1 X50 F6000", "G1 X100"])
    _, corner_s = run_core(["G1 X50 F6000", "G1 Y50"])  # 90° corner, same length
    assert split_s == pytest.approx(one_s, abs=0.005)
    assert corner_s > one_s + 0.05


def test_arc_is_cut_into_chords_and_ends_on_target() -> None:
    core, seconds = run_core(["G1 F3000", "G2 X20 Y0 I10 J0"])  # half circle, r = 10
    assert core.record.blocks_executed > 20  # chords, like GRBL's mc_arc
    assert core.motion.position() == pytest.approx((20.0, 0.0, 0.0))
    assert seconds >= 3.14159 * 10 / 50  # arc length at 50 mm/s, at least


def test_dwell_takes_its_time() -> None:
    core = GrblCore(record=SimRecord(), now=0.0)
    core.power_up()
    core.receive(b"G4 P0.5\n", 0.0)
    core.tick(0.4)
    assert b"ok" not in core.out.split(b"\r\n")
    core.tick(0.51)
    assert b"ok" in core.out.split(b"\r\n")


def test_motion_time_scales_with_time_scale(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    durations = {}
    for scale in (2.0, 20.0):
        port = make_client(make_sim(time_scale=scale))
        started = time.monotonic()
        assert port.command("G1 X100 F6000") == ["ok"]  # 1.1 s of machine time
        port.wait_state("Idle", poll_s=0.005)
        durations[scale] = time.monotonic() - started
    assert durations[2.0] >= 1.1 / 2.0 * 0.95
    assert durations[20.0] < durations[2.0] * 0.6


def test_planner_full_delays_ok(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    # Slow motion (each block ~1.6 s of wall time) so that the first block is still running
    # when the sixteenth line arrives, even on a loaded machine.
    sim = make_sim(time_scale=0.25)
    port = make_client(sim)
    assert port.command("G1 F6000") == ["ok"]
    for i in range(15):  # 15 blocks of ~0.4 s machine time each fill the planner
        assert port.command(f"G1 X{(i + 1) * 30}") == ["ok"]
    port.send("G1 X460\n")
    assert port.read_line(0.08) is None  # held back: no room in the planner
    fields = port.fields(port.status())
    assert fields["Bf"].startswith("0,")
    assert sim.planner_blocks_queued == 15
    assert port.expect("ok", timeout_s=20.0)[-1] == "ok"  # once the first block is done
    port.send(b"\x18")


def test_feed_hold_then_resume(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(time_scale=20.0)
    port = make_client(sim)
    assert port.command("G1 X300 F1200") == ["ok"]  # 15 s of machine time
    port.wait_state("Run")
    port.send(b"!")
    report = port.wait_state("Hold:0")
    held_at = port.position(report)
    time.sleep(0.1)
    assert port.position(port.status()) == held_at
    assert 0 < held_at[0] < 300
    port.send(b"~")
    port.wait_state("Run")
    assert port.position(port.wait_state("Idle", timeout_s=10)) == (300.0, 0.0, 0.0)


def test_soft_reset_mid_move_loses_position(port: PtyClient, sim: SimulatedGrbl) -> None:
    assert port.command("G1 X300 F600") == ["ok"]
    port.wait_state("Run")
    port.send(b"\x18")
    lines = port.expect("[MSG:'$H'|'$X' to unlock]")
    assert lines[:3] == ["ALARM:3", "", BANNER]
    assert port.state() == "Alarm"
    assert port.command("G1 X1") == ["error:9"]
    assert port.command("$X") == ["[MSG:Caution: Unlocked]", "ok"]
    assert port.state() == "Idle"
    assert sim.record.alarms == [3]


def test_soft_reset_in_hold_keeps_position_without_alarm(port: PtyClient) -> None:
    assert port.command("G1 X300 F600") == ["ok"]
    port.wait_state("Run")
    port.send(b"!")
    held = port.position(port.wait_state("Hold:0"))
    port.send(b"\x18")
    assert port.expect(BANNER)[0] == ""
    report = port.status()
    assert port.fields(report)["state"] == "Idle"
    assert port.position(report) == held


def test_safety_door_while_moving_and_resume(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(time_scale=20.0)
    port = make_client(sim)
    assert port.command("M3 S500") == ["ok"]
    assert port.command("G1 X300 F1200") == ["ok"]
    port.wait_state("Run")
    assert sim.laser_on
    port.send(b"\x84")
    assert port.expect("[MSG:Check Door]")
    port.wait_state("Door:0")
    assert not sim.laser_on
    port.send(b"~")
    port.wait_state("Run")
    assert sim.laser_on
    port.send(b"\x18")


def test_door_when_idle_and_door_pin(port: PtyClient, sim: SimulatedGrbl) -> None:
    port.send(b"\x84")
    port.wait_state("Door:0")
    port.send(b"~")
    port.wait_state("Idle")
    sim.set_door(True)
    report = port.wait_state("Door:1")
    assert port.fields(report)["Pn"] == "D"
    port.send(b"~")  # ignored while the door is open
    time.sleep(0.05)
    assert port.state() == "Door:1"
    sim.set_door(False)
    port.wait_state("Door:0")
    port.send(b"~")
    port.wait_state("Idle")


def test_jog_and_jog_cancel(port: PtyClient, sim: SimulatedGrbl) -> None:
    assert port.command("$J=G91 X-1 F600") == ["ok"]  # G91 jog is relative...
    port.wait_state("Idle")
    assert port.command("$J=G91 X300 F600") == ["ok"]
    assert port.command("$J=G91 Y300 F600") == ["ok"]  # jogs queue
    port.wait_state("Jog")
    assert port.command("G1 X1 F100") == ["error:9"]  # no G-code while jogging
    port.send(b"\x85")
    report = port.wait_state("Idle")
    x, y, _ = port.position(report)
    assert -1 < x < 299 and y == 0.0  # stopped early, the queued jog was flushed
    assert sim.planner_blocks_queued == 0
    assert port.command("$G")[0].startswith("[GC:G0 G54 G17 G21 G90")  # ...and not modal


def test_jog_units_and_machine_coordinates(port: PtyClient) -> None:
    assert port.command("$J=G20 G91 X1 F100") == ["ok"]
    assert port.position(port.wait_state("Idle"))[0] == pytest.approx(25.4)
    assert port.command("G10 L2 P1 X100") == ["ok"]
    assert port.command("$J=G53 X5 F3000") == ["ok"]
    assert port.position(port.wait_state("Idle"))[0] == pytest.approx(5.0)


def test_laser_follows_motion_modes(port: PtyClient, sim: SimulatedGrbl) -> None:
    assert port.command("M3 S400") == ["ok"]
    assert not sim.laser_on  # G0 is the power-up motion mode: the laser stays off
    assert port.command("G1 X10 F600") == ["ok"]
    port.wait_state("Idle")
    assert sim.laser_on and sim.laser_power == 400  # M3 keeps power when stopped
    assert port.command("G0 X20") == ["ok"]
    port.wait_state("Idle")
    assert not sim.laser_on  # G0 never fires
    assert port.command("M4 G1 X30 S800") == ["ok"]
    port.wait_state("Idle")
    assert not sim.laser_on  # M4 is off when not moving
    assert port.command("M5") == ["ok"]
    states = [on for _, on, _ in sim.record.laser_log]
    assert states[:2] == [True, False] and True in states[2:]
    stamps = [t for t, _, _ in sim.record.laser_log]
    assert stamps == sorted(stamps)


def test_laser_off_during_hold_and_spindle_override(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(time_scale=20.0)
    port = make_client(sim)
    assert port.command("G1 M3 S500 F1200") == ["ok"]
    assert port.command("G1 X300") == ["ok"]
    port.wait_state("Run")
    port.send(b"\x9b")  # spindle -10 %
    deadline = time.monotonic() + 2
    while sim.laser_power != 450 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.laser_power == 450
    port.send(b"!")
    port.wait_state("Hold:0")
    assert not sim.laser_on
    port.send(b"\x18")


def test_homing_and_soft_limits(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(settings={22: 1, 20: 1})
    port = make_client(sim)
    assert port.read_line() == "[MSG:'$H'|'$X' to unlock]"  # right after the banner
    assert port.state() == "Alarm"
    assert port.command("$H", timeout_s=10) == ["ok"]
    assert port.state() == "Idle"
    assert port.command("$J=G91 X-10 F1000") == ["error:15"]  # beyond the bed: refused
    assert port.command("$J=G91 X10 F1000") == ["ok"]
    port.wait_state("Idle")
    port.send("G0 X500\n")  # beyond the 400 mm bed: soft limit
    assert port.expect("[MSG:Reset to continue]")[-2] == "ALARM:2"
    port.send("$X\n")
    assert port.read_line(0.2) is None  # locked: nothing runs until a reset
    port.send(b"\x18")
    port.expect("[MSG:'$H'|'$X' to unlock]")
    assert port.command("$X") == ["[MSG:Caution: Unlocked]", "ok"]
    assert port.position(port.status())[0] == pytest.approx(10.0)


def test_program_end_resets_modes(port: PtyClient) -> None:
    assert port.command("G91 G1 F500 M3 S100") == ["ok"]
    assert port.command("M2") == ["[MSG:Pgm End]", "ok"]
    assert port.command("$G")[0] == "[GC:G1 G54 G17 G21 G90 G94 M5 M9 T0 F500 S100]"


def test_starvation_is_counted_for_a_slow_sender(
    make_sim: Callable[..., SimulatedGrbl], make_client: Callable[..., PtyClient]
) -> None:
    sim = make_sim(time_scale=1.0)
    port = make_client(sim)
    assert port.command("G1 F6000") == ["ok"]
    for i in range(4):  # 1 mm moves take ~60 ms; the sender dawdles 150 ms between lines
        assert port.command(f"G1 X{i + 1}") == ["ok"]
        time.sleep(0.15)
    assert sim.record.starvations >= 2
    assert sim.record.planner_starved_s > 0.1
    before = sim.record.starvations
    time.sleep(0.6)  # a pause longer than the window: that job is over
    port.send("G1 X10\nG1 X20\nG1 X30\n")  # all at once: the planner never runs dry
    for _ in range(3):
        port.expect("ok")
    port.wait_state("Idle")
    assert sim.record.starvations == before
