"""Daemon memory: idle, during a 100 MB job, after 1,000 API requests and 100 uploads, settled.

Usage::

    .venv/bin/python tests/bench/bench_memory.py [--job-mb 100] [--run-s 20] [--requests 1000]
        [--uploads 100] [--rounds 2] [--settle-s 30] [--time-scale 1000]

Runs ``laserd serve`` as a child on 127.0.0.1 (simulated GRBL in-process) and reads the RSS of
the daemon process (``VmRSS`` of /proc) and, separately, of its children (the processing
forkserver and worker). Phases:

1. idle: READY, controller connected, a few seconds of nothing;
2. a generated ``--job-mb`` MB G-code file, uploaded (streamed), processed, then run for
   ``--run-s`` seconds at ``--time-scale`` (peak RSS sampled every 0.25 s in each step), cancelled;
3. ``--rounds`` rounds of ``--requests`` API requests (reads, writes, logins) and ``--uploads``
   small uploads that are processed; RSS after each round and after ``--settle-s`` of quiet.

Growth that does not come back shows as a rise from round to round; a one-off rise (caches,
allocator arenas, the job's peak) shows as a step after round 1 that round 2 does not repeat.
Prints JSON; everything it starts it stops.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.daemon.harness import (
    ADMIN,
    Daemon,
    create_admin,
    login,
    wait_machine_idle,
)

BOUNDARY = "laserd-memory-bench"


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (processing forkserver and workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def children_rss_kb(pid: int) -> int:
    total = 0
    for child in descendants(pid):
        try:
            total += rss_kb(child)
        except OSError:
            pass
    return total


class Sampler:
    """Peak RSS of the daemon and its children while a step runs (a thread, every 0.25 s)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self.children_peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, rss_kb(self.pid))
            self.children_peak_kb = max(self.children_peak_kb, children_rss_kb(self.pid))
            self._stop.wait(0.25)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict[str, float]:
        return {
            "peak_rss_mb": round(self.peak_kb / 1024, 1),
            "children_peak_rss_mb": round(self.children_peak_kb / 1024, 1),
        }


def snapshot(d: Daemon) -> dict[str, float]:
    assert d.proc is not None
    return {
        "rss_mb": round(rss_kb(d.proc.pid) / 1024, 1),
        "children_rss_mb": round(children_rss_kb(d.proc.pid) / 1024, 1),
    }


# --------------------------------------------------------------------------- uploads


def gcode_chunks(target_bytes: int) -> Iterator[bytes]:
    """A raster-like G-code program of about ``target_bytes``, in 1 MB pieces."""
    yield b"G21\nG90\nM4 S0\nG1 F6000\n"
    sent, row = 0, 0
    while sent < target_bytes:
        lines = []
        for _ in range(2000):
            y = (row % 3000) * 0.1
            lines += [f"G0 X0 Y{y:.1f}", *(f"G1 X{c * 0.5:.1f} S{(row * 7 + c) % 1000}"
                                           for c in range(1, 30))]  # fmt: skip
            row += 1
        piece = ("\n".join(lines) + "\n").encode()
        sent += len(piece)
        yield piece
    yield b"M5\nG0 X0 Y0\n"


