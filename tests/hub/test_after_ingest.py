"""What follows an inbound event: routing handed to the router's loop, auto-replies at
night (nobody online at all), the holder told of new messages."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from storage import queues
from tests.conftest import add_operator, add_telegram
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
SECRET = "night-secret"
NIGHT_TEXT = "Спасибо! Операторы ответят утром."


async def test_auto_reply_when_no_operator_at_all_is_online(
    client: Client, pool: asyncpg.Pool, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    """The night-time case: operators exist, none is online, anywhere. The customer's first
    message must still get the queue's auto-reply, once."""
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, SECRET)
    await queues.create(
        pool,
        name="sales",
        strategy="least_busy",
        offer_timeout_s=30,
        channels=["tg"],
        skills=[],
        hours=None,
        timezone="UTC",
        auto_reply=NIGHT_TEXT,
    )
    await add_operator(pool, "anna", online=False)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    reply = await client.post(
        "/connectors/telegram/tg", json=text_update(1, "Здравствуйте"), headers=headers
    )
    assert reply.status == 200
    await eventually(lambda: _sent_texts(telegram, [NIGHT_TEXT]))
    assert await pool.fetchval("SELECT auto_replied_at IS NOT NULL FROM dialogs")
    # A second message of the same waiting dialog gets no second auto-reply.
    reply = await client.post(
        "/connectors/telegram/tg", json=text_update(2, "Алло?"), headers=headers
    )
    assert reply.status == 200
    await eventually(
        lambda: _count_is(pool, "SELECT count(*) FROM interactions WHERE direction = 'in'", 2)
    )
    assert [m["text"] for m in telegram.sent] == [NIGHT_TEXT]
    assert await pool.fetchval("SELECT status FROM dialogs") == "queued"


async def _sent_texts(telegram: FakeTelegram, texts: list[str]) -> bool:
    return [m["text"] for m in telegram.sent] == texts


async def _count_is(pool: asyncpg.Pool, sql: str, n: int) -> bool:
    return bool(await pool.fetchval(sql) == n)
