"""The processing workers keep freed memory instead of faulting it back in page by page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from laserd import allocator

REPO = Path(__file__).resolve().parents[2]

# Allocate and free arrays of the analysis's size (a few hundred KiB) the way its passes do,
# and count the page faults of the last rounds.
_WORK = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from laserd.allocator import keep_freed_memory
    assert keep_freed_memory()
def rounds(n):
    for _ in range(n):
        arrays = [np.ones(40_000) for _ in range(8)]
        del arrays
rounds(3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(50)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _WORK, mode], cwd=REPO, check=True, capture_output=True, text=True
    )
    return int(out.stdout)


def test_freed_arrays_are_reused_without_page_faults() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    assert default > 50 * 8 * 40  # glibc's defaults: every round faults its pages in again
    assert tuned < default / 20


def test_workers_set_it_up_and_give_memory_back_after_each_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from laserd.library import worker

    calls: list[str] = []
    monkeypatch.setattr(worker, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(worker, "release_freed_memory", lambda: calls.append("release"))
    monkeypatch.setattr(worker.os, "nice", lambda n: 0)  # not this test process
    monkeypatch.setattr(worker, "_progress_queue", None)
    worker.init_worker(None)
    assert calls == ["keep"]
    gone = worker.EstimateRequest(file_id=1, gcode=str(tmp_path / "gone.gcode"), planner={})
    assert worker.run_estimate(gone) is None
    assert calls == ["keep", "release"]
    allocator.release_freed_memory()  # the real one: harmless at any time
