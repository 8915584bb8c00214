"""Routing queues as an admin manages them: made, changed (channels, skills, strategy, offer
timeout, auto-reply, hours with breaks and holidays, time zone), removed. The router reads
queues again within seconds on every node (at once on the node that made the change)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import asyncpg

from hub.admin.checks import invalid, names, refuse_unknown
from hub.errors import ApiError
from routing.hours import InvalidHours, parse_hours
from storage import channels
from storage import queues as queue_store
from storage.database import Conn
from storage.events import NewEvent, append, set_actor
from storage.queues import QueueRow

STRATEGIES = ("least_busy", "round_robin", "sticky", "all")
_NAME = re.compile(r"^[\w.-]{1,64}$")
_SKILL = re.compile(r"^[\w.-]{1,40}$")
DEFAULTS: dict[str, Any] = {
    "strategy": "least_busy",
    "offer_timeout_s": 30,
    "channels": [],
    "skills": [],
    "hours": None,
    "timezone": "UTC",
    "auto_reply": None,
}


def queue_json(queue: QueueRow) -> dict[str, Any]:
    body = asdict(queue)
    body.pop("last_operator_id")
    body["channels"], body["skills"] = list(queue.channels), list(queue.skills)
    return body


async def check(
    conn: Conn, values: Mapping[str, Any], *, creating: bool, current: QueueRow | None
) -> dict[str, Any]:
    refuse_unknown(values, {"name", *DEFAULTS})
    out: dict[str, Any] = {}
    if creating and not values.get("name"):
        raise invalid("name is required")
    if "name" in values:
        if not isinstance(values["name"], str) or not _NAME.match(values["name"]):
            raise invalid("name: letters, digits and _ . -, at most 64")
        out["name"] = values["name"]
    if "strategy" in values:
        if values["strategy"] not in STRATEGIES:
            raise invalid(f"strategy is one of {', '.join(STRATEGIES)}")
        out["strategy"] = values["strategy"]
    if "offer_timeout_s" in values:
        value = values["offer_timeout_s"]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3600:
            raise invalid("offer_timeout_s: whole seconds from 1 to 3600")
        out["offer_timeout_s"] = value
    for field, pattern in (("channels", _NAME), ("skills", _SKILL)):
        if field in values:
            out[field] = names(values[field], pattern, field)
    if out.get("channels"):
        known_channels = {c.name for c in await channels.list_all(conn)}
        missing = [c for c in out["channels"] if c not in known_channels]
        if missing:
            raise invalid(f"no channel named {', '.join(missing)}")
    if "auto_reply" in values:
        reply = values["auto_reply"]
        if reply is not None and (not isinstance(reply, str) or not 0 < len(reply) <= 1000):
            raise invalid("auto_reply: text of at most 1000 characters, or null")
        out["auto_reply"] = reply.strip() or None if isinstance(reply, str) else None
    for field in ("hours", "timezone"):
        if field in values and values[field] is not None and not isinstance(values[field], str):
            raise invalid(f"{field} must be text")
    if "hours" in values:
        out["hours"] = (values["hours"] or "").strip() or None
    if "timezone" in values:
        out["timezone"] = values["timezone"] or "UTC"
    hours = out.get("hours", current.hours if current else None)
    zone = out.get("timezone", current.timezone if current else "UTC")
    try:
        parse_hours(hours or "mon 00:00-01:00", zone)  # the zone alone must exist too
    except InvalidHours as exc:
        raise invalid(f"hours: {exc}") from None
    return out


async def create(pool: asyncpg.Pool, values: Mapping[str, Any], actor: str) -> QueueRow:
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        fields = {**DEFAULTS, **await check(conn, values, creating=True, current=None)}
        try:
            queue = await queue_store.create(conn, **fields)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"a queue named {fields['name']!r} exists") from None
        await append(conn, [_event("queue.created", queue, sorted(values))])
    return queue


async def update(
    pool: asyncpg.Pool, queue_id: int, values: Mapping[str, Any], actor: str
) -> QueueRow:
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        current = await queue_store.get(conn, queue_id)
        if current is None or current.disabled:
            raise ApiError(404, "not_found", f"queue {queue_id} not found")
        fields = await check(conn, values, creating=False, current=current)
        try:
            queue = await queue_store.update(conn, queue_id, fields)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", "a queue of that name exists") from None
        assert queue is not None
        if fields:
            await append(conn, [_event("queue.updated", queue, sorted(fields))])
    return queue


async def remove(pool: asyncpg.Pool, queue_id: int, actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        queue = await queue_store.get(conn, queue_id)
        if queue is None or queue.disabled:
            raise ApiError(404, "not_found", f"queue {queue_id} not found")
        await queue_store.remove(conn, queue_id)
        await append(conn, [_event("queue.removed", queue, [])])


def _event(kind: str, queue: QueueRow, fields: list[str]) -> NewEvent:
    data: dict[str, Any] = {"id": queue.id, "name": queue.name}
    if fields:
        data["fields"] = fields
    return NewEvent(kind, data=data)
