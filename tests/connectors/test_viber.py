"""Viber against tests/fakes/viber.py: signatures, events, receipts, replies, set_webhook."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.context import Hub
from hub.domain import Channel
from hub.runtime import build_hub
from storage import channels
from tests.conftest import count
from tests.fakes.viber import FakeViber, message_event, sign
from tests.fixtures.processes import free_port
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]


async def _channel(pool: asyncpg.Pool, viber: FakeViber, base: str) -> Channel:
    async with pool.acquire() as conn:
        return await channels.create(
            conn,
            "viber",
            "vb",
            {"auth_token": viber.token, "api_base": base, "sender_name": "Support"},
        )


async def _post(
    client: Client, viber: FakeViber, event: dict[str, Any], signature: str | None = ""
) -> aiohttp.ClientResponse:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Viber-Content-Signature"] = signature or sign(viber.token, body)
    return await client.post("/connectors/viber/vb", data=body, headers=headers)


async def test_signature_is_required_and_checked(
    client: Client, pool: asyncpg.Pool, fake_viber: tuple[FakeViber, str]
) -> None:
    viber, base = fake_viber
    await _channel(pool, viber, base)
    event = message_event(4912661846655238145, {"type": "text", "text": "Нужна помощь"})
    assert (await _post(client, viber, event, signature=None)).status == 401
    assert (await _post(client, viber, event, signature="00" * 32)).status == 403
    assert (
        await _post(client, viber, event, signature=sign("other-token", json.dumps(event).encode()))
    ).status == 403
    assert await count(pool, "interactions") == 0


async def test_message_once_per_token_and_contact_feeds_the_phone(
    client: Client, pool: asyncpg.Pool, fake_viber: tuple[FakeViber, str], auth: dict[str, str]
) -> None:
    viber, base = fake_viber
    await _channel(pool, viber, base)
    text = message_event(
        4912661846655238145, {"type": "text", "text": "Нужна помощь", "tracking_data": "ticket-42"}
    )
    for _ in range(2):
        assert (await _post(client, viber, text)).status == 200
    contact = message_event(
        4912661846655238146,
        {"type": "contact", "contact": {"name": "Ivan Petrov", "phone_number": "+79001234567"}},
    )
    assert (await _post(client, viber, contact)).status == 200
    assert await count(pool, "interactions") == 2
    found = await (
        await client.get("/api/v1/leads", params={"phone": "89001234567"}, headers=auth)
    ).json()
    lead = found["items"][0]
    assert lead["identities"] == [{"kind": "viber", "external_id": "01234567890A="}]
    assert lead["name"] == "Ivan"


async def test_picture_is_fetched(
    client: Client, pool: asyncpg.Pool, fake_viber: tuple[FakeViber, str]
) -> None:
    viber, base = fake_viber
    await _channel(pool, viber, base)
    viber.files["abc.jpg"] = b"picture-bytes"
    event = message_event(
        4912661846655238147,
        {
            "type": "picture",
            "media": f"{base}/media/abc.jpg",
            "thumbnail": f"{base}/media/thumb.jpg",
            "text": "скрин ошибки",
            "file_name": "img.jpg",
            "size": 13,
        },
    )
    assert (await _post(client, viber, event)).status == 200
    await eventually(lambda: pool.fetchval("SELECT state = 'stored' FROM attachments"))
    assert await pool.fetchval("SELECT text FROM interactions") == "скрин ошибки"


async def test_reply_receipts_and_unsubscribe(
    client: Client, pool: asyncpg.Pool, fake_viber: tuple[FakeViber, str], auth: dict[str, str]
) -> None:
    viber, base = fake_viber
    await _channel(pool, viber, base)
    await _post(client, viber, message_event(4912661846655238145, {"type": "text", "text": "hi"}))
    dialog_id = await pool.fetchval("SELECT id FROM dialogs")
    body = await (
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/messages",
            json={"text": "Здравствуйте! Чем помочь?"},
            headers=auth,
        )
    ).json()
    assert body["delivery_state"] == "sent"
    request = viber.calls_of("send_message")[0]
    assert request["receiver"] == "01234567890A=" and request["type"] == "text"
    assert request["sender"]["name"] == "Support" and request["text"] == "Здравствуйте! Чем помочь?"
    token = viber.sent[0]["message_token"]
    for event in ("seen", "delivered"):  # out of order: seen must not go back to delivered
        receipt = {
            "event": event,
            "timestamp": 1700000006000,
            "chat_hostname": "SN-376_",
            "message_token": token,
            "user_id": "01234567890A=",
        }
        assert (await _post(client, viber, receipt)).status == 200
    assert (
        await pool.fetchval("SELECT delivery_state FROM interactions WHERE id = $1", body["id"])
        == "seen"
    )
    await _post(
        client,
        viber,
        {
            "event": "unsubscribed",
            "timestamp": 1700000004000,
            "chat_hostname": "SN-376_",
            "message_token": 4912661846655238149,
            "user_id": "01234567890A=",
        },
    )
    again = await (
        await client.post(f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "?"}, headers=auth)
    ).json()
    assert again["delivery_state"] == "failed" and "unsubscribed" in again["delivery_error"]
    await _post(
        client,
        viber,
        {
            "event": "subscribed",
            "timestamp": 1700000003000,
            "chat_hostname": "SN-376_",
            "message_token": 4912661846655238148,
            "user": {"id": "01234567890A=", "name": "Ivan", "api_version": 10},
        },
    )
    back = await (
        await client.post(f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "!"}, headers=auth)
    ).json()
    assert back["delivery_state"] == "sent"


async def test_provider_status_errors(
    client: Client, pool: asyncpg.Pool, fake_viber: tuple[FakeViber, str], auth: dict[str, str]
) -> None:
    viber, base = fake_viber
    await _channel(pool, viber, base)
    await _post(client, viber, message_event(4912661846655238145, {"type": "text", "text": "hi"}))
    dialog_id = await pool.fetchval("SELECT id FROM dialogs")
    viber.answer_next("send_message", status=6, status_message="receiverNotSubscribed")
    body = await (
        await client.post(f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "a"}, headers=auth)
    ).json()
    assert (
        body["delivery_state"] == "failed" and body["delivery_error"] == "6: receiverNotSubscribed"
    )
    failed = {
        "event": "failed",
        "timestamp": 1,
        "chat_hostname": "x",
        "message_token": 1,
        "user_id": "u",
        "desc": "failure description",
    }
    assert (await _post(client, viber, failed)).status == 200  # a receipt for no message of ours
    for unknown in (
        {
            "event": "conversation_started",
            "timestamp": 1,
            "message_token": 2,
            "type": "open",
            "user": {"id": "x", "name": "N"},
            "subscribed": False,
        },
        {"event": "something_new", "timestamp": 1},
    ):
        assert (await _post(client, viber, unknown)).status == 200
    assert (await _post(client, viber, {"no": "event"})).status == 400


async def test_set_webhook_on_start_survives_the_check_callback(
    hub: Hub, pool: asyncpg.Pool, fake_viber: tuple[FakeViber, str]
) -> None:
    viber, base = fake_viber
    await _channel(pool, viber, base)
    port = free_port()
    live = build_hub(
        replace(hub.settings, public_url=f"http://127.0.0.1:{port}"),
        pool,
        hub.dsn,
        supervise_every=0.2,
    )
    async with TestClient(TestServer(build_app(live), port=port)):
        hook = await eventually(lambda: _webhook(viber))
    assert hook is not None
    assert hook["url"] == f"http://127.0.0.1:{port}/connectors/viber/vb"
    assert set(hook["event_types"]) >= {"delivered", "seen", "failed", "subscribed", "unsubscribed"}
    assert viber.calls[0][0] == "set_webhook"


async def _webhook(viber: FakeViber) -> dict[str, Any] | None:
    return viber.webhook
