"""Channel runners: exactly one node runs a channel's poller, and another takes over."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.context import Hub
from hub.runtime import build_hub
from storage import channels
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.waiting import eventually


@pytest.fixture
def fake(fake_telegram: tuple[FakeTelegram, str]) -> tuple[FakeTelegram, str]:
    return fake_telegram


async def test_one_node_polls_and_another_takes_over(
    hub: Hub, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake
    async with pool.acquire() as conn:
        channel = await channels.create(
            conn,
            "telegram",
            "tg",
            {
                "token": telegram.token,
                "secret_token": "x",
                "mode": "polling",
                "api_base": base,
                "poll_timeout": "1",
            },
        )
    other = build_hub(hub.settings, pool, hub.dsn, supervise_every=0.2)
    first = TestClient(TestServer(build_app(hub)))
    second = TestClient(TestServer(build_app(other)))
    await first.start_server()
    await second.start_server()
    try:
        await eventually(
            lambda: _any(
                hub.channel_runner.is_running(channel.id),
                other.channel_runner.is_running(channel.id),
            )
        )
        # Never both: sampled every 50 ms for 2 s, about ten of the runners' check intervals.
        for _ in range(40):
            assert not (
                hub.channel_runner.is_running(channel.id)
                and other.channel_runner.is_running(channel.id)
            )
            await asyncio.sleep(0.05)
        runner, standby = (
            (first, second) if hub.channel_runner.is_running(channel.id) else (second, first)
        )
        await runner.close()
        standby_hub = other if standby is second else hub
        await eventually(
            lambda: _any(standby_hub.channel_runner.is_running(channel.id)), timeout=10
        )
        telegram.push_update(text_update(501, "after the takeover"))
        await eventually(lambda: pool.fetchval("SELECT count(*) = 1 FROM interactions"))
    finally:
        await first.close()
        await second.close()


async def _any(*values: Any) -> bool:
    return any(values)


async def test_bad_credentials_stop_the_channel_with_a_clear_log(
    hub: Hub, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, base = fake
    async with pool.acquire() as conn:
        channel = await channels.create(
            conn,
            "telegram",
            "tg",
            {"token": "999:WRONG-token", "secret_token": "x", "mode": "webhook", "api_base": base},
        )
    with caplog.at_level(logging.INFO):
        async with TestClient(TestServer(build_app(hub))):
            await eventually(lambda: _any("refused the credentials" in caplog.text))
            assert not hub.channel_runner.is_running(channel.id)
    # The fake provider's own access log shows its URLs; everything of the hub's must not.
    hub_text = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "WRONG-token" not in hub_text
