"""A database outage: forms, provider webhooks, the API and login answer 503 with
`Retry-After` and write nothing; the log has one warning for the outage (no traceback per
request) and one line when the database is back; then everything works again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.config import Settings
from hub.context import Hub
from hub.domain import Channel
from hub.runtime import build_hub
from storage import apikeys
from storage.database import create_pool
from tests.conftest import OPERATOR_PASSWORD, add_form, add_operator, add_telegram
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.tcp_proxy import CuttableProxy
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
SECRET = "outage-secret"


@pytest.fixture
async def proxy(db_dsn: str) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(db_dsn)
    await proxy.start()
    yield proxy
    await proxy.close()


async def test_an_outage_answers_503_once_warned_and_recovers(
    settings: Settings,
    pool: asyncpg.Pool,
    proxy: CuttableProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_form(pool, "site", rate_limit="0")
    await add_telegram(pool, FakeTelegram(), "http://127.0.0.1:9", SECRET, mode="polling")
    await add_operator(pool, "anna")
    _, key = await apikeys.create(pool, "crm", ["leads"])
    auth = {"Authorization": f"Bearer {key}"}
    through_proxy = await create_pool(proxy.dsn, min_size=1, max_size=4)
    hub = build_hub(settings, through_proxy, proxy.dsn, supervise_every=0.2)
    hub.outage.probe_every = 0.2
    try:
        async with TestClient(TestServer(build_app(hub, background=False))) as client:
            ok = await client.post("/forms/site", json={"phone": "+79120000001"})
            assert ok.status == 201
            # Channels are cached: the webhook below reaches the database only to store.
            tg = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            assert (
                await client.post("/connectors/telegram/tg", json=text_update(1, "a"), headers=tg)
            ).status == 200

            await proxy.cut()
            caplog.clear()
            caplog.set_level(logging.INFO)
            requests = [
                client.post("/forms/site", json={"phone": "+79120000002"}),
                client.post("/connectors/telegram/tg", json=text_update(2, "b"), headers=tg),
                client.get("/api/v1/leads", headers=auth),
                client.post(
                    "/api/v1/auth/login", json={"login": "anna", "password": OPERATOR_PASSWORD}
                ),
                client.post("/forms/site", json={"phone": "+79120000003"}),
            ]
            for request in requests:
                reply = await request
                assert reply.status == 503, await reply.text()
                assert reply.headers["Retry-After"].isdigit()
                assert (await reply.json())["error"]["code"] == "unavailable"
            scrape = await client.get("/metrics")  # answers, and says the database is down
            assert scrape.status == 200 and "hub_database_up 0.0" in await scrape.text()
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            # One line for the requests' outage (the router routing the first form's dialog
            # in the background may add its own one line), no traceback, no error.
            outage = [r for r in warnings if r.name == "hub.outage"]
            assert len(outage) == 1, [r.getMessage() for r in warnings]
            assert "database is unavailable" in outage[0].getMessage()
            assert all(r.exc_info is None and r.levelno == logging.WARNING for r in warnings)
            assert len(warnings) <= 2, [r.getMessage() for r in warnings]

            await proxy.restore()
            await eventually(lambda: _back(caplog))
            again = await client.post("/forms/site", json={"phone": "+79120000004"})
            assert again.status == 201
    finally:
        await hub.outage.close()
        await through_proxy.close()
    phones = {r["phone"] for r in await pool.fetch("SELECT phone FROM lead_phones")}
    assert phones == {"+79120000001", "+79120000004"}
    assert await pool.fetchval("SELECT count(*) FROM interactions") == 3


async def _back(caplog: pytest.LogCaptureFixture) -> bool:
    return any("reachable again" in r.getMessage() for r in caplog.records)


async def test_an_oserror_of_the_disk_is_not_taken_for_an_outage(
    client: Client,
    hub: Hub,
    form: Channel,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """The database answers: a failing disk is the hub's own error (500, logged with its
    traceback), not a 503 that sends clients into retries."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    hub.attachments.root = blocker
    caplog.set_level(logging.WARNING)
    upload = aiohttp.FormData()
    upload.add_field("phone", "+79120000001")
    upload.add_field("file", b"data", filename="a.txt", content_type="text/plain")
    reply = await client.post("/forms/site", data=upload, headers={"Accept": "application/json"})
    assert reply.status == 500 and (await reply.json())["error"]["code"] == "internal"
    assert not [r for r in caplog.records if r.name == "hub.outage"]
    assert any(r.exc_info or r.exc_text for r in caplog.records if r.levelno == logging.ERROR)
