"""The simulated controller follows the physics of laserd's planner model (and of the real
GRBL 1.1h): each feature file of the ground truth takes on the simulator, within 3 %, what it
took on the real firmware (the firmware's own clock: first motion to Idle)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laserd.grbl.sim.core import GrblCore
from laserd.grbl.sim.record import SimRecord
from laserd.planner_settings import junction_speed_sq

TIMING = Path(__file__).resolve().parents[1] / "data" / "timing"
RESULTS = {r["file"]: r for r in json.loads((TIMING / "results.json").read_text())}
FEATURES = sorted(name for name in RESULTS if name.startswith("st"))


def stream_on_fake_clock(
    lines: list[str], settings: dict[int, float], step_s: float, baud: int = 115200
) -> float:
    """Send lines to a bare core under character counting (128-byte buffer, as the link
    does), each arriving when a ``baud`` serial line has carried it, on a hand-driven clock;
    the simulated seconds from first motion to Idle."""
    core = GrblCore(record=SimRecord(), now=0.0, settings=settings)
    core.power_up()
    core.out.clear()
    pending = [(line.split(";")[0].strip() + "\n").encode() for line in lines]
    pending = [p for p in pending if p.strip()]
    pending.reverse()
    in_flight: list[int] = []
    on_wire: list[tuple[float, bytes]] = []
    wire_free = 0.0
    t, started = 0.0, None
    while t < 400.0:
        while pending and sum(in_flight) + len(pending[-1]) <= 127:
            data = pending.pop()
            in_flight.append(len(data))
            wire_free = max(wire_free, t) + len(data) * 10 / baud
            on_wire.append((wire_free, data))
        while on_wire and on_wire[0][0] <= t:
            core.receive(on_wire.pop(0)[1], t)
        t += step_s
        core.tick(t)
        acks = core.out.count(b"ok")
        assert b"error" not in core.out and b"ALARM" not in core.out, core.out
        core.out.clear()
        del in_flight[:acks]
        if started is None and core.state == "Run":
            started = t - step_s
        done = not pending and not in_flight and not on_wire
        if started is not None and done and core.state == "Idle":
            return t - started
    raise AssertionError("the program did not finish")


@pytest.mark.parametrize("name", FEATURES)
def test_feature_file_takes_what_the_firmware_took(name: str) -> None:
    result = RESULTS[name]
    lines = (TIMING / "files" / name).read_text().splitlines()
    settings = {int(k): float(v) for k, v in result["settings"].items()}
    seconds = stream_on_fake_clock(lines, settings, step_s=0.0005)
    firmware_s = result["firmware_clock_s"][0]
    assert seconds == pytest.approx(firmware_s, rel=0.03), (name, seconds, firmware_s)


def test_junction_uses_the_acceleration_along_the_junction_vector() -> None:
    # X accelerates 10× faster than Y: a corner from +X to +Y turns along (-1, 1)/√2, so the
    # slow Y axis limits the junction's acceleration (GRBL's limit_value_by_axis_maximum).
    fast_x = junction_speed_sq((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1000.0, 100.0, 10.0), 0.01)
    even = junction_speed_sq((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (100.0, 100.0, 10.0), 0.01)
    assert fast_x == pytest.approx(even)
    assert junction_speed_sq((1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (1e3, 1e3, 1e3), 0.01) == 0.0
    assert junction_speed_sq((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (1e3, 1e3, 1e3), 0.01) > 1e30


@pytest.mark.parametrize("name", FEATURES)
def test_simulator_and_estimate_agree(name: str) -> None:
    from laserd.gcode.estimate import estimate_file
    from laserd.gcode.planner import END_LATENCY_S, PlannerSettings

    result = RESULTS[name]
    path = TIMING / "files" / name
    settings = {int(k): float(v) for k, v in result["settings"].items()}
    seconds = stream_on_fake_clock(path.read_text().splitlines(), settings, step_s=0.0005)
    model = estimate_file(path, PlannerSettings.from_dollars(result["settings"]))
    # the estimate also counts the first line's trip over the link and the final status poll
    assert seconds == pytest.approx(model.total_s - END_LATENCY_S, rel=0.006, abs=0.01)


def test_corners_on_a_machine_with_a_slow_axis(tmp_path: Path) -> None:
    """A zig-zag turns along Y: its corner speed is set by Y's acceleration alone."""
    from laserd.gcode.estimate import estimate_file
    from laserd.gcode.planner import END_LATENCY_S, PlannerSettings

    dollars = {**{k: str(v) for k, v in PlannerSettings().as_dollars().items()}, "121": "100"}
    lines = ["G1F3000"] + [f"G1X{i + 1}Y{(i + 1) % 2}" for i in range(120)]
    path = tmp_path / "zigzag.gcode"
    path.write_text("\n".join(lines) + "\n")
    seconds = stream_on_fake_clock(lines, {int(k): float(v) for k, v in dollars.items()}, 0.0005)
    model = estimate_file(path, PlannerSettings.from_dollars(dollars))
    assert seconds == pytest.approx(model.total_s - END_LATENCY_S, rel=0.006, abs=0.01)


def test_short_segments_at_the_links_pace_take_what_the_firmware_took() -> None:
    """20,000 segments of 0.02-0.2 mm: the step-rounded directions and the link's pace
    decide the time (distance over feed says 47.6 s; the firmware took 55.5 s)."""
    name = "dense_short_segments.gcode"
    result = RESULTS[name]
    lines = (TIMING / "files" / name).read_text().splitlines()
    settings = {int(k): float(v) for k, v in result["settings"].items()}
    seconds = stream_on_fake_clock(lines, settings, step_s=0.001)
    assert seconds == pytest.approx(result["firmware_clock_s"][0], rel=0.03)
