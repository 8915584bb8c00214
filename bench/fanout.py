"""Fan-out to every console: one notice all 2,000 connected operators receive (an operator's
presence change), and the memory each idle connected operator costs.

The hub runs as its own process with 2,000 operators (sessions straight into the
database); this process connects a websocket for each, then one operator changes presence
again and again (a round every 0.4 s, beyond the gateway's 0.1 s folding window) and
every socket waits for the `operator.presence` frame. Per round: the fan-out (first socket
to receive it to the last) and end to end (the presence frame sent to the last socket
receiving the notice). Baseline, in the same run: bench/bare_broadcast.py, a `websockets`
server doing `websockets.broadcast` of the same frame to the same 2,000 sockets. Memory:
each server's resident memory with the sockets connected and idle, less before.

    python bench/fanout.py [--operators 2000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

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

SETTLE_S = 2.0


@dataclass(frozen=True)
class Run:
    spread_ms: list[float]  # first socket to last, per round
    end_ms: list[float]  # presence sent to last socket, per round
    idle_bytes: float  # resident memory per connected idle socket
    connected: int


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


async def measure(url: str, tokens: list[str], rounds: int, server: psutil.Process) -> Run:
    """`url` is the websocket URL without the token (the bare server ignores it)."""
    received: list[list[float]] = [[] for _ in range(rounds)]
    expected = ["away" if n % 2 == 0 else "online" for n in range(rounds)]
    hello = asyncio.Event()
    greeted = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        gc.collect()
        await asyncio.sleep(SETTLE_S)
        before = server.memory_info().rss

        async def console(token: str) -> aiohttp.ClientWebSocketResponse:
            nonlocal greeted
            ws = await session.ws_connect(f"{url}?token={token}", heartbeat=None, max_msg_size=0)
            while json.loads(await ws.receive_str())["type"] != "hello":
                continue
            greeted += 1
            if greeted == len(tokens):
                hello.set()
            return ws

        sockets: list[aiohttp.ClientWebSocketResponse] = []
        for start in range(0, len(tokens), 100):  # as consoles arrive: not all in one instant
            sockets += await asyncio.gather(*(console(t) for t in tokens[start : start + 100]))
        await hello.wait()
        await asyncio.sleep(SETTLE_S)
        idle = (server.memory_info().rss - before) / len(sockets)

        async def listen(ws: aiohttp.ClientWebSocketResponse) -> None:
            n = 0
            while n < rounds:
                frame = json.loads(await ws.receive_str())
                if frame["type"] == "operator.presence" and frame["presence"] == expected[n]:
                    received[n].append(time.perf_counter())
                    n += 1

        listeners = [asyncio.ensure_future(listen(ws)) for ws in sockets]
        sent: list[float] = []
        for n in range(rounds):
            sent.append(time.perf_counter())
            await sockets[0].send_str(json.dumps({"type": "presence", "status": expected[n]}))
            deadline = time.monotonic() + 10
            while len(received[n]) < len(sockets):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"round {n}: {len(received[n])} of {len(sockets)} got it")
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.4)
        await asyncio.gather(*listeners)
        for ws in sockets:
            await ws.close()
    return Run(
        spread_ms=[(max(r) - min(r)) * 1000 for r in received],
        end_ms=[(max(r) - s) * 1000 for r, s in zip(received, sent, strict=True)],
        idle_bytes=idle,
        connected=len(sockets),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operators", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    bench = BenchDatabases("bench_fanout")
    dsn = bench.dsns[0]
    port, bare_port = free_port(), free_port()
    env = hub_env(dsn, bench.work, HUB_PORT=str(port))
    hub = bare = None
    try:
        hub_cli(env, "migrate")
        tokens = asyncio.run(setup_operators(dsn, args.operators))
        hub = subprocess.Popen([*HUB_CLI, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{port}/healthz", hub)
        hub_run = asyncio.run(
            measure(
                f"ws://127.0.0.1:{port}/ws/operator", tokens, args.rounds, psutil.Process(hub.pid)
            )
        )
        stop(hub)
        hub = None
        bare = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_broadcast.py"), str(bare_port)], cwd=ROOT
        )
        _wait_port(bare_port, bare)
        bare_run = asyncio.run(
            measure(f"ws://127.0.0.1:{bare_port}/", tokens, args.rounds, psutil.Process(bare.pid))
        )
    finally:
        for proc in (hub, bare):
            if proc is not None:
                stop(proc)
        bench.close()

    def p(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    print(f"fan-out to every console, event loop: {loop_name()}, {os.cpu_count()} cores")
    print(
        f"  {hub_run.connected} operator sockets; one operator's presence changes"
        f" {args.rounds} times, every socket waits for the notice:"
    )
    for name, run in (("hub", hub_run), ("bare websockets.broadcast", bare_run)):
        print(
            f"    {name:26} fan-out p50 {p(run.spread_ms, 0.5):6.1f} ms"
            f"  max {max(run.spread_ms):6.1f} ms;  end to end p50 {p(run.end_ms, 0.5):6.1f} ms;"
            f"  idle socket {run.idle_bytes / 1024:5.1f} KiB"
        )
    ratio = statistics.median(bare_run.spread_ms) / statistics.median(hub_run.spread_ms)
    memory = hub_run.idle_bytes / bare_run.idle_bytes
    print(f"    fan-out ratio bare / hub (time): {ratio:.2f}   (target >= 0.7)")
    print(f"    memory per idle operator hub / bare: {memory:.2f}x   (target <= 1.5)")
    print(
        "    the hub's end to end includes storing the presence change and its 0.1 s folding"
        " window (changes within it go out as one frame)"
    )


if __name__ == "__main__":
    main()
