"""`/api/v1/queues`: the routing queues, read by supervisors, managed by admins."""

from __future__ import annotations

from aiohttp import web

from hub.admin import queues as admin_queues
from hub.api.auth import principal_of, scoped
from hub.api.shapes import path_id
from hub.context import hub_of
from hub.errors import not_found
from hub.httputil import read_json_object
from storage import queues as queue_store


@scoped("admin")
async def list_queues(request: web.Request) -> web.Response:
    queues = await queue_store.list_all(hub_of(request).pool)
    return web.json_response({"items": [admin_queues.queue_json(q) for q in queues]})


@scoped("admin")
async def get_queue(request: web.Request) -> web.Response:
    queue = await queue_store.get(hub_of(request).pool, path_id(request))
    if queue is None or queue.disabled:
        raise not_found(f"queue {path_id(request)} not found")
    return web.json_response(admin_queues.queue_json(queue))


@scoped("admin")
async def create_queue(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await read_json_object(request, 16 * 1024)
    queue = await admin_queues.create(hub.pool, body, principal_of(request).actor)
    _reroute(request)
    return web.json_response(admin_queues.queue_json(queue), status=201)


@scoped("admin")
async def update_queue(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await read_json_object(request, 16 * 1024)
    queue = await admin_queues.update(hub.pool, path_id(request), body, principal_of(request).actor)
    _reroute(request)
    return web.json_response(admin_queues.queue_json(queue))


@scoped("admin")
async def remove_queue(request: web.Request) -> web.Response:
    """Its waiting dialogs go to their channel's queue, else the default one."""
    await admin_queues.remove(hub_of(request).pool, path_id(request), principal_of(request).actor)
    _reroute(request)
    return web.Response(status=204)


def _reroute(request: web.Request) -> None:
    """This node's router reads the queues now (others within seconds) and offers again."""
    router = hub_of(request).router
    router.forget_queues()
    router.wake()
