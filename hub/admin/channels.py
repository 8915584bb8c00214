"""Channels as an admin manages them: added with the settings their kind declares, changed
(a secret left out keeps its value), disabled, enabled, removed; shown with the state of
their background work on whichever node runs it. The forms come from each kind's settings
class (`kinds_json`), so a new channel kind needs no admin code.

Secrets are write-only: a channel is shown with which secrets are set, never their values;
a value the hub generated (a webhook secret) is shown once, in the answer that made it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from hub.admin.checks import invalid, refuse_unknown
from hub.domain import Channel
from hub.errors import ApiError
from hub.ports.connector import ConnectorDescriptor
from hub.ports.settings import SettingsInvalid
from storage import channels
from storage.events import NewEvent, append, set_actor

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def kinds_json(kinds: Mapping[str, ConnectorDescriptor]) -> list[dict[str, Any]]:
    """Each kind with its settings, as a form is built from them."""
    out = []
    for kind, descriptor in sorted(kinds.items()):
        fields = []
        for f in dataclasses.fields(descriptor.settings):
            meta = f.metadata
            fields.append(
                {
                    "name": f.name,
                    "required": bool(meta.get("required")),
                    "secret": bool(meta.get("secret")),
                    "choices": list(meta.get("choices") or ()),
                    "url": bool(meta.get("url")),
                    "generated": meta.get("generate") is not None,
                    "paste_at": meta.get("paste_at") or None,
                    "default": str(f.default) if f.default not in ("", None) else None,
                    "help": meta.get("help") or "",
                }
            )
        out.append({"kind": kind, "title": descriptor.title, "settings": fields})
    return out


def _secret_names(descriptor: ConnectorDescriptor | None) -> set[str]:
    if descriptor is None:
        return set()
    return {f.name for f in dataclasses.fields(descriptor.settings) if f.metadata.get("secret")}


def channel_json(
    channel: Channel,
    descriptor: ConnectorDescriptor | None,
    status: Mapping[str, Any] | None,
    public_url: str = "",
) -> dict[str, Any]:
    secret = _secret_names(descriptor)
    path = descriptor.inbound_path(channel.name) if descriptor else None
    needs_runner = descriptor is not None and descriptor.capabilities.needs_runner(channel)
    # Webhooks and forms need no background work: any node answers them.
    state: dict[str, Any]
    if not channel.enabled:
        state = {"state": "disabled"}
    elif not needs_runner:
        state = {"state": "listening"}
    elif status is None or (status["state"] == "running" and status["stale"]):
        state = {"state": "starting"}  # not taken yet, or its node went quiet
    else:
        state = {
            "state": status["state"],
            "node": status["node"],
            "error": status["error"],
            "since": status["since"].isoformat(),
        }
    return {
        "id": channel.id,
        "kind": channel.kind,
        "name": channel.name,
        "enabled": channel.enabled,
        "settings": {k: v for k, v in channel.settings.items() if k not in secret},
        "secrets": {name: bool(channel.settings.get(name)) for name in sorted(secret)},
        "inbound_path": path,
        "inbound_url": f"{public_url.rstrip('/')}{path}" if path and public_url else None,
        "status": state,
        "created_at": channel.created_at.isoformat(),
    }


def _settings(values: Any) -> dict[str, str | None]:
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str | int)) for k, v in values.items()
    ):
        raise invalid("settings: an object of text values (null removes one)")
    return {k: (str(v) if v is not None else None) for k, v in values.items()}


def _checked(descriptor: ConnectorDescriptor, values: Mapping[str, str]) -> dict[str, str]:
    try:
        return descriptor.check_settings(values)
    except SettingsInvalid as exc:
        raise ApiError(422, "invalid_settings", exc.message) from None


async def create(
    pool: asyncpg.Pool,
    kinds: Mapping[str, ConnectorDescriptor],
    body: Mapping[str, Any],
    actor: str,
) -> tuple[Channel, list[tuple[str, str, str]]]:
    """The channel, and the generated values to paste at the provider (shown this once)."""
    kind, name = body.get("kind"), body.get("name")
    refuse_unknown(body, ("kind", "name", "settings"))
    descriptor = kinds.get(kind) if isinstance(kind, str) else None
    if descriptor is None:
        raise invalid(f"kind is one of {', '.join(sorted(kinds))}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid("name: 1-63 letters, digits, '.', '_' or '-'")
    given = {k: v for k, v in _settings(body.get("settings")).items() if v is not None}
    stored = _checked(descriptor, given)
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        try:
            channel = await channels.create(conn, descriptor.kind, name, stored)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"a channel named {name!r} exists") from None
        await append(conn, [_event("channel.created", channel, sorted(given))])
    return channel, descriptor.settings.to_paste(given, stored)


async def update(
    pool: asyncpg.Pool,
    kinds: Mapping[str, ConnectorDescriptor],
    channel_id: int,
    body: Mapping[str, Any],
    actor: str,
) -> Channel:
    """Rename, change settings (given keys replace, null removes, absent ones are kept: a
    secret need not be typed again), enable or disable. The node running the channel
    restarts it with the new settings within its supervisor's interval."""
    refuse_unknown(body, ("name", "settings", "enabled"), "; a channel's kind cannot change")
    name, enabled = body.get("name"), body.get("enabled")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise invalid("name: 1-63 letters, digits, '.', '_' or '-'")
    if enabled is not None and not isinstance(enabled, bool):
        raise invalid("enabled is true or false")
    given = _settings(body.get("settings"))
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        channel = await channels.get(conn, channel_id)
        if channel is None:
            raise ApiError(404, "not_found", f"channel {channel_id} not found")
        descriptor = kinds.get(channel.kind)
        settings = None
        if given:
            if descriptor is None:
                raise ApiError(409, "conflict", f"this hub does not serve {channel.kind} channels")
            merged = {**channel.settings, **{k: v for k, v in given.items() if v is not None}}
            for key in [k for k, v in given.items() if v is None]:
                merged.pop(key, None)
            settings = _checked(descriptor, merged)
        try:
            changed = await channels.update(conn, channel_id, name=name, settings=settings)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"a channel named {name!r} exists") from None
        assert changed is not None
        events = []
        fields = sorted(given) + (["name"] if name and name != channel.name else [])
        if fields:
            events.append(_event("channel.updated", changed, fields))
        if enabled is not None and enabled != channel.enabled:
            changed = await channels.set_enabled(conn, channel_id, enabled) or changed
            events.append(_event("channel.enabled" if enabled else "channel.disabled", changed, []))
        await append(conn, events)
    return changed


async def remove(pool: asyncpg.Pool, channel_id: int, actor: str) -> bool:
    """Deleted when nothing refers to it, else disabled; whether it was deleted."""
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        channel = await channels.get(conn, channel_id)
        if channel is None:
            raise ApiError(404, "not_found", f"channel {channel_id} not found")
        deleted = await channels.remove(conn, channel_id)
        await append(
            conn, [_event("channel.removed" if deleted else "channel.disabled", channel, [])]
        )
    return deleted


def _event(kind: str, channel: Channel, fields: list[str]) -> NewEvent:
    """Which settings changed, never their values."""
    data: dict[str, Any] = {"id": channel.id, "name": channel.name, "kind": channel.kind}
    if fields:
        data["fields"] = fields
    return NewEvent(kind, data=data)
