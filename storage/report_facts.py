"""Reading the domain-event log behind the report cursor, and writing the report facts.

The cursor's rules are in storage/migrations/0023_reports.sql: events are taken only below
the oldest running transaction (final: none can appear there later), in (txid, id) order;
a lead's events are then read from its own gapless sequence, from the last one applied.
A batch runs in one transaction that holds the cursor row, so two nodes never fold the same
events twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from storage import events
from storage.database import Conn
from storage.events import StoredEvent

_EVENT_COLUMNS = ", ".join(f"e.{c.strip()}" for c in events.COLUMNS.split(","))


def _plain(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the jsonb codec takes them (times as ISO text)."""
    return [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()} for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Pending:
    events: bool  # final events not folded yet
    hours: bool  # backfilled cycles still without business-hours seconds


# Both read the log from the cursor on, in the order of its index (migration 0031): a few
# pages, however long the log; the row comparison starts the scan right after the cursor,
# within a transaction's events too. Events past the cursor come in transaction order, so
# some are final if and only if the first is.
PENDING = """SELECT COALESCE((SELECT e.txid < txid_snapshot_xmin(txid_current_snapshot())
                                FROM domain_events e
                               WHERE (e.txid, e.id) > ((SELECT txid FROM report_cursor),
                                                       (SELECT event_id FROM report_cursor))
                               ORDER BY e.txid, e.id
                               LIMIT 1), false) AS events,
                    EXISTS (SELECT 1 FROM report_cycles WHERE hours_due) AS hours"""
FINAL_EVENTS = f"""SELECT e.txid, {_EVENT_COLUMNS}
                     FROM domain_events e
                    WHERE (e.txid, e.id) > ($1::bigint, $2::bigint)
                      AND e.txid < txid_snapshot_xmin(txid_current_snapshot())
                    ORDER BY e.txid, e.id
                    LIMIT $3"""


async def pending(db: Conn | asyncpg.Pool) -> Pending:
    """Whether the builder has work, without taking the cursor."""
    row = await db.fetchrow(PENDING)
    assert row is not None
    return Pending(row["events"], row["hours"])


async def lock_cursor(conn: Conn) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT txid, event_id FROM report_cursor FOR UPDATE")
    assert row is not None, "migration 0023 makes the cursor's row"
    return row


async def final_events(
    conn: Conn, txid: Any, event_id: int, limit: int
) -> list[tuple[int, StoredEvent]]:
    """The next final events after the cursor, oldest transaction first, each with its
    transaction's id. One statement, so the horizon and the rows come from the same
    snapshot."""
    rows = await conn.fetch(FINAL_EVENTS, txid, event_id, limit)
    return [(r["txid"], events.stored(r)) for r in rows]


async def advance(conn: Conn, txid: Any, event_id: int) -> None:
    await conn.execute(
        "UPDATE report_cursor SET txid = $1::bigint, event_id = $2, built_at = now()",
        txid,
        event_id,
    )


async def lead_events(conn: Conn, lead_ids: Sequence[int]) -> list[StoredEvent]:
    """Every event of these leads after the last one applied, in each lead's order."""
    rows = await conn.fetch(
        f"""SELECT {_EVENT_COLUMNS}
              FROM unnest($1::bigint[]) AS l(id)
              LEFT JOIN report_leads r ON r.lead_id = l.id
              JOIN domain_events e ON e.lead_id = l.id AND e.lead_seq > COALESCE(r.seq, 0)
             ORDER BY e.lead_id, e.lead_seq""",
        list(lead_ids),
    )
    return [events.stored(r) for r in rows]


async def mark_leads(conn: Conn, seqs: dict[int, int]) -> None:
    if seqs:
        await conn.execute(
            """INSERT INTO report_leads (lead_id, seq)
               SELECT * FROM unnest($1::bigint[], $2::integer[])
               ON CONFLICT (lead_id) DO UPDATE SET seq = EXCLUDED.seq""",
            list(seqs),
            list(seqs.values()),
        )


# What the fold keeps of a cycle (hub/reports/facts.Cycle has each as a field), and the
# business-hours seconds it writes beside them.
CYCLE_FIELDS = (
    "dialog_id",
    "cycle",
    "lead_id",
    "channel_id",
    "queue_id",
    "held_by",
    "started_at",
    "first_assigned_at",
    "first_response_at",
    "first_response_by",
    "first_response_via",
    "closed_at",
    "last_customer_at",
    "last_reply_at",
    "awaiting_since",
    "next_response_s",
    "messages_in",
    "messages_out",
    "offers",
    "transfers",
)
_WRITTEN = ", ".join((*CYCLE_FIELDS, "queue_wait_bh_s", "first_response_bh_s", "resolution_bh_s"))


