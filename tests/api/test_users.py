"""Admin user management: CRUD, revocation on role/status/password changes, last admin, audit."""

from __future__ import annotations

from tests.api.conftest import PASSWORD, error_of, login

USERS = "/api/v1/users"


async def _me_status(client, account) -> int:
    return (await client.get("/api/v1/auth/me", headers=account.headers)).status


async def test_create_get_list_update_delete(client, admin) -> None:
    r = await client.post(
        USERS,
        json={
            "username": "operator",
            "email": "op@example.test",
            "password": PASSWORD,
            "full_name": "Op",
            "role": "guest",
        },
        headers=admin.headers,
    )
    assert r.status == 201
    created = await r.json()
    assert created["role"] == "guest" and created["status"] == "active"
    assert (await login(client, "operator")).status == 200

    r = await client.get(f"{USERS}/{created['id']}", headers=admin.headers)
    assert r.status == 200 and (await r.json())["username"] == "operator"

    r = await client.get(USERS, params={"role": "guest"}, headers=admin.headers)
    page = await r.json()
    assert page["total"] == 1 and page["items"][0]["id"] == created["id"]
    r = await client.get(USERS, params={"q": "OPER", "limit": 1}, headers=admin.headers)
    assert (await r.json())["total"] == 1
    r = await client.get(USERS, params={"limit": 1, "offset": 1}, headers=admin.headers)
    page = await r.json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["offset"] == 1
    r = await client.get(USERS, params={"limit": 500}, headers=admin.headers)
    assert r.status == 422

    r = await client.patch(
        f"{USERS}/{created['id']}",
        json={"full_name": "Operator", "email": "operator@example.test"},
        headers=admin.headers,
    )
    body = await r.json()
    assert body["full_name"] == "Operator" and body["email_verified"] is False

    r = await client.delete(f"{USERS}/{created['id']}", headers=admin.headers)
    assert r.status == 204
    assert (await client.get(f"{USERS}/{created['id']}", headers=admin.headers)).status == 404
    assert (await login(client, "operator")).status == 401


async def test_not_found_and_validation(client, admin, user) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        for ident in ("999999", "abc", "-1"):
            r = await client.request(method, f"{USERS}/{ident}", json={}, headers=admin.headers)
            assert r.status == 404, (method, ident)
    r = await client.patch(f"{USERS}/{user.id}", json={"role": "root"}, headers=admin.headers)
    assert r.status == 422
    r = await client.patch(f"{USERS}/{user.id}", json={"password": "short"}, headers=admin.headers)
    assert r.status == 422
    r = await client.post(
        USERS,
        json={"username": user.username, "email": "n@example.test", "password": PASSWORD},
        headers=admin.headers,
    )
    assert r.status == 409 and (await error_of(r))["code"] == "username_taken"


async def test_approve_a_pending_registration(client, admin) -> None:
    r = await client.post(
        "/api/v1/auth/register",
        json={"username": "applicant", "email": "app@example.test", "password": PASSWORD},
    )
    uid = (await r.json())["id"]
    assert (await login(client, "applicant")).status == 403
    r = await client.get(USERS, params={"status": "pending"}, headers=admin.headers)
    assert [u["id"] for u in (await r.json())["items"]] == [uid]
    r = await client.patch(f"{USERS}/{uid}", json={"status": "active"}, headers=admin.headers)
    assert r.status == 200
    assert (await login(client, "applicant")).status == 200


async def test_role_change_disable_and_password_end_logins(client, admin, make_account) -> None:
    changes = (
        {"role": "guest"},
        {"status": "disabled"},
        {"status": "pending"},
        {"password": "another password"},
    )
    for change in changes:
        target = await make_account("user")
        assert await _me_status(client, target) == 200
        r = await client.patch(f"{USERS}/{target.id}", json=change, headers=admin.headers)
        assert r.status == 200, change
        assert await _me_status(client, target) == 401, change
        if "status" in change:  # and they stay ended when the account is active again
            await client.patch(
                f"{USERS}/{target.id}", json={"status": "active"}, headers=admin.headers
            )
            assert await _me_status(client, target) == 401, change
    # A change that is not about rights leaves the logins alone.
    target = await make_account("user")
    await client.patch(f"{USERS}/{target.id}", json={"full_name": "X"}, headers=admin.headers)
    assert await _me_status(client, target) == 200


async def test_disabled_user_cannot_refresh(client, admin, user) -> None:
    await client.patch(f"{USERS}/{user.id}", json={"status": "disabled"}, headers=admin.headers)
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert r.status == 401


async def test_last_active_admin_is_protected(client, admin, make_account) -> None:
    for change in ({"role": "user"}, {"status": "disabled"}, {"status": "pending"}):
        r = await client.patch(f"{USERS}/{admin.id}", json=change, headers=admin.headers)
        assert r.status == 409, change
        assert (await error_of(r))["code"] == "last_admin"
    r = await client.delete(f"{USERS}/{admin.id}", headers=admin.headers)
    assert r.status == 409
    # With a second admin, the first may step down.
    await make_account("admin")
    r = await client.patch(f"{USERS}/{admin.id}", json={"role": "user"}, headers=admin.headers)
    assert r.status == 200
    assert await _me_status(client, admin) == 401  # its login ended with the role change


async def test_changes_are_audited(client, admin, user) -> None:
    await client.patch(f"{USERS}/{user.id}", json={"role": "guest"}, headers=admin.headers)
    await client.patch(f"{USERS}/{user.id}", json={"status": "disabled"}, headers=admin.headers)
    await client.delete(f"{USERS}/{user.id}", headers=admin.headers)
    r = await client.get("/api/v1/audit", headers=admin.headers)
    items = (await r.json())["items"]
    by_event = {i["event"]: i for i in items}
    assert by_event["role_change"]["details"] == {"from": "user", "to": "guest"}
    assert by_event["status_change"]["details"] == {"from": "active", "to": "disabled"}
    assert by_event["user_delete"]["target"] == user.username
    assert all(by_event[e]["actor"] == admin.username for e in ("role_change", "user_delete"))
    r = await client.get(
        "/api/v1/audit", params={"actor_id": admin.id, "limit": 2}, headers=admin.headers
    )
    page = await r.json()
    assert len(page["items"]) == 2 and page["total"] >= 4


async def test_unlock_unknown_user_and_unlocked_user(client, admin, user) -> None:
    r = await client.post(f"{USERS}/999999/unlock", headers=admin.headers)
    assert r.status == 404
    r = await client.post(f"{USERS}/{user.id}/unlock", headers=admin.headers)
    assert r.status == 200 and (await r.json()) == {"was_locked": False}


async def test_deleting_a_user_removes_their_files_from_disk(client, admin, user) -> None:
    from laserd.keys import SETTINGS
    from tests.api.machine_helpers import raster_lines, ready_file

    f = await ready_file(client, user.id, raster_lines(2, 2))
    gcode = client.app[SETTINGS].gcode_path(f["id"])
    assert gcode.exists()
    r = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert r.status == 204
    assert not gcode.exists()
    r = await client.get(f"/api/v1/files/{f['id']}", headers=admin.headers)
    assert r.status == 404
