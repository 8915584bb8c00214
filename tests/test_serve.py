"""`hub serve` as a real process: restarts keep data, SIGKILL loses nothing acknowledged,
and the embedded PostgreSQL follows the hub's lifecycle."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest

from tests.fixtures.processes import HubProcess, hub_cli


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


def _wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def embedded_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = {"HUB_DATA_DIR": str(tmp_path / "data")}
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    yield env
    # Teardown by PID: a postmaster left by a failed assertion must not outlive the test.
    pid_file = tmp_path / "data" / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().splitlines()[0])
        if psutil.pid_exists(pid):
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)


async def _post(url: str, **fields: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/forms/site", json=fields) as reply,
    ):
        assert reply.status == 201, await reply.text()
        body: dict[str, object] = await reply.json()
        return body


async def _leads(url: str, key: str, phone: str) -> list[dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{url}/api/v1/leads",
            params={"phone": phone},
            headers={"Authorization": f"Bearer {key}"},
        ) as reply,
    ):
        assert reply.status == 200
        items: list[dict[str, object]] = (await reply.json())["items"]
        return items


async def test_the_hub_connects_to_the_embedded_server_as_its_own_ordinary_role(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    """The superuser only creates the `hub` role and its database; the hub's sessions and
    tables are that role's, which is no superuser."""
    data = tmp_path / "data"
    hub = HubProcess(embedded_env, tmp_path, tmp_path / "hub.log")
    hub.start()
    try:
        lines = (data / "pgdata" / "postmaster.pid").read_text().splitlines()
        superuser = f"postgresql://postgres@/postgres?host={lines[4]}&port={lines[3]}"
        conn = await asyncpg.connect(superuser)
        try:
            sessions = {
                r["usename"]
                for r in await conn.fetch(
                    "SELECT usename FROM pg_stat_activity WHERE datname = 'hub'"
                    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            }
            role = await conn.fetchrow(
                "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'hub'"
            )
            owner = await conn.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'hub'"
            )
        finally:
            await conn.close()
        assert sessions == {"hub"}
        assert role is not None and not any(role.values())
        assert owner == "hub"
        hub_conn = await asyncpg.connect(f"postgresql://hub@/hub?host={lines[4]}&port={lines[3]}")
        try:
            owners = {
                r["tableowner"]
                for r in await hub_conn.fetch(
                    "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'"
                )
            }
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await hub_conn.execute("CREATE ROLE intruder SUPERUSER")
        finally:
            await hub_conn.close()
        assert owners == {"hub"}
    finally:
        hub.stop()


async def test_embedded_database_follows_the_hub_and_survives_restarts(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert hub_cli(embedded_env, "channel", "add", "form", "site", cwd=tmp_path) == "/forms/site"
    key = hub_cli(embedded_env, "apikey", "create", "test", cwd=tmp_path)
    hub = HubProcess(embedded_env, tmp_path, tmp_path / "hub.log")
    hub.start()
    try:
        first = await _post(hub.url, name="Restart", phone="+79125550101")
        postmaster = _postmaster_pid(data)
        hub.signal(signal.SIGTERM)
        assert await asyncio.to_thread(hub.wait) == 0
        assert _wait_gone(postmaster), "SIGTERM must stop the embedded PostgreSQL"

        hub.start()
        assert [x["id"] for x in await _leads(hub.url, key, "89125550101")] == [first["lead_id"]]
        postmaster = _postmaster_pid(data)
        hub.signal(signal.SIGKILL)
        await asyncio.to_thread(hub.wait)
        assert psutil.pid_exists(postmaster), "after SIGKILL the server keeps running"

        hub.start()
        assert _postmaster_pid(data) == postmaster, "the next start reuses the running server"
        assert [x["id"] for x in await _leads(hub.url, key, "+79125550101")] == [first["lead_id"]]
        hub.signal(signal.SIGTERM)
        assert await asyncio.to_thread(hub.wait) == 0
        assert _wait_gone(postmaster), (
            "the killed hub's stale handle must not keep the server alive"
        )
    finally:
        hub.stop()


async def test_a_hub_restarted_at_once_after_sigkill_still_stops_the_server(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    """The killed hub's pid is still in the handle list when the new hub starts (it has
    not exited, or is a zombie nobody reaped yet): the last hub out must stop the server
    all the same."""
    data = tmp_path / "data"
    killed = HubProcess(embedded_env, tmp_path, tmp_path / "killed.log")
    killed.start()
    restarted = HubProcess(embedded_env, tmp_path, tmp_path / "restarted.log")
    try:
        postmaster = _postmaster_pid(data)
        killed.signal(signal.SIGKILL)  # not reaped: a zombie until `wait`
        restarted.start()
        assert _postmaster_pid(data) == postmaster
        restarted.signal(signal.SIGTERM)
        assert await asyncio.to_thread(restarted.wait) == 0
        assert _wait_gone(postmaster), "the last hub to leave must stop the embedded server"
    finally:
        restarted.stop()
        await asyncio.to_thread(killed.wait)


KILL_AFTER = 100


async def test_sigkill_mid_load_loses_no_acknowledged_submission(
    db_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = {"HUB_DATABASE_URL": db_dsn, "HUB_DATA_DIR": str(tmp_path / "data")}
    hub_cli(env, "channel", "add", "form", "site", "--set", "rate_limit=0", cwd=tmp_path)
    hub = HubProcess(env, tmp_path, tmp_path / "hub.log")
    hub.start()
    acknowledged: list[int] = []
    failures = 0
    stop = asyncio.Event()
    enough = asyncio.Event()  # set at KILL_AFTER acknowledgements: the load is surely running

    async def worker(n: int, session: aiohttp.ClientSession) -> None:
        nonlocal failures
        i = 0
        while not stop.is_set() and i < 2000:
            i += 1
            try:
                async with session.post(
                    f"{hub.url}/forms/site",
                    json={"phone": f"+7916{n:03d}{i:04d}", "message": "load"},
                ) as reply:
                    if reply.status == 201:
                        acknowledged.append((await reply.json())["interaction_id"])
                        if len(acknowledged) >= KILL_AFTER:
                            enough.set()
            except (TimeoutError, aiohttp.ClientError):
                failures += 1
                await asyncio.sleep(0.01)

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            tasks = [asyncio.create_task(worker(n, session)) for n in range(16)]
            async with asyncio.timeout(60):
                await enough.wait()
            hub.signal(signal.SIGKILL)
            await asyncio.to_thread(hub.wait)
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*tasks)
        assert len(acknowledged) >= KILL_AFTER
        stored = await pool.fetchval(
            "SELECT count(*) FROM interactions WHERE id = ANY($1::bigint[])", acknowledged
        )
        assert stored == len(acknowledged)
        hub.start()
        async with aiohttp.ClientSession() as session, session.get(f"{hub.url}/readyz") as reply:
            assert reply.status == 200
        total = await pool.fetchval("SELECT count(*) FROM interactions")
        assert total >= len(acknowledged)
        assert await pool.fetchval("SELECT count(*) FROM leads") == total  # one new phone each
    finally:
        hub.stop()
