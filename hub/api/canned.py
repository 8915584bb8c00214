"""Canned responses: every console reads them (`GET`), admins keep them (an admin
operator's session, or an API key with the `dialogs` or `admin` scope); each change is in
the domain-event log with who made it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from hub.api.auth import principal_of, scoped
from hub.api.shapes import path_id
from hub.context import hub_of
from hub.errors import ApiError, not_found, unprocessable
from hub.httputil import read_json_object, refuse_unusable_text
from storage import canned
from storage.database import Conn
from storage.events import NewEvent, append, set_actor

LANGUAGE = re.compile(r"^[a-z]{2}$")
MAX_TITLE, MAX_TEXT = 100, 4096


def canned_json(item: canned.Canned) -> dict[str, Any]:
    return {
        "id": item.id,
        "language": item.language,
        "title": item.title,
        "text": item.text,
        "updated_at": item.updated_at.isoformat(),
    }


def _ensure_admin(request: web.Request) -> None:
    principal = principal_of(request)
    if principal.kind == "operator" and principal.role != "admin":
        raise ApiError(403, "forbidden", "canned responses are kept by admins")


def _fields(body: dict[str, Any], *, partial: bool) -> dict[str, str]:
    refuse_unusable_text(body)
    found: dict[str, str] = {}
    for name, limit in (("language", 2), ("title", MAX_TITLE), ("text", MAX_TEXT)):
        value = body.get(name)
        if value is None:
            if not partial:
                raise unprocessable("missing_field", f"{name} is required")
            continue
        if not isinstance(value, str) or not value.strip():
            raise unprocessable("invalid_field", f"{name} must be non-empty text")
        value = value.strip()
        if len(value) > limit:
            raise unprocessable("invalid_field", f"{name} holds at most {limit} characters")
        found[name] = value
    if "language" in found:
        found["language"] = found["language"].lower()
        if not LANGUAGE.match(found["language"]):
            raise unprocessable("invalid_field", "language must be a two-letter code, e.g. en")
    if partial and not found:
        raise unprocessable("missing_field", "give language, title or text")
    return found


@scoped("dialogs")
async def list_canned(request: web.Request) -> web.Response:
    language = request.query.get("language") or None
    if language is not None and not LANGUAGE.match(language):
        raise ApiError(400, "bad_query", "language must be a two-letter code, e.g. en")
    items = await canned.list_all(hub_of(request).pool, language)
    return web.json_response({"items": [canned_json(i) for i in items]})


@scoped("dialogs", "admin")
async def get_canned(request: web.Request) -> web.Response:
    item = await canned.get(hub_of(request).pool, path_id(request))
    if item is None:
        raise not_found(f"canned response {path_id(request)} not found")
    return web.json_response(canned_json(item))


@scoped("dialogs", "admin")
async def create_canned(request: web.Request) -> web.Response:
    _ensure_admin(request)
    hub = hub_of(request)
    fields = _fields(await read_json_object(request, hub.settings.max_body_bytes), partial=False)
    try:
        async with _recorded(request) as conn:
            made = await canned.create(conn, fields["language"], fields["title"], fields["text"])
            await append(conn, [_event("canned.created", made.id, made.title, sorted(fields))])
    except canned.DuplicateTitle as exc:
        raise ApiError(409, "duplicate_title", str(exc)) from None
    return web.json_response(canned_json(made), status=201)


@scoped("dialogs", "admin")
async def update_canned(request: web.Request) -> web.Response:
    _ensure_admin(request)
    hub = hub_of(request)
    canned_id = path_id(request)
    fields = _fields(await read_json_object(request, hub.settings.max_body_bytes), partial=True)
    try:
        async with _recorded(request) as conn:
            changed = await canned.update(conn, canned_id, **fields)
            if changed is None:
                raise not_found(f"canned response {canned_id} not found")
            await append(conn, [_event("canned.updated", canned_id, changed.title, sorted(fields))])
    except canned.DuplicateTitle as exc:
        raise ApiError(409, "duplicate_title", str(exc)) from None
    return web.json_response(canned_json(changed))


@scoped("dialogs", "admin")
async def delete_canned(request: web.Request) -> web.Response:
    _ensure_admin(request)
    canned_id = path_id(request)
    async with _recorded(request) as conn:
        if not await canned.remove(conn, canned_id):
            raise not_found(f"canned response {canned_id} not found")
        await append(conn, [_event("canned.removed", canned_id, None, [])])
    return web.Response(status=204)


@asynccontextmanager
async def _recorded(request: web.Request) -> AsyncIterator[Conn]:
    """A transaction whose change is recorded in the domain-event log with its actor."""
    async with hub_of(request).pool.acquire() as conn, conn.transaction():
        await set_actor(conn, principal_of(request).actor)
        yield conn


def _event(kind: str, canned_id: int, title: str | None, fields: list[str]) -> NewEvent:
    data: dict[str, Any] = {"id": canned_id}
    if title is not None:
        data["title"] = title
    if fields:
        data["fields"] = fields
    return NewEvent(kind, data=data)
