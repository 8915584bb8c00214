"""The fact builder's look past its cursor reads a few pages, however long the event log
(migration 0031): it runs at every wake-up and before every report, and a scan of the log
from its first row (what PostgreSQL chose over the block-range index before) grows with
every event ever written."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from storage import report_facts

LOG = 30_000  # events already folded: some 300 pages of log


async def _pages(conn: asyncpg.pool.PoolConnectionProxy[Any], sql: str, *args: Any) -> int:
    """Shared pages a statement touched, from its plan as run."""
    plan = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args))[
        0
    ]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


async def test_the_cursor_reads_a_few_pages_of_a_long_log(pool: asyncpg.Pool) -> None:
    await pool.execute(
        """INSERT INTO domain_events (type, actor, data)
           SELECT 'operator.presence_changed', 'system', '{"status": "online"}'
             FROM generate_series(1, $1)""",
        LOG,
    )
    # All of it folded: the cursor at the last event.
    await pool.execute(
        """UPDATE report_cursor SET (txid, event_id) =
               (SELECT txid, id FROM domain_events ORDER BY txid DESC, id DESC LIMIT 1)"""
    )
    await pool.execute("ANALYZE domain_events")
    log_pages = await pool.fetchval(
        "SELECT pg_relation_size('domain_events') / current_setting('block_size')::int"
    )
    assert log_pages > 200
    assert (await report_facts.pending(pool)).events is False
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT txid, event_id FROM report_cursor")
        assert row is not None
        txid, event_id = row["txid"], row["event_id"]
        assert await _pages(conn, report_facts.PENDING) < 20
        assert await _pages(conn, report_facts.FINAL_EVENTS, txid, event_id, 2000) < 20

        # Ten new events, committed: found, and read from the cursor on.
        await conn.execute(
            """INSERT INTO domain_events (type, actor, data)
               SELECT 'operator.presence_changed', 'system', '{"status": "away"}'
                 FROM generate_series(1, 10)"""
        )
        assert (await report_facts.pending(pool)).events is True
        assert await _pages(conn, report_facts.PENDING) < 20
        assert await _pages(conn, report_facts.FINAL_EVENTS, txid, event_id, 2000) < 20
        found = await report_facts.final_events(conn, txid, event_id, 2000)
        assert [e.data["status"] for _, e in found] == ["away"] * 10
