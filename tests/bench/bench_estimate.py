"""Benchmark: laserd's time estimates (the GRBL 1.1 planner model) against the real firmware.

Usage::

    .venv/bin/python tests/bench/bench_estimate.py [--simulator [FILE ...]]

For every ground-truth file in ``tests/data/timing`` (real GRBL 1.1h times, see its README)
prints the model's estimate, the real time, the error, distance over feed (``naive_s``) and
its error, and the time the estimate took; then the worst and the mean absolute error.
``--simulator`` also streams the named files (default: the small ``st*`` ones) through
laserd's link to the simulated controller at real speed (time scale 1, the file's ``$``
settings) and prints how long each took there: the simulator follows the same physics.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def _on_simulator(name: str, result: dict[str, Any]) -> dict[str, Any]:
    from laserd.events import EventHub
    from laserd.grbl.link import GrblLink, iter_file_lines
    from laserd.grbl.protocol import MachineState
    from laserd.grbl.simulator import SimulatedGrbl

    settings = {int(k): float(v) for k, v in result["settings"].items()}
    sim = SimulatedGrbl(time_scale=1.0, settings=settings)
    port = sim.start()
    link = GrblLink(port, 115200, hub=EventHub(), banner_timeout_s=0.5)
    try:
        await link.start()
        await link.connect()
        t0 = time.perf_counter()
        await link.stream(iter_file_lines(TIMING / "files" / name))
        await link.wait_for_status(
            lambda s: s.state == MachineState.IDLE, timeout_s=10 * result["real_s"] + 10
        )
        took = time.perf_counter() - t0
    finally:
        await link.close()
        sim.stop()
    return {
        "file": name,
        "simulator_s": round(took, 3),
        "real_s": result["real_s"],
        "error_pct": round(100 * (took - result["real_s"]) / result["real_s"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simulator", nargs="*", default=None, metavar="FILE")
    args = parser.parse_args()
    out = model_figures()
    if args.simulator is not None:
        results = {r["file"]: r for r in json.loads((TIMING / "results.json").read_text())}
        names = args.simulator or sorted(n for n in results if n.startswith("st"))
        out["simulator"] = [asyncio.run(_on_simulator(n, results[n])) for n in names]
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
