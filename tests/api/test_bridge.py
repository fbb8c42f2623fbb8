"""The GRBL bridge (issue 17): a character-counting GRBL client written for the tests talks
TCP to the real app, whose link drives the simulated GRBL on a real pty; interlocks are
gpiozero mock pins. Every end of a session is checked to leave the laser-enable pin off.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from laserd.keys import BRIDGE, DB, JOBS, LINK, SAFETY, SIMULATOR
from tests.api.conftest import create_account
from tests.api.grbl_client import GrblClient
from tests.api.machine_helpers import (
    laser_enable_off,
    raster_lines,
    ready_file,
    sim_client,
    sim_settings,
    wait_for,
)

BRIDGE_ON = {"enabled": True, "port": 0, "allow": ["127.0.0.0/8"], "idle_timeout_s": 30}


def bridge_settings(tmp_path: Any, **bridge: Any) -> Any:
    return sim_settings(
        tmp_path / "state",
        server={"host": "127.0.0.1"},
        bridge={**BRIDGE_ON, **bridge},
    )


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Any) -> Any:
    return await sim_client(aiohttp_client, bridge_settings(tmp_path))


async def bridge_state(client: Any, account: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/bridge", headers=account.headers)
    assert r.status == 200, await r.text()
    return await r.json()


async def connect_and_accept(client: Any, account: Any) -> GrblClient:
    grbl = await GrblClient.connect("127.0.0.1", client.app[BRIDGE].port)
    await grbl.wait_for(lambda: grbl.saw("waiting for a person to accept"))
    state = await wait_for(lambda: bridge_state(client, account))
    pending = await wait_for(
        lambda: _first_pending(client, account), 5
    )
    assert pending["peer"].startswith("127.0.0.1:")
    assert state["session"] is None
    r = await client.post(f"/api/v1/bridge/pending/{pending['id']}/accept",
                          headers=account.headers)
    assert r.status == 200, await r.text()
    await grbl.wait_for(lambda: any(line.startswith("Grbl 1.1") for line in grbl.rx.other))
    return grbl


async def _first_pending(client: Any, account: Any) -> dict[str, Any] | None:
    state = await bridge_state(client, account)
    return state["pending"][0] if state["pending"] else None


async def test_accept_a_job_end_and_history(client, user, admin) -> None:
    app = client.app
    grbl = await GrblClient.connect("127.0.0.1", app[BRIDGE].port)
    await grbl.wait_for(lambda: grbl.saw("waiting for a person to accept"))
    # Waiting holds nothing: no claim on the machine, laser off, nothing sent.
    assert not app[JOBS].use.busy and laser_enable_off(app)
    pending = await wait_for(lambda: _first_pending(client, user), 5)
    r = await client.post(f"/api/v1/bridge/pending/{pending['id']}/accept", headers=user.headers)
    assert r.status == 200, await r.text()
    session = (await r.json())["session"]
    assert session["accepted_by"] == user.username and session["peer"] == pending["peer"]
    await grbl.wait_for(lambda: any(line.startswith("Grbl 1.1") for line in grbl.rx.other))
    assert not laser_enable_off(app)  # raised for the running session

    # Web jobs are refused while the session is open (409 naming the holder).
    f = await ready_file(client, user.id, raster_lines(2, 2))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    body = await r.json()
    assert r.status == 409 and body["error"]["code"] == "machine_busy"
    assert "bridge session" in body["error"]["message"]

    assert await grbl.command("$I") == "ok"
    assert grbl.saw("[VER:")
    program = raster_lines(30, 30)
    await grbl.stream(program)
    assert grbl.rx.answers[-len(program):] == ["ok"] * len(program)
    assert app[SIMULATOR].record.rx_overflows == 0, app[SIMULATOR].record.faults
    grbl.realtime(b"?")
    await grbl.wait_for(lambda: grbl.rx.status)
    assert grbl.rx.status[-1].startswith("<")

    r = await client.post("/api/v1/bridge/session/end", headers=admin.headers)  # any user
    assert r.status == 200, await r.text()
    await asyncio.wait_for(grbl.closed.wait(), 10)
    assert laser_enable_off(app)
    assert not app[JOBS].use.busy
    assert (await bridge_state(client, user))["session"] is None

    r = await client.get("/api/v1/jobs", headers=user.headers)
    job = (await r.json())["items"][0]
    assert job["source"] == "bridge" and job["peer"] == pending["peer"]
    assert job["user_id"] == user.id and job["state"] in ("completed", "cancelled")
    assert job["end_reason"] == f"ended_by:{admin.username}"
    assert job["lines_acked"] == len(program) + 1
    async with app[DB].execute("SELECT event FROM audit ORDER BY id") as cur:
        events = [row[0] for row in await cur.fetchall()]
    assert {"bridge_accepted", "bridge_ended", "bridge_session_ended"} <= set(events)
    await grbl.close()


async def test_interlock_trip_pauses_and_tilde_goes_through_the_resume_gate(client, user):
    app = client.app
    grbl = await connect_and_accept(client, user)
    safety, link = app[SAFETY], app[LINK]
    program = raster_lines(300, 40)
    feeding = asyncio.create_task(grbl.stream(program))
    await wait_for(lambda: link.state == "run", 20)
    safety.drive("lid", False)
    await wait_for(lambda: link.state == "door", 10)
    assert laser_enable_off(app)
    await grbl.wait_for(lambda: grbl.saw("interlock lid opened"))
    state = await bridge_state(client, user)
    assert state["session"]["state"] == "paused"
    assert state["session"]["pause_reason"] == "interlock:lid"

    grbl.realtime(b"~")  # refused: the lid is open
    await grbl.wait_for(lambda: grbl.saw("resume refused"))
    assert laser_enable_off(app) and link.state == "door"

    safety.drive("lid", True)
    await wait_for(lambda: safety.all_safe(), 5)

    async def resumed() -> bool:
        grbl.realtime(b"~")
        await asyncio.sleep(0.1)
        return link.state == "run"

    await wait_for(resumed, 10, interval_s=0.2)
    assert not laser_enable_off(app)
    await asyncio.wait_for(feeding, 120)
    assert grbl.rx.answers.count("ok") == len(program)
    await grbl.close()
    await wait_for(lambda: app[BRIDGE].view()["session"] is None, 10)
    assert laser_enable_off(app)


async def test_dollar_commands_are_filtered_as_the_console_is(client, user) -> None:
    grbl = await connect_and_accept(client, user)
    safety = client.app[SAFETY]
    safety.drive("coolant", False)
    await wait_for(lambda: not safety.all_safe(), 5)
    assert await grbl.command("$X") == "error:8"  # unlock: not while an interlock is open
    assert grbl.saw("refused: interlock open (coolant)")
    assert await grbl.command("$$") == "ok"  # reads pass
    assert grbl.saw("$32=1")
    assert await grbl.command("$N0=M3S1000G1X5F100") == "error:3"  # never a moving block
    safety.drive("coolant", True)
    await wait_for(lambda: safety.all_safe(), 5)
    assert await grbl.command("$X") == "ok"
    assert await grbl.command("(only a comment)") == "ok"
    assert await grbl.command("$30=1000") == "error:3"  # settings: admin sessions only
    assert grbl.saw("only an admin")
    await grbl.close()
    await wait_for(lambda: client.app[BRIDGE].view()["session"] is None, 10)
    assert laser_enable_off(client.app)


async def test_a_client_that_vanishes_mid_job_is_held_then_stopped(client, user) -> None:
    app = client.app
    grbl = await connect_and_accept(client, user)
    link, sim = app[LINK], app[SIMULATOR]
    resets = sim.record.resets
    feeding = asyncio.create_task(grbl.stream(raster_lines(300, 40)))
    await wait_for(lambda: link.state == "run", 20)
    await asyncio.sleep(0.2)
    feeding.cancel()
    await grbl.close(abort=True)  # the laptop is gone
    await wait_for(lambda: app[BRIDGE].view()["session"] is None, 20)
    assert laser_enable_off(app)
    await wait_for(lambda: sim.record.resets > resets and not sim.laser_on, 10)
    await wait_for(lambda: link.state == "idle", 10)
    assert not app[JOBS].use.busy
    r = await client.get("/api/v1/jobs", headers=user.headers)
    job = (await r.json())["items"][0]
    assert job["source"] == "bridge" and job["state"] == "failed"
    assert job["end_reason"] == "client_closed" or job["end_reason"] == "client_vanished"


async def test_refused_address(aiohttp_client, tmp_path) -> None:
    client = await sim_client(aiohttp_client, bridge_settings(tmp_path, allow=["10.99.0.0/16"]))
    grbl = await GrblClient.connect("127.0.0.1", client.app[BRIDGE].port)
    await asyncio.wait_for(grbl.closed.wait(), 5)  # closed at once, never pending
    assert client.app[BRIDGE].refused == 1
    assert client.app[BRIDGE].view()["pending"] == []
    await grbl.close()


async def test_a_silent_client_is_probed_so_that_a_vanished_one_is_found(
    aiohttp_client, tmp_path, user
) -> None:
    """A laptop that sleeps or leaves the Wi-Fi sends no FIN: only TCP can tell. The bridge's
    sockets probe a silent peer (keepalive) and give up on data left unacknowledged, both
    within ``client_timeout_s``. (Dropping the peer's packets would need a firewall rule or
    a network namespace on the test machine; the kernel's side of it is not re-tested.)"""
    client = await sim_client(aiohttp_client, bridge_settings(tmp_path, client_timeout_s=20))
    grbl = await GrblClient.connect("127.0.0.1", client.app[BRIDGE].port)
    await wait_for(lambda: _first_pending(client, user), 5)
    (conn,) = client.app[BRIDGE]._pending.values()
    sock = conn.writer.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
    interval = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
    probes = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
    assert idle + interval * probes <= 20  # a silent, vanished peer is given up in time
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 20_000
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    await grbl.close()


async def test_a_waiting_connection_can_be_rejected(client, user) -> None:
    grbl = await GrblClient.connect("127.0.0.1", client.app[BRIDGE].port)
    pending = await wait_for(lambda: _first_pending(client, user), 5)
    r = await client.post(f"/api/v1/bridge/pending/{pending['id']}/reject", headers=user.headers)
    assert r.status == 200
    await asyncio.wait_for(grbl.closed.wait(), 5)
    assert grbl.saw("rejected")
    assert (await bridge_state(client, user))["pending"] == []
    assert laser_enable_off(client.app)


async def test_accept_refused_while_a_web_job_runs(client, user) -> None:
    f = await ready_file(client, user.id, raster_lines(300, 40))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 201
    grbl = await GrblClient.connect("127.0.0.1", client.app[BRIDGE].port)
    pending = await wait_for(lambda: _first_pending(client, user), 5)
    r = await client.post(f"/api/v1/bridge/pending/{pending['id']}/accept", headers=user.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "machine_busy"
    await grbl.close()


async def test_bridge_off_by_default(aiohttp_client, tmp_path) -> None:
    client = await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))
    assert BRIDGE not in client.app