async def last_cycles(conn: Conn, dialog_ids: Iterable[int]) -> list[asyncpg.Record]:
    """The latest cycle of each dialog, with its offers still open."""
    return await conn.fetch(
        f"""SELECT DISTINCT ON (c.dialog_id) c.id, {", ".join(CYCLE_FIELDS)}, c.backfilled,
                   (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                               'id', o.id, 'operator_id', o.operator_id,
                               'offered_at', o.offered_at) ORDER BY o.id), '[]'::jsonb)
                      FROM report_offers o
                     WHERE o.cycle_id = c.id AND o.outcome IS NULL) AS open_offers
              FROM report_cycles c
             WHERE c.dialog_id = ANY($1::bigint[])
             ORDER BY c.dialog_id, c.cycle DESC""",
        list(dialog_ids),
    )


async def save_cycles(conn: Conn, rows: Sequence[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """Insert or update cycles (by dialog and number) in one statement; their ids."""
    if not rows:
        return {}
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}" for c in _WRITTEN.split(", ") if c not in ("dialog_id", "cycle")
    )
    # A new cycle is its lead's first when the lead has none yet (nor an earlier one in
    # this batch); an update never changes that.
    saved = await conn.fetch(
        f"""INSERT INTO report_cycles ({_WRITTEN}, lead_first, source)
            SELECT {_WRITTEN},
                   row_number() OVER (PARTITION BY r.lead_id ORDER BY r.started_at) = 1
                   AND NOT EXISTS (SELECT 1 FROM report_cycles o WHERE o.lead_id = r.lead_id),
                   (SELECT l.source->>'kind' FROM leads l WHERE l.id = r.lead_id)
              FROM jsonb_populate_recordset(NULL::report_cycles, $1::jsonb) AS r
            ON CONFLICT (dialog_id, cycle) DO UPDATE
               SET {updates}, source = EXCLUDED.source, hours_due = false
            RETURNING id, dialog_id, cycle""",
        _plain(rows),
    )
    ids = [r["id"] for r in saved]
    await _offers_follow(conn, "c.id = ANY($1::bigint[])", ids)
    await conn.execute("DELETE FROM report_responses WHERE cycle_id = ANY($1::bigint[])", ids)
    await conn.execute(
        """INSERT INTO report_responses (cycle_id, n, started_at, lead_id, channel_id,
                                         queue_id, operator_id, seconds, source)
           SELECT c.id, x.n, c.started_at, c.lead_id, c.channel_id, c.queue_id,
                  c.operator_id, x.s, c.source
             FROM report_cycles c, unnest(c.next_response_s) WITH ORDINALITY AS x(s, n)
            WHERE c.id = ANY($1::bigint[])""",
        ids,
    )
    return {(r["dialog_id"], r["cycle"]): r["id"] for r in saved}


async def _offers_follow(conn: Conn, cycles: str, arg: Any) -> None:
    """Offers keep their cycle's channel, queue and first touch (0033): those of the
    cycles `cycles` (a condition on report_cycles c) take them again where they changed."""
    await conn.execute(
        f"""UPDATE report_offers o
               SET channel_id = c.channel_id, queue_id = c.queue_id, source = c.source
              FROM report_cycles c
             WHERE o.cycle_id = c.id AND {cycles}
               AND (o.channel_id, o.queue_id, o.source)
                   IS DISTINCT FROM (c.channel_id, c.queue_id, c.source)""",
        arg,
    )


