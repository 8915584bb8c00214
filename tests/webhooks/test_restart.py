"""A real `hub serve` stopped while deliveries wait for a receiver that is down: started
again, it delivers them, each once, with its original id."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

from storage import webhooks
from tests.fakes.crm import Receiver
from tests.fixtures.processes import HubProcess, hub_cli
from tests.fixtures.waiting import eventually
from webhooks.signing import new_secret


async def test_pending_deliveries_survive_a_restart(
    db_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    secret = new_secret()
    crm = Receiver(secret)
    crm.answers = [(503, {})] * 1000  # down until told otherwise
    server = TestServer(crm.app)
    await server.start_server()
    env = {
        "HUB_DATABASE_URL": db_dsn,
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_WEBHOOK_ALLOW_PRIVATE": "1",
        "HUB_WEBHOOK_RETRY_SCHEDULE": "0.5",
    }
    hub_cli(env, "channel", "add", "form", "site", "--set", "rate_limit=0")
    await webhooks.create(pool, str(server.make_url("/hooks")), ["interaction.created"], secret)
    node = HubProcess(env, tmp_path, tmp_path / "hub.log")
    node.start()
    try:
        async with aiohttp.ClientSession() as session:
            for n in range(3):
                async with session.post(
                    f"{node.url}/forms/site",
                    json={"name": f"Lead {n}", "phone": f"+791600001{n:02d}"},
                ) as reply:
                    assert reply.status == 201

        async def tried() -> bool:
            value = await pool.fetchval("SELECT min(attempts) FROM webhook_deliveries")
            return bool(value)

        await eventually(tried)
        node.signal(signal.SIGTERM)
        assert node.wait() == 0
        assert (
            await pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            == 3
        )
        crm.answers = []  # the CRM is back
        node.start()
        await eventually(lambda: _received(crm, 3), timeout=20)
        assert len(set(crm.ids)) == 3
        await asyncio.sleep(0.5)
        assert len(crm.ids) == 3  # each once
    finally:
        node.stop()
        await server.close()


async def _received(crm: Receiver, n: int) -> bool:
    return len(crm.received) >= n
