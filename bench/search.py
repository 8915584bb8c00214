"""Search on a big history: the search endpoint's latency for each kind of query.

Fills the database with 100,000 leads (a name, a phone, an email each) and 1,000,000
messages of everyday words (a few common, most rare, as in real chats), then asks
`GET /api/v1/search` of a running hub, one request at a time, for names, phone numbers in
another format than stored, emails, and words of messages, and prints p50/p99 per kind.

    python bench/search.py [--leads 100000] [--messages 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HUB_CLI,
    ROOT,
    BenchDatabases,
    free_port,
    hub_env,
    loop_name,
    stop,
    wait_http,
)

FIRST = [
    "Иван",
    "Пётр",
    "Анна",
    "Мария",
    "Ольга",
    "Сергей",
    "Алексей",
    "Дмитрий",
    "Елена",
    "Наталья",
    "John",
    "Mary",
    "Anna",
    "Peter",
    "Olga",
]
LAST = [
    "Иванов",
    "Петров",
    "Сидоров",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Smith",
    "Brown",
    "Taylor",
]
SYLLABLES = [
    "ка",
    "ло",
    "ми",
    "ра",
    "сто",
    "ве",
    "ду",
    "на",
    "по",
    "ре",
    "ти",
    "ша",
    "ze",
    "ro",
    "la",
    "mi",
    "to",
    "ka",
    "ve",
    "ni",
]


def vocabulary(size: int = 5000) -> list[str]:
    """Made-up words; drawn with weights 1/rank, so a few are in many messages."""
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))))
    return sorted(words, key=lambda w: (len(w), w))


def messages(
    count: int, leads: int, channel: int, words: list[str]
) -> Iterator[tuple[object, ...]]:
    rng = random.Random(11)
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    start = datetime.now(UTC) - timedelta(days=365)
    for n in range(count):
        lead = n % leads + 1
        text = " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(4, 20)))
        yield (
            lead,
            lead,
            channel,
            "form",
            "in" if n % 3 else "out",
            text,
            start + timedelta(seconds=n * 30),
            f"bench-{n}",
        )


async def fill(dsn: str, leads: int, count: int, words: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # A synthetic past: no domain events or webhooks for it.
        await conn.execute("SET session_replication_role = replica")
        channel = await conn.fetchval("SELECT id FROM channels WHERE name = 'site'")
        await conn.execute(
            """INSERT INTO leads (name)
               SELECT ($2::text[])[1 + n % cardinality($2)] || ' ' || ($3::text[])[1 + n % cardinality($3)]
               FROM generate_series(1, $1) AS n""",
            leads,
            FIRST,
            LAST,
        )
        await conn.execute(
            """INSERT INTO lead_phones (lead_id, phone)
               SELECT id, '+7916' || lpad(id::text, 7, '0') FROM leads;
               INSERT INTO lead_emails (lead_id, email)
               SELECT id, 'client' || id || '@mail' || (id % 20) || '.example' FROM leads;
               """
        )
        await conn.execute(
            """INSERT INTO dialogs (lead_id, channel_id, status, closed_at)
               SELECT id, $1, 'closed', now() FROM leads""",
            channel,
        )
        # The message-search index is built once after the copy, as a restore would.
        index = await conn.fetchval("SELECT pg_get_indexdef('interactions_search'::regclass)")
        await conn.execute("DROP INDEX interactions_search")
        await conn.copy_records_to_table(
            "interactions",
            records=messages(count, leads, channel, words),
            columns=[
                "lead_id",
                "dialog_id",
                "channel_id",
                "kind",
                "direction",
                "text",
                "occurred_at",
                "external_id",
            ],
        )
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute(index)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def queries(kind: str, n: int, leads: int, words: list[str]) -> list[str]:
    rng = random.Random(kind)
    if kind == "name":
        return [rng.choice(LAST)[: rng.randint(4, 8)] for _ in range(n)]
    if kind == "phone":  # stored as +7916NNNNNNN, asked as a person writes it
        numbers = [f"{rng.randint(1, leads):07d}" for _ in range(n)]
        return [f"8 (916) {d[:3]}-{d[3:5]}-{d[5:]}" for d in numbers]
    if kind == "email":
        return [f"client{(i := rng.randint(1, leads))}@mail{i % 20}.example" for _ in range(n)]
    # Words of a message: one common, one rare, or two together.
    common, rare = words[:50], words[50:]
    picks = (lambda: rng.choice(common), lambda: rng.choice(rare))
    return [" ".join(rng.choice(picks)() for _ in range(rng.randint(1, 2))) for _ in range(n)]


async def measure(base: str, key: str, asked: list[str]) -> list[tuple[float, str]]:
    took = []
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(base_url=base, headers=headers) as session:
        for q in asked[:5]:  # warm the connection and the caches
            async with session.get("/api/v1/search", params={"q": q}) as reply:
                await reply.read()
        for q in asked:
            started = time.perf_counter()
            async with session.get("/api/v1/search", params={"q": q}) as reply:
                await reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"{q!r}: {reply.status} {await reply.text()}")
            took.append(((time.perf_counter() - started) * 1000, q))
    return sorted(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    bench = BenchDatabases("bench_search")
    dsn = bench.dsns[0]
    port = free_port()
    env = hub_env(dsn, bench.work, HUB_PORT=str(port))
    words = vocabulary()
    hub = None
    try:
        subprocess.run([*HUB_CLI, "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
        subprocess.run(
            [*HUB_CLI, "channel", "add", "form", "site"],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        key = subprocess.run(
            [*HUB_CLI, "apikey", "create", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        started = time.perf_counter()
        asyncio.run(fill(dsn, args.leads, args.messages, words))
        filled = time.perf_counter() - started
        hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", hub)
        results = {
            kind: asyncio.run(measure(base, key, queries(kind, args.queries, args.leads, words)))
            for kind in ("name", "phone", "email", "text")
        }
    finally:
        if hub is not None:
            stop(hub)
        bench.close()

    def pct(values: list[tuple[float, str]], p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))][0]

    print(f"search, event loop: {loop_name()}, {os.cpu_count()} cores")
    print(
        f"  {args.leads} leads, {args.messages} messages (filled in {filled:.0f} s);"
        f" {args.queries} queries of each kind, one at a time:"
    )
    for kind, took in results.items():
        slowest = ", ".join(f"{q!r} {ms:.0f} ms" for ms, q in took[-2:])
        print(
            f"    {kind:6} p50 {pct(took, 0.5):6.1f} ms   p99 {pct(took, 0.99):6.1f} ms"
            f"   mean {statistics.mean(ms for ms, _ in took):6.1f} ms   slowest: {slowest}"
        )
    print("  target: well under 100 ms")


if __name__ == "__main__":
    main()
