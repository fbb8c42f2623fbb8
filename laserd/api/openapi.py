"""The OpenAPI 3.1 document, generated from the declared routes and their pydantic models.

Nothing here is hand-kept: the paths, roles, request bodies, query parameters and responses
come from the :class:`~laserd.api.routing.RouteSpec` records that also drive validation.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue

from laserd import __version__
from laserd.api.routing import RouteSpec, openapi_path, path_params
from laserd.auth.principal import Role
from laserd.schemas import ErrorEnvelope

REF = "#/components/schemas/{model}"

#: One schema input: the model's ``id()`` and whether it is read (validation) or written.
SchemaKey = tuple[int, JsonSchemaMode]
#: Every model's JSON schema (a ``$ref`` into the components), by input and mode.
_SchemaMap = dict[tuple[SchemaKey, JsonSchemaMode], JsonSchemaValue]

_ERROR_TEXT = {
    400: "Malformed request (bad JSON, wrong content type)",
    401: "Not authenticated, or the token expired or is invalid",
    403: "Forbidden for this role",
    404: "Not found (also for other users' objects)",
    409: "Conflict with the current state",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation error; details lists the fields",
    423: "Account locked",
    429: "Rate limited; see Retry-After",
    503: "Unavailable (for example, the controller is disconnected)",
    507: "Insufficient storage",
}


def _schemas(
    specs: list[RouteSpec],
) -> tuple[_SchemaMap, dict[str, Any]]:
    inputs: list[tuple[SchemaKey, JsonSchemaMode, TypeAdapter[Any]]] = []
    seen: set[SchemaKey] = set()
    for spec in specs:
        modes: list[tuple[JsonSchemaMode, Any]] = [
            ("validation", spec.body),
            ("serialization", spec.response),
        ]
        for mode, tp in modes:
            if tp is None:
                continue
            key: SchemaKey = (id(tp), mode)
            if key in seen:
                continue
            seen.add(key)
            inputs.append((key, mode, TypeAdapter(tp)))
    inputs.append(
        ((id(ErrorEnvelope), "serialization"), "serialization", TypeAdapter(ErrorEnvelope))
    )
    mapping, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    return mapping, defs.get("$defs", {})


def _body_required(schema: dict[str, Any]) -> bool:
    """Whether an empty body (read as ``{}``) would be refused: some field must be given."""
    return bool(schema.get("required") or schema.get("anyOf"))


def _query_parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    if spec.query is None:
        return []
    schema = spec.query.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "title"},
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def build_openapi(specs: list[RouteSpec]) -> dict[str, Any]:
    mapping, components = _schemas(specs)
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        op = _operation(spec, mapping)
        paths.setdefault(openapi_path(spec.full_path), {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "laserd",
            "version": __version__,
            "description": "REST and WebSocket API of laserd, the networked laser appliance.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
    }


def _operation(spec: RouteSpec, mapping: _SchemaMap) -> dict[str, Any]:
    """One route's operation object: identity, security, parameters, body and responses."""
    op: dict[str, Any] = {
        "operationId": f"{spec.tag}_{spec.handler.__name__}",
        "summary": spec.summary,
        "tags": [spec.tag],
        "x-role": spec.role.value,
    }
    if spec.description:
        op["description"] = spec.description
    if spec.role is not Role.public and not spec.self_auth:
        op["security"] = [{"bearer": []}, {"apiKey": []}]
    else:
        op["security"] = []
    params = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in path_params(spec.path)
    ] + _query_parameters(spec)
    if params:
        op["parameters"] = params
    body = _request_body(spec, mapping)
    if body is not None:
        op["requestBody"] = body
    op["responses"] = _success_response(spec, mapping) | _error_responses(spec, mapping)
    return op


def _request_body(spec: RouteSpec, mapping: _SchemaMap) -> dict[str, Any] | None:
    if spec.body is not None:
        return {
            # An empty body counts as ``{}``: it is optional when no field is required.
            "required": _body_required(spec.body.model_json_schema()),
            "content": {
                "application/json": {"schema": mapping[(id(spec.body), "validation"), "validation"]}
            },
        }
    if spec.consumes == "multipart/form-data":
        return {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                        "additionalProperties": False,
                    }
                }
            },
        }
    return None


def _success_response(spec: RouteSpec, mapping: _SchemaMap) -> dict[str, Any]:
    if spec.produces:
        return {
            str(spec.status): {
                "description": "; ".join(spec.produces.values()),
                "content": {
                    mt: {"schema": {"type": "string", "format": "binary"}} for mt in spec.produces
                },
            }
        }
    if spec.response is not None:
        return {
            str(spec.status): {
                "description": "Success",
                "content": {
                    "application/json": {
                        "schema": mapping[(id(spec.response), "serialization"), "serialization"]
                    }
                },
            }
        }
    return {
        str(spec.status): {
            "description": "Success, no content" if spec.status == 204 else "Success"
        }
    }


def _error_responses(spec: RouteSpec, mapping: _SchemaMap) -> dict[str, Any]:
    """The error envelope for every status the route declares, plus the ones its shape implies
    (a body or query: 400/422; a role: 401/403; a path parameter: 404)."""
    err_ref = mapping[(id(ErrorEnvelope), "serialization"), "serialization"]
    codes = set(spec.errors)
    if spec.body is not None or spec.query is not None:
        codes |= {400, 422}
    if spec.role is not Role.public:
        codes |= {401, 403}
    if path_params(spec.path):
        codes.add(404)
    return {
        str(code): {
            "description": _ERROR_TEXT.get(code, "Error"),
            "content": {"application/json": {"schema": err_ref}},
        }
        for code in sorted(codes)
    }
