"""Benchmark: interlock edge → real-time byte on the serial line, and → laser-enable drop.

Usage::

    .venv/bin/python tests/bench/bench_safety.py [--trips 1000] [--conditions idle,busy,stalled]

For each trip a thread drives the lid's mock pin to "open" (timestamp taken just before),
exactly as gpiozero's callback thread would deliver a real edge. Measured:

* ``byte_ms``: until the 0x84 arrives at the far end of the pty, written by the real
  ``GrblLink.realtime`` and stamped by the peer thread reading the controller side;
* ``output_ms``: until the laser-enable mock pin changes to "off" (stamped inside the pin).

Conditions:

* ``idle``: the link is connected and polling status; nothing else runs.
* ``busy``: the link streams an endless job to a peer that acknowledges each line after
  1 ms, while 50 HTTP clients poll ``GET /interlocks`` and ``GET /machine`` on an aiohttp
  server on the same loop, and 50 event-hub subscribers drain every event.
* ``stalled``: as idle, but the event loop is frozen for 100 ms (``time.sleep`` in a loop
  callback) and the edge arrives during the freeze.

Prints one JSON object. Not collected by pytest. On a real Pi add the kernel's GPIO interrupt
latency (tens of µs with the lgpio factory) to these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp
from aiohttp import web
from gpiozero.pins.mock import MockFactory, MockPin

from laserd.events import EventHub
from laserd.grbl.link import GrblLink
from laserd.safety import SafetySupervisor
from laserd.settings import SafetySettings
from tests.streaming.test_link_fake_peer import FakePeer

LID_PIN = 17
LASER_PIN = 27
SAFETY_DOOR = 0x84
STALL_S = 0.1
CLIENTS = 50


class TimedPin(MockPin):
    """A mock pin that stamps each change of state with ``perf_counter_ns``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changes: list[tuple[int, bool]] = []

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed:
            self.changes.append((time.perf_counter_ns(), bool(value)))
        return changed


