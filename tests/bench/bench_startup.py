"""Time from `laserd serve` start to the first /health answer, and idle RSS; median of 5.

Run: .venv/bin/python tests/bench/bench_startup.py [--simulate]
Prints JSON. Each run uses a fresh state folder (so migrations run, as on a first boot).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def one_run(simulate: bool) -> tuple[float, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LASERD_")}
        env.update(
            LASERD_CONFIG=os.path.join(state, "none.toml"),
            LASERD_STORAGE__STATE_DIR=state,
            LASERD_SERVER__PORT=str(port),
            LASERD_SERVER__HOST="127.0.0.1",
            LASERD_MACHINE__SIMULATE="true" if simulate else "false",
            LASERD_MACHINE__AUTOCONNECT="true" if simulate else "false",
        )
        if not simulate:
            env["GPIOZERO_PIN_FACTORY"] = "mock"  # no GPIO on a build machine
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "laserd", "serve"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                    break
                except OSError:
                    if time.perf_counter() - started > 30:
                        raise RuntimeError("no answer in 30 s") from None
                    time.sleep(0.005)
            to_health = time.perf_counter() - started
            time.sleep(3)  # settle: idle
            rss = rss_kb(proc.pid) / 1024
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    return to_health, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--simulate", action="store_true", help="with the simulated controller")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    runs = [one_run(args.simulate) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "runs": args.runs,
                "simulate": args.simulate,
                "start_to_health_s_median": round(statistics.median(r[0] for r in runs), 3),
                "start_to_health_s_all": [round(r[0], 3) for r in runs],
                "idle_rss_mb_median": round(statistics.median(r[1] for r in runs), 1),
                "idle_rss_mb_all": [round(r[1], 1) for r in runs],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
