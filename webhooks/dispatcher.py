"""The webhook dispatcher: every due delivery attempted once, by one node, in order per lead.

Deliveries are rows made in the transaction of their event (storage/functions/40_webhooks.sql),
so a restart loses none; each attempt is leased to one node (`FOR UPDATE SKIP LOCKED` and a
lease), signed per Standard Webhooks, sent by `webhooks.sender` (kept-alive connections,
redirects not followed, no loopback, private or link-local address unless allowed). 2xx is
delivered; a network error, a timeout, a 3xx, 408, 429 or 5xx is tried again on the schedule
(honouring `Retry-After`) until the budget is spent; 410 disables the subscription; other 4xx
are dead at once. The loop sleeps until a NOTIFY says a delivery was made, or the next retry is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from yarl import URL

from hub import tracing
from hub.domain import Notice
from hub.netguard import Refused
from hub.wakeup import sleep_until_woken
from storage import webhooks as store
from storage.database import DATABASE_UNAVAILABLE, Conn, report_unavailable
from webhooks.sender import Sender, SendError
from webhooks.signing import headers as signed_headers

log = logging.getLogger(__name__)

# About 1 s, 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, then every 6 h (the contract's schedule).
DEFAULT_SCHEDULE = (1.0, 5.0, 30.0, 120.0, 600.0, 3600.0, 10800.0, 21600.0)
DEFAULT_BUDGET_S = 24 * 3600.0
DEFAULT_DISABLE_AFTER_S = 3 * 24 * 3600.0
ATTEMPT_TIMEOUT_S = 15.0
BATCH = 512  # attempts out at once, over all subscriptions
RECORD_EVERY = 128  # outcomes recorded together while others are out
RECORD_AFTER_S = 1.0  # and none waits longer to be recorded
PER_SUBSCRIPTION = 16  # attempts at once to one subscriber
QUEUED_PER_SUBSCRIPTION = 8 * PER_SUBSCRIPTION  # claimed for one subscriber at once
LEASE_S = 60.0
IDLE_CHECK_S = 60.0
RETRIED = {408, 429}
GONE = "the receiver answered 410 Gone"


def retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(slots=True, eq=False)
class _Out:
    """The attempts of one `deliver_due`: queued or out, per subscription, and landed."""

    queues: dict[int, deque[tuple[float, store.Due]]] = field(default_factory=dict)
    workers: dict[int, int] = field(default_factory=dict)
    tasks: set[asyncio.Future[None]] = field(default_factory=set)
    landed: list[store.Attempt] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    flying: int = 0  # claimed and not yet landed
    claimed: int = 0  # claimed in all (the attempts made or left for their lease)
    landed_since: float = 0.0  # when the first of `landed` landed

    room_opened: bool = True  # a queue drained to half: claim for it

    def rooms(self) -> dict[int, int]:
        """How many more each known subscription's queue takes."""
        return {s: QUEUED_PER_SUBSCRIPTION - len(q) for s, q in self.queues.items()}


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        allow_private: bool = False,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        budget_s: float = DEFAULT_BUDGET_S,
        timeout_s: float = ATTEMPT_TIMEOUT_S,
        disable_after_s: float = DEFAULT_DISABLE_AFTER_S,
        publish: Callable[[Notice], Awaitable[None]] | None = None,
        lease_s: float = LEASE_S,
    ) -> None:
        self.pool = pool
        self.lease_s = lease_s
        # A claimed delivery still waiting for its subscriber's turn this long is left to be
        # claimed again: started later, its attempt could outlast the lease, and another
        # node could then claim and send it too.
        self.stale_after_s = max(0.5, lease_s - timeout_s - min(5.0, lease_s / 4))
        self.dsn = dsn
        self.schedule = tuple(schedule) or DEFAULT_SCHEDULE
        self.budget_s = budget_s
        self.disable_after_s = disable_after_s
        self.publish = publish
        self.sender = Sender(timeout_s=timeout_s, allow_private=allow_private)
        self._wake = asyncio.Event()
        self._urls: dict[str, URL] = {}

    def wake(self) -> None:
        self._wake.set()

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt, with ±20 % jitter."""
        base = self.schedule[min(attempts - 1, len(self.schedule) - 1)]
        return base * random.uniform(0.8, 1.2)

    async def deliver_due(self) -> int:
        """Attempt everything due; how many were claimed. Attempts stream: each
        subscription's claimed deliveries are drained by up to `PER_SUBSCRIPTION` workers,
        more are claimed for it once its queue is half empty, and outcomes are recorded in
        groups, in the background, while the rest are out and more are claimed, so neither
        the receiver nor the claiming waits on a record being written. A lead's later
        delivery stays behind its earlier one: it is not claimed while that one is pending,
        and becomes claimable once that one's outcome is recorded."""
        out = _Out()
        claimable = True
        recording: asyncio.Future[None] | None = None
        try:
            while True:
                out.progress.clear()
                if recording is not None and recording.done():
                    recording.result()  # a failed record stops this round, as a claim's would
                    recording = None
                    # A recorded one may let its lead's next one go.
                    claimable = out.room_opened = True
                if claimable and out.room_opened and out.flying < BATCH:
                    claimable = await self._claim(out)
                waited = out.landed and time.monotonic() - out.landed_since >= RECORD_AFTER_S
                if (
                    recording is None
                    and out.landed
                    and (len(out.landed) >= RECORD_EVERY or not out.flying or waited)
                ):
                    made = out.landed.copy()
                    out.landed.clear()
                    recording = asyncio.ensure_future(self._record(made))
                    recording.add_done_callback(lambda _: out.progress.set())
                    continue
                if not out.flying and recording is None:
                    if not claimable:
                        return out.claimed
                    out.room_opened = True  # every queue is empty
                    continue
                # Outcomes of a slow subscriber are recorded within RECORD_AFTER_S, well inside
                # their lease, even when too few land to fill a group.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECORD_AFTER_S):
                        await out.progress.wait()
        finally:
            # Stopped (the node shuts down): what is still out is left to its lease; what
            # has landed and is being recorded is recorded.
            for worker in list(out.tasks):
                worker.cancel()
            await asyncio.gather(*out.tasks, return_exceptions=True)
            if recording is not None:
                await asyncio.gather(recording, return_exceptions=True)

    async def _claim(self, out: _Out) -> bool:
        """Claim what the queues have room for; True if more may be claimable now (some
        room was filled, so its subscriber may have more)."""
        out.room_opened = False
        rooms, wanted = out.rooms(), BATCH - out.flying
        async with self.pool.acquire() as conn:
            due = await store.claim(conn, wanted, self.lease_s, QUEUED_PER_SUBSCRIPTION, rooms)
        claimed_at = time.monotonic()
        taken: dict[int, int] = {}
        for one in due:
            self._queue(out, claimed_at, one)
            taken[one.subscription_id] = taken.get(one.subscription_id, 0) + 1
        out.claimed += len(due)
        return len(due) == wanted or any(
            n == rooms.get(s, QUEUED_PER_SUBSCRIPTION) for s, n in taken.items()
        )

    def _queue(self, out: _Out, claimed_at: float, due: store.Due) -> None:
        """Queue one attempt, and start a worker for its subscription if it has fewer than
        `PER_SUBSCRIPTION` (a worker per subscriber, not a task per attempt)."""
        waiting = out.queues.setdefault(due.subscription_id, deque())
        waiting.append((claimed_at, due))
        out.flying += 1
        if out.workers.get(due.subscription_id, 0) < PER_SUBSCRIPTION:
            out.workers[due.subscription_id] = out.workers.get(due.subscription_id, 0) + 1
            worker = asyncio.ensure_future(self._drain(out, due.subscription_id, waiting))
            out.tasks.add(worker)
            worker.add_done_callback(out.tasks.discard)

    async def _drain(
        self, out: _Out, subscription_id: int, waiting: deque[tuple[float, store.Due]]
    ) -> None:
        try:
            while waiting:
                claimed_at, due = waiting.popleft()
                if len(waiting) <= QUEUED_PER_SUBSCRIPTION // 2 and not out.room_opened:
                    out.room_opened = True
                    out.progress.set()
                trace = tracing.begin(due.trace_id)
                try:
                    if time.monotonic() - claimed_at > self.stale_after_s:
                        continue  # left for its lease to run out; claimed again then
                    attempt = await self.attempt(due)
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug(
                            "webhook %s: event %s to subscription %s: %s (%s) in %d ms",
                            due.id,
                            due.event_id,
                            due.subscription_id,
                            attempt.outcome,
                            attempt.status or attempt.error,
                            attempt.duration_ms,
                        )
                    if not out.landed:
                        out.landed_since = time.monotonic()
                    out.landed.append(attempt)
                except Exception:
                    # Unrecorded, its lease runs out and it is attempted again.
                    log.exception("webhook attempt failed unexpectedly")
                finally:
                    tracing.end(trace)
                    out.flying -= 1
                    # The claiming loop is woken when it has something to do, not per attempt.
                    if not out.flying or len(out.landed) >= RECORD_EVERY:
                        out.progress.set()
        finally:
            out.workers[subscription_id] -= 1

    async def _record(self, made: Sequence[store.Attempt]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await store.record_attempts(conn, made)
            disabled = await self._disable_failing(conn, made)
        for subscription_id, reason in disabled:
            log.warning("webhook subscription %s disabled: %s", subscription_id, reason)
            if self.publish is not None:
                # Supervisors see it at once: a CRM no longer hears of anything.
                await self.publish(
                    Notice(
                        "webhook.disabled",
                        None,
                        data={"webhook_id": subscription_id, "reason": reason},
                    )
                )

    async def _disable_failing(
        self, conn: Conn, made: Sequence[store.Attempt]
    ) -> list[tuple[int, str]]:
        """Subscriptions to disable after this batch: a 410, or no 2xx for too long."""
        disabled: list[tuple[int, str]] = []
        for subscription_id in dict.fromkeys(a.subscription_id for a in made if a.status == 410):
            if await store.disable(conn, subscription_id, GONE):
                disabled.append((subscription_id, GONE))
        failing = {a.subscription_id for a in made if a.outcome != "delivered"}
        for subscription_id in sorted(failing - {s for s, _ in disabled}):
            if await store.disable_if_silent(conn, subscription_id, self.disable_after_s):
                silent = f"no successful delivery for {self.disable_after_s / 3600:.0f} h"
                disabled.append((subscription_id, silent))
        return disabled

    async def attempt(self, due: store.Due) -> store.Attempt:
        url = self._urls.get(due.url)
        if url is None:
            url = self._urls[due.url] = URL(due.url)
        now = int(time.time())
        sent = signed_headers(due.secrets, f"evt_{due.event_id}", now, due.body)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        wait_hint: float | None = None
        try:
            reply = await self.sender.post(url, sent, due.body)
            status, wait_hint = reply.status, retry_after(reply.retry_after)
        except Refused as exc:
            error = f"refused: {exc}"
        except SendError as exc:
            error = f"could not deliver: {exc}"
        except TimeoutError:
            error = f"could not deliver: no answer in {self.sender.timeout_s:g} s"
        took = int((time.monotonic() - started) * 1000)
        outcome, retry_in = self._judge(due, status, error, wait_hint)
        if status is not None and 300 <= status < 400:
            error = f"HTTP {status}: redirects are not followed"
        return store.Attempt(due.id, due.subscription_id, outcome, status, took, error, retry_in)

    def _judge(
        self, due: store.Due, status: int | None, error: str | None, hint: float | None
    ) -> tuple[str, float | None]:
        if status is not None and 200 <= status < 300:
            return "delivered", None
        if error is not None and error.startswith("refused"):
            return "dead", None  # a private or metadata address: never tried again
        if status is not None and 400 <= status < 500 and status not in RETRIED:
            return "dead", None
        wait = self.delay(due.attempts + 1)
        if hint is not None:
            wait = max(wait, hint)
        age = (datetime.now(UTC) - due.created_at).total_seconds()
        if age + wait > self.budget_s:
            return "dead", None
        return "retry", wait

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        try:
            while True:
                self._wake.clear()
                due_in: float | None = IDLE_CHECK_S
                try:
                    if listener is None or listener.is_closed():
                        listener = await asyncpg.connect(self.dsn)
                        await listener.add_listener("hub_webhooks", lambda *_: self.wake())
                    while await self.deliver_due():
                        continue
                    async with self.pool.acquire() as conn:
                        due_in = await store.next_due_in(conn)
                except DATABASE_UNAVAILABLE as exc:
                    report_unavailable(log, "webhook dispatcher", exc)
                    due_in = 5.0
                except Exception:
                    log.exception("webhook dispatcher: unexpected error")
                    due_in = 5.0
                await sleep_until_woken(self._wake, IDLE_CHECK_S if due_in is None else due_in)
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()
            await self.sender.close()
