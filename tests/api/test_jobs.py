"""Jobs through the real app, a real SQLite file and the simulated GRBL on a real pty."""

from __future__ import annotations

from typing import Any

import pytest

from laserd.keys import DB, HUB, LINK, SAFETY, SETTINGS, SIMULATOR
from tests.api.machine_helpers import (
    laser_enable_off,
    raster_lines,
    ready_file,
    sim_client,
    sim_settings,
    wait_for,
)


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path) -> Any:
    """Overrides the bare client: this module runs against the simulator."""
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))


async def job_state(client: Any, job_id: int, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    assert r.status == 200, await r.text()
    return await r.json()


async def until_state(client: Any, job_id: int, headers: dict[str, str], *states: str) -> dict:
    async def check() -> dict[str, Any] | None:
        job = await job_state(client, job_id, headers)
        return job if job["state"] in states else None

    return await wait_for(check, 60, 0.05)


async def resume_when_allowed(client: Any, job_id: int, headers: dict[str, str]) -> None:
    """Resume, retrying while the safety resume delay (inputs safe only just now) runs."""

    async def resumed() -> bool:
        r = await client.post(f"/api/v1/jobs/{job_id}/resume", headers=headers)
        body = await r.json()
        if r.status == 409 and body["error"]["code"] == "resume_delay":
            return False
        assert r.status == 200 and body["state"] == "running", body
        return True

    await wait_for(resumed, 10, 0.05)


async def start(client: Any, account: Any, lines: list[str]) -> dict[str, Any]:
    f = await ready_file(client, account.id, lines)
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=account.headers)
    assert r.status == 201, await r.text()
    return await r.json()


async def test_machine_state_shows_the_connected_simulator(client, guest) -> None:
    r = await client.get("/api/v1/machine", headers=guest.headers)
    assert r.status == 200
    m = await r.json()
    assert m["connected"] is True and m["state"] == "idle"
    assert m["firmware"] and m["mpos"] == {"x": 0.0, "y": 0.0, "z": 0.0}
    assert m["interlocks"] == {"ok": True, "open": []}
    assert m["job"] is None


async def test_job_runs_to_completion_with_every_line_acknowledged(client, user) -> None:
    lines = raster_lines(60, 40)
    job = await start(client, user, lines)
    assert job["state"] in ("queued", "running") and job["lines_total"] == len(lines)
    done = await until_state(client, job["id"], user.headers, "completed", "failed")
    assert done["state"] == "completed", done
    assert done["lines_acked"] == len(lines) and done["progress"] == 1.0
    assert done["finished_at"] and done["elapsed_s"] > 0
    sim = client.app[SIMULATOR]
    assert sim.record.rx_overflows == 0, sim.record.faults
    assert laser_enable_off(client.app)
    r = await client.get("/api/v1/jobs", headers=user.headers)
    page = await r.json()
    assert page["total"] == 1 and page["items"][0]["state"] == "completed"
    # the row on disk holds the final figures
    async with client.app[DB].execute("SELECT state, lines_acked FROM jobs") as cur:
        assert tuple(await cur.fetchone()) == ("completed", len(lines))


async def test_second_job_is_refused_while_one_runs(client, user, admin) -> None:
    job = await start(client, user, raster_lines(200, 40))
    f = await ready_file(client, admin.id, raster_lines(2, 2))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=admin.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "machine_busy"
    r = await client.post("/api/v1/machine/jog", json={"x": 1, "feed": 500}, headers=user.headers)
    assert r.status == 409
    await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    await until_state(client, job["id"], user.headers, "cancelled")


async def test_pause_resume_cancel(client, user) -> None:
    job = await start(client, user, raster_lines(300, 40))
    await until_state(client, job["id"], user.headers, "running")
    r = await client.post(f"/api/v1/jobs/{job['id']}/pause", headers=user.headers)
    assert r.status == 200 and (await r.json())["state"] == "paused"
    link = client.app[LINK]
    await wait_for(lambda: link.state == "hold", 10)
    await resume_when_allowed(client, job["id"], user.headers)
    await wait_for(lambda: link.state == "run", 10)
    r = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    assert r.status == 200
    done = await until_state(client, job["id"], user.headers, "cancelled")
    assert done["lines_acked"] < len(raster_lines(300, 40))
    assert laser_enable_off(client.app)
    await wait_for(lambda: link.state in ("idle", "alarm"), 10)
    assert client.app[SIMULATOR].laser_on is False


