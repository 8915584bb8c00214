"""The OpenAPI document and the router describe the same routes."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from hub.app import build_app
from hub.context import Hub


def _router_routes(hub: Hub) -> set[tuple[str, str]]:
    routes = set()
    for route in build_app(hub).router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or f"{info['prefix']}/{{filename}}"
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)
        routes.add((route.method.lower(), path))
    return routes


async def test_every_route_is_documented_and_every_documented_route_exists(
    hub: Hub, client: TestClient[Any, Any]
) -> None:
    reply = await client.get("/api/v1/openapi.json")
    assert reply.status == 200
    spec = await reply.json()
    assert spec["openapi"].startswith("3.")
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert documented == _router_routes(hub)


async def test_every_operation_has_responses_and_refs_resolve(client: TestClient[Any, Any]) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    text = str(spec)
    for ref in set(re.findall(r"#/components/(\w+)/(\w+)", text)):
        assert ref[1] in spec["components"][ref[0]], ref
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (method, path)
            assert op.get("summary"), (method, path)
