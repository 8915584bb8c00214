"""`/api/v1/apikeys`: an admin lists, makes and revokes the keys CRMs and scripts use."""

from __future__ import annotations

from aiohttp import web

from hub.admin import apikeys as admin_keys
from hub.api.auth import principal_of, scoped
from hub.api.shapes import path_id
from hub.context import hub_of
from hub.errors import not_found
from hub.httputil import read_json_object
from storage import apikeys


@scoped("admin")
async def list_keys(request: web.Request) -> web.Response:
    rows = await apikeys.list_all(hub_of(request).pool)
    return web.json_response({"items": [admin_keys.key_json(r) for r in rows]})


@scoped("admin")
async def create_key(request: web.Request) -> web.Response:
    """201 with the key's record and `key`, the key itself: shown this once, only its hash
    is kept. `scopes` defaults to every scope but `admin`, which must be asked for."""
    body = await read_json_object(request, 16 * 1024)
    record, secret = await admin_keys.create(
        hub_of(request).pool, body, principal_of(request).actor
    )
    return web.json_response({**record, "key": secret}, status=201)


@scoped("admin")
async def revoke_key(request: web.Request) -> web.Response:
    """Revoked at once: its next request is refused (401). Kept in the list, revoked."""
    record = await admin_keys.revoke(
        hub_of(request).pool, path_id(request), principal_of(request).actor
    )
    return web.json_response(record)


@scoped("admin")
async def get_key(request: web.Request) -> web.Response:
    row = await apikeys.get(hub_of(request).pool, path_id(request))
    if row is None:
        raise not_found(f"API key {path_id(request)} not found")
    return web.json_response(admin_keys.key_json(row))


@scoped("admin")
async def update_key(request: web.Request) -> web.Response:
    """`{"name"?, "scopes"?}`: the key's next request has the new scopes."""
    body = await read_json_object(request, 16 * 1024)
    record = await admin_keys.update(
        hub_of(request).pool, path_id(request), body, principal_of(request).actor
    )
    return web.json_response(record)
