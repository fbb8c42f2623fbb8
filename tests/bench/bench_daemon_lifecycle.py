"""Start to READY=1 and SIGTERM to exit of the real ``laserd serve`` (median of 5 each).

Run: ``.venv/bin/python tests/bench/bench_daemon_lifecycle.py [--runs 5]`` — prints JSON.
Each run is a fresh state folder (so migrations run) with the simulated controller and a
NOTIFY_SOCKET listener standing in for systemd; "ready" is the moment READY=1 arrives there.
A second start on the same folder (no migrations to run) is measured too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.daemon.harness import Daemon


def one_run(workdir: Path, config: dict) -> dict[str, float]:
    d = Daemon(workdir, config=config).start()
    try:
        ready = d.wait_ready(timeout_s=120)
        first_s = ready.at - d.started_at
        time.sleep(0.5)
        t0 = time.monotonic()
        code = d.stop(timeout_s=60)
        stop_s = time.monotonic() - t0
        assert code == 0, d.log_tail()
        d.start()  # same folder: schema already current
        again = d.wait_ready(timeout_s=120)
        warm_s = again.at - d.started_at
        d.stop(timeout_s=60)
    finally:
        d.close()
    return {
        "start_to_ready_s": first_s,
        "warm_start_to_ready_s": warm_s,
        "sigterm_to_exit_s": stop_s,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    config: dict = {}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            results.append(one_run(Path(tmp) / f"run{i}", config))
    out = {
        "runs": args.runs,
        "controller": "simulated GRBL on a pty, gpiozero mock pins",
    }
    for key in results[0]:
        values = [r[key] for r in results]
        out[key] = {
            "median": round(statistics.median(values), 3),
            "min": round(min(values), 3),
            "max": round(max(values), 3),
        }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
