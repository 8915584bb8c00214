"""A CRM writes to a lead: on the channel it names, or on the one the lead last wrote on."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.conftest import add_operator, add_telegram, count
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
    await add_telegram(pool, telegram, base, SECRET)
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


async def test_a_crm_creates_and_updates_a_lead_by_its_own_id(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    body = {"external_ids": {"bitrix24": "123"}, "name": "Ivan", "phones": ["8 916 000-00-77"]}
    made = await client.post("/api/v1/leads", json=body, headers=auth)
    assert made.status == 201, await made.text()
    lead = await made.json()
    assert lead["external_ids"] == {"bitrix24": "123"} and lead["phones"] == ["+79160000077"]
    # The CRM retries: the same lead, nothing more.
    again = await client.post("/api/v1/leads", json=body, headers=auth)
    assert again.status == 200 and (await again.json())["id"] == lead["id"]
    assert await count(pool, "leads") == 1
    # An update by the same id adds an email and renames; phones are never dropped.
    update = {"external_ids": {"bitrix24": "123"}, "name": "Ivan P", "emails": ["i@x.ru"]}
    changed = await (await client.post("/api/v1/leads", json=update, headers=auth)).json()
    assert changed["name"] == "Ivan P" and changed["emails"] == ["i@x.ru"]
    assert changed["phones"] == ["+79160000077"]
    # Another CRM's id for a customer the hub knows by phone joins the same lead.
    other = {"external_ids": {"amocrm": 55}, "phones": ["+7 916 000 00 77"]}
    joined = await client.post("/api/v1/leads", json=other, headers=auth)
    assert joined.status == 200
    assert (await joined.json())["external_ids"] == {"bitrix24": "123", "amocrm": "55"}
    bads: list[dict[str, Any]] = [
        {"name": "no id"},
        {"external_ids": {}},
        {"external_ids": {"Bad System": "1"}},
        {"external_ids": {"crm": ""}},
        {"external_ids": {"crm": "1"}, "phones": ["8-800-FLOWERS"]},
    ]
    for bad in bads:
        reply = await client.post("/api/v1/leads", json=bad, headers=auth)
        assert reply.status == 422, bad
    assert await count(pool, "leads") == 1
    types = [r["type"] for r in await pool.fetch("SELECT type FROM domain_events ORDER BY id")]
    assert types[0] == "lead.created" and set(types[1:]) == {"lead.updated"}


async def test_a_crm_assigns_transfers_and_closes_a_dialog(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str], form: Any
) -> None:
    made = await client.post("/forms/site", json={"name": "Olga", "phone": "+79160000088"})
    dialog_id = (await made.json())["dialog_id"]
    anna = await add_operator(pool, "anna", online=True)
    boris = await add_operator(pool, "boris")  # offline
    url = f"/api/v1/dialogs/{dialog_id}"
    given = await client.post(f"{url}/transfer", json={"operator_id": anna}, headers=auth)
    assert given.status == 200, await given.text()
    assert (await given.json())["operator_id"] == anna
    for body, status, code in (
        ({"operator_id": boris}, 409, "operator_unavailable"),
        ({"operator_id": 999999}, 404, "no_operator"),
        ({"queue": "nowhere"}, 404, "no_queue"),
        ({}, 422, "invalid_field"),
        ({"operator_id": anna, "queue": "default"}, 422, "invalid_field"),
    ):
        reply = await client.post(f"{url}/transfer", json=body, headers=auth)
        assert reply.status == status, body
        assert (await reply.json())["error"]["code"] == code
    queued = await client.post(f"{url}/transfer", json={"queue": "default"}, headers=auth)
    assert queued.status == 200 and (await queued.json())["status"] in ("queued", "offered")
    closed = await client.post(f"{url}/close", headers=auth)
    assert closed.status == 200 and (await closed.json())["status"] == "closed"
    again = await client.post(f"{url}/close", headers=auth)
    assert again.status == 409 and (await again.json())["error"]["code"] == "not_open"
    kinds = {r["type"] for r in await pool.fetch("SELECT type FROM domain_events")}
    assert {"dialog.assigned", "dialog.transferred", "dialog.closed"} <= kinds
