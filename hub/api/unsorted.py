"""The unsorted inbox over HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.api.auth import principal_of, scoped
from hub.api.shapes import page, paging, path_id
from hub.context import hub_of
from hub.errors import ApiError, unprocessable
from hub.httputil import read_json_object
from hub.unsorted_decisions import Decision, decide
from storage import unsorted_inbox


def _item_json(row: Any) -> dict[str, Any]:
    inbound = row["inbound"]
    return {
        "id": row["id"],
        "channel": row["channel_name"],
        "status": row["status"],
        "name": inbound.get("name"),
        "phones": inbound.get("phones", []),
        "emails": inbound.get("emails", []),
        "text": inbound.get("text"),
        "fields": (inbound.get("extra") or {}).get("fields", {}),
        "received_at": row["created_at"].isoformat(),
        "lead_id": row["lead_id"],
        "interaction_id": row["interaction_id"],
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
    }


@scoped("unsorted")
async def list_unsorted(request: web.Request) -> web.Response:
    after_id, limit = paging(request)
    status = request.query.get("status", "pending")
    if status not in {"pending", "accepted", "linked", "declined", "all"}:
        raise ApiError(
            400, "bad_query", "status must be pending, accepted, linked, declined or all"
        )
    async with hub_of(request).pool.acquire() as conn:
        rows = await unsorted_inbox.list_items(
            conn, status=None if status == "all" else status, after_id=after_id, limit=limit
        )
    return web.json_response(page([_item_json(r) for r in rows], limit))


async def _decide(request: web.Request, decision: Decision) -> web.Response:
    hub = hub_of(request)
    unsorted_id = path_id(request)
    lead_id = None
    if decision == "link":
        body = await read_json_object(request, hub.settings.max_body_bytes)
        lead_id = body.get("lead_id")
        if isinstance(lead_id, bool) or not isinstance(lead_id, int) or lead_id <= 0:
            raise unprocessable("invalid_field", "lead_id must be a lead id")
    result = await decide(
        hub.pipeline, unsorted_id, decision, principal_of(request).name, hub.kinds, lead_id
    )
    async with hub.pool.acquire() as conn:
        row = await unsorted_inbox.get(conn, unsorted_id)
    answer: dict[str, Any] = {"item": _item_json(row)}
    if result is not None:
        answer.update(
            interaction_id=result.interaction_id, lead_id=result.lead_id, dialog_id=result.dialog_id
        )
    return web.json_response(answer)


@scoped("unsorted")
async def accept_unsorted(request: web.Request) -> web.Response:
    return await _decide(request, "accept")


@scoped("unsorted")
async def link_unsorted(request: web.Request) -> web.Response:
    return await _decide(request, "link")


@scoped("unsorted")
async def decline_unsorted(request: web.Request) -> web.Response:
    return await _decide(request, "decline")
