"""Design files in headless Chromium against a real laserd: the layers panel and placement."""

from __future__ import annotations

import math
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
    scale = page.locator("svg.bed-view rect.bed").bounding_box()["width"] / bed["x"]  # px per mm
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


def _open_bed_view(daemon: Daemon, new_page: Any, name: str) -> tuple[Any, Any, Any, Any, float]:
    """A project with the test design uploaded and ready, its bed view open: (page, watch,
    file, bed, px per mm)."""
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": f"Bed {name}"}, token=token)
    f = daemon.upload(token, project["id"], name, SVG, "image/svg+xml")
    f = daemon.wait_file_ready(token, f["id"])
    bed = daemon.api("GET", "/machine", token=token)["bed_mm"]
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    page.locator("li.file", has_text=name).click()
    view = page.locator("svg.bed-view")
    expect(view).to_be_visible()
    view.scroll_into_view_if_needed()
    scale = page.locator("svg.bed-view rect.bed").bounding_box()["width"] / bed["x"]
    return page, watch, f, bed, scale


def _centre(locator: Any) -> tuple[float, float]:
    b = locator.bounding_box()
    return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    page.mouse.move(*mid, steps=4)
    page.mouse.move(*end, steps=4)
    page.mouse.up()


def test_bed_view_resizes_and_rotates_the_design_by_its_handles(
    daemon: Daemon, new_page: Any
) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    page, watch, f, _bed, scale = _open_bed_view(daemon, new_page, "tray.svg")
    box = f["stats"]["design_box"]
    w, h = box["xmax"] - box["xmin"], box["ymax"] - box["ymin"]
    panel = page.locator("form.design-panel")
    number = lambda label: panel.get_by_label(label).input_value()  # noqa: E731
    # The top-right corner dragged out along the diagonal by half the size: 1.5×, aspect kept,
    # the bottom-left corner stays; the width follows live while the button is held.
    hx, hy = _centre(page.locator('svg.bed-view circle.bed-handle[data-corner="top-right"]'))
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(hx + 0.25 * w * scale, hy - 0.25 * h * scale, steps=4)
    assert float(number("Width (mm)")) == pytest.approx(1.25 * w, abs=1.0)
    page.mouse.move(hx + 0.5 * w * scale, hy - 0.5 * h * scale, steps=4)
    page.mouse.up()
    assert float(number("Width (mm)")) == pytest.approx(1.5 * w, abs=1.0)
    assert number("Height (mm)") == ""  # one side alone: the server keeps the aspect ratio
    assert float(number("X (mm)")) == pytest.approx(box["xmin"], abs=0.6)
    assert float(number("Y (mm)")) == pytest.approx(box["ymin"], abs=0.6)
    width = float(number("Width (mm)"))
    # The round handle (above the centre) turned a quarter counter-clockwise, a little short:
    # Shift snaps it to 90°. The box turns about its centre.
    cx, cy = _centre(page.locator("svg.bed-view .bed-file .bed-box"))
    rx, ry = _centre(page.locator("svg.bed-view circle.bed-rotate"))
    d = cy - ry
    assert d > 0 and abs(rx - cx) < 2
    page.keyboard.down("Shift")
    _drag(page, (rx, ry), (cx - d, cy - d * 0.07))  # ≈ 86°
    page.keyboard.up("Shift")
    assert float(number("Rotation (°)")) == 90
    tall = width * h / w
    centre = (box["xmin"] + width / 2, box["ymin"] + tall / 2)
    x = float(number("X (mm)"))
    y = float(number("Y (mm)"))
    assert x == pytest.approx(centre[0] - tall / 2, abs=0.6)
    assert y == pytest.approx(centre[1] - width / 2, abs=0.6)
    expect(page.locator(".bed-warning")).to_be_hidden()
    panel.get_by_role("button", name="Save and re-process").click()
    expect(page.locator(".toast", has_text="processed again")).to_be_visible()
    file = daemon.wait_file_ready(token, f["id"])
    placement = file["placement"]
    assert placement["width_mm"] == pytest.approx(width) and placement["height_mm"] is None
    assert placement["rotation_deg"] == 90
    placed = file["stats"]["design_box"]
    assert placed["xmax"] - placed["xmin"] == pytest.approx(tall, abs=0.2)
    assert placed["ymax"] - placed["ymin"] == pytest.approx(width, abs=0.2)
    assert placed["xmin"] == pytest.approx(x, abs=0.2)
    assert placed["ymin"] == pytest.approx(y, abs=0.2)
    # The page follows: the redrawn box is turned (taller than wide on the screen now).
    row = page.locator("li.file", has_text="tray.svg")
    expect(row).to_have_attribute("data-status", "ready", timeout=LONG_S)
    expect(panel.get_by_label("Rotation (°)")).to_have_value("90")
    turned = page.locator("svg.bed-view .bed-file .bed-box").bounding_box()
    assert turned["height"] > turned["width"]
    watch.check()


