"""Interlock trips in every machine state, through the real app, job runner and simulator.

The unit tests next to this file prove the supervisor on its own; these prove the wiring:
the byte reaches the simulated GRBL on its pty, the laser-enable pin drops, and the job runner
pauses or fails the job with the reason — while idle, jogging, framing, waiting for the start
button, running and paused.
"""

from __future__ import annotations

from typing import Any

import pytest

from laserd.keys import HARDWARE, LINK, SAFETY, SIMULATOR
from tests.api.conftest import Account, create_account
from tests.api.machine_helpers import raster_lines, ready_file, sim_client, sim_settings, wait_for

LASER_PIN = 27
INTERLOCKS = [
    {"name": "lid", "kind": "lid", "pin": 17},
    {"name": "estop", "kind": "estop", "pin": 5},
    {"name": "coolant", "kind": "coolant", "pin": 6},
    {"name": "key", "kind": "key", "pin": 13},
    {"name": "fence", "kind": "custom", "pin": 19},
]
NAMES = [i["name"] for i in INTERLOCKS]
#: A soft reset for the E-stop, the resumable safety door for the rest (cuts_beam is set).
BYTE = {name: 0x18 if name == "estop" else 0x84 for name in NAMES}


async def machine(
    aiohttp_client: Any, tmp_path: Any, *, start_button: bool = False
) -> tuple[Any, Account]:
    safety: dict[str, Any] = {
        "resume_delay_s": 0.3,
        "interlocks": INTERLOCKS,
        "laser_enable": {"pin": LASER_PIN, "mode": "level", "cuts_beam": True},
    }
    if start_button:
        safety["start_button"] = {"pin": 22, "timeout_s": 60, "bounce_ms": 0}
    settings = sim_settings(tmp_path / "state", safety=safety, simulator={"time_scale": 20.0})
    client = await sim_client(aiohttp_client, settings)
    await wait_for(client.app[SAFETY].all_safe, 10)
    return client, await create_account(client, "user")


async def job_in(client: Any, who: Account, job_id: int, *states: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await client.get(f"/api/v1/jobs/{job_id}", headers=who.headers)
        job = await r.json()
        return job if job["state"] in states else None

    return await wait_for(check, 30, 0.02)


async def start_job(client: Any, who: Account) -> dict[str, Any]:
    f = await ready_file(client, who.id, raster_lines(400, 40))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=who.headers)
    assert r.status == 201, await r.text()
    return await r.json()


async def assert_tripped(client: Any, name: str) -> None:
    """The reflex: laser-enable pin off at once, the right byte at the controller."""
    safety = client.app[SAFETY]
    assert safety.armed is False
    assert client.app[HARDWARE].pin_factory.pin(LASER_PIN).state is False
    sim = client.app[SIMULATOR]
    await wait_for(lambda: BYTE[name] in [b for _, b in sim.record.realtime_log], 5)
    await wait_for(lambda: not sim.laser_on, 5)
    assert name in safety.open_interlocks()


async def assert_start_refused(client: Any, who: Account, name: str) -> None:
    f = await ready_file(client, who.id, raster_lines(2, 2))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=who.headers)
    assert r.status == 409, await r.text()
    body = await r.json()
    assert body["error"]["code"] == "interlock_open" and name in body["error"]["message"]


@pytest.mark.parametrize("name", NAMES)
async def test_trip_while_running(aiohttp_client: Any, tmp_path: Any, name: str) -> None:
    client, user = await machine(aiohttp_client, tmp_path)
    job = await start_job(client, user)
    await job_in(client, user, job["id"], "running")
    assert client.app[SAFETY].armed is True
    client.app[SAFETY].drive(name, False)
    await assert_tripped(client, name)
    if name == "estop":
        done = await job_in(client, user, job["id"], "failed")
        assert done["error"] == "interlock:estop"
    else:
        paused = await job_in(client, user, job["id"], "paused")
        assert paused["pause_reason"] == f"interlock:{name}"
        await wait_for(lambda: client.app[LINK].state == "door", 10)
        r = await client.post(f"/api/v1/jobs/{job['id']}/resume", headers=user.headers)
        assert r.status == 409 and (await r.json())["error"]["code"] == "interlock_open"
        await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
        await job_in(client, user, job["id"], "cancelled")
    assert client.app[SAFETY].armed is False


