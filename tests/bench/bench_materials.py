"""Material library figures (issue 15): LightBurn .clb import and export time, round trip.

Run: .venv/bin/python tests/bench/bench_materials.py [--repeat 5]
Prints JSON. The libraries are generated (tests/unit/clb_library.py, fixed seed) at a real
size (480 entries: 60 materials × 8) and a large one (4000 entries); each figure is the best
of --repeat runs of the pure functions the API runs in its worker thread. ``round_trip_ok``
says whether .clb → laserd → .clb → laserd gave the same materials. ``hostile_refusal_ms``:
how long the billion-laughs file and a 100 000-deep nesting take to be refused.
``test_grid_10x10``: a 10 × 10 fill grid with labels, from request to G-code that is ready to
run (geometry, plan, G-code, analysis: ``gcode_ms``) and with the preview picture drawn too
(``with_preview_ms``); and through the real app in-process (``api_ready_ms``): from
``POST /projects/{id}/test-grid`` to the file ``ready`` (generated, stored through the file
library, analysed and previewed by the processing pool), best and first (pool start) of 3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from laserd.designs import design_to_gcode  # noqa: E402
from laserd.materials import clb, clb_export  # noqa: E402
from laserd.materials.testgrid import TestGridRequest, build_test_grid  # noqa: E402
from tests.unit.clb_library import generate  # noqa: E402


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times) * 1000, 2)


def refusal_ms(data: bytes, repeat: int) -> float:
    def run() -> None:
        try:
            clb.import_library(data)
        except clb.ClbError:
            return
        raise AssertionError("not refused")

    return best_ms(run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    for label, materials in (("real_sized", 60), ("large", 500)):
        data, expected = generate(materials=materials, entries_per_material=8)
        first = clb.import_library(data).items
        exported = clb_export.export_library(first)
        second = clb.import_library(exported).items
        same = sorted(json.dumps(m, sort_keys=True) for m in first) == sorted(
            json.dumps(m, sort_keys=True) for m in second
        )
        figures[label] = {
            "entries": len(expected),
            "file_kb": round(len(data) / 1024, 1),
            "import_ms": best_ms(lambda d=data: clb.import_library(d), args.repeat),
            "export_ms": best_ms(lambda f=first: clb_export.export_library(f), args.repeat),
            "round_trip_ok": same and len(first) == len(expected),
        }
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><LightBurnLibrary>&b;</LightBurnLibrary>'
    )
    deep = b"<LightBurnLibrary>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</LightBurnLibrary>"
    figures["hostile_refusal_ms"] = {
        "billion_laughs": refusal_ms(laughs, args.repeat),
        "nesting_100k": refusal_ms(deep, args.repeat),
    }
    figures["test_grid_10x10"] = grid_figures(args.repeat)
    # The app prints its first-start setup code on stdout: keep stdout for the JSON figures.
    with contextlib.redirect_stdout(sys.stderr):
        figures["test_grid_10x10"].update(asyncio.run(api_figures()))
    print(json.dumps(figures, indent=2))


GRID_BODY = {
    "operation": "fill",
    "power_pct": {"min": 10, "max": 100, "steps": 10},
    "speed_mm_min": {"min": 500, "max": 5000, "steps": 10},
    "placement": {"x_mm": 20, "y_mm": 20},
}


async def api_figures() -> dict[str, Any]:
    from aiohttp.test_utils import TestClient, TestServer

    from laserd.app import create_app
    from laserd.keys import ACCOUNTS
    from tests.conftest import bare_hardware, make_settings

    state = Path(tempfile.mkdtemp(prefix="bench-grid-api-"))
    client = TestClient(TestServer(create_app(make_settings(state), bare_hardware())))
    await client.start_server()
    try:
        await client.app[ACCOUNTS].create_user(
            username="bench", email="bench@example.test", password="correct horse battery",
            role="user", status="active", email_verified=True,
        )  # fmt: skip
        r = await client.post(
            "/api/v1/auth/login", json={"username": "bench", "password": "correct horse battery"}
        )
        auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
        r = await client.post("/api/v1/projects", json={"name": "bench"}, headers=auth)
        project = (await r.json())["id"]
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = await client.post(
                f"/api/v1/projects/{project}/test-grid", json=GRID_BODY, headers=auth
            )
            file_id = (await r.json())["id"]
            while True:
                f = await (await client.get(f"/api/v1/files/{file_id}", headers=auth)).json()
                if f["status"] in ("ready", "failed"):
                    break
                await asyncio.sleep(0.01)
            assert f["status"] == "ready", f
            times.append(time.perf_counter() - t0)
        return {
            "api_ready_ms": round(min(times) * 1000, 1),
            "api_ready_first_ms": round(times[0] * 1000, 1),
        }
    finally:
        await client.close()
        shutil.rmtree(state, ignore_errors=True)


def grid_figures(repeat: int) -> dict[str, Any]:
    req = TestGridRequest.model_validate(
        {
            "operation": "fill",
            "power_pct": {"min": 10, "max": 100, "steps": 10},
            "speed_mm_min": {"min": 500, "max": 5000, "steps": 10},
        }
    )
    work = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    try:

        def run(preview: bool) -> None:
            grid = build_test_grid(req)
            design_to_gcode(
                grid.design,
                work / "grid.gcode",
                bed_mm=(400, 400),
                max_power_s=1000,
                preview_out=work / "grid.png" if preview else None,
            )

        return {
            "cells": 100,
            "gcode_ms": best_ms(lambda: run(False), repeat),
            "with_preview_ms": best_ms(lambda: run(True), repeat),
            "gcode_lines": sum(1 for _ in open(work / "grid.gcode")),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
