"""Route declarations: one decorator states a route's least role and its models.

Every API handler is declared with :class:`ApiRoutes`::

    routes = ApiRoutes("projects")

    @routes.post("/projects", role=Role.user, body=ProjectCreate, response=ProjectOut,
                 status=201, summary="Create a project")
    async def create_project(request: web.Request, body: ProjectCreate) -> ProjectOut: ...

The wrapper authenticates (for any role above ``public``), checks the role, reads and validates
the JSON body and the query string with the pydantic models, and serialises the answer with the
response model. The same :class:`RouteSpec` records feed the OpenAPI document
(:mod:`laserd.api.openapi`) and the role × route matrix test, so what is documented is what is
enforced: one source of truth.

Handler return values: a pydantic model or a dict/list (JSON with ``status``), ``None`` (204),
or any ``web.StreamResponse`` (sent as is: files, images, WebSockets).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from laserd import errors
from laserd.auth.principal import Principal, Role
from laserd.errors import validation_details
from laserd.keys import AUTHENTICATOR, ROUTE_SPECS
from laserd.logs import user_var

API_PREFIX = "/api/v1"
PRINCIPAL = web.RequestKey("principal", Principal)

Handler = Callable[..., Awaitable[Any]]


@dataclass(slots=True)
class RouteSpec:
    method: str
    path: str  # relative to API_PREFIX, aiohttp syntax (``/projects/{id}``)
    handler: Handler
    role: Role
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a model class, ``list[Model]``, or None
    status: int = 200
    #: Non-JSON answers: media type → description (e.g. ``{"image/png": "the preview"}``).
    produces: dict[str, str] = field(default_factory=dict)
    #: Non-JSON request bodies (``multipart/form-data`` uploads).
    consumes: str | None = None
    #: Error statuses this route can answer besides the generic ones.
    errors: tuple[int, ...] = ()
    #: True for routes that authenticate themselves (the WebSocket's first message).
    self_auth: bool = False
    debug_only: bool = False
    description: str = ""

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path


def raise_validation(exc: ValidationError, prefix: str = "") -> None:
    details = validation_details(exc, prefix)
    first = details[0] if details else {"field": prefix, "message": "invalid"}
    raise errors.ValidationFailed(f"{first['field']}: {first['message']}", details=details)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; an empty body counts as ``{}`` (e.g. ``POST /machine/home``)."""
    if not request.body_exists:
        return {}
    ctype = request.content_type
    raw = await request.read()
    if not raw.strip():
        return {}
    if ctype != "application/json":
        raise errors.BadRequest(
            f"Content-Type must be application/json, not {ctype or 'missing'}.",
            code="bad_request",
        )
    return parse_json(raw, what="The body")


#: Deepest nesting of arrays and objects a request may carry. No request model goes past a
#: handful of levels; the limit keeps hostile nesting away from every recursive step that
#: follows (re-encoding, integer folding, pydantic).
MAX_JSON_DEPTH = 32


