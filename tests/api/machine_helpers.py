"""Helpers for API tests that drive the simulated controller through the real app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from laserd.app import create_app
from laserd.db import utcnow
from laserd.hardware import simulated_hardware
from laserd.keys import DB, LINK, SETTINGS
from laserd.settings import Settings
from tests.conftest import make_settings

LID = {"name": "lid", "kind": "lid", "pin": 17}
ESTOP = {"name": "estop", "kind": "estop", "pin": 5}
COOLANT = {"name": "coolant", "kind": "coolant", "pin": 6}


def sim_settings(state_dir: Path, **sections: dict[str, Any]) -> Settings:
    base: dict[str, dict[str, Any]] = {
        "machine": {"simulate": True, "status_hz_idle": 10, "reconnect_s": 0.2},
        "simulator": {"time_scale": 200.0},
        "safety": {"resume_delay_s": 0.3, "interlocks": [LID, ESTOP, COOLANT]},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return make_settings(state_dir, **base)


async def sim_client(aiohttp_client: Any, settings: Settings) -> Any:
    app = create_app(settings, hardware=simulated_hardware(settings))
    client = await aiohttp_client(app)
    link = client.app[LINK]
    await wait_for(lambda: link.connected and link.state == "idle", 30)
    return client


async def wait_for(predicate: Any, timeout_s: float = 20.0, interval_s: float = 0.02) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)


def raster_lines(rows: int = 40, cols: int = 30) -> list[str]:
    """A small raster-like program of short lines (what image processing produces)."""
    out = ["G90", "G21", "M4S0", "G0X0Y0", "G1F3000"]
    for r in range(rows):
        y = r * 0.1
        xs = range(cols) if r % 2 == 0 else range(cols - 1, -1, -1)
        out.append(f"G0Y{y:.1f}")
        for c in xs:
            out.append(f"G1X{c * 0.1:.1f}S{(r * 7 + c * 13) % 1000}")
    out += ["M5", "G0X0Y0"]
    return out


async def ready_file(
    client: Any, owner_id: int, lines: list[str], *, name: str = "test.gcode"
) -> dict[str, Any]:
    """A processed file owned by ``owner_id`` (rows and generated G-code written directly)."""
    conn = client.app[DB]
    settings = client.app[SETTINGS]
    now = utcnow()
    cur = await conn.execute(
        "INSERT INTO projects (owner_id, name, laser_json, created_at, updated_at)"
        " VALUES (?, 'p', '{}', ?, ?)",
        (owner_id, now, now),
    )
    project_id = cur.lastrowid
    stats = {
        "lines": len(lines),
        "bounds": {"xmin": 0, "xmax": 3, "ymin": 0, "ymax": 4},
        "estimated_s": 10.0,
        "laser_on_mm": 100.0,
        "travel_mm": 10.0,
    }
    cur = await conn.execute(
        "INSERT INTO files (project_id, owner_id, name, kind, size, sha256, stored_name, status,"
        " progress, stats_json, laser_json, created_at, updated_at)"
        " VALUES (?, ?, ?, 'gcode', ?, ?, ?, 'ready', 1, ?, ?, ?, ?)",
        (
            project_id,
            owner_id,
            name,
            sum(len(x) + 1 for x in lines),
            "0" * 64,
            f"stored-{project_id}-{name}",
            json.dumps(stats),
            json.dumps({"travel_mm_min": 6000, "air_assist": True}),
            now,
            now,
        ),
    )
    file_id = int(cur.lastrowid or 0)
    path = settings.gcode_path(file_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return {"id": file_id, "project_id": project_id, "lines": len(lines)}


def laser_enable_off(app: Any) -> bool:
    """The laser-enable output as the pin reads (not the supervisor's flag): off and disarmed."""
    from laserd.keys import SAFETY

    out = app[SAFETY].laser_enable
    return out.pin.state == out.off_state and not out.armed
