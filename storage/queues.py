"""Routing queues."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from storage.database import Conn


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


async def list_all(conn: Conn | asyncpg.Pool) -> list[QueueRow]:
    return [_queue(r) for r in await conn.fetch("SELECT * FROM queues ORDER BY id")]


async def remember_choice(conn: Conn, queue_id: int, operator_id: int) -> None:
    await conn.execute(
        "UPDATE queues SET last_operator_id = $2 WHERE id = $1", queue_id, operator_id
    )


async def lock_last_choice(conn: Conn, queue_id: int) -> int | None:
    """The queue's previous round-robin choice, locked until the caller commits its next."""
    value = await conn.fetchval(
        "SELECT last_operator_id FROM queues WHERE id = $1 FOR UPDATE", queue_id
    )
    return int(value) if value is not None else None
