"""The fact builder: folds new domain events into the report tables, batch by batch.

It runs when something happened (any notice on the bus wakes it, at most every few
seconds) and before every report is answered (`catch_up`), so a report counts every event
committed before it was asked for. Idle, it sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from hub.domain import Notice
from hub.reports.facts import (
    CALL_EVENTS,
    CYCLE_EVENTS,
    Cycle,
    Event,
    Offer,
    apply,
    call_fact,
    new_cycle,
    starts_cycle,
)
from hub.wakeup import sleep_until_woken
from routing.hours import BusinessHours, InvalidHours, parse_hours
from storage import report_facts as store
from storage.database import DATABASE_UNAVAILABLE, Conn, report_unavailable

log = logging.getLogger(__name__)

BATCH = 2000
EVERY_S = 3.0  # the most often a busy hub folds, woken by notices
IDLE_S = 300.0  # the longest it sleeps without one


def _event(row: asyncpg.Record) -> Event:
    return Event(
        id=row["id"],
        type=row["type"],
        lead_id=row["lead_id"],
        dialog_id=row["dialog_id"],
        operator_id=row["operator_id"],
        data=row["data"] or {},
        occurred_at=row["occurred_at"],
    )


def _cycle(row: Mapping[str, Any] | asyncpg.Record) -> Cycle:
    cycle = Cycle(
        **{
            k: row[k]
            for k in [
                "dialog_id",
                "cycle",
                "lead_id",
                "channel_id",
                "started_at",
                "queue_id",
                "held_by",
                "first_assigned_at",
                "first_response_at",
                "first_response_by",
                "first_response_via",
                "closed_at",
                "last_customer_at",
                "last_reply_at",
                "awaiting_since",
                "messages_in",
                "messages_out",
                "offers",
                "transfers",
                "backfilled",
                "id",
            ]
        }
    )
    cycle.next_response_s = list(row["next_response_s"] or ())
    cycle.open_offers = [
        Offer(o["operator_id"], datetime.fromisoformat(o["offered_at"]), id=o["id"], changed=False)
        for o in row["open_offers"] or ()
    ]
    return cycle


class FactBuilder:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    async def on_notice(self, notice: Notice) -> None:
        self._wake.set()

    async def run(self) -> None:
        await self._catch_up_logged()
        while True:
            await sleep_until_woken(self._wake, IDLE_S)
            await asyncio.sleep(EVERY_S)  # let a burst's events gather into one batch
            self._wake.clear()
            await self._catch_up_logged()

    async def _catch_up_logged(self) -> None:
        try:
            await self.catch_up()
        except DATABASE_UNAVAILABLE as error:
            report_unavailable(log, "report facts", error)

    async def catch_up(self) -> int:
        """Fold every final event not yet folded; how many were read."""
        async with self._lock:
            # Read-only first: a report on a quiet hub costs one query, and no commit.
            pending = await store.pending(self.pool)
            if not pending.events and not pending.hours:
                return 0
            total = 0
            while pending.events:
                async with self.pool.acquire() as conn, conn.transaction():
                    read = await self._batch(conn)
                total += read
                if read < BATCH:
                    break
            while pending.hours and await self._backfilled_hours():
                pass
            return total

    async def _batch(self, conn: Conn) -> int:
        cursor = await store.lock_cursor(conn)
        rows = await store.final_events(conn, cursor["txid"], cursor["event_id"], BATCH)
        if not rows:
            return 0
        leads = sorted({r["lead_id"] for r in rows if r["lead_id"] is not None})
        loose = [_event(r) for r in rows if r["lead_id"] is None]
        seqs: dict[int, int] = {}
        ordered: list[Event] = []
        for r in await store.lead_events(conn, leads):
            seqs[r["lead_id"]] = r["lead_seq"]
            ordered.append(_event(r))
        await self._fold(conn, ordered + loose)
        await store.mark_leads(conn, seqs)
        await store.advance(conn, rows[-1]["txid"], rows[-1]["id"])
        return len(rows)

    async def _fold(self, conn: Conn, events: Sequence[Event]) -> None:
        dialogs = {e.dialog_id for e in events if e.type in CYCLE_EVENTS and e.dialog_id}
        current: dict[int, Cycle] = {
            r["dialog_id"]: _cycle(r) for r in await store.last_cycles(conn, dialogs)
        }
        touched: dict[int, Cycle] = {}  # by identity: a dialog's two cycles are two rows
        calls: dict[int, dict[str, Any]] = {}
        presence: list[tuple[int, str, datetime]] = []
        merged: set[int] = set()
        for event in events:
            if event.type in ("lead.merged", "lead.unmerged") and event.lead_id is not None:
                other = event.data.get("merged_id") or event.data.get("restored_id")
                merged |= {event.lead_id, *([int(other)] if other is not None else [])}
                continue
            if event.type == "operator.presence_changed" and event.operator_id is not None:
                presence.append(
                    (event.operator_id, str(event.data.get("status")), event.occurred_at)
                )
                continue
            if event.type in CALL_EVENTS and (fact := call_fact(event)) is not None:
                calls[fact["call_id"]] = fact
            if event.type not in CYCLE_EVENTS or event.dialog_id is None:
                continue
            cycle = current.get(event.dialog_id)
            if starts_cycle(event):
                cycle = current[event.dialog_id] = new_cycle(event, cycle)
            elif cycle is None:
                continue  # a dialog older than the facts that the backfill did not see
            apply(cycle, event)
            touched[id(cycle)] = cycle
        await self._save(conn, list(touched.values()))
        await store.save_calls(conn, list(calls.values()))
        await store.save_presence(conn, presence)
        if merged:
            await store.follow_merges(conn, sorted(merged))

    async def _save(self, conn: Conn, cycles: Sequence[Cycle]) -> None:
        if not cycles:
            return
        hours = await self._hours(conn)
        rows = [_row(c, hours.get(c.queue_id) if c.queue_id else None) for c in cycles]
        ids = await store.save_cycles(conn, rows)
        offers = []
        for c in cycles:
            cycle_id = ids[(c.dialog_id, c.cycle)]
            for o in (*c.ended_offers, *c.open_offers):
                if o.changed:
                    offers.append(
                        {
                            "id": o.id,
                            "cycle_id": cycle_id,
                            "operator_id": o.operator_id,
                            "offered_at": o.offered_at.isoformat(),
                            "outcome": o.outcome,
                            "ended_at": o.ended_at.isoformat() if o.ended_at else None,
                        }
                    )
        await store.save_offers(conn, offers)

    async def _hours(self, conn: Conn) -> dict[int, BusinessHours]:
        found = {}
        for r in await store.queue_hours(conn):
            try:
                found[r["id"]] = parse_hours(r["hours"], r["timezone"] or "UTC")
            except InvalidHours:
                log.warning("queue %d keeps hours the reports cannot read", r["id"])
        return found

    async def _backfilled_hours(self) -> bool:
        """Business seconds of backfilled cycles, a thousand at a time; True while more
        remain."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.hours_due(conn, 1000)
            if not rows:
                return False
            hours = await self._hours(conn)
            await store.save_hours(
                conn,
                [
                    {"id": r["id"]}
                    | _cycle({**dict(r.items()), "open_offers": []}).business_seconds(
                        hours.get(r["queue_id"]) if r["queue_id"] else None
                    )
                    for r in rows
                ],
            )
            return len(rows) == 1000


def _row(cycle: Cycle, hours: BusinessHours | None) -> dict[str, Any]:
    def at(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "dialog_id": cycle.dialog_id,
        "cycle": cycle.cycle,
        "lead_id": cycle.lead_id,
        "channel_id": cycle.channel_id,
        "queue_id": cycle.queue_id,
        "held_by": cycle.held_by,
        "started_at": at(cycle.started_at),
        "first_assigned_at": at(cycle.first_assigned_at),
        "first_response_at": at(cycle.first_response_at),
        "first_response_by": cycle.first_response_by,
        "first_response_via": cycle.first_response_via,
        "closed_at": at(cycle.closed_at),
        "last_customer_at": at(cycle.last_customer_at),
        "last_reply_at": at(cycle.last_reply_at),
        "awaiting_since": at(cycle.awaiting_since),
        "next_response_s": cycle.next_response_s,
        "messages_in": cycle.messages_in,
        "messages_out": cycle.messages_out,
        "offers": cycle.offers,
        "transfers": cycle.transfers,
        **cycle.business_seconds(hours),
    }
