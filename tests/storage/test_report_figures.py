"""The summary's figures are the database's own definitions, whoever computes them: each
duration's p50 and p90 are `percentile_cont` over the same rows (its n `count`, its mean
`avg`), for every group and for the whole period; and the whole period given beside its
groups (added up from them) is the period measured alone, for every metric and split."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from hub.domain import Channel
from storage import reports
from storage.reports import (
    CYCLES,
    DURATION,
    GROUPS,
    METRICS,
    PACKED_FLAGS,
    TOTAL,
    Ask,
    Query,
)

SINCE = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=7)
OPERATORS = (None, 11, 12, 12, 13, 13, 13, 14)  # drawn for each cycle: groups of every size
LONE = 15  # an operator with a single cycle


def _seconds(rng: random.Random, most: int, missing: float) -> float | None:
    """A duration in eighths of a second (sums are exact), or none at all."""
    return None if rng.random() < missing else rng.randint(0, most * 8) / 8


async def _fill(pool: asyncpg.Pool, channel: Channel) -> None:
    """Three hundred care cycles over the week (and a few outside it) with offers, customer
    waits, calls and presence, drawn from a fixed seed."""
    rng = random.Random(20261128)
    async with pool.acquire() as conn, conn.transaction():
        queues = [
            await conn.fetchval("INSERT INTO queues (name) VALUES ($1) RETURNING id", name)
            for name in ("sales", "support")
        ]
        channels = [
            channel.id,
            await conn.fetchval(
                """INSERT INTO channels (kind, name, settings)
                   VALUES ('form', 'shop', '{}') RETURNING id"""
            ),
        ]
        for n in range(320):
            started = SINCE + timedelta(seconds=n * 2000 - 20_000)  # some before the week
            kind = rng.choice(["form", "telegram", "call"])
            channel_id = rng.choice(channels)
            lead = await conn.fetchval(
                """INSERT INTO leads (name, created_at, source)
                   VALUES ('Customer', $1, jsonb_build_object('kind', $2::text,
                                                              'channel_id', $3::bigint))
                   RETURNING id""",
                started,
                kind,
                channel_id,
            )
            dialog = await conn.fetchval(
                """INSERT INTO dialogs (lead_id, channel_id, status, created_at)
                   VALUES ($1, $2, 'closed', $3) RETURNING id""",
                lead,
                channel_id,
                started,
            )
            operator = LONE if n == 100 else rng.choice(OPERATORS)
            waits = [_seconds(rng, m, p) for m, p in ((300, 0.1), (900, 0.2), (7200, 0.15))]
            at = [None if w is None else started + timedelta(seconds=w) for w in waits]
            cycle = await conn.fetchval(
                """INSERT INTO report_cycles (dialog_id, cycle, lead_id, channel_id, queue_id,
                                              held_by, started_at, first_assigned_at,
                                              first_response_at, first_response_via, closed_at,
                                              last_customer_at, last_reply_at, transfers,
                                              queue_wait_bh_s, first_response_bh_s,
                                              resolution_bh_s, lead_first, source)
                   VALUES ($1, $15, $2, $3, $4, $5, $6, $7, $8::timestamptz,
                           CASE WHEN $8 IS NOT NULL THEN 'message' END, $9, $10, $8, $11, $12,
                           $13, $14, $6::timestamptz >= $16::timestamptz, $17)
                   RETURNING id""",
                dialog,
                lead,
                channel_id,
                rng.choice([None, *queues]),
                operator,
                started,
                *at[:2],
                None if n % 11 == 5 else at[2],  # some never closed
                started + timedelta(seconds=rng.randint(0, 9000)),
                rng.randint(0, 1),
                *(_seconds(rng, 600, 0.3) for _ in range(3)),
                2 if n % 7 == 3 else 1,  # some began by reopening
                SINCE,  # each cycle in the week is its lead's first
                kind,  # the lead's first touch, kept with its facts as the fold keeps it
            )
            for i in range(rng.randint(0, 2)):
                await conn.execute(
                    """INSERT INTO report_responses (cycle_id, n, started_at, lead_id,
                                                     channel_id, operator_id, seconds, source)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                    cycle,
                    i + 1,
                    started,
                    lead,
                    channel_id,
                    operator,
                    _seconds(rng, 400, 0),
                    kind,
                )
            if operator is not None:
                await conn.execute(
                    """INSERT INTO report_offers (cycle_id, operator_id, offered_at, outcome,
                                                  channel_id, queue_id, source)
                       SELECT $1, $2, $3, $4, c.channel_id, c.queue_id, c.source
                         FROM report_cycles c WHERE c.id = $1""",
                    cycle,
                    operator,
                    started + timedelta(seconds=2),
                    rng.choice(["accepted", "accepted", "declined", "expired", None]),
                )
            if kind == "call":
                answered = rng.random() < 0.6
                await conn.execute(
                    """INSERT INTO report_calls (call_id, channel_id, lead_id, dialog_id,
                                                 direction, customer_phone, operator_id,
                                                 status, started_at, answered_at, talk_s,
                                                 source)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
                    n,
                    channel_id,
                    lead,
                    dialog,
                    rng.choice(["in", "in", "out"]),
                    f"+7916000{n % 40:04d}",
                    operator,
                    "answered" if answered else "missed",
                    started,
                    started + timedelta(seconds=5) if answered else None,
                    _seconds(rng, 600, 0) if answered else None,
                    kind,
                )
        for operator in (11, 12, 13):
            for day in range(8):
                start = SINCE + timedelta(days=day - 1, hours=rng.randint(6, 10))
                await conn.execute(
                    """INSERT INTO report_presence (operator_id, status, started_at, ended_at)
                       VALUES ($1, 'online', $2, $3), ($1, 'away', $3, $4)""",
                    operator,
                    start,
                    start + timedelta(hours=4),
                    start + timedelta(hours=5),
                )


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


async def test_durations_are_percentile_cont_over_the_raw_rows(
    pool: asyncpg.Pool, form: Channel
) -> None:
    await _fill(pool, form)
    durations = [m for m in METRICS.values() if m.kind == DURATION and m.source is CYCLES]
    q = Query(SINCE, UNTIL)
    (found,) = await reports.measure_all(pool, [Ask(q, durations, "operator", total=True)])

    expected: dict[Any, dict[str, Any]] = {}
    for m in durations:
        rows = await pool.fetch(
            f"""SELECT c.operator_id, GROUPING(c.operator_id) = 1 AS whole, count({m.sql}),
                       avg({m.sql}), percentile_cont(0.5) WITHIN GROUP (ORDER BY {m.sql}),
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY {m.sql})
                  FROM report_cycles c WHERE c.started_at >= $1 AND c.started_at < $2
                 GROUP BY GROUPING SETS ((c.operator_id), ())""",
            SINCE,
            UNTIL,
        )
        for key, whole, n, mean, p50, p90 in rows:
            expected.setdefault(TOTAL if whole else key, {})[m.name] = {
                "n": n,
                "mean": _round(mean),
                "p50": _round(p50),
                "p90": _round(p90),
            }
    assert set(found) == set(expected) == {TOTAL, None, 11, 12, 13, 14, LONE}
    assert found == expected
    assert found[LONE]["resolution_s"]["n"] == 1
    assert found[TOTAL]["resolution_s"]["n"] > 200


async def test_the_whole_period_beside_groups_is_the_period_alone(
    pool: asyncpg.Pool, form: Channel
) -> None:
    await _fill(pool, form)
    q = Query(SINCE, UNTIL)
    every = list(METRICS.values())
    splits = [*GROUPS, "date_trunc('day', {at} AT TIME ZONE {tz})"]
    (alone, *split) = await reports.measure_all(
        pool, [Ask(q, every), *(Ask(q, every, by, total=True) for by in splits)]
    )
    assert alone[TOTAL]["cycles"]["value"] > 250 and alone[TOTAL]["online_s"]["value"] > 0
    assert alone[TOTAL]["offers_missed_share"]["value"] is not None
    for by, found in zip(splits, split, strict=True):
        assert len(found) > 2, by  # groups, not only the whole
        # (By operator or queue, leads are counted through their first cycle: each cycle
        # here is its lead's first, so the counts agree.)
        assert found[TOTAL] == alone[TOTAL], by


async def test_packed_figures_are_the_metrics_own(pool: asyncpg.Pool, form: Channel) -> None:
    """A cycle's figures packed when it is written (report_cycles.figures) give every
    metric, for every split, exactly what the metric's own aggregate gives."""
    await _fill(pool, form)
    q = Query(SINCE, UNTIL)
    every = list(METRICS.values())
    splits = [*GROUPS, "date_trunc('day', {at} AT TIME ZONE {tz})"]
    asks = [Ask(q, every), *(Ask(q, every, by, total=True) for by in splits)]
    packed = await reports.measure_all(pool, asks)
    plain = await reports.measure_all(pool, asks, packing=False)
    assert packed == plain
    # Every condition both holds and fails somewhere, so each bit of the word was read.
    cycles = await pool.fetchval("SELECT count(*) FROM report_cycles")
    for condition in PACKED_FLAGS:
        held = await pool.fetchval(
            f"SELECT count(*) FILTER (WHERE {condition}) FROM report_cycles c"
        )
        assert 0 < held < cycles, condition


