"""Benchmark: a simple send-one-line-and-wait-for-ok sender against the simulated GRBL.

Usage::

    .venv/bin/python tests/bench/bench_sender_baseline.py [--lines 3000] [--baud 115200]
        [--time-scale 100] [--mode wait|counting] [--latency-ms 1.0]

The simulator runs in this process (its own thread, paced at baud/10 bytes per second in
both directions) on a pty; the sender is pyserial on the pty's stable symlink, as a naive
host program would be. Lines come from ``tests/bench/rasterlines.py`` (the same file the
link benchmark streams), so ``laserd``'s character-counting streamer can be compared to it.

``--mode wait`` (default) is the baseline: write a line, read until its ``ok``, repeat.
``--mode counting`` is a minimal synchronous character-counting sender (keep up to the
receive buffer's 128 bytes in flight): the simulator's own ceiling, for reference.

The simulator paces both directions at baud/10 bytes/s and adds ``--latency-ms`` each way
(a USB-serial adapter's frame latency; 0 gives an ideal wire, where the ratio of the two
senders can be no more than about (line + 4 bytes of ``ok\r\n``) / line).
Motion is sped up (``--time-scale``) so the planner never limits: the figure is the link's.
Prints one JSON object: lines, seconds, payload_bytes_per_s, link_share (of baud/10), and the
simulator's record (overflows must be 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path

import serial

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from laserd.grbl.sim import SimulatedGrbl
from tests.bench.rasterlines import payload_bytes, raster_lines

RX_BUFFER_BYTES = 128


def _read_reply(port: serial.Serial, pending: bytearray) -> str:
    """The next ``ok``/``error:N`` (other lines such as the banner are skipped)."""
    while True:
        idx = pending.find(b"\n")
        if idx >= 0:
            line = pending[:idx].decode("ascii", "replace").strip()
            del pending[: idx + 1]
            if line == "ok" or line.startswith("error:"):
                return line
            continue
        chunk = port.read(max(1, port.in_waiting))
        if not chunk:
            raise TimeoutError("no reply from the controller")
        pending += chunk


def send_and_wait(port: serial.Serial, lines: list[str]) -> None:
    pending = bytearray()
    for line in lines:
        port.write(line.encode() + b"\n")
        reply = _read_reply(port, pending)
        if reply != "ok":
            raise RuntimeError(f"{line!r} answered {reply}")


def send_counting(port: serial.Serial, lines: list[str]) -> None:
    pending = bytearray()
    in_flight: deque[int] = deque()
    used = 0
    next_line = 0
    while next_line < len(lines) or in_flight:
        while next_line < len(lines):
            data = lines[next_line].encode() + b"\n"
            if used + len(data) > RX_BUFFER_BYTES:
                break
            port.write(data)
            in_flight.append(len(data))
            used += len(data)
            next_line += 1
        reply = _read_reply(port, pending)
        if reply != "ok":
            raise RuntimeError(f"line {next_line - len(in_flight) + 1} answered {reply}")
        used -= in_flight.popleft()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=3000)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--time-scale", type=float, default=100.0)
    parser.add_argument("--mode", choices=("wait", "counting"), default="wait")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=1.0,
        help="USB-serial adapter latency, each direction (simulated)",
    )
    args = parser.parse_args()

    lines = raster_lines(args.lines)
    sim = SimulatedGrbl(
        time_scale=args.time_scale, baudrate=args.baud, latency_s=args.latency_ms / 1000.0
    )
    path = sim.start()
    try:
        with serial.Serial(path, args.baud, timeout=10) as port:
            send_and_wait(port, ["$I"])  # in sync with the board before the clock starts
            sim.clear_record()
            started = time.perf_counter()
            (send_and_wait if args.mode == "wait" else send_counting)(port, lines)
            seconds = time.perf_counter() - started
        record = sim.record
        payload = payload_bytes(lines)
        result = {
            "bench": "sender_baseline",
            "mode": args.mode,
            "lines": len(lines),
            "payload_bytes": payload,
            "seconds": round(seconds, 3),
            "payload_bytes_per_s": round(payload / seconds, 1),
            "link_bytes_per_s": args.baud / 10,
            "link_share": round(payload / seconds / (args.baud / 10), 4),
            "baud": args.baud,
            "time_scale": args.time_scale,
            "latency_ms_each_way": args.latency_ms,
            "sim": {
                "lines_executed": record.lines_executed,
                "rx_overflows": record.rx_overflows,
                "bytes_in": record.bytes_in,
                "bytes_out": record.bytes_out,
            },
        }
    finally:
        sim.stop()
    print(json.dumps(result))
    return 0 if record.rx_overflows == 0 and record.lines_executed == len(lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
