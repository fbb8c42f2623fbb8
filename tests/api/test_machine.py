"""Machine control and the live WebSocket through the real app and the simulated controller."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from laserd.keys import LINK, MACHINE, SAFETY, SIMULATOR
from tests.api.machine_helpers import raster_lines, ready_file, sim_client, sim_settings, wait_for


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path) -> Any:
    return await sim_client(aiohttp_client, sim_settings(tmp_path / "state"))


async def test_jog_moves_and_cancel_stops(client, user) -> None:
    r = await client.post(
        "/api/v1/machine/jog", json={"x": 5, "y": 2.5, "feed": 3000}, headers=user.headers
    )
    assert r.status == 200, await r.text()
    sim = client.app[SIMULATOR]
    await wait_for(lambda: sim.position_mm[:2] == (5.0, 2.5), 10)
    r = await client.post("/api/v1/machine/jog", json={"x": 300, "feed": 10}, headers=user.headers)
    assert r.status == 200
    await wait_for(lambda: client.app[LINK].state == "jog", 5)
    r = await client.post("/api/v1/machine/jog/cancel", headers=user.headers)
    assert r.status == 204
    await wait_for(lambda: client.app[LINK].state == "idle", 10)
    assert sim.position_mm[0] < 300
    assert sim.laser_on is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"feed": 100}, ""),
        ({"x": 1}, "feed"),
        ({"x": 1, "feed": 0}, "feed"),
        ({"x": "a", "feed": 10}, "x"),
        ({"x": 1, "feed": 10, "speed": 3}, "speed"),
    ],
)
async def test_jog_validation(client, user, body, field) -> None:
    r = await client.post("/api/v1/machine/jog", json=body, headers=user.headers)
    assert r.status == 422
    details = (await r.json())["error"]["details"]
    assert any(d["field"] == field or (not field) for d in details)


async def test_jog_beyond_the_bed_is_refused_by_soft_limits(client, user, admin) -> None:
    r = await client.put(
        "/api/v1/machine/settings", json={"$22": 1, "$20": 1}, headers=admin.headers
    )
    assert r.status == 200, await r.text()
    r = await client.post(
        "/api/v1/machine/jog", json={"x": 5000, "feed": 1000}, headers=user.headers
    )
    assert r.status == 409
    assert "error" in (await r.json())["error"]["message"].lower()


async def test_guest_cannot_move(client, guest) -> None:
    for path, body in (
        ("/api/v1/machine/jog", {"x": 1, "feed": 100}),
        ("/api/v1/machine/home", None),
        ("/api/v1/machine/overrides", {"feed": 120}),
    ):
        r = await client.post(path, json=body, headers=guest.headers)
        assert r.status == 403, path


async def test_frame_traces_the_bounds_with_the_laser_off(client, user) -> None:
    f = await ready_file(client, user.id, raster_lines(2, 2))
    r = await client.post("/api/v1/machine/frame", json={"file_id": f["id"]}, headers=user.headers)
    assert r.status == 202, await r.text()
    sim = client.app[SIMULATOR]
    await wait_for(lambda: client.app[LINK].state == "idle" and not (await_frame(client)), 20)
    assert all(not on for _, on, _ in sim.record.laser_log) or not sim.laser_on
    assert client.app[SAFETY].armed is False
    r = await client.post(
        "/api/v1/machine/frame", json={"file_id": f["id"], "power_pct": 50}, headers=user.headers
    )
    assert r.status == 422


def await_frame(client: Any) -> bool:
    return client.app[MACHINE].framing


async def test_frame_with_power_refused_while_lid_open(client, user) -> None:
    f = await ready_file(client, user.id, raster_lines(2, 2))
    client.app[SAFETY].drive("lid", False)
    await wait_for(lambda: not client.app[SAFETY].all_safe(), 5)
    r = await client.post(
        "/api/v1/machine/frame", json={"file_id": f["id"], "power_pct": 2}, headers=user.headers
    )
    assert r.status == 409 and (await r.json())["error"]["code"] == "interlock_open"
    assert client.app[SAFETY].armed is False


async def test_console_and_settings_are_for_admins(client, admin, user) -> None:
    r = await client.post("/api/v1/machine/console", json={"line": "$I"}, headers=user.headers)
    assert r.status == 403
    r = await client.post("/api/v1/machine/console", json={"line": "$I"}, headers=admin.headers)
    assert r.status == 200
    assert any(line.startswith("[VER:") for line in (await r.json())["lines"])
    r = await client.post(
        "/api/v1/machine/console", json={"line": "G0 X1 (!)"}, headers=admin.headers
    )
    assert r.status == 200  # the comment is stripped: its "!" never reaches the controller
    r = await client.post("/api/v1/machine/console", json={"line": "G0X1!"}, headers=admin.headers)
    assert r.status == 422
    # Settings are written only while the machine stands still: the G0 above moved it.
    link = client.app[LINK]
    await wait_for(lambda: link.state == "idle", 10)
    r = await client.get("/api/v1/machine/settings", headers=admin.headers)
    settings = await r.json()
    assert settings["$32"] == 1 and settings["$30"] == 1000
    r = await client.put("/api/v1/machine/settings", json={"$30": 255}, headers=admin.headers)
    assert r.status == 200 and (await r.json())["$30"] == 255
    assert client.app[SIMULATOR].settings[30] == 255
    r = await client.put("/api/v1/machine/settings", json={"x30": 1}, headers=admin.headers)
    assert r.status == 422
    r = await client.get("/api/v1/machine/settings", headers=user.headers)
    assert r.status == 403


async def test_disconnect_and_connect(client, user) -> None:
    r = await client.post("/api/v1/machine/disconnect", headers=user.headers)
    assert r.status == 200 and (await r.json())["connected"] is False
    r = await client.post("/api/v1/machine/jog", json={"x": 1, "feed": 100}, headers=user.headers)
    assert r.status == 503
    r = await client.post("/api/v1/machine/connect", headers=user.headers)
    assert r.status == 200
    link = client.app[LINK]
    await wait_for(lambda: link.connected and link.state == "idle", 10)


async def test_interlocks_listing(client, guest) -> None:
    r = await client.get("/api/v1/interlocks", headers=guest.headers)
    items = await r.json()
    assert {i["name"] for i in items} == {"lid", "estop", "coolant"}
    assert all(i["safe"] for i in items)


async def test_debug_gpio_drives_an_input_and_is_admin_only(client, admin, user) -> None:
    r = await client.post("/api/v1/debug/gpio/lid", json={"safe": False}, headers=user.headers)
    assert r.status == 403
    r = await client.post("/api/v1/debug/gpio/lid", json={"safe": False}, headers=admin.headers)
    assert r.status == 200
    await wait_for(lambda: "lid" in client.app[SAFETY].open_interlocks(), 5)
    r = await client.post("/api/v1/debug/gpio/nope", json={"safe": False}, headers=admin.headers)
    assert r.status == 404



async def test_a_trip_reaches_the_audit_log_and_the_machine_snapshot_through_the_bus(
    client, admin
) -> None:
    """The safety supervisor says what a trip did as typed events on the bus: the audit log
    (subscribed in safety_ctx) records it, and the machine snapshot Machine publishes on the
    next controller change shows the open interlock."""
    ws = await client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": admin.token})
    assert (await ws.receive_json())["type"] == "hello"
    client.app[SAFETY].drive("lid", False)

    async def audited() -> list[dict[str, Any]]:
        while True:
            r = await client.get("/api/v1/audit?event=interlock", headers=admin.headers)
            items = (await r.json())["items"]
            if items:
                return items
            await asyncio.sleep(0.05)

    items = await asyncio.wait_for(audited(), 10)
    assert items[0]["event"] == "interlock_tripped" and items[0]["actor"] == "safety"
    assert items[0]["details"]["name"] == "lid" and items[0]["details"]["byte_sent"] is True

    async def snapshot_with_lid_open() -> dict[str, Any]:
        while True:
            msg = await ws.receive_json()
            if msg["type"] == "machine" and msg["interlocks"]["open"] == ["lid"]:
                return msg

    snap = await asyncio.wait_for(snapshot_with_lid_open(), 10)
    assert snap["interlocks"]["ok"] is False and snap["connected"] is True
    assert set(snap) - {"type"} == set(await (await client.get(
        "/api/v1/machine", headers=admin.headers)).json())
    await ws.close()

# --------------------------------------------------------------------------- WebSocket


async def ws_messages(ws: Any, kind: str, count: int, timeout_s: float = 10) -> list[dict]:
    got: list[dict[str, Any]] = []

    async def collect() -> None:
        while len(got) < count:
            msg = await ws.receive_json()
            if msg["type"] == kind:
                got.append(msg)

    await asyncio.wait_for(collect(), timeout_s)
    return got


async def test_websocket_auth_then_live_status_and_job_events(client, user) -> None:
    ws = await client.ws_connect("/api/v1/ws")
    await ws.send_json({"type": "auth", "token": user.token})
    hello = await ws.receive_json()
    assert hello["type"] == "hello" and hello["role"] == "user"
    machines = await ws_messages(ws, "machine", 3)
    assert machines[-1]["connected"] is True and "interlocks" in machines[-1]
    f = await ready_file(client, user.id, raster_lines(30, 30))
    r = await client.post("/api/v1/jobs", json={"file_id": f["id"]}, headers=user.headers)
    job_id = (await r.json())["id"]

    async def completed() -> None:
        while True:
            msg = await ws.receive_json()
            if msg["type"] == "job" and msg["id"] == job_id and msg["state"] == "completed":
                return

    await asyncio.wait_for(completed(), 30)
    client.app[SAFETY].drive("coolant", False)
    edge = await ws_messages(ws, "interlock", 1)
    assert edge[0]["name"] == "coolant" and edge[0]["safe"] is False
    await ws.close()


async def test_websocket_log_lines_only_for_admins(client, admin, user) -> None:
    wa = await client.ws_connect("/api/v1/ws")
    await wa.send_json({"type": "auth", "token": admin.token})
    wu = await client.ws_connect("/api/v1/ws")
    await wu.send_json({"type": "auth", "token": user.token})
    await ws_messages(wa, "hello", 1)
    await ws_messages(wu, "hello", 1)
    r = await client.post("/api/v1/machine/console", json={"line": "$G"}, headers=admin.headers)
    assert r.status == 200
    logs = await ws_messages(wa, "log", 2)
    assert any("[GC:" in m["line"] for m in logs) or any(m["line"] == "$G" for m in logs)
    with pytest.raises(TimeoutError):
        await ws_messages(wu, "log", 1, timeout_s=0.5)
    await wa.close()
    await wu.close()


@pytest.mark.parametrize(
    "first", [json.dumps({"type": "auth", "token": "nope"}), "hello", json.dumps({"a": 1})]
)
async def test_websocket_refuses_bad_first_messages(client, first) -> None:
    ws = await client.ws_connect("/api/v1/ws")
    await ws.send_str(first)
    msg = await ws.receive()
    if msg.type.name == "TEXT":
        assert json.loads(msg.data)["type"] == "error"
        msg = await ws.receive()
    assert msg.type.name in ("CLOSE", "CLOSED", "CLOSING")
    assert ws.close_code == 4401


async def test_websocket_refuses_foreign_origins(client, user) -> None:
    r = await client.get(
        "/api/v1/ws",
        headers={
            "Origin": "http://evil.example",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    )
    assert r.status == 403
    r = await client.get("/api/v1/ws")
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "bad_request"


async def test_console_cannot_fire_or_move_past_an_open_interlock(client, admin) -> None:
    safety = client.app[SAFETY]
    safety.drive("estop", False)
    await wait_for(lambda: not safety.all_safe(), 5)
    for line in ("M3 S500", "G1 X20 F600", "$H", "$J=G91X1F100", "S1000"):
        r = await client.post("/api/v1/machine/console", json={"line": line}, headers=admin.headers)
        assert r.status == 409, line
        assert (await r.json())["error"]["code"] == "interlock_open"
    r = await client.post("/api/v1/machine/console", json={"line": "$$"}, headers=admin.headers)
    assert r.status == 200  # settings and queries stay available
    assert client.app[SIMULATOR].laser_on is False


async def test_no_motion_while_the_estop_is_pressed(client, user) -> None:
    f = await ready_file(client, user.id, raster_lines(2, 2))
    safety = client.app[SAFETY]
    safety.drive("estop", False)
    await wait_for(lambda: not safety.all_safe(), 5)
    for path, body in (
        ("/api/v1/machine/jog", {"x": 1, "feed": 100}),
        ("/api/v1/machine/home", None),
        ("/api/v1/machine/frame", {"file_id": f["id"]}),
    ):
        r = await client.post(path, json=body, headers=user.headers)
        assert r.status == 409, path
        assert (await r.json())["error"]["code"] == "interlock_open"
    # released: motion is possible again (the soft reset on the press left no alarm here,
    # as the machine was standing still)
    safety.drive("estop", True)
    await wait_for(safety.all_safe, 5)
    link = client.app[LINK]
    await wait_for(lambda: link.state == "idle", 10)
    r = await client.post("/api/v1/machine/jog", json={"x": 1, "feed": 100}, headers=user.headers)
    assert r.status == 200, await r.text()
