"""Design files in headless Chromium against a real laserd: the layers panel and placement."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN
from tests.browser.harness import Daemon
from tests.browser.test_ui import LONG_S, sign_in

pytestmark = pytest.mark.browser

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="80mm" viewBox="0 0 100 80">'
    b'<rect x="10" y="10" width="60" height="40" stroke="#ff0000" fill="none"/>'
    b'<circle cx="30" cy="30" r="8" stroke="#ff0000" fill="none"/>'
    b'<path d="M 20 60 L 80 60" stroke="#0000ff" fill="none"/></svg>'
)


def test_layers_panel_edits_layers_and_placement(
    daemon: Daemon, new_page: Any, tmp_path: Path
) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Box lid"}, token=token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    (tmp_path / "lid.svg").write_bytes(SVG)
    page.set_input_files("#file-input", str(tmp_path / "lid.svg"))  # uploaded like any file
    row = page.locator("li.file", has_text="lid.svg")
    expect(row).to_have_attribute("data-status", "ready", timeout=LONG_S)
    expect(row.locator(".file-meta")).to_contain_text("svg")
    files = daemon.api("GET", f"/projects/{project['id']}/files", token=token)["items"]
    f = next(x for x in files if x["name"] == "lid.svg")
    row.click()
    panel = page.locator("form.design-panel")
    expect(panel.get_by_role("heading", name="Layers and placement")).to_be_visible()
    red_op = panel.get_by_label("Operation of Stroke #ff0000")
    blue_op = panel.get_by_label("Operation of Stroke #0000ff")
    expect(red_op).to_have_value("cut")
    expect(blue_op).to_have_value("score")
    # The swatch shows the layer's colour (set through CSSOM, no inline style attribute).
    swatch = panel.locator("tr[data-layer] .swatch").first
    colour = page.evaluate("(el) => getComputedStyle(el).backgroundColor", swatch.element_handle())
    assert colour == "rgb(255, 0, 0)"
    # Validation as you type: a power above 100 % disables saving and says why.
    power = panel.get_by_label("Power of Stroke #ff0000 (%)")
    power.fill("150")
    save = panel.get_by_role("button", name="Save and re-process")
    expect(save).to_be_disabled()
    expect(panel.locator(".reason")).to_have_text("Some values are out of range.")
    power.fill("80")
    expect(save).to_be_enabled()
    # Cut-only settings show for cut layers, not for score ones.
    expect(panel.get_by_label("Kerf of Stroke #ff0000 (mm)")).to_be_visible()
    expect(panel.get_by_label("Kerf of Stroke #0000ff (mm)")).to_be_hidden()
    blue_op.select_option("off")
    panel.get_by_label("X (mm)").fill("100")
    panel.get_by_label("Y (mm)").fill("50")
    panel.get_by_label("Rotation (°)").fill("90")
    save.click()
    expect(page.locator(".toast", has_text="processed again")).to_be_visible()
    file = daemon.wait_file_ready(token, f["id"])
    layers = {lay["color"]: lay for lay in file["layers"]}
    assert layers["#ff0000"]["power_pct"] == 80 and layers["#0000ff"]["operation"] == "off"
    assert file["placement"]["x_mm"] == 100 and file["placement"]["rotation_deg"] == 90
    assert file["stats"]["laser_bounds"]["xmin"] == pytest.approx(100, abs=0.5)
    # The page follows: ready again, with the saved values in the panel.
    expect(row).to_have_attribute("data-status", "ready", timeout=LONG_S)
    expect(panel.get_by_label("Operation of Stroke #0000ff")).to_have_value("off")
    expect(page.locator(".detail")).to_contain_text(re.compile(r"X 100(\.0)? …"))
    watch.check()


def test_bed_view_drags_the_design_and_saves_its_place(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Coasters"}, token=token)
    f = daemon.upload(token, project["id"], "coaster.svg", SVG, "image/svg+xml")
    daemon.wait_file_ready(token, f["id"])
    bed = daemon.api("GET", "/machine", token=token)["bed_mm"]
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    page.locator("li.file", has_text="coaster.svg").click()
    view = page.locator("svg.bed-view")
    expect(view).to_be_visible()
    view.scroll_into_view_if_needed()
    box = view.bounding_box()
    scale = min(box["width"] / bed["x"], box["height"] / bed["y"])  # px per mm (meet)
    item = page.locator("svg.bed-view .bed-file .bed-box")
    start = item.bounding_box()
    # Drag the design 50 mm right and 30 mm up (screen Y runs down).
    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 25 * scale, y0 - 15 * scale, steps=4)
    page.mouse.move(x0 + 50 * scale, y0 - 30 * scale, steps=4)
    page.mouse.up()
    panel = page.locator("form.design-panel")
    design_box = daemon.api("GET", f"/files/{f['id']}", token=token)["stats"]["design_box"]
    x = float(panel.get_by_label("X (mm)").input_value())
    y = float(panel.get_by_label("Y (mm)").input_value())
    assert x == pytest.approx(design_box["xmin"] + 50, abs=1.5)
    assert y == pytest.approx(design_box["ymin"] + 30, abs=1.5)
    # The arrow keys nudge it by 1 mm.
    page.locator("svg.bed-view .bed-file").press("ArrowRight")
    assert float(panel.get_by_label("X (mm)").input_value()) == pytest.approx(x + 1, abs=0.11)
    panel.get_by_role("button", name="Save and re-process").click()
    expect(page.locator(".toast", has_text="processed again")).to_be_visible()
    file = daemon.wait_file_ready(token, f["id"])
    assert file["stats"]["design_box"]["xmin"] == pytest.approx(x + 1, abs=0.2)
    assert file["stats"]["design_box"]["ymin"] == pytest.approx(y, abs=0.2)
    watch.check()


def test_dashboard_shows_the_job_live_on_the_bed(daemon: Daemon, new_page: Any) -> None:
    from tests.browser.test_ui import long_gcode

    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Live view"}, token=token)
    f = daemon.upload(token, project["id"], "live.gcode", long_gcode(300), "text/plain")
    daemon.wait_file_ready(token, f["id"])
    daemon.wait_machine_idle(token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    job = daemon.api("POST", "/jobs", {"file_id": f["id"]}, token=token)
    try:
        expect(page.locator(".job-state")).to_have_text("Running", timeout=30_000)
        live = page.locator(".live-bed")
        expect(live).to_be_visible()
        # The whole toolpath is known (300 burning moves plus travel) ...
        expect(live).to_have_attribute("data-segments", re.compile(r"^3\d\d$"), timeout=30_000)
        # ... and what the controller acknowledged is drawn as burned, the head as a dot.
        expect(live).to_have_attribute("data-burned", re.compile(r"^[1-9]\d*$"), timeout=60_000)
        expect(live).to_have_attribute("data-head", re.compile(r"^-?\d+\.\d,-?\d+\.\d$"))
        first = int(live.get_attribute("data-burned") or 0)
        page.wait_for_timeout(1500)
        assert int(live.get_attribute("data-burned") or 0) >= first
        watch.check()
    finally:
        daemon.api("POST", f"/jobs/{job['id']}/cancel", {}, token=token)
