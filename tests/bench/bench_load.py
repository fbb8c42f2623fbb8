"""Load while a raster job streams: WebSocket clients, pollers of ``GET /machine``, uploads, logins.

Usage::

    .venv/bin/python tests/bench/bench_load.py [--ws 100] [--pollers 100] [--window-s 30]
        [--time-scale 2.0] [--poll-interval-s 0.5] [--upload-every-s 5] [--login-every-s 2]

Runs ``laserd serve`` as a child on 127.0.0.1 (simulated GRBL at 115200 baud, in-process, as
``simulate = true`` deploys it), uploads camera.png (tests/data) through
the API and waits until it is processed to raster G-code. Then the same job runs twice from its
first line for ``--window-s`` seconds each: once with no other client (the baseline), once under
load. Each run is measured over the same window from the moment the job is running:

* streaming: acknowledged lines/s and payload bytes/s received by the controller (and its share
  of the link's baud/10 bytes/s), from the simulator's record;
* planner: how often and how long the controller's planner ran empty while lines were due
  (``starvations``, ``planner_starved_s``); with ``--time-scale`` 2 the motion needs less than the
  link gives, so a starvation under load that the baseline does not have is laserd's doing;
  ``--time-scale 20`` makes the run link-bound instead (throughput as a share of the link);
* event-loop lag inside the daemon (a ``call_later`` probe every 5 ms: p50/p99/max);
* daemon CPU seconds per 10,000 lines: the process's CPU minus the simulator thread's (processing
  workers are separate processes and not counted);
* under load, per kind of request: count, errors, p50/p99/max latency, and requests per second.

The load clients run in this process (one event loop); on a 2-core machine they compete with
the daemon for CPU, which makes the figures pessimistic. Everything stops by itself: the run
is bounded by ``--window-s`` (at most 300 s) and client counts (at most 500 each). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.daemon.harness import (
    ADMIN,
    Daemon,
    create_admin,
    login,
    upload,
    wait_machine_idle,
)

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
JOB_IMAGE = DATA / "camera.png"
UPLOAD_IMAGE = DATA / "horse.png"
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Above this share of the link the unloaded run is link-bound, not motion-bound.
LINK_BOUND_SHARE = 0.9


# --------------------------------------------------------------------------- measuring


def cpu_s(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (or one of its threads) from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_summary(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {
        "count": len(ms),
        "p50_ms": round(pct(ms, 0.50), 2) if ms else None,
        "p99_ms": round(pct(ms, 0.99), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
    }


@dataclass
class Kind:
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


@dataclass
class Load:
    recording: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    kinds: dict[str, Kind] = field(default_factory=dict)
    ws_messages: int = 0
    ws_connected: int = 0
    ws_closed_early: int = 0

    def kind(self, name: str) -> Kind:
        return self.kinds.setdefault(name, Kind())

    def note(self, name: str, started: float, ok: bool, what: str = "") -> None:
        if not self.recording:
            return
        k = self.kind(name)
        if ok:
            k.latencies_s.append(time.perf_counter() - started)
        else:
            k.error(what or "error")


# --------------------------------------------------------------------------- load clients


async def ws_client(base: str, token: str, load: Load, ready: asyncio.Event, n: int) -> None:
    url = base.replace("http://", "ws://") + "/api/v1/ws"
    session = aiohttp.ClientSession()
    try:
        started = time.perf_counter()
        async with session.ws_connect(url, heartbeat=None, max_msg_size=0) as ws:
            await ws.send_json({"type": "auth", "token": token})
            first = await ws.receive(timeout=60)
            if first.type != aiohttp.WSMsgType.TEXT:
                load.ws_closed_early += 1
                return
            load.kind("ws_connect").latencies_s.append(time.perf_counter() - started)
            load.ws_connected += 1
            if load.ws_connected >= n:
                ready.set()
            while not load.stop.is_set():
                try:
                    msg = await ws.receive(timeout=1.0)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if not load.stop.is_set():
                        load.ws_closed_early += 1
                    return
                if load.recording:
                    load.ws_messages += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        load.kind("ws_connect").error(type(exc).__name__)
    finally:
        await session.close()


async def poller(session: aiohttp.ClientSession, base: str, token: str, load: Load, every_s: float):
    headers = {"Authorization": f"Bearer {token}"}
    await asyncio.sleep(random.uniform(0, every_s))  # spread the pollers over the period
    while not load.stop.is_set():
        started = time.perf_counter()
        try:
            async with session.get(base + "/api/v1/machine", headers=headers) as r:
                await r.read()
                load.note("get_machine", started, r.status == 200, str(r.status))
        except (aiohttp.ClientError, TimeoutError) as exc:
            load.note("get_machine", started, False, type(exc).__name__)
        await asyncio.sleep(max(0.0, every_s - (time.perf_counter() - started)))


async def uploader(session: aiohttp.ClientSession, base: str, token: str, load: Load, every_s):
    headers = {"Authorization": f"Bearer {token}"}
    content = UPLOAD_IMAGE.read_bytes()
    async with session.post(
        base + "/api/v1/projects", json={"name": "load uploads"}, headers=headers
    ) as r:
        project = await r.json()
    while not load.stop.is_set():
        started = time.perf_counter()
        form = aiohttp.FormData()
        form.add_field("file", content, filename="horse.png", content_type="image/png")
        try:
            async with session.post(
                f"{base}/api/v1/projects/{project['id']}/files", data=form, headers=headers
            ) as r:
                await r.read()
                load.note("upload", started, r.status == 201, str(r.status))
        except (aiohttp.ClientError, TimeoutError) as exc:
            load.note("upload", started, False, type(exc).__name__)
        await asyncio.sleep(max(0.0, every_s - (time.perf_counter() - started)))


async def logger_in(session: aiohttp.ClientSession, base: str, load: Load, every_s: float):
    body = {"username": ADMIN["username"], "password": ADMIN["password"]}
    while not load.stop.is_set():
        started = time.perf_counter()
        try:
            async with session.post(base + "/api/v1/auth/login", json=body) as r:
                await r.read()
                load.note("login", started, r.status == 200, str(r.status))
        except (aiohttp.ClientError, TimeoutError) as exc:
            load.note("login", started, False, type(exc).__name__)
        await asyncio.sleep(max(0.0, every_s - (time.perf_counter() - started)))


# --------------------------------------------------------------------------- one measured run


class Api:
    """The bench's own calls to the daemon (few, outside the measured load)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, self.base + "/api/v1" + path, json=body, headers=self.headers
        ) as r:
            data = await r.json()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return data


