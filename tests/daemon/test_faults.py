"""Faults injected during a job, and what must hold afterwards.

For every fault: nothing is lost or half-written (an upload is complete or absent, the database
passes ``PRAGMA integrity_check``, job rows agree with what happened), the laser-enable output
is off, and laserd keeps serving. Faults that can be injected into the running program (the
board rebooting, a full disk, a database locked by another process) run against the real app
in-process; the ones that need a process to die or its clock to jump run ``laserd serve`` as a
child (tests/daemon/harness.py).

Covered elsewhere (not repeated here): serial unplug, alarm and ``error:N`` mid-job in
tests/api/test_jobs.py; SIGTERM and a single ``kill -9`` mid-job in
tests/daemon/test_jobs_shutdown.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from laserd.keys import DB, LINK, SAFETY, SETTINGS, SIMULATOR
from tests.api.conftest import Account, create_account
from tests.api.machine_helpers import raster_lines, ready_file, sim_client, sim_settings, wait_for
from tests.conftest import SAMPLE_DATA
from tests.daemon import harness
from tests.daemon.harness import (
    Daemon,
    create_admin,
    login,
    long_gcode,
    wait_machine_idle,
)

SAMPLE_PNG = SAMPLE_DATA / "camera.png"


# --------------------------------------------------------------------------- helpers


async def job_of(client: Any, job_id: int, account: Account) -> dict[str, Any]:
    r = await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)
    assert r.status == 200, await r.text()
    return await r.json()


async def until_job(client: Any, job_id: int, account: Account, *states: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await job_of(client, job_id, account)
        return job if job["state"] in states else None

    return await wait_for(check, 60, 0.05)


async def start_job(client: Any, account: Account, lines: list[str]) -> dict[str, Any]:
    f = await ready_file(client, account.id, lines)
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=account.headers)
    assert r.status == 201, await r.text()
    job = await r.json()
    return await until_job(client, job["id"], account, "running")


def laser_is_off(app: Any) -> bool:
    """The laser-enable output as the GPIO layer sees it, and the simulated beam."""
    enable = app[SAFETY].laser_enable
    return not enable.armed and not enable.value and not app[SIMULATOR].laser_on


async def integrity(client: Any) -> str:
    async with client.app[DB].execute("PRAGMA integrity_check") as cur:
        return (await cur.fetchone())[0]


async def job_rows(client: Any) -> list[tuple[int, str, int, int, int]]:
    sql = "SELECT id, state, lines_acked, lines_sent, lines_total FROM jobs ORDER BY id"
    async with client.app[DB].execute(sql) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def serving(client: Any, account: Account) -> None:
    """The daemon still answers reads and writes."""
    r = await client.get("/api/v1/machine", headers=account.headers)
    assert r.status == 200, await r.text()
    r = await client.post("/api/v1/projects", json={"name": "after"}, headers=account.headers)
    assert r.status == 201, await r.text()


def gcode_bytes(moves: int) -> bytes:
    lines = ["G21", "G90", "M4 S0", "G1 F3000"]
    lines += [
        f"G1 X{(i % 200) * 0.5:.1f} Y{(i // 200) * 0.1:.1f} S{i % 1000}" for i in range(moves)
    ]
    return ("\n".join([*lines, "M5"]) + "\n").encode()


async def chunked(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked): the size is only known as it arrives."""
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]
        await asyncio.sleep(0)


def multipart_chunks(name: str, content: bytes, boundary: str = "faultboundary") -> list[bytes]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return [head, content, f"\r\n--{boundary}--\r\n".encode()]


async def upload_chunked(client: Any, account: Account, project_id: int, name: str, data: bytes):
    boundary = "faultboundary"
    body = b"".join(multipart_chunks(name, data, boundary))
    return await client.post(
        f"/api/v1/projects/{project_id}/files",
        data=chunked(body),
        headers={
            **account.headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )


def files_on_disk(state_dir: Path, *subdirs: str) -> list[Path]:
    out: list[Path] = []
    for sub in subdirs:
        base = state_dir / sub
        if base.exists():
            out += [p for p in base.rglob("*") if p.is_file()]
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Any:
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))


@pytest.fixture
async def user(client: Any) -> Account:
    return await create_account(client, "user")


@contextlib.contextmanager
def tmpfs(path: Path, size_kb: int) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only): a disk that really fills up (ENOSPC)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# --------------------------------------------------------------------------- controller reset


