"""The webhook dispatcher: every due delivery attempted once, by one node, in order per lead.

Deliveries are rows made in the transaction of their event (storage/functions/40_webhooks.sql),
so a restart loses none; each attempt is leased to one node (`FOR UPDATE SKIP LOCKED` and a
lease), signed per Standard Webhooks, sent without following redirects, through the network
guard (no loopback, private or link-local address unless allowed). 2xx is delivered; a
network error, a timeout, a 3xx, 408, 429 or 5xx is tried again on the schedule (honouring
`Retry-After`) until the budget is spent; 410 disables the subscription; other 4xx are dead at
once. The loop sleeps until a NOTIFY says a delivery was made, or the next retry is due.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from hub.domain import Notice
from hub.netguard import NetGuard, Refused
from hub.wakeup import sleep_until_woken
from storage import webhooks as store
from storage.database import DATABASE_UNAVAILABLE, Conn, report_unavailable
from webhooks.signing import headers as signed_headers

log = logging.getLogger(__name__)

# About 1 s, 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, then every 6 h (the contract's schedule).
DEFAULT_SCHEDULE = (1.0, 5.0, 30.0, 120.0, 600.0, 3600.0, 10800.0, 21600.0)
DEFAULT_BUDGET_S = 24 * 3600.0
DEFAULT_DISABLE_AFTER_S = 3 * 24 * 3600.0
ATTEMPT_TIMEOUT_S = 15.0
BATCH = 128
PER_SUBSCRIPTION = 16  # attempts at once to one subscriber
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


def body_of(event: dict[str, Any]) -> bytes:
    """`{"type", "timestamp", "data"}`: the event's own data with the ids it concerns, the
    lead (`id`, `name`, `phones`, `emails`) and, for an interaction's events, the message,
    as they stand when the delivery is made."""
    extra = {k: event[k] for k in ("lead", "interaction") if event.get(k) is not None}
    data = {
        "lead_id": event["lead_id"],
        "dialog_id": event["dialog_id"],
        "interaction_id": event["interaction_id"],
        "operator_id": event["operator_id"],
        "actor": event["actor"],
        **extra,
        **(event["data"] or {}),
    }
    occurred = str(event["occurred_at"])
    body = {"type": event["type"], "timestamp": occurred, "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


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
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.schedule = tuple(schedule) or DEFAULT_SCHEDULE
        self.budget_s = budget_s
        self.disable_after_s = disable_after_s
        self.publish = publish
        self.guard = NetGuard(aiohttp.ClientTimeout(total=timeout_s), allow_private=allow_private)
        self._wake = asyncio.Event()
        self._limits: dict[int, asyncio.Semaphore] = {}

    def wake(self) -> None:
        self._wake.set()

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt, with ±20 % jitter."""
        base = self.schedule[min(attempts - 1, len(self.schedule) - 1)]
        return base * random.uniform(0.8, 1.2)

    async def deliver_due(self) -> int:
        """Attempt everything due, batch after batch; how many attempts were made. The next
        batch is claimed, and the last one's outcomes recorded, while a batch's requests
        are out, so the receiver is never left waiting on the database. A lead's later
        delivery stays behind its earlier one: it is not claimed while that one is pending."""
        async with self.pool.acquire() as conn:
            due = await store.claim(conn, BATCH, LEASE_S)
        total = 0
        finished: list[store.Attempt] = []
        while due:
            out = asyncio.ensure_future(asyncio.gather(*(self._limited(d) for d in due)))
            try:
                if finished:
                    await self._record(finished)
                async with self.pool.acquire() as conn:
                    following = await store.claim(conn, BATCH, LEASE_S)
            finally:
                finished = list(await out)
            total += len(due)
            due = following
        if finished:
            await self._record(finished)
        return total

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

    async def _limited(self, due: store.Due) -> store.Attempt:
        limit = self._limits.setdefault(due.subscription_id, asyncio.Semaphore(PER_SUBSCRIPTION))
        async with limit:
            return await self.attempt(due)

    async def attempt(self, due: store.Due) -> store.Attempt:
        body = body_of(due.event)
        now = int(time.time())
        sent = signed_headers(due.secrets, f"evt_{due.event['id']}", now, body)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        wait_hint: float | None = None
        try:
            async with self.guard.request(
                "POST", due.url, data=body, headers=sent, follow_redirects=False
            ) as reply:
                status = reply.status
                wait_hint = retry_after(reply.headers.get("Retry-After"))
                await reply.read()
        except Refused as exc:
            error = f"refused: {exc}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: could not deliver"
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
            await self.guard.close()
