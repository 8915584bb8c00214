"""Telegram through aiogram against tests/fakes/telegram.py, on a real database."""

from __future__ import annotations

import copy
import io
import logging
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.context import Hub
from hub.domain import Channel
from storage import channels
from tests.conftest import count, one_row
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
SECRET = "s3cret-token_for-webhook"


@pytest.fixture
def fake(fake_telegram: tuple[FakeTelegram, str]) -> tuple[FakeTelegram, str]:
    return fake_telegram


async def _channel(
    pool: asyncpg.Pool, base: str, token: str, mode: str = "webhook", name: str = "tg"
) -> Channel:
    async with pool.acquire() as conn:
        return await channels.create(
            conn,
            "telegram",
            name,
            {
                "token": token,
                "secret_token": SECRET,
                "mode": mode,
                "api_base": base,
                "poll_timeout": "1",
            },
        )


async def _post(
    client: Client, update: dict[str, Any], secret: str | None = SECRET, name: str = "tg"
) -> aiohttp.ClientResponse:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return await client.post(f"/connectors/telegram/{name}", json=update, headers=headers)


async def test_webhook_is_set_on_start_with_the_secret(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    hook = await eventually(lambda: _value(telegram.webhook))
    assert hook["url"] == "http://hub.test/connectors/telegram/tg"
    assert hook["secret_token"] == SECRET
    assert "edited_message" in hook["allowed_updates"]


async def _value(v: Any) -> Any:
    return v


async def test_secret_is_checked_and_nothing_is_stored_without_it(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    for secret in (None, "wrong"):
        reply = await _post(client, text_update(1, "hi"), secret=secret)
        assert reply.status == 401
        assert (await reply.json())["error"]["code"] == "bad_secret"
    assert await count(pool, "interactions") == 0


async def test_message_becomes_an_interaction_once(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    update = text_update(900000001, "Hello, I need help")
    for _ in range(2):  # Telegram redelivers an update it thinks failed
        assert (await _post(client, update)).status == 200
    assert await count(pool, "interactions") == 1
    found = await (
        await client.get("/api/v1/leads", params={"identity": "telegram:5550001"}, headers=auth)
    ).json()
    lead = found["items"][0]
    assert lead["name"] == "Ivan"
    history = await (
        await client.get(f"/api/v1/leads/{lead['id']}/interactions", headers=auth)
    ).json()
    item = history["items"][0]
    assert (item["kind"], item["channel"], item["direction"], item["text"]) == (
        "telegram",
        "tg",
        "in",
        "Hello, I need help",
    )
    assert await pool.fetchval("SELECT peer FROM dialogs") == "5550001"


async def test_edited_message_updates_the_interaction(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    await _post(client, text_update(10, "Hello, I need help", message_id=17))
    edited = {
        "update_id": 11,
        "edited_message": {
            "message_id": 17,
            "date": 1700000000,
            "edit_date": 1700000060,
            "from": {"id": 5550001, "is_bot": False, "first_name": "Ivan"},
            "chat": {"id": 5550001, "type": "private", "first_name": "Ivan"},
            "text": "Hello, I need help with order 42",
        },
    }
    assert (await _post(client, edited)).status == 200
    assert (await _post(client, edited)).status == 200  # a redelivered edit changes nothing
    row = await one_row(pool, "SELECT text, extra, edited_at FROM interactions")
    assert row["text"] == "Hello, I need help with order 42"
    assert [e["text"] for e in row["extra"]["edits"]] == ["Hello, I need help"]
    assert row["edited_at"] is not None
    assert await count(pool, "interactions") == 1


async def test_own_shared_contact_and_vcard_feed_the_lead(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    update: dict[str, Any] = {
        "update_id": 900000003,
        "message": {
            "message_id": 18,
            "date": 1700000100,
            "from": {"id": 5550001, "is_bot": False, "first_name": "Ivan"},
            "chat": {"id": 5550001, "type": "private", "first_name": "Ivan"},
            "contact": {
                "phone_number": "+79001234567",
                "first_name": "Ivan",
                "last_name": "Petrov",
                "user_id": 5550001,
                "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Ivan Petrov\nTEL;TYPE=CELL:+79001234567\n"
                "EMAIL:ivan@example.com\nEND:VCARD",
            },
        },
    }
    assert (await _post(client, update)).status == 200
    found = await (
        await client.get("/api/v1/leads", params={"phone": "89001234567"}, headers=auth)
    ).json()
    lead = found["items"][0]
    assert lead["identities"] == [{"kind": "telegram", "external_id": "5550001"}]
    assert lead["emails"] == ["ivan@example.com"]
    # Someone else's contact card is kept as data, not attributed to the sender.
    other = copy.deepcopy(update)
    other["update_id"] += 1
    other["message"]["message_id"] = 19
    other["message"]["contact"] = {
        "phone_number": "+79995554433",
        "first_name": "Friend",
        "user_id": 777,
    }
    assert (await _post(client, other)).status == 200
    assert await pool.fetchval("SELECT count(*) FROM lead_phones WHERE phone = '+79995554433'") == 0
    extra = await pool.fetchval("SELECT extra FROM interactions WHERE external_id = '5550001:19'")
    assert extra["shared_contact"]["phone"] == "+79995554433"


async def test_photo_is_fetched_after_the_event_and_served(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    telegram.add_file("AgAC-large", "photos/file_1.jpg", b"\xff\xd8\xff jpeg bytes")
    update = {
        "update_id": 900000004,
        "message": {
            "message_id": 19,
            "date": 1700000200,
            "from": {"id": 5550001, "is_bot": False, "first_name": "Ivan"},
            "chat": {"id": 5550001, "type": "private", "first_name": "Ivan"},
            "photo": [
                {
                    "file_id": "AgAC-small",
                    "file_unique_id": "AQADs",
                    "width": 90,
                    "height": 67,
                    "file_size": 1200,
                },
                {
                    "file_id": "AgAC-large",
                    "file_unique_id": "AQADl",
                    "width": 1280,
                    "height": 960,
                    "file_size": 14,
                },
            ],
            "caption": "screenshot of the error",
        },
    }
    assert (await _post(client, update)).status == 200
    state = await eventually(
        lambda: pool.fetchval("SELECT state FROM attachments WHERE state <> 'pending'")
    )
    assert state == "stored"
    lead_id = await pool.fetchval("SELECT lead_id FROM interactions")
    items = (
        await (await client.get(f"/api/v1/leads/{lead_id}/interactions", headers=auth)).json()
    )["items"]
    assert items[0]["text"] == "screenshot of the error"
    url = items[0]["attachments"][0]["url"]
    assert await (await client.get(url, headers=auth)).read() == b"\xff\xd8\xff jpeg bytes"


async def test_oversized_media_keeps_the_interaction_with_a_note(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], hub: Hub
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    update = text_update(
        50,
        "",
        document={
            "file_id": "BQAC-doc",
            "file_unique_id": "AgADd",
            "file_name": "huge.zip",
            "mime_type": "application/zip",
            "file_size": hub.settings.max_upload_bytes + 1,
        },
    )
    del update["message"]["text"]
    assert (await _post(client, update)).status == 200
    row = await one_row(pool, "SELECT state, note, storage_path FROM attachments")
    assert row["state"] == "refused" and "over the" in row["note"] and row["storage_path"] is None
    assert await count(pool, "interactions") == 1
    assert not telegram.calls_of("getFile")


async def test_malformed_and_unknown_updates(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    bad = await client.post(
        "/connectors/telegram/tg",
        data=b"{oops",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert bad.status == 400
    not_update = await _post(client, {"update_id": "x", "message": 5})
    assert not_update.status == 400
    reaction = {
        "update_id": 77,
        "message_reaction": {
            "chat": {"id": 1, "type": "private"},
            "message_id": 5,
            "date": 1700000000,
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        },
    }
    assert (await _post(client, reaction)).status == 200
    assert (await _post(client, {"update_id": 78, "brand_new_kind": {"x": 1}})).status == 200
    assert await count(pool, "interactions") == 0
    assert (await _post(client, text_update(1, "x"), name="nope")).status == 404


async def _dialog(client: Client, pool: asyncpg.Pool) -> int:
    assert (await _post(client, text_update(900000001, "Hello"))).status == 200
    dialog_id: int = await pool.fetchval("SELECT id FROM dialogs")
    return dialog_id


async def test_reply_reaches_the_chat(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    dialog_id = await _dialog(client, pool)
    reply = await client.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        json={"text": "Здравствуйте! Чем помочь?"},
        headers=auth,
    )
    assert reply.status == 201, await reply.text()
    body = await reply.json()
    assert (body["direction"], body["delivery_state"], body["text"]) == (
        "out",
        "sent",
        "Здравствуйте! Чем помочь?",
    )
    sent = telegram.calls_of("sendMessage")
    assert [(c.params["chat_id"], c.params["text"]) for c in sent] == [
        ("5550001", "Здравствуйте! Чем помочь?")
    ]
    assert await pool.fetchval(
        "SELECT provider_message_id FROM interactions WHERE direction = 'out'"
    ) == str(telegram.sent[0]["message_id"])


async def test_reply_with_a_document(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    dialog_id = await _dialog(client, pool)
    form = aiohttp.FormData()
    form.add_field("text", "The invoice")
    form.add_field(
        "file", io.BytesIO(b"%PDF invoice"), filename="invoice.pdf", content_type="application/pdf"
    )
    reply = await client.post(f"/api/v1/dialogs/{dialog_id}/messages", data=form, headers=auth)
    assert reply.status == 201, await reply.text()
    body = await reply.json()
    assert body["delivery_state"] == "sent" and body["attachments"][0]["name"] == "invoice.pdf"
    document = telegram.calls_of("sendDocument")[0]
    assert document.files["document"] == ("invoice.pdf", b"%PDF invoice")
    assert document.params["chat_id"] == "5550001"


async def test_429_is_retried_after_retry_after(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    dialog_id = await _dialog(client, pool)
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    reply = await client.post(
        f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "hi"}, headers=auth
    )
    body = await reply.json()
    assert body["delivery_state"] == "pending" and "retry after" in body["delivery_error"]
    state = await eventually(
        lambda: pool.fetchval(
            "SELECT delivery_state FROM interactions WHERE id = $1 AND delivery_state <> 'pending'",
            body["id"],
        ),
        timeout=15,
    )
    assert state == "sent"
    assert len(telegram.calls_of("sendMessage")) == 2
    assert len(telegram.sent) == 1


async def test_permanent_failure_ends_failed_with_the_reason(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    dialog_id = await _dialog(client, pool)
    telegram.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    body = await (
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "hi"}, headers=auth
        )
    ).json()
    assert body["delivery_state"] == "failed"
    assert body["delivery_error"] == "Forbidden: bot was blocked by the user"
    # The block is remembered: the next reply fails at once without calling Telegram.
    calls = len(telegram.calls_of("sendMessage"))
    again = await (
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "hi"}, headers=auth
        )
    ).json()
    assert again["delivery_state"] == "failed" and "unsubscribed" in again["delivery_error"]
    assert len(telegram.calls_of("sendMessage")) == calls


async def test_unreachable_provider_gives_up_after_bounded_attempts(
    client: Client,
    pool: asyncpg.Pool,
    fake: tuple[FakeTelegram, str],
    auth: dict[str, str],
    hub: Hub,
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    dialog_id = await _dialog(client, pool)
    hub.outbound.max_attempts, hub.outbound.base_delay = 3, 0.05
    for _ in range(3):
        telegram.fail_next("sendMessage", 502, "Bad Gateway")
    body = await (
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "hi"}, headers=auth
        )
    ).json()
    final = await eventually(
        lambda: pool.fetchrow(
            "SELECT delivery_state, delivery_error FROM interactions WHERE id = $1 AND delivery_state <> 'pending'",
            body["id"],
        )
    )
    assert final is not None
    assert final["delivery_state"] == "failed"
    assert final["delivery_error"].startswith("gave up after 3 attempts")


async def test_send_api_validates(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    dialog_id = await _dialog(client, pool)
    url = f"/api/v1/dialogs/{dialog_id}/messages"
    assert (await client.post(url, json={"text": "  "}, headers=auth)).status == 422
    assert (await client.post(url, json={"text": "x" * 5000}, headers=auth)).status == 422
    assert (await client.post(url, json={"text": 5}, headers=auth)).status == 422
    assert (
        await client.post(url, data=b"t", headers={**auth, "Content-Type": "text/plain"})
    ).status == 415
    assert (
        await client.post("/api/v1/dialogs/9999/messages", json={"text": "x"}, headers=auth)
    ).status == 404
    assert (await client.post(url, json={"text": "x"})).status == 401
    assert await pool.fetchval("SELECT count(*) FROM interactions WHERE direction = 'out'") == 0


async def test_polling_restart_neither_skips_nor_repeats(
    hub: Hub, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake
    channel = await _channel(pool, base, telegram.token, mode="polling")
    for i in range(1, 4):
        telegram.push_update(text_update(100 + i, f"m{i}"))
    async with TestClient(TestServer(build_app(hub))):
        await eventually(lambda: _count_is(pool, 3))
        await eventually(lambda: _offset_saved(pool, channel.id, 104))
    # While the hub is down, more updates arrive; the last one of the first run is repeated
    # by Telegram too, as happens when an offset was not yet confirmed.
    telegram.push_update(text_update(103, "m3"))
    telegram.push_update(text_update(104, "m4"))
    telegram.push_update(text_update(105, "m5"))
    async with TestClient(TestServer(build_app(hub))):
        await eventually(lambda: _count_is(pool, 5))
        await eventually(lambda: _offset_saved(pool, channel.id, 106))
    texts = [r["text"] for r in await pool.fetch("SELECT text FROM interactions ORDER BY id")]
    assert texts == ["m1", "m2", "m3", "m4", "m5"]
    offsets = [
        int(c.params["offset"]) for c in telegram.calls_of("getUpdates") if c.params.get("offset")
    ]
    assert offsets == sorted(offsets) and offsets[-1] == 106
    assert telegram.calls_of("deleteWebhook")


async def _count_is(pool: asyncpg.Pool, n: int) -> bool:
    return await count(pool, "interactions") == n


async def _offset_saved(pool: asyncpg.Pool, channel_id: int, offset: int) -> bool:
    state = await pool.fetchval("SELECT state FROM channel_state WHERE channel_id = $1", channel_id)
    return bool(state) and state.get("offset") == offset


async def test_the_bot_token_never_reaches_the_logs(
    client: Client,
    pool: asyncpg.Pool,
    fake: tuple[FakeTelegram, str],
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    telegram, base = fake
    with caplog.at_level(logging.DEBUG):
        await _channel(pool, base, telegram.token)
        await eventually(lambda: _value(telegram.webhook))
        dialog_id = await _dialog(client, pool)
        telegram.fail_next("sendMessage", 400, "Bad Request: chat not found")
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "hi"}, headers=auth
        )
        await _post(client, text_update(9, "x"), secret="wrong")
    hub_records = [r for r in caplog.records if r.name != "aiohttp.access"]  # the fake's own log
    assert hub_records
    text = "\n".join(r.getMessage() + str(r.exc_info or "") for r in hub_records)
    assert telegram.token.split(":")[1] not in text and SECRET not in text


async def test_voice_and_location(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    telegram.add_file("AwAC-voice", "voice/file_7.oga", b"OggS voice")
    voice = text_update(
        60,
        "",
        voice={
            "file_id": "AwAC-voice",
            "file_unique_id": "AgADv",
            "duration": 3,
            "mime_type": "audio/ogg",
            "file_size": 10,
        },
    )
    del voice["message"]["text"]
    location = text_update(61, "", location={"latitude": 55.7558, "longitude": 37.6173})
    del location["message"]["text"]
    for update in (voice, location):
        assert (await _post(client, update)).status == 200
    await eventually(
        lambda: pool.fetchval("SELECT state = 'stored' FROM attachments WHERE name = 'voice.ogg'")
    )
    row = await one_row(
        pool, "SELECT text, extra FROM interactions WHERE external_id = '5550001:61'"
    )
    assert row["text"] == "Location: 55.7558, 37.6173"
    assert row["extra"]["location"] == {"lat": 55.7558, "lon": 37.6173}


async def test_a_failed_media_download_never_shows_the_bot_token(
    client: Client,
    pool: asyncpg.Pool,
    fake: tuple[FakeTelegram, str],
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp's error for a failed file download quotes the file URL, which carries the
    token: the attachment's note keeps a code and a cleaned message."""
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    telegram.add_file("AgAC-gone", "photos/file_9.jpg", b"jpeg")
    telegram.file_status = 502
    update = text_update(61, "")
    del update["message"]["text"]
    update["message"]["photo"] = [
        {"file_id": "AgAC-gone", "file_unique_id": "AQADg", "width": 9, "height": 9}
    ]
    caplog.set_level(logging.DEBUG)
    assert (await _post(client, update)).status == 200
    note = await eventually(
        lambda: pool.fetchval("SELECT note FROM attachments WHERE note IS NOT NULL")
    )
    assert note.startswith("provider_unavailable: ") and "502" in note
    lead_id = await pool.fetchval("SELECT lead_id FROM interactions")
    answer = await client.get(f"/api/v1/leads/{lead_id}/interactions", headers=auth)
    body = await answer.text()
    assert "provider_unavailable" in body
    token_part = telegram.token.split(":")[1]
    assert token_part not in body and token_part not in note
    # aiohttp.access lines are the fake's and the test server's own (`hub serve` logs none).
    hub_lines = [r for r in caplog.records if r.name != "aiohttp.access"]
    assert not [r for r in hub_lines if token_part in r.getMessage()]


async def test_a_document_name_that_is_a_path_or_breaks_headers_is_cleaned(
    client: Client, pool: asyncpg.Pool, fake: tuple[FakeTelegram, str], auth: dict[str, str]
) -> None:
    telegram, base = fake
    await _channel(pool, base, telegram.token)
    telegram.add_file("BQAC-evil", "documents/file_1.pdf", b"%PDF")
    update = text_update(62, "")
    del update["message"]["text"]
    update["message"]["document"] = {
        "file_id": "BQAC-evil",
        "file_unique_id": "AgADe",
        "file_name": "../../etc/cron.d/x\r\nSet-Cookie: a=b.pdf",
        "mime_type": "application/pdf",
        "file_size": 4,
    }
    assert (await _post(client, update)).status == 200
    name = await pool.fetchval("SELECT name FROM attachments")
    assert "/" not in name and "\r" not in name and "\n" not in name and not name.startswith(".")
    await eventually(lambda: pool.fetchval("SELECT state = 'stored' FROM attachments"))
    attachment_id = await pool.fetchval("SELECT id FROM attachments")
    download = await client.get(f"/api/v1/attachments/{attachment_id}", headers=auth)
    assert download.status == 200 and await download.read() == b"%PDF"
    assert "Set-Cookie" not in download.headers
    assert download.headers["Content-Security-Policy"].startswith("sandbox")
