"""The router: offers waiting dialogs to operators, by each queue's rules.

A dialog goes to the queue it was transferred to, else the queue naming its channel, else
the default queue (one naming no channel; without any queue, a built-in least-busy queue
over every operator). The operators of a queue are those online, having all its skills,
with room under their `max_dialogs`. An offer expires after the queue's timeout, or is
declined, and goes to the next operator; with nobody able to take it, or outside the
queue's hours, the dialog waits in FIFO order and the customer gets the queue's
auto-reply once. Operators coming online or freeing capacity get waiting dialogs oldest
first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from hub.domain import Notice
from hub.errors import HubError
from hub.wakeup import sleep_until_woken
from routing.hours import InvalidHours, parse_hours
from routing.strategies import order
from storage import queues as queue_store
from storage import routing as store
from storage.database import DATABASE_UNAVAILABLE, Conn, report_unavailable
from storage.events import set_actor
from storage.queues import QueueRow
from storage.routing import Candidate, Handover

log = logging.getLogger(__name__)

Publish = Callable[[Notice], Awaitable[None]]
AutoReply = Callable[[int, str], Awaitable[None]]

DEFAULT_QUEUE = QueueRow(
    id=0,
    name="default",
    strategy="least_busy",
    offer_timeout_s=30,
    channels=(),
    skills=(),
    hours=None,
    timezone="UTC",
    auto_reply=None,
    last_operator_id=None,
)


class RoutingError(HubError):
    """A routing request that cannot be done (an offer gone, a dialog closed)."""


CONTENDED_RETRY_S = 0.05
# Routes running at once on one node share one reading of the candidates for at most this
# long (each offer made from it counted in at once); a route on its own reads afresh.
SHARED_CANDIDATES_S = 0.25
# New dialogs routed at once by one node (each holds a pooled connection while it routes).
ARRIVALS_AT_ONCE = 16


# An operator's routing lock is this plus their id: the "op" namespace of advisory locks,
# apart from contact-key hashes.
OPERATOR_LOCKS = 0x6F70_0000_0000


def _operator_lock(operator_id: int) -> int:
    return OPERATOR_LOCKS + operator_id


class Router:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Publish,
        auto_reply: AutoReply | None = None,
        *,
        tick: float = 1.0,
    ) -> None:
        self.pool = pool
        self.publish = publish
        self.auto_reply = auto_reply
        self.tick = tick
        self._queues: list[QueueRow] = []
        self._queues_read = 0.0
        self._online = 0
        self._wake = asyncio.Event()
        self._arrivals: set[asyncio.Task[None]] = set()
        self._arrival_slots = asyncio.Semaphore(ARRIVALS_AT_ONCE)
        # Dialogs that found every candidate busy with another router's offer: tried again
        # on a pass shortly after, not at the next tick.
        self._contended: set[int] = set()
        # A full pass (expire offers, offer waiting dialogs, find the next expiry) runs when
        # asked for by wake(), when an offer is due to expire, and every tick; a wake-up for
        # new arrivals alone routes just those, so a busy ingest costs the loop nothing more.
        self._full_pass = True
        self._next_full_at = 0.0
        # Candidates by skills, read by a route while others ran: (read at, by operator id).
        # Only a ranking: whoever is tried is read again under their lock by hub_offer.
        self._shared: dict[tuple[str, ...], tuple[float, dict[int, Candidate]]] = {}
        self._routing = 0  # routes in flight on this node

    # -- queues -----------------------------------------------------------------------

    async def queues(self) -> list[QueueRow]:
        if time.monotonic() - self._queues_read > 5.0:
            self._queues = await queue_store.list_all(self.pool)
            self._queues_read = time.monotonic()
        return self._queues

    def forget_queues(self) -> None:
        self._queues_read = 0.0

    def queue_for(self, queue_id: int | None, channel: str, queues: list[QueueRow]) -> QueueRow:
        if queue_id is not None:
            for q in queues:
                if q.id == queue_id:
                    return q
        for q in queues:
            if channel in q.channels:
                return q
        for q in queues:
            if not q.channels:
                return q
        return DEFAULT_QUEUE

    @staticmethod
    def is_open(queue: QueueRow, now: datetime | None = None) -> bool:
        if not queue.hours:
            return True
        try:
            return parse_hours(queue.hours, queue.timezone).is_open(now or datetime.now(UTC))
        except InvalidHours:
            log.error(
                "queue %s has unreadable hours %r; treating it as open", queue.name, queue.hours
            )
            return True

    # -- offering -----------------------------------------------------------------------

    async def route(self, dialog_id: int) -> list[int]:
        """Offer one waiting dialog; the operators it was offered to (none: it waits)."""
        queues = await self.queues()
        self._routing += 1
        try:
            return await self._route(dialog_id, queues)
        finally:
            self._routing -= 1
            if not self._routing:
                self._shared.clear()

    async def _route(self, dialog_id: int, queues: list[QueueRow]) -> list[int]:
        waiting_reply: str | None = None
        async with self.pool.acquire() as conn:
            dialog = await store.queued(conn, dialog_id)
            if dialog is None:
                return []  # not waiting any more
            queue = self.queue_for(dialog["queue_id"], dialog["channel_name"], queues)
            ranked = await self._rank(conn, dialog, queue) if self.is_open(queue) else []
            # Offered in one statement, which locks the dialog and each operator tried in
            # turn (the candidates above were read without a lock: whoever is tried is read
            # again under their own).
            offered = await store.offer(
                conn,
                dialog_id,
                ranked,
                to_all=queue.strategy == "all",
                timeout_s=queue.offer_timeout_s,
                queue_id=queue.id or None,
                round_robin=queue.strategy == "round_robin" and bool(queue.id),
                lock_base=OPERATOR_LOCKS,
            )
            if offered.result == "gone":
                return []  # offered meanwhile, or another router holds it
            if offered.contended and not offered.chosen:
                self._contended.add(dialog_id)
                asyncio.get_running_loop().call_later(CONTENDED_RETRY_S, self._wake.set)
            if (
                not offered.chosen
                and queue.auto_reply
                and await store.mark_auto_replied(conn, dialog_id)
            ):
                waiting_reply = queue.auto_reply
        chosen = offered.chosen
        if len(chosen) == 1:  # an offer to several at once is nobody's load yet
            self._count_in(queue.skills, chosen[0])
        if chosen:
            # This offer's expiry is due no later than its timeout from now.
            self._next_full_at = min(self._next_full_at, time.monotonic() + queue.offer_timeout_s)
            log.debug("dialog %s offered to operators %s (queue %s)", dialog_id, chosen, queue.name)
            await self.publish(
                Notice("offered", dialog_id, tuple(chosen), {"expires_in_s": queue.offer_timeout_s})
            )
            await self.publish(Notice("state", dialog_id))
        if waiting_reply and self.auto_reply is not None:
            try:
                await self.auto_reply(dialog_id, waiting_reply)
            except Exception:
                log.exception("auto-reply to dialog %s failed", dialog_id)
        return chosen

    async def _rank(self, conn: Conn, dialog: asyncpg.Record, queue: QueueRow) -> list[int]:
        """Who could take the dialog, in the order the queue's strategy offers to them."""
        declined = list(dialog["declined_by"])
        # Who gave it away to this queue is not offered it back while it waits here.
        gave_away = [dialog["transferred_from"]] if dialog["transferred_from"] else []
        everyone = await self._candidates(conn, queue.skills)
        passed = {*declined, *gave_away}
        candidates = [c for c in everyone if c.operator_id not in passed]
        if not candidates and declined:
            # Everyone able to take it has passed once: offer it round again.
            await store.reset_declines(conn, dialog["id"])
            candidates = [c for c in everyone if c.operator_id not in gave_away]
        previous = (
            await store.previous_operator(conn, dialog["lead_id"])
            if queue.strategy == "sticky"
            else None
        )
        # A round-robin turn is taken again under the queue's lock when the offer is made.
        ranked = order(
            queue.strategy,
            candidates,
            last_operator_id=queue.last_operator_id,
            previous_operator_id=previous,
        )
        return [c.operator_id for c in ranked]

    async def _candidates(self, conn: Conn, skills: tuple[str, ...]) -> list[Candidate]:
        """Every online operator with the skills, with their load. Routes running together
        share one reading (a burst of arrivals reads once, not once each), which counts the
        offers they make from it; a route running alone, as after any lull, reads afresh."""
        key = tuple(skills)
        now = time.monotonic()
        shared = self._shared.get(key)
        if shared is None or self._routing < 2 or now - shared[0] > SHARED_CANDIDATES_S:
            read = await store.candidates(conn, skills, [])
            shared = (now, {c.operator_id: c for c in read})
            self._shared[key] = shared
        return list(shared[1].values())

    def _count_in(self, skills: tuple[str, ...], operator_id: int) -> None:
        """An offer just made to one operator, in the shared reading it was ranked from."""
        shared = self._shared.get(tuple(skills))
        found = shared[1].get(operator_id) if shared is not None else None
        if shared is not None and found is not None:
            shared[1][operator_id] = found._replace(load=found.load + 1)

    async def count_online(self) -> int:
        self._online = await store.online_count(self.pool)
        return self._online

    async def on_notice(self, notice: Notice) -> None:
        """An operator's presence changed on any node (the bus carries it): count again, and
        offer what waits. Without it a node whose own operators all left kept its new
        dialogs waiting for its next full pass while operators on another node were free."""
        if notice.kind == "presence" and notice.data.get("presence") == "online":
            try:
                await self.count_online()
            except DATABASE_UNAVAILABLE as exc:
                report_unavailable(log, "router (presence)", exc)
                return
            self.wake()

    async def route_waiting(self, limit: int = 200) -> int:
        """Offer waiting dialogs oldest first; how many got an offer. A queue that had
        nobody for one dialog is not asked again for the younger ones in this pass."""
        if not await self.count_online():
            return 0
        queues = await self.queues()
        exhausted: set[int] = set()
        offered = 0
        for dialog_id, queue_id, channel in await store.waiting(self.pool, limit):
            queue = self.queue_for(queue_id, channel, queues).id
            if queue in exhausted:
                continue
            if await self.route(dialog_id):
                offered += 1
            else:
                exhausted.add(queue)
        return offered

    # -- the operator's answers -----------------------------------------------------------

    async def accept(self, operator_id: int, dialog_id: int) -> None:
        # One statement under the operator's lock (what every offer to them takes), so an
        # accept and an offer to the same operator never both count on the same room.
        result, offered = await store.accept(
            self.pool,
            dialog_id,
            operator_id,
            _operator_lock(operator_id),
            f"operator:{operator_id}",
        )
        if result == "offer_gone":
            raise RoutingError("offer_gone", "this dialog is no longer offered to you")
        if result == "at_capacity":
            raise RoutingError("at_capacity", "you already have as many dialogs as you can take")
        others = tuple(o for o in offered if o != operator_id)
        await self.publish(Notice("assigned", dialog_id, (operator_id,)))
        if others:
            await self.publish(Notice("withdrawn", dialog_id, others, {"reason": "taken"}))
        await self.publish(Notice("state", dialog_id))

    async def decline(self, operator_id: int, dialog_id: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await set_actor(conn, f"operator:{operator_id}")
            row = await store.decline(conn, dialog_id, operator_id)
        if row is None:
            raise RoutingError("offer_gone", "this dialog is no longer offered to you")
        await self.publish(Notice("withdrawn", dialog_id, (operator_id,), {"reason": "declined"}))
        if row["status"] == "queued":
            await self.route(dialog_id)

    async def expire_offers(self) -> int:
        async with self.pool.acquire() as conn:
            expired = await store.expire_offers(conn)
        for row in expired:
            await self.publish(
                Notice("withdrawn", row["id"], tuple(row["was_offered_to"]), {"reason": "expired"})
            )
        for row in expired:
            await self.route(row["id"])
        return len(expired)

    # -- closing and moving ----------------------------------------------------------------

    async def close(self, dialog_id: int, operator_id: int | None = None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if operator_id is not None:
                await set_actor(conn, f"operator:{operator_id}")
            row = await store.close(conn, dialog_id)
        if row is None:
            raise RoutingError("not_open", "the dialog is already closed")
        holders = tuple(o for o in [row["operator_id"], *row["offered_to"]] if o is not None)
        await self.publish(Notice("closed", dialog_id, holders))
        await self.publish(Notice("state", dialog_id))
        self.wake()  # capacity was freed

    async def transfer_to_operator(
        self,
        dialog_id: int,
        operator_id: int,
        actor: str | None = None,
        handover: Handover = None,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if actor is not None:
                await set_actor(conn, actor)
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _operator_lock(operator_id))
            load, max_dialogs, presence = await store.load_of(conn, operator_id)
            if max_dialogs == 0:
                raise RoutingError("no_operator", "no such operator")
            if presence != "online":
                raise RoutingError("operator_unavailable", "that operator is not online")
            if load >= max_dialogs:
                raise RoutingError("operator_full", "that operator has no room for another dialog")
            row = await store.assign_directly(conn, dialog_id, operator_id, handover)
            if row is None:
                raise RoutingError("not_open", "the dialog is closed")
        await self._handed(dialog_id, operator_id, row, "transferred")

    async def take_over(self, dialog_id: int, supervisor_id: int) -> None:
        """A supervisor takes the dialog themselves, whoever holds it or is offered it and
        however many dialogs they hold already: the desk's decision, not the router's."""
        async with self.pool.acquire() as conn, conn.transaction():
            await set_actor(conn, f"operator:{supervisor_id}")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _operator_lock(supervisor_id))
            row = await store.assign_directly(conn, dialog_id, supervisor_id, (None, supervisor_id))
            if row is None:
                raise RoutingError("not_open", "the dialog is closed")
        await self._handed(dialog_id, supervisor_id, row, "taken_over")

    async def _handed(
        self, dialog_id: int, operator_id: int, row: asyncpg.Record, reason: str
    ) -> None:
        """Tell who lost the dialog and who got it; its old holder's capacity is free."""
        losing = tuple(
            o for o in [row["previous"], *row["offered_to"]] if o is not None and o != operator_id
        )
        if losing:
            await self.publish(Notice("unassigned", dialog_id, losing, {"reason": reason}))
        await self.publish(Notice("assigned", dialog_id, (operator_id,), {"transferred": True}))
        await self.publish(Notice("state", dialog_id))
        self.wake()

    async def transfer_to_queue(
        self,
        dialog_id: int,
        queue_name: str,
        actor: str | None = None,
        handover: Handover = None,
    ) -> None:
        self.forget_queues()
        queue = next((q for q in await self.queues() if q.name == queue_name), None)
        if queue is None and queue_name != DEFAULT_QUEUE.name:
            raise RoutingError("no_queue", f"no queue named {queue_name!r}")
        async with self.pool.acquire() as conn, conn.transaction():
            if actor is not None:
                await set_actor(conn, actor)
            row = await store.requeue(conn, dialog_id, queue.id if queue else None, handover)
        if row is None:
            raise RoutingError("not_open", "the dialog is closed")
        losing = tuple(o for o in [row["previous"], *row["offered_to"]] if o is not None)
        if losing:
            await self.publish(Notice("unassigned", dialog_id, losing, {"reason": "transferred"}))
        await self.route(dialog_id)
        await self.publish(Notice("state", dialog_id))

    async def presence_changed(self, operator_id: int, status: str) -> None:
        await self.count_online()
        if status != "online":
            async with self.pool.acquire() as conn:
                rows = await store.withdraw_offers_of(conn, operator_id)
            for row in rows:
                await self.publish(
                    Notice("withdrawn", row["id"], (operator_id,), {"reason": status})
                )
                if row["status"] == "queued":
                    await self.route(row["id"])
        await self.publish(Notice("state", None))
        self.wake()

    # -- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """Capacity, presence or queues changed: offer waiting dialogs on the next pass."""
        self._shared.clear()
        self._full_pass = True
        self._wake.set()

    def submit(self, dialog_id: int) -> None:
        """A dialog just created or reopened by an inbound event: routed in a task of its
        own, so the provider's request does not wait for routing, and several arrivals are
        routed at once (at most ARRIVALS_AT_ONCE), as many requests routed them before."""
        if self._queues_read and self._nothing_to_do(self._queues):
            return  # it waits in FIFO order
        task = asyncio.create_task(self._route_arrival(dialog_id))
        self._arrivals.add(task)
        task.add_done_callback(self._arrivals.discard)

    async def _route_arrival(self, dialog_id: int) -> None:
        async with self._arrival_slots:
            try:
                if not self._nothing_to_do(await self.queues()):
                    await self.route(dialog_id)
            except DATABASE_UNAVAILABLE as exc:
                # It waits in the queue; the next full pass offers it.
                report_unavailable(log, "router (new dialogs wait in their queue)", exc)
            except Exception:
                log.exception("router: routing dialog %s failed", dialog_id)

    def _nothing_to_do(self, queues: list[QueueRow]) -> bool:
        """A new dialog is routed even with nobody online, since the customer is then told
        by the queue's auto-reply that we will answer later; with nobody online and no
        auto-reply anywhere there is nothing to offer and nothing to say."""
        return not self._online and not any(q.auto_reply for q in queues)

    async def retry_contended(self) -> int:
        """Route again the dialogs that found every candidate busy with another router's
        offer; how many got an offer."""
        contended, self._contended = sorted(self._contended), set()
        offered = 0
        for dialog_id in contended:
            if await self.route(dialog_id):
                offered += 1
        return offered

    async def run(self) -> None:
        """Retry contended dialogs whenever woken; a full pass (expire offers, offer
        waiting dialogs) when asked for, when an offer is due to expire, or at least every
        `tick` (a queue's hours opening); otherwise sleep. New arrivals are routed by their
        own tasks (`submit`), which end with the loop."""
        try:
            await self._loop()
        finally:
            arrivals = list(self._arrivals)
            for task in arrivals:
                task.cancel()
            # Let them end here (their connections back in the pool) before the hub closes it.
            await asyncio.gather(*arrivals, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # before the work, so a wake-up during it is not lost
            full = self._full_pass or time.monotonic() >= self._next_full_at
            try:
                if full:
                    self._full_pass = False
                    await self.expire_offers()
                await self.retry_contended()
                if full:
                    await self.route_waiting()
                    async with self.pool.acquire() as conn:
                        due = await store.next_offer_expiry(conn)
                    wait = self.tick if due is None else min(due, self.tick)
                    self._next_full_at = time.monotonic() + wait
            except DATABASE_UNAVAILABLE as exc:
                report_unavailable(log, "router", exc)
                self._next_full_at = time.monotonic() + min(5.0, self.tick)
            except Exception:
                log.exception("router: unexpected error")
                self._next_full_at = time.monotonic() + min(5.0, self.tick)
            await sleep_until_woken(self._wake, max(0.0, self._next_full_at - time.monotonic()))