async def measured_job(api: Api, pid: int, file_id: int, window_s: float) -> dict[str, Any]:
    job = await api.call("POST", "/jobs", {"file_id": file_id})
    deadline = time.monotonic() + 60
    while not (job["state"] == "running" and job["lines_acked"] > 0):
        if time.monotonic() > deadline or job["state"] not in ("queued", "running"):
            raise RuntimeError(f"job did not start: {job}")
        await asyncio.sleep(0.1)
        job = await api.call("GET", f"/jobs/{job['id']}")
    sim0 = await api.call("GET", "/debug/simulator")
    tid = sim0["thread_native_id"]
    await api.call("POST", "/debug/loop-lag", {"interval_ms": 5, "duration_s": window_s + 30})
    job0 = await api.call("GET", f"/jobs/{job['id']}")
    cpu0, sim_cpu0, t0 = cpu_s(pid), cpu_s(pid, tid), time.monotonic()

    await asyncio.sleep(window_s)

    lag = await api.call("GET", "/debug/loop-lag")
    job1 = await api.call("GET", f"/jobs/{job['id']}")
    cpu1, sim_cpu1, t1 = cpu_s(pid), cpu_s(pid, tid), time.monotonic()
    sim1 = await api.call("GET", "/debug/simulator")
    if job1["state"] != "running":
        raise RuntimeError(f"the job ended inside the window: {job1}")
    await api.call("POST", f"/jobs/{job['id']}/cancel")

    dt = t1 - t0
    lines = job1["lines_acked"] - job0["lines_acked"]
    payload = sim1["bytes_in"] - sim0["bytes_in"]
    laserd_cpu = (cpu1 - cpu0) - (sim_cpu1 - sim_cpu0)
    return {
        "window_s": round(dt, 2),
        "lines_acked": lines,
        "lines_per_s": round(lines / dt, 1),
        "payload_bytes_per_s": round(payload / dt, 1),
        "link_share": round(payload / dt / (115200 / 10), 4),
        "rx_overflows": sim1["rx_overflows"] - sim0["rx_overflows"],
        "starvations": sim1["starvations"] - sim0["starvations"],
        "planner_starved_s": round(sim1["planner_starved_s"] - sim0["planner_starved_s"], 3),
        "loop_lag_ms": {k: lag[k] for k in ("samples", "p50_ms", "p99_ms", "max_ms", "over_50ms")},
        "gc": {
            k: lag[k]
            for k in (
                "gc_collections",
                "gc_full_collections",
                "gc_max_pause_ms",
                "gc_objects",
                "gc_frozen",
            )
        },
        "daemon_cpu_s": round(laserd_cpu, 3),
        "simulator_cpu_s": round(sim_cpu1 - sim_cpu0, 3),
        "daemon_cpu_s_per_10k_lines": round(laserd_cpu / lines * 10_000, 3) if lines else None,
    }


async def wait_idle(api: Api) -> None:
    deadline = time.monotonic() + 60
    while True:
        m = await api.call("GET", "/machine")
        if m["job"] is None and m["state"] == "idle":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"machine not idle: {m}")
        await asyncio.sleep(0.2)