class StampedBytes(list):
    """Replaces the peer's list of real-time bytes: stamps each one as the peer reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[int, int]] = []

    def append(self, byte: int) -> None:  # type: ignore[override]
        self.stamps.append((time.perf_counter_ns(), byte))
        super().append(byte)


def percentiles(values_ns: list[int]) -> dict[str, float]:
    ms = sorted(v / 1e6 for v in values_ns)
    if not ms:
        return {}

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]

    return {
        "p50": round(pct(50), 4),
        "p99": round(pct(99), 4),
        "max": round(ms[-1], 4),
        "mean": round(statistics.fmean(ms), 4),
    }


async def endless_job() -> Any:
    """An engraving-like job that never ends (the bench cancels the stream)."""
    n = 0
    while True:
        n += 1
        x = (n * 0.37) % 300
        y = (n * 0.11) % 300
        yield n, f"G1X{x:.3f}Y{y:.3f}S{(n * 7) % 1000}F3000"


async def serve_clients(sup: SafetySupervisor, link: GrblLink, stop: asyncio.Event) -> dict:
    """An aiohttp server on this loop and 50 clients polling it; returns request counts."""

    async def interlocks(_req: web.Request) -> web.Response:
        return web.json_response(sup.snapshot())

    async def machine(_req: web.Request) -> web.Response:
        return web.json_response({"connected": link.connected, "interlocks": sup.summary()})

    app = web.Application()
    app.router.add_get("/interlocks", interlocks)
    app.router.add_get("/machine", machine)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    counts = {"requests": 0}

    async def client(i: int) -> None:
        async with aiohttp.ClientSession() as session:
            path = "/interlocks" if i % 2 else "/machine"
            while not stop.is_set():
                async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                    await resp.read()
                counts["requests"] += 1
                await asyncio.sleep(0.1)  # 10 Hz per client, 500 requests/s in all

    tasks = [asyncio.create_task(client(i)) for i in range(CLIENTS)]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await runner.cleanup()
    return counts


async def drain_subscribers(hub: EventHub, stop: asyncio.Event) -> None:
    subs = [hub.subscribe("user", i) for i in range(CLIENTS)]

    async def drain(sub: Any) -> None:
        while not stop.is_set():
            await sub.get()

    tasks = [asyncio.create_task(drain(s)) for s in subs]
    await stop.wait()
    for s in subs:
        hub.unsubscribe(s)
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_condition(condition: str, trips: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    peer = FakePeer(line_delay_s=0.001 if condition == "busy" else 0.0).start()
    peer.realtime = StampedBytes()
    hub = EventHub()
    hub.bind_loop(loop)
    link = GrblLink(peer.path, 115200, hub=hub, reconnect_s=0.2, banner_timeout_s=0.5)
    await link.start()
    await link.connect(timeout_s=10)
    factory = MockFactory(pin_class=TimedPin)
    settings = SafetySettings.model_validate(
        {
            "resume_delay_s": 0,
            "laser_enable": {"pin": LASER_PIN, "mode": "level", "cuts_beam": True},
            "interlocks": [{"name": "lid", "kind": "lid", "pin": LID_PIN, "debounce_ms": 0}],
        }
    )
    sup = SafetySupervisor(settings, factory, link.realtime, hub)
    sup.drive_all_safe()
    await sup.start()
    lid: TimedPin = factory.pin(LID_PIN)
    laser: TimedPin = factory.pin(LASER_PIN)

    stop = asyncio.Event()
    background: list[asyncio.Task[Any]] = []
    stream_task: asyncio.Task[Any] | None = None
    if condition == "busy":
        stream_task = asyncio.create_task(link.stream(endless_job()))
        background.append(asyncio.create_task(serve_clients(sup, link, stop)))
        background.append(asyncio.create_task(drain_subscribers(hub, stop)))
        await asyncio.sleep(1.0)  # let the clients and the stream get going

    byte_ns: list[int] = []
    output_ns: list[int] = []
    missing_bytes = 0
    lines_before = len(peer.lines)
    started = time.monotonic()

    def one_trip(stalled: threading.Event | None) -> tuple[int, int, int]:
        """Runs in a thread, like gpiozero's callback thread. Returns (t0, marks)."""
        if stalled is not None:
            stalled.wait(timeout=10)
        seen_bytes = len(peer.realtime.stamps)
        seen_changes = len(laser.changes)
        t0 = time.perf_counter_ns()
        lid.drive_high()  # pulled-up, normally closed: high is an open lid
        return t0, seen_bytes, seen_changes

    for _ in range(trips):
        sup.arm()
        stalled: threading.Event | None = None
        if condition == "stalled":
            stalled = threading.Event()

            def freeze(ev: threading.Event = stalled) -> None:
                ev.set()
                time.sleep(STALL_S)

            loop.call_soon(freeze)
        t0, seen_bytes, seen_changes = await asyncio.to_thread(one_trip, stalled)
        # Collect the byte's arrival (the peer thread stamps it; give it up to a second).
        deadline = time.monotonic() + 1.0
        arrived = None
        while arrived is None and time.monotonic() < deadline:
            for t, b in peer.realtime.stamps[seen_bytes:]:
                if b == SAFETY_DOOR:
                    arrived = t
                    break
            else:
                await asyncio.sleep(0.0005)
        if arrived is None:
            missing_bytes += 1
        else:
            byte_ns.append(arrived - t0)
        drops = [t for t, v in laser.changes[seen_changes:] if v is False]
        if drops:
            output_ns.append(drops[0] - t0)
        # Close the lid again and wait for the supervisor to count it safe.
        lid.drive_low()
        while not sup.all_safe():
            await asyncio.sleep(0.0005)

    duration_s = time.monotonic() - started
    lines_during = len(peer.lines) - lines_before
    stop.set()
    extra: dict[str, Any] = {"duration_s": round(duration_s, 2)}
    results = await asyncio.gather(*background, return_exceptions=True)
    for r in results:
        if isinstance(r, dict):
            extra["http_requests"] = r["requests"]
            extra["http_requests_per_s"] = round(r["requests"] / (duration_s + 1.0), 1)
    if stream_task is not None:
        await link.cancel()
        await asyncio.gather(stream_task, return_exceptions=True)
        extra["job_lines_acked_per_s"] = round(lines_during / duration_s, 1)
    await sup.close()
    await link.close()
    factory.close()
    peer.stop()
    return {
        "trips": trips,
        "byte_ms": percentiles(byte_ns),
        "output_ms": percentiles(output_ns),
        "missing_bytes": missing_bytes,
        "missing_output_drops": trips - len(output_ns),
        **extra,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=1000)
    parser.add_argument("--conditions", default="idle,busy,stalled")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "benchmark": "safety_reflex_latency",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": [round(v, 2) for v in os.getloadavg()],
        "transport": "GrblLink.realtime -> pty -> scripted GRBL peer thread",
        "target": {"p99_ms": 2.0, "max_ms": 10.0},
        "conditions": {},
    }
    for condition in args.conditions.split(","):
        out["conditions"][condition] = await run_condition(condition, args.trips)
    ok = all(
        c["byte_ms"].get("p99", 1e9) < 2.0
        and c["byte_ms"].get("max", 1e9) < 10.0
        and c["output_ms"].get("p99", 1e9) < 2.0
        and c["output_ms"].get("max", 1e9) < 10.0
        and c["missing_bytes"] == 0
        for c in out["conditions"].values()
    )
    out["meets_target"] = ok
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
