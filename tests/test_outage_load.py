"""PostgreSQL stopped for five seconds under load: `hub serve` answers every form 201 or
503 with `Retry-After` (none hangs), recovers by itself when the server is back, and every
submission it answered 201 is stored.

The server is a private embedded PostgreSQL of this test (the suite's own keeps serving the
other tests); it is stopped by its postmaster's PID (a fast shutdown) and started again on
the same socket."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest

from storage.embedded import EmbeddedPostgres
from tests.fixtures.processes import HubProcess, hub_cli

OUTAGE_S = 5.0
CLIENTS = 8
REQUEST_TIMEOUT_S = 10.0  # the bound no answer may take longer than


@dataclass(frozen=True)
class Answer:
    phone: str
    status: int | None  # None: no answer within the bound
    retry_after: str | None
    took: float
    at: float


class PrivateServer:
    """An embedded PostgreSQL this test may stop and start."""

    def __init__(self, root: Path) -> None:
        self.embedded = EmbeddedPostgres(root)
        self.dsn = self.embedded.start()

    def postmaster(self) -> int:
        return int((self.embedded.pgdata / "postmaster.pid").read_text().splitlines()[0])

    def stop(self) -> None:
        pid = self.postmaster()
        os.kill(pid, signal.SIGINT)  # fast shutdown: sessions are ended, as in a crash
        psutil.Process(pid).wait(20)

    def start(self) -> None:
        server = self.embedded._server
        assert server is not None
        server.ensure_postgres_running()

    def close(self) -> None:
        pid_file = self.embedded.pgdata / "postmaster.pid"
        if pid_file.exists() and psutil.pid_exists(self.postmaster()):
            self.embedded.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateServer]:
    private = PrivateServer(tmp_path / "pg")
    try:
        yield private
    finally:
        private.close()


async def _load(url: str, stop: asyncio.Event, answers: list[Answer]) -> None:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def client(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                phone = f"+7916{n:02d}{i:05d}"
                started = time.monotonic()
                try:
                    async with session.post(f"{url}/forms/site", json={"phone": phone}) as r:
                        await r.read()
                        status, retry = r.status, r.headers.get("Retry-After")
                except TimeoutError:
                    status, retry = None, None
                answers.append(Answer(phone, status, retry, time.monotonic() - started, started))
                if status == 503:
                    await asyncio.sleep(0.1)  # a client honouring Retry-After, shortened

        await asyncio.gather(*(client(n) for n in range(CLIENTS)))


async def test_a_database_outage_under_load(server: PrivateServer, tmp_path: Path) -> None:
    env = {"HUB_DATABASE_URL": server.dsn, "HUB_DATA_DIR": str(tmp_path / "data")}
    hub_cli(env, "channel", "add", "form", "site", "--set", "rate_limit=0")
    hub = HubProcess(env, tmp_path, tmp_path / "hub.log")
    hub.start()
    answers: list[Answer] = []
    stop = asyncio.Event()
    try:
        load = asyncio.ensure_future(_load(hub.url, stop, answers))
        await asyncio.sleep(1.0)
        down_at = time.monotonic()
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(server.start)
        up_at = time.monotonic()
        # Recovered by itself: submissions are stored again, with nothing done to the hub.
        deadline = up_at + 20
        while not any(a.status == 201 and a.at > up_at for a in answers):
            assert time.monotonic() < deadline, "the hub did not recover within 20 s"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(load, REQUEST_TIMEOUT_S + 5)
    finally:
        stop.set()
        hub.stop()

    assert all(a.status in (201, 503) for a in answers), {a.status for a in answers}
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable, "the outage was not seen"
    assert all(a.retry_after and a.retry_after.isdigit() for a in unavailable)
    assert max(a.took for a in answers) < REQUEST_TIMEOUT_S
    during = [a for a in answers if down_at + 0.5 < a.at < up_at - 0.5]
    assert during and all(a.status == 503 for a in during)
    stored = [a.phone for a in answers if a.status == 201]
    conn = await asyncpg.connect(server.dsn)
    try:
        phones = {r["phone"] for r in await conn.fetch("SELECT phone FROM lead_phones")}
    finally:
        await conn.close()
    assert set(stored) <= phones, set(stored) - phones
    assert len(stored) > 20
