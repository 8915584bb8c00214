"""Webhook subscriptions for CRMs: create (the secret is shown this once), list, remove,
the delivery log, replay."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.api.auth import scoped
from hub.api.shapes import path_id
from hub.context import hub_of
from hub.errors import ApiError, not_found, unprocessable
from hub.httputil import is_id, read_json_object
from storage import webhooks
from storage.webhooks import Subscription
from webhooks.signing import new_secret
from webhooks.subscriptions import Refused, check_events, check_url


def subscription_json(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "url": sub.url,
        "events": list(sub.events),
        "channels": list(sub.channels),
        "enabled": sub.enabled,
        "disabled_reason": sub.disabled_reason,
        "created_at": sub.created_at.isoformat(),
    }


@scoped("webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    subs = await webhooks.list_all(hub_of(request).pool)
    return web.json_response({"items": [subscription_json(s) for s in subs]})


@scoped("webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await read_json_object(request, hub.settings.max_body_bytes)
    url, events, only = body.get("url"), body.get("events", []), body.get("channels", [])
    if not isinstance(url, str):
        raise unprocessable("invalid_field", "url must be a string")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise unprocessable("invalid_field", "events must be a list of event types")
    if not isinstance(only, list) or not all(isinstance(c, str) for c in only) or len(only) > 100:
        raise unprocessable("invalid_field", "channels must be a list of channel names")
    try:
        events = check_events(events)
        url = await check_url(url, allow_private=hub.settings.webhook_allow_private)
    except Refused as exc:
        raise unprocessable("invalid_field", str(exc)) from None
    secret = new_secret()
    try:
        sub = await webhooks.create(hub.pool, url, events, secret, only)
    except webhooks.UnknownChannel as exc:
        raise unprocessable("invalid_field", str(exc)) from None
    return web.json_response({**subscription_json(sub), "secret": secret}, status=201)


@scoped("webhooks")
async def delete_webhook(request: web.Request) -> web.Response:
    subscription_id = path_id(request)
    if not await webhooks.remove(hub_of(request).pool, subscription_id):
        raise not_found(f"webhook {subscription_id} not found")
    return web.Response(status=204)


async def _subscription(request: web.Request) -> int:
    subscription_id = path_id(request)
    if await webhooks.get(hub_of(request).pool, subscription_id) is None:
        raise not_found(f"webhook {subscription_id} not found")
    return subscription_id


@scoped("webhooks")
async def webhook_deliveries(request: web.Request) -> web.Response:
    """One item per event, newest first, with every attempt."""
    rows = await webhooks.deliveries(hub_of(request).pool, await _subscription(request))
    items = [
        {
            "event_id": f"evt_{r['event_id']}",
            "type": r["type"],
            "status": r["status"],
            "attempts": r["attempts"],
            "last_status_code": r["last_status_code"],
            "attempt_log": r["attempt_log"],
        }
        for r in rows
    ]
    return web.json_response({"items": items})


@scoped("webhooks")
async def replay_webhook(request: web.Request) -> web.Response:
    """Send again the events named (`evt_…` ids as sent in `webhook-id`), or every dead one."""
    subscription_id = await _subscription(request)
    body = await read_json_object(request, hub_of(request).settings.max_body_bytes)
    raw = body.get("event_ids", [])
    if not isinstance(raw, list) or len(raw) > 1000:
        raise unprocessable("invalid_field", "event_ids must be a list of at most 1000 ids")
    ids = []
    for value in raw:
        text = value.removeprefix("evt_") if isinstance(value, str) else value
        number = int(text) if isinstance(text, str) and text.isdigit() else text
        if not is_id(number):
            raise ApiError(422, "invalid_field", f"not an event id: {str(value)[:40]!r}")
        ids.append(number)
    queued = await webhooks.replay(hub_of(request).pool, subscription_id, ids)
    return web.json_response({"queued": queued}, status=202)


@scoped("webhooks")
async def enable_webhook(request: web.Request) -> web.Response:
    """Turn a disabled subscription back on (`{"enabled": true}`): what waited goes out."""
    subscription_id = await _subscription(request)
    body = await read_json_object(request, hub_of(request).settings.max_body_bytes)
    if body != {"enabled": True}:
        raise unprocessable("invalid_field", 'send {"enabled": true} (remove it to stop it)')
    await webhooks.enable(hub_of(request).pool, subscription_id)
    sub = await webhooks.get(hub_of(request).pool, subscription_id)
    assert sub is not None
    return web.json_response(subscription_json(sub))
