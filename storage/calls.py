"""Calls, their dialogs and callback tasks in SQL (the merging rules are `hub/calls.py`'s).

Every function runs in the caller's transaction, which holds the call's advisory lock (and
the customer's phone key, as the message ingest takes it), so two events of one call, or a
call and a message from the same new customer, never interleave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from storage.database import Conn
from storage.events import NewEvent


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a call's events have told so far; each event adds to it, in any order."""

    direction: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    customer_phone: str | None = None
    outcome: str | None = None
    cause: str | None = None
    rang: tuple[str, ...] = ()
    extension: str | None = None
    operator_id: int | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    recording_ref: str | None = None


@dataclass(frozen=True, slots=True)
class DialogState:
    id: int
    created: bool
    status: str
    operator_id: int | None
    offered_to: tuple[int, ...]
    routable: bool


@dataclass(frozen=True, slots=True)
class CallRow:
    id: int
    channel_id: int
    provider_call_id: str
    facts: CallFacts
    status: str
    dialog_id: int | None
    interaction_id: int | None
    lead_id: int | None
    applied: tuple[str, ...]
    popped: tuple[int, ...]
    blocked: bool = False  # the lead's flag
    dialog: DialogState | None = None  # the call's dialog as it stands


def facts_of(r: asyncpg.Record) -> CallFacts:
    """A `calls` row's facts."""
    return CallFacts(
        direction=r["direction"],
        from_number=r["from_number"],
        to_number=r["to_number"],
        customer_phone=r["customer_phone"],
        outcome=r["outcome"],
        cause=r["cause"],
        rang=tuple(r["rang"]),
        extension=r["extension"],
        operator_id=r["operator_id"],
        started_at=r["started_at"],
        answered_at=r["answered_at"],
        ended_at=r["ended_at"],
        duration_s=r["duration_s"],
        recording_ref=r["recording_ref"],
    )


def _row(r: asyncpg.Record) -> CallRow:
    return CallRow(
        id=r["id"],
        channel_id=r["channel_id"],
        provider_call_id=r["provider_call_id"],
        facts=facts_of(r),
        status=r["status"],
        dialog_id=r["dialog_id"],
        interaction_id=r["interaction_id"],
        lead_id=r["lead_id"],
        applied=tuple(r["applied"]),
        popped=tuple(r["popped"]),
        blocked=bool(r["blocked"]),
        dialog=DialogState(
            r["dialog_id"],
            False,
            r["d_status"],
            r["d_operator"],
            tuple(r["d_offered"]),
            r["d_routable"],
        )
        if r["d_status"] is not None
        else None,
    )


async def lock_call(
    conn: Conn, channel_id: int, provider_call_id: str, keys: Sequence[int]
) -> CallRow:
    """The call's row, made by its first event whichever that is, locked to the end of the
    transaction after the advisory locks `keys` (sorted: every caller locks in one order),
    with its lead's flag and its dialog's state: one round trip. The dialog is read, not
    locked: every change to it is a conditional UPDATE."""
    record = await conn.fetchrow(
        """WITH locked AS (
               -- An aggregate: every lock is taken before the row below is made.
               SELECT count(pg_advisory_xact_lock(k)) AS n FROM unnest($3::bigint[]) AS k),
           made AS (
               INSERT INTO calls (channel_id, provider_call_id) SELECT $1, $2 FROM locked
               ON CONFLICT (channel_id, provider_call_id) DO UPDATE SET updated_at = now()
               RETURNING *)
           SELECT made.*, i.lead_id, COALESCE(l.blocked, false) AS blocked,
                  d.status AS d_status, d.operator_id AS d_operator, d.offered_to AS d_offered,
                  d.routable AS d_routable
           FROM made LEFT JOIN interactions i ON i.id = made.interaction_id
                LEFT JOIN leads l ON l.id = i.lead_id
                LEFT JOIN dialogs d ON d.id = made.dialog_id""",
        channel_id,
        provider_call_id,
        list(keys),
    )
    assert record is not None
    return _row(record)


async def save(
    conn: Conn,
    call_id: int,
    facts: CallFacts,
    status: str,
    *,
    applied: str,
    popped: Sequence[int],
    dialog_id: int | None,
    interaction_id: int | None,
    shown: dict[str, Any] | None,
    new_events: Sequence[NewEvent],
    lead_id: int | None,
) -> list[int]:
    """The call's new facts, how its interaction shows them (`shown`) and the events of
    the change, in one statement; returns who holds a dialog of the lead (they are told)."""
    holders = await conn.fetchval(
        """WITH shown AS (
               UPDATE interactions SET call = $21 WHERE id = $20 AND $21::jsonb IS NOT NULL),
           saved AS (
               UPDATE calls SET direction = $2, from_number = $3, to_number = $4,
                      customer_phone = $5, outcome = $6, cause = $7, rang = $8, extension = $9,
                      operator_id = $10, started_at = $11, answered_at = $12, ended_at = $13,
                      duration_s = $14, recording_ref = $15, status = $16,
                      applied = array_append(applied, $17), popped = $18,
                      dialog_id = $19, interaction_id = $20, updated_at = now()
               WHERE id = $1)
           SELECT array(SELECT DISTINCT d.operator_id FROM dialogs d
                        WHERE d.lead_id = $23 AND d.status = 'assigned'
                          AND d.operator_id IS NOT NULL)
           FROM (SELECT hub_append_events(p_events => $22::jsonb)) AS appended""",
        call_id,
        facts.direction,
        facts.from_number,
        facts.to_number,
        facts.customer_phone,
        facts.outcome,
        facts.cause,
        list(facts.rang),
        facts.extension,
        facts.operator_id,
        facts.started_at,
        facts.answered_at,
        facts.ended_at,
        facts.duration_s,
        facts.recording_ref,
        status,
        applied,
        list(popped),
        dialog_id,
        interaction_id,
        shown,
        [e.as_json() for e in new_events],
        lead_id,
    )
    return list(holders)


