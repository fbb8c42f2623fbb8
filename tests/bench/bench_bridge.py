"""Benchmark: a raster job through the GRBL bridge against the same job from the web.

Usage::

    .venv/bin/python tests/bench/bench_bridge.py [--rows 120] [--cols 40] [--time-scale 50]
        [--latency-lines 400]

One real app in this process (real SQLite file in a temp folder, the simulated GRBL on a pty
at 115200 baud with its motion clock scaled by ``--time-scale``, mock GPIO). The same
raster-like program (``tests.api.machine_helpers.raster_lines``) runs twice:

* as a web job (``POST /jobs``, streamed by the job runner), timed from the 201 to the
  job's ``completed``;
* through the bridge: the character-counting client of ``tests/api/grbl_client.py`` connects,
  is accepted through the API and streams the lines; timed from its first line to the last
  ``ok`` and the controller back at Idle (the motion done, as for the job).

``rate_ratio`` is the bridge's lines per second over the web job's (1.0: the same rate).

Latency: ``--latency-lines`` single lines (``G1F<n>``, answered at once by the controller)
are sent one at a time by the bridge client, and the same lines through the web console's
path (``GrblLink.command``). ``added_to_controller_ms``: from the client's write to the line
being written to the serial port (the link's ``tx`` event; same process, same clock) — what
the bridge adds in front of the controller. ``round_trip_ms`` for both paths and their
difference: what a client's line-to-``ok`` costs more through the bridge. p50 and p99 each.

Prints one JSON object. Exit status 1 when a line was lost or the buffer overflowed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp.test_utils import TestClient, TestServer

from laserd.app import create_app
from laserd.grbl.controller import SerialLine
from laserd.hardware import simulated_hardware
from laserd.keys import ACCOUNTS, BRIDGE, HUB, LINK, SIMULATOR
from tests.api.grbl_client import GrblClient
from tests.api.machine_helpers import raster_lines, ready_file, wait_for
from tests.conftest import make_settings


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def ms(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5) * 1000, 3), "p99": round(pct(values, 0.99) * 1000, 3),
            "mean": round(statistics.fmean(values) * 1000, 3) if values else float("nan")}


async def web_job(client: TestClient, headers: dict[str, str], user_id: int,
                  lines: list[str]) -> float:
    f = await ready_file(client, user_id, lines)
    t0 = time.perf_counter()
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=headers)
    assert r.status == 201, await r.text()
    job = await r.json()

    async def done() -> bool:
        r = await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)
        state = (await r.json())["state"]
        assert state not in ("failed", "cancelled"), state
        return state == "completed"

    await wait_for(done, 3600, interval_s=0.05)
    return time.perf_counter() - t0


async def bridge_session(client: TestClient, headers: dict[str, str]) -> GrblClient:
    grbl = await GrblClient.connect("127.0.0.1", client.app[BRIDGE].port)

    async def pending() -> Any:
        r = await client.get("/api/v1/bridge", headers=headers)
        items = (await r.json())["pending"]
        return items[0] if items else None

    p = await wait_for(pending, 10)
    r = await client.post(f"/api/v1/bridge/pending/{p['id']}/accept", headers=headers)
    assert r.status == 200, await r.text()
    await grbl.wait_for(lambda: any(x.startswith("Grbl") for x in grbl.rx.other))
    return grbl


async def bridge_job(client: TestClient, grbl: GrblClient, lines: list[str]) -> float:
    link = client.app[LINK]
    t0 = time.perf_counter()
    await grbl.stream(lines)
    await wait_for(lambda: link.state == "idle", 3600, interval_s=0.01)
    return time.perf_counter() - t0


async def latencies(client: TestClient, grbl: GrblClient, n: int) -> dict[str, Any]:
    """Single lines one at a time: through the bridge, then through the link directly."""
    hub, link = client.app[HUB], client.app[LINK]
    tx_at: dict[str, float] = {}

    def on_wire(event: SerialLine) -> None:
        if event.direction == "tx":
            tx_at.setdefault(event.line, time.perf_counter())

    hub.on(SerialLine, on_wire)
    added, bridge_rt = [], []
    try:
        for i in range(n):
            line = f"G1F{1000 + i}"
            t0 = time.perf_counter()
            assert await grbl.command(line) == "ok"
            bridge_rt.append(time.perf_counter() - t0)
            added.append(tx_at[line] - t0)
    finally:
        hub.off(SerialLine, on_wire)
    grbl_end = len(grbl.rx.answers)
    await grbl.close()
    await wait_for(lambda: client.app[BRIDGE].view()["session"] is None, 30)
    direct_rt = []
    for i in range(n):
        t0 = time.perf_counter()
        await link.command(f"G1F{3000 + i}")
        direct_rt.append(time.perf_counter() - t0)
    extra = [b - d for b, d in zip(sorted(bridge_rt), sorted(direct_rt), strict=True)]
    return {
        "lines": n,
        "answers": grbl_end,
        "added_to_controller_ms": ms(added),
        "round_trip_bridge_ms": ms(bridge_rt),
        "round_trip_direct_ms": ms(direct_rt),
        "round_trip_added_ms": ms(extra),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        settings = make_settings(
            Path(tmp) / "state",
            server={"host": "127.0.0.1", "debug": False},
            machine={"simulate": True},
            simulator={"time_scale": args.time_scale},
            bridge={"enabled": True, "port": 0, "allow": ["127.0.0.0/8"]},
        )
        app = create_app(settings, hardware=simulated_hardware(settings))
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            link = app[LINK]
            await wait_for(lambda: link.connected and link.state == "idle", 30)
            await app[ACCOUNTS].create_user(username="bench", email="bench@example.test",
                                           password="bench password 1", role="admin",
                                           status="active", email_verified=True)
            r = await client.post("/api/v1/auth/login",
                                  json={"username": "bench", "password": "bench password 1"})
            login = await r.json()
            headers = {"Authorization": f"Bearer {login['access_token']}"}
            user_id = int(login["user"]["id"])
            lines = raster_lines(args.rows, args.cols)
            web_s = await web_job(client, headers, user_id, lines)
            grbl = await bridge_session(client, headers)
            before = len(grbl.rx.answers)
            bridge_s = await bridge_job(client, grbl, lines)
            answers = grbl.rx.answers[before:]
            lat = await latencies(client, grbl, args.latency_lines)
            record = app[SIMULATOR].record
            return {
                "lines": len(lines),
                "time_scale": args.time_scale,
                "web_job_s": round(web_s, 3),
                "bridge_s": round(bridge_s, 3),
                "web_lines_per_s": round(len(lines) / web_s, 1),
                "bridge_lines_per_s": round(len(lines) / bridge_s, 1),
                "rate_ratio": round(web_s / bridge_s, 3),
                "bridge_all_ok": answers == ["ok"] * len(lines),
                "latency": lat,
                "rx_overflows": record.rx_overflows,
            }
        finally:
            await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--cols", type=int, default=40)
    parser.add_argument("--time-scale", type=float, default=50.0)
    parser.add_argument("--latency-lines", type=int, default=400)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result))
    return 0 if result["bridge_all_ok"] and result["rx_overflows"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