@pytest.mark.parametrize("name", ["lid", "estop"])
async def test_trip_while_paused(aiohttp_client: Any, tmp_path: Any, name: str) -> None:
    client, user = await machine(aiohttp_client, tmp_path)
    job = await start_job(client, user)
    await job_in(client, user, job["id"], "running")
    r = await client.post(f"/api/v1/jobs/{job['id']}/pause", headers=user.headers)
    assert r.status == 200
    await wait_for(lambda: client.app[LINK].state == "hold", 10)
    client.app[SAFETY].drive(name, False)
    await assert_tripped(client, name)
    if name == "estop":
        done = await job_in(client, user, job["id"], "failed")
        assert done["error"] == "interlock:estop"
    else:
        paused = await job_in(client, user, job["id"], "paused")
        await wait_for(lambda: client.app[LINK].state == "door", 10)
        r = await client.get(f"/api/v1/jobs/{job['id']}", headers=user.headers)
        assert (await r.json())["pause_reason"] == "interlock:lid", paused
        await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
        await job_in(client, user, job["id"], "cancelled")


@pytest.mark.parametrize("name", ["lid", "estop"])
async def test_trip_while_waiting_for_the_start_button(
    aiohttp_client: Any, tmp_path: Any, name: str
) -> None:
    client, user = await machine(aiohttp_client, tmp_path, start_button=True)
    job = await start_job(client, user)
    await job_in(client, user, job["id"], "waiting_start")
    client.app[SAFETY].drive(name, False)
    await assert_tripped(client, name)
    done = await job_in(client, user, job["id"], "failed", "cancelled")
    assert done["state"] == "failed" and done["error"] == f"interlock:{name}"
    # A press now changes nothing: no job, no laser.
    client.app[SAFETY].drive("start", False)
    await assert_start_refused(client, user, name)
    assert client.app[SAFETY].armed is False


@pytest.mark.parametrize("name", ["lid", "estop"])
async def test_trip_while_idle(aiohttp_client: Any, tmp_path: Any, name: str) -> None:
    client, user = await machine(aiohttp_client, tmp_path)
    client.app[SAFETY].drive(name, False)
    await assert_tripped(client, name)
    await assert_start_refused(client, user, name)
    client.app[SAFETY].drive(name, True)
    await wait_for(client.app[SAFETY].all_safe, 5)


@pytest.mark.parametrize("name", ["lid", "estop"])
async def test_trip_while_jogging(aiohttp_client: Any, tmp_path: Any, name: str) -> None:
    client, user = await machine(aiohttp_client, tmp_path)
    link = client.app[LINK]
    r = await client.post(
        "/api/v1/machine/jog", json={"x": 300, "feed": 100}, headers=user.headers
    )
    assert r.status == 200, await r.text()
    await wait_for(lambda: link.state == "jog", 10)
    client.app[SAFETY].drive(name, False)
    await assert_tripped(client, name)
    # The jog stops: a door state for the lid, an alarm (reset during motion) for the E-stop.
    await wait_for(lambda: link.state == ("alarm" if name == "estop" else "door"), 10)


@pytest.mark.parametrize("name", ["lid", "estop"])
async def test_trip_while_framing_with_the_laser_on(
    aiohttp_client: Any, tmp_path: Any, name: str
) -> None:
    client, user = await machine(aiohttp_client, tmp_path)
    link = client.app[LINK]
    f = await ready_file(client, user.id, raster_lines(2, 2))
    r = await client.post(
        "/api/v1/machine/frame",
        json={"file_id": f["id"], "power_pct": 1, "feed_mm_min": 100},
        headers=user.headers,
    )
    assert r.status in (200, 202), await r.text()
    await wait_for(lambda: client.app[SAFETY].armed and link.state == "run", 10)
    client.app[SAFETY].drive(name, False)
    await assert_tripped(client, name)
    await wait_for(lambda: link.state in ("door", "alarm", "idle"), 10)
    assert client.app[SAFETY].armed is False