async def extensions(conn: Conn | asyncpg.Pool) -> dict[str, int]:
    """Operator ids by the names a PBX gives them: logins, then extensions over them."""
    rows = await conn.fetch("SELECT id, login, extension FROM operators")
    named = {r["login"]: r["id"] for r in rows}
    named.update({r["extension"]: r["id"] for r in rows if r["extension"]})
    return named


async def lead_for_phone(
    conn: Conn,
    phone: str,
    extension: str | None,
    name: str | None = None,
    source: dict[str, Any] | None = None,
) -> tuple[int, bool, bool]:
    """(lead, created, blocked): the lead with this number, or a new one (whose
    `lead.created` is the caller's to record) that came from `source`."""
    found = await conn.fetchrow(
        "SELECT id, blocked FROM leads"
        " WHERE id = hub_identify(NULL, NULL, ARRAY[$1]::text[], '{}'::text[])",
        phone,
    )
    if found is not None:
        return int(found["id"]), False, bool(found["blocked"])
    lead_id = await conn.fetchval(
        """WITH made AS (INSERT INTO leads (name, source)
                         VALUES ($1, $4::jsonb || jsonb_build_object('at', now()))
                         RETURNING id)
           SELECT id, hub_learn(p_lead => id, p_name => NULL, p_phones => ARRAY[$2]::text[],
                                p_exts => ARRAY[$3]::text[], p_emails => '{}'::text[],
                                p_identity_kind => NULL, p_identity_id => NULL,
                                p_new_lead => true)
           FROM made""",
        name,
        phone,
        extension or "",
        source or {"kind": "call"},
    )
    return int(lead_id), True, False


async def open_dialog(conn: Conn, lead_id: int, channel_id: int, peer: str) -> DialogState:
    """The lead's open dialog on the channel, or a new one that waits outside the hub's
    queues while the call rings (the PBX routes calls)."""
    r = await conn.fetchrow(
        """INSERT INTO dialogs (lead_id, channel_id, peer, thread_key, routable)
           VALUES ($1, $2, $3, '', false)
           ON CONFLICT (lead_id, channel_id, thread_key) WHERE status <> 'closed'
           DO UPDATE SET updated_at = now(), peer = COALESCE(dialogs.peer, EXCLUDED.peer)
           RETURNING id, (xmax = 0) AS created, status, operator_id, offered_to, routable""",
        lead_id,
        channel_id,
        peer,
    )
    assert r is not None
    return DialogState(
        r["id"], r["created"], r["status"], r["operator_id"], tuple(r["offered_to"]), r["routable"]
    )


async def add_interaction(
    conn: Conn,
    *,
    lead_id: int,
    dialog_id: int,
    channel_id: int,
    direction: str,
    occurred_at: datetime,
    external_id: str,
    call: dict[str, Any],
) -> int:
    interaction_id = await conn.fetchval(
        """INSERT INTO interactions (lead_id, dialog_id, channel_id, kind, direction,
                                     occurred_at, external_id, call)
           VALUES ($1, $2, $3, 'call', $4, $5, $6, $7) RETURNING id""",
        lead_id,
        dialog_id,
        channel_id,
        direction,
        occurred_at,
        external_id,
        call,
    )
    return int(interaction_id)


async def assign(conn: Conn, dialog_id: int, operator_id: int) -> tuple[int, ...] | None:
    """A waiting (or offered) dialog becomes the operator's who took its call; the operators
    it was offered to, or None when someone holds it already or it is closed."""
    r = await conn.fetchrow(
        """UPDATE dialogs d SET status = 'assigned', operator_id = $2, assigned_at = now(),
                  last_operator_id = $2, offered_to = '{}', offer_expires_at = NULL,
                  routable = false, updated_at = now()
           FROM (SELECT id, offered_to FROM dialogs WHERE id = $1 FOR UPDATE) old
           WHERE d.id = old.id AND d.status IN ('queued', 'offered')
           RETURNING old.offered_to""",
        dialog_id,
        operator_id,
    )
    return tuple(r["offered_to"]) if r is not None else None


