"""Site-form ingest at full speed, end to end, against a bare aiohttp + asyncpg baseline.

Both servers run as their own processes on one PostgreSQL (the embedded one unless
HUB_DATABASE_URL is set), and are loaded in turn by wrk (32 connections, 2 threads) with
a distinct new phone per request, so every hub submission is a first contact: a new lead,
a new dialog and an interaction in one transaction. Prints submissions/s for each and the
ratio, measured in the same run.

    python bench/ingest.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.embedded import EmbeddedPostgres  # noqa: E402

LUA = r"""
local counter = 0
local tid = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
end
request = function()
  counter = counter + 1
  local phone = string.format("+791%d%07d", tid, counter)
  local body = string.format('{"name":"Bench %d","phone":"%s","message":"benchmark submission"}', counter, phone)
  return wrk.format("POST", "/forms/site", {["Content-Type"] = "application/json"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_db(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def run_wrk(port: int, seconds: int, connections: int, script: Path) -> tuple[float, int, str]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/forms/site",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return rate, int(bad.group(1)) if bad else 0, p99.group(1) if p99 else "?"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


async def create_databases(admin_dsn: str) -> tuple[str, str]:
    conn = await asyncpg.connect(admin_dsn)
    names = (f"bench_hub_{os.getpid()}", f"bench_bare_{os.getpid()}")
    for name in names:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return with_db(admin_dsn, names[0]), with_db(admin_dsn, names[1])


async def drop_databases(admin_dsn: str, dsns: tuple[str, str]) -> None:
    conn = await asyncpg.connect(admin_dsn)
    for dsn in dsns:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path[1:]}" WITH (FORCE)')
    await conn.close()


async def count_rows(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench does it)")
    try:
        import uvloop  # noqa: F401

        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    embedded = None
    admin_dsn = os.environ.get("HUB_DATABASE_URL")
    if not admin_dsn:
        embedded = EmbeddedPostgres(work)
        admin_dsn = embedded.start()
    hub_dsn, bare_dsn = asyncio.run(create_databases(admin_dsn))
    script = work / "submit.lua"
    script.write_text(LUA)
    env = {
        **os.environ,
        "HUB_DATABASE_URL": hub_dsn,
        "HUB_DATA_DIR": str(work / "data"),
        "HUB_LOG_LEVEL": "WARNING",
    }
    hub_bin = [sys.executable, "-m", "hub.cli"]
    subprocess.run(
        [*hub_bin, "channel", "add", "form", "site", "--set", "rate_limit=0"],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    results: dict[str, tuple[float, int, str]] = {}
    try:
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_insert.py"), bare_dsn, str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/", bare)
            run_wrk(port, 2, args.connections, script)  # warm-up
            results["bare aiohttp + asyncpg INSERT"] = run_wrk(
                port, args.seconds, args.connections, script
            )
        finally:
            stop(bare)

        port = free_port()
        hub = subprocess.Popen(
            [*hub_bin, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", hub)
            before = asyncio.run(count_rows(hub_dsn, "interactions"))
            run_wrk(port, 2, args.connections, script)  # warm-up
            before = asyncio.run(count_rows(hub_dsn, "interactions"))
            results["hub POST /forms/site (lead + dialog + interaction)"] = run_wrk(
                port, args.seconds, args.connections, script
            )
            stored = asyncio.run(count_rows(hub_dsn, "interactions")) - before
        finally:
            stop(hub)
    finally:
        asyncio.run(drop_databases(admin_dsn, (hub_dsn, bare_dsn)))
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"site-form ingest, {args.seconds}s each, wrk -t2 -c{args.connections}, event loop: {loop_name}, "
        f"{os.cpu_count()} cores"
    )
    for name, (rate, bad, p99) in results.items():
        print(f"  {name:52s} {rate:9.0f} req/s   p99 {p99:>8s}   non-2xx {bad}")
    hub_rate = results["hub POST /forms/site (lead + dialog + interaction)"][0]
    bare_rate = results["bare aiohttp + asyncpg INSERT"][0]
    print(f"  interactions stored during the hub run: {stored}")
    print(f"  ratio hub / bare: {hub_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
