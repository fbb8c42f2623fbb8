"""Crash recovery over repeated ``kill -9`` mid-job, and SIGTERM-to-exit mid-job.

Run: ``.venv/bin/python tests/bench/bench_crash_recovery.py [--cycles 20] [--sigterm-runs 5]``
— prints JSON. One state folder for all cycles (the database grows across crashes, as on a
real appliance). Each cycle: start ``laserd serve`` (simulated GRBL), wait for READY=1, start a
long job, wait until it runs, ``kill -9``; the next start must mark that job ``interrupted``,
pass ``PRAGMA integrity_check``, keep the upload byte-identical, and start nothing by itself.
Then ``--sigterm-runs`` times: a job running, SIGTERM, time to exit, job ``cancelled``/``shutdown``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.daemon.harness import (
    Daemon,
    create_admin,
    login,
    long_gcode,
    ready_file,
    start_job,
    wait_machine_idle,
)


def _stored_hashes(d: Daemon) -> set[str]:
    return {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (d.state_dir / "uploads").rglob("*")
        if p.is_file()
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--sigterm-runs", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(7)
    out: dict = {"cycles": args.cycles}
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(Path(tmp) / "d")
        d.workdir.mkdir(parents=True)
        d.write_config()
        create_admin(d)
        try:
            d.start()
            d.wait_ready(timeout_s=120)
            token = login(d)
            wait_machine_idle(d, token)
            content = long_gcode()
            digest = hashlib.sha256(content).hexdigest()
            file = ready_file(d, token, "long.gcode", content)

            interrupted = integrity_ok = uploads_ok = idle_after = 0
            ready_s: list[float] = []
            for _ in range(args.cycles):
                job = start_job(d, token, file["id"])
                time.sleep(rng.uniform(0.0, 1.5))  # crash at a different point each time
                d.kill()
                d.start()
                ready = d.wait_ready(timeout_s=120)
                ready_s.append(ready.at - d.started_at)
                token = login(d)
                state = d.db_query("SELECT state FROM jobs WHERE id = ?", job["id"])[0][0]
                interrupted += state == "interrupted"
                integrity_ok += d.db_query("PRAGMA integrity_check") == [("ok",)]
                uploads_ok += digest in _stored_hashes(d)
                machine = wait_machine_idle(d, token)
                idle_after += machine.get("job") is None
            out.update(
                jobs_interrupted=interrupted,
                integrity_checks_passed=integrity_ok,
                uploads_intact=uploads_ok,
                idle_with_no_job_after_restart=idle_after,
                restart_to_ready_s_median=round(statistics.median(ready_s), 3),
            )

            stop_s: list[float] = []
            cancelled = 0
            for _ in range(args.sigterm_runs):
                job = start_job(d, token, file["id"])
                time.sleep(0.5)
                t0 = time.monotonic()
                code = d.stop(timeout_s=60)
                stop_s.append(time.monotonic() - t0)
                assert code == 0, d.log_tail()
                row = d.db_query("SELECT state, error FROM jobs WHERE id = ?", job["id"])[0]
                cancelled += tuple(row) == ("cancelled", "shutdown")
                d.start()
                d.wait_ready(timeout_s=120)
                token = login(d)
                wait_machine_idle(d, token)
            if stop_s:
                out.update(
                    sigterm_runs=args.sigterm_runs,
                    sigterm_mid_job_to_exit_s={
                        "median": round(statistics.median(stop_s), 3),
                        "max": round(max(stop_s), 3),
                    },
                    sigterm_jobs_cancelled_shutdown=cancelled,
                )
            d.stop()
        finally:
            d.close()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
