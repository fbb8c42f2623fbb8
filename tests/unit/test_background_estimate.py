"""The planner runs on its own thread beside the reader: same numbers, and it never outlives
the analysis (a refusal, an abandoned upload, a failure inside the planner)."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np
import pytest

from laserd.gcode import GcodeError, analyse_gcode
from laserd.gcode import estimate as estimate_module
from laserd.gcode.estimate import BackgroundEstimator, estimate_file, feed_chunk
from laserd.gcode.planner import Estimator, PlannerSettings
from laserd.gcode.program import BLOCK_BYTES, ProgramReader


def _estimate_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "gcode-estimate"]


def _raster(path: Path, blocks: int) -> Path:
    """A raster-like file of several read blocks (so several chunks cross the queue)."""
    path.write_text(_raster_text(blocks))
    return path


@functools.cache
def _raster_text(blocks: int) -> str:
    rng = np.random.default_rng(3)
    rows = ["G21G90", "M4", "G0X10Y10", "G1X10S0F3000"]
    y = 10.0
    while sum(len(r) + 1 for r in rows) < blocks * BLOCK_BYTES:
        xs = np.round(10 + np.cumsum(rng.uniform(0.1, 1.5, size=200)), 1)
        if len(rows) % 2:
            xs = xs[::-1]
        rows += [f"X{x:g}S{s}" for x, s in zip(xs, rng.integers(0, 1000, size=200), strict=True)]
        y += 0.1
        rows.append(f"G0Y{y:.1f}")
    rows.append("M5")
    return "\n".join(rows) + "\n"


def _sequential(path: Path, settings: PlannerSettings) -> tuple[float, list]:
    est = Estimator(settings)
    for chunk in ProgramReader(path).chunks():
        feed_chunk(est, chunk)
    done = est.finish()
    return done.total_s, done.checkpoints


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("settings", [PlannerSettings(), PlannerSettings(baudrate=9600)])
def test_the_threaded_estimate_equals_the_sequential_one(
    tmp_path: Path, settings: PlannerSettings, cores: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two cores or more: the planner on its thread; one: in line. The same numbers."""
    monkeypatch.setattr(estimate_module, "_cores", lambda: cores)
    started = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    src = _raster(tmp_path / "r.gcode", blocks=4)
    report = analyse_gcode(
        src, tmp_path / "out.gcode", bed_mm=(400, 400), max_power_s=1000, planner=settings
    )
    total, checkpoints = _sequential(src, settings)
    assert report.stats["estimated_s"] == round(total, 2)
    assert report.stats["estimate_checkpoints"] == [[n, t] for n, t in checkpoints]
    again = estimate_file(src, settings)
    assert (again.total_s, again.checkpoints) == (total, checkpoints)
    assert started.count("gcode-estimate") == (2 if cores > 1 else 0)
    assert not _estimate_threads()


def test_a_refused_file_leaves_no_thread_and_no_output(tmp_path: Path) -> None:
    src = _raster(tmp_path / "r.gcode", blocks=3)
    with src.open("a") as fh:
        fh.write("G1X5Q7\n")  # refused at the very end, after every chunk was queued
    out = tmp_path / "out.gcode"
    with pytest.raises(GcodeError):
        analyse_gcode(src, out, bed_mm=(400, 400), max_power_s=1000)
    assert not out.exists()
    assert not _estimate_threads()


def test_an_abandoned_analysis_stops_the_planner_thread(tmp_path: Path) -> None:
    src = _raster(tmp_path / "r.gcode", blocks=6)
    calls = []

    class Abandoned(Exception):
        pass

    def progress(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 2:
            raise Abandoned

    out = tmp_path / "out.gcode"
    with pytest.raises(Abandoned):
        analyse_gcode(src, out, bed_mm=(400, 400), max_power_s=1000, progress=progress)
    assert not out.exists()
    assert not _estimate_threads()


def test_a_failure_inside_the_planner_reaches_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _raster(tmp_path / "r.gcode", blocks=3)
    fed = []

    def failing(est: Estimator, chunk: object) -> None:
        fed.append(chunk)
        raise MemoryError("planner out of memory")

    monkeypatch.setattr(estimate_module, "feed_chunk", failing)
    out = tmp_path / "out.gcode"
    with pytest.raises(MemoryError, match="planner out of memory"):
        analyse_gcode(src, out, bed_mm=(400, 400), max_power_s=1000)
    assert not out.exists()
    assert len(fed) == 1  # the chunks after the failure were dropped, not planned
    assert not _estimate_threads()


def test_the_queue_between_reader_and_planner_is_bounded() -> None:
    """Constant memory: the reader waits while ``depth`` chunks are queued."""
    release = threading.Event()
    started = threading.Event()

    class Slow(Estimator):
        def add(self, *args: object, **kw: object) -> None:
            started.set()
            release.wait(5)

    bg = BackgroundEstimator(Slow(), depth=2, threaded=True)
    empty = _EmptyChunk()
    bg.feed(empty)  # taken by the thread, which then blocks in add()
    assert started.wait(5)
    bg.feed(empty)
    bg.feed(empty)  # two queued: the queue is full now
    third = threading.Thread(target=bg.feed, args=(empty,))
    third.start()
    third.join(0.2)
    assert third.is_alive()  # the producer waits
    release.set()
    third.join(5)
    assert not third.is_alive()
    bg.finish()
    assert not _estimate_threads()


class _EmptyChunk:
    """The least a chunk needs for feed_chunk: no lines, no moves."""

    def __init__(self) -> None:
        from laserd.gcode.segments import Segments

        self.segments = Segments.empty()
        self.line_bytes = np.ones(1, dtype=np.int64)
        self.sync_lines = np.zeros(0, dtype=np.int64)
        self.sync_dwell = np.zeros(0)
        self.s_lines = np.zeros(0, dtype=np.int64)


def test_statistics_and_estimate_are_the_same_on_one_core_or_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _raster(tmp_path / "r.gcode", blocks=3)
    reports = []
    for cores in (1, 2):
        monkeypatch.setattr(estimate_module, "_cores", lambda cores=cores: cores)
        out = tmp_path / f"out{cores}.gcode"
        reports.append(analyse_gcode(src, out, bed_mm=(400, 400), max_power_s=1000))
    assert reports[0].stats == reports[1].stats
    assert reports[0].warnings == reports[1].warnings
    assert (tmp_path / "out1.gcode").read_bytes() == (tmp_path / "out2.gcode").read_bytes()
