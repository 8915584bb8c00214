"""Reports on a year of history: the summary's latency and the CSV export's speed.

Fills the report facts with 1,000,000 care cycles over 365 days (200 operators, 10
channels, 5 queues; a daily rhythm, most answered within minutes, some never), an offer per
cycle, 100,000 calls and every operator's presence, then asks a running hub for
`GET /api/v1/reports/summary` of the last 30 days grouped by operator (every metric, and
the period before beside it), one request at a time, and streams the CSV export of 30 and
of 90 days.

    python bench/reports.py [--cycles 1000000] [--queries 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HUB_CLI,
    ROOT,
    BenchDatabases,
    Steal,
    free_port,
    hub_env,
    loop_name,
    stop,
    wait_http,
)

OPERATORS, CHANNELS, QUEUES = 200, 10, 5


async def fill(dsn: str, cycles: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # A synthetic past written straight into the facts: no events to fold.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute(
            """INSERT INTO operators (login, name, role, password_hash)
               SELECT 'op' || n, 'Operator ' || n, 'operator', 'x'
                 FROM generate_series(1, $1) AS n""",
            OPERATORS,
        )
        await conn.execute(
            """INSERT INTO channels (kind, name, settings)
               SELECT 'form', 'site' || n, '{}'::jsonb FROM generate_series(1, $1) AS n""",
            CHANNELS,
        )
        await conn.execute(
            """INSERT INTO queues (name, hours, timezone)
               SELECT 'queue' || n, 'mon-fri 09:00-18:00', 'Europe/Moscow'
                 FROM generate_series(1, $1) AS n""",
            QUEUES,
        )
        # Starts spread over a year with a daily rhythm (more by day than by night).
        await conn.execute(
            """CREATE TEMP TABLE starts AS
               SELECT n, now() - interval '365 days'
                         + (n::float8 / $1) * interval '365 days'
                         + ((random() - 0.5) * 6) * interval '1 hour' AS at,
                      random() AS r1, random() AS r2, random() AS r3
                 FROM generate_series(1, $1) AS n""",
            cycles,
        )
        await conn.execute(
            """INSERT INTO leads (id, name, created_at, source)
               SELECT n, 'Customer ' || n, at,
                      jsonb_build_object('kind', (ARRAY['form','telegram','vk','call','email'])[1 + n % 5],
                                         'channel_id', 1 + n % $1)
                 FROM starts""",
            CHANNELS,
        )
        await conn.execute(
            """INSERT INTO dialogs (id, lead_id, channel_id, status, created_at, closed_at)
               SELECT n, n, 1 + n % $1, 'closed', at, at + interval '1 hour' FROM starts""",
            CHANNELS,
        )
        await conn.execute(
            """INSERT INTO report_cycles (dialog_id, cycle, lead_id, channel_id, queue_id,
                                          held_by, started_at, first_assigned_at,
                                          first_response_at, first_response_by,
                                          first_response_via, closed_at, last_customer_at,
                                          last_reply_at, next_response_s, messages_in,
                                          messages_out, offers, transfers, queue_wait_bh_s,
                                          first_response_bh_s, resolution_bh_s, lead_first,
                                          source)
               SELECT n, 1, n, 1 + n % $1, 1 + n % $2, 1 + (n::bigint * 7919) % $3, at,
                      CASE WHEN r1 < 0.95 THEN at + r2 * interval '3 minutes' END,
                      CASE WHEN r1 < 0.90 THEN at + (r2 * r2 * 20 + 0.2) * interval '1 minute' END,
                      CASE WHEN r1 < 0.90 THEN 1 + (n::bigint * 7919) % $3 END,
                      CASE WHEN r1 < 0.90 THEN 'message' END,
                      at + (10 + r3 * 120) * interval '1 minute',
                      at + r3 * interval '30 minutes', at + r3 * interval '25 minutes',
                      CASE WHEN r3 < 0.5 THEN ARRAY[r2 * 300, r3 * 90] ELSE '{}' END,
                      1 + (n % 6), (n % 5), 1, (r3 < 0.05)::int,
                      CASE WHEN r1 < 0.95 THEN r2 * 180 END,
                      CASE WHEN r1 < 0.90 THEN (r2 * r2 * 20 + 0.2) * 60 END,
                      (10 + r3 * 120) * 60, true,
                      (ARRAY['form','telegram','vk','call','email'])[1 + n % 5]
                 FROM starts""",
            CHANNELS,
            QUEUES,
            OPERATORS,
        )
        await conn.execute(
            """INSERT INTO report_responses (cycle_id, n, started_at, lead_id, channel_id,
                                             queue_id, operator_id, seconds, source)
               SELECT c.id, x.n, c.started_at, c.lead_id, c.channel_id, c.queue_id,
                      c.operator_id, x.s, c.source
                 FROM report_cycles c, unnest(c.next_response_s) WITH ORDINALITY AS x(s, n)"""
        )
        await conn.execute(
            """INSERT INTO report_offers (cycle_id, operator_id, offered_at, outcome, ended_at,
                                          channel_id, queue_id, source)
               SELECT c.id, c.held_by, c.started_at + interval '2 seconds',
                      CASE WHEN c.id % 10 = 0 THEN 'expired' WHEN c.id % 17 = 0 THEN 'declined'
                           ELSE 'accepted' END,
                      c.started_at + interval '20 seconds', c.channel_id, c.queue_id, c.source
                 FROM report_cycles c WHERE c.first_assigned_at IS NOT NULL"""
        )
        await conn.execute(
            """INSERT INTO calls (id, channel_id, provider_call_id, direction, customer_phone,
                                  status, started_at)
               SELECT n, 1, 'bench-' || n, CASE WHEN n % 4 = 0 THEN 'out' ELSE 'in' END,
                      '+7916' || lpad((n % 60000)::text, 7, '0'),
                      CASE WHEN n % 5 = 0 THEN 'missed' ELSE 'answered' END, at
                 FROM starts WHERE n % 10 = 0"""
        )
        await conn.execute(
            """INSERT INTO report_calls (call_id, channel_id, lead_id, dialog_id, direction,
                                         customer_phone, operator_id, status, started_at,
                                         answered_at, ended_at, talk_s, source)
               SELECT k.id, k.channel_id, k.id, k.id, k.direction, k.customer_phone,
                      1 + k.id % $1, k.status, k.started_at,
                      CASE WHEN k.status = 'answered' THEN k.started_at + interval '9 seconds' END,
                      k.started_at + interval '3 minutes',
                      CASE WHEN k.status = 'answered' THEN 171 END,
                      l.source->>'kind'
                 FROM calls k JOIN leads l ON l.id = k.id""",
            OPERATORS,
        )
        # The table's triggers are off while filling (replica): each call's next answered
        # call with its number, as the trigger of migration 0030 keeps it.
        await conn.execute(
            """UPDATE report_calls k
                  SET followed_at = report_calls_next_answered(k.customer_phone, k.started_at)"""
        )
        await conn.execute(
            """INSERT INTO report_presence (operator_id, status, started_at, ended_at)
               SELECT o, CASE WHEN part = 0 THEN 'online' ELSE 'away' END,
                      d + interval '9 hours' + part * interval '4 hours',
                      d + interval '13 hours' + part * interval '1 hour'
                 FROM generate_series(1, $1) AS o,
                      generate_series(now() - interval '365 days', now(), interval '1 day') AS d,
                      generate_series(0, 1) AS part""",
            OPERATORS,
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT max(id) FROM leads))"
            " FROM unnest(ARRAY['leads', 'dialogs']) AS t"
        )
        # A database in service is kept vacuumed; measured right after a bulk load it would
        # be autovacuum's first pass over a million rows that the summaries compete with.
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


async def summaries(base: str, key: str, n: int, since: str, until: str) -> list[float]:
    took = []
    params = {"from": since, "to": until, "group_by": "operator", "tz": "Europe/Moscow"}
    async with aiohttp.ClientSession(
        base_url=base, headers={"Authorization": f"Bearer {key}"}
    ) as s:
        for i in range(n + 2):
            started = time.perf_counter()
            async with s.get("/api/v1/reports/summary", params=params) as reply:
                body = await reply.json()
                if reply.status != 200:
                    raise RuntimeError(f"{reply.status} {body}")
            if i >= 2:  # the first two warm the caches
                took.append((time.perf_counter() - started) * 1000)
            assert len(body["groups"]) == OPERATORS, len(body["groups"])
    return sorted(took)


async def export(base: str, key: str, since: str, until: str) -> tuple[int, float, int]:
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/csv"}
    params = {"from": since, "to": until, "tz": "Europe/Moscow"}
    async with aiohttp.ClientSession(base_url=base, headers=headers) as s:
        started = time.perf_counter()
        async with s.get("/api/v1/reports/dialogs", params=params) as reply:
            size, lines = 0, 0
            async for chunk in reply.content.iter_chunked(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
        return lines - 1, time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    bench = BenchDatabases("bench_reports")
    dsn = bench.dsns[0]
    port = free_port()
    env = hub_env(dsn, bench.work, HUB_PORT=str(port))
    hub = None
    try:
        subprocess.run([*HUB_CLI, "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
        key = subprocess.run(
            [*HUB_CLI, "apikey", "create", "bench", "--scopes", "reports"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        started = time.perf_counter()
        asyncio.run(fill(dsn, args.cycles))
        filled = time.perf_counter() - started
        hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", hub)
        today = datetime.now(UTC).date()
        month = ((today - timedelta(days=29)).isoformat(), today.isoformat())
        quarter = ((today - timedelta(days=89)).isoformat(), today.isoformat())
        steal = Steal()
        took = asyncio.run(summaries(base, key, args.queries, *month))
        stolen = steal.share()
        exports = [asyncio.run(export(base, key, *p)) for p in (month, quarter)]
    finally:
        if hub is not None:
            stop(hub)
        bench.close()

    print(f"reports, event loop: {loop_name()}, {os.cpu_count()} cores")
    print(
        f"  {args.cycles:,} cycles over 365 days, {OPERATORS} operators (filled in {filled:.0f} s)"
    )
    print(
        f"  summary, 30 days grouped by operator, every metric and the period before:"
        f" p50 {statistics.median(took):.0f} ms, max {took[-1]:.0f} ms over {len(took)} requests"
        f" (target < 300 ms; the hypervisor took {stolen:.0%} of the CPU meanwhile)"
    )
    for (rows, seconds, size), days in zip(exports, (30, 90), strict=True):
        print(
            f"  CSV export, {days} days: {rows:,} rows in {seconds:.2f} s ="
            f" {rows / seconds:,.0f} rows/s ({size / seconds / 1e6:.1f} MB/s)"
        )


if __name__ == "__main__":
    main()
