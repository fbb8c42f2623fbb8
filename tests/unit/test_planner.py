"""The GRBL 1.1 planner model against the real firmware's times, and its own invariants."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from laserd.gcode import planner
from laserd.gcode.estimate import estimate_file
from laserd.gcode.planner import Estimator, Moves, PlannerSettings
from laserd.gcode.program import ProgramReader

TIMING = Path(__file__).resolve().parents[1] / "data" / "timing"
RESULTS = json.loads((TIMING / "results.json").read_text())
GT = PlannerSettings.from_dollars(RESULTS[0]["settings"])


def _estimate_text(
    tmp_path: Path, text: str, settings: PlannerSettings = GT, **kw: object
) -> float:
    path = tmp_path / "job.gcode"
    path.write_text(text)
    return estimate_file(path, settings, **kw).total_s  # type: ignore[arg-type]


@pytest.mark.parametrize("result", RESULTS, ids=[r["file"] for r in RESULTS])
def test_estimate_within_three_percent_of_real_grbl(result: dict) -> None:
    settings = PlannerSettings.from_dollars(result["settings"])
    est = estimate_file(TIMING / "files" / result["file"], settings)
    error = (est.total_s - result["real_s"]) / result["real_s"]
    assert abs(error) <= 0.03, f"{result['file']}: {est.total_s:.3f} s vs {result['real_s']} s"
    # and the model is closer than distance over feed wherever that is off by more than 3 %
    naive_error = abs(result["naive_s"] - result["real_s"]) / result["real_s"]
    if naive_error > 0.03:
        assert abs(error) < naive_error


def test_settings_from_dollars_and_back() -> None:
    s = PlannerSettings.from_dollars({"$110": "3000", "120": "250.5", "32": "0", "11": "bad"})
    assert s.max_rate_mm_min == (3000.0, 6000.0, 1000.0)
    assert s.accel_mm_s2[0] == 250.5
    assert not s.laser_mode
    assert s.junction_deviation_mm == PlannerSettings().junction_deviation_mm
    d = s.as_dollars()
    assert d["110"] == 3000.0 and d["32"] == 0.0 and d["120"] == 250.5
    assert set(d) == set(PlannerSettings.DOLLARS)


def test_long_line_is_cruise_plus_acceleration(tmp_path: Path) -> None:
    # 280 mm at 100 mm/s with 1000 mm/s²: 2.8 s cruising + 0.1 s lost to accelerate and stop
    t = _estimate_text(tmp_path, "G1X280F6000\n")
    link = len("G1X280F6000\n") / 11520
    assert t == pytest.approx(2.9 + link + planner.END_LATENCY_S, abs=1e-3)


def test_diagonal_rapid_is_faster_than_the_axis_limit(tmp_path: Path) -> None:
    axis = _estimate_text(tmp_path, "G0X100\n")
    diag = _estimate_text(tmp_path, "G0X100Y100\n")
    # per-axis limits: the diagonal runs each axis at $110, so √2 × 100 mm takes as long as 100
    assert diag == pytest.approx(axis, rel=1e-3)


def test_slow_z_limits_a_combined_move(tmp_path: Path) -> None:
    xy = _estimate_text(tmp_path, "G0X10\n")
    with_z = _estimate_text(tmp_path, "G0X10Z1\n")
    assert with_z > 2 * xy


def test_corners_cost_time_and_straight_joins_do_not(tmp_path: Path) -> None:
    straight = _estimate_text(tmp_path, "G1X20F3000\nX40\nX60\nX80\n")
    one_line = _estimate_text(tmp_path, "G1X80F3000\n")
    corners = _estimate_text(tmp_path, "G1X20F3000\nY20\nX0\nY0\n")
    reversal = _estimate_text(tmp_path, "G1X20F3000\nX0\nX20\nX0\n")
    assert straight == pytest.approx(one_line, abs=0.01)
    assert corners > straight + 0.05
    assert reversal > corners  # a 180° reversal stops completely


def test_spindle_changes_empty_the_planner_but_power_changes_do_not(tmp_path: Path) -> None:
    body = "".join(f"G1X{5 * (i + 1)}S{100 + i}\n" for i in range(10))
    s_only = _estimate_text(tmp_path, "M4S100F3000\n" + body)
    switching = "".join(f"M{3 + i % 2}\nG1X{5 * (i + 1)}S{100 + i}\n" for i in range(10))
    with_m = _estimate_text(tmp_path, "M4S100F3000\n" + switching)
    assert with_m > s_only + 0.3
    # without laser mode an S change with the laser on waits too
    no_laser = PlannerSettings.from_dollars({**{k: str(v) for k, v in GT.as_dollars().items()},
                                             "32": "0"})  # fmt: skip
    assert _estimate_text(tmp_path, "M4S100F3000\n" + body, no_laser) > s_only + 0.3


def test_dwell_adds_its_time(tmp_path: Path) -> None:
    base = _estimate_text(tmp_path, "G1X10F3000\nX20\n")
    dwell = _estimate_text(tmp_path, "G1X10F3000\nG4P1.5\nX20\n")
    assert dwell > base + 1.5


def test_inches_and_relative_moves(tmp_path: Path) -> None:
    mm = _estimate_text(tmp_path, "G1X25.4Y25.4F1000\n")
    inch = _estimate_text(tmp_path, "G20G1X1Y1F39.370079\n")
    rel = _estimate_text(tmp_path, "G91G1X12.7Y12.7F1000\nX12.7Y12.7\n")
    assert inch == pytest.approx(mm, rel=1e-3)
    assert rel == pytest.approx(mm, rel=1e-2)


def test_arc_tolerance_changes_the_segmentation(tmp_path: Path) -> None:
    text = "G0X10Y0\nG2X10Y0I-10J0F3000\n"
    fine = _estimate_text(tmp_path, text)
    coarse_settings = PlannerSettings.from_dollars({"12": "0.1", **{
        k: str(v) for k, v in GT.as_dollars().items() if k != "12"}})  # fmt: skip
    coarse = _estimate_text(tmp_path, text, coarse_settings)
    # coarser chords meet at sharper angles: the junction speed, about sqrt(8·a·$11)/angle,
    # drops below the feed
    assert coarse > fine + 0.05


def test_many_tiny_lines_are_paced_by_the_link(tmp_path: Path) -> None:
    lines = "".join(f"G1X{0.01 * i:.2f}Y{0.01 * (i % 2):.2f}\n" for i in range(1, 3000))
    text = "G1F6000\n" + lines
    t = _estimate_text(tmp_path, text)
    assert t >= len(text.encode()) / 11520


def test_chunked_solve_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    path = TIMING / "files" / "dense_short_segments.gcode"
    whole = estimate_file(path, GT)
    monkeypatch.setattr(planner, "_SOLVE_BLOCKS", 700)
    chunked = estimate_file(path, GT)
    assert chunked.total_s == pytest.approx(whole.total_s, rel=1e-6)
    assert [c[0] for c in chunked.checkpoints] == [c[0] for c in whole.checkpoints]
    assert np.allclose([c[1] for c in chunked.checkpoints], [c[1] for c in whole.checkpoints],
                       atol=2e-3)  # fmt: skip


def test_checkpoints_are_monotonic_and_end_at_the_total() -> None:
    est = estimate_file(TIMING / "files" / "raster_f3000_0p1.gcode", GT)
    lines = [c[0] for c in est.checkpoints]
    times = [c[1] for c in est.checkpoints]
    assert lines == sorted(lines) and times == sorted(times)
    assert lines[-1] == est.lines
    assert times[-1] == pytest.approx(est.total_s, abs=1e-3)
    assert est.remaining_s(0) == pytest.approx(est.total_s)
    assert est.remaining_s(est.lines) == pytest.approx(0.0, abs=1e-3)
    half = est.remaining_s(est.lines // 2)
    assert 0.3 * est.total_s < half < 0.7 * est.total_s


def _random_program(rng: random.Random) -> str:
    out = ["G90 G21", "M4 S0"]
    for _ in range(rng.randint(20, 300)):
        kind = rng.random()
        x, y = rng.uniform(0, 50), rng.uniform(0, 50)
        if kind < 0.6:
            out.append(
                f"G1 X{x:.3f} Y{y:.3f} S{rng.randint(0, 1000)} F{rng.choice([600, 3000, 6000])}"
            )
        elif kind < 0.75:
            out.append(f"X{x:.2f} S{rng.randint(0, 1000)}")
        elif kind < 0.85:
            out.append(f"G0 X{x:.1f} Y{y:.1f}")
        elif kind < 0.9:
            out.append(rng.choice(["M3", "M4", "M5", "M8", "M9"]))
        else:
            out.append(f"S{rng.randint(0, 1000)}")
    out.append("M5 S0")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("seed", range(12))
def test_fast_and_reference_paths_give_the_same_estimate(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "p.gcode"
    path.write_text(_random_program(random.Random(seed)))
    results = []
    for fast in (True, False):
        reader = ProgramReader(path, use_fast_path=fast)
        est = Estimator(GT)
        from laserd.gcode.estimate import feed_chunk

        for chunk in reader.chunks():
            feed_chunk(est, chunk)
        results.append(est.finish())
    assert results[0].total_s == pytest.approx(results[1].total_s, rel=1e-9)
    assert results[0].lines == results[1].lines
    assert results[0].blocks == results[1].blocks


def test_zero_length_moves_are_dropped_like_the_firmware() -> None:
    est = Estimator(GT)
    x = np.array([10.0, 10.0, 10.001, 20.0])  # 10.001 rounds to the same step at 80 steps/mm
    z = np.zeros(4)
    moves = Moves(x, z, z, np.zeros(4, dtype=bool), np.full(4, 3000.0), np.arange(4))
    est.add(moves, np.full(4, 10))
    assert est.finish().blocks == 2


def test_designs_are_estimated_with_the_controller_settings(tmp_path: Path) -> None:
    from laserd.designs import convert_file
    from tests.unit.designs_util import svg_doc

    src = tmp_path / "d.svg"
    src.write_text(svg_doc('<rect x="10" y="10" width="30" height="30" stroke="#ff0000" '
                           'fill="none"/>'))  # fmt: skip
    fast = convert_file(src, "svg", tmp_path / "a.gcode", bed_mm=(400, 300), max_power_s=1000)
    slow_settings = PlannerSettings.from_dollars({"120": "50", "121": "50"})
    slow = convert_file(src, "svg", tmp_path / "b.gcode", bed_mm=(400, 300), max_power_s=1000,
                        planner=slow_settings)  # fmt: skip
    assert fast.stats["estimate_settings"] == PlannerSettings().as_dollars()
    assert slow.stats["estimate_settings"]["120"] == 50.0
    assert slow.stats["estimated_s"] > fast.stats["estimated_s"] + 0.5


def test_a_standing_move_under_m3_empties_the_planner(tmp_path: Path) -> None:
    # GRBL's mc_line: in laser mode a move of no whole step under M3 syncs the planner (to
    # set the laser at that point), so the head stops at X10; under M4 it carries on.
    m4 = _estimate_text(tmp_path, "M4S100\nG1X10F3000\nG1X10\nG1X20\nM5\n")
    m3 = _estimate_text(tmp_path, "M3S100\nG1X10F3000\nG1X10\nG1X20\nM5\n")
    assert m3 > m4 + 0.04


def test_every_dwell_counts_however_many_follow_each_other(tmp_path: Path) -> None:
    # Each path: travel, laser on, dwell, cut, laser off (as cncjs's example does): every
    # dwell adds its time, not only the first few (they were resolved one pass at a time).
    path = "G1X{x}F1500\nM3S80\nG4P0.5\nG1X{x2}F100\nM5\n"
    body = "".join(path.format(x=10 * i, x2=10 * i + 1) for i in range(1, 9))
    no_dwell = body.replace("G4P0.5\n", "")
    assert _estimate_text(tmp_path, body) == pytest.approx(
        _estimate_text(tmp_path, no_dwell) + 8 * 0.5, abs=0.01
    )


@pytest.mark.parametrize("width", [1, 2, 7, 8, 14, 15, 20])
def test_arrival_search_in_the_window_equals_a_clipped_searchsorted(width: int) -> None:
    rng = np.random.default_rng(width)
    for _ in range(20):
        n = int(rng.integers(1, 400))
        # non-decreasing with ties, as push times are; some decisions exactly at a push
        push = np.cumsum(rng.choice([0.0, 0.0, 0.01, 0.5], size=n))
        when = push + rng.normal(0, 0.3, size=n)
        tie = rng.random(n) < 0.2
        when[tie] = push[rng.integers(0, n, size=n)][tie]
        b = np.arange(n)
        last = np.searchsorted(push, when, side="right") - 1
        want = np.minimum(np.clip(last, b, b + width), n - 1)
        got = planner._arrived_in_window(push, when, width)
        assert got.tolist() == want.tolist()


@pytest.mark.parametrize("n", [1, 5, 15, 16, 17, 40, 300])
def test_window_minimum_after_each_block_equals_the_general_query(n: int) -> None:
    rng = np.random.default_rng(n)
    width = 15
    g = rng.normal(size=n)
    g[rng.random(n) < 0.1] = np.inf
    rmq = planner._RangeMin(g, width)
    b = np.arange(n)
    full_end = b + width
    for _ in range(10):
        # mostly full windows, some cut short (syncs, late arrivals, the batch's end)
        e = np.minimum(full_end, n - 1)
        short = rng.random(n) < 0.2
        e[short] = np.minimum(b[short] + rng.integers(0, width, size=int(short.sum())), n - 1)
        want = [min(g[i + 1 : e[i] + 1], default=np.inf) for i in range(n)]
        assert rmq.after(e, full_end).tolist() == want
        assert rmq.query(b + 1, e).tolist() == want


def test_block_times_match_the_trapezoid_formulas() -> None:
    """Trapezoids and triangles, worked out one block at a time the textbook way."""
    rng = np.random.default_rng(4)
    n = 2000
    vn = rng.uniform(1, 100, n)
    a = rng.uniform(10, 2000, n)
    length = rng.uniform(0.01, 20, n)
    vi2 = (rng.uniform(0, 1.2, n) * vn) ** 2
    vo2 = (rng.uniform(0, 1.2, n) * vn) ** 2
    vo2[::7] = -1e-12  # rounding below zero is clipped
    t, t_dec = planner._block_time(vi2, vo2, vn, a, length)
    for i in range(n):
        vi = min(max(vi2[i], 0.0), vn[i] ** 2) ** 0.5
        vo = min(max(vo2[i], 0.0), vn[i] ** 2) ** 0.5
        d_acc = (vn[i] ** 2 - vi**2) / (2 * a[i])
        d_dec = (vn[i] ** 2 - vo**2) / (2 * a[i])
        if d_acc + d_dec <= length[i]:
            want = (vn[i] - vi) / a[i] + (length[i] - d_acc - d_dec) / vn[i] + (vn[i] - vo) / a[i]
            want_dec = (vn[i] - vo) / a[i]
        else:
            peak = max(((2 * a[i] * length[i] + vi**2 + vo**2) / 2) ** 0.5, vi, vo)
            want = (peak - vi) / a[i] + (peak - vo) / a[i]
            want_dec = (peak - vo) / a[i]
        assert t[i] == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert t_dec[i] == pytest.approx(want_dec, rel=1e-9, abs=1e-12)
    assert (t > 0).all()
