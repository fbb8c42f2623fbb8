"""Settings that would make too much G-code are refused up front (issue 12, item 9).

Through the real app and a real SQLite file: the upload, the re-process and the change of a
project's laser settings refuse with 422 ``output_too_large`` and the numbers; a file queued
without that check (a lowered cap at the next start) fails in the worker with the numbers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from laserd.app import create_app
from laserd.gcode import output as output_mod
from laserd.keys import DB
from tests.api.conftest import Account, create_account, error_of
from tests.api.test_files import form, new_project, processed, upload
from tests.conftest import bare_hardware, make_settings

API = "/api/v1"
ISSUE_LASER = {"width_mm": 390, "line_interval_mm": 0.05, "passes": 50}


def noise_png(w: int = 1024, h: int = 1024) -> bytes:
    """About 1 MB of grey noise (the picture of the report)."""
    from io import BytesIO

    rng = np.random.default_rng(12)  # fixed: CI is deterministic
    buf = BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def stored(settings: Any) -> list[str]:
    dirs = (settings.uploads_dir, settings.generated_dir, settings.tmp_dir)
    return sorted(p.name for d in dirs if d.exists() for p in d.iterdir())


async def test_upload_that_would_make_tens_of_gb_is_refused_with_the_numbers(
    client: Any, user: Account, settings: Any
) -> None:
    project = await new_project(client, user, **ISSUE_LASER)
    content = noise_png()
    assert len(content) > 1_000_000
    r = await upload(client, user, project["id"], "noise.png", content)
    assert r.status == 422, await r.text()
    err = await error_of(r)
    assert err["code"] == "output_too_large"
    assert "7800×7800 pixels × 50 passes" in err["message"] and "max_gcode_mb" in err["message"]
    assert err["details"]["predicted_bytes"] > 30 << 30
    assert err["details"]["max_bytes"] == 2048 << 20
    assert stored(settings) == []  # the upload was removed again
    async with client.app[DB].execute("SELECT COUNT(*) FROM files") as cur:
        assert (await cur.fetchone())[0] == 0


async def test_patch_to_such_settings_is_refused_and_changes_nothing(
    client: Any, user: Account
) -> None:
    project = await new_project(client, user, width_mm=40, line_interval_mm=0.2)
    r = await upload(client, user, project["id"], "noise.png", noise_png())
    assert r.status == 201, await r.text()
    url = f"{API}/projects/{project['id']}"
    r = await client.patch(url, json={"laser": ISSUE_LASER}, headers=user.headers)
    assert r.status == 422, await r.text()
    assert (await error_of(r))["code"] == "output_too_large"
    assert "'noise.png'" in (await error_of(r))["message"]
    laser = (await (await client.get(url, headers=user.headers)).json())["laser"]
    assert laser["passes"] == 1 and laser["width_mm"] == 40
    # Settings that fit are accepted as before.
    r = await client.patch(url, json={"laser": {"passes": 3}}, headers=user.headers)
    assert r.status == 200


async def test_reprocess_is_refused_when_the_output_would_not_fit_on_the_disk(
    client: Any, user: Account, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = await new_project(client, user, width_mm=40, line_interval_mm=0.2)
    r = await upload(client, user, project["id"], "noise.png", noise_png(256, 256))
    file = await processed(client, user, (await r.json())["id"])
    assert file["status"] == "ready", file
    reserve = settings.storage.min_free_mb << 20
    monkeypatch.setattr(output_mod, "free_bytes", lambda _p: reserve + 10_000)  # ~10 kB left
    r = await client.post(f"{API}/files/{file['id']}/process", headers=user.headers)
    assert r.status == 422, await r.text()
    err = await error_of(r)
    assert err["code"] == "output_too_large" and err["details"]["limit"] == "free_space"
    assert "free" in err["message"]
    again = await (await client.get(f"{API}/files/{file['id']}", headers=user.headers)).json()
    assert again["status"] == "ready"  # untouched: not queued
    r = await client.post(
        f"{API}/projects/{project['id']}/files", data=form("b.png", noise_png(256, 256)),
        headers=user.headers,
    )  # fmt: skip
    assert r.status == 422 and (await error_of(r))["details"]["limit"] == "free_space"


async def test_a_file_queued_past_the_check_fails_in_the_worker_with_the_number(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """Processed fine under a 2 GB cap; left pending at a restart with a 1 MB cap."""
    state = tmp_path / "state"
    client = await aiohttp_client(create_app(make_settings(state), hardware=bare_hardware()))
    user = await create_account(client, "user")
    project = await new_project(client, user, width_mm=80, line_interval_mm=0.1)
    r = await upload(client, user, project["id"], "noise.png", noise_png(400, 400))
    file = await processed(client, user, (await r.json())["id"])
    assert file["status"] == "ready" and file["size"] > 0
    await client.app[DB].execute("UPDATE files SET status = 'pending' WHERE id = ?", (file["id"],))
    await client.app[DB].commit()
    await client.close()

    small_cap = make_settings(state, processing={"max_gcode_mb": 1})
    client = await aiohttp_client(create_app(small_cap, hardware=bare_hardware()))
    r = await client.post(
        f"{API}/auth/login", json={"username": user.username, "password": user.password}
    )
    headers = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        got = await (await client.get(f"{API}/files/{file['id']}", headers=headers)).json()
        if got["status"] in ("ready", "failed"):
            break
        assert asyncio.get_running_loop().time() < deadline, got
        await asyncio.sleep(0.1)
    assert got["status"] == "failed", got
    assert "800×800 pixels × 1 pass" in got["error"] and "1 MB" in got["error"], got["error"]
    assert not small_cap.gcode_path(file["id"]).exists()