async def test_other_users_cannot_see_or_control_a_job(client, user, make_account) -> None:
    other = await make_account("user")
    job = await start(client, user, raster_lines(100, 40))
    r = await client.get(f"/api/v1/jobs/{job['id']}", headers=other.headers)
    assert r.status == 404
    r = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=other.headers)
    assert r.status == 404
    f = await ready_file(client, user.id, raster_lines(2, 2))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=other.headers)
    assert r.status == 404
    await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    await until_state(client, job["id"], user.headers, "cancelled")


async def test_guest_sees_the_running_job_only(client, user, guest) -> None:
    first = await start(client, user, raster_lines(2, 2))
    await until_state(client, first["id"], user.headers, "completed")
    job = await start(client, user, raster_lines(300, 40))
    r = await client.get("/api/v1/jobs", headers=guest.headers)
    ids = [j["id"] for j in (await r.json())["items"]]
    assert ids == [job["id"]]
    assert (await client.get(f"/api/v1/jobs/{first['id']}", headers=guest.headers)).status == 404
    r = await client.post(f"/api/v1/jobs/{job['id']}/pause", headers=guest.headers)
    assert r.status == 403
    await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    await until_state(client, job["id"], user.headers, "cancelled")


async def test_error_mid_job_fails_it_with_line_and_meaning(client, user) -> None:
    client.app[SIMULATOR].error_on_line(50, 20)
    job = await start(client, user, raster_lines(100, 30))
    done = await until_state(client, job["id"], user.headers, "failed", "completed")
    assert done["state"] == "failed"
    assert "error:20" in done["error"] and "line" in done["error"]
    assert laser_enable_off(client.app)


