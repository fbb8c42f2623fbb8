"""Overrides belong to a job: refused outside one, 100 % at every job's start (confirmed by the
controller's ``Ov:`` field before the first line) and reset at its end.

Through the real app and a real SQLite file, against the simulated GRBL on a real pty. The
power that actually burned is read from the simulator's record of the beam (``laser_log``:
every change of the beam with its power in S units, overrides applied).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from laserd.grbl.protocol import RT
from laserd.keys import LINK, SIMULATOR
from tests.api.machine_helpers import (
    laser_enable_off,
    ready_file,
    sim_client,
    sim_settings,
    wait_for,
)

API = "/api/v1"
#: What the test files burn at; $30 is 1000 on the simulator, so 200 % would show as S1000.
FILE_S = 500


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path) -> Any:
    # Slow enough that a job of a few 100 mm strokes runs long enough to be steered.
    settings = sim_settings(tmp_path / "state", simulator={"time_scale": 20.0})
    return await sim_client(aiohttp_client, settings)


def strokes(n: int) -> list[str]:
    """``n`` 100 mm burns at S500. No M2/M30 at the end: those would reset the overrides on
    GRBL themselves, and many real files end without them."""
    out = ["G90", "G21", f"M3S{FILE_S}", "G0X0Y0"]
    for i in range(n):
        out.append(f"G1X{100 if i % 2 == 0 else 0}Y{i * 0.5:.1f}F3000")
    return [*out, "M5", "G0X0Y0"]


async def run_job(client: Any, account: Any, lines: list[str]) -> dict[str, Any]:
    f = await ready_file(client, account.id, lines)
    r = await client.post(f"{API}/jobs", json={"file_id": f["id"]}, headers=account.headers)
    assert r.status == 201, await r.text()
    return await r.json()


async def until(client: Any, account: Any, job_id: int, *states: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await client.get(f"{API}/jobs/{job_id}", headers=account.headers)
        job = await r.json()
        return job if job["state"] in states else None

    return await wait_for(check, 60, 0.02)


def burned_powers(sim: Any) -> list[float]:
    """The beam's power at every moment it was on since the record was last cleared."""
    return [power for _, on, power in sim.record_snapshot().laser_log if on]


async def test_overrides_are_refused_while_no_job_runs(client, user, admin) -> None:
    sim = client.app[SIMULATOR]
    for who in (user, admin):
        r = await client.post(f"{API}/machine/overrides", json={"power": 200}, headers=who.headers)
        assert r.status == 409, await r.text()
        assert (await r.json())["error"]["code"] == "no_job_running"
    await asyncio.sleep(0.3)  # a byte that had been written would have arrived by now
    assert sim.overrides == (100, 100, 100)
    assert not any(b in (RT.POWER_PLUS_10, RT.POWER_PLUS_1) for _, b in sim.record.realtime_log)


async def test_an_override_left_by_a_completed_job_does_not_reach_the_next(
    client, user, make_account
) -> None:
    sim = client.app[SIMULATOR]
    first = await run_job(client, user, strokes(20))
    await until(client, user, first["id"], "running")
    r = await client.post(f"{API}/machine/overrides", json={"power": 200}, headers=user.headers)
    assert r.status == 200, await r.text()
    await wait_for(lambda: sim.overrides[2] == 200, 5)
    # the override did act on this job: S500 burned at S1000
    await wait_for(lambda: max(burned_powers(sim), default=0) == 2 * FILE_S, 10)
    done = await until(client, user, first["id"], "completed", "failed", "cancelled")
    assert done["state"] == "completed", done
    # reset with the job's end, and the dashboard's figures say so
    await wait_for(lambda: sim.overrides == (100, 100, 100), 5)
    link = client.app[LINK]
    await wait_for(lambda: link.status is not None and link.status.overrides.power == 100, 5)
    r = await client.get(f"{API}/machine", headers=user.headers)
    assert (await r.json())["overrides"] == {"feed": 100, "rapid": 100, "power": 100}

    sim.clear_record()
    other = await make_account("user")
    second = await run_job(client, other, strokes(4))
    done = await until(client, other, second["id"], "completed", "failed", "cancelled")
    assert done["state"] == "completed", done
    powers = burned_powers(sim)
    assert powers and max(powers) == FILE_S, powers