async def test_controller_reboot_mid_job_fails_it_with_the_laser_off(client, user) -> None:
    job = await start_job(client, user, raster_lines(400, 40))
    sim = client.app[SIMULATOR]
    await wait_for(lambda: sim.laser_on, 10)
    sim.reset_controller()  # the board reboots: banner, planner and position gone
    done = await until_job(client, job["id"], user, "failed")
    assert "reset" in done["error"]
    assert laser_is_off(client.app)
    assert 0 < done["lines_acked"] <= done["lines_sent"] <= done["lines_total"]
    link = client.app[LINK]
    await wait_for(lambda: link.connected and link.state in ("idle", "alarm"), 30)
    r = await client.get("/api/v1/machine", headers=user.headers)
    body = await r.json()
    assert r.status == 200 and body["job"] is None
    assert [row[1] for row in await job_rows(client)] == ["failed"]
    assert await integrity(client) == "ok"
    await serving(client, user)
    # Nothing resumed by itself: the board stays where the reboot left it.
    before = sim.record_snapshot().lines_received
    await asyncio.sleep(0.5)
    assert sim.record_snapshot().lines_received == before
    # And the next job runs normally on the rebooted board.
    await wait_for(lambda: link.state == "idle", 30)
    f = await ready_file(client, user.id, raster_lines(5, 5))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 201, await r.text()
    again = await until_job(client, (await r.json())["id"], user, "completed", "failed")
    assert again["state"] == "completed", again


# --------------------------------------------------------------------------- disk full


@pytest.fixture
async def small_disk(aiohttp_client: Any, tmp_path: Path, request: Any) -> AsyncIterator[Any]:
    """The whole state folder (database included) on a small tmpfs (``size_kb`` via indirect
    parametrisation, 3 MB by default) with no free-space margin, so writes really run into
    ENOSPC instead of being refused up front."""
    size_kb = getattr(request, "param", 3 * 1024)
    with tmpfs(tmp_path / "state", size_kb) as state:
        settings = sim_settings(state, storage={"min_free_mb": 0})
        client = await sim_client(aiohttp_client, settings)
        yield client
        await client.close()


async def test_disk_full_during_upload_leaves_no_trace(small_disk) -> None:
    client = small_disk
    user = await create_account(client, "user")
    r = await client.post("/api/v1/projects", json={"name": "full"}, headers=user.headers)
    project = await r.json()
    state = client.app[SETTINGS].storage.state_dir
    before = files_on_disk(state, "uploads", "tmp", "generated")

    big = gcode_bytes(250_000)  # ~8 MB: cannot fit in 3 MB
    r = await upload_chunked(client, user, project["id"], "big.gcode", big)
    assert r.status == 507, await r.text()
    assert (await r.json())["error"]["code"] == "insufficient_storage"

    assert files_on_disk(state, "uploads", "tmp", "generated") == before  # no half file
    async with client.app[DB].execute("SELECT COUNT(*) FROM files") as cur:
        assert (await cur.fetchone())[0] == 0
    assert await integrity(client) == "ok"
    # The space is given back: a small file goes through and is processed.
    small = gcode_bytes(200)
    r = await upload_chunked(client, user, project["id"], "small.gcode", small)
    assert r.status == 201, await r.text()
    f = await r.json()

    async def ready() -> dict | None:
        got = await (await client.get(f"/api/v1/files/{f['id']}", headers=user.headers)).json()
        return got if got["status"] in ("ready", "failed") else None

    assert (await wait_for(ready, 60, 0.1))["status"] == "ready"
    assert laser_is_off(client.app)
    await serving(client, user)


async def upload_and_settle(client: Any, account: Account, name: str, data: bytes) -> dict:
    r = await client.post("/api/v1/projects", json={"name": name}, headers=account.headers)
    project = await r.json()
    r = await upload_chunked(client, account, project["id"], name, data)
    assert r.status == 201, await r.text()
    f = await r.json()

    async def settled() -> dict | None:
        r = await client.get(f"/api/v1/files/{f['id']}", headers=account.headers)
        got = await r.json()
        return got if got["status"] in ("ready", "failed") else None

    return await wait_for(settled, 120, 0.1)


