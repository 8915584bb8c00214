"""Channels: one configured inbound source (a bot, a mailbox, a form) each."""

from __future__ import annotations

from typing import Any

import asyncpg

from hub.domain import Channel, ChannelId
from storage.database import Conn


def _channel(row: asyncpg.Record) -> Channel:
    return Channel(
        id=ChannelId(row["id"]),
        kind=row["kind"],
        name=row["name"],
        enabled=row["enabled"],
        settings=dict(row["settings"]),
        created_at=row["created_at"],
    )


async def create(conn: Conn, kind: str, name: str, settings: dict[str, str]) -> Channel:
    row = await conn.fetchrow(
        "INSERT INTO channels (kind, name, settings) VALUES ($1, $2, $3) RETURNING *",
        kind,
        name,
        settings,
    )
    assert row is not None
    return _channel(row)


async def get_by_name(conn: Conn | asyncpg.Pool, name: str) -> Channel | None:
    row = await conn.fetchrow("SELECT * FROM channels WHERE name = $1", name)
    return _channel(row) if row else None


async def get(conn: Conn | asyncpg.Pool, channel_id: int) -> Channel | None:
    row = await conn.fetchrow("SELECT * FROM channels WHERE id = $1", channel_id)
    return _channel(row) if row else None


async def list_all(conn: Conn | asyncpg.Pool) -> list[Channel]:
    return [_channel(r) for r in await conn.fetch("SELECT * FROM channels ORDER BY id")]


async def load_state(conn: Conn | asyncpg.Pool, channel_id: int) -> dict[str, Any]:
    value = await conn.fetchval("SELECT state FROM channel_state WHERE channel_id = $1", channel_id)
    return dict(value) if value else {}


async def save_state(conn: Conn | asyncpg.Pool, channel_id: int, state: dict[str, Any]) -> None:
    """A channel's place in its provider's stream (an update offset, a mailbox's last UID).
    Committed without waiting for the disk: a state lost in a crash only makes the channel
    read again what it had stored, which the hub recognises by the provider's ids; and one
    that survives implies everything committed before it did (the WAL is written in order)."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as own:
            await save_state(own, channel_id, state)
        return
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit TO OFF")
        await store_state(conn, channel_id, state)


async def store_state(conn: Conn, channel_id: int, state: dict[str, Any]) -> None:
    """The state written in the caller's transaction: a poller's position committed with
    the events it read."""
    await conn.execute(
        """INSERT INTO channel_state (channel_id, state) VALUES ($1, $2)
           ON CONFLICT (channel_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()""",
        channel_id,
        state,
    )


async def set_subscribed(
    conn: Conn | asyncpg.Pool, channel_id: int, external_id: str, subscribed: bool
) -> None:
    await conn.execute(
        """INSERT INTO channel_subscribers (channel_id, external_id, subscribed) VALUES ($1, $2, $3)
           ON CONFLICT (channel_id, external_id)
           DO UPDATE SET subscribed = EXCLUDED.subscribed, updated_at = now()""",
        channel_id,
        external_id,
        subscribed,
    )


async def is_unsubscribed(conn: Conn | asyncpg.Pool, channel_id: int, external_id: str) -> bool:
    value = await conn.fetchval(
        "SELECT NOT subscribed FROM channel_subscribers WHERE channel_id = $1 AND external_id = $2",
        channel_id,
        external_id,
    )
    return bool(value)


async def set_status(
    conn: Conn | asyncpg.Pool, channel_id: int, state: str, node: str, error: str | None = None
) -> None:
    """What the node running the channel says of it now (`since` moves on a change)."""
    await conn.execute(
        """INSERT INTO channel_status (channel_id, state, node, error) VALUES ($1, $2, $3, $4)
           ON CONFLICT (channel_id) DO UPDATE SET
               since = CASE WHEN channel_status.state IS DISTINCT FROM EXCLUDED.state
                              OR channel_status.node IS DISTINCT FROM EXCLUDED.node
                            THEN now() ELSE channel_status.since END,
               state = EXCLUDED.state, node = EXCLUDED.node, error = EXCLUDED.error,
               seen_at = now()""",
        channel_id,
        state,
        node,
        error,
    )


async def seen_running(conn: Conn | asyncpg.Pool, channel_ids: list[int], node: str) -> None:
    """The node still runs these channels (one statement a round, whatever their number)."""
    await conn.execute(
        """UPDATE channel_status SET seen_at = now()
           WHERE channel_id = ANY($1::bigint[]) AND node = $2 AND state = 'running'""",
        channel_ids,
        node,
    )


async def statuses(
    conn: Conn | asyncpg.Pool, channel_id: int | None = None
) -> dict[int, dict[str, Any]]:
    """What the running nodes last said of each channel (of one, when named)."""
    rows = await conn.fetch(
        """SELECT channel_id, state, node, error, since, seen_at,
                  seen_at < now() - interval '1 minute' AS stale
           FROM channel_status WHERE $1::bigint IS NULL OR channel_id = $1""",
        channel_id,
    )
    return {r["channel_id"]: dict(r) for r in rows}


async def update(
    conn: Conn, channel_id: int, *, name: str | None, settings: dict[str, str] | None
) -> Channel | None:
    row = await conn.fetchrow(
        """UPDATE channels SET name = COALESCE($2, name), settings = COALESCE($3, settings)
           WHERE id = $1 RETURNING *""",
        channel_id,
        name,
        settings,
    )
    return _channel(row) if row else None


async def set_enabled(conn: Conn, channel_id: int, enabled: bool) -> Channel | None:
    row = await conn.fetchrow(
        "UPDATE channels SET enabled = $2 WHERE id = $1 RETURNING *", channel_id, enabled
    )
    return _channel(row) if row else None


async def remove(conn: Conn, channel_id: int) -> bool:
    """Delete a channel nothing refers to; else disable it (its history names it). True
    when it was deleted."""
    used = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM dialogs WHERE channel_id = $1)
               OR EXISTS (SELECT 1 FROM unsorted WHERE channel_id = $1)
               OR EXISTS (SELECT 1 FROM calls WHERE channel_id = $1)""",
        channel_id,
    )
    if used:
        await conn.execute("UPDATE channels SET enabled = false WHERE id = $1", channel_id)
        return False
    await conn.execute("DELETE FROM channel_state WHERE channel_id = $1", channel_id)
    await conn.execute("DELETE FROM channel_subscribers WHERE channel_id = $1", channel_id)
    await conn.execute("DELETE FROM channels WHERE id = $1", channel_id)
    return True