async def save_offers(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    new = [r for r in rows if r["id"] is None]
    ended = [r for r in rows if r["id"] is not None]
    if new:
        await conn.execute(
            """INSERT INTO report_offers (cycle_id, operator_id, offered_at, outcome, ended_at,
                                         channel_id, queue_id, source)
               SELECT r.cycle_id, r.operator_id, r.offered_at, r.outcome, r.ended_at,
                      c.channel_id, c.queue_id, c.source
                 FROM jsonb_populate_recordset(NULL::report_offers, $1::jsonb) AS r
                 JOIN report_cycles c ON c.id = r.cycle_id""",
            _plain(new),
        )
    if ended:
        await conn.execute(
            """UPDATE report_offers o SET outcome = r.outcome, ended_at = r.ended_at
                 FROM jsonb_populate_recordset(NULL::report_offers, $1::jsonb) AS r
                WHERE o.id = r.id""",
            _plain(ended),
        )


async def save_calls(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """One row a call, as its latest event tells it; its channel and number are the call's
    own (they never change)."""
    if rows:
        await conn.execute(
            """INSERT INTO report_calls (call_id, channel_id, lead_id, dialog_id, direction,
                                         customer_phone, operator_id, status, started_at,
                                         answered_at, ended_at, talk_s, source)
               SELECT r.call_id, c.channel_id, r.lead_id, r.dialog_id, r.direction,
                      c.customer_phone, r.operator_id, r.status, r.started_at, r.answered_at,
                      r.ended_at, r.talk_s, l.source->>'kind'
                 FROM jsonb_populate_recordset(NULL::report_calls, $1::jsonb) AS r
                 JOIN calls c ON c.id = r.call_id
                 LEFT JOIN leads l ON l.id = r.lead_id
               ON CONFLICT (call_id) DO UPDATE
                  SET lead_id = EXCLUDED.lead_id, dialog_id = EXCLUDED.dialog_id,
                      source = EXCLUDED.source,
                      direction = EXCLUDED.direction, operator_id = EXCLUDED.operator_id,
                      status = EXCLUDED.status, started_at = EXCLUDED.started_at,
                      answered_at = EXCLUDED.answered_at, ended_at = EXCLUDED.ended_at,
                      talk_s = EXCLUDED.talk_s""",
            _plain(rows),
        )


async def save_presence(conn: Conn, changes: Sequence[tuple[int, str, Any]]) -> None:
    """Presence changes in order: each ends the operator's open stretch and, unless they
    went offline, opens the next."""
    for operator_id, status, at in changes:
        await conn.execute(
            """UPDATE report_presence SET ended_at = greatest($2, started_at)
                WHERE operator_id = $1 AND ended_at IS NULL""",
            operator_id,
            at,
        )
        if status in ("online", "away"):
            await conn.execute(
                """INSERT INTO report_presence (operator_id, status, started_at)
                   VALUES ($1, $2, $3)""",
                operator_id,
                status,
                at,
            )


async def follow_merges(conn: Conn, lead_ids: Sequence[int]) -> None:
    """A merge moves dialogs (and their calls) to the surviving lead, an unmerge moves them
    back: the facts follow the dialogs, so a report by source or an export by lead names
    the lead the conversation belongs to now, and counts it under that lead's first touch
    (which a merge may replace by the merged lead's earlier one)."""
    # With the lead, the first touch kept with the facts (0032): the lead's now, which a
    # merge may have replaced by the merged lead's earlier one and its undoing restored.
    await conn.execute(
        """UPDATE report_cycles c SET lead_id = d.lead_id, source = l.source->>'kind'
             FROM dialogs d LEFT JOIN leads l ON l.id = d.lead_id
            WHERE d.id = c.dialog_id
              AND (c.lead_id, c.source) IS DISTINCT FROM (d.lead_id, l.source->>'kind')
              AND (c.lead_id = ANY($1::bigint[]) OR d.lead_id = ANY($1::bigint[]))""",
        list(lead_ids),
    )
    await _offers_follow(conn, "c.lead_id = ANY($1::bigint[])", list(lead_ids))
    await conn.execute(
        """UPDATE report_responses r SET lead_id = c.lead_id, source = c.source
             FROM report_cycles c
            WHERE c.id = r.cycle_id AND (r.lead_id, r.source) IS DISTINCT FROM (c.lead_id, c.source)
              AND c.lead_id = ANY($1::bigint[])""",
        list(lead_ids),
    )
    # Each lead's first cycle, again: a merge may bring an earlier one, an unmerge take it.
    await conn.execute(
        """UPDATE report_cycles c SET lead_first = (c.id = f.id)
             FROM (SELECT DISTINCT ON (lead_id) lead_id, id FROM report_cycles
                    WHERE lead_id = ANY($1::bigint[]) ORDER BY lead_id, started_at, id) f
            WHERE c.lead_id = f.lead_id AND c.lead_first IS DISTINCT FROM (c.id = f.id)""",
        list(lead_ids),
    )
    await conn.execute(
        """UPDATE report_calls k SET lead_id = d.lead_id
             FROM dialogs d
            WHERE d.id = k.dialog_id AND k.lead_id IS DISTINCT FROM d.lead_id
              AND (k.lead_id = ANY($1::bigint[]) OR d.lead_id = ANY($1::bigint[]))""",
        list(lead_ids),
    )
    await conn.execute(
        """UPDATE report_calls k SET source = l.source->>'kind'
             FROM leads l
            WHERE l.id = k.lead_id AND k.lead_id = ANY($1::bigint[])
              AND k.source IS DISTINCT FROM l.source->>'kind'""",
        list(lead_ids),
    )


async def hours_due(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Backfilled cycles whose business-hours seconds are still to be counted."""
    return await conn.fetch(
        """SELECT id, queue_id, started_at, first_assigned_at, first_response_at, closed_at
             FROM report_cycles WHERE hours_due ORDER BY id LIMIT $1""",
        limit,
    )


async def save_hours(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    await conn.execute(
        """UPDATE report_cycles c
              SET queue_wait_bh_s = r.queue_wait_bh_s,
                  first_response_bh_s = r.first_response_bh_s,
                  resolution_bh_s = r.resolution_bh_s, hours_due = false
             FROM jsonb_populate_recordset(NULL::report_cycles, $1::jsonb) AS r
            WHERE c.id = r.id""",
        _plain(rows),
    )


async def queue_hours(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, hours, timezone FROM queues WHERE hours IS NOT NULL")
