"""This node's Prometheus metrics, served at `GET /metrics`.

Counters count what this node did (inbound events it took, offers its router made, sends
it attempted): Prometheus sums them over the nodes it scrapes. Levels that live in the
database (dialogs waiting, operators by presence, the webhook backlog) are read at each
scrape, so every node reports the same figures for them; the sockets, the pool and the
channel runners are this node's own. Each hub has a registry of its own, so several hubs
in one process (the tests) never share a count.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import asyncpg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

from hub.domain import Notice
from storage import gauges
from storage.database import DATABASE_UNAVAILABLE

INBOUND_KINDS = ("form", "telegram", "vk", "viber", "email", "call")
OUTCOMES = ("stored", "duplicate", "rejected")
# An ingest result's status as an outcome: a staged message (waiting in the unsorted inbox
# for a person to say whose it is) is stored as much as a created one.
_OUTCOME = {"created": "stored", "staged": "stored", "applied": "stored", "duplicate": "duplicate"}
OFFER_OUTCOMES = ("made", "accepted", "declined", "expired")
_UNREADABLE: tuple[type[BaseException], ...] = (*DATABASE_UNAVAILABLE, TimeoutError)
READ_TIMEOUT_S = 2.0  # a scrape answers within Prometheus' usual timeout, database or not

Publish = Callable[[Notice], Awaitable[None]]


class Metrics:
    """The node's metrics and the hooks that feed them."""

    def __init__(self, node: str = "") -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        Info("hub_node", "The node answering this scrape", registry=r).info({"node": node})
        self.inbound = Counter(
            "hub_inbound_events",
            "Inbound events by interaction kind and outcome (stored, duplicate: a provider's"
            " retry or a repeated idempotency key, rejected: refused with a 4xx)",
            ["kind", "outcome"],
            registry=r,
        )
        for kind in INBOUND_KINDS:
            for outcome in OUTCOMES:
                self.inbound.labels(kind, outcome)
        self.ingest_seconds = Histogram(
            "hub_ingest_duration_seconds",
            "From an inbound event's arrival at the pipeline to its commit",
            ["kind"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.offers = Counter(
            "hub_offers",
            "Offers this node's router made, and how they ended",
            ["outcome"],
            registry=r,
        )
        for outcome in OFFER_OUTCOMES:
            self.offers.labels(outcome)
        self.outbound = Counter(
            "hub_outbound_sends",
            "Replies sent to providers by channel kind and result (sent, failed, retry)",
            ["kind", "state"],
            registry=r,
        )
        self.waiting = Gauge(
            "hub_dialogs_waiting",
            "Dialogs waiting for an operator (queued or offered)",
            ["queue"],
            registry=r,
        )
        self.oldest_wait = Gauge(
            "hub_dialogs_oldest_wait_seconds",
            "How long the longest-waiting dialog of a queue has waited",
            ["queue"],
            registry=r,
        )
        self.operators = Gauge(
            "hub_operators", "Operators by presence (online, away)", ["status"], registry=r
        )
        self.sockets = Gauge(
            "hub_operator_sockets", "Operators' websocket connections to this node", registry=r
        )
        self.webhooks = Gauge(
            "hub_webhook_deliveries",
            "Webhook deliveries still to make (pending) and dead-lettered (dead)",
            ["status"],
            registry=r,
        )
        self.pool = Gauge(
            "hub_db_pool_connections",
            "This node's database pool: connections in use, idle, and its ceiling (max)",
            ["state"],
            registry=r,
        )
        self.pool_waiting = Gauge(
            "hub_db_pool_waiting", "Requests waiting for a pooled connection", registry=r
        )
        self.runners = Gauge(
            "hub_channel_runners", "Channels whose poller runs on this node", registry=r
        )
        self.database_up = Gauge(
            "hub_database_up", "1 when this scrape could read the database, else 0", registry=r
        )

    def inbound_outcome(self, kind: str, status: str) -> None:
        """One inbound event's outcome; `status` is an ingest or call result's."""
        outcome = _OUTCOME.get(status)
        if outcome is not None:
            self.inbound.labels(kind, outcome).inc()

    def rejected(self, kind: str) -> None:
        self.inbound.labels(kind, "rejected").inc()

    @contextmanager
    def timing(self, kind: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.ingest_seconds.labels(kind).observe(time.perf_counter() - started)

    def counting_offers(self, publish: Publish) -> Publish:
        """The router's `publish`, counting its offers on the way: only this node's
        decisions pass here (notices heard from other nodes do not)."""

        async def counted(notice: Notice) -> None:
            if notice.kind == "offered":
                self.offers.labels("made").inc()
            elif notice.kind == "assigned" and not notice.data:  # an offer accepted
                self.offers.labels("accepted").inc()
            elif notice.kind == "withdrawn":
                reason = notice.data.get("reason")
                if reason in ("declined", "expired"):
                    self.offers.labels(reason).inc()
            await publish(notice)

        return counted

    async def render(self, pool: asyncpg.Pool, sockets: int, runners: int) -> bytes:
        """The text exposition, with the levels read now."""
        self.sockets.set(sockets)
        self.runners.set(runners)
        self.pool.labels("in_use").set(pool.get_size() - pool.get_idle_size())
        self.pool.labels("idle").set(pool.get_idle_size())
        self.pool.labels("max").set(pool.get_max_size())
        # asyncpg keeps no public count of waiters; its queue's getters are they.
        queue = getattr(pool, "_queue", None)
        self.pool_waiting.set(len(getattr(queue, "_getters", ()) or ()))
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                levels = await gauges.read(pool)
        except _UNREADABLE:
            # The scrape still answers, with what this node knows: an outage is a figure.
            self.database_up.set(0)
        else:
            self.database_up.set(1)
            # Set anew each time: a queue that was removed stops being reported.
            self.waiting.clear()
            self.oldest_wait.clear()
            for queue_name, waiting, oldest_s in levels.queues:
                self.waiting.labels(queue_name).set(waiting)
                self.oldest_wait.labels(queue_name).set(oldest_s)
            self.operators.clear()
            for status in ("online", "away"):
                self.operators.labels(status).set(levels.operators.get(status, 0))
            self.webhooks.labels("pending").set(levels.webhooks_pending)
            self.webhooks.labels("dead").set(levels.webhooks_dead)
        return generate_latest(self.registry)


def token_matches(expected: str, authorization: str | None) -> bool:
    """A scrape's `Authorization: Bearer …` against `HUB_METRICS_TOKEN`, in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())
