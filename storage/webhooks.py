"""Webhook subscriptions and deliveries in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.database import Conn


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    url: str
    events: tuple[str, ...]
    channels: tuple[str, ...]  # names; empty: every channel
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


def _subscription(r: asyncpg.Record) -> Subscription:
    return Subscription(
        r["id"],
        r["url"],
        tuple(r["events"]),
        tuple(r["channel_names"]),
        r["enabled"],
        r["disabled_reason"],
        r["created_at"],
    )


_SELECT = """SELECT w.*, array(SELECT c.name FROM channels c WHERE c.id = ANY(w.channels)
                               ORDER BY c.name) AS channel_names
             FROM webhook_subscriptions w"""


class UnknownChannel(ValueError):
    """A subscription naming a channel that does not exist."""


async def create(
    conn: Conn | asyncpg.Pool,
    url: str,
    events: Sequence[str],
    secret: str,
    channels: Sequence[str] = (),
) -> Subscription:
    """A subscription; `channels` are names (UnknownChannel for one that does not exist)."""
    ids = list(
        await conn.fetch(
            "SELECT id, name FROM channels WHERE name = ANY($1::text[])", list(channels)
        )
    )
    missing = sorted(set(channels) - {r["name"] for r in ids})
    if missing:
        raise UnknownChannel(f"no channel named {', '.join(missing)}")
    made = await conn.fetchval(
        "INSERT INTO webhook_subscriptions (url, events, secrets, channels)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        url,
        list(events),
        [secret],
        [r["id"] for r in ids],
    )
    found = await get(conn, made)
    assert found is not None
    return found


async def list_all(conn: Conn | asyncpg.Pool) -> list[Subscription]:
    return [_subscription(r) for r in await conn.fetch(f"{_SELECT} ORDER BY w.id")]


async def remove(conn: Conn | asyncpg.Pool, subscription_id: int) -> bool:
    gone = await conn.fetchval(
        "DELETE FROM webhook_subscriptions WHERE id = $1 RETURNING id", subscription_id
    )
    return gone is not None


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery claimed for one attempt, with what the attempt needs: its body is built
    by the database, ready to sign and send."""

    id: int
    subscription_id: int
    url: str
    secrets: tuple[str, ...]
    attempts: int
    created_at: datetime
    event_id: int
    body: bytes
    trace_id: str | None = None  # the inbound event's, when one caused it


# The pending deliveries that may be attempted once due: an enabled subscription's, and the
# earliest pending one of its lead (a lead's later event waits for its earlier one). One
# definition for claiming and for the dispatcher's sleep, so they never disagree: a delivery
# counted as due that cannot be claimed would wake the dispatcher again and again.
# The earlier-one check is one probe of the lead index per row, in that index's order (an
# offset keeps it a probe): planned as a join without statistics, or on another index, it
# read every pending delivery of the subscription for each row.
_CLAIMABLE = """FROM webhook_deliveries d
    JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
    WHERE d.status = 'pending'
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
          WHERE e.subscription_id = d.subscription_id AND e.lead_id = d.lead_id
            AND e.status = 'pending' AND e.id < d.id
          ORDER BY e.subscription_id, e.lead_id, e.id LIMIT 1 OFFSET 0)"""

# A delivery's body, `{"type", "timestamp", "data"}`: the event's own data with the ids it
# concerns and, as they stand now, who the lead is and, for an interaction's events, the
# message (its text cut at 8,000 characters, under the Standard Webhooks size advice), so a
# CRM need not ask back.
_BODY = """jsonb_build_object(
    'type', w.event->'type', 'timestamp', w.event->'occurred_at',
    'data', jsonb_build_object(
                'lead_id', w.event->'lead_id', 'dialog_id', w.event->'dialog_id',
                'interaction_id', w.event->'interaction_id',
                'operator_id', w.event->'operator_id', 'actor', w.event->'actor')
            || COALESCE((
                SELECT jsonb_build_object('lead', jsonb_build_object(
                    'id', l.id, 'name', l.name, 'merged_into', l.merged_into,
                    'phones', array(SELECT p.phone FROM lead_phones p WHERE p.lead_id = l.id
                                    ORDER BY p.created_at, p.phone),
                    'emails', array(SELECT e.email FROM lead_emails e WHERE e.lead_id = l.id
                                    ORDER BY e.created_at, e.email)))
                FROM leads l WHERE l.id = (w.event->>'lead_id')::bigint), '{}')
            || COALESCE((
                SELECT jsonb_build_object('interaction', jsonb_build_object(
                    'id', i.id, 'kind', i.kind, 'direction', i.direction,
                    'channel', (SELECT c.name FROM channels c WHERE c.id = i.channel_id),
                    'text', left(i.text, 8000), 'text_truncated', length(i.text) > 8000,
                    'subject', i.subject, 'occurred_at', i.occurred_at, 'author', i.author,
                    'delivery_state', i.delivery_state))
                FROM interactions i WHERE i.id = (w.event->>'interaction_id')::bigint), '{}')
            || (w.event->'data'))::text"""


