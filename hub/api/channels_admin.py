"""`/api/v1/channels` and `/api/v1/channel-kinds`: an admin wires the hub's channels."""

from __future__ import annotations

from aiohttp import web

from hub.admin import channels as admin_channels
from hub.api.auth import principal_of, scoped
from hub.api.shapes import path_id
from hub.context import hub_of
from hub.domain import Channel
from hub.errors import not_found
from hub.httputil import read_json_object
from hub.ports.connector import remember_channel_secrets
from storage import channels


@scoped("admin")
async def list_kinds(request: web.Request) -> web.Response:
    """Each channel kind with the settings it takes: what the admin page builds forms of."""
    return web.json_response({"items": admin_channels.kinds_json(hub_of(request).kinds)})


@scoped("admin")
async def list_channels(request: web.Request) -> web.Response:
    hub = hub_of(request)
    async with hub.pool.acquire() as conn:
        found = await channels.list_all(conn)
        states = await channels.statuses(conn)
    return web.json_response({"items": [_json(request, c, states.get(c.id)) for c in found]})


@scoped("admin")
async def get_channel(request: web.Request) -> web.Response:
    hub = hub_of(request)
    async with hub.pool.acquire() as conn:
        channel = await channels.get(conn, path_id(request))
        states = await channels.statuses(conn, path_id(request))
    if channel is None:
        raise not_found(f"channel {path_id(request)} not found")
    return web.json_response(_json(request, channel, states.get(channel.id)))


@scoped("admin")
async def create_channel(request: web.Request) -> web.Response:
    """201 with the channel and `paste`: values the hub generated that must be pasted into
    the provider's settings (a webhook secret), shown this once."""
    hub = hub_of(request)
    body = await read_json_object(request, 64 * 1024)
    channel, paste = await admin_channels.create(
        hub.pool, hub.kinds, body, principal_of(request).actor
    )
    remember_channel_secrets(hub.kinds, channel)
    hub.channels.forget()
    answer = _json(request, channel, None)
    answer["paste"] = [{"setting": k, "value": v, "where": w} for k, v, w in paste]
    return web.json_response(answer, status=201)


@scoped("admin")
async def update_channel(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await read_json_object(request, 64 * 1024)
    channel = await admin_channels.update(
        hub.pool, hub.kinds, path_id(request), body, principal_of(request).actor
    )
    remember_channel_secrets(hub.kinds, channel)
    hub.channels.forget()
    states = await channels.statuses(hub.pool, channel.id)
    return web.json_response(_json(request, channel, states.get(channel.id)))


@scoped("admin")
async def remove_channel(request: web.Request) -> web.Response:
    """A channel with history is disabled (`deleted: false`), else deleted."""
    hub = hub_of(request)
    deleted = await admin_channels.remove(hub.pool, path_id(request), principal_of(request).actor)
    hub.channels.forget()
    return web.json_response({"deleted": deleted})


def _json(
    request: web.Request, channel: Channel, status: dict[str, object] | None
) -> dict[str, object]:
    hub = hub_of(request)
    return admin_channels.channel_json(
        channel, hub.kinds.get(channel.kind), status, hub.settings.base_url
    )