async def test_every_job_starts_at_100_percent_whatever_the_controller_was_left_at(
    client, user
) -> None:
    """Overrides changed behind laserd's back (another program on the port, a lost reset at
    the end of a job): the job resets them itself and waits for the controller to agree."""
    sim, link = client.app[SIMULATOR], client.app[LINK]
    for byte in [RT.POWER_PLUS_10] * 10 + [RT.FEED_PLUS_10] * 5 + [RT.RAPID_25]:
        assert link.realtime(byte)
    await wait_for(lambda: sim.overrides == (150, 25, 200), 5)
    sim.clear_record()
    job = await run_job(client, user, strokes(4))
    done = await until(client, user, job["id"], "completed", "failed", "cancelled")
    assert done["state"] == "completed", done
    powers = burned_powers(sim)
    assert powers and max(powers) == FILE_S, powers
    # the three resets went out before the job's first line reached the controller
    sent = [b for _, b in sim.record_snapshot().realtime_log]
    assert {RT.FEED_100, RT.POWER_100, RT.RAPID_100} <= set(sent)


async def test_a_controller_that_does_not_confirm_100_percent_fails_the_job_laser_off(
    client, user
) -> None:
    sim, link = client.app[SIMULATOR], client.app[LINK]
    for _ in range(10):
        assert link.realtime(RT.POWER_PLUS_10)
    await wait_for(lambda: sim.overrides[2] == 200, 5)
    sim.ignore_realtime(RT.POWER_100)  # this board loses the power reset
    sim.clear_record()
    lines_before = sim.record.lines_received
    job = await run_job(client, user, strokes(4))
    done = await until(client, user, job["id"], "completed", "failed", "cancelled")
    assert done["state"] == "failed", done
    assert "did not confirm" in done["error"] and "power 200 %" in done["error"], done["error"]
    assert done["lines_sent"] == 0
    assert laser_enable_off(client.app)
    assert burned_powers(sim) == [] and sim.laser_on is False
    assert sim.record.lines_received == lines_before  # not one line of the job was sent
    # a board that does reset them runs the same file normally
    sim.ignore_realtime()
    again = await client.post(
        f"{API}/jobs", json={"file_id": job["file_id"]}, headers=user.headers
    )
    assert again.status == 201, await again.text()
    done = await until(client, user, (await again.json())["id"], "completed", "failed")
    assert done["state"] == "completed", done
    assert max(burned_powers(sim)) == FILE_S


async def test_overrides_during_a_job_reach_the_controller_and_end_with_it(client, user) -> None:
    sim = client.app[SIMULATOR]
    job = await run_job(client, user, strokes(40))
    await until(client, user, job["id"], "running")
    r = await client.post(
        f"{API}/machine/overrides",
        json={"feed": 137, "power": 42, "rapid": 25},
        headers=user.headers,
    )
    assert r.status == 200, await r.text()
    await wait_for(lambda: sim.overrides == (137, 25, 42), 5)
    r = await client.post(f"{API}/machine/overrides", json={"feed": 5}, headers=user.headers)
    assert r.status == 422
    r = await client.post(f"{API}/jobs/{job['id']}/pause", headers=user.headers)
    assert r.status == 200
    r = await client.post(f"{API}/machine/overrides", json={"power": 90}, headers=user.headers)
    assert r.status == 200, "a paused job may be adjusted before it resumes"
    await wait_for(lambda: sim.overrides == (137, 25, 90), 5)
    r = await client.post(f"{API}/jobs/{job['id']}/cancel", headers=user.headers)
    assert r.status == 200
    await until(client, user, job["id"], "cancelled")
    await wait_for(lambda: sim.overrides == (100, 100, 100), 5)