@pytest.mark.parametrize("small_disk", [1536], indirect=True)
async def test_raster_output_that_cannot_fit_is_refused_at_upload(small_disk) -> None:
    """camera.png (140 kB) fits on a 1.5 MB disk; its raster G-code (up to 3 MB) cannot: the
    upload is refused with the numbers before anything is converted (issue 12, item 9)."""
    client = small_disk
    user = await create_account(client, "user")
    state = client.app[SETTINGS].storage.state_dir
    r = await client.post("/api/v1/projects", json={"name": "full"}, headers=user.headers)
    project = await r.json()
    r = await upload_chunked(client, user, project["id"], "camera.png", SAMPLE_PNG.read_bytes())
    assert r.status == 422, await r.text()
    err = (await r.json())["error"]
    assert err["code"] == "output_too_large" and err["details"]["limit"] == "free_space"
    assert "512×512 pixels" in err["message"]
    assert files_on_disk(state, "uploads", "tmp", "generated") == []
    assert await integrity(client) == "ok"
    assert laser_is_off(client.app)
    await serving(client, user)


@pytest.mark.parametrize("small_disk", [1536], indirect=True)
async def test_disk_full_during_gcode_generation_fails_the_file_cleanly(small_disk) -> None:
    """A G-code upload that fits, whose streamed copy does not: the disk fills up while the
    copy is written (ENOSPC, no margin configured); the file fails, nothing half-written."""
    client = small_disk
    user = await create_account(client, "user")
    state = client.app[SETTINGS].storage.state_dir
    free = shutil.disk_usage(state).free
    content = gcode_bytes(40_000)
    content = content[: content.rfind(b"\n", 0, int(free * 0.6)) + 1]  # 60 % of what is free
    f = await upload_and_settle(client, user, "big.gcode", content)
    assert f["status"] == "failed", f
    assert "space" in f["error"].lower(), f["error"]
    # The upload is intact; nothing half-generated is left behind.
    assert [p.name for p in files_on_disk(state, "generated")] == []
    uploads = files_on_disk(state, "uploads")
    assert len(uploads) == 1 and uploads[0].read_bytes() == content
    assert [p for p in files_on_disk(state, "tmp")] == []
    assert await integrity(client) == "ok"
    r = await client.get(f"/api/v1/files/{f['id']}/gcode", headers=user.headers)
    assert r.status in (404, 409), await r.text()
    assert laser_is_off(client.app)
    await serving(client, user)


# --------------------------------------------------------------------------- database locked

LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
conn.close()
"""


@contextlib.asynccontextmanager
async def db_locked_by_another_process(db_path: Path, hold_s: float) -> AsyncIterator[Any]:
    """Another process holds SQLite's write lock for ``hold_s`` (longer than laserd's busy
    timeout), as a backup tool or a stuck ``sqlite3`` shell would."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCK_HOLDER,
        str(db_path),
        str(hold_s),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"locked"
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(proc.wait(), hold_s + 30)


@pytest.fixture
async def short_busy_client(aiohttp_client: Any, tmp_path: Path, monkeypatch: Any) -> Any:
    """laserd with a 1 s SQLite busy timeout (5 s in production) so a lock outlasts it soon."""
    import laserd.db

    monkeypatch.setattr(laserd.db, "BUSY_TIMEOUT_MS", 1000)
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))


async def test_database_locked_past_the_busy_timeout_while_a_job_ends(short_busy_client) -> None:
    client = short_busy_client
    user = await create_account(client, "user")
    hold_s = 8.0
    job = await start_job(client, user, raster_lines(40, 30))
    db_path = client.app[SETTINGS].db_path
    async with db_locked_by_another_process(db_path, hold_s) as holder:
        t0 = time.monotonic()
        # The job streams on and ends while the database cannot be written; the API shows it.
        done = await until_job(client, job["id"], user, "completed", "failed")
        assert done["state"] == "completed"
        assert laser_is_off(client.app)
        r = await client.get("/api/v1/machine", headers=user.headers)
        assert r.status == 200
        # A write that outlasts the busy timeout is refused as "busy, try again", not a 500.
        r = await client.post("/api/v1/projects", json={"name": "x"}, headers=user.headers)
        locked_write = (r.status, (await r.json()).get("error", {}).get("code"), r.headers)
        still_locked = time.monotonic() - t0 < hold_s
        await holder.wait()
    assert still_locked, "the write was meant to be tried while the lock was held"
    assert locked_write[:2] == (503, "database_busy"), locked_write
    assert locked_write[2].get("Retry-After")

    # Once the lock is gone the record catches up: the row says what happened.
    async def recorded() -> list | None:
        rows = await job_rows(client)
        return rows if rows[0][1] not in ("running", "queued") else None

    (job_id, state, acked, sent, total) = (await wait_for(recorded, 30, 0.1))[0]
    assert (job_id, state) == (job["id"], "completed") and acked == sent == total
    r = await client.get("/api/v1/machine", headers=user.headers)
    assert (await r.json())["job"] is None
    assert await integrity(client) == "ok"
    await serving(client, user)


