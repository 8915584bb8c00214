"""Routing queues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from storage.database import Conn, update_columns


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    name: str
    strategy: str
    offer_timeout_s: int
    channels: tuple[str, ...]
    skills: tuple[str, ...]
    hours: str | None
    timezone: str
    auto_reply: str | None
    last_operator_id: int | None
    disabled: bool = False


def _queue(row: asyncpg.Record) -> QueueRow:
    return QueueRow(
        id=row["id"],
        name=row["name"],
        strategy=row["strategy"],
        offer_timeout_s=row["offer_timeout_s"],
        channels=tuple(row["channels"]),
        skills=tuple(row["skills"]),
        hours=row["hours"],
        timezone=row["timezone"],
        auto_reply=row["auto_reply"],
        last_operator_id=row["last_operator_id"],
        disabled=row["disabled_at"] is not None,
    )


async def create(
    conn: Conn | asyncpg.Pool,
    *,
    name: str,
    strategy: str,
    offer_timeout_s: int,
    channels: Sequence[str],
    skills: Sequence[str],
    hours: str | None,
    timezone: str,
    auto_reply: str | None,
) -> QueueRow:
    row = await conn.fetchrow(
        """INSERT INTO queues (name, strategy, offer_timeout_s, channels, skills, hours, timezone,
                               auto_reply)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
        name,
        strategy,
        offer_timeout_s,
        list(channels),
        list(skills),
        hours,
        timezone,
        auto_reply,
    )
    assert row is not None
    return _queue(row)


async def list_all(conn: Conn | asyncpg.Pool, *, removed: bool = False) -> list[QueueRow]:
    """The queues in use (the router's); with `removed`, the disabled ones too."""
    rows = await conn.fetch(
        "SELECT * FROM queues WHERE $1 OR disabled_at IS NULL ORDER BY id", removed
    )
    return [_queue(r) for r in rows]


async def get(conn: Conn | asyncpg.Pool, queue_id: int) -> QueueRow | None:
    row = await conn.fetchrow("SELECT * FROM queues WHERE id = $1", queue_id)
    return _queue(row) if row else None


EDITABLE = (
    "name",
    "strategy",
    "offer_timeout_s",
    "channels",
    "skills",
    "hours",
    "timezone",
    "auto_reply",
)


async def update(conn: Conn, queue_id: int, changes: dict[str, Any]) -> QueueRow | None:
    """Change the named fields of a queue in use; the queue after."""
    row = await update_columns(
        conn, "queues", queue_id, changes, EDITABLE, also="disabled_at IS NULL"
    )
    return _queue(row) if row else None


async def remove(conn: Conn, queue_id: int) -> bool:
    """Delete a queue no dialog was routed through, else disable it; True if it was in use."""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM dialogs WHERE queue_id = $1)", queue_id):
        status = await conn.execute(
            "UPDATE queues SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL",
            queue_id,
        )
    else:
        status = await conn.execute("DELETE FROM queues WHERE id = $1", queue_id)
    return status.split()[-1] != "0"
