"""The Materials page and the material picker in headless Chromium against a real laserd."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN
from tests.browser.harness import Daemon
from tests.browser.test_ui import sign_in

pytestmark = pytest.mark.browser

CLB = b"""<?xml version="1.0" encoding="UTF-8"?>
<LightBurnLibrary DisplayName="Shop">
  <Material name="Cherry veneer">
    <Entry Thickness="0.6000" Desc="Cut" NoThickTitle="Cut">
      <CutSetting type="Cut"><speed Value="10"/><maxPower Value="55"/><minPower Value="5"/>
      </CutSetting>
    </Entry>
    <Entry Thickness="0.6000" Desc="Wobble"><CutSetting type="Offset Fill"/></Entry>
  </Material>
</LightBurnLibrary>
"""


def open_materials(page: Any, daemon: Daemon) -> None:
    sign_in(page, daemon, *ADMIN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Materials").click()
    expect(page.get_by_role("heading", name="Materials", level=1)).to_be_visible()


def test_starter_library_search_create_edit_delete(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    open_materials(page, daemon)
    rows = page.locator(".materials-table tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 14
    expect(page.get_by_text("Starter: verify with a test grid").first).to_be_visible()
    page.get_by_label("Search").fill("slate")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Slate")
    page.get_by_label("Search").fill("")
    page.get_by_label("Thickness (mm)").fill("5")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Cast acrylic")
    page.get_by_label("Thickness (mm)").fill("")

    # a new material: an out-of-range power is shown beside its field, then fixed
    page.get_by_role("button", name="New material").click()
    editor = page.get_by_role("form", name="New material")
    editor.get_by_label("Name").fill("Oak veneer")
    editor.get_by_label("Thickness (mm, optional)").fill("0.6")
    editor.get_by_label("Cut", exact=True).check()
    speed = editor.locator('[name="settings.cut.speed_mm_min"]')
    power = editor.locator('[name="settings.cut.power_pct"]')
    speed.fill("420")
    power.fill("150")
    editor.get_by_role("button", name="Add material").click()
    expect(power).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{power.get_attribute('id')}-err")).to_have_text("Between 0 and 100.")
    power.fill("80")
    editor.get_by_role("button", name="Add material").click()
    expect(page.locator(".toast", has_text="Saved Oak veneer")).to_be_visible()
    page.get_by_label("Search").fill("oak")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("420\u00a0mm/min · 80\u00a0%")

    # edit: add a fill operation
    page.get_by_role("button", name="Edit Oak veneer 0.6\u00a0mm").click()
    editor = page.get_by_role("form", name="Edit Oak veneer")
    editor.get_by_label("Fill (engrave areas)").check()
    editor.locator('[name="settings.fill.speed_mm_min"]').fill("3000")
    editor.locator('[name="settings.fill.power_pct"]').fill("30")
    editor.get_by_role("button", name="Save material").click()
    expect(rows.first).to_contain_text("fill: 3000\u00a0mm/min · 30\u00a0%")
    token = daemon.admin_token  # type: ignore[attr-defined]
    oak = daemon.api("GET", "/materials?q=oak", token=token)["items"][0]
    assert oak["settings"]["fill"]["power_pct"] == 30 and oak["settings"]["cut"]["power_pct"] == 80

    # delete, after confirming
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete Oak veneer 0.6\u00a0mm").click()
    expect(page.get_by_text("No material matches.")).to_be_visible()
    assert daemon.api("GET", "/materials?q=oak", token=token)["total"] == 0
    watch.check()


def test_import_reports_skipped_entries_and_export_downloads(
    daemon: Daemon, new_page: Any, tmp_path: Path
) -> None:
    page, watch = new_page()
    open_materials(page, daemon)
    clb = tmp_path / "shop.clb"
    clb.write_bytes(CLB)
    page.get_by_label("Imported library is for").select_option("co2")
    page.locator("#clb-file").set_input_files(str(clb))
    report = page.locator(".import-report")
    expect(report).to_contain_text("Imported 1 material from shop.clb.")
    expect(report).to_contain_text("Cherry veneer · Wobble")
    expect(report).to_contain_text("Offset Fill")
    expect(report).to_contain_text("minPower (1)")
    page.get_by_label("Search").fill("cherry")
    expect(page.locator(".materials-table tbody tr")).to_have_count(1)
    expect(page.locator(".materials-table tbody tr").first).to_contain_text("600\u00a0mm/min")
    expect(page.locator(".materials-table tbody tr").first).to_contain_text("CO₂")

    bad = tmp_path / "evil.clb"
    bad.write_bytes(b'<!DOCTYPE x [<!ENTITY a "b">]><LightBurnLibrary>&a;</LightBurnLibrary>')
    page.locator("#clb-file").set_input_files(str(bad))
    expect(report).to_contain_text("The library was not imported")
    expect(report).to_contain_text("DOCTYPE")

    with page.expect_download() as info:
        page.get_by_role("button", name="Export as .clb").click()
    path = info.value.path()
    data = Path(path).read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<LightBurnLibrary')
    assert b'<Material name="Cherry veneer">' in data
    watch.check()


def test_project_material_picker_fills_and_says_when_changed(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Leather tags"}, token=token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    page.get_by_text("Project and laser settings").click()
    picker = page.get_by_label("Material", exact=True)
    expect(
        picker.locator("option", has_text="Vegetable-tanned leather 2\u00a0mm · diode")
    ).to_have_count(1)
    # materials without image settings are not offered here
    expect(picker.locator("option", has_text="Card")).to_have_count(0)
    picker.select_option(label="Vegetable-tanned leather 2\u00a0mm · diode")
    power = page.get_by_label("Maximum power (%)")
    expect(power).to_have_value("30")
    status = page.locator(".material-status")
    expect(status).to_have_text("Settings from Vegetable-tanned leather 2\u00a0mm · diode.")
    power.fill("35")
    expect(status).to_have_text("From Vegetable-tanned leather 2\u00a0mm · diode, changed since.")
    page.get_by_role("button", name="Apply again").click()
    expect(power).to_have_value("30")
    expect(status).to_have_text("Settings from Vegetable-tanned leather 2\u00a0mm · diode.")
    power.fill("35")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".toast", has_text="Settings saved")).to_be_visible()
    saved = daemon.api("GET", f"/projects/{project['id']}", token=token)
    assert saved["material"]["name"] == "Vegetable-tanned leather"
    assert saved["material"]["matches"] is False and saved["laser"]["power_max_pct"] == 35
    # after a reload the page still knows where the settings came from
    page.reload()
    page.get_by_text("Project and laser settings").click()
    expect(page.locator(".material-status")).to_have_text(
        "From Vegetable-tanned leather 2\u00a0mm · diode, changed since."
    )
    watch.check()


def test_new_project_starts_from_a_material(daemon: Daemon, new_page: Any) -> None:
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(daemon.base + "/#/projects")
    page.get_by_text("New project").click()
    page.get_by_label("Name").fill("Slate coasters")
    page.get_by_label("Start from material").select_option(label="Slate · CO₂")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Slate coasters")).to_be_visible()
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("GET", "/projects", token=token)["items"][0]
    assert project["name"] == "Slate coasters" and project["material"]["matches"] is True
    assert project["laser"]["speed_mm_min"] == 15000
    watch.check()


def test_test_grid_from_form_to_saved_material(daemon: Daemon, new_page: Any) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Grid for birch"}, token=token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    page.get_by_text("Material test grid").click()
    form = page.get_by_role("form", name="Test grid")
    form.get_by_label("Operation").select_option("score")
    form.get_by_label("Power steps").fill("4")
    form.get_by_label("Speed steps").fill("3")
    form.get_by_label("Lowest speed (mm/min)").fill("600")
    form.get_by_label("Passes per cell").fill("2")
    form.get_by_label("Labels' power (%)").fill("25")
    form.get_by_label("Highest speed (mm/min)").fill("1800")
    # the preview follows the form before anything is made
    expect(form.locator(".grid-preview rect")).to_have_count(12)
    expect(form.locator("figcaption")).to_contain_text("12 cells")
    form.get_by_label("Lowest power (%)").fill("90")
    form.get_by_label("Highest power (%)").fill("30")
    form.get_by_role("button", name="Make test grid").click()
    expect(
        page.locator(f"#{form.get_by_label('Lowest power (%)').get_attribute('id')}-err")
    ).to_have_text("Must not exceed the highest power.")
    form.get_by_label("Lowest power (%)").fill("30")
    form.get_by_label("Highest power (%)").fill("90")
    form.get_by_role("button", name="Make test grid").click()
    expect(page.locator(".toast", has_text="Test grid made")).to_be_visible()
    detail = page.locator(".detail")
    expect(detail.get_by_role("heading", name="test-grid score 4x3.svg")).to_be_visible()
    cells = detail.locator(".grid-cells button")
    expect(cells).to_have_count(12)
    expect(cells.first).to_have_text("30%1800")  # top-left: lowest power, highest speed
    expect(detail.locator(".badge", has_text="Ready")).to_be_visible(timeout=60_000)
    detail.get_by_role("button", name="Save the cell at 70 % and 1200 mm/min as a material").click()
    saver = page.get_by_role("form", name="Save cell as material")
    saver.get_by_label("Material name").fill("Birch score")
    saver.get_by_label("Thickness (mm, optional)").fill("3")
    saver.get_by_role("button", name="Save as material").click()
    expect(page.locator(".toast", has_text="Saved as material: Birch score")).to_be_visible()
    m = daemon.api("GET", "/materials?q=Birch%20score", token=token)["items"][0]
    assert m["thickness_mm"] == 3 and m["settings"]["score"]["power_pct"] == 70
    assert m["settings"]["score"]["speed_mm_min"] == 1200 and m["settings"]["score"]["passes"] == 2
    grid_file = daemon.api("GET", f"/projects/{project['id']}/files", token=token)["items"][0]
    labels = next(lay for lay in grid_file["layers"] if lay["name"] == "labels")
    assert labels["power_pct"] == 25 and labels["speed_mm_min"] == 1800
    watch.check()


LID = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="80mm" viewBox="0 0 100 80">'
    b'<rect x="10" y="10" width="60" height="40" stroke="#ff0000" fill="none"/>'
    b'<path d="M 20 60 L 80 60" stroke="#0000ff" fill="none"/></svg>'
)


def test_design_layer_takes_a_material_and_says_when_changed(
    daemon: Daemon, new_page: Any, tmp_path: Path
) -> None:
    token = daemon.admin_token  # type: ignore[attr-defined]
    project = daemon.api("POST", "/projects", {"name": "Lid from birch"}, token=token)
    page, watch = new_page()
    sign_in(page, daemon, *ADMIN)
    page.goto(f"{daemon.base}/#/projects/{project['id']}")
    (tmp_path / "lid.svg").write_bytes(LID)
    page.set_input_files("#file-input", str(tmp_path / "lid.svg"))
    row = page.locator("li.file", has_text="lid.svg")
    expect(row).to_have_attribute("data-status", "ready", timeout=120_000)
    row.click()
    panel = page.locator("form.design-panel")
    picker = panel.get_by_label("Material for Stroke #ff0000")
    # the cut layer is offered materials with cut settings only
    expect(picker.locator("option", has_text="Birch plywood 3\u00a0mm · diode")).to_have_count(1)
    expect(picker.locator("option", has_text="Slate")).to_have_count(0)
    picker.select_option(label="Birch plywood 3\u00a0mm · diode")
    speed = panel.get_by_label("Speed of Stroke #ff0000 (mm/min)")
    expect(speed).to_have_value("300")
    expect(panel.get_by_label("Passes of Stroke #ff0000")).to_have_value("2")
    expect(panel.get_by_label("Air assist for Stroke #ff0000")).to_be_checked()
    status = panel.locator("tr[data-layer='1'] .material-status")
    expect(status).to_have_text("As in the material.")
    panel.get_by_label("Power of Stroke #ff0000 (%)").fill("95")
    expect(status).to_have_text("Changed since.")
    panel.get_by_label("Power of Stroke #ff0000 (%)").fill("100")
    expect(status).to_have_text("As in the material.")
    panel.get_by_role("button", name="Save and re-process").click()
    expect(page.locator(".toast", has_text="processed again")).to_be_visible()
    files = daemon.api("GET", f"/projects/{project['id']}/files", token=token)["items"]
    file = daemon.wait_file_ready(token, files[0]["id"])
    birch = next(
        m
        for m in daemon.api("GET", "/materials?q=Birch", token=token)["items"]
        if m["name"] == "Birch plywood" and m["laser_type"] == "diode"
    )
    layer = next(lay for lay in file["layers"] if lay["color"] == "#ff0000")
    assert layer["material_id"] == birch["id"]
    assert (layer["speed_mm_min"], layer["passes"], layer["air_assist"]) == (300, 2, True)
    # after the reload of the panel the layer still says where its settings came from
    expect(row).to_have_attribute("data-status", "ready", timeout=120_000)
    expect(page.locator("form.design-panel tr[data-layer='1'] .material-status")).to_have_text(
        "As in the material."
    )
    watch.check()