# --------------------------------------------------------------------------- the real daemon


def daemon_up(d: Daemon) -> str:
    """Start (or restart) the daemon, wait for READY=1 and an idle controller; a token."""
    d.start()
    d.wait_ready(timeout_s=120)
    token = login(d)
    wait_machine_idle(d, token)
    return token


def debug_get(d: Daemon, token: str, what: str) -> dict[str, Any]:
    status, body = d.request("GET", f"/api/v1/debug/{what}", token=token)
    assert status == 200, body
    return body


def assert_laser_off_and_still(d: Daemon, token: str) -> None:
    """Laser-enable output off, beam off, and the controller receives nothing by itself."""
    enable = debug_get(d, token, "laser-enable")
    assert enable == {"present": True, "armed": False, "output_on": False, "job_active": False}
    sim = debug_get(d, token, "simulator")
    assert sim["laser_on"] is False and sim["rx_overflows"] == 0
    time.sleep(1.0)
    assert debug_get(d, token, "simulator")["lines_received"] == sim["lines_received"]


def slow_upload(d: Daemon, token: str, project_id: int, size: int, stop: threading.Event) -> None:
    """A chunked upload that trickles in until ``stop`` (the daemon dies under it)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    boundary = "killboundary"
    head, content, tail = multipart_chunks("trickle.gcode", gcode_bytes(size), boundary)
    try:
        conn.putrequest("POST", f"/api/v1/projects/{project_id}/files")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for piece in [head] + [content[i : i + 8192] for i in range(0, len(content), 8192)]:
            if stop.is_set():
                return
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.02)
        conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        conn.getresponse().read()
    except OSError:
        return  # the daemon was killed mid-upload: expected
    finally:
        conn.close()


def leftovers(d: Daemon) -> list[int]:
    """Processes a dead daemon left behind (its forkserver and processing workers carry the
    daemon's folder on their command line)."""
    mark = str(d.workdir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if mark in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def stored_hashes(d: Daemon) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (d.state_dir / "uploads").iterdir()
        if p.is_file()
    }


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "d", config={"simulator": {"time_scale": 5.0}})
    d.workdir.mkdir(parents=True)
    d.write_config()
    create_admin(d)
    yield d
    d.close()


@pytest.mark.slow
def test_kill_9_five_times_mid_job_and_mid_upload(daemon) -> None:
    d = daemon
    token = daemon_up(d)
    content = long_gcode(moves=2000)
    file = harness.ready_file(d, token, "long.gcode", content)
    jobs: list[int] = []
    for cycle in range(5):
        job = harness.start_job(d, token, file["id"])
        jobs.append(job["id"])
        status, project = d.request("POST", "/api/v1/projects", {"name": f"k{cycle}"}, token)
        stop = threading.Event()
        uploader = threading.Thread(
            target=slow_upload, args=(d, token, project["id"], 20_000, stop), daemon=True
        )
        uploader.start()
        time.sleep(0.3 + 0.2 * cycle)  # die at a different point each time
        d.kill()  # SIGKILL: no clean-up at all
        stop.set()
        uploader.join(timeout=30)
        deadline = time.monotonic() + 20
        while leftovers(d):  # processing workers and their forkserver follow the daemon
            assert time.monotonic() < deadline, leftovers(d)
            time.sleep(0.2)

        token = daemon_up(d)
        states = d.db_query("SELECT id, state, error FROM jobs ORDER BY id")
        assert [(i, s) for i, s, _ in states] == [(j, "interrupted") for j in jobs]
        assert all(e for _, _, e in states)
        assert d.db_query("PRAGMA integrity_check") == [("ok",)]
        # Every file row has its upload, byte for byte; no half upload is left anywhere.
        on_disk = stored_hashes(d)
        for stored, sha in d.db_query("SELECT stored_name, sha256 FROM files"):
            assert on_disk.get(stored) == sha
        assert not list((d.state_dir / "tmp").glob("*"))
        status, machine = d.request("GET", "/api/v1/machine", token=token)
        assert status == 200 and machine["job"] is None
        assert_laser_off_and_still(d, token)
    assert d.stop() == 0


