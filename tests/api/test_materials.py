"""Materials API: starter library, visibility and roles, search, validation, .clb import/export."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from laserd.app import create_app
from tests.api.conftest import Account, error_of
from tests.conftest import bare_hardware

API = "/api/v1"

CUT = {"speed_mm_min": 300, "power_pct": 100, "passes": 2, "air_assist": True}


async def create(client: Any, account: Account, **body: Any) -> Any:
    body.setdefault("name", "Walnut veneer")
    body.setdefault("settings", {"cut": CUT})
    return await client.post(f"{API}/materials", json=body, headers=account.headers)


async def listing(client: Any, account: Account, query: str = "") -> dict[str, Any]:
    r = await client.get(f"{API}/materials?limit=200{query}", headers=account.headers)
    assert r.status == 200, await r.text()
    return await r.json()


def upload(data: bytes, name: str = "lib.clb") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


async def test_starter_library_is_shared_and_marked_to_verify(client: Any, guest: Account) -> None:
    page = await listing(client, guest)
    starter = [m for m in page["items"] if m["starter"]]
    assert len(starter) >= 14 and page["total"] == len(page["items"])
    assert all(m["shared"] and m["owner_id"] is None for m in starter)
    assert all("test grid" in m["description"] for m in starter)
    names = {m["name"] for m in starter}
    for wanted in ("Birch plywood", "MDF", "Cast acrylic", "Vegetable-tanned leather", "Slate"):
        assert wanted in names
    assert any(m["name"].startswith("Anodised aluminium") for m in starter)
    assert {m["laser_type"] for m in starter} == {"diode", "co2"}
    # every operation is present somewhere, with the layer field names
    ops = {op for m in starter for op, v in m["settings"].items() if v is not None}
    assert ops == {"cut", "score", "fill", "image"}
    ply = next(m for m in starter if m["name"] == "Birch plywood" and m["laser_type"] == "diode")
    assert ply["thickness_mm"] == 3 and ply["settings"]["cut"]["passes"] >= 1
    assert set(ply["settings"]["cut"]) >= {"speed_mm_min", "power_pct", "kerf_mm", "tabs", "fill"}
    assert "power_max_pct" in ply["settings"]["image"]


async def test_starter_seeded_once_and_restored_by_admins(
    client: Any, admin: Account, user: Account, settings: Any, aiohttp_client: Any
) -> None:
    page = await listing(client, admin)
    starters = [m for m in page["items"] if m["starter"]]
    for m in starters:
        r = await client.delete(f"{API}/materials/{m['id']}", headers=admin.headers)
        assert r.status == 204
    # a restart of the daemon on the same database does not bring them back
    second = await aiohttp_client(create_app(settings, bare_hardware()))
    r = await second.get(f"{API}/materials", headers=admin.headers)
    assert not [m for m in (await r.json())["items"] if m["starter"]]
    r = await client.post(f"{API}/materials/starter", headers=user.headers)
    assert r.status == 403
    r = await client.post(f"{API}/materials/starter", headers=admin.headers)
    assert r.status == 200 and (await r.json())["created"] == len(starters)
    r = await client.post(f"{API}/materials/starter", headers=admin.headers)
    assert (await r.json())["created"] == 0


async def test_personal_entries_are_private_and_shared_ones_admin_only(
    client: Any, user: Account, admin: Account, make_account: Any
) -> None:
    r = await create(client, user, thickness_mm=0.6, description="for marquetry")
    assert r.status == 201
    mine = await r.json()
    assert mine["shared"] is False and mine["owner_id"] == user.id and not mine["starter"]
    assert mine["settings"]["cut"]["power_pct"] == 100 and mine["settings"]["fill"] is None
    other = await make_account("user")
    assert mine["id"] not in {m["id"] for m in (await listing(client, other))["items"]}
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(
            method, f"{API}/materials/{mine['id']}", json={}, headers=other.headers
        )
        assert r.status == 404, method
    assert (await client.get(f"{API}/materials/{mine['id']}", headers=admin.headers)).status == 200
    # users cannot add to or change the shared library
    r = await create(client, user, shared=True)
    assert r.status == 403 and (await error_of(r))["code"] == "forbidden"
    r = await client.patch(
        f"{API}/materials/{mine['id']}", json={"shared": True}, headers=user.headers
    )
    assert r.status == 403
    r = await create(client, admin, name="Shop birch", shared=True)
    assert r.status == 201
    shop = await r.json()
    assert shop["id"] in {m["id"] for m in (await listing(client, other))["items"]}
    for method, body in (("PATCH", {"name": "Mine now"}), ("DELETE", None)):
        r = await client.request(
            method, f"{API}/materials/{shop['id']}", json=body, headers=other.headers
        )
        assert r.status == 403, method
    r = await client.patch(
        f"{API}/materials/{shop['id']}", json={"description": "proven"}, headers=admin.headers
    )
    assert r.status == 200 and (await r.json())["description"] == "proven"


async def test_guests_read_but_do_not_write(client: Any, guest: Account) -> None:
    assert (await listing(client, guest))["total"] > 0
    assert (await create(client, guest)).status == 403
    assert (await client.get(f"{API}/materials")).status == 401


async def test_search_by_name_and_thickness(client: Any, user: Account) -> None:
    for name, t in (("Zebrano 100%_x", 2), ("Zebrano", 3), ("zebrano offcut", None)):
        assert (await create(client, user, name=name, thickness_mm=t)).status == 201
    page = await listing(client, user, "&q=ZEBRANO")
    assert [m["name"] for m in page["items"]] == ["Zebrano", "Zebrano 100%_x", "zebrano offcut"]
    page = await listing(client, user, "&q=zebrano&thickness_mm=3.0")
    assert [m["name"] for m in page["items"]] == ["Zebrano"]
    # LIKE wildcards in the query are literal characters
    page = await listing(client, user, "&q=100%25_")
    assert [m["name"] for m in page["items"]] == ["Zebrano 100%_x"]
    page = await listing(client, user, "&q=plywood&thickness_mm=3")
    assert page["items"] and all(m["thickness_mm"] == 3 for m in page["items"])
    r = await client.get(f"{API}/materials?thickness_mm=abc", headers=user.headers)
    assert r.status == 422


async def test_validation_names_the_field(client: Any, user: Account) -> None:
    r = await create(client, user, settings={})
    assert r.status == 422 and (await error_of(r))["details"][0]["field"] == "settings"
    r = await create(client, user, settings={"cut": {**CUT, "power_pct": 150}})
    assert (await error_of(r))["details"][0]["field"] == "settings.cut.power_pct"
    r = await create(client, user, settings={"image": {"power_min_pct": 80, "power_max_pct": 20}})
    assert r.status == 422
    r = await create(client, user, settings={"engrave": CUT})
    assert r.status == 422
    r = await create(client, user, thickness_mm=-1)
    assert r.status == 422
    r = await create(client, user, laser_type="plasma")
    assert r.status == 422
    assert (await listing(client, user, "&q=Walnut"))["total"] == 0


async def test_patch_merges_operations_and_null_removes_one(client: Any, user: Account) -> None:
    m = await (await create(client, user, settings={"cut": CUT, "fill": CUT})).json()
    url = f"{API}/materials/{m['id']}"
    r = await client.patch(
        url,
        json={"settings": {"cut": {"power_pct": 80, "tabs": {"count": 2}}, "fill": None}},
        headers=user.headers,
    )
    assert r.status == 200, await r.text()
    s = (await r.json())["settings"]
    assert s["cut"]["power_pct"] == 80 and s["cut"]["passes"] == 2
    assert s["cut"]["tabs"] == {"count": 2, "width_mm": 1.0} and s["fill"] is None
    r = await client.patch(
        url, json={"settings": {"cut": {"speed_mm_min": 0}}}, headers=user.headers
    )
    assert (await error_of(r))["details"][0]["field"] == "settings.cut.speed_mm_min"
    r = await client.patch(url, json={"settings": {"cut": None}}, headers=user.headers)
    assert r.status == 422  # no operation left
    r = await client.patch(url, json={"thickness_mm": None, "name": "Walnut"}, headers=user.headers)
    body = await r.json()
    assert body["thickness_mm"] is None and body["name"] == "Walnut"
    assert body["settings"]["cut"]["power_pct"] == 80


CLB = b"""<?xml version="1.0" encoding="UTF-8"?>
<LightBurnLibrary DisplayName="Workshop">
  <Material name="Birch ply">
    <Entry Thickness="3.0000" Desc="Cut" NoThickTitle="Cut">
      <CutSetting type="Cut">
        <index Value="0"/><name Value="C00"/>
        <speed Value="8"/><maxPower Value="65"/><minPower Value="40"/>
        <numPasses Value="2"/><runBlower Value="1"/><kerf Value="0.12"/>
      </CutSetting>
    </Entry>
    <Entry Thickness="-1.0000" Desc="" NoThickTitle="Engrave">
      <CutSetting type="Scan">
        <speed Value="300"/><maxPower Value="20"/><interval Value="0.08"/>
        <angle Value="45"/><crossHatch Value="1"/><bidir Value="0"/><overscan Value="1.5"/>
      </CutSetting>
    </Entry>
    <Entry Thickness="3" Desc="Odd">
      <CutSetting type="Offset Fill"><speed Value="10"/></CutSetting>
    </Entry>
    <Entry Thickness="3" Desc="Broken speed">
      <CutSetting type="Cut"><speed Value="fast"/></CutSetting>
    </Entry>
    <Entry Thickness="3" Desc="Too strong">
      <CutSetting type="Cut"><maxPower Value="250"/></CutSetting>
    </Entry>
  </Material>
  <Material name="">
    <Entry Thickness="1" Desc="x"><CutSetting type="Cut"/></Entry>
  </Material>
  <Material name="Anodised Al">
    <Entry Thickness="-1" Desc="Mark and outline">
      <CutSetting type="Scan+Cut"><speed Value="25"/><maxPower Value="90"/>
        <zOffset Value="1"/></CutSetting>
    </Entry>
    <Entry Thickness="-1" Desc="Photo">
      <CutSetting_Img type="Image"><speed Value="50"/><maxPower Value="60"/>
        <minPower Value="5"/><ditherMode Value="jarvis"/><dpi Value="254"/></CutSetting_Img>
    </Entry>
  </Material>
