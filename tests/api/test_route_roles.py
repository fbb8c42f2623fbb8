"""Every route's declared least role against an independent table written from API.md.

The role matrix test (test_role_matrix.py) proves that each route enforces the role it
declares; this one proves that the declaration is the one the contract asks for, so a route
declared with too low a role (say, the console as ``user``) cannot slip through both.
"""

from __future__ import annotations

from laserd.api.routing import openapi_path
from laserd.keys import ROUTE_SPECS

EXPECTED = {
    ("GET", "/health"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/{asset}"): "public",
    ("GET", "/setup"): "public",
    ("POST", "/setup"): "public",  # once, with the one-time setup code
    ("POST", "/auth/register"): "public",
    ("POST", "/auth/login"): "public",
    ("POST", "/auth/refresh"): "public",  # the refresh token is the credential
    ("POST", "/auth/logout"): "public",  # ends the login its token names
    ("POST", "/auth/logout-all"): "guest",
    ("GET", "/auth/me"): "guest",
    ("PATCH", "/auth/me"): "guest",
    ("POST", "/auth/change-password"): "guest",
    ("POST", "/auth/password-reset/request"): "public",
    ("POST", "/auth/password-reset/confirm"): "public",
    ("POST", "/auth/verify-email/request"): "guest",
    ("POST", "/auth/verify-email/confirm"): "public",
    ("GET", "/auth/api-keys"): "guest",
    ("POST", "/auth/api-keys"): "guest",  # a key's role is at most its owner's
    ("DELETE", "/auth/api-keys/{id}"): "guest",
    ("GET", "/users"): "admin",
    ("POST", "/users"): "admin",
    ("GET", "/users/{id}"): "admin",
    ("PATCH", "/users/{id}"): "admin",
    ("DELETE", "/users/{id}"): "admin",
    ("POST", "/users/{id}/unlock"): "admin",
    ("GET", "/audit"): "admin",
    ("GET", "/projects"): "user",  # guests: no projects
    ("POST", "/projects"): "user",
    ("GET", "/projects/{id}"): "user",
    ("PATCH", "/projects/{id}"): "user",
    ("DELETE", "/projects/{id}"): "user",
    ("GET", "/projects/{id}/files"): "user",
    ("POST", "/projects/{id}/files"): "user",
    ("GET", "/files/{id}"): "user",
    ("GET", "/files/{id}/original"): "user",
    ("GET", "/files/{id}/gcode"): "user",
    ("GET", "/files/{id}/preview.png"): "user",
    ("POST", "/files/{id}/process"): "user",
    ("PATCH", "/files/{id}"): "user",
    ("DELETE", "/files/{id}"): "user",
    ("GET", "/machine"): "guest",
    ("POST", "/machine/home"): "user",
    ("POST", "/machine/unlock"): "user",
    ("POST", "/machine/reset"): "user",
    ("POST", "/machine/connect"): "user",
    ("POST", "/machine/disconnect"): "user",
    ("POST", "/machine/jog"): "user",
    ("POST", "/machine/jog/cancel"): "user",
    ("POST", "/machine/frame"): "user",
    ("POST", "/machine/overrides"): "user",
    ("POST", "/machine/console"): "admin",
    ("GET", "/machine/settings"): "admin",
    ("PUT", "/machine/settings"): "admin",
    ("GET", "/interlocks"): "guest",
    ("POST", "/jobs"): "user",
    ("GET", "/jobs"): "guest",
    ("GET", "/jobs/{id}"): "guest",
    ("POST", "/jobs/{id}/pause"): "user",
    ("POST", "/jobs/{id}/resume"): "user",
    ("POST", "/jobs/{id}/cancel"): "user",
    # the GRBL bridge: anyone signed in sees it; a user accepts (the session is their job),
    # rejects, or ends the running session like any job
    ("GET", "/bridge"): "guest",
    ("POST", "/bridge/pending/{id}/accept"): "user",
    ("POST", "/bridge/pending/{id}/reject"): "user",
    ("POST", "/bridge/session/end"): "user",
    # materials: any signed-in user reads (shared + own); users add their own; the shared
    # library is checked per entry in the handler (admins only), restoring it is admin-only;
    # ids are digits (``{id:\\d+}``), so /materials/import and /starter are no {id}
    ("GET", "/materials"): "guest",
    ("POST", "/materials"): "user",
    ("GET", "/materials/{id}"): "guest",
    ("PATCH", "/materials/{id}"): "user",
    ("DELETE", "/materials/{id}"): "user",
    ("POST", "/materials/import"): "user",
    ("GET", "/materials/export.clb"): "guest",
    ("POST", "/materials/starter"): "admin",
    ("POST", "/projects/{id}/test-grid"): "user",  # a file in one of your projects
    ("GET", "/files/{id}/grid"): "user",
    ("GET", "/files/{id}/materials"): "user",
    ("GET", "/ws"): "public",  # authenticates with its first message
    # debug mode only (and only on a loopback address)
    ("GET", "/debug/outbox"): "public",
    ("POST", "/debug/stall"): "public",
    ("POST", "/debug/gpio/{name}"): "admin",
    ("GET", "/debug/loop-lag"): "admin",
    ("POST", "/debug/loop-lag"): "admin",
    ("GET", "/debug/simulator"): "admin",
    ("GET", "/debug/laser-enable"): "admin",
    ("GET", "/debug/heap"): "admin",
    ("POST", "/debug/heap"): "admin",
}


async def test_every_route_declares_the_role_api_md_gives_it(client) -> None:
    declared = {(s.method, openapi_path(s.path)): s.role.value for s in client.app[ROUTE_SPECS]}
    unknown = sorted(set(declared) - set(EXPECTED))
    assert not unknown, f"routes missing from the expected-role table: {unknown}"
    missing = sorted(set(EXPECTED) - set(declared))
    assert not missing, f"routes in the table but not registered: {missing}"
    wrong = {k: (declared[k], EXPECTED[k]) for k in declared if declared[k] != EXPECTED[k]}
    assert not wrong, f"declared vs expected: {wrong}"


async def test_debug_routes_exist_only_in_debug_mode(aiohttp_client, tmp_path) -> None:
    from laserd.app import create_app
    from tests.conftest import bare_hardware, make_settings

    app = create_app(make_settings(tmp_path / "s", server={"debug": False}), bare_hardware())
    paths = {s.path for s in app[ROUTE_SPECS]}
    assert not any(p.startswith("/debug/") for p in paths)
