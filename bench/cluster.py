"""Two hub nodes against one, on the same database: form ingest and routing latency.

Routing (first, on a database of its own): Telegram messages at a steady rate posted to
one node while the 200 operators are connected to (a) that same node, (b) the other node,
so every offer crosses NATS. Ingest (on another database, no operators): wrk posts
new-contact forms (as bench/ingest.py) to one node with 32 connections, then to two nodes
at once with 16 connections each (32 in all). Each node is its own `hub serve` process, the
nodes joined by a real NATS server. Prints each figure, the scaling
factor, and what bounds it on this machine.

    python bench/cluster.py [--seconds 10] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HUB_CLI,
    ROOT,
    BenchDatabases,
    add_telegram_channel,
    free_port,
    hub_cli,
    hub_env,
    loop_name,
    run_wrk,
    start_bot_api,
    stop,
    wait_http,
)
from bench.ingest import LUA
from bench.routing import measure, setup_operators

NATS_SERVER = Path(sys.executable).parent / "nats-server"


def _nats() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("nats-server did not start")


def _node(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [*HUB_CLI, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc)
    return proc, url


def _p99(latencies: list[float]) -> float:
    ms = sorted(x * 1000 for x in latencies)
    return ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100, help="routing: messages a second")
    parser.add_argument("--operators", type=int, default=200)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench does it)")
    # Two databases: the operators of the routing runs never see the forms of the ingest
    # runs (a backlog of waiting dialogs offered to them would be measured instead).
    bench = BenchDatabases("bench_cluster_route", "bench_cluster_ingest")
    route_dsn, ingest_dsn = bench.dsns
    work = bench.work
    script = work / "submit.lua"
    script.write_text(LUA)
    nats, bus = _nats()
    bot_api, api_base = start_bot_api()
    route_env = hub_env(route_dsn, work, HUB_BUS_URL=bus)
    ingest_env = hub_env(ingest_dsn, work, HUB_BUS_URL=bus)
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        for env in (route_env, ingest_env):
            hub_cli(env, "migrate")
        hub_cli(ingest_env, "channel", "add", "form", "site", "--set", "rate_limit=0")
        add_telegram_channel(route_env, api_base)
        tokens = asyncio.run(setup_operators(route_dsn, args.operators))
        a, a_url = _node(route_env)
        nodes.append(a)
        same_node, _, _ = asyncio.run(measure(a_url, tokens, args.rate, args.seconds))
        b, b_url = _node(route_env)
        nodes.append(b)
        after = args.rate * args.seconds + 1  # new customers: not retries of the first run
        across, _, _ = asyncio.run(
            measure(a_url, tokens, args.rate, args.seconds, ws_base=b_url, first_update=after)
        )
        for node in nodes:
            stop(node)
        nodes.clear()
        a, a_url = _node(ingest_env)
        nodes.append(a)
        run_wrk(f"{a_url}/forms/site", 2, 32, script)  # warm-up
        one = run_wrk(f"{a_url}/forms/site", args.seconds, 32, script)
        b, b_url = _node(ingest_env)
        nodes.append(b)
        with ThreadPoolExecutor(2) as pool:
            for url in (a_url, b_url):  # warm-up, both at once
                pool.submit(run_wrk, f"{url}/forms/site", 2, 16, script)
        with ThreadPoolExecutor(2) as pool:
            both = list(
                pool.map(
                    lambda url: run_wrk(f"{url}/forms/site", args.seconds, 16, script),
                    (a_url, b_url),
                )
            )
    finally:
        for node in nodes:
            stop(node)
        stop(bot_api)
        stop(nats)
        bench.close()

    two = sum(rate for rate, _, _ in both)
    print(f"two nodes against one, one database, event loop: {loop_name()}, {os.cpu_count()} cores")
    print(f"  form ingest, wrk 32 connections in all, {args.seconds} s:")
    print(f"    one node   {one[0]:7.0f} req/s   p99 {one[2]:>8s}   non-2xx {one[1]}")
    print(
        f"    two nodes  {two:7.0f} req/s   ({both[0][0]:.0f} + {both[1][0]:.0f}; p99 {both[0][2]}"
        f" / {both[1][2]}; non-2xx {both[0][1] + both[1][1]})"
    )
    print(f"    scaling factor: {two / one[0]:.2f}")
    print(f"  routing, {args.rate} messages/s to node A, {args.operators} operators:")
    print(f"    operators on node A (one node)          p99 {_p99(same_node):6.1f} ms")
    print(f"    operators on node B (offers cross NATS) p99 {_p99(across):6.1f} ms")
    print(
        f"  on {os.cpu_count()} cores the nodes, PostgreSQL and wrk share the same CPUs: a second"
        " node adds an event loop, not a core, so ingest is bounded by the machine (the"
        " database's share of each event above all); on separate machines each node brings"
        " its own cores and the database becomes the limit."
    )


if __name__ == "__main__":
    main()