</LightBurnLibrary>
"""


async def test_import_maps_fields_and_reports_what_it_skipped(client: Any, user: Account) -> None:
    r = await client.post(f"{API}/materials/import", data=upload(CLB), headers=user.headers)
    assert r.status == 201, await r.text()
    result = await r.json()
    assert result["created"] == 4
    reasons = {s["name"]: s["reason"] for s in result["skipped"]}
    assert set(reasons) == {
        "Birch ply · Odd",
        "Birch ply · Broken speed",
        "Birch ply · Too strong",
        "(no name)",
    }
    assert "Offset Fill" in reasons["Birch ply · Odd"]
    assert "speed" in reasons["Birch ply · Broken speed"]
    assert "power_pct" in reasons["Birch ply · Too strong"]
    assert result["ignored_fields"] == {"minPower": 1, "zOffset": 1}
    items = {(m["name"], m["description"]): m for m in (await listing(client, user))["items"]}
    cut = items[("Birch ply", "Cut")]
    assert cut["thickness_mm"] == 3 and not cut["shared"] and cut["owner_id"] == user.id
    assert cut["settings"]["cut"] == {
        "speed_mm_min": 480,
        "power_pct": 65,
        "passes": 2,
        "air_assist": True,
        "kerf_mm": 0.12,
        "tabs": {"count": 0, "width_mm": 0.5},
        "fill": {
            "interval_mm": 0.1,
            "angle_deg": 0,
            "crosshatch": False,
            "bidirectional": True,
            "overscan_mm": 0,
        },
    }
    engrave = items[("Birch ply", "Engrave")]
    assert engrave["thickness_mm"] is None
    fill = engrave["settings"]["fill"]
    assert fill["speed_mm_min"] == 18000 and fill["power_pct"] == 20 and fill["passes"] == 1
    assert fill["fill"] == {
        "interval_mm": 0.08,
        "angle_deg": 45,
        "crosshatch": True,
        "bidirectional": False,
        "overscan_mm": 1.5,
    }
    both = items[("Anodised Al", "Mark and outline")]["settings"]
    assert both["fill"]["speed_mm_min"] == both["cut"]["speed_mm_min"] == 1500
    photo = items[("Anodised Al", "Photo")]["settings"]["image"]
    assert photo["dither"] == "jarvis" and photo["line_interval_mm"] == 0.1
    assert (photo["power_min_pct"], photo["power_max_pct"], photo["speed_mm_min"]) == (5, 60, 3000)


async def test_import_into_the_shared_library_is_for_admins(
    client: Any, user: Account, admin: Account, make_account: Any
) -> None:
    url = f"{API}/materials/import?shared=true"
    r = await client.post(url, data=upload(CLB), headers=user.headers)
    assert r.status == 403
    r = await client.post(f"{url}&laser_type=co2", data=upload(CLB), headers=admin.headers)
    assert r.status == 201
    other = await make_account("user")
    shared = [m for m in (await listing(client, other))["items"] if m["name"] == "Birch ply"]
    assert len(shared) == 2 and all(m["shared"] and m["laser_type"] == "co2" for m in shared)
    r = await client.post(f"{url}&laser_type=plasma", data=upload(CLB), headers=admin.headers)
    assert r.status == 422


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<LightBurnLibrary><Material name="&lol3;"/></LightBurnLibrary>"""
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b'<LightBurnLibrary><Material name="&e;"/></LightBurnLibrary>'
)
UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><LightBurnLibrary/>'.encode(
    "utf-16"
)
DEEP = b"<LightBurnLibrary>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</LightBurnLibrary>"


