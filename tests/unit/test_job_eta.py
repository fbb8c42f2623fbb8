"""A running job's ETA: the model's time for the lines not yet acknowledged, then corrected
by the pace the machine actually keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from laserd.gcode.estimate import estimate_file
from laserd.job_view import PACE_FULL_WEIGHT_S, _eta
from laserd.planner_settings import PlannerSettings

TIMING = Path(__file__).resolve().parents[1] / "data" / "timing"


@pytest.fixture(scope="module")
def raster():
    est = estimate_file(TIMING / "files" / "raster_f3000_0p1.gcode", PlannerSettings())
    return est, [[c[0], c[1]] for c in est.checkpoints]


def test_first_second_uses_the_model_not_the_progress_fraction(raster) -> None:
    est, table = raster
    # after one second on pace the model knows which lines are done: 1 s of 195 s
    acked = next(line for line, t in table if t >= 1.0)
    eta = _eta(1.0, acked / est.lines, est.total_s, lines=(acked, est.lines), checkpoints=table)
    assert eta == pytest.approx(est.total_s - 1.0, abs=0.5)
    # the old progress-fraction rule would have said total × (1 - fraction), far off when the
    # first lines are short and fast (the raster's first row starts with a rapid)
    assert eta is not None and eta > 0


def test_model_remaining_at_half_way(raster) -> None:
    est, table = raster
    half = est.lines // 2
    model_done = est.elapsed_at(half)
    eta = _eta(model_done, 0.5, est.total_s, lines=(half, est.lines), checkpoints=table)
    assert eta == pytest.approx(est.total_s - model_done, abs=0.2)


def test_observed_pace_corrects_the_model(raster) -> None:
    est, table = raster
    acked = est.lines // 2
    model_done = est.elapsed_at(acked)
    assert model_done > PACE_FULL_WEIGHT_S
    slow = _eta(model_done * 1.2, 0.5, est.total_s, lines=(acked, est.lines), checkpoints=table)
    assert slow == pytest.approx((est.total_s - model_done) * 1.2, rel=0.01)
    # early on the pace is trusted less (a pause or a slow start should not swing the ETA)
    early = next(line for line, t in table if t >= 3.0)
    done3 = est.elapsed_at(early)
    eta = _eta(done3 * 2, 0.02, est.total_s, lines=(early, est.lines), checkpoints=table)
    assert (est.total_s - done3) < eta < (est.total_s - done3) * 1.2


def test_without_a_table_the_old_rule_applies() -> None:
    assert _eta(10.0, 0.5, 100.0) == pytest.approx(10.0)
    assert _eta(1.0, 0.01, 100.0) == pytest.approx(99.0)
    assert _eta(1.0, 0.01, None) is None


def test_time_spent_paused_does_not_count_as_slow_pace(raster, monkeypatch) -> None:
    from laserd import job_view as jobs

    est, table = raster
    acked = est.lines // 2
    model_done = est.elapsed_at(acked)
    clock = [1000.0]
    monkeypatch.setattr(jobs.time, "monotonic", lambda: clock[0])
    active = jobs.ActiveJob(row={"id": 1}, path="x", estimated_s=est.total_s,
                            air_assist=False, checkpoints=table)  # fmt: skip
    active.mark_paused()
    clock[0] += 600.0  # ten minutes paused (lid open)
    active.mark_resumed()
    elapsed = model_done + 600.0  # on pace while running
    assert active.running_s(elapsed) == pytest.approx(model_done)
    eta = _eta(active.running_s(elapsed), 0.5, est.total_s, lines=(acked, est.lines),
               checkpoints=table)  # fmt: skip
    assert eta == pytest.approx(est.total_s - model_done, abs=0.2)
    # while paused, the pause so far is left out too
    active.mark_paused()
    clock[0] += 30.0
    assert active.running_s(elapsed + 30.0) == pytest.approx(model_done)