async def claim(
    conn: Conn, limit: int, lease_s: float, room: int, rooms: Mapping[int, int]
) -> list[Due]:
    """Due deliveries, each the earliest pending one of its lead for its subscription (a
    lead's later event waits for its earlier one), leased to this node for one attempt: at
    most `limit` in all and, per subscription, the room its queue has (`rooms`, else
    `room`), so a slow subscriber's backlog stays where other nodes may take their turn and
    never crowds out the others."""
    async with conn.transaction():
        # Whatever the statistics say (after a quiet week they say nothing is pending, and a
        # CRM that was down for a day has a backlog), a claim walks each subscription's due
        # index in order and stops at its room, instead of sorting every pending delivery.
        await conn.execute("SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off")
        rows = await conn.fetch(
            f"""WITH room AS (
                   SELECT s.id, COALESCE(r.room, $3) AS room
                   FROM webhook_subscriptions s
                   LEFT JOIN unnest($4::bigint[], $5::int[]) AS r(id, room) ON r.id = s.id
                   WHERE s.enabled),
               due AS (
                   SELECT c.id FROM room CROSS JOIN LATERAL (
                       SELECT d.id {_CLAIMABLE}
                         AND d.subscription_id = room.id
                         AND d.next_attempt_at <= now()
                         AND (d.leased_until IS NULL OR d.leased_until < now())
                       ORDER BY d.next_attempt_at, d.id
                       LIMIT room.room FOR UPDATE OF d SKIP LOCKED) c
                   WHERE room.room > 0
                   LIMIT $1)
               UPDATE webhook_deliveries w SET leased_until = now() + make_interval(secs => $2)
               FROM webhook_subscriptions s
               WHERE w.id = ANY(ARRAY(SELECT id FROM due)) AND s.id = w.subscription_id
                 AND s.enabled
               RETURNING w.id, w.subscription_id, s.url, s.secrets, w.attempts,
                         COALESCE(w.replayed_at, w.created_at) AS created_at, w.event_id,
                         {_BODY} AS body, w.event->>'trace_id' AS trace_id""",
            limit,
            lease_s,
            room,
            list(rooms),
            list(rooms.values()),
        )
    return [
        Due(
            r["id"],
            r["subscription_id"],
            r["url"],
            tuple(r["secrets"]),
            r["attempts"],
            r["created_at"],
            r["event_id"],
            r["body"].encode(),
            r["trace_id"],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome: `delivered`, `retry` (again in `retry_in_s`) or `dead`."""

    delivery_id: int
    subscription_id: int
    outcome: str
    status: int | None
    duration_ms: int
    error: str | None
    retry_in_s: float | None


async def record_attempts(conn: Conn, made: Sequence[Attempt]) -> None:
    """A batch of attempts' outcomes in one statement, and the subscriptions that were
    answered 2xx marked so."""
    await conn.execute(
        """WITH a AS (
               SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[],
                                    $6::float8[])
                      AS t(id, outcome, status, took, error, retry_in)),
           done AS (
               UPDATE webhook_deliveries d SET
                   attempts = d.attempts + 1, leased_until = NULL, last_status_code = a.status,
                   attempt_log = d.attempt_log || jsonb_build_array(jsonb_build_object(
                       'at', now(), 'status_code', a.status, 'duration_ms', a.took,
                       'error', a.error)),
                   status = CASE a.outcome WHEN 'retry' THEN 'pending' ELSE a.outcome END,
                   next_attempt_at = CASE WHEN a.outcome = 'retry'
                                          THEN now() + make_interval(secs => a.retry_in)
                                          ELSE d.next_attempt_at END,
                   finished_at = CASE WHEN a.outcome = 'retry' THEN NULL ELSE now() END
               FROM a WHERE d.id = a.id
               RETURNING d.subscription_id, a.outcome)
           UPDATE webhook_subscriptions s SET last_success_at = now()
           WHERE s.id IN (SELECT subscription_id FROM done WHERE outcome = 'delivered')""",
        [m.delivery_id for m in made],
        [m.outcome for m in made],
        [m.status for m in made],
        [m.duration_ms for m in made],
        [m.error for m in made],
        [m.retry_in_s or 0.0 for m in made],
    )


async def disable(conn: Conn, subscription_id: int, reason: str) -> bool:
    """True when this call disabled it (it was enabled)."""
    done = await conn.fetchval(
        "UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2"
        " WHERE id = $1 AND enabled RETURNING id",
        subscription_id,
        reason,
    )
    return done is not None


async def enable(conn: Conn | asyncpg.Pool, subscription_id: int) -> bool:
    """Turn a subscription back on: its waiting deliveries go out (the silence clock starts
    afresh). False when there is no such subscription."""
    done = await conn.fetchval(
        """UPDATE webhook_subscriptions
           SET enabled = true, disabled_reason = NULL,
               last_success_at = CASE WHEN enabled THEN last_success_at ELSE now() END
           WHERE id = $1 RETURNING id""",
        subscription_id,
    )
    if done is not None:
        await conn.execute("SELECT pg_notify('hub_webhooks', '')")
    return done is not None


async def disable_if_silent(conn: Conn, subscription_id: int, silent_s: float) -> bool:
    """Disable a subscription whose receiver has answered no 2xx for `silent_s` seconds
    (since it was made, if never); True when this call did."""
    done = await conn.fetchval(
        """UPDATE webhook_subscriptions
           SET enabled = false,
               disabled_reason = 'no successful delivery for ' || ($2::float8 / 3600)::int || ' h'
           WHERE id = $1 AND enabled
             AND COALESCE(last_success_at, created_at) < now() - make_interval(secs => $2)
           RETURNING id""",
        subscription_id,
        silent_s,
    )
    return done is not None


async def next_due_in(conn: Conn) -> float | None:
    """Seconds until a delivery can be claimed (0 if one can now), None if none can: the
    dispatcher sleeps that long, so what it cannot claim (a disabled subscription's, a lead's
    later one) must not count, or it would wake at once, again and again."""
    value = await conn.fetchval(
        f"""SELECT EXTRACT(EPOCH FROM min(GREATEST(d.next_attempt_at,
                                                  COALESCE(d.leased_until, d.next_attempt_at)))
                              - now())::float8
           {_CLAIMABLE}"""
    )
    return max(0.0, float(value)) if value is not None else None


async def deliveries(
    conn: Conn | asyncpg.Pool, subscription_id: int, limit: int = 100
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT d.*, d.event->>'type' AS type FROM webhook_deliveries d
           WHERE d.subscription_id = $1 ORDER BY d.id DESC LIMIT $2""",
        subscription_id,
        limit,
    )