async def test_hostile_and_wrong_files_are_refused_whole(client: Any, user: Account) -> None:
    cases = {
        "entities": BILLION_LAUGHS,
        "external": EXTERNAL,
        "utf16 doctype": UTF16_DOCTYPE,
        "deep": DEEP,
        "not xml": b"\x89PNG\r\n\x1a\n not a library",
        "other xml": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "truncated": CLB[: len(CLB) // 2],
    }
    for label, data in cases.items():
        started = time.perf_counter()
        r = await client.post(f"{API}/materials/import", data=upload(data), headers=user.headers)
        assert r.status == 422, label
        err = await error_of(r)
        assert err["code"] == "validation_error" and err["details"][0]["field"] == "file", label
        assert time.perf_counter() - started < 2, label
    r = await client.post(
        f"{API}/materials/import", data=upload(b" " * (8 * 1024 * 1024 + 1)), headers=user.headers
    )
    assert r.status == 413
    r = await client.post(f"{API}/materials/import", data=CLB, headers=user.headers)
    assert r.status == 415
    r = await client.post(f"{API}/materials/import", data=upload(b""), headers=user.headers)
    assert r.status == 422
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("other", "x")
    r = await client.post(f"{API}/materials/import", data=form, headers=user.headers)
    assert r.status == 422
    assert not [m for m in (await listing(client, user))["items"] if not m["shared"]]


async def test_export_opens_as_a_library_and_imports_back(
    client: Any, user: Account, make_account: Any
) -> None:
    r = await client.post(f"{API}/materials/import", data=upload(CLB), headers=user.headers)
    assert r.status == 201
    r = await client.get(f"{API}/materials/export.clb", headers=user.headers)
    assert r.status == 200 and r.content_type == "application/xml"
    assert "laserd-materials.clb" in r.headers["Content-Disposition"]
    exported = await r.read()
    assert exported.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<LightBurnLibrary')
    before = (await listing(client, user))["items"]
    other = await make_account("user")
    r = await client.post(f"{API}/materials/import", data=upload(exported), headers=other.headers)
    result = await r.json()
    assert result["skipped"] == [] and result["created"] == len(before)

    def key(m: dict[str, Any]) -> Any:
        return repr((m["name"], m["thickness_mm"], m["description"], m["settings"]))

    after = [m for m in (await listing(client, other))["items"] if not m["shared"]]
    assert sorted(map(key, after)) == sorted(map(key, before))


# ---------------------------------------------------------------- applying a material


async def starter_with(client: Any, account: Account, op: str, name: str) -> dict[str, Any]:
    items = (await listing(client, account, f"&q={name}"))["items"]
    return next(m for m in items if m["settings"][op] is not None and m["starter"])


async def test_applying_a_material_to_a_project_copies_its_image_settings_and_tracks_changes(
    client: Any, user: Account, admin: Account
) -> None:
    r = await client.post(
        f"{API}/projects",
        json={"name": "Coaster", "laser": {"width_mm": 80, "origin_mm": {"x": 5, "y": 6}}},
        headers=user.headers,
    )
    project = await r.json()
    assert project["material_id"] is None and project["material"] is None
    slate = await starter_with(client, admin, "image", "Slate")
    url = f"{API}/projects/{project['id']}"
    r = await client.patch(url, json={"material_id": slate["id"]}, headers=user.headers)
    assert r.status == 200, await r.text()
    body = await r.json()
    image = slate["settings"]["image"]
    assert {k: body["laser"][k] for k in image} == image
    assert body["laser"]["width_mm"] == 80 and body["laser"]["origin_mm"] == {"x": 5, "y": 6}
    assert body["material_id"] == slate["id"]
    assert body["material"] == {
        "id": slate["id"],
        "name": "Slate",
        "thickness_mm": None,
        "matches": True,
    }
    # the maker tweaks the power: still recorded, no longer matching
    r = await client.patch(url, json={"laser": {"power_max_pct": 11}}, headers=user.headers)
    body = await r.json()
    assert body["material_id"] == slate["id"] and body["material"]["matches"] is False
    # applying again restores the match; a change of the material itself breaks it again
    r = await client.patch(url, json={"material_id": slate["id"]}, headers=user.headers)
    assert (await r.json())["material"]["matches"] is True
    r = await client.patch(
        f"{API}/materials/{slate['id']}",
        json={"settings": {"image": {"power_max_pct": 77}}},
        headers=admin.headers,
    )
    assert r.status == 200
    body = await (await client.get(url, headers=user.headers)).json()
    assert (
        body["material"]["matches"] is False
        and body["laser"]["power_max_pct"] == image["power_max_pct"]
    )
    listed = (await (await client.get(f"{API}/projects", headers=user.headers)).json())["items"]
    assert listed[0]["material"]["matches"] is False
    # the client may send the settings it copied itself, with the id recorded
    r = await client.patch(
        url,
        json={"material_id": slate["id"], "laser": {**image, "power_max_pct": 77}},
        headers=user.headers,
    )
    assert (await r.json())["material"]["matches"] is True
    # null forgets it; deleting the material forgets it too
    r = await client.patch(url, json={"material_id": None}, headers=user.headers)
    body = await r.json()
    assert body["material_id"] is None and body["laser"]["power_max_pct"] == 77
    await client.patch(url, json={"material_id": slate["id"]}, headers=user.headers)
    assert (await client.delete(f"{API}/materials/{slate['id']}", headers=admin.headers)).status
    body = await (await client.get(url, headers=user.headers)).json()
    assert body["material_id"] is None and body["laser"]["power_max_pct"] == 77


async def test_applying_needs_a_visible_material_with_image_settings(
    client: Any, user: Account, make_account: Any
) -> None:
    project = await (
        await client.post(f"{API}/projects", json={"name": "P"}, headers=user.headers)
    ).json()
    url = f"{API}/projects/{project['id']}"
    card = await starter_with(client, user, "cut", "Card")
    assert card["settings"]["image"] is None
    r = await client.patch(url, json={"material_id": card["id"]}, headers=user.headers)
    assert r.status == 422 and (await error_of(r))["details"][0]["field"] == "material_id"
    other = await make_account("user")
    theirs = await (await create(client, other, settings={"image": {"power_max_pct": 30}})).json()
    r = await client.patch(url, json={"material_id": theirs["id"]}, headers=user.headers)
    assert r.status == 422
    r = await client.patch(url, json={"material_id": 2**62}, headers=user.headers)
    assert r.status == 422
    body = await (await client.get(url, headers=user.headers)).json()
    assert body["material_id"] is None


async def test_a_test_grid_from_the_command_line_uploads_and_is_ready_to_run(
    client: Any, user: Account, tmp_path: Any
) -> None:
    """The README's workflow until design files carry grids: the CLI's G-code is a normal,
    valid upload with every cell's feed and power in it."""
    from laserd.materials.__main__ import main
    from tests.api.test_files import processed

    out = tmp_path / "grid.gcode"
    args = ["test-grid", "--power", "10:100:10", "--speed", "500:5000:10", "--x", "20", "--y", "20"]
    assert main([*args, "--gcode", str(out)]) == 0
    project = await (
        await client.post(f"{API}/projects", json={"name": "Grid"}, headers=user.headers)
    ).json()
    r = await client.post(
        f"{API}/projects/{project['id']}/files",
        data=upload(out.read_bytes(), "grid.gcode"),
        headers=user.headers,
    )
    assert r.status == 201, await r.text()
    file = await processed(client, user, (await r.json())["id"])
    assert file["status"] == "ready" and file["warnings"] == [], file
    bounds = file["stats"]["laser_bounds"]
    assert bounds["xmin"] >= 20 and bounds["ymin"] >= 20 and bounds["xmax"] < 400


async def test_changes_to_the_shared_library_are_audited(
    client: Any, admin: Account, user: Account
) -> None:
    shop = await (await create(client, admin, name="Shop oak", shared=True)).json()
    await client.patch(
        f"{API}/materials/{shop['id']}", json={"settings": {"cut": {"passes": 3}}},
        headers=admin.headers,
    )  # fmt: skip
    await client.delete(f"{API}/materials/{shop['id']}", headers=admin.headers)
    await client.post(f"{API}/materials/starter", headers=admin.headers)
    await client.post(
        f"{API}/materials/import?shared=true", data=upload(CLB), headers=admin.headers
    )
    mine = await (await create(client, user, name="Private pine")).json()  # not audited
    await client.delete(f"{API}/materials/{mine['id']}", headers=user.headers)
    r = await client.get(f"{API}/audit?event=material&limit=50", headers=admin.headers)
    events = [(e["event"], e["target"], e["actor"]) for e in (await r.json())["items"]]
    target = f"material:{shop['id']}"
    assert events == [
        ("material_imported", "materials", admin.username),
        ("material_deleted", target, admin.username),
        ("material_updated", target, admin.username),
        ("material_created", target, admin.username),
    ]


# ---------------------------------------------------------------- test grids

GRID = {
    "operation": "fill",
    "power_pct": {"min": 10, "max": 100, "steps": 10},
    "speed_mm_min": {"min": 500, "max": 5000, "steps": 10},
    "placement": {"x_mm": 20, "y_mm": 20},
}


async def test_a_test_grid_is_a_ready_to_run_file_that_remembers_its_cells(
    client: Any, user: Account, make_account: Any
) -> None:
    from tests.api.test_files import processed

    project = await (
        await client.post(f"{API}/projects", json={"name": "Grid"}, headers=user.headers)
    ).json()
    r = await client.post(
        f"{API}/projects/{project['id']}/test-grid", json=GRID, headers=user.headers
    )
    assert r.status == 201, await r.text()
    body = await r.json()
    assert body["project_id"] == project["id"] and body["kind"] == "svg"
    assert body["name"] == "test-grid fill 10x10.svg"
    assert body["operation"] == "fill" and len(body["grid"]) == 100
    assert body["grid"][0] == {"row": 0, "col": 0, "power_pct": 10, "speed_mm_min": 500}
    assert body["grid"][-1] == {"row": 9, "col": 9, "power_pct": 100, "speed_mm_min": 5000}
    file = await processed(client, user, body["id"])
    assert file["status"] == "ready" and not file["warnings"], file
    # a design file: one layer per cell with that cell's settings, labels on a score layer
    layers = {lay["id"]: lay for lay in file["layers"]}
    assert len(layers) == 101 and file["placement"]["x_mm"] == 20
    for n, cell in enumerate(body["grid"], start=1):
        lay = layers[n]
        assert lay["operation"] == "fill", lay
        assert (lay["power_pct"], lay["speed_mm_min"]) == (cell["power_pct"], cell["speed_mm_min"])
    assert layers[101]["operation"] == "score" and layers[101]["name"] == "labels"
    lb = file["stats"]["laser_bounds"]
    assert lb["xmin"] >= 20 and lb["ymin"] >= 20
    r = await client.get(f"{API}/files/{body['id']}/gcode", headers=user.headers)
    text = await r.text()
    for cell in body["grid"]:
        assert f"F{int(cell['speed_mm_min'])}" in text and f"S{int(cell['power_pct'] * 10)}" in text
    r = await client.get(f"{API}/files/{body['id']}/grid", headers=user.headers)
    again = await r.json()
    assert again["grid"] == body["grid"] and again["operation"] == "fill"
    assert again["passes"] == 1 and again["air_assist"] is False
    # someone else sees neither the project nor the grid
    other = await make_account("user")
    r = await client.post(
        f"{API}/projects/{project['id']}/test-grid", json=GRID, headers=other.headers
    )
    assert r.status == 404
    assert (await client.get(f"{API}/files/{body['id']}/grid", headers=other.headers)).status == 404


async def test_test_grid_refusals(client: Any, user: Account, guest: Account) -> None:
    project = await (
        await client.post(f"{API}/projects", json={"name": "Grid"}, headers=user.headers)
    ).json()
    url = f"{API}/projects/{project['id']}/test-grid"
    r = await client.post(
        url, json={**GRID, "placement": {"x_mm": 350, "y_mm": 20}}, headers=user.headers
    )
    assert r.status == 422 and (await error_of(r))["code"] == "off_bed"
    r = await client.post(
        url, json={**GRID, "power_pct": {"min": 50, "max": 10, "steps": 3}}, headers=user.headers
    )
    assert r.status == 422 and (await error_of(r))["details"][0]["field"].startswith("power_pct")
    r = await client.post(url, json={**GRID, "operation": "image"}, headers=user.headers)
    assert r.status == 422
    assert (await client.post(url, json=GRID, headers=guest.headers)).status == 403
    r = await client.get(f"{API}/projects/{project['id']}/files", headers=user.headers)
    assert (await r.json())["total"] == 0  # nothing half-made
    # an ordinary file has no grid
    r = await client.post(
        f"{API}/projects/{project['id']}/files",
        data=upload(b"G0 X1\nM5\n", "a.gcode"),
        headers=user.headers,
    )
    file = await r.json()
    assert (await client.get(f"{API}/files/{file['id']}/grid", headers=user.headers)).status == 404


# ---------------------------------------------------------------- materials on design layers

LID = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="80mm" viewBox="0 0 100 80">'
    b'<rect x="10" y="10" width="60" height="40" stroke="#ff0000" fill="none"/>'
    b'<path d="M 20 60 L 80 60" stroke="#0000ff" fill="none"/></svg>'
)


