"""Projects: laser settings validated with defaults, ownership, pagination, deletion."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.api.conftest import Account, error_of

API = "/api/v1"


async def create(client: Any, account: Account, **body: Any) -> Any:
    body.setdefault("name", "Coasters")
    return await client.post(f"{API}/projects", json=body, headers=account.headers)


async def test_create_with_defaults_and_read_back(client: Any, user: Account) -> None:
    r = await create(client, user, description="Birch, 90 mm")
    assert r.status == 201
    project = await r.json()
    assert project["owner_id"] == user.id and project["description"] == "Birch, 90 mm"
    laser = project["laser"]
    assert laser["mode"] == "M4" and laser["passes"] == 1 and laser["dither"] == "grayscale"
    assert laser["origin_mm"] == {"x": 0, "y": 0} and laser["width_mm"] is None
    r = await client.get(f"{API}/projects/{project['id']}", headers=user.headers)
    assert await r.json() == project


async def test_laser_settings_are_validated_with_field_details(client: Any, user: Account) -> None:
    r = await create(client, user, laser={"power_max_pct": 150, "passes": 0, "colour": "red"})
    assert r.status == 422
    err = await error_of(r)
    fields = {d["field"] for d in err["details"]}
    assert {"laser.power_max_pct", "laser.passes", "laser.colour"} <= fields
    r = await create(client, user, laser={"power_min_pct": 80, "power_max_pct": 20})
    assert r.status == 422
    assert "power_min_pct" in (await error_of(r))["details"][0]["message"]
    for name in ("", "   ", "line\nbreak", "x" * 201):
        r = await create(client, user, name=name)
        assert r.status == 422, name


async def test_patch_merges_laser_fields_and_validates_the_result(
    client: Any, user: Account
) -> None:
    project = await (await create(client, user, laser={"power_max_pct": 60, "passes": 2})).json()
    url = f"{API}/projects/{project['id']}"
    r = await client.patch(url, json={"laser": {"speed_mm_min": 1500}}, headers=user.headers)
    assert r.status == 200
    laser = (await r.json())["laser"]
    assert laser["speed_mm_min"] == 1500 and laser["power_max_pct"] == 60 and laser["passes"] == 2
    r = await client.patch(url, json={"laser": {"power_min_pct": 70}}, headers=user.headers)
    assert r.status == 422
    assert (await error_of(r))["details"][0]["field"] == "laser"
    r = await client.patch(url, json={"laser": {"dither": "sepia"}}, headers=user.headers)
    assert r.status == 422
    r = await client.patch(url, json={"name": "Renamed"}, headers=user.headers)
    body = await r.json()
    assert body["name"] == "Renamed" and body["laser"]["speed_mm_min"] == 1500
    r = await client.patch(url, json={"owner_id": 99}, headers=user.headers)
    assert r.status == 422


async def test_owners_see_their_own_admins_see_all_guests_none(
    client: Any, user: Account, admin: Account, guest: Account, make_account: Any
) -> None:
    mine = await (await create(client, user, name="mine")).json()
    other = await make_account("user")
    theirs = await (await create(client, other, name="theirs")).json()
    r = await client.get(f"{API}/projects", headers=user.headers)
    page = await r.json()
    assert [p["name"] for p in page["items"]] == ["mine"] and page["total"] == 1
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(
            method, f"{API}/projects/{theirs['id']}", json={}, headers=user.headers
        )
        assert r.status == 404, method
    r = await client.get(f"{API}/projects/{theirs['id']}/files", headers=user.headers)
    assert r.status == 404
    r = await client.get(f"{API}/projects", headers=admin.headers)
    assert {p["id"] for p in (await r.json())["items"]} >= {mine["id"], theirs["id"]}
    r = await client.get(f"{API}/projects/{mine['id']}", headers=admin.headers)
    assert r.status == 200
    r = await client.get(f"{API}/projects", headers=guest.headers)
    assert r.status == 403
    r = await client.get(f"{API}/projects")
    assert r.status == 401


async def test_pagination(client: Any, user: Account) -> None:
    for i in range(5):
        assert (await create(client, user, name=f"p{i}")).status == 201
    r = await client.get(f"{API}/projects?limit=2&offset=1", headers=user.headers)
    page = await r.json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [p["name"] for p in page["items"]] == ["p3", "p2"]
    r = await client.get(f"{API}/projects?limit=0", headers=user.headers)
    assert r.status == 422


async def test_delete_project_removes_its_files(
    client: Any, user: Account, settings: Any
) -> None:
    project = await (await create(client, user)).json()
    data = aiohttp.FormData()
    data.add_field("file", b"G0 X1\nM5\n", filename="a.gcode")
    r = await client.post(
        f"{API}/projects/{project['id']}/files", data=data, headers=user.headers
    )
    assert r.status == 201
    file = await r.json()
    r = await client.delete(f"{API}/projects/{project['id']}", headers=user.headers)
    assert r.status == 204
    assert (await client.get(f"{API}/files/{file['id']}", headers=user.headers)).status == 404
    assert (await client.get(f"{API}/projects/{project['id']}", headers=user.headers)).status == 404
    assert not list(settings.uploads_dir.glob("*"))
