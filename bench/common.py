"""What the benchmarks share: ports, processes, databases, wrk."""

from __future__ import annotations

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
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent


class Steal:
    """The share of the machine's CPU time its hypervisor took (steal) since this was
    made. On a shared virtual machine the same run is up to twice as slow while it is high,
    so a benchmark prints it beside the figures it took meanwhile."""

    def __init__(self) -> None:
        self.start = psutil.cpu_times()

    def share(self) -> float:
        now = psutil.cpu_times()
        spent = sum(now) - sum(self.start)
        taken = getattr(now, "steal", 0.0) - getattr(self.start, "steal", 0.0)
        return taken / spent if spent > 0 else 0.0


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


_runs = iter(range(1, 100))


def run_wrk(url: str, seconds: int, connections: int, script: Path) -> tuple[float, int, str]:
    """(requests/s, non-2xx answers, p99 latency) of one wrk run. Each run passes the script
    a new run number, so no two runs send the same ids (a repeat would measure the hub's
    duplicate path instead of new events)."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(next(_runs)),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    rate = float(found.group(1))
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


def create_databases(admin_dsn: str, *names: str) -> list[str]:
    async def run() -> list[str]:
        conn = await asyncpg.connect(admin_dsn)
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return [with_db(admin_dsn, n) for n in names]

    return asyncio.run(run())


def drop_databases(admin_dsn: str, dsns: list[str]) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            for dsn in dsns:
                await conn.execute(
                    f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path[1:]}" WITH (FORCE)'
                )
        finally:
            await conn.close()

    asyncio.run(run())


def count_rows(dsn: str, table: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()

    return asyncio.run(run())


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401

        return "uvloop"
    except ImportError:
        return "asyncio"


def interleaved(
    runs: dict[str, tuple[list[str], dict[str, str], str, str]],
    rounds: int,
    seconds: int,
    connections: int,
    script: Path,
) -> dict[str, tuple[float, int, str]]:
    """Run each server in turn, `rounds` times over, and keep each one's median run.

    Alternating the servers spreads any drift of the machine (another tenant, a warming
    cache, autovacuum) over both sides of the ratio instead of onto one.
    `runs` maps a name to (command, environment, health URL, load URL).
    """
    samples: dict[str, list[tuple[float, int, str]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (command, env, health, url) in runs.items():
            proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            try:
                wait_http(health, proc)
                run_wrk(url, 2, connections, script)  # warm-up
                samples[name].append(run_wrk(url, seconds, connections, script))
            finally:
                stop(proc)
    return {name: sorted(runs_)[len(runs_) // 2] for name, runs_ in samples.items()}


class BenchDatabases:
    """Databases for one benchmark run on the embedded PostgreSQL (or HUB_DATABASE_URL's
    server), in a work folder removed afterwards."""

    def __init__(self, *names: str) -> None:
        from storage.embedded import EmbeddedPostgres

        self.work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
        self._embedded: EmbeddedPostgres | None = None
        admin = os.environ.get("HUB_DATABASE_URL")
        if not admin:
            self._embedded = EmbeddedPostgres(self.work)
            admin = self._embedded.start()
        self.admin_dsn = admin
        self.dsns = create_databases(admin, *(f"{n}_{os.getpid()}" for n in names))

    def close(self) -> None:
        drop_databases(self.admin_dsn, self.dsns)
        if self._embedded is not None:
            self._embedded.stop()
        shutil.rmtree(self.work, ignore_errors=True)


HUB_CLI = [sys.executable, "-m", "hub.cli"]
BOT_TOKEN = "123456:BENCH-token"
BOT_SECRET = "bench-secret_token"


def hub_cli(env: dict[str, str], *args: str) -> str:
    """Run one `hub` command (migrate, channel add, apikey create) and return what it printed."""
    done = subprocess.run(
        [*HUB_CLI, *args], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    )
    return done.stdout.strip()


def hub_env(dsn: str, work: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked `hub` process."""
    return {
        **os.environ,
        "HUB_DATABASE_URL": dsn,
        "HUB_DATA_DIR": str(work / "data"),
        "HUB_LOG_LEVEL": "WARNING",
        **extra,
    }


def start_bot_api() -> tuple[subprocess.Popen[bytes], str]:
    """bench/fake_bot_api.py on a free port, and its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_bot_api.py"), str(port)])
    return proc, f"http://127.0.0.1:{port}"


def add_telegram_channel(env: dict[str, str], api_base: str) -> None:
    """A webhook-mode Telegram channel named `bot` talking to `api_base`."""
    subprocess.run(
        [
            *HUB_CLI,
            "channel",
            "add",
            "telegram",
            "bot",
            "--set",
            f"token={BOT_TOKEN}",
            "--set",
            f"secret_token={BOT_SECRET}",
            "--set",
            f"api_base={api_base}",
        ],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