async def test_a_design_layer_takes_a_material_and_the_api_says_when_it_changed(
    client: Any, user: Account, admin: Account, make_account: Any
) -> None:
    from tests.api.test_files import processed

    project = await (
        await client.post(f"{API}/projects", json={"name": "Lid"}, headers=user.headers)
    ).json()
    r = await client.post(
        f"{API}/projects/{project['id']}/files", data=upload(LID, "lid.svg"), headers=user.headers
    )
    file = await processed(client, user, (await r.json())["id"])
    assert file["status"] == "ready", file
    red = next(lay for lay in file["layers"] if lay["color"] == "#ff0000")
    assert red["operation"] == "cut"
    birch = await starter_with(client, user, "cut", "Birch plywood")
    url = f"{API}/files/{file['id']}"
    r = await client.patch(
        url, json={"layers": [{"id": red["id"], "material_id": birch["id"]}]}, headers=user.headers
    )
    assert r.status == 202, await r.text()
    file = await processed(client, user, file["id"])
    layer = next(lay for lay in file["layers"] if lay["id"] == red["id"])
    cut = birch["settings"]["cut"]
    assert layer["material_id"] == birch["id"]
    assert {k: layer[k] for k in cut} == cut  # every material field copied in
    assert layer["color"] == "#ff0000" and layer["operation"] == "cut"  # the layer's own kept
    r = await client.get(f"{url}/materials", headers=user.headers)
    assert await r.json() == [
        {"layer_id": red["id"], "material_id": birch["id"], "name": birch["name"], "matches": True}
    ]
    # the maker changes the layer: recorded, no longer matching
    await client.patch(url, json={"layers": [{"id": red["id"], "passes": 5}]}, headers=user.headers)
    await processed(client, user, file["id"])
    r = await client.get(f"{url}/materials", headers=user.headers)
    assert (await r.json())[0]["matches"] is False
    # refusals: unknown, someone else's, no settings for the layer's operation
    other = await make_account("user")
    theirs = await (await create(client, other, name="Their cut")).json()
    slate = await starter_with(client, user, "fill", "Slate")
    for material_id in (2**40, theirs["id"], slate["id"]):
        r = await client.patch(
            url, json={"layers": [{"id": red["id"], "material_id": material_id}]},
            headers=user.headers,
        )  # fmt: skip
        assert r.status == 422, material_id
        assert (await error_of(r))["details"][0]["field"] == "layers[0].material_id"
    # a material deleted later: the layer keeps its settings, the API says it is gone
    mine = await (await create(client, user, name="My cut")).json()
    await client.patch(
        url, json={"layers": [{"id": red["id"], "material_id": mine["id"]}]}, headers=user.headers
    )
    await processed(client, user, file["id"])
    await client.delete(f"{API}/materials/{mine['id']}", headers=user.headers)
    r = await client.get(f"{url}/materials", headers=user.headers)
    assert await r.json() == [
        {"layer_id": red["id"], "material_id": mine["id"], "name": None, "matches": False}
    ]