async def run(args: argparse.Namespace, d: Daemon, token: str, file_id: int) -> dict[str, Any]:
    assert d.proc is not None
    pid = d.proc.pid
    base = d.base_url
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        api = Api(session, base, token)
        baseline = await measured_job(api, pid, file_id, args.window_s)
        await wait_idle(api)

        load = Load()
        ready = asyncio.Event()
        tasks = [
            asyncio.create_task(ws_client(base, token, load, ready, args.ws))
            for _ in range(args.ws)
        ]
        if args.ws == 0:
            ready.set()
        tasks += [
            asyncio.create_task(poller(session, base, token, load, args.poll_interval_s))
            for _ in range(args.pollers)
        ]
        if args.upload_every_s > 0:
            up = uploader(session, base, token, load, args.upload_every_s)
            tasks.append(asyncio.create_task(up))
        if args.login_every_s > 0:
            tasks.append(asyncio.create_task(logger_in(session, base, load, args.login_every_s)))
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(1.0)  # every client in its stride
        load.recording = True
        t0 = time.monotonic()
        loaded = await measured_job(api, pid, file_id, args.window_s)
        load_s = time.monotonic() - t0
        load.recording = False
        load.stop.set()
        await asyncio.wait(tasks, timeout=30)
        for t in tasks:
            t.cancel()
        await wait_idle(api)

    requests = {name: latency_summary(k.latencies_s) | {"errors": k.errors}
                for name, k in sorted(load.kinds.items())}  # fmt: skip
    http_count = sum(
        len(k.latencies_s) + sum(k.errors.values())
        for name, k in load.kinds.items()
        if name != "ws_connect"
    )
    return {
        "clients": {"ws": args.ws, "pollers": args.pollers},
        "unloaded": baseline,
        "loaded": loaded,
        "throughput_ratio_loaded_to_unloaded": round(
            loaded["lines_per_s"] / baseline["lines_per_s"], 4
        ),
        "http_requests_per_s": round(http_count / load_s, 1),
        "ws_messages_per_s": round(load.ws_messages / load_s, 1),
        "ws_connected": load.ws_connected,
        "ws_closed_early": load.ws_closed_early,
        "requests": requests,
        # Only meaningful while the motion, not the link, sets the pace: with the link full
        # (a high --time-scale) the planner runs empty by the baud rate alone.
        "planner_ran_empty_because_of_laserd": (
            loaded["starvations"] > baseline["starvations"]
            if baseline["link_share"] < LINK_BOUND_SHARE
            else None
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ws", type=int, default=100)
    ap.add_argument("--pollers", type=int, default=100)
    ap.add_argument("--window-s", type=float, default=30.0)
    ap.add_argument("--time-scale", type=float, default=2.0)
    ap.add_argument("--poll-interval-s", type=float, default=0.5)
    ap.add_argument("--upload-every-s", type=float, default=5.0)
    ap.add_argument("--login-every-s", type=float, default=2.0)
    ap.add_argument("--bcrypt-rounds", type=int, default=10)
    args = ap.parse_args()
    args.ws = max(0, min(args.ws, 500))
    args.pollers = max(0, min(args.pollers, 500))
    args.window_s = max(5.0, min(args.window_s, 300.0))
    out: dict[str, Any] = {
        "job_image": JOB_IMAGE.name,
        "baud": 115200,
        "time_scale": args.time_scale,
        "poll_interval_s": args.poll_interval_s,
        "upload_every_s": args.upload_every_s,
        "login_every_s": args.login_every_s,
        "bcrypt_rounds": args.bcrypt_rounds,
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(
            Path(tmp) / "d",
            config={
                "simulator": {"time_scale": args.time_scale},
                "machine": {"baudrate": 115200},
                "auth": {"bcrypt_rounds": args.bcrypt_rounds, "login_ip_max_failures": 1000},
                # Every simulated client comes from 127.0.0.1: the per-address caps (which a
                # LAN of real clients never meets) would refuse them, so they are lifted here.
                "server": {
                    "log_level": "warning",
                    "max_connections": 2 * (args.ws + args.pollers) + 64,
                    "max_connections_per_address": 2 * (args.ws + args.pollers) + 64,
                    "max_websockets": args.ws + 16,
                    "max_websockets_per_address": args.ws + 16,
                },
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
            file = upload(d, token, JOB_IMAGE.name, JOB_IMAGE.read_bytes(), timeout_s=300)
            out["job_lines"] = file["stats"]["lines"]
            out["job_bytes"] = (d.state_dir / "generated" / f"{file['id']}.gcode").stat().st_size
            budget_s = 4 * args.window_s + 300
            out |= asyncio.run(asyncio.wait_for(run(args, d, token, file["id"]), budget_s))
            out["loadavg_at_end"] = os.getloadavg()
            out["bench_process_cpu_s"] = round(time.process_time(), 1)
            out["daemon_exit"] = d.stop()
        finally:
            d.close()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
