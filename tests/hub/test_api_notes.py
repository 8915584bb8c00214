"""Internal notes: written in a dialog, seen by colleagues and CRMs, never sent to the
customer, and no answer to the customer's waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from storage import dialogs
from tests.conftest import add_operator, add_telegram, count, one_row, operator_token
from tests.fakes.telegram import FakeTelegram, text_update

Client = TestClient[Any, Any]
SECRET = "notes-secret"


async def test_a_note_is_kept_for_colleagues_and_crms_and_never_sent(
    client: Client,
    pool: asyncpg.Pool,
    auth: dict[str, str],
    fake_telegram: tuple[FakeTelegram, str],
) -> None:
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, SECRET)
    posted = await client.post(
        "/connectors/telegram/tg",
        json=text_update(1, "Where is my order?", user_id=5557001),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert posted.status == 200
    dialog_id = await pool.fetchval("SELECT dialog_id FROM interactions")
    anna = await add_operator(pool, "anna")
    await add_operator(pool, "boris")
    await pool.execute(
        "UPDATE dialogs SET status = 'assigned', operator_id = $2 WHERE id = $1", dialog_id, anna
    )
    as_anna = await operator_token(client, "anna")

    made = await client.post(
        f"/api/v1/dialogs/{dialog_id}/notes",
        json={"text": "  VIP: promised a call back at 5  "},
        headers=as_anna,
    )
    assert made.status == 201, await made.text()
    note = await made.json()
    assert note["kind"] == "note" and note["text"] == "VIP: promised a call back at 5"
    assert note["delivery_state"] is None and note["author"] == "anna"
    # In the conversation for whoever may see it, a CRM too.
    history = await client.get(f"/api/v1/leads/{note['lead_id']}/interactions", headers=auth)
    assert [i["kind"] for i in (await history.json())["items"]] == ["telegram", "note"]
    event = await one_row(
        pool,
        "SELECT data FROM domain_events WHERE type = 'interaction.created' AND interaction_id = $1",
        note["id"],
    )
    assert event["data"]["kind"] == "note"
    # No answer: the customer still waits, and no first response was made.
    async with pool.acquire() as conn:
        state = (await dialogs.reading_state(conn, [dialog_id]))[dialog_id]
    assert state["waiting_since"] is not None
    assert await pool.fetchval("SELECT first_response_at FROM dialogs") is None
    await asyncio.sleep(0.2)
    assert telegram.calls_of("sendMessage") == []
    # A supervisor's or a CRM's note, too.
    by_crm = await client.post(
        f"/api/v1/dialogs/{dialog_id}/notes", json={"text": "deal 123 won"}, headers=auth
    )
    assert by_crm.status == 201 and (await by_crm.json())["author"].startswith("api:")

    before = await count(pool, "interactions")
    as_boris = await operator_token(client, "boris")
    assert (
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/notes", json={"text": "x"}, headers=as_boris
        )
    ).status == 404
    for body, status in (
        ({"text": "   "}, 422),
        ({"text": 5}, 422),
        ({}, 422),
        ({"text": "x" * 5000}, 422),
    ):
        reply = await client.post(f"/api/v1/dialogs/{dialog_id}/notes", json=body, headers=as_anna)
        assert reply.status == status, body
    not_json = await client.post(f"/api/v1/dialogs/{dialog_id}/notes", data="text", headers=as_anna)
    assert not_json.status in (400, 415)
    assert (
        await client.post("/api/v1/dialogs/999999/notes", json={"text": "x"}, headers=auth)
    ).status == 404
    assert await count(pool, "interactions") == before
