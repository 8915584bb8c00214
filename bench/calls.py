"""Telephony: call events through the generic (Zammad-style) endpoint, end to end.

The hub runs as its own process on the embedded PostgreSQL (or HUB_DATABASE_URL), with a
generic pbx channel and 200 operators, each with an extension, connected on websockets.

1. Screen-pop latency: `newCall` events at a steady rate, each ringing one operator's
   extension from a new number (a new lead each), then answered and hung up; the time from
   sending `newCall` to the `call.ringing` frame at that operator's socket. Baseline: the
   bare fan-out (bench/bare_fanout.py: aiohttp hands each newCall straight to a `websockets`
   connection, no database), measured in the same run.
2. Throughput: calls (newCall, answer, hangup) posted by 32 concurrent callers for a few
   seconds; call events acknowledged per second (each committed before its 200). Baseline:
   plain aiohttp + one asyncpg INSERT per request (bench/bare_insert.py) under the same
   load.

    python bench/calls.py [--rate 50] [--seconds 10] [--rounds 3] [--operators 200]
                          [--throughput-seconds 8]

The latency part runs `--rounds` times on the same hub and reports each round and the
median of the rounds' p99: on a shared VM one stall of the machine decides a round's p99.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
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
from bench.routing import setup_operators

TOKEN = "bench-cti-token"
CALLERS = 32


async def extensions(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE operators SET extension = (1000 + substr(login, 3)::int)::text")
    finally:
        await conn.close()


def _number(n: int) -> str:
    return f"+7916{n:07d}"


async def ringing_latency(
    base: str,
    tokens: list[str],
    rate: int,
    seconds: int,
    ws_base: str | None = None,
    first: int = 0,
) -> tuple[list[float], int, int]:
    """(latencies of the steady part, errors, calls posted); calls are numbered from
    `first`, so rounds on one hub never repeat a number or a call id."""
    sent_at: dict[str, float] = {}
    latencies: list[tuple[float, float]] = []
    ready = asyncio.Event()
    connected = 0
    url = f"{base}/connectors/pbx/cti?token={TOKEN}"

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
                if frame["type"] == "call.ringing":
                    number = frame["call"]["from"]
                    if number in sent_at:
                        latencies.append((sent_at[number], now - sent_at[number]))

    errors = 0

    async def call(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal errors
        number = _number(n)
        fields = {"from": number, "to": "+74951234567", "direction": "in", "callId": f"r{n}"}
        extension = str(1000 + n % len(tokens))
        try:
            sent_at[number] = time.perf_counter()
            for event in (
                {"event": "newCall", "user": [extension]},
                {"event": "answer", "answeringNumber": extension},
                {"event": "hangup", "cause": "normalClearing", "answeringNumber": extension},
            ):
                async with session.post(url, json={**event, **fields}) as reply:
                    if reply.status != 200:
                        errors += 1
                await asyncio.sleep(0.2)  # a (very) short conversation
        except aiohttp.ClientError:
            errors += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = [asyncio.create_task(operator(session, t)) for t in tokens]
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(3)  # presence settles
        start = time.perf_counter()
        tasks = []
        for i in range(rate * seconds):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(call(session, first + i)))
        await asyncio.gather(*tasks)
        await asyncio.sleep(2)
        for c in clients:
            c.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    warm = start + 2.0
    return [lat for sent, lat in latencies if sent >= warm], errors, rate * seconds


async def throughput(url: str, seconds: float, first: int) -> tuple[float, int]:
    """Call events acknowledged per second by CALLERS concurrent callers, and errors."""
    done = 0
    errors = 0
    numbers = itertools.count(first)
    deadline = time.perf_counter() + seconds

    async def caller(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            n = next(numbers)
            fields = {
                "from": _number(n),
                "to": "+74951234567",
                "direction": "in",
                "callId": f"t{n}",
            }
            for event in (
                {"event": "newCall", "user": ["1000"]},
                {"event": "answer", "answeringNumber": "1000"},
                {"event": "hangup", "cause": "normalClearing"},
            ):
                try:
                    async with session.post(url, json={**event, **fields}) as reply:
                        await reply.read()
                        if reply.status in (200, 201):
                            done += 1
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(caller(session) for _ in range(CALLERS)))
    return done / (time.perf_counter() - start), errors


def _pct(values: list[float], p: float) -> float:
    ms = sorted(v * 1000 for v in values)
    return ms[min(len(ms) - 1, int(p * len(ms)))] if ms else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50, help="newCall events a second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--operators", type=int, default=200)
    parser.add_argument("--throughput-seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds (median reported)")
    args = parser.parse_args()
    bench = BenchDatabases("bench_calls", "bench_calls_bare")
    work, dsns = bench.work, bench.dsns
    port = free_port()
    env = hub_env(dsns[0], work, HUB_PORT=str(port))
    hub_cli(
        env, "channel", "add", "pbx", "cti", "--set", "provider=generic", "--set", f"secret={TOKEN}"
    )
    tokens = asyncio.run(setup_operators(dsns[0], args.operators))
    asyncio.run(extensions(dsns[0]))
    hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", hub)
        hub_rounds = [
            asyncio.run(ringing_latency(base, tokens, args.rate, args.seconds, first=n * 10**5))
            for n in range(args.rounds)
        ]
        rate, rate_errors = asyncio.run(
            throughput(f"{base}/connectors/pbx/cti?token={TOKEN}", args.throughput_seconds, 10**6)
        )
    finally:
        stop(hub)
    bare_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_fanout.py"), str(bare_port)], cwd=ROOT
    )
    try:
        wait_http(f"http://127.0.0.1:{bare_port}/healthz", bare)
        bare_rounds = [
            asyncio.run(
                ringing_latency(
                    f"http://127.0.0.1:{bare_port}",
                    tokens,
                    args.rate,
                    args.seconds,
                    ws_base=f"http://127.0.0.1:{bare_port + 1}",
                    first=n * 10**5,
                )
            )
            for n in range(args.rounds)
        ]
    finally:
        stop(bare)
    insert_port = free_port()
    inserts = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_insert.py"), dsns[1], str(insert_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{insert_port}/healthz", inserts, timeout=30)
        bare_rate, _ = asyncio.run(
            throughput(f"http://127.0.0.1:{insert_port}/forms/site", args.throughput_seconds, 0)
        )
    finally:
        stop(inserts)
        bench.close()
    print(
        f"telephony, generic CTI endpoint, {args.operators} operators connected,"
        f" event loop: {loop_name()}, {os.cpu_count()} cores"
    )
    print(
        f"  newCall -> call.ringing at the extension's operator, {args.rate} calls/s for"
        f" {args.seconds} s (each answered and hung up; first 2 s left out), {args.rounds} rounds:"
    )
    p99s: dict[str, list[float]] = {}
    for name, rounds in (
        ("hub (lead, call, dialog, pop)", hub_rounds),
        ("bare aiohttp -> websockets fan-out", bare_rounds),
    ):
        for n, (values, errs, total) in enumerate(rounds, 1):
            p99s.setdefault(name, []).append(_pct(values, 0.99))
            print(
                f"    {name:36s} round {n}: p50 {_pct(values, 0.5):6.1f} ms"
                f"  p99 {_pct(values, 0.99):6.1f} ms  max {_pct(values, 1.0):6.1f} ms"
                f"  measured {len(values)} of {total}, errors {errs}"
            )
    hub_p99, bare_p99 = (statistics.median(v) for v in p99s.values())
    print(
        f"    median p99: hub {hub_p99:.1f} ms, bare {bare_p99:.1f} ms, ratio {hub_p99 / bare_p99:.1f}x"
        f"   (target: hub p99 < 50 ms)"
    )
    print(f"  call events acknowledged, {CALLERS} concurrent callers, {args.throughput_seconds} s:")
    print(f"    hub (newCall, answer, hangup)        {rate:7.0f} events/s  errors {rate_errors}")
    print(f"    bare aiohttp + one asyncpg INSERT    {bare_rate:7.0f} requests/s")
    print(f"    ratio hub / bare: {rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