async def test_alarm_mid_job_fails_it(client, user) -> None:
    job = await start(client, user, raster_lines(300, 40))
    await until_state(client, job["id"], user.headers, "running")
    client.app[SIMULATOR].raise_alarm(1)
    done = await until_state(client, job["id"], user.headers, "failed")
    assert "alarm" in done["error"].lower()
    assert laser_enable_off(client.app)
    r = await client.post("/api/v1/jobs", json={"file_id": job["file_id"]}, headers=user.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "machine_alarm"
    # A hard-limit alarm is critical: GRBL listens to nothing but a reset, then $X.
    r = await client.post("/api/v1/machine/reset", headers=user.headers)
    assert r.status == 200, await r.text()
    r = await client.post("/api/v1/machine/unlock", headers=user.headers)
    assert r.status == 200, await r.text()
    link = client.app[LINK]
    await wait_for(lambda: link.state == "idle", 10)


async def test_unplug_mid_job_fails_at_once_and_the_link_comes_back(client, user) -> None:
    job = await start(client, user, raster_lines(300, 40))
    await until_state(client, job["id"], user.headers, "running")
    sim = client.app[SIMULATOR]
    sim.unplug()
    done = await until_state(client, job["id"], user.headers, "failed")
    assert "disconnected" in done["error"]
    assert laser_enable_off(client.app)
    r = await client.post("/api/v1/jobs", json={"file_id": job["file_id"]}, headers=user.headers)
    assert r.status == 503
    sim.replug()
    link = client.app[LINK]
    await wait_for(lambda: link.connected and link.state == "idle", 30)


async def test_lid_trip_pauses_and_resume_waits_for_the_lid_and_the_delay(client, user) -> None:
    job = await start(client, user, raster_lines(400, 40))
    await until_state(client, job["id"], user.headers, "running")
    safety = client.app[SAFETY]
    safety.drive("lid", False)
    paused = await until_state(client, job["id"], user.headers, "paused")
    assert paused["pause_reason"] == "interlock:lid"
    assert laser_enable_off(client.app)
    link = client.app[LINK]
    await wait_for(lambda: link.state == "door", 10)
    r = await client.post(f"/api/v1/jobs/{job['id']}/resume", headers=user.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "interlock_open"
    safety.drive("lid", True)
    await wait_for(lambda: safety.all_safe(), 5)

    await resume_when_allowed(client, job["id"], user.headers)
    await until_state(client, job["id"], user.headers, "running")
    assert safety.armed is True
    await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    await until_state(client, job["id"], user.headers, "cancelled")
    assert laser_enable_off(client.app)


async def test_estop_trip_fails_the_job(client, user) -> None:
    job = await start(client, user, raster_lines(400, 40))
    await until_state(client, job["id"], user.headers, "running")
    resets_before = client.app[SIMULATOR].record.resets
    client.app[SAFETY].drive("estop", False)
    done = await until_state(client, job["id"], user.headers, "failed")
    assert done["error"] == "interlock:estop"
    assert laser_enable_off(client.app)
    sim = client.app[SIMULATOR]
    # The soft reset is on the wire behind at most a buffer's worth of bytes (~11 ms at
    # 115200 baud); the record of the job may come first.
    await wait_for(lambda: sim.record.resets > resets_before and not sim.laser_on, 5)
    r = await client.post("/api/v1/jobs", json={"file_id": job["file_id"]}, headers=user.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "interlock_open"


async def test_job_refused_while_an_interlock_is_open(client, user) -> None:
    client.app[SAFETY].drive("coolant", False)
    await wait_for(lambda: not client.app[SAFETY].all_safe(), 5)
    f = await ready_file(client, user.id, raster_lines(2, 2))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 409
    body = await r.json()
    assert body["error"]["code"] == "interlock_open" and "coolant" in body["error"]["message"]


async def test_interrupted_at_start_when_a_job_was_left_active(client, user) -> None:
    from laserd.jobs import JobRunner
    from laserd.store import jobs as jobs_store

    f = await ready_file(client, user.id, raster_lines(2, 2))
    conn = client.app[DB]
    left = []
    for state in ("running", "paused", "waiting_start", "completed"):
        row = await jobs_store.insert(
            conn, file_id=f["id"], user_id=user.id, file_name="x", lines_total=5
        )
        await jobs_store.update(conn, row["id"], state=state)
        left.append(row["id"])
    # What a crash leaves behind: rows still active when a new runner starts on the file.
    fresh = JobRunner(
        conn=conn,
        link=client.app[LINK],
        safety=client.app[SAFETY],
        hub=client.app[HUB],
        settings=client.app[SETTINGS],
    )
    assert sorted(await fresh.start()) == left[:3]
    await fresh.close()
    async with conn.execute("SELECT state FROM jobs ORDER BY id") as cur:
        states = [r[0] for r in await cur.fetchall()]
    assert states == ["interrupted", "interrupted", "interrupted", "completed"]
    assert client.app[SIMULATOR].laser_on is False


async def test_laser_mode_off_refuses_a_job(client, user, admin) -> None:
    r = await client.put("/api/v1/machine/settings", json={"$32": 0}, headers=admin.headers)
    assert r.status == 200
    f = await ready_file(client, user.id, raster_lines(2, 2))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "laser_mode_off"


async def test_image_job_refused_when_the_controller_power_scale_differs(client, user, admin):
    from laserd.keys import DB as DB_KEY

    f = await ready_file(client, user.id, raster_lines(2, 2))
    await client.app[DB_KEY].execute("UPDATE files SET kind = 'image' WHERE id = ?", (f["id"],))
    r = await client.put("/api/v1/machine/settings", json={"$30": 255}, headers=admin.headers)
    assert r.status == 200
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    body = await r.json()
    assert r.status == 409 and body["error"]["code"] == "power_scale_mismatch"
    assert body["error"]["details"] == {"controller_s_max": 255.0, "expected_s_max": 1000}
    r = await client.put("/api/v1/machine/settings", json={"$30": 1000}, headers=admin.headers)
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 201


async def test_job_refused_with_503_while_disconnected(client, user) -> None:
    f = await ready_file(client, user.id, raster_lines(2, 2))
    r = await client.post("/api/v1/machine/disconnect", headers=user.headers)
    assert r.status == 200
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 503


async def test_running_job_reports_an_eta(client, user) -> None:
    job = await start(client, user, raster_lines(400, 40))
    running = await until_state(client, job["id"], user.headers, "running")
    assert running["eta_s"] is not None and running["eta_s"] >= 0
    await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    await until_state(client, job["id"], user.headers, "cancelled")


async def test_disconnected_answers_use_the_contract_code(client, user) -> None:
    await client.post("/api/v1/machine/disconnect", headers=user.headers)
    f = await ready_file(client, user.id, raster_lines(2, 2))
    for path, body in (("/api/v1/jobs", {"file_id": f["id"]}), ("/api/v1/machine/home", None)):
        r = await client.post(path, json=body, headers=user.headers)
        assert r.status == 503 and (await r.json())["error"]["code"] == "unavailable", path


async def test_guest_asking_for_history_gets_an_empty_page(client, user, guest) -> None:
    first = await start(client, user, raster_lines(2, 2))
    await until_state(client, first["id"], user.headers, "completed")
    r = await client.get("/api/v1/jobs?state=completed", headers=guest.headers)
    assert r.status == 200
    assert await r.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
