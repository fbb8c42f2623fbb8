"""Outputs that follow a job through the real runner: air assist, exhaust, laser enable."""

from __future__ import annotations

from typing import Any

import pytest

from laserd.keys import DB, LINK, SAFETY
from tests.api.machine_helpers import raster_lines, ready_file, sim_client, sim_settings, wait_for
from tests.api.test_jobs import resume_when_allowed, until_state


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path) -> Any:
    settings = sim_settings(
        tmp_path / "state",
        safety={
            "air_assist": {"pin": 23},
            "exhaust": {"pin": 24, "run_on_s": 0.5},
        },
    )
    return await sim_client(aiohttp_client, settings)


def program_with_air(rows: int) -> list[str]:
    lines = raster_lines(rows, 30)
    return [*lines[:4], "M8", *lines[4:-2], "M9", *lines[-2:]]


async def test_air_follows_m8_m9_and_exhaust_runs_on(client, user) -> None:
    safety = client.app[SAFETY]
    # ready_file's project asks for air assist; this file's project does not.
    f = await ready_file(client, user.id, program_with_air(300))
    await client.app[DB].execute("UPDATE files SET laser_json = '{}' WHERE id = ?", (f["id"],))
    assert not safety.air.is_on and not safety.exhaust.is_on
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    job = await r.json()
    await wait_for(lambda: safety.air.is_on, 20)  # M8 in the program
    assert safety.exhaust.is_on and safety.armed
    done = await until_state(client, job["id"], user.headers, "completed", "failed")
    assert done["state"] == "completed", done
    assert not safety.air.is_on  # M9, and the end of the job
    assert not safety.armed
    assert safety.exhaust.is_on  # run-on
    await wait_for(lambda: not safety.exhaust.is_on, 5)


async def test_user_pause_drops_the_laser_enable_and_resume_raises_it(client, user) -> None:
    safety = client.app[SAFETY]
    f = await ready_file(client, user.id, raster_lines(400, 40))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    job = await r.json()
    await until_state(client, job["id"], user.headers, "running")
    assert safety.armed
    r = await client.post(f"/api/v1/jobs/{job['id']}/pause", headers=user.headers)
    assert r.status == 200
    assert not safety.armed
    await wait_for(lambda: client.app[LINK].state == "hold", 10)
    await resume_when_allowed(client, job["id"], user.headers)
    assert safety.armed
    await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    await until_state(client, job["id"], user.headers, "cancelled")
    assert not safety.armed and not safety.air.is_on


async def test_shutdown_mid_job_leaves_the_laser_enable_off(aiohttp_client, tmp_path) -> None:
    """What SIGTERM runs (the app's cleanup contexts in reverse), observed on the pin."""
    import sqlite3

    from laserd.app import create_app
    from laserd.hardware import simulated_hardware
    from tests.api.conftest import create_account

    settings = sim_settings(tmp_path / "state")
    app = create_app(settings, hardware=simulated_hardware(settings))
    client = await aiohttp_client(app)
    link = app[LINK]
    await wait_for(lambda: link.connected and link.state == "idle", 30)
    user = await create_account(client, "user")
    f = await ready_file(client, user.id, raster_lines(400, 40))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    job = await r.json()
    await until_state(client, job["id"], user.headers, "running")
    enable = app[SAFETY].laser_enable
    pin, off = enable.pin, enable.off_state
    assert pin.state != off  # armed while running
    await client.close()
    assert pin.state == off
    with sqlite3.connect(settings.db_path) as db:
        row = db.execute("SELECT state, error FROM jobs WHERE id = ?", (job["id"],)).fetchone()
    assert row == ("cancelled", "shutdown")