async def replay(conn: Conn | asyncpg.Pool, subscription_id: int, event_ids: Sequence[int]) -> int:
    """Send again the chosen events (any state), or every dead one when none is chosen,
    with their original ids; the retry budget starts afresh. How many were queued."""
    rows = await conn.fetch(
        """UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),
                  replayed_at = now(), leased_until = NULL, finished_at = NULL
           WHERE subscription_id = $1
             AND (CASE WHEN cardinality($2::bigint[]) = 0 THEN status = 'dead'
                       ELSE event_id = ANY($2::bigint[]) END)
           RETURNING id""",
        subscription_id,
        list(event_ids),
    )
    if rows:
        await conn.execute("SELECT pg_notify('hub_webhooks', '')")
    return len(rows)


async def rotate(conn: Conn | asyncpg.Pool, subscription_id: int, secret: str | None) -> bool:
    """Put a new secret first (the old ones still sign until `secret` is None: then only
    the newest is kept)."""
    if secret is None:
        done = await conn.fetchval(
            "UPDATE webhook_subscriptions SET secrets = secrets[1:1] WHERE id = $1 RETURNING id",
            subscription_id,
        )
    else:
        done = await conn.fetchval(
            "UPDATE webhook_subscriptions SET secrets = ARRAY[$2::text] || secrets WHERE id = $1"
            " RETURNING id",
            subscription_id,
            secret,
        )
    return done is not None


async def get(conn: Conn | asyncpg.Pool, subscription_id: int) -> Subscription | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE w.id = $1", subscription_id)
    return _subscription(row) if row else None
