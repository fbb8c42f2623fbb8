"""Benchmark: laserd's character-counting streamer (GrblLink) against the simulated GRBL.

Usage::

    .venv/bin/python tests/bench/bench_stream.py [--lines 10000] [--baud 115200]
        [--time-scale 100] [--latency-ms 1.0] [--baseline-lines 3000] [--in-process]

The simulator runs in a child process (``--serve-sim`` mode of this script) so that this
process's CPU time is the link's alone and the two do not share a GIL; ``--in-process`` runs
it in a thread instead, as ``laserd serve`` with ``simulate = true`` does. The raster-like
file of ``tests/bench/rasterlines.py`` is written to a temp file and streamed from disk in
chunks through :func:`laserd.grbl.link.iter_file_lines`, with status polling on (5 Hz idle,
10 Hz streaming). The same lines (the first ``--baseline-lines`` of them) are then sent by
the send-and-wait baseline of ``tests/bench/bench_sender_baseline.py`` on the same simulator.

Prints one JSON object: payload bytes/s and its share of the link (baud/10 bytes/s), total
seconds, CPU seconds of this process per 10,000 lines (``time.process_time``), the ratio of
the baseline's time per line to laserd's, status reports received, and the simulator's
record (receive-buffer overflows must be 0). Exit status 1 when a line was lost or the buffer
overflowed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import serial

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from laserd.events import EventHub
from laserd.grbl.controller import ControllerChanged
from laserd.grbl.link import GrblLink, iter_file_lines
from laserd.grbl.sim import SimulatedGrbl
from tests.bench.bench_sender_baseline import send_and_wait
from tests.bench.rasterlines import payload_bytes, raster_lines, write_raster_file


def _record(sim: SimulatedGrbl) -> dict[str, Any]:
    r = sim.record
    return {
        "lines_executed": r.lines_executed,
        "rx_overflows": r.rx_overflows,
        "faults": r.faults[:5],
        "bytes_in": r.bytes_in,
        "bytes_out": r.bytes_out,
        "planner_starved_s": round(r.planner_starved_s, 3),
        "starvations": r.starvations,
        "position_mm": r.position_mm,
    }


def serve_sim(args: argparse.Namespace) -> int:
    """Child mode: run a simulator; commands on stdin (clear, record, quit), answers on stdout."""
    sim = SimulatedGrbl(time_scale=args.time_scale, baudrate=args.baud,
                        latency_s=args.latency_ms / 1000.0)
    print(sim.start(), flush=True)
    try:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "clear":
                sim.clear_record()
                print("{}", flush=True)
            elif cmd == "record":
                print(json.dumps(_record(sim)), flush=True)
            elif cmd == "quit":
                break
    finally:
        sim.stop()
    return 0


class SimHandle:
    """The simulator, in a child process or in this one, behind the same three calls."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._sim: SimulatedGrbl | None = None
        self._proc: subprocess.Popen[str] | None = None
        if args.in_process:
            self._sim = SimulatedGrbl(time_scale=args.time_scale, baudrate=args.baud,
                                      latency_s=args.latency_ms / 1000.0)
            self.port = self._sim.start()
        else:
            cmd = [sys.executable, __file__, "--serve-sim", "--baud", str(args.baud),
                   "--time-scale", str(args.time_scale), "--latency-ms", str(args.latency_ms)]
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True)
            assert self._proc.stdout is not None
            self.port = self._proc.stdout.readline().strip()

    def _ask(self, cmd: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(cmd + "\n")
        self._proc.stdin.flush()
        return json.loads(self._proc.stdout.readline())

    def clear(self) -> None:
        if self._sim is not None:
            self._sim.clear_record()
        else:
            self._ask("clear")

    def record(self) -> dict[str, Any]:
        return _record(self._sim) if self._sim is not None else self._ask("record")

    def stop(self) -> None:
        if self._sim is not None:
            self._sim.stop()
        elif self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.write("quit\n")
            self._proc.stdin.flush()
            self._proc.wait(10)


async def stream_with_link(port: str, path: Path, sim: SimHandle,
                           args: argparse.Namespace) -> dict[str, Any]:
    hub = EventHub()
    statuses = 0

    def count(event: Any) -> None:
        nonlocal statuses
        statuses += 1

    hub.on(ControllerChanged, count)
    link = GrblLink(port, args.baud, hub=hub, banner_timeout_s=0.5)
    await link.start()
    await link.connect()
    try:
        sim.clear()
        statuses = 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        progress = await link.stream(iter_file_lines(path))
        seconds = time.perf_counter() - wall0
        cpu_s = time.process_time() - cpu0
        record = sim.record()
    finally:
        await link.close()
    return {"progress": progress, "seconds": seconds, "cpu_s": cpu_s,
            "status_events": statuses, "record": record}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--baseline-lines", type=int, default=3000)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--time-scale", type=float, default=100.0)
    parser.add_argument("--latency-ms", type=float, default=1.0,
                        help="USB-serial adapter latency, each direction (simulated)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the simulator in a thread of this process")
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        return serve_sim(args)

    link_bytes_per_s = args.baud / 10
    sim = SimHandle(args)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "raster.gcode"
            payload = write_raster_file(path, args.lines)
            run = asyncio.run(stream_with_link(sim.port, path, sim, args))
        base_lines = raster_lines(args.baseline_lines)
        with serial.Serial(sim.port, args.baud, timeout=10) as port:
            send_and_wait(port, ["$I"])
            sim.clear()
            t0 = time.perf_counter()
            send_and_wait(port, base_lines)
            base_s = time.perf_counter() - t0
        base_record = sim.record()
    finally:
        sim.stop()

    progress = run["progress"]
    seconds = run["seconds"]
    laserd_s_per_line = seconds / args.lines
    base_s_per_line = base_s / len(base_lines)
    record = run["record"]
    result = {
        "bench": "stream",
        "lines": args.lines,
        "lines_acked": progress.lines_acked,
        "payload_bytes": payload,
        "seconds": round(seconds, 3),
        "payload_bytes_per_s": round(payload / seconds, 1),
        "link_bytes_per_s": link_bytes_per_s,
        "link_share": round(payload / seconds / link_bytes_per_s, 4),
        "cpu_s_per_10k_lines": round(run["cpu_s"] / args.lines * 10_000, 3),
        "status_events": run["status_events"],
        "status_hz": round(run["status_events"] / seconds, 1),
        "baseline": {
            "lines": len(base_lines),
            "seconds": round(base_s, 3),
            "payload_bytes_per_s": round(payload_bytes(base_lines) / base_s, 1),
            "rx_overflows": base_record["rx_overflows"],
        },
        "speedup_vs_send_and_wait": round(base_s_per_line / laserd_s_per_line, 2),
        "sim": record,
        "sim_in_process": args.in_process,
        "baud": args.baud,
        "time_scale": args.time_scale,
        "latency_ms_each_way": args.latency_ms,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    ok = (progress.lines_acked == args.lines and record["rx_overflows"] == 0
          and record["lines_executed"] == args.lines)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