def test_bed_view_flags_a_design_off_the_bed_and_shows_the_refusal(
    daemon: Daemon, new_page: Any
) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    page, watch, f, bed, scale = _open_bed_view(daemon, new_page, "wide.svg")
    box = f["stats"]["design_box"]
    w = box["xmax"] - box["xmin"]
    panel = page.locator("form.design-panel")
    # Stretched with Shift from the bottom-right corner past the bed's right edge.
    hx, hy = _centre(page.locator('svg.bed-view circle.bed-handle[data-corner="bottom-right"]'))
    page.keyboard.down("Shift")
    _drag(page, (hx, hy), (hx + (bed["x"] - box["xmax"] + 20) * scale, hy))
    page.keyboard.up("Shift")
    width = float(panel.get_by_label("Width (mm)").input_value())
    assert width == pytest.approx(bed["x"] - box["xmin"] + 20, abs=1.0) and width > w
    height = float(panel.get_by_label("Height (mm)").input_value())
    assert height == pytest.approx(box["ymax"] - box["ymin"], abs=0.6)
    warning = page.locator(".bed-warning")
    expect(warning).to_contain_text("Off the bed")
    expect(warning).to_contain_text(f"0 to {bed['x']:g}")
    expect(page.locator("svg.bed-view .bed-file")).to_have_class(re.compile("off-bed"))
    # The server refuses it with the numbers, and the page shows them.
    panel.get_by_role("button", name="Save and re-process").click()
    failure = page.locator(".detail .notice.error")
    expect(failure).to_contain_text("Processing failed", timeout=LONG_S)
    expect(failure).to_contain_text(re.compile(r"spans X [\d.]+ to [\d.]+ mm"))
    assert daemon.api("GET", f"/files/{f['id']}", token=token)["status"] == "failed"
    watch.check()


def test_bed_view_pinches_and_turns_with_two_fingers_and_follows_typed_numbers(
    daemon: Daemon, new_page: Any
) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    page, watch, f, _bed, scale = _open_bed_view(daemon, new_page, "pinch.svg")
    box = f["stats"]["design_box"]
    w, h = box["xmax"] - box["xmin"], box["ymax"] - box["ymin"]
    panel = page.locator("form.design-panel")
    cdp = page.context.new_cdp_session(page)
    cx, cy = _centre(page.locator("svg.bed-view .bed-file .bed-box"))
    r0 = 0.2 * w * scale

    def touch(kind: str, fingers: list[tuple[float, float]]) -> None:
        points = [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(fingers)]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    # Two fingers on the design, left and right of its centre, spread to twice the distance
    # and turned a quarter counter-clockwise (on the screen: the right finger goes up).
    touch("touchStart", [(cx - r0, cy), (cx + r0, cy)])
    for i in range(1, 9):
        a = math.pi / 2 * i / 8
        r = r0 * (1 + i / 8)
        touch("touchMove", [(cx - r * math.cos(a), cy + r * math.sin(a)),
                            (cx + r * math.cos(a), cy - r * math.sin(a))])  # fmt: skip
    touch("touchEnd", [])
    assert float(panel.get_by_label("Width (mm)").input_value()) == pytest.approx(2 * w, abs=1.5)
    assert float(panel.get_by_label("Rotation (°)").input_value()) == pytest.approx(90, abs=2)
    # The keyboard: ] turns 1° counter-clockwise (15° with Shift), + grows 1 %, − shrinks back.
    item = page.locator("svg.bed-view .bed-file")
    item.press("Shift+BracketRight")
    item.press("BracketRight")
    assert float(panel.get_by_label("Rotation (°)").input_value()) == pytest.approx(106, abs=2)
    width = float(panel.get_by_label("Width (mm)").input_value())
    item.press("+")
    assert float(panel.get_by_label("Width (mm)").input_value()) == pytest.approx(
        width * 1.01, abs=0.1
    )
    item.press("-")
    assert float(panel.get_by_label("Width (mm)").input_value()) == pytest.approx(width, abs=0.1)
    # Numbers typed in the form move the drawing: rotation 0 and X/Y at 10/20 put the box's
    # lower-left corner there, 2× the design's size.
    panel.get_by_label("Rotation (°)").fill("0")
    panel.get_by_label("X (mm)").fill("10")
    panel.get_by_label("Y (mm)").fill("20")
    bed_px = page.locator("svg.bed-view rect.bed").bounding_box()
    drawn = page.locator("svg.bed-view .bed-file .bed-box").bounding_box()
    assert drawn["x"] - bed_px["x"] == pytest.approx(10 * scale, abs=2)
    bottom = bed_px["y"] + bed_px["height"] - (drawn["y"] + drawn["height"])
    assert bottom == pytest.approx(20 * scale, abs=2)
    assert drawn["width"] == pytest.approx(2 * w * scale, abs=3)
    assert drawn["height"] == pytest.approx(2 * h * scale, abs=3)
    panel.get_by_role("button", name="Save and re-process").click()
    expect(page.locator(".toast", has_text="processed again")).to_be_visible()
    file = daemon.wait_file_ready(token, f["id"])
    placed = file["stats"]["design_box"]
    assert placed["xmin"] == pytest.approx(10, abs=0.2)
    assert placed["ymin"] == pytest.approx(20, abs=0.2)
    assert placed["xmax"] - placed["xmin"] == pytest.approx(2 * w, abs=1.5)
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
