"""Webhook delivery: how fast the hub delivers to a CRM's endpoint, against a plain client.

The hub runs as its own process (embedded PostgreSQL, or HUB_DATABASE_URL) with one
subscription to a local receiver (bench/webhook_receiver.py). Events are written to the
event log in one statement (each a different lead, as a busy day's first contacts); the
deliveries it makes go out through the dispatcher, signed, each recorded. Baseline: a plain
aiohttp client POSTing the same number of bodies to the same receiver with the same
concurrency (16), measured in the same run. Then events are written one at a time at a
steady rate, and the receiver reports how long after its event each delivery arrived.

    python bench/webhooks.py [--events 3000] [--rate 50] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
    hub_env,
    loop_name,
    stop,
    wait_http,
)

CONCURRENCY = 16  # the dispatcher's attempts at once to one subscriber


async def _write_events(dsn: str, count: int, first_lead: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """INSERT INTO domain_events (type, lead_id, lead_seq, actor, data)
               SELECT 'lead.created', $2 + n, 1, 'customer', jsonb_build_object('channel_id', 1)
               FROM generate_series(1, $1) AS n""",
            count,
            first_lead,
        )
    finally:
        await conn.close()


async def _stats(receiver: str, what: str = "stats") -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(f"{receiver}/{what}") as reply:
        stats: dict[str, object] = await reply.json()
        return stats


async def _reset(receiver: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{receiver}/reset") as reply:
        reply.raise_for_status()


async def hub_rate(dsn: str, receiver: str, count: int) -> float:
    await _reset(receiver)
    start = time.time()
    await _write_events(dsn, count, 10**6)
    deadline = start + 300
    while time.time() < deadline:
        stats = await _stats(receiver)
        if int(str(stats["received"])) >= count:
            return count / (float(str(stats["last_at"])) - start)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{count} deliveries did not arrive in 300 s")


async def bare_rate(receiver: str, count: int) -> float:
    body = b'{"type":"lead.created","timestamp":"x","data":{"lead_id":1}}'
    left = iter(range(count))
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for _ in left:
                async with session.post(
                    f"{receiver}/hooks", data=body, headers={"Content-Type": "application/json"}
                ) as reply:
                    await reply.read()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - start)


async def latency(dsn: str, receiver: str, rate: int, seconds: int) -> list[float]:
    await _reset(receiver)
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        for i in range(rate * seconds):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await conn.execute(
                "INSERT INTO domain_events (type, lead_id, lead_seq, actor) VALUES ('lead.created', $1, 1, 'customer')",
                2 * 10**6 + i,
            )
    finally:
        await conn.close()
    await asyncio.sleep(2)
    values = (await _stats(receiver, "latencies"))["latencies"]
    assert isinstance(values, list)
    return sorted(float(v) * 1000 for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    bench = BenchDatabases("bench_hooks")
    dsn = bench.dsns[0]
    port, receiver_port = free_port(), free_port()
    receiver = f"http://127.0.0.1:{receiver_port}"
    env = hub_env(dsn, bench.work, HUB_PORT=str(port), HUB_WEBHOOK_ALLOW_PRIVATE="1")
    sink = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "webhook_receiver.py"), str(receiver_port)], cwd=ROOT
    )
    hub = None
    try:
        wait_http(f"{receiver}/healthz", sink)
        subprocess.run([*HUB_CLI, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            [*HUB_CLI, "webhook", "add", f"{receiver}/hooks"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{port}/healthz", hub)
        hub_per_s = asyncio.run(hub_rate(dsn, receiver, args.events))
        bare_per_s = asyncio.run(bare_rate(receiver, args.events))
        lat = asyncio.run(latency(dsn, receiver, args.rate, args.seconds))
    finally:
        if hub is not None:
            stop(hub)
        stop(sink)
        bench.close()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    print(
        f"webhook delivery to a local receiver, event loop: {loop_name()}, {os.cpu_count()} cores"
    )
    print(f"  {args.events} events written at once, {CONCURRENCY} requests at a time:")
    print(f"    hub (signed, in order per lead, each recorded)   {hub_per_s:7.0f} deliveries/s")
    print(f"    plain aiohttp client POST loop                  {bare_per_s:7.0f} requests/s")
    print(f"    ratio hub / plain: {hub_per_s / bare_per_s:.2f}   (target >= 0.7)")
    print(
        f"  event -> delivery at {args.rate} events/s for {args.seconds} s:"
        f" p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms"
        f" ({len(lat)} delivered)"
    )


if __name__ == "__main__":
    main()
