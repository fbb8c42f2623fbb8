"""Each middleware on its own: request id, error envelope, security headers, CORS, body limit."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from pydantic import Field

from laserd.api.routing import ApiRoutes, _wrap
from laserd.app import create_app
from laserd.auth.principal import Role
from laserd.schemas import StrictModel
from tests.conftest import bare_hardware, make_settings

HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
)


class Echo(StrictModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = Field(1, ge=1, le=5)


def extra_routes() -> ApiRoutes:
    routes = ApiRoutes("test")

    @routes.post("/_test/echo", role=Role.public, body=Echo, summary="echo")
    async def echo(request: web.Request, body: Echo) -> dict[str, Any]:
        return body.model_dump()

    @routes.get("/_test/boom", role=Role.public, summary="boom")
    async def boom(request: web.Request) -> None:
        logging.getLogger("laserd.test").info("about to fail")
        raise RuntimeError("secret internal detail")

    return routes


@pytest.fixture
async def tclient(aiohttp_client: Any, tmp_path) -> Any:
    settings = make_settings(
        tmp_path / "state",
        server={"cors_origins": ["http://good.example"], "max_json_kb": 1},
    )
    app = create_app(settings, hardware=bare_hardware())
    for spec in extra_routes().specs:
        app.router.add_route(spec.method, spec.full_path, _wrap(spec))
    return await aiohttp_client(app)


def assert_envelope(body: dict[str, Any], code: str, rid: str) -> None:
    assert set(body) == {"error"}
    err = body["error"]
    assert err["code"] == code and err["request_id"] == rid
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in err["message"]


async def test_request_id_echoed_when_sane_and_generated_otherwise(tclient) -> None:
    r = await tclient.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    r = await tclient.get("/api/v1/health", headers={"X-Request-ID": "bad id\twith<junk>"})
    rid = r.headers["X-Request-ID"]
    assert rid != "bad id\twith<junk>" and len(rid) == 16
    r = await tclient.get("/api/v1/health", headers={"X-Request-ID": "x" * 65})
    assert r.headers["X-Request-ID"] != "x" * 65
    r1 = await tclient.get("/api/v1/health")
    r2 = await tclient.get("/api/v1/health")
    assert r1.headers["X-Request-ID"] != r2.headers["X-Request-ID"]


async def test_request_id_in_every_log_line_of_the_request(tclient, caplog) -> None:
    from laserd.logs import ContextFilter

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())
    r = await tclient.get("/api/v1/_test/boom", headers={"X-Request-ID": "trace-me-1"})
    assert r.status == 500
    ours = [rec for rec in caplog.records if rec.name in ("laserd.test", "laserd.api.middleware")]
    assert {rec.getMessage().split(" in ")[0] for rec in ours} == {
        "about to fail",
        "unhandled error",
    }
    assert all(rec.request_id == "trace-me-1" for rec in ours)


async def test_envelope_for_malformed_json(tclient) -> None:
    r = await tclient.post(
        "/api/v1/_test/echo", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert r.status == 400
    assert_envelope(await r.json(), "bad_request", r.headers["X-Request-ID"])


async def test_envelope_for_wrong_content_type(tclient) -> None:
    r = await tclient.post(
        "/api/v1/_test/echo", data=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert r.status == 400
    assert_envelope(await r.json(), "bad_request", r.headers["X-Request-ID"])


async def test_validation_error_details_name_fields(tclient) -> None:
    r = await tclient.post("/api/v1/_test/echo", json={"name": "", "count": 9, "extra": 1})
    assert r.status == 422
    body = await r.json()
    assert_envelope(body, "validation_error", r.headers["X-Request-ID"])
    fields = {d["field"] for d in body["error"]["details"]}
    assert fields == {"name", "count", "extra"}
    r = await tclient.post("/api/v1/_test/echo", json=[1, 2])
    assert r.status == 422


async def test_envelope_for_404_405_413(tclient) -> None:
    r = await tclient.get("/api/v1/does-not-exist")
    assert r.status == 404
    assert_envelope(await r.json(), "not_found", r.headers["X-Request-ID"])
    r = await tclient.delete("/api/v1/health")
    assert r.status == 405
    assert_envelope(await r.json(), "method_not_allowed", r.headers["X-Request-ID"])
    r = await tclient.post("/api/v1/_test/echo", json={"name": "x" * 5000})
    assert r.status == 413
    assert_envelope(await r.json(), "payload_too_large", r.headers["X-Request-ID"])


async def test_unexpected_exception_is_a_500_without_traceback(tclient, caplog) -> None:
    caplog.set_level(logging.ERROR)
    r = await tclient.get("/api/v1/_test/boom")
    assert r.status == 500
    body = await r.json()
    assert_envelope(body, "internal", r.headers["X-Request-ID"])
    assert "secret internal detail" not in await r.text()
    assert any(
        "secret internal detail" in (rec.exc_text or str(rec.exc_info)) for rec in caplog.records
    )


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/nope", "/api/v1/_test/boom"])
async def test_security_headers_on_success_and_errors(tclient, path: str) -> None:
    r = await tclient.get(path)
    for h in HEADERS:
        assert h in r.headers, h
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["Server"] == "laserd"


async def test_cors_only_for_configured_origins(tclient) -> None:
    r = await tclient.get("/api/v1/health", headers={"Origin": "http://good.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://good.example"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    r = await tclient.get("/api/v1/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    pre = {"Origin": "http://good.example", "Access-Control-Request-Method": "POST"}
    r = await tclient.options("/api/v1/_test/echo", headers=pre)
    assert r.status == 204 and "POST" in r.headers["Access-Control-Allow-Methods"]
    pre["Origin"] = "http://evil.example"
    r = await tclient.options("/api/v1/_test/echo", headers=pre)
    assert r.status == 403
    assert (await r.json())["error"]["code"] == "forbidden"


async def test_health_shape(tclient) -> None:
    r = await tclient.get("/api/v1/health")
    assert r.status == 200
    body = await r.json()
    assert set(body) == {"status", "version", "uptime_s", "db", "machine", "host"}
    assert body["db"] == "ok" and body["status"] in ("ok", "degraded")
