"""Routing latency: from an inbound Telegram webhook's arrival to the offer frame at an
operator's websocket, with 200 operators connected and messages at a steady rate.

The hub runs as its own process on the embedded PostgreSQL (or HUB_DATABASE_URL); 200
operators are connected from this process, each accepting what it is offered; a paced
sender posts documentation-shaped Updates from new customers (each a new lead and dialog)
to the webhook. Prints p50/p90/p99 of arrival→offer over the steady part of the run, and
the same for a bare baseline (bench/bare_fanout.py: aiohttp hands each webhook straight to
one of 200 `websockets` connections, no database, no routing), measured in the same run.

    python bench/routing.py [--rate 200] [--seconds 10] [--operators 200]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BOT_SECRET,
    HUB_CLI,
    ROOT,
    BenchDatabases,
    add_telegram_channel,
    free_port,
    hub_env,
    loop_name,
    start_bot_api,
    stop,
    wait_http,
)


async def setup_operators(dsn: str, count: int) -> list[str]:
    """Operators and session tokens straight into the database (200 argon2 logins would
    only measure argon2)."""
    conn = await asyncpg.connect(dsn)
    tokens = []
    try:
        for i in range(count):
            op_id = await conn.fetchval(
                "INSERT INTO operators (login, name, max_dialogs, password_hash) VALUES ($1, $2, 1000, 'x')"
                " RETURNING id",
                f"op{i}",
                f"Operator {i}",
            )
            token = "op_" + secrets.token_urlsafe(24)
            await conn.execute(
                "INSERT INTO operator_tokens (operator_id, token_hash, expires_at)"
                " VALUES ($1, $2, now() + interval '1 hour')",
                op_id,
                hashlib.sha256(token.encode()).hexdigest(),
            )
            tokens.append(token)
    finally:
        await conn.close()
    return tokens


async def measure(
    base: str,
    tokens: list[str],
    rate: int,
    seconds: int,
    ws_base: str | None = None,
    first_update: int = 1,
) -> tuple[list[float], int, int]:
    """`first_update`: the first update id (and customer) sent; a second run on the same
    database starts past the first's, or its updates are retries of the first's."""
    sent_at: dict[str, float] = {}
    answered: list[float] = []  # how long the webhook took to answer
    kinds: dict[str, int] = {}  # frames the operators received, by type
    latencies: list[tuple[float, float]] = []  # (sent time, latency)
    ready = asyncio.Event()
    connected = 0
    stop_at = [0.0]

    async def operator(session: aiohttp.ClientSession, token: str) -> None:
        nonlocal connected
        async with session.ws_connect(
            f"{(ws_base or base).replace('http', 'ws')}/ws/operator?token={token}"
        ) as ws:
            await ws.receive_str()  # hello
            await ws.send_str(json.dumps({"type": "presence", "status": "online"}))
            connected += 1
            if connected == len(tokens):
                ready.set()
            async for message in ws:
                now = time.perf_counter()
                frame = json.loads(message.data)
                kinds[frame["type"]] = kinds.get(frame["type"], 0) + 1
                if frame["type"] == "dialog.offered":
                    identities = (frame.get("lead") or {}).get("identities") or []
                    user = identities[0]["external_id"] if identities else None
                    if user in sent_at:
                        latencies.append((sent_at[user], now - sent_at[user]))
                    await ws.send_str(
                        json.dumps({"type": "accept", "dialog_id": frame["dialog"]["id"]})
                    )
                if stop_at[0] and now > stop_at[0] + 5:
                    break

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = [asyncio.create_task(operator(session, t)) for t in tokens]
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(3)  # presence settles
        errors = 0
        posted = 0

        async def post(update_id: int) -> None:
            nonlocal errors
            user = str(800000000 + update_id)
            body = {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "date": int(time.time()),
                    "from": {
                        "id": int(user),
                        "is_bot": False,
                        "first_name": "Ivan",
                        "language_code": "ru",
                    },
                    "chat": {"id": int(user), "type": "private", "first_name": "Ivan"},
                    "text": "Hello, I need help",
                },
            }
            sent_at[user] = time.perf_counter()
            try:
                async with session.post(
                    f"{base}/connectors/telegram/bot",
                    json=body,
                    headers={"X-Telegram-Bot-Api-Secret-Token": BOT_SECRET},
                ) as reply:
                    if reply.status != 200:
                        errors += 1
                    answered.append(time.perf_counter() - sent_at[user])
            except aiohttp.ClientError:
                errors += 1

        start = time.perf_counter()
        tasks = []
        for i in range(rate * seconds):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(first_update + i)))
            posted += 1
        await asyncio.gather(*tasks)
        stop_at[0] = time.perf_counter()
        await asyncio.sleep(3)
        for c in clients:
            c.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    warm = start + 2.0  # leave the first two seconds out
    answers = sorted(answered)
    if answers:
        print(
            f"  webhook answered in p50 {answers[len(answers) // 2] * 1000:.1f} ms,"
            f" p99 {answers[int(len(answers) * 0.99)] * 1000:.1f} ms; frames {kinds}"
        )
    return [lat for sent, lat in latencies if sent >= warm], errors, posted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--operators", type=int, default=200)
    args = parser.parse_args()
    bench = BenchDatabases("bench_route")
    work, dsns = bench.work, bench.dsns
    port = free_port()
    bot_api, api_base = start_bot_api()
    env = hub_env(dsns[0], work, HUB_PORT=str(port))
    add_telegram_channel(env, api_base)
    tokens = asyncio.run(setup_operators(dsns[0], args.operators))
    hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", hub)
        latencies, errors, posted = asyncio.run(
            measure(f"http://127.0.0.1:{port}", tokens, args.rate, args.seconds)
        )
    finally:
        stop(hub)
        stop(bot_api)
        bench.close()
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_fanout.py"), str(port)], cwd=ROOT
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", bare)
        baseline, bare_errors, bare_posted = asyncio.run(
            measure(
                f"http://127.0.0.1:{port}",
                tokens,
                args.rate,
                args.seconds,
                ws_base=f"http://127.0.0.1:{port + 1}",
            )
        )
    finally:
        stop(bare)
    print(
        f"routing latency, webhook arrival -> offer frame, {args.operators} operators, "
        f"{args.rate} messages/s for {args.seconds}s, event loop: {loop_name()}, {os.cpu_count()} cores"
    )
    hub_figures = _report("hub (store, route, offer)", latencies, errors, posted)
    bare_figures = _report("bare aiohttp -> websockets fan-out", baseline, bare_errors, bare_posted)
    print(
        f"  ratio hub / bare: p50 {hub_figures[0] / bare_figures[0]:.1f}x, "
        f"p99 {hub_figures[1] / bare_figures[1]:.1f}x"
    )


def _report(name: str, latencies: list[float], errors: int, posted: int) -> tuple[float, float]:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(p * len(ms)))] if ms else float("nan")

    print(
        f"  {name:38s} p50 {pct(0.50):6.1f} ms  p90 {pct(0.90):6.1f} ms  p99 {pct(0.99):6.1f} ms"
        f"  max {ms[-1] if ms else float('nan'):6.1f} ms  measured {len(ms)} of {posted}"
        f" (first 2 s left out), webhook errors {errors}"
    )
    return pct(0.50), pct(0.99)


if __name__ == "__main__":
    main()
