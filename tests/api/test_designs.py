"""Design files through the real app: SVG and DXF uploads, layers, placement, re-processing."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import ezdxf
import numpy as np
import pytest
from PIL import Image

from tests.api.conftest import Account, error_of
from tests.api.test_files import new_project, processed, upload
from tests.conftest import make_settings
from tests.unit.design_replay import replay

API = "/api/v1"
DATA = Path(__file__).resolve().parent.parent / "data" / "svg"

SVG = (
    b'<?xml version="1.0"?>\n<!-- Created with a drawing program -->\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="80mm" viewBox="0 0 100 80">'
    b'<rect x="10" y="10" width="60" height="40" stroke="#ff0000" fill="none"/>'
    b'<circle cx="30" cy="30" r="8" stroke="#ff0000" fill="none"/>'
    b'<path d="M 20 60 L 80 60" stroke="#0000ff" fill="none"/>'
    b'<rect x="75" y="10" width="15" height="15" fill="#000000"/>'
    b'<text x="5" y="75">Part A</text></svg>'
)


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(tmp_path / "state", machine={"bed_mm": {"x": 300, "y": 200}})


async def _design(client: Any, user: Account, name: str, content: bytes) -> dict[str, Any]:
    project = await new_project(client, user)
    r = await upload(client, user, project["id"], name, content)
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["status"] in ("pending", "processing")
    return await processed(client, user, created["id"])


async def _gcode(client: Any, user: Account, file_id: int) -> str:
    r = await client.get(f"{API}/files/{file_id}/gcode", headers=user.headers)
    assert r.status == 200
    return (await r.read()).decode()


async def _patch(client: Any, user: Account, file_id: int, body: dict[str, Any]) -> Any:
    return await client.patch(f"{API}/files/{file_id}", json=body, headers=user.headers)


async def test_svg_upload_is_read_into_layers_planned_and_previewed(
    client: Any, user: Account
) -> None:
    file = await _design(client, user, "part.txt", SVG)  # sniffed by content, not by name
    assert file["kind"] == "svg" and file["status"] == "ready", file
    by_color = {lay["color"]: lay for lay in file["layers"]}
    assert by_color["#ff0000"]["operation"] == "cut"
    assert by_color["#0000ff"]["operation"] == "score"
    assert {lay["operation"] for lay in file["layers"]} == {"cut", "score", "fill"}
    assert file["placement"] is None
    assert any("text" in w and "Part A" in w for w in file["warnings"])
    stats = file["stats"]
    # As drawn: the page's lower-left corner at the bed's origin (page 80 mm high).
    assert stats["laser_bounds"]["xmin"] == pytest.approx(10, abs=0.05)
    assert stats["laser_bounds"]["ymax"] == pytest.approx(70, abs=0.05)
    assert stats["laser_on_mm"] > 200 + 2 * np.pi * 8 + 60
    assert stats["estimated_s"] > 0
    rp = replay(await _gcode(client, user, file["id"]))
    # The hole (circle) is cut before the rectangle that holds it.
    outline = next(k for k, b in enumerate(rp.burns)
                   if np.ptp(b[:, 1]) == pytest.approx(40, abs=0.1))  # fmt: skip
    hole = next(k for k, b in enumerate(rp.burns)
                if np.ptp(b[:, 0]) == pytest.approx(16, abs=0.1))  # fmt: skip
    assert hole < outline
    r = await client.get(f"{API}/files/{file['id']}/preview.png", headers=user.headers)
    assert r.status == 200
    px = np.asarray(Image.open(io.BytesIO(await r.read())).convert("RGB")).reshape(-1, 3)
    assert ((px[:, 0] > 180) & (px[:, 1] < 80) & (px[:, 2] < 80)).sum() > 100  # red cut layer
    assert ((px[:, 2] > 180) & (px[:, 0] < 80) & (px[:, 1] < 80)).sum() > 20  # blue score
    r = await client.get(f"{API}/files/{file['id']}/original", headers=user.headers)
    assert await r.read() == SVG
    assert r.content_type == "application/octet-stream"  # never rendered in the app's origin


async def test_patch_layers_and_placement_reprocesses(client: Any, user: Account) -> None:
    file = await _design(client, user, "part.svg", SVG)
    before = file["stats"]["laser_on_mm"]
    blue = next(lay["id"] for lay in file["layers"] if lay["color"] == "#0000ff")
    fill = next(lay["id"] for lay in file["layers"] if lay["operation"] == "fill")
    r = await _patch(client, user, file["id"], {
        "layers": [{"id": blue, "operation": "off"}, {"id": fill, "power_pct": 20,
                                                      "fill": {"interval_mm": 0.5}}],
        "placement": {"x_mm": 100, "y_mm": 50, "width_mm": 160},
    })  # fmt: skip
    assert r.status == 202, await r.text()
    assert (await r.json())["status"] in ("pending", "processing")
    file = await processed(client, user, file["id"])
    assert file["status"] == "ready", file
    layers = {lay["id"]: lay for lay in file["layers"]}
    assert layers[blue]["operation"] == "off"
    assert layers[fill]["power_pct"] == 20 and layers[fill]["fill"]["interval_mm"] == 0.5
    assert file["placement"]["x_mm"] == 100 and file["placement"]["width_mm"] == 160
    b = file["stats"]["laser_bounds"]
    # The design's box (all its geometry, the layer turned off too: 10..90 × 20..70 mm as
    # drawn) doubled with its lower-left corner at (100, 50); the lowest burn is the
    # rectangle's bottom edge, 10 mm above the off score line: at 50 + 2 × 10.
    assert b["xmin"] == pytest.approx(100, abs=0.3) and b["ymin"] == pytest.approx(70, abs=0.3)
    assert b["xmax"] == pytest.approx(260, abs=0.3) and b["ymax"] == pytest.approx(150, abs=0.3)
    assert file["stats"]["laser_on_mm"] != before
    text = await _gcode(client, user, file["id"])
    assert "S200" in text  # the fill at 20 % of $30 = 1000


async def test_placement_off_the_bed_fails_the_file_with_the_numbers(
    client: Any, user: Account
) -> None:
    file = await _design(client, user, "part.svg", SVG)
    r = await _patch(client, user, file["id"], {"placement": {"x_mm": 250, "y_mm": 10}})
    assert r.status == 202
    file = await processed(client, user, file["id"])
    assert file["status"] == "failed"
    assert "placed design spans X 250.00 to 330.00 mm" in file["error"]
    assert "0 to 300 mm in X" in file["error"]


async def test_patch_refusals(client: Any, user: Account, make_account: Any) -> None:
    file = await _design(client, user, "part.svg", SVG)
    r = await _patch(client, user, file["id"], {"layers": [{"id": 99, "power_pct": 5}]})
    assert r.status == 422
    err = await error_of(r)
    assert err["code"] == "validation_error" and "no layer 99" in err["message"]
    r = await _patch(client, user, file["id"], {"layers": [{"id": 1, "power_pct": 500}]})
    assert r.status == 422
    r = await _patch(client, user, file["id"], {"placement": {"rotation_deg": 1000}})
    assert r.status == 422
    r = await _patch(client, user, file["id"], {"colour": "red"})
    assert r.status == 422
    project = await new_project(client, user)
    r = await upload(client, user, project["id"], "job.gcode", b"G21G90\nG0X1Y1\nM5\n")
    gcode = await processed(client, user, (await r.json())["id"])
    r = await _patch(client, user, gcode["id"], {"placement": {"x_mm": 5, "y_mm": 5}})
    assert r.status == 422
    r = await _patch(client, user, gcode["id"], {"layers": [{"id": 1, "passes": 2}]})
    assert r.status == 422
    other = await make_account()
    r = await _patch(client, other, file["id"], {"placement": {"rotation_deg": 90}})
    assert r.status == 404  # another user's file does not exist for them


async def test_dxf_upload(client: Any, user: Account, tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    doc.header["$INSUNITS"] = 4
    doc.layers.add("CUT", color=1)
    msp = doc.modelspace()
    msp.add_lwpolyline([(0, 0), (50, 0), (50, 30), (0, 30)], close=True,
                       dxfattribs={"layer": "CUT"})  # fmt: skip
    msp.add_circle((25, 15), 5, dxfattribs={"layer": "CUT"})
    doc.saveas(tmp_path / "p.dxf")
    file = await _design(client, user, "plate.dxf", (tmp_path / "p.dxf").read_bytes())
    assert file["kind"] == "dxf" and file["status"] == "ready", file
    assert [(lay["name"], lay["operation"]) for lay in file["layers"]] == [("CUT", "cut")]
    assert file["stats"]["laser_bounds"] == {"xmin": 0, "xmax": 50, "ymin": 0, "ymax": 30}


async def test_hostile_svg_fails_cleanly_and_fast(client: Any, user: Account) -> None:
    xxe = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>')  # fmt: skip
    t0 = time.perf_counter()
    file = await _design(client, user, "evil.svg", xxe)
    assert time.perf_counter() - t0 < 10
    assert file["status"] == "failed"
    assert "entities" in file["error"] and "root:" not in file["error"]


async def test_real_svg_file(client: Any, user: Account) -> None:
    file = await _design(client, user, "crossover.svg", (DATA / "crossover.svg").read_bytes())
    assert file["status"] == "ready", file
    assert len(file["layers"]) == 3 and file["stats"]["lines"] > 100


async def test_image_placement_turns_the_engraving(client: Any, user: Account) -> None:
    im = Image.new("L", (40, 20), 255)
    im.paste(0, (0, 0, 10, 20))  # the left quarter black
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    project = await new_project(client, user, line_interval_mm=0.5, width_mm=40,
                                dither="threshold", overscan_mm=0)  # fmt: skip
    r = await upload(client, user, project["id"], "p.png", buf.getvalue())
    file = await processed(client, user, (await r.json())["id"])
    assert file["status"] == "ready" and file["layers"] is None
    r = await _patch(client, user, file["id"],
                     {"placement": {"x_mm": 100, "y_mm": 100, "rotation_deg": 90}})  # fmt: skip
    assert r.status == 202, await r.text()
    file = await processed(client, user, file["id"])
    assert file["status"] == "ready", file
    b = file["stats"]["laser_bounds"]
    # Turned a quarter: 20 mm wide, 40 high, the black quarter at the bottom.
    assert b["xmin"] == pytest.approx(100, abs=0.6) and b["xmax"] == pytest.approx(120, abs=0.6)
    assert b["ymin"] == pytest.approx(100, abs=0.6) and b["ymax"] == pytest.approx(110, abs=0.6)