async def test_an_idle_session_ends_and_drops_the_laser_enable(aiohttp_client, tmp_path) -> None:
    client = await sim_client(aiohttp_client, bridge_settings(tmp_path, idle_timeout_s=0.5))
    user = await create_account(client, "user")
    grbl = await connect_and_accept(client, user)
    assert await grbl.command("G21") == "ok"
    assert not laser_enable_off(client.app)
    await asyncio.wait_for(grbl.closed.wait(), 10)  # no line for 0.5 s, machine idle
    assert grbl.saw("idle")
    assert laser_enable_off(client.app) and not client.app[JOBS].use.busy
    r = await client.get("/api/v1/jobs", headers=user.headers)
    job = (await r.json())["items"][0]
    assert job["state"] == "cancelled" and job["end_reason"] == "idle_timeout"
    await grbl.close()


async def test_the_start_button_accepts_a_waiting_connection(aiohttp_client, tmp_path) -> None:
    settings = sim_settings(
        tmp_path / "state",
        server={"host": "127.0.0.1"},
        bridge=BRIDGE_ON,
        safety={"start_button": {"pin": 22, "timeout_s": 60, "bounce_ms": 0}},
    )
    client = await sim_client(aiohttp_client, settings)
    grbl = await GrblClient.connect("127.0.0.1", client.app[BRIDGE].port)
    await wait_for(lambda: client.app[BRIDGE].view()["pending"], 5)
    await asyncio.sleep(0.2)  # the press must come while the bridge waits for it
    assert laser_enable_off(client.app)
    safety = client.app[SAFETY]
    safety.drive("start", False)
    await asyncio.sleep(0.05)
    safety.drive("start", True)
    await grbl.wait_for(lambda: grbl.saw("session accepted by start button"))
    assert not laser_enable_off(client.app)
    await grbl.close()
    await wait_for(lambda: client.app[BRIDGE].view()["session"] is None, 10)
    assert laser_enable_off(client.app)


async def test_keep_streaming_runs_what_was_received_then_ends(aiohttp_client, tmp_path) -> None:
    client = await sim_client(aiohttp_client, bridge_settings(tmp_path, keep_streaming=True))
    user = await create_account(client, "user")
    app = client.app
    grbl = await connect_and_accept(client, user)
    link, sim = app[LINK], app[SIMULATOR]
    feeding = asyncio.create_task(grbl.stream(raster_lines(300, 40)))
    await wait_for(lambda: link.state == "run", 20)
    await asyncio.sleep(0.2)
    feeding.cancel()
    resets = sim.record.resets
    await grbl.close(abort=True)
    await wait_for(lambda: not app[BRIDGE].view()["session"]["client_connected"], 5)
    assert not laser_enable_off(app)  # still enabled: the received lines still run
    await wait_for(lambda: app[BRIDGE].view()["session"] is None, 30)
    assert laser_enable_off(app) and sim.record.resets == resets  # ran out, no reset
    r = await client.get("/api/v1/jobs", headers=user.headers)
    job = (await r.json())["items"][0]
    assert job["state"] == "completed" and job["end_reason"] == "client_vanished_completed"
