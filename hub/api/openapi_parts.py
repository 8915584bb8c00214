"""The building blocks of the OpenAPI document: an operation, a query parameter, a path
id, a schema reference; shared by hub/api/openapi.py and its reports part."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/responses/Error"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def op(
    summary: str,
    *,
    tag: str,
    ok: int = 200,
    schema: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    auth: bool = True,
    errors: tuple[int, ...] = (400, 401, 403, 404, 422),
    content_type: str = "application/json",
    description: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        **({"description": description} if description else {}),
        "tags": [tag],
        "responses": {
            str(ok): {
                "description": "OK",
                **({"content": {content_type: {"schema": schema}}} if schema else {}),
            },
            **{str(code): ERROR for code in errors},
        },
    }
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if not auth:
        op["security"] = []
    return op


def q(name: str, description: str, kind: str = "string", **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind, **schema},
    }


def path(name: str = "id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