# --------------------------------------------------------------------------- wall-clock jump

LIBFAKETIME = next(
    (
        p
        for p in (
            Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"),
            Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"),
            Path("/usr/lib/faketime/libfaketimeMT.so.1"),
        )
        if p.exists()
    ),
    None,
)


VICTIM_PASSWORD = "victim password 42"


def create_victim(d: Daemon) -> None:
    """A second account (made with the operator's CLI) whose login gets locked."""
    cmd = [sys.executable, "-m", "laserd", "create-admin", "--username", "victim"]
    cmd += ["--email", "victim@example.com", "--password-stdin"]
    done = subprocess.run(
        cmd,
        input=VICTIM_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=d.env(),
        cwd=d.workdir,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def http_date_s(d: Daemon) -> float:
    """The daemon's wall clock, from the Date header of an answer."""
    with urllib.request.urlopen(d.base_url + "/api/v1/health", timeout=10) as resp:
        return email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp()


def job_now(d: Daemon, token: str, job_id: int) -> dict[str, Any]:
    status, job = d.request("GET", f"/api/v1/jobs/{job_id}", token=token)
    assert status == 200, job
    return job


@pytest.mark.slow
@pytest.mark.skipif(LIBFAKETIME is None, reason="libfaketime not installed (Debian: faketime)")
def test_wall_clock_jumps_neither_unlock_an_account_nor_trip_or_stall_a_job(tmp_path) -> None:
    """Only the wall clock jumps (libfaketime, monotonic untouched), as when NTP steps the
    clock of a Pi without RTC. Rate limits, debounce and job timing run on the monotonic clock.
    """
    clock_file = tmp_path / "faketime"
    clock_file.write_text("+0\n")
    d = Daemon(
        tmp_path / "d",
        config={"simulator": {"time_scale": 25.0}, "auth": {"account_lock_s": 600}},
        extra_env={
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(clock_file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        },
    )
    d.workdir.mkdir(parents=True)
    d.write_config()
    create_admin(d)
    create_victim(d)
    try:
        token = daemon_up(d)
        file = harness.ready_file(d, token, "long.gcode", long_gcode(moves=300))
        wrong = {"username": "victim", "password": "not the password"}
        right = {"username": "victim", "password": VICTIM_PASSWORD}
        assert d.request("POST", "/api/v1/auth/login", right)[0] == 200
        statuses = [d.request("POST", "/api/v1/auth/login", wrong)[0] for _ in range(6)]
        assert statuses[-1] == 423, statuses
        assert d.request("POST", "/api/v1/auth/login", right)[0] == 423

        job = harness.start_job(d, token, file["id"])
        t_wall = time.time()
        clock_file.write_text("+2h\n")  # NTP steps the clock forward two hours
        time.sleep(0.5)
        assert http_date_s(d) - t_wall > 7000  # the daemon really sees the jump
        assert d.request("POST", "/api/v1/auth/login", right)[0] == 423  # still locked
        acked = job_now(d, token, job["id"])["lines_acked"]
        time.sleep(1.0)
        now = job_now(d, token, job["id"])
        assert now["state"] == "running" and now["lines_acked"] > acked  # not stalled

        clock_file.write_text("-2h\n")  # and back, two hours behind real time
        time.sleep(0.5)
        assert http_date_s(d) - time.time() < -7000
        assert d.request("POST", "/api/v1/auth/login", right)[0] == 423  # still locked
        # Tokens issued "in the future" are refused by design; sign in again as a person would.
        status, body = d.request("GET", f"/api/v1/jobs/{job['id']}", token=token)
        assert status in (200, 401), body
        if status == 401:
            token = login(d)
        acked = job_now(d, token, job["id"])["lines_acked"]
        time.sleep(1.0)
        now = job_now(d, token, job["id"])
        assert now["state"] == "running" and now["lines_acked"] > acked

        deadline = time.monotonic() + 120
        while now["state"] == "running":
            assert time.monotonic() < deadline, now
            time.sleep(0.5)
            now = job_now(d, token, job["id"])
        assert now["state"] == "completed", now
        assert now["lines_acked"] == now["lines_total"]
        assert 0 < now["elapsed_s"] < 120  # monotonic: the jumps do not count
        assert d.db_query("PRAGMA integrity_check") == [("ok",)]
        assert_laser_off_and_still(d, token)
        assert d.stop() == 0
    finally:
        d.close()


async def test_database_locked_while_processing_finishes(short_busy_client) -> None:
    client = short_busy_client
    user = await create_account(client, "user")
    r = await client.post("/api/v1/projects", json={"name": "locked"}, headers=user.headers)
    project = await r.json()
    r = await upload_chunked(client, user, project["id"], "camera.png", SAMPLE_PNG.read_bytes())
    assert r.status == 201, await r.text()
    f = await r.json()
    state = client.app[SETTINGS].storage.state_dir

    async def processing() -> bool:
        r = await client.get(f"/api/v1/files/{f['id']}", headers=user.headers)
        return (await r.json())["status"] == "processing"

    await wait_for(processing, 30, 0.02)
    async with db_locked_by_another_process(client.app[SETTINGS].db_path, 6.0) as holder:
        await holder.wait()

    async def settled() -> dict | None:
        r = await client.get(f"/api/v1/files/{f['id']}", headers=user.headers)
        got = await r.json()
        return got if got["status"] in ("ready", "failed") else None

    done = await wait_for(settled, 60, 0.1)
    assert done["status"] == "ready", done
    assert [p.name for p in files_on_disk(state, "generated") if p.suffix == ".gcode"] == [
        f"{f['id']}.gcode"
    ]
    assert await integrity(client) == "ok"


def post_file(d: Daemon, token: str, project_id: int, name: str, content: bytes) -> dict:
    head, body, tail = multipart_chunks(name, content)
    req = urllib.request.Request(
        f"{d.base_url}/api/v1/projects/{project_id}/files", data=head + body + tail, method="POST"
    )
    req.add_header("Content-Type", "multipart/form-data; boundary=faultboundary")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 201
        return json.loads(resp.read())


def wait_file_settled(d: Daemon, token: str, file_id: int) -> dict:
    deadline = time.monotonic() + 120
    while True:
        status, f = d.request("GET", f"/api/v1/files/{file_id}", token=token)
        assert status == 200, f
        if f["status"] in ("ready", "failed"):
            return f
        assert time.monotonic() < deadline, f
        time.sleep(0.2)


def _limit_file_size() -> None:
    """preexec for the daemon: no file it writes may exceed 1.5 MB (EFBIG past that; Python
    ignores SIGXFSZ). Works without mount rights, so it runs where a tmpfs cannot be made."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (1536 * 1024, 1536 * 1024))


@pytest.mark.slow
def test_file_size_limit_in_the_daemon_refuses_cleanly(tmp_path: Path) -> None:
    d = Daemon(tmp_path / "d", preexec=_limit_file_size, config={"storage": {"min_free_mb": 0}})
    d.workdir.mkdir(parents=True)
    d.write_config()
    create_admin(d)
    try:
        token = daemon_up(d)
        status, project = d.request("POST", "/api/v1/projects", {"name": "limit"}, token)
        assert status == 201, project
        # An upload larger than the limit: 507, and no half file anywhere.
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
        head, content, tail = multipart_chunks("big.gcode", gcode_bytes(150_000))
        conn.putrequest("POST", f"/api/v1/projects/{project['id']}/files")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", "multipart/form-data; boundary=faultboundary")
        conn.putheader("Content-Length", str(len(head) + len(content) + len(tail)))
        conn.endheaders()
        try:
            conn.send(head + content + tail)
        except OSError:
            pass  # the daemon may answer and close before reading it all
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        conn.close()
        assert resp.status == 507, answer
        assert not files_on_disk(d.state_dir, "uploads", "tmp")
        # An image that fits, whose raster G-code (about 1.9 MB) does not.
        status, body = d.request("POST", "/api/v1/projects", {"name": "gen"}, token)
        assert status == 201, body
        f = post_file(d, token, body["id"], "camera.png", SAMPLE_PNG.read_bytes())
        f = wait_file_settled(d, token, f["id"])
        assert f["status"] == "failed" and "space" in f["error"], f
        assert not files_on_disk(d.state_dir, "generated", "tmp")
        assert d.db_query("PRAGMA integrity_check") == [("ok",)]
        assert_laser_off_and_still(d, token)
        assert d.health()[0] == 200
        assert d.stop() == 0
    finally:
        d.close()
