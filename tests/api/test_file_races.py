"""A file's life cycle against processing and job submission (issue 12, item 12).

Through the real app, a real SQLite file, the real processing pool and (for jobs) the simulated
controller: a file deleted while a worker converts it leaves nothing behind and its id, reused
by the next upload, carries that upload's result; a delete or a re-process arriving together
with a job start is decided once: exactly one of them wins.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from laserd.keys import DB, JOBS, PROCESSING, SETTINGS
from tests.api.conftest import Account, create_account, error_of
from tests.api.machine_helpers import raster_lines, ready_file, sim_client, sim_settings, wait_for
from tests.api.test_files import GCODE, new_project, processed, upload

API = "/api/v1"


def noise_png(side: int) -> bytes:
    rng = np.random.default_rng(21)  # fixed: CI is deterministic
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def leftovers(settings: Any) -> list[str]:
    dirs = (settings.uploads_dir, settings.generated_dir, settings.tmp_dir)
    return sorted(str(p) for d in dirs if d.exists() for p in d.iterdir())


async def test_delete_while_processing_stops_the_worker_and_leaves_nothing(
    client: Any, user: Account, settings: Any
) -> None:
    # 2000×2000 grey noise at 0.1 mm, 4 passes: many seconds of converting on this machine.
    project = await new_project(client, user, width_mm=200, line_interval_mm=0.1, passes=4)
    r = await upload(client, user, project["id"], "noise.png", noise_png(2000))
    assert r.status == 201, await r.text()
    file_id = (await r.json())["id"]
    processing = client.app[PROCESSING]

    async def converting() -> bool:
        got = await (await client.get(f"{API}/files/{file_id}", headers=user.headers)).json()
        return got["status"] == "processing" and got["progress"] > 0

    await wait_for(converting, 60, 0.05)
    r = await client.delete(f"{API}/files/{file_id}", headers=user.headers)
    assert r.status == 204, await r.text()
    deleted_at = time.monotonic()
    assert (await client.get(f"{API}/files/{file_id}", headers=user.headers)).status == 404

    # The id is free again (SQLite reuses the highest one): the next upload takes it while the
    # abandoned worker may still be winding down.
    r = await upload(client, user, project["id"], "job.gcode", GCODE)
    assert r.status == 201
    again = await r.json()
    assert again["id"] == file_id

    await wait_for(lambda: not processing.is_busy(file_id), 60, 0.05)
    # The worker stopped early: it saw the upload gone within a quarter second or so.
    assert time.monotonic() - deleted_at < 20
    new = await processed(client, user, again["id"])
    assert new["status"] == "ready", new
    assert new["kind"] == "gcode" and new["stats"]["lines"] == 6  # its own result, not the image's
    r = await client.get(f"{API}/files/{file_id}/gcode", headers=user.headers)
    assert await r.read() == b"G21G90\nG0X10Y10\nM4S500\nG1X30F1200\nG1Y30\nM5\n"
    # Of the deleted image nothing is left: no upload, no temporary; the generated files are
    # the new upload's (same id), and its G-code is its own (checked above).
    uploads = sorted(settings.uploads_dir.iterdir())
    assert [p.read_bytes() for p in uploads] == [GCODE]
    assert sorted(p.name for p in settings.generated_dir.iterdir()) == sorted(
        [f"{file_id}.gcode", f"{file_id}.png", f"{file_id}.thumb.png"]
    )
    assert list(settings.tmp_dir.iterdir()) == []


async def test_delete_of_a_queued_file_takes_it_off_the_queue(
    client: Any, user: Account, settings: Any
) -> None:
    project = await new_project(client, user, width_mm=200, line_interval_mm=0.1)
    first = await (await upload(client, user, project["id"], "a.png", noise_png(1500))).json()
    second = await (await upload(client, user, project["id"], "b.gcode", GCODE)).json()
    processing = client.app[PROCESSING]
    if processing.is_busy(second["id"]) and not processing.is_running(second["id"]):
        r = await client.delete(f"{API}/files/{second['id']}", headers=user.headers)
        assert r.status == 204
        assert not processing.is_busy(second["id"])
    r = await client.delete(f"{API}/files/{first['id']}", headers=user.headers)
    assert r.status == 204
    await wait_for(lambda: not processing.is_busy(first["id"]), 60, 0.05)
    await asyncio.sleep(0.2)
    left = [p for p in leftovers(settings) if "/uploads/" in p or p.endswith(".tmp")]
    assert len(left) <= 1  # b.gcode's upload, when it was processed before its delete


# --------------------------------------------------------------------------- with jobs


@pytest.fixture
async def sim(aiohttp_client: Any, tmp_path: Path) -> Any:
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))


async def _job_rows(client: Any) -> list[tuple[int, int | None, str]]:
    async with client.app[DB].execute("SELECT id, file_id, state FROM jobs ORDER BY id") as cur:
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def _cancel_active(client: Any, account: Account) -> None:
    active = client.app[JOBS].active
    if active is not None:
        r = await client.post(f"{API}/jobs/{active.id}/cancel", headers=account.headers)
        assert r.status == 200, await r.text()
    await wait_for(lambda: client.app[JOBS].active is None, 30)


@pytest.mark.parametrize("delete_first", [False, True], ids=["job-sent-first", "delete-sent-first"])
async def test_delete_and_job_start_at_the_same_moment_exactly_one_wins(
    sim: Any, delete_first: bool
) -> None:
    client = sim
    user = await create_account(client, "user")
    outcomes = set()
    for _ in range(4):
        f = await ready_file(client, user.id, raster_lines(40, 30))
        start = client.post(f"{API}/jobs", json={"file_id": f["id"]}, headers=user.headers)
        delete = client.delete(f"{API}/files/{f['id']}", headers=user.headers)
        pair = (delete, start) if delete_first else (start, delete)
        first, second = await asyncio.gather(*pair)
        r_delete, r_start = (first, second) if delete_first else (second, first)
        won = (r_start.status == 201, r_delete.status == 204)
        assert won in ((True, False), (False, True)), (r_start.status, r_delete.status)
        jobs = [j for j in await _job_rows(client) if j[1] == f["id"]]
        gone = await client.app[DB].execute("SELECT 1 FROM files WHERE id = ?", (f["id"],))
        file_left = await gone.fetchone() is not None
        if r_start.status == 201:
            assert r_delete.status == 409
            assert (await error_of(r_delete))["code"] == "file_in_use"
            assert file_left and len(jobs) == 1
            assert client.app[SETTINGS].gcode_path(f["id"]).is_file()
            outcomes.add("job")
        else:
            assert r_start.status in (404, 409), await r_start.text()
            assert not file_left and jobs == []
            assert not client.app[SETTINGS].gcode_path(f["id"]).exists()
            outcomes.add("delete")
        await _cancel_active(client, user)
    assert outcomes  # (which one wins depends on arrival; each round has exactly one winner)


async def test_reprocess_and_job_start_at_the_same_moment_exactly_one_wins(sim: Any) -> None:
    client = sim
    user = await create_account(client, "user")
    for _ in range(4):
        f = await ready_file(client, user.id, raster_lines(40, 30))
        start = client.post(f"{API}/jobs", json={"file_id": f["id"]}, headers=user.headers)
        again = client.post(f"{API}/files/{f['id']}/process", headers=user.headers)
        r_start, r_again = await asyncio.gather(start, again)
        assert (r_start.status == 201) != (r_again.status == 202), (r_start.status, r_again.status)
        if r_start.status == 201:
            assert r_again.status == 409 and (await error_of(r_again))["code"] == "file_in_use"
        else:
            assert r_start.status == 409
            assert (await error_of(r_start))["code"] == "file_not_ready"
        await _cancel_active(client, user)
        await wait_for(lambda f=f: not client.app[PROCESSING].is_busy(f["id"]), 60)
