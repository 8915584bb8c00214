"""A CRM writes to a lead: on the channel it names, or on the one the lead last wrote on."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from storage import channels
from tests.conftest import count
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
SECRET = "crm-writes-secret"


async def test_a_crm_writes_to_a_lead_on_its_last_channel_or_the_one_named(
    client: Client,
    pool: asyncpg.Pool,
    auth: dict[str, str],
    fake_telegram: tuple[FakeTelegram, str],
    form: Any,
) -> None:
    telegram, base = fake_telegram
    async with pool.acquire() as conn:
        await channels.create(
            conn,
            "telegram",
            "tg",
            {"token": telegram.token, "secret_token": SECRET, "api_base": base},
        )
    update = text_update(1, "Hello", user_id=5551234)
    posted = await client.post(
        "/connectors/telegram/tg", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert posted.status == 200
    lead_id = await pool.fetchval("SELECT lead_id FROM interactions")
    dialog_id = await pool.fetchval("SELECT dialog_id FROM interactions")
    # The conversation was closed; the CRM still reaches the customer there.
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() WHERE id = $1", dialog_id
    )

    sent = await client.post(
        f"/api/v1/leads/{lead_id}/messages", json={"text": "Your order shipped"}, headers=auth
    )
    assert sent.status == 201, await sent.text()
    item = await sent.json()
    assert item["direction"] == "out" and item["channel"] == "tg" and item["dialog_id"] == dialog_id

    async def delivered() -> bool:
        return any(
            c.params.get("text") == "Your order shipped" for c in telegram.calls_of("sendMessage")
        )

    await eventually(delivered)
    named = await client.post(
        f"/api/v1/leads/{lead_id}/messages", json={"text": "Again", "channel": "tg"}, headers=auth
    )
    assert named.status == 201

    before = await count(pool, "interactions")
    for body, status, code in (
        ({"text": "x", "channel": "nowhere"}, 404, "unknown_channel"),
        ({"text": "x", "channel": "site"}, 409, "no_conversation"),
        ({"text": "   "}, 422, "empty_message"),
        ({"text": "x" * 5000}, 422, "text_too_long"),
        ({"text": "x", "channel": 5}, 422, "invalid_field"),
    ):
        reply = await client.post(f"/api/v1/leads/{lead_id}/messages", json=body, headers=auth)
        assert reply.status == status, body
        assert (await reply.json())["error"]["code"] == code
    assert (
        await client.post("/api/v1/leads/999999/messages", json={"text": "x"}, headers=auth)
    ).status == 404
    assert await count(pool, "interactions") == before