def upload_stream(
    d: Daemon, token: str, project_id: int, name: str, chunks: Iterable[bytes]
) -> dict:
    """A multipart upload sent as it is produced (the bench never holds 100 MB at once)."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=600)
    try:
        conn.putrequest("POST", f"/api/v1/projects/{project_id}/files")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for piece in [head, *chunks, tail]:
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        if resp.status != 201:
            raise RuntimeError(f"upload: {resp.status} {body}")
        return body
    finally:
        conn.close()


def wait_processed(d: Daemon, token: str, file_id: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status, f = d.request("GET", f"/api/v1/files/{file_id}", token=token)
        if status == 200 and f["status"] in ("ready", "failed"):
            return f
        if time.monotonic() > deadline:
            raise RuntimeError(f"file {file_id} not processed: {f}")
        time.sleep(0.25)


# --------------------------------------------------------------------------- phases


def big_job(d: Daemon, token: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    status, project = d.request("POST", "/api/v1/projects", {"name": "big"}, token)
    assert status == 201, project
    with Sampler(d.proc.pid) as s:  # type: ignore[union-attr]
        t0 = time.monotonic()
        big = gcode_chunks(int(args.job_mb * 1_000_000))
        f = upload_stream(d, token, project["id"], "big.gcode", big)
        out["upload_s"] = round(time.monotonic() - t0, 1)
    out["upload"] = s.figures() | {"bytes": f["size"]}
    with Sampler(d.proc.pid) as s:  # type: ignore[union-attr]
        t0 = time.monotonic()
        f = wait_processed(d, token, f["id"], 1800)
        out["processing_s"] = round(time.monotonic() - t0, 1)
    if f["status"] != "ready":
        raise RuntimeError(f"the big file failed: {f}")
    out["processing"] = s.figures() | {"lines": f["stats"]["lines"]}
    with Sampler(d.proc.pid) as s:  # type: ignore[union-attr]
        status, job = d.request("POST", "/api/v1/jobs", {"file_id": f["id"]}, token)
        assert status == 201, job
        time.sleep(args.run_s)
        status, job = d.request("GET", f"/api/v1/jobs/{job['id']}", token=token)
        d.request("POST", f"/api/v1/jobs/{job['id']}/cancel", token=token, timeout_s=60)
    out["job"] = s.figures() | {"state": job["state"], "lines_acked": job["lines_acked"]}
    wait_machine_idle(d, token)
    return out


def api_round(d: Daemon, token: str, args: argparse.Namespace, rng: random.Random) -> dict:
    """``--requests`` mixed API calls and ``--uploads`` small uploads (processed)."""
    status, project = d.request("POST", "/api/v1/projects", {"name": "round"}, token)
    assert status == 201, project
    small = list(gcode_chunks(40_000))
    statuses: dict[str, int] = {}
    t0 = time.monotonic()
    file_ids = []
    for _ in range(args.uploads):
        f = upload_stream(d, token, project["id"], "small.gcode", small)
        file_ids.append(f["id"])
    for file_id in file_ids:
        wait_processed(d, token, file_id, 300)
    calls = [
        ("GET", "/api/v1/machine", None),
        ("GET", "/api/v1/projects", None),
        ("GET", f"/api/v1/projects/{project['id']}", None),
        ("GET", "/api/v1/jobs", None),
        ("GET", "/api/v1/health", None),
        ("POST", "/api/v1/projects", {"name": "x"}),
        ("GET", "/api/v1/files/999999", None),
    ]
    for i in range(args.requests):
        if i % 50 == 0:
            status, _ = d.request("POST", "/api/v1/auth/login", dict(_creds()))
        elif file_ids and i % 10 == 1:
            status, _ = d.request("GET", f"/api/v1/files/{rng.choice(file_ids)}", token=token)
        else:
            method, path, body = rng.choice(calls)
            status, _ = d.request(method, path, body, token=token)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {"seconds": round(time.monotonic() - t0, 1), "statuses": statuses}


def _creds() -> dict[str, str]:
    return {"username": ADMIN["username"], "password": ADMIN["password"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--job-mb", type=float, default=100.0)
    ap.add_argument("--run-s", type=float, default=20.0)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--uploads", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--settle-s", type=float, default=30.0)
    ap.add_argument("--time-scale", type=float, default=1000.0)
    ap.add_argument(
        "--heap",
        action="store_true",
        help="trace Python allocations from the end of round 1 and list what grew (slow)",
    )
    args = ap.parse_args()
    rng = random.Random(9)
    out: dict[str, Any] = {"args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(
            Path(tmp) / "d",
            config={
                "simulator": {"time_scale": args.time_scale},
                "server": {"log_level": "warning"},
                "storage": {"max_upload_mb": max(100, int(args.job_mb) + 10)},
                "auth": {"login_ip_max_failures": 10_000},
            },
        )
        d.workdir.mkdir(parents=True)
        d.write_config()
        create_admin(d)
        try:
            d.start()
            d.wait_ready(timeout_s=120)
            token = login(d)
            wait_machine_idle(d, token)
            time.sleep(5)
            out["idle"] = snapshot(d)
            if args.job_mb > 0:
                out["big_job"] = big_job(d, token, args)
                time.sleep(5)
                out["after_big_job"] = snapshot(d)
            rounds = []
            for n in range(args.rounds):
                token = login(d)
                r = api_round(d, token, args, rng)
                r["after"] = snapshot(d)
                time.sleep(args.settle_s)
                r["settled"] = snapshot(d)
                rounds.append(r)
                if args.heap and n == 0:
                    d.request("POST", "/api/v1/debug/heap", {"frames": 1}, token, timeout_s=120)
            out["rounds"] = rounds
            if args.heap:
                _, heap = d.request("GET", "/api/v1/debug/heap", token=token, timeout_s=120)
                out["python_heap_growth_after_round_1"] = heap
            if len(rounds) >= 2:
                out["growth_round_to_round_mb"] = round(
                    rounds[-1]["settled"]["rss_mb"] - rounds[-2]["settled"]["rss_mb"], 1
                )
            out["daemon_exit"] = d.stop()
        finally:
            d.close()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