async def close_waiting(conn: Conn, dialog_id: int) -> tuple[int, ...] | None:
    """Close a dialog nobody holds (its call was taken outside the hub, or its callback
    was done by someone else); the operators it was offered to, None if held or closed."""
    r = await conn.fetchrow(
        """UPDATE dialogs d SET status = 'closed', closed_at = now(), updated_at = now(),
                  offered_to = '{}', offer_expires_at = NULL, routable = false
           FROM (SELECT id, offered_to FROM dialogs WHERE id = $1 FOR UPDATE) old
           WHERE d.id = old.id AND d.status IN ('queued', 'offered')
           RETURNING old.offered_to""",
        dialog_id,
    )
    return tuple(r["offered_to"]) if r is not None else None


async def first_response(conn: Conn, dialog_id: int, at: datetime) -> None:
    """An answered call is the dialog's human response, at its answer time."""
    await conn.execute(
        "UPDATE dialogs SET first_response_at = LEAST(COALESCE(first_response_at, $2), $2)"
        " WHERE id = $1",
        dialog_id,
        at,
    )


async def open_callback(conn: Conn, call_id: int, dialog_id: int, phone: str) -> bool:
    """The callback task of a missed call; its dialog joins the hub's queues if it waited
    outside them. True when the dialog is now to be routed."""
    await conn.execute(
        """INSERT INTO callbacks (call_id, dialog_id, phone) VALUES ($1, $2, $3)
           ON CONFLICT (call_id) DO NOTHING""",
        call_id,
        dialog_id,
        phone,
    )
    routed = await conn.fetchval(
        """UPDATE dialogs SET routable = true, updated_at = now()
           WHERE id = $1 AND status = 'queued' AND NOT routable RETURNING id""",
        dialog_id,
    )
    return routed is not None


async def close_callbacks(
    conn: Conn, phone: str, by_call: int, before: datetime
) -> list[tuple[int, int, int]]:
    """Open callbacks for the number from calls before `before`, closed by an answered
    call: (callback id, its dialog, its missed call)."""
    rows = await conn.fetch(
        """UPDATE callbacks b SET closed_at = now(), closed_by_call = $2
           FROM calls c
           WHERE b.phone = $1 AND b.closed_at IS NULL AND c.id = b.call_id AND c.id <> $2
             AND COALESCE(c.started_at, c.created_at) <= $3
           RETURNING b.id, b.dialog_id, b.call_id""",
        phone,
        by_call,
        before,
    )
    return [(r["id"], r["dialog_id"], r["call_id"]) for r in rows]


async def add_recording(
    conn: Conn, interaction_id: int, name: str, ref: str, delay_s: float
) -> None:
    """The call's recording, to be fetched by the media fetcher once the PBX has it."""
    await conn.execute(
        """INSERT INTO attachments (interaction_id, name, content_type, size, storage_path,
                                    state, remote_ref, next_attempt_at)
           SELECT $1, $2, 'audio/mpeg', 0, '', 'pending', $3,
                  now() + make_interval(secs => $4)
           WHERE NOT EXISTS (SELECT 1 FROM attachments WHERE interaction_id = $1
                             AND remote_ref = $3)""",
        interaction_id,
        name,
        ref,
        delay_s,
    )


async def callbacks_of_dialogs(
    conn: Conn | asyncpg.Pool, dialog_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The open callback task of each dialog that has one: the missed call it is for."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (b.dialog_id) b.dialog_id, b.id, b.phone, b.created_at,
                  c.id AS call_id, c.started_at
           FROM callbacks b JOIN calls c ON c.id = b.call_id
           WHERE b.dialog_id = ANY($1::bigint[]) AND b.closed_at IS NULL
           ORDER BY b.dialog_id, b.id DESC""",
        list(dialog_ids),
    )
    return {
        r["dialog_id"]: {
            "id": r["id"],
            "call_id": r["call_id"],
            "phone": r["phone"],
            "missed_at": (r["started_at"] or r["created_at"]).isoformat(),
        }
        for r in rows
    }


async def list_calls(
    conn: Conn | asyncpg.Pool,
    *,
    before_id: int | None,
    limit: int,
    status: str | None = None,
    lead_id: int | None = None,
    operator_id: int | None = None,
) -> list[asyncpg.Record]:
    """Calls newest first, those without a lead included; with `operator_id`, only those
    the operator answered or was shown."""
    return await conn.fetch(
        """SELECT c.*, i.lead_id, ch.name AS channel_name FROM calls c
            JOIN channels ch ON ch.id = c.channel_id
            LEFT JOIN interactions i ON i.id = c.interaction_id
            WHERE ($1::bigint IS NULL OR c.id < $1) AND ($3::text IS NULL OR c.status = $3)
              AND ($4::bigint IS NULL OR i.lead_id = $4)
              AND ($5::bigint IS NULL OR c.operator_id = $5 OR $5 = ANY(c.popped))
              AND cardinality(c.applied) > 0
            ORDER BY c.id DESC LIMIT $2""",
        before_id,
        limit,
        status,
        lead_id,
        operator_id,
    )
