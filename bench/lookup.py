"""Lead lookup by phone, as a PBX or a CRM asks it, with a million leads.

Fills the database with 1,000,000 leads (a phone each, some with a second), then asks a
running hub `GET /api/v1/leads?phone=…` one request at a time, each number written as a
person writes it (`8 (916) 123-45-67`), and prints p50/p99. Beside it, in the same run: the
bare indexed SELECT (the E.164 number already in hand, straight through asyncpg on one
connection, no HTTP), the floor of any lookup.

    python bench/lookup.py [--leads 1000000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HUB_CLI,
    ROOT,
    BenchDatabases,
    free_port,
    hub_cli,
    hub_env,
    loop_name,
    stop,
    wait_http,
)


async def fill(dsn: str, leads: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # A synthetic past: no domain events or webhooks for it.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            "INSERT INTO leads (name) SELECT 'Lead ' || n FROM generate_series(1, $1) AS n",
            leads,
        )
        await conn.execute(
            """INSERT INTO lead_phones (lead_id, phone)
               SELECT id, '+7916' || lpad(id::text, 7, '0') FROM leads;
               INSERT INTO lead_phones (lead_id, phone)
               SELECT id, '+7495' || lpad(id::text, 7, '0') FROM leads WHERE id % 10 = 0;
               ANALYZE"""
        )
    finally:
        await conn.close()


def numbers(n: int, leads: int) -> list[tuple[str, str]]:
    """(as a person writes it, as stored) for leads drawn at random."""
    rng = random.Random(3)
    picked = [f"{rng.randint(1, leads):07d}" for _ in range(n)]
    return [(f"8 (916) {d[:3]}-{d[3:5]}-{d[5:]}", f"+7916{d}") for d in picked]


async def through_api(base: str, key: str, asked: list[tuple[str, str]]) -> list[float]:
    took = []
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(base_url=base, headers=headers) as session:
        for written, _ in asked[:50]:  # warm the connection, the plans and the caches
            async with session.get("/api/v1/leads", params={"phone": written}) as reply:
                await reply.read()
        for written, stored in asked:
            started = time.perf_counter()
            async with session.get("/api/v1/leads", params={"phone": written}) as reply:
                body = await reply.json()
            took.append((time.perf_counter() - started) * 1000)
            if reply.status != 200 or stored not in body["items"][0]["phones"]:
                raise RuntimeError(f"{written!r}: {reply.status} {body}")
    return sorted(took)


async def bare_select(dsn: str, asked: list[tuple[str, str]]) -> list[float]:
    took = []
    conn = await asyncpg.connect(dsn)
    try:
        query = """SELECT l.id, l.name FROM lead_phones p JOIN leads l ON l.id = p.lead_id
                   WHERE p.phone = $1"""
        for _, stored in asked[:50]:
            await conn.fetch(query, stored)
        for _, stored in asked:
            started = time.perf_counter()
            rows = await conn.fetch(query, stored)
            took.append((time.perf_counter() - started) * 1000)
            assert rows
    finally:
        await conn.close()
    return sorted(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    bench = BenchDatabases("bench_lookup")
    dsn = bench.dsns[0]
    port = free_port()
    env = hub_env(dsn, bench.work, HUB_PORT=str(port))
    hub = None
    try:
        hub_cli(env, "migrate")
        key = hub_cli(env, "apikey", "create", "bench")
        started = time.perf_counter()
        asyncio.run(fill(dsn, args.leads))
        filled = time.perf_counter() - started
        hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", hub)
        asked = numbers(args.queries, args.leads)
        api = asyncio.run(through_api(base, key, asked))
        bare = asyncio.run(bare_select(dsn, asked))
    finally:
        if hub is not None:
            stop(hub)
        bench.close()

    def pct(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))]

    print(f"lead lookup by phone, event loop: {loop_name()}, {os.cpu_count()} cores")
    print(
        f"  {args.leads:,} leads ({filled:.0f} s to fill); {args.queries} numbers written"
        " as people write them, one request at a time:"
    )
    print(
        f"    hub GET /api/v1/leads?phone=  p50 {pct(api, 0.5):5.2f} ms"
        f"   p99 {pct(api, 0.99):5.2f} ms   (target p99 < 5 ms)"
    )
    print(
        f"    bare indexed SELECT           p50 {pct(bare, 0.5):5.2f} ms"
        f"   p99 {pct(bare, 0.99):5.2f} ms   (no HTTP, number already E.164)"
    )
    print(f"    p50 ratio hub / bare: {pct(api, 0.5) / pct(bare, 0.5):.1f}x the time")


if __name__ == "__main__":
    main()
