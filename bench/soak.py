"""A soak run: mixed traffic for minutes, watching the hub's memory and connections.

The hub runs as its own process (embedded PostgreSQL, or HUB_DATABASE_URL) with a site form,
a Telegram channel (webhook mode, on bench/fake_bot_api.py) and 20 operators connected on
websockets, each accepting what it is offered, answering it (the reply goes out through
the Bot API stand-in, or is kept undeliverable for a form without an address) and closing
it. Customers write at a steady rate, half through the form and half on Telegram, from a
pool of 5,000 people, so leads are both new and returning and dialogs reopen. Every
`--sample-s` seconds it records the hub's resident memory, open files and sockets, the
database's sessions, and every error seen (an answer other than the expected one, an
error frame); at the end it prints them over time and says whether memory grew.

    python bench/soak.py [--minutes 10] [--rate 20] [--operators 20] [--sample-s 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BOT_SECRET,
    HUB_CLI,
    ROOT,
    BenchDatabases,
    add_telegram_channel,
    free_port,
    hub_cli,
    hub_env,
    loop_name,
    start_bot_api,
    stop,
    wait_http,
)
from bench.routing import setup_operators

CUSTOMERS = 5000


@dataclass
class Tally:
    posted: int = 0
    replied: int = 0
    closed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mib: float
    files: int
    sockets: int
    db_sessions: int
    posted: int
    closed: int
    errors: int


def _update(n: int, user: int) -> dict[str, object]:
    return {
        "update_id": n,
        "message": {
            "message_id": n,
            "date": int(time.time()),
            "from": {"id": user, "is_bot": False, "first_name": "Ivan", "language_code": "ru"},
            "chat": {"id": user, "type": "private", "first_name": "Ivan"},
            "text": "Hello, I need help with my order",
        },
    }


async def operator(
    session: aiohttp.ClientSession, ws_url: str, token: str, tally: Tally, done: asyncio.Event
) -> None:
    async with session.ws_connect(f"{ws_url}?token={token}") as ws:
        await ws.receive_str()  # hello
        await ws.send_str(json.dumps({"type": "presence", "status": "online"}))
        while not done.is_set():
            try:
                message = await asyncio.wait_for(ws.receive(), 1.0)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                tally.errors.append(f"operator socket ended: {message.type.name}")
                return
            frame = json.loads(message.data)
            kind = frame["type"]
            if kind == "dialog.offered":
                await ws.send_str(
                    json.dumps({"type": "accept", "dialog_id": frame["dialog"]["id"]})
                )
            elif kind == "dialog.assigned":
                dialog_id = frame["dialog"]["id"]
                await ws.send_str(
                    json.dumps({"type": "send", "dialog_id": dialog_id, "text": "Thank you!"})
                )
                await ws.send_str(json.dumps({"type": "close", "dialog_id": dialog_id}))
            elif kind == "sent":
                tally.replied += 1
            elif kind == "dialog.closed":
                tally.closed += 1
            elif kind == "error" and frame.get("code") not in ("offer_gone", "not_yours"):
                # An offer taken by another operator first, or a dialog a customer reopened
                # after its close was sent, is the ordinary race of a busy queue.
                tally.errors.append(f"error frame {frame.get('code')}")


async def customers(base: str, rate: int, seconds: float, tally: Tally) -> None:
    rng = random.Random(5)
    async with aiohttp.ClientSession(base_url=base) as session:

        async def post(n: int) -> None:
            who = rng.randrange(CUSTOMERS)
            try:
                if n % 2:
                    body = {"name": f"Client {who}", "phone": f"+7917{who:07d}", "message": "hi"}
                    async with session.post("/forms/site", json=body) as reply:
                        ok = reply.status in (200, 201)
                else:
                    headers = {"X-Telegram-Bot-Api-Secret-Token": BOT_SECRET}
                    update = _update(n, 700000000 + who)
                    async with session.post(
                        "/connectors/telegram/bot", json=update, headers=headers
                    ) as reply:
                        ok = reply.status == 200
                if not ok:
                    tally.errors.append(f"HTTP {reply.status} {(await reply.text())[:200]}")
            except aiohttp.ClientError as exc:
                tally.errors.append(f"{type(exc).__name__}: {exc}")
            tally.posted += 1

        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while time.perf_counter() - start < seconds:
            n += 1
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(post(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


async def soak(
    base: str, dsn: str, tokens: list[str], hub: psutil.Process, args: argparse.Namespace
) -> tuple[list[Sample], Tally]:
    tally = Tally()
    done = asyncio.Event()
    samples: list[Sample] = []
    seconds = args.minutes * 60
    ws_url = base.replace("http", "ws") + "/ws/operator"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        desks = [asyncio.create_task(operator(session, ws_url, t, tally, done)) for t in tokens]
        await asyncio.sleep(2)
        traffic = asyncio.create_task(customers(base, args.rate, seconds, tally))
        conn = await asyncpg.connect(dsn)
        try:
            start = time.perf_counter()
            while not traffic.done():
                await asyncio.wait([traffic], timeout=args.sample_s)
                sessions = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )
                samples.append(
                    Sample(
                        at_s=time.perf_counter() - start,
                        rss_mib=hub.memory_info().rss / 2**20,
                        files=hub.num_fds(),
                        sockets=len(hub.net_connections(kind="inet")),
                        db_sessions=int(sessions) - 1,  # not this one
                        posted=tally.posted,
                        closed=tally.closed,
                        errors=len(tally.errors),
                    )
                )
            await traffic
        finally:
            await conn.close()
        done.set()
        await asyncio.gather(*desks)
    return samples, tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=20, help="customer messages a second")
    parser.add_argument("--operators", type=int, default=20)
    parser.add_argument("--sample-s", type=float, default=15)
    args = parser.parse_args()
    bench = BenchDatabases("bench_soak")
    dsn = bench.dsns[0]
    port = free_port()
    env = hub_env(dsn, bench.work, HUB_PORT=str(port))
    bot_api, api_base = start_bot_api()
    hub = None
    try:
        hub_cli(env, "migrate")
        hub_cli(env, "channel", "add", "form", "site", "--set", "rate_limit=0")
        add_telegram_channel(env, api_base)
        tokens = asyncio.run(setup_operators(dsn, args.operators))
        hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", hub)
        samples, tally = asyncio.run(soak(base, dsn, tokens, psutil.Process(hub.pid), args))
    finally:
        if hub is not None:
            stop(hub)
        stop(bot_api)
        bench.close()

    print(f"soak, event loop: {loop_name()}, {os.cpu_count()} cores")
    print(
        f"  {args.minutes:g} min, {args.rate} customer messages/s (form and Telegram),"
        f" {args.operators} operators accepting, answering and closing:"
    )
    print("    at      RSS MiB  files  sockets  db sessions  posted  closed  errors")
    for s in samples:
        print(
            f"    {s.at_s:5.0f} s {s.rss_mib:8.1f} {s.files:6d} {s.sockets:8d}"
            f" {s.db_sessions:12d} {s.posted:7d} {s.closed:7d} {s.errors:7d}"
        )
    print(
        f"  posted {tally.posted}, replies sent {tally.replied}, dialogs closed {tally.closed},"
        f" errors {len(tally.errors)}"
    )
    for error in sorted(set(tally.errors))[:10]:
        print(f"    error: {error} (x{tally.errors.count(error)})")
    # Memory after the first minute (caches, pools and the allocator fill up) against the
    # last minute's: a leak grows steadily; a plateau stays within a few percent.
    per_minute = max(1, int(60 / args.sample_s))
    early = [s.rss_mib for s in samples[per_minute : 2 * per_minute]] or [samples[0].rss_mib]
    late = [s.rss_mib for s in samples[-per_minute:]]
    growth = statistics.median(late) / statistics.median(early) - 1
    verdict = "grows" if growth > 0.10 else "flat"
    print(
        f"  memory: {statistics.median(early):.1f} MiB in minute 2, {statistics.median(late):.1f}"
        f" MiB in the last: {growth * 100:+.1f} % ({verdict})"
    )


if __name__ == "__main__":
    main()
