"""The domain-event log: appending (in the caller's transaction) and reading a lead's.

Most events are written by the database itself (`hub_ingest`, and triggers on dialog and
delivery transitions, storage/functions/05_events.sql); the rest come through `append`
from the repository that makes the change, on the same connection, before its commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from storage.database import Conn


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    lead_id: int | None = None
    dialog_id: int | None = None
    interaction_id: int | None = None
    operator_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None  # the transaction's actor (set_actor) when not given

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "lead_id": self.lead_id,
            "dialog_id": self.dialog_id,
            "interaction_id": self.interaction_id,
            "operator_id": self.operator_id,
            "actor": self.actor,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    type: str
    lead_id: int | None
    lead_seq: int | None
    dialog_id: int | None
    interaction_id: int | None
    operator_id: int | None
    actor: str
    data: dict[str, Any]
    occurred_at: datetime


async def append(conn: Conn, events: Sequence[NewEvent]) -> None:
    """Record events in the caller's transaction (outside one, each call is its own)."""
    if events:
        await conn.execute(
            "SELECT hub_append_events(p_events => $1::jsonb)", [e.as_json() for e in events]
        )


async def set_actor(conn: Conn, actor: str) -> None:
    """Who makes the changes of the current transaction (`operator:12`, `api:crm`), for the
    events written by triggers; it ends with the transaction."""
    await conn.execute("SELECT set_config('hub.actor', $1, true)", actor)


def stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(**{c: row[c] for c in StoredEvent.__slots__})


COLUMNS = (
    "id, type, lead_id, lead_seq, dialog_id, interaction_id, operator_id, actor, data, occurred_at"
)


async def of_lead(conn: Conn | asyncpg.Pool, lead_id: int) -> list[StoredEvent]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM domain_events WHERE lead_id = $1 ORDER BY lead_seq", lead_id
    )
    return [stored(r) for r in rows]


async def hand_overs(
    conn: Conn | asyncpg.Pool, lead_id: int, limit: int = 200
) -> list[asyncpg.Record]:
    """The lead's dialogs changing hands (offered, accepted or assigned, transferred,
    queued, closed, reopened), oldest first: the newest `limit`, with queue names."""
    return list(
        reversed(
            await conn.fetch(
                """SELECT e.id, e.type, e.dialog_id, e.operator_id, e.actor, e.data,
                          e.occurred_at,
                          (SELECT q.name FROM queues q
                           WHERE q.id = COALESCE((e.data->>'to_queue_id')::bigint,
                                                 (e.data->>'queue_id')::bigint)) AS queue
                   FROM domain_events e
                   WHERE e.lead_id = $1 AND e.type LIKE 'dialog.%'
                   ORDER BY e.lead_seq DESC LIMIT $2""",
                lead_id,
                limit,
            )
        )
    )
