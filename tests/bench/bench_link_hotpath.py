"""Benchmark: CPU per line of the link's hot path (pump, counting, acknowledgements, status).

Usage::

    .venv/bin/python tests/bench/bench_link_hotpath.py [--lines 50000] [--repeat 5] [--console]

No serial port and no simulator: the connection writes to ``/dev/null`` (its transport reports
an empty buffer, so every write is the direct ``os.write`` path) and ``ok`` answers (plus a
status report every 100 lines) are fed to the link's line handler as the port's reader would.
What is left is the Python work laserd does per streamed line, which load on a shared machine
barely moves (best of ``--repeat`` runs of ``time.process_time``), unlike bench_stream's
end-to-end figure. ``--console`` subscribes a console listener (``SerialLine``), as ``laserd
serve`` has one. Reaches into the link's parts (``_conn``, ``_ctl``) to stand in for the port.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from laserd.events import EventHub
from laserd.grbl.controller import SerialLine
from laserd.grbl.link import GrblLink
from laserd.grbl.protocol import MachineState

STATUS = "<Run|MPos:1.000,2.000,0.000|Bf:15,100|FS:1000,500|Ov:100,100,100>"


class _NullTransport:
    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass


async def _run(count: int, console: bool) -> float:
    hub = EventHub()
    hub.bind_loop(asyncio.get_running_loop())
    if console:
        hub.on(SerialLine, lambda event: None)
    link = GrblLink("none", hub=hub, autoconnect=False)
    fd = os.open(os.devnull, os.O_WRONLY)
    conn = link._conn
    conn.bind_loop()
    conn.fd, conn._transport, conn.gate_closed = fd, _NullTransport(), False
    link._ctl.state = MachineState.IDLE
    counter = link._sender.counter
    lines = [(i, f"G1X{i % 100}.{i % 7}Y{i % 53}S{i % 1000}") for i in range(1, count + 1)]
    done = False

    async def answer() -> None:
        answered = 0
        while not done:
            for _ in range(len(counter)):
                link._on_line("ok")
                answered += 1
                if answered % 100 == 0:
                    link._on_line(STATUS)
            await asyncio.sleep(0)

    task = asyncio.create_task(answer())
    cpu0 = time.process_time()
    progress = await link.stream(lines)
    cpu_s = time.process_time() - cpu0
    done = True
    await task
    os.close(fd)
    assert progress.lines_acked == count, progress
    return cpu_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--console", action="store_true")
    args = parser.parse_args()
    runs = [asyncio.run(_run(args.lines, args.console)) for _ in range(args.repeat)]
    out: dict[str, Any] = {
        "bench": "link_hotpath",
        "lines": args.lines,
        "console_listener": args.console,
        "us_per_line_best": round(min(runs) / args.lines * 1e6, 3),
        "us_per_line_runs": [round(r / args.lines * 1e6, 3) for r in runs],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
