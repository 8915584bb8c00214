"""A call's followed_at (the start of the next answered call with its number, migration
0030) is what the probe it replaces would find, whatever order calls are written in, one by
one or in batches, and when a call is answered, moved or re-numbered later."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import asyncpg

from storage.database import Conn

T0 = datetime(2026, 3, 2, tzinfo=UTC)
PHONES = ("+79160000001", "+79160000002", "+79160000003", None)


async def _mismatches(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT k.call_id, k.followed_at,
                  (SELECT min(b.started_at) FROM report_calls b
                    WHERE b.customer_phone = k.customer_phone AND b.answered_at IS NOT NULL
                      AND b.started_at > k.started_at) AS probe
             FROM report_calls k
            WHERE k.followed_at IS DISTINCT FROM
                  (SELECT min(b.started_at) FROM report_calls b
                    WHERE b.customer_phone = k.customer_phone AND b.answered_at IS NOT NULL
                      AND b.started_at > k.started_at)"""
    )


async def _insert(conn: Conn, calls: list[tuple[int, str | None, int, bool]]) -> None:
    await conn.execute(
        """INSERT INTO report_calls (call_id, channel_id, customer_phone, status, started_at,
                                     answered_at, direction)
           SELECT id, 1, phone, CASE WHEN answered THEN 'answered' ELSE 'missed' END,
                  $5::timestamptz + make_interval(secs => at),
                  CASE WHEN answered THEN $5::timestamptz + make_interval(secs => at + 5) END,
                  'in'
             FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bool[])
                  AS c(id, phone, at, answered)""",
        [c[0] for c in calls],
        [c[1] for c in calls],
        [c[2] for c in calls],
        [c[3] for c in calls],
        T0,
    )


async def test_followed_at_is_the_next_answered_call_in_any_order(pool: asyncpg.Pool) -> None:
    rng = random.Random(20261128)
    calls = [
        (n, rng.choice(PHONES), rng.randrange(0, 50_000), rng.random() < 0.4) for n in range(1, 301)
    ]
    rng.shuffle(calls)
    async with pool.acquire() as conn:
        i = 0
        while i < len(calls):  # one by one, and batches of up to 20 in one statement
            size = rng.choice((1, 1, 5, 20))
            await _insert(conn, calls[i : i + size])
            i += size
        assert await _mismatches(pool) == []
        followed = await conn.fetchval("SELECT count(followed_at) FROM report_calls")
        assert 50 < followed < 300  # most calls have a next answered one; the last do not
        for _ in range(40):  # later events: answered, moved, or a number learnt
            n = rng.randrange(1, 301)
            change = rng.choice(("answer", "move", "phone", "unanswer"))
            if change == "answer":
                await conn.execute(
                    """UPDATE report_calls SET status = 'answered',
                              answered_at = started_at + interval '3 seconds'
                        WHERE call_id = $1""",
                    n,
                )
            elif change == "unanswer":
                await conn.execute(
                    "UPDATE report_calls SET answered_at = NULL WHERE call_id = $1", n
                )
            elif change == "move":
                await conn.execute(
                    "UPDATE report_calls SET started_at = $2 WHERE call_id = $1",
                    n,
                    T0 + timedelta(seconds=rng.randrange(0, 50_000)),
                )
            else:
                await conn.execute(
                    "UPDATE report_calls SET customer_phone = $2 WHERE call_id = $1",
                    n,
                    rng.choice(PHONES),
                )
            assert await _mismatches(pool) == [], change
        # An upsert, as the fact builder writes a call's latest event.
        await conn.execute(
            """INSERT INTO report_calls (call_id, channel_id, customer_phone, status, started_at,
                                         answered_at)
               SELECT call_id, 1, customer_phone, 'answered', started_at,
                      started_at + interval '1 second'
                 FROM report_calls WHERE call_id % 7 = 0
               ON CONFLICT (call_id) DO UPDATE
                  SET status = EXCLUDED.status, answered_at = EXCLUDED.answered_at"""
        )
        assert await _mismatches(pool) == []
