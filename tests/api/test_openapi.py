"""The OpenAPI document is valid 3.1, generated, and names every registered API route."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from laserd.api.routing import API_PREFIX, openapi_path
from laserd.keys import ROUTE_SPECS


async def test_openapi_is_valid_and_complete(client) -> None:
    r = await client.get("/api/v1/openapi.json")
    assert r.status == 200
    doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    registered = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith(API_PREFIX) or route.method in ("HEAD", "OPTIONS"):
            continue
        registered.add((route.method, openapi_path(path)))
    assert registered, "no API routes registered?"
    assert registered == documented
    # every declared spec is registered (nothing documented that does not exist)
    specs = {(s.method, openapi_path(s.full_path)) for s in client.app[ROUTE_SPECS]}
    assert specs == registered


async def test_every_operation_declares_role_and_error_schema(client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["x-role"] in {"public", "guest", "user", "admin"}, (method, path)
            assert re.fullmatch(r"[a-z_]+", op["operationId"]), op["operationId"]
            for code, resp in op["responses"].items():
                if int(code) >= 400:
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema["$ref"].endswith("/ErrorEnvelope")


async def test_docs_page_is_served_offline(client) -> None:
    r = await client.get("/api/v1/docs")
    assert r.status == 200 and r.content_type == "text/html"
    html = await r.text()
    assert "<script" in html and "http" not in re.sub(r"<!--.*?-->", "", html, flags=re.S).replace(
        "http-equiv", ""
    )
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        a = await client.get(asset if asset.startswith("/") else f"/api/v1/{asset}")
        assert a.status == 200, asset
