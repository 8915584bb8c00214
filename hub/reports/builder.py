"""The fact builder: folds new domain events into the report tables, batch by batch.

It runs when something happened (any notice on the bus wakes it, at most twice a
second) and before every report is answered (`catch_up`), so a report counts every event
committed before it was asked for. Idle, it sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from hub.domain import Notice
from hub.reports.facts import (
    CALL_EVENTS,
    CYCLE_EVENTS,
    Cycle,
    Offer,
    apply,
    business_seconds,
    call_fact,
    new_cycle,
    starts_cycle,
)
from hub.wakeup import sleep_until_woken
from routing.hours import BusinessHours, InvalidHours, parse_hours
from storage import report_facts as store
from storage.database import DATABASE_UNAVAILABLE, Conn, report_unavailable
from storage.events import StoredEvent

log = logging.getLogger(__name__)

BATCH = 2000
# The most often a busy hub folds, woken by notices. Often and small: a fold is work for
# the database that live traffic waits behind. Folding a busy hub's 3 s of events at once
# (some 1,200 at 50 calls a second) took 100-190 ms of it, and the calls arriving meanwhile
# waited: screen-pop p99 36-213 ms in bench/calls.py, against 15-45 ms folding every 0.5 s
# (alternating runs on one machine).
EVERY_S = 0.5
IDLE_S = 300.0  # the longest it sleeps without one


def _cycle(row: asyncpg.Record) -> Cycle:
    cycle = Cycle(**{f: row[f] for f in ("id", *store.CYCLE_FIELDS, "backfilled")})
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
            hours = await self._hours()
            total, read = 0, BATCH if pending.events else 0
            while read == BATCH:  # a short batch was the last
                async with self.pool.acquire() as conn, conn.transaction():
                    read = await self._batch(conn, hours)
                total += read
            more = pending.hours
            while more:
                more = await self._backfilled_hours(hours)
            return total

    async def _batch(self, conn: Conn, hours: dict[int, BusinessHours]) -> int:
        cursor = await store.lock_cursor(conn)
        rows = await store.final_events(conn, cursor["txid"], cursor["event_id"], BATCH)
        if not rows:
            return 0
        leads = sorted({e.lead_id for _, e in rows if e.lead_id is not None})
        loose = [e for _, e in rows if e.lead_id is None]
        ordered = await store.lead_events(conn, leads)
        seqs = {e.lead_id: e.lead_seq for e in ordered if e.lead_id and e.lead_seq}
        await self._fold(conn, ordered + loose, hours)
        await store.mark_leads(conn, seqs)
        await store.advance(conn, rows[-1][0], rows[-1][1].id)
        return len(rows)

    async def _fold(
        self, conn: Conn, events: Sequence[StoredEvent], hours: dict[int, BusinessHours]
    ) -> None:
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
        await _save(conn, list(touched.values()), hours)
        await store.save_calls(conn, list(calls.values()))
        await store.save_presence(conn, presence)
        if merged:
            await store.follow_merges(conn, sorted(merged))

    async def _hours(self) -> dict[int, BusinessHours]:
        """Each queue's business hours, read once a catch-up."""
        found = {}
        for r in await store.queue_hours(self.pool):
            try:
                found[r["id"]] = parse_hours(r["hours"], r["timezone"] or "UTC")
            except InvalidHours:
                log.warning("queue %d keeps hours the reports cannot read", r["id"])
        return found

    async def _backfilled_hours(self, hours: dict[int, BusinessHours]) -> bool:
        """Business seconds of backfilled cycles, a thousand at a time; True while more
        remain."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.hours_due(conn, 1000)
            await store.save_hours(
                conn,
                [
                    {"id": r["id"]}
                    | business_seconds(
                        hours.get(r["queue_id"]) if r["queue_id"] else None,
                        r["started_at"],
                        r["first_assigned_at"],
                        r["first_response_at"],
                        r["closed_at"],
                    )
                    for r in rows
                ],
            )
            return len(rows) == 1000


async def _save(conn: Conn, cycles: Sequence[Cycle], hours: dict[int, BusinessHours]) -> None:
    if not cycles:
        return
    ids = await store.save_cycles(
        conn,
        [
            {f: getattr(c, f) for f in store.CYCLE_FIELDS}
            | c.business_seconds(hours.get(c.queue_id) if c.queue_id else None)
            for c in cycles
        ],
    )
    await store.save_offers(
        conn,
        [
            {
                "id": o.id,
                "cycle_id": ids[(c.dialog_id, c.cycle)],
                "operator_id": o.operator_id,
                "offered_at": o.offered_at,
                "outcome": o.outcome,
                "ended_at": o.ended_at,
            }
            for c in cycles
            for o in (*c.ended_offers, *c.open_offers)
            if o.changed
        ],
    )
