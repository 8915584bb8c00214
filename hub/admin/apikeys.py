"""API keys as an admin manages them: made with the scopes asked for (shown once), listed
with their last use, revoked. Each change is in the domain-event log with who made it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from hub.admin.checks import invalid, refuse_unknown
from hub.api.auth import ALL_SCOPES, SCOPES
from hub.errors import ApiError
from storage import apikeys
from storage.events import NewEvent, append, set_actor


def key_json(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    """A key as the API shows it: its prefix to recognise it by, never the key or its hash."""
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "scopes": list(row["scopes"]),
        "created_at": row["created_at"].isoformat(),
        "last_used_at": row["last_used_at"].isoformat() if row["last_used_at"] else None,
        "revoked": row["revoked_at"] is not None,
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
    }


def check(values: Mapping[str, Any]) -> tuple[str, list[str]]:
    refuse_unknown(values, ("name", "scopes"))
    name, scopes = values.get("name"), values.get("scopes", list(SCOPES))
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise invalid("name: 1 to 100 characters")
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and s in ALL_SCOPES for s in scopes)
    ):
        raise invalid(f"scopes: a non-empty list of {', '.join(ALL_SCOPES)}")
    return name.strip(), sorted(set(scopes))


async def create(
    pool: asyncpg.Pool, values: Mapping[str, Any], actor: str
) -> tuple[dict[str, Any], str]:
    """The new key's record and the key itself (shown this once)."""
    name, scopes = check(values)
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        key, secret = await apikeys.create(conn, name, scopes)
        await append(
            conn, [NewEvent("apikey.created", data={"id": key.id, "name": name, "scopes": scopes})]
        )
        row = await apikeys.get(conn, key.id)
    assert row is not None
    return key_json(row), secret


async def update(
    pool: asyncpg.Pool, key_id: int, values: Mapping[str, Any], actor: str
) -> dict[str, Any]:
    """Rename a key or change its scopes (its holder's next request has them). A revoked
    key cannot be brought back: a leaked key must stay dead; make a new one."""
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        row = await apikeys.get(conn, key_id)
        if row is None:
            raise ApiError(404, "not_found", f"API key {key_id} not found")
        name, scopes = check({"name": row["name"], "scopes": list(row["scopes"]), **values})
        if not await apikeys.update(conn, key_id, name, scopes):
            raise ApiError(409, "conflict", "a revoked key cannot change; make a new one")
        await append(
            conn,
            [
                NewEvent(
                    "apikey.updated", data={"id": key_id, "name": name, "fields": sorted(values)}
                )
            ],
        )
        row = await apikeys.get(conn, key_id)
    assert row is not None
    return key_json(row)


async def revoke(pool: asyncpg.Pool, key_id: int, actor: str) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        row = await apikeys.get(conn, key_id)
        if row is None:
            raise ApiError(404, "not_found", f"API key {key_id} not found")
        if await apikeys.revoke(conn, key_id):
            await append(
                conn, [NewEvent("apikey.revoked", data={"id": key_id, "name": row["name"]})]
            )
        row = await apikeys.get(conn, key_id)
    assert row is not None
    return key_json(row)
