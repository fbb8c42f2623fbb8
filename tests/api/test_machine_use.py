"""One owner of "the machine is in use": a job, a frame, a jog, homing and the console exclude
each other even when their requests arrive at the same moment.

Through the real app and a real SQLite file, against the simulated GRBL on a real pty.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from laserd.keys import JOBS, LINK, MACHINE, SAFETY, SIMULATOR
from tests.api.machine_helpers import (
    laser_enable_off,
    raster_lines,
    ready_file,
    sim_client,
    sim_settings,
    wait_for,
)

API = "/api/v1"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path) -> Any:
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))


async def settle(client: Any, account: Any) -> None:
    """Stop whatever won and wait until the machine is idle with the laser off."""
    jobs, machine, link = client.app[JOBS], client.app[MACHINE], client.app[LINK]
    active = jobs.active
    if active is not None:
        await client.post(f"{API}/jobs/{active.id}/cancel", headers=account.headers)
    await wait_for(lambda: jobs.active is None and not machine.framing, 30)
    await wait_for(lambda: link.state in ("idle", "alarm"), 10)
    if link.state == "alarm":  # a cancel mid-motion leaves ALARM:3 behind
        r = await client.post(f"{API}/machine/unlock", headers=account.headers)
        assert r.status == 200, await r.text()
        await wait_for(lambda: link.state == "idle", 10)
    assert laser_enable_off(client.app)


async def test_a_laser_on_frame_and_a_job_started_together_one_wins(
    client, user, make_account
) -> None:
    other = await make_account("user")
    job_file = await ready_file(client, user.id, raster_lines(60, 30))
    frame_file = await ready_file(client, other.id, raster_lines(2, 2), name="frame.gcode")
    for round_no in range(8):
        start_job = client.post(
            f"{API}/jobs", json={"file_id": job_file["id"]}, headers=user.headers
        )
        frame = client.post(
            f"{API}/machine/frame",
            json={"file_id": frame_file["id"], "power_pct": 5},
            headers=other.headers,
        )
        # Alternate which request is sent first: each may be the one that wins.
        pair = (start_job, frame) if round_no % 2 == 0 else (frame, start_job)
        first, second = await asyncio.gather(*pair)
        answers = {"job": first, "frame": second} if round_no % 2 == 0 else {
            "frame": first, "job": second}
        ok = [name for name, r in answers.items() if 200 <= r.status < 300]
        refused = [r for r in answers.values() if r.status == 409]
        assert len(ok) == 1 and len(refused) == 1, (
            round_no, {n: (r.status, await r.text()) for n, r in answers.items()})
        assert (await refused[0].json())["error"]["code"] == "machine_busy"
        await settle(client, user)
    assert client.app[SIMULATOR].laser_on is False


async def test_each_use_of_the_machine_excludes_the_others(client, user, admin) -> None:
    """While one use holds the machine, the others answer 409 machine_busy at once."""
    f = await ready_file(client, user.id, raster_lines(2, 2))
    machine = client.app[MACHINE]
    claim = machine.use.claim("homing")
    try:
        attempts = [
            ("/jobs", {"file_id": f["id"]}, user),
            ("/machine/frame", {"file_id": f["id"], "power_pct": 5}, user),
            ("/machine/frame", {"file_id": f["id"]}, user),
            ("/machine/jog", {"x": 1, "feed": 500}, user),
            ("/machine/home", None, user),
            ("/machine/console", {"line": "G0 X1"}, admin),
        ]
        for path, body, who in attempts:
            r = await client.post(API + path, json=body, headers=who.headers)
            assert r.status == 409, (path, r.status, await r.text())
            err = (await r.json())["error"]
            assert err["code"] == "machine_busy" and "homing" in err["message"], (path, err)
    finally:
        machine.use.release(claim)
    assert client.app[SAFETY].armed is False
    r = await client.post(f"{API}/machine/jog", json={"x": 1, "feed": 500}, headers=user.headers)
    assert r.status == 200, await r.text()


async def test_a_job_stopped_before_its_task_ran_frees_the_machine(client, user) -> None:
    """A trip can cancel a job's task in the same loop step that created it: the task never
    runs, so its own ending never runs either. The machine must not stay claimed."""
    from laserd.job_view import ActiveJob
    from laserd.keys import DB
    from laserd.store import jobs as jobs_store

    jobs = client.app[JOBS]
    f = await ready_file(client, user.id, raster_lines(2, 2))
    row = await jobs_store.insert(
        client.app[DB], file_id=f["id"], user_id=user.id, file_name="x", lines_total=5
    )
    # What submit() does, then the trip listener's cancel before the loop runs the task.
    a = ActiveJob(row=row, path="unused", estimated_s=None, air_assist=False)
    a.claim = jobs.use.claim(f"job {row['id']}")
    jobs._active = a
    a.task = asyncio.get_running_loop().create_task(jobs._run(a))
    a.task.add_done_callback(lambda _t: jobs._never_ran(a, _t))
    a.outcome = ("failed", "interlock:estop")
    a.task.cancel()
    await wait_for(lambda: a.done.is_set(), 10)
    assert jobs.active is None and not jobs.use.busy
    assert laser_enable_off(client.app)
    async with client.app[DB].execute("SELECT state, error FROM jobs WHERE id = ?",
                                      (row["id"],)) as cur:
        assert tuple(await cur.fetchone()) == ("failed", "interlock:estop")
    r = await client.post(f"{API}/jobs", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 201, await r.text()
