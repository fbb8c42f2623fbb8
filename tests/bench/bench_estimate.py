"""Benchmark: laserd's time estimates (the GRBL 1.1 planner model) against the real firmware.

Usage::

    .venv/bin/python tests/bench/bench_estimate.py [--simulator [FILE ...]]

For every ground-truth file in ``tests/data/timing`` (real GRBL 1.1h times, see its README)
prints the model's estimate, the real time, the error, distance over feed (``naive_s``) and
its error, and the time the estimate took; then the worst and the mean absolute error.
``--simulator`` also runs the named files (default: all) on laserd's simulated controller with
the file's ``$`` settings, on a hand-driven clock with the lines paced as a 115200-baud link
carries them, and prints the simulated time beside the firmware's own clock: the simulator
follows the same physics (a few minutes of wall time for all ten).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from laserd.gcode.estimate import estimate_file
from laserd.planner_settings import PlannerSettings

TIMING = Path(__file__).resolve().parents[1] / "data" / "timing"


def model_figures() -> dict[str, Any]:
    rows = []
    for r in json.loads((TIMING / "results.json").read_text()):
        settings = PlannerSettings.from_dollars(r["settings"])
        t0 = time.perf_counter()
        est = estimate_file(TIMING / "files" / r["file"], settings)
        took = time.perf_counter() - t0
        rows.append(
            {
                "file": r["file"],
                "estimate_s": round(est.total_s, 3),
                "real_s": r["real_s"],
                "error_pct": round(100 * (est.total_s - r["real_s"]) / r["real_s"], 2),
                "naive_s": r["naive_s"],
                "naive_error_pct": round(100 * (r["naive_s"] - r["real_s"]) / r["real_s"], 2),
                "link_only_s": round(est.link_bound_s, 3),
                "blocks": est.blocks,
                "estimate_took_s": round(took, 3),
            }
        )
    errors = [abs(r["error_pct"]) for r in rows]
    naive = [abs(r["naive_error_pct"]) for r in rows]
    return {
        "files": rows,
        "worst_error_pct": max(errors),
        "mean_abs_error_pct": round(sum(errors) / len(errors), 3),
        "naive_worst_error_pct": max(naive),
        "naive_mean_abs_error_pct": round(sum(naive) / len(naive), 3),
    }


def _on_simulator(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """The file on laserd's simulated controller, on a hand-driven clock, its lines arriving
    over a paced 115200-baud link under character counting (deterministic, not real time)."""
    from tests.streaming.test_sim_matches_model import stream_on_fake_clock

    settings = {int(k): float(v) for k, v in result["settings"].items()}
    lines = (TIMING / "files" / name).read_text().splitlines()
    t0 = time.perf_counter()
    seconds = stream_on_fake_clock(lines, settings, step_s=0.0005)
    firmware = result["firmware_clock_s"][0]
    return {
        "file": name,
        "simulator_s": round(seconds, 3),
        "firmware_clock_s": firmware,
        "error_pct": round(100 * (seconds - firmware) / firmware, 2),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simulator", nargs="*", default=None, metavar="FILE")
    args = parser.parse_args()
    out = model_figures()
    if args.simulator is not None:
        results = {r["file"]: r for r in json.loads((TIMING / "results.json").read_text())}
        names = args.simulator or sorted(results)
        out["simulator"] = [_on_simulator(n, results[n]) for n in names]
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