async def test_statements_judged_covered_are_index_only_scans(
    pool: asyncpg.Pool, form: Channel
) -> None:
    """A statement is left its index scan only where a covering index holds every column it
    reads (migrations 0028, 0029; `Source.covered`): judged so, PostgreSQL can read it from
    the index alone; judged not, it cannot. A summary's own statements are covered."""
    await _fill(pool, form)
    every = list(METRICS.values())
    week_before = Query(SINCE - timedelta(days=7), SINCE)
    asks = [
        Ask(Query(SINCE, UNTIL), every, "operator", total=True),
        Ask(week_before, every),
        *(Ask(Query(SINCE, UNTIL), every, by) for by in ("channel", "source")),
    ]
    summary = reports.statements(asks[:2])
    assert {s.source.name for s in summary if s.source.covered(s.sql)} == {
        "cycles",
        "responses",
        "offers",
        "leads",
    }
    judged = []
    async with pool.acquire() as conn, conn.transaction():
        # Only index scans left: an index-only one wherever the columns allow it.
        await conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        for s in [*reports.statements(asks), *reports.statements(asks, packing=False)]:
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {s.sql}", *s.args))
            only = re.search(rf"Index Only Scan using \w+ on {s.source.table}\b", plan)
            assert (only is not None) == s.source.covered(s.sql), (s.sql, plan)
            judged.append(s.source.covered(s.sql))
    assert True in judged and False in judged
