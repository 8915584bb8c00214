"""`/api/v1/operators/{id}` and creating operators: an admin's work (an admin operator's
token, or an API key with the `admin` scope). The list itself serves every console."""

from __future__ import annotations

from aiohttp import web

from hub.admin import operators as admin_operators
from hub.api.auth import principal_of, scoped
from hub.api.shapes import operator_json, path_id
from hub.context import hub_of
from hub.domain import Notice
from hub.errors import ApiError, not_found
from hub.httputil import read_json_object
from storage import operators


@scoped("admin")
async def create_operator(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await read_json_object(request, 16 * 1024)
    operator = await admin_operators.create(hub.pool, body, principal_of(request).actor)
    return web.json_response(operator_json(operator), status=201)


@scoped("admin")
async def get_operator(request: web.Request) -> web.Response:
    operator_id = path_id(request)
    operator = await operators.get(hub_of(request).pool, operator_id)
    if operator is None:
        raise not_found(f"operator {operator_id} not found")
    return web.json_response(operator_json(operator))


@scoped("admin")
async def update_operator(request: web.Request) -> web.Response:
    """Edit name, role, skills, capacity, extension; reset the password (their sessions
    end); `"disabled": true|false`."""
    body = await read_json_object(request, 16 * 1024)
    return await _apply(request, body)


@scoped("admin")
async def disable_operator(request: web.Request) -> web.Response:
    """Removing an operator disables them: their history keeps their name."""
    return await _apply(request, {"disabled": True})


async def _apply(request: web.Request, body: dict[str, object]) -> web.Response:
    hub = hub_of(request)
    operator_id = path_id(request)
    principal = principal_of(request)
    if principal.operator_id == operator_id and (
        body.get("disabled") is True or body.get("role", "admin") != "admin"
    ):
        raise ApiError(
            409, "conflict", "an admin cannot disable themselves or give up their own role"
        )
    changed = await admin_operators.update(hub.pool, operator_id, body, principal.actor)
    # Sockets of the ended sessions close on every node; offers go to others; the dialogs
    # put back in the queue are offered again.
    for token_id in changed.ended_tokens:
        await hub.bus.publish(Notice("session_ended", None, data={"token_id": token_id}))
    if changed.operator.disabled_at is not None:
        await hub.router.presence_changed(operator_id, "offline")
    if changed.released:
        hub.router.wake()
    return web.json_response(operator_json(changed.operator))