def parse_json(raw: bytes | str, *, what: str) -> Any:
    """JSON text from a client → Python data, or :class:`errors.BadRequest` naming ``what``.

    The one decoder of client JSON (request bodies and the WebSocket's auth message): every
    way JSON can be malformed — including nesting deep enough to exhaust Python's recursion
    limit (100 000 ``[``) — is the client's mistake, a 400, never a 500.
    """
    try:
        data = json.loads(raw, parse_constant=_not_json)
        _check_depth(data, what)
        # "\ud800" escapes parse to lone surrogates: no Unicode text, no UTF-8 (password
        # hashing, SQLite and logs would each trip over them later).
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise errors.BadRequest(f"{what} is nested too deeply for JSON.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.BadRequest(f"{what} is not valid JSON: {exc}.") from None
    except UnicodeEncodeError:
        raise errors.BadRequest(f"{what} holds text that is not valid Unicode.") from None
    except ValueError as exc:
        raise errors.BadRequest(f"{what} is not valid JSON: {exc}.") from None
    return data


def _check_depth(data: Any, what: str) -> None:
    """Refuse nesting past :data:`MAX_JSON_DEPTH` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise errors.BadRequest(
                f"{what} is nested too deeply for JSON (more than {MAX_JSON_DEPTH} levels)."
            )
        stack.extend((child, depth + 1) for child in children)


def _not_json(name: str) -> Any:
    """Python's json module reads NaN and Infinity; JSON has neither (an ``inf`` feed, say)."""
    raise ValueError(f"{name} is not a JSON number")


def _json_integers(value: Any) -> Any:
    """Whole floats (``3.0``) as integers: JSON Schema counts them as integers, as clients do."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _json_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_integers(v) for v in value]
    return value


def _query_data(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    return data


def path_id(request: web.Request, name: str = "id") -> int:
    """An integer path parameter; anything else is simply not found (no 500, no leak)."""
    raw = request.match_info.get(name, "")
    # isascii(): str.isdigit() also holds for "³" and other digits int() refuses (a 500).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise errors.NotFound()
    return int(raw)


async def authenticate(request: web.Request) -> Principal:
    """The caller of ``request`` by its credential headers; 401 without valid ones."""
    return await request.app[AUTHENTICATOR].authenticate(
        api_key=request.headers.get("X-Api-Key"),
        authorization=request.headers.get("Authorization"),
    )


def principal(request: web.Request) -> Principal:
    """The caller of an authenticated route (set by the route wrapper)."""
    p = optional_principal(request)
    if p is None:
        raise errors.NotAuthenticated()
    return p


def optional_principal(request: web.Request) -> Principal | None:
    who: Principal | None = request.get(PRINCIPAL)  # aiohttp types Request.get as Any
    return who


def _dump(response_model: Any, value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if response_model is not None and isinstance(value, dict | list):
        adapter = _adapter(response_model)
        return adapter.dump_python(adapter.validate_python(value), mode="json")
    return value


@functools.cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


class ApiRoutes:
    """A table of declared API routes for one resource (one module under ``laserd.api``)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        role: Role,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int | None = None,
        produces: dict[str, str] | None = None,
        consumes: str | None = None,
        errors: Sequence[int] = (),
        self_auth: bool = False,
        debug_only: bool = False,
    ) -> Callable[[Handler], Handler]:
        # A route with nothing to answer is a 204 unless it says otherwise, so the documented
        # status is the one the wrapper sends for a handler that returns None.
        if status is None:
            status = 204 if response is None and not produces else 200

        def decorate(fn: Handler) -> Handler:
            spec = RouteSpec(
                method=method.upper(),
                path=path,
                handler=fn,
                role=role,
                summary=summary,
                tag=self.tag,
                body=body,
                query=query,
                response=response,
                status=status,
                produces=dict(produces or {}),
                consumes=consumes,
                errors=tuple(errors),
                self_auth=self_auth,
                debug_only=debug_only,
                description=(fn.__doc__ or "").strip(),
            )
            self.specs.append(spec)
            return fn

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


def _wrap(spec: RouteSpec) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if spec.role is not Role.public:
            who = await authenticate(request)
            if not who.role.allows(spec.role):
                raise errors.Forbidden(f"This needs the {spec.role.value} role.")
            request[PRINCIPAL] = who
            user_var.set(who.username)  # log lines of this request carry USER (journald)
        kwargs: dict[str, Any] = {}
        if spec.query is not None:
            try:
                kwargs["query"] = spec.query.model_validate(_query_data(request))
            except ValidationError as exc:
                raise_validation(exc)
        if spec.body is not None:
            data = await read_json(request)
            try:
                # Strict JSON-mode validation: the document promises JSON types, so ``false``
                # is no number and ``0`` no boolean (lax mode coerced both).
                kwargs["body"] = spec.body.model_validate_json(
                    json.dumps(_json_integers(data)), strict=True
                )
            except ValidationError as exc:
                raise_validation(exc)
        result = await spec.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        return json_response(_dump(spec.response, result), status=spec.status)

    handler.__name__ = spec.handler.__name__
    handler.__doc__ = spec.handler.__doc__
    return handler


_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def register(app: web.Application, tables: Sequence[ApiRoutes], *, debug: bool) -> None:
    """Add every declared route to the app and record the specs for OpenAPI and tests."""
    specs: list[RouteSpec] = []
    for table in tables:
        for spec in table.specs:
            if spec.debug_only and not debug:
                continue
            app.router.add_route(spec.method, spec.full_path, _wrap(spec))
            specs.append(spec)
    app[ROUTE_SPECS] = specs


def path_params(path: str) -> list[str]:
    return _PARAM.findall(path)


def openapi_path(path: str) -> str:
    """aiohttp ``{id:\\d+}`` → OpenAPI ``{id}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
