"""Time estimates through the real app: stats from the planner model with the controller's
settings, re-estimated when the controller's ``$$`` values change (API.md "Estimates")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from laserd.estimates import FILE_NAME, EstimateProfile
from laserd.keys import LINK, PROCESSING, SETTINGS
from laserd.planner_settings import CHECKPOINTS_KEY, PlannerSettings
from tests.api.conftest import create_account
from tests.api.machine_helpers import sim_client, sim_settings, wait_for
from tests.api.test_files import new_project, processed, upload

# 10 × a 20 mm square with 90° corners at F3000: the corners cost time distance/feed ignores.
SQUARES = "G21G90\nM4S300F3000\n" + "G1X20\nG1Y20\nG1X0\nG1Y0\n" * 10 + "M5\n"
NAIVE_S = 800 / 50


@pytest.fixture
async def sim(aiohttp_client: Any, tmp_path) -> Any:
    """The app on the simulated controller (its own state folder and accounts)."""
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "sim-state"))


async def _ready(client: Any, account: Any, text: str) -> dict[str, Any]:
    project = await new_project(client, account)
    r = await upload(client, account, project["id"], "squares.gcode", text.encode())
    assert r.status == 201, await r.text()
    file = await processed(client, account, (await r.json())["id"])
    assert file["status"] == "ready", file
    return file


async def test_stats_give_the_model_estimate_and_the_settings_used(client, user) -> None:
    file = await _ready(client, user, SQUARES)
    stats = file["stats"]
    # no controller was ever connected: GRBL laser defaults
    assert stats["estimate_settings"] == PlannerSettings().as_dollars()
    assert NAIVE_S + 0.5 < stats["estimated_s"] < NAIVE_S * 1.2
    assert CHECKPOINTS_KEY not in stats  # stored for the job runner, not part of the API
    r = await client.get(f"/api/v1/projects/{file['project_id']}/files", headers=user.headers)
    listed = (await r.json())["items"][0]["stats"]
    assert listed["estimate_settings"] and CHECKPOINTS_KEY not in listed


async def test_estimates_follow_the_controller_settings(sim) -> None:
    user = await create_account(sim, "user")
    link = sim.app[LINK]
    file = await _ready(sim, user, SQUARES)
    before = file["stats"]["estimated_s"]
    # The simulated board's acceleration drops to a tenth: every corner and stop is slower.
    for cmd in ("$120=100", "$121=100"):
        await link.command(cmd)

    async def reestimated() -> dict[str, Any] | None:
        r = await sim.get(f"/api/v1/files/{file['id']}", headers=user.headers)
        body = await r.json()
        used = body["stats"]["estimate_settings"]
        # each $N= write is reported as it happens: wait for the estimate that used both
        return body if used["120"] == used["121"] == 100.0 else None

    after = await wait_for(reestimated, 30, 0.2)
    assert after["stats"]["estimated_s"] > before + 2.0
    assert after["status"] == "ready" and after["stats"]["lines"] == file["stats"]["lines"]
    # the values are kept for the next start (files uploaded while the board is off)
    saved = json.loads((sim.app[SETTINGS].storage.state_dir / FILE_NAME).read_text())
    assert saved["120"] == 100.0
    # and a new upload uses them straight away
    again = await _ready(sim, user, SQUARES)
    assert again["stats"]["estimated_s"] == pytest.approx(after["stats"]["estimated_s"])
    assert sim.app[PROCESSING].profile.dollars["121"] == 100.0


def test_profile_loads_updates_and_ignores_a_partial_listing(tmp_path) -> None:
    profile = EstimateProfile(tmp_path)
    assert not profile.from_controller
    assert profile.dollars == PlannerSettings().as_dollars()
    assert profile.update({"$110": "3000"}) is False  # not a complete $$ listing
    full = {f"${k}": str(v) for k, v in PlannerSettings().as_dollars().items()}
    assert profile.update(full) is False  # same values as the defaults: nothing to redo
    assert profile.from_controller and (tmp_path / FILE_NAME).is_file()
    full["$110"] = "3000"
    assert profile.update(full) is True
    reloaded = EstimateProfile(tmp_path)
    assert reloaded.dollars["110"] == 3000.0 and reloaded.from_controller
    assert reloaded.differs_from(PlannerSettings().as_dollars())
    assert not reloaded.differs_from(reloaded.dollars)
    assert reloaded.differs_from(None)
    (tmp_path / FILE_NAME).write_text("{not json")
    assert EstimateProfile(tmp_path).dollars == PlannerSettings().as_dollars()


def test_profile_keeps_new_values_when_it_cannot_save_them(tmp_path, monkeypatch, caplog) -> None:
    """Out of descriptors (EMFILE: a LAN client flooding the server) or a broken state
    directory: the new values count in memory and one warning says why they were not saved,
    no exception (it would reach the event bus as a traceback per settings change)."""
    import errno
    import tempfile

    def no_descriptors(*_a: Any, **_k: Any) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    profile = EstimateProfile(tmp_path)
    full = {f"${k}": str(v) for k, v in PlannerSettings().as_dollars().items()}
    full["$110"] = "3000"
    monkeypatch.setattr(tempfile, "mkstemp", no_descriptors)
    with caplog.at_level("WARNING", logger="laserd.estimates"):
        assert profile.update(full) is True
    assert profile.dollars["110"] == 3000.0 and profile.from_controller
    assert "Too many open files" in caplog.text and not (tmp_path / FILE_NAME).exists()
    monkeypatch.undo()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with caplog.at_level("WARNING", logger="laserd.estimates"):
        assert EstimateProfile(blocked).update(full) is True
