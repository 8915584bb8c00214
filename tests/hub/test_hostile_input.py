"""Input that is not as expected never gets a 500: every such request gets a 4xx JSON error
and writes nothing, and a provider event with a valid signature that cannot be used gets a
200 (so the provider does not retry it forever) and a warning in the log."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from yarl import URL

from hub.domain import Channel
from storage import channels
from tests.conftest import OPERATOR_PASSWORD, VK_GROUP, add_operator, add_telegram, count
from tests.fakes.telegram import FakeTelegram
from tests.fakes.viber import message_event, sign
from tests.fakes.vk import message_new

Client = TestClient[Any, Any]
TG_SECRET = "hostile-input-secret"
VIBER_TOKEN = "4453b6ac1b35f2b6-a9fc9a9b8a0b2c1d-1d5c5f1b2e1b1c1a"
DEEP = b"[" * 200_000 + b"]" * 200_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
TOO_BIG = 2**70
STORED_TABLES = ("leads", "interactions", "dialogs", "attachments", "unsorted")


@pytest.fixture
async def wired(pool: asyncpg.Pool, form: Channel) -> None:
    """A form, a Telegram, a VK and a Viber channel (no provider is reached: webhooks only)."""
    async with pool.acquire() as conn:
        await channels.create(
            conn,
            "vk",
            "club",
            {
                "token": "vk1.a.token",
                "group_id": str(VK_GROUP),
                "confirmation": "c0nf1rm",
                "secret": "s3cr3t",
                "api_base": "http://127.0.0.1:9",
            },
        )
        await channels.create(
            conn, "viber", "vb", {"auth_token": VIBER_TOKEN, "api_base": "http://127.0.0.1:9"}
        )
    await add_telegram(pool, FakeTelegram(), "http://127.0.0.1:9", TG_SECRET, mode="polling")


async def _nothing_stored(pool: asyncpg.Pool) -> None:
    for table in STORED_TABLES:
        assert await count(pool, table) == 0, table


async def _is_json_4xx(reply: aiohttp.ClientResponse) -> dict[str, Any]:
    assert 400 <= reply.status < 500, (reply.status, await reply.text())
    assert reply.content_type == "application/json", await reply.text()
    body: dict[str, Any] = await reply.json()
    assert set(body["error"]) >= {"code", "message"}
    return body


async def test_deeply_nested_json_is_a_400_everywhere(
    client: Client, pool: asyncpg.Pool, wired: None, auth: dict[str, str]
) -> None:
    json_headers = {"Content-Type": "application/json"}
    for body in (DEEP, DEEP_OBJECT):
        for path, extra in (
            ("/forms/site", {}),
            ("/api/v1/auth/login", {}),
            ("/connectors/vk/club", {}),
            ("/connectors/telegram/tg", {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}),
            ("/connectors/viber/vb", {"X-Viber-Content-Signature": sign(VIBER_TOKEN, body)}),
        ):
            reply = await client.post(path, data=body, headers={**json_headers, **extra})
            await _is_json_4xx(reply)
        reply = await client.patch("/api/v1/leads/1", data=body, headers={**json_headers, **auth})
        await _is_json_4xx(reply)
    await _nothing_stored(pool)


@pytest.mark.parametrize("bad", ["nul\x00inside", "lone \ud800 surrogate"])
async def test_nul_and_lone_surrogates_in_text_are_refused(
    client: Client, pool: asyncpg.Pool, wired: None, auth: dict[str, str], bad: str
) -> None:
    def encoded(value: Any) -> bytes:
        return json.dumps(value).encode()  # \u0000 and \ud800 escapes: valid JSON

    json_headers = {"Content-Type": "application/json"}
    for fields in (
        {"name": bad, "phone": "+79120000001"},
        {"phone": "+79120000001", "message": bad},
        {"email": "a@example.com", "extra_field": bad},
    ):
        reply = await client.post("/forms/site", data=encoded(fields), headers=json_headers)
        await _is_json_4xx(reply)
    urlencoded = await client.post(
        "/forms/site",
        data=f"phone=%2B79120000001&message={bad}".encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await _is_json_4xx(urlencoded)
    login = await client.post(
        "/api/v1/auth/login", data=encoded({"login": bad, "password": bad}), headers=json_headers
    )
    await _is_json_4xx(login)
    for query in ("q", "phone", "email", "identity"):
        value = quote(bad.encode("utf-8", "surrogatepass"))
        reply = await client.get(URL(f"/api/v1/leads?{query}={value}", encoded=True), headers=auth)
        assert reply.status < 500 and reply.content_type == "application/json"
    for path in ("/forms/si%00te", "/connectors/vk/cl%00ub", "/api/v1/leads/1%00"):
        reply = await client.post(path, json={"phone": "+79120000001"}, headers=auth)
        await _is_json_4xx(reply)
    await _nothing_stored(pool)

    created = await client.post("/forms/site", json={"name": "Ivan", "phone": "+79120000001"})
    assert created.status == 201
    lead_id, dialog_id = (await created.json())["lead_id"], (await created.json())["dialog_id"]
    patch = await client.patch(
        f"/api/v1/leads/{lead_id}", data=encoded({"name": bad}), headers={**json_headers, **auth}
    )
    await _is_json_4xx(patch)
    send = await client.post(
        f"/api/v1/dialogs/{dialog_id}/messages",
        data=encoded({"text": bad}),
        headers={**json_headers, **auth},
    )
    await _is_json_4xx(send)
    assert await pool.fetchval("SELECT name FROM leads") == "Ivan"
    assert await count(pool, "interactions") == 1


async def test_ids_and_cursors_beyond_64_bits_or_in_other_digits(
    client: Client, pool: asyncpg.Pool, wired: None, auth: dict[str, str]
) -> None:
    created = await client.post("/forms/site", json={"name": "Ivan", "phone": "+79120000001"})
    lead_id = (await created.json())["lead_id"]
    big = str(TOO_BIG)
    for path in (
        f"/api/v1/leads/{big}",
        "/api/v1/leads/\u0661",  # ARABIC-INDIC DIGIT ONE
        "/api/v1/dialogs/\uff11",  # FULLWIDTH DIGIT ONE
        f"/api/v1/leads?cursor={big}",
        "/api/v1/leads?cursor=\u0661",
        f"/api/v1/leads?limit={big}",
        f"/api/v1/dialogs?lead_id={big}",
        f"/api/v1/dialogs?operator={big}",
        "/api/v1/dialogs?lead_id=\u0661",
        f"/api/v1/leads/{lead_id}/interactions?cursor={big}",
        f"/api/v1/attachments/{big}",
    ):
        await _is_json_4xx(await client.get(path, headers=auth))
    for body in ({"other_id": TOO_BIG}, {"other_id": -1}, {"other_id": "1"}, {"other_id": 1.5}):
        reply = await client.post(f"/api/v1/leads/{lead_id}/merge", json=body, headers=auth)
        await _is_json_4xx(reply)
    assert await count(pool, "lead_merges") == 0


@pytest.mark.parametrize(
    "message",
    [
        {"text": {"not": "a string"}},
        {"text": "x", "from_id": "not a number"},
        {"text": "x", "date": [1]},
        {"text": "x", "attachments": "not a list"},
        {"text": "x", "attachments": [{"type": "doc", "doc": {"url": 5, "size": "big"}}]},
        {
            "text": "x",
            "attachments": [{"type": "photo", "photo": {"sizes": [{"url": "u", "width": "w"}]}}],
        },
        {"text": "x", "geo": "here"},
        {"text": "x", "reply_message": 7},
        {"text": "x", "fwd_messages": {"a": 1}},
        {"text": "x", "conversation_message_id": TOO_BIG},
    ],
)
async def test_vk_events_of_the_wrong_shape_behind_a_valid_secret_are_acknowledged(
    client: Client,
    pool: asyncpg.Pool,
    wired: None,
    caplog: pytest.LogCaptureFixture,
    message: dict[str, Any],
) -> None:
    event = message_new(VK_GROUP, "e-shape", "")
    event["object"]["message"].update(message)
    caplog.set_level(logging.WARNING)
    reply = await client.post("/connectors/vk/club", json=event)
    assert reply.status == 200 and await reply.text() == "ok"
    for table in ("leads", "interactions", "dialogs"):
        stored = await count(pool, table)
        assert stored in (0, 1), table
    if not await count(pool, "interactions"):
        assert any(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize(
    "change",
    [
        {"sender": "not an object"},
        {"sender": {"id": ["x"], "name": 5}},
        {"message": "not an object"},
        {"message": {"type": "text", "text": {"a": 1}}},
        {"message": {"type": "picture", "media": 5, "size": "big"}},
        {"message": {"type": "contact", "contact": "x"}},
        {"message": {"type": "location", "location": [1, 2]}},
        {"message_token": {"a": 1}},
        {"message_token": TOO_BIG},
        {"timestamp": "yesterday"},
    ],
)
async def test_viber_events_of_the_wrong_shape_behind_a_valid_signature_are_acknowledged(
    client: Client,
    pool: asyncpg.Pool,
    wired: None,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
) -> None:
    event = message_event(4912661846655238145, {"type": "text", "text": "hello"})
    event.update(change)
    body = json.dumps(event).encode()
    caplog.set_level(logging.WARNING)
    reply = await client.post(
        "/connectors/viber/vb",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Viber-Content-Signature": sign(VIBER_TOKEN, body),
        },
    )
    assert reply.status == 200, await reply.text()
    if not await count(pool, "interactions"):
        assert any(r.levelno == logging.WARNING for r in caplog.records)


def _multipart(filename: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand: aiohttp's client refuses control characters."""
    boundary = b"hostile-boundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="phone"\r\n\r\n+79120000001\r\n'
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\ndata\r\n"
        b"--" + boundary + b"--\r\n"
    )
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary.decode()}",
        "Accept": "application/json",
    }
    return body, headers


async def test_a_nul_in_a_multipart_file_name_is_a_400(
    client: Client, pool: asyncpg.Pool, wired: None
) -> None:
    body, headers = _multipart(b"evil\x00.txt")
    await _is_json_4xx(await client.post("/forms/site", data=body, headers=headers))
    await _nothing_stored(pool)


@pytest.mark.parametrize(
    "filename", [b"../../etc/passwd", b"..%2F..%2Fx.txt", b"a\\..\\b.txt", b"\xe2\x80\xae.exe"]
)
async def test_file_names_that_are_paths_keep_only_their_last_part(
    client: Client, pool: asyncpg.Pool, wired: None, filename: bytes
) -> None:
    body, headers = _multipart(filename)
    reply = await client.post("/forms/site", data=body, headers=headers)
    assert reply.status == 201, await reply.text()
    name = await pool.fetchval("SELECT name FROM attachments")
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert "\u202e" not in name  # no right-to-left override hiding the real extension


async def test_an_empty_json_body_is_a_400(
    client: Client, pool: asyncpg.Pool, wired: None, auth: dict[str, str]
) -> None:
    for path in ("/api/v1/auth/login", "/forms/site"):
        reply = await client.post(path, data=b"", headers={"Content-Type": "application/json"})
        body = await _is_json_4xx(reply)
        assert reply.status == 400, body


async def test_websocket_frames_of_the_wrong_shape_get_error_frames(
    client: Client, pool: asyncpg.Pool
) -> None:
    await add_operator(pool, "anna")
    login = await client.post(
        "/api/v1/auth/login", json={"login": "anna", "password": OPERATOR_PASSWORD}
    )
    token = (await login.json())["token"]
    ws = await client.ws_connect(f"/ws/operator?token={token}")
    assert json.loads(await ws.receive_str())["type"] == "hello"
    frames: list[Any] = [
        {"type": "presence", "status": ["online"]},
        {"type": "presence", "status": {"a": 1}},
        {"type": "accept", "dialog_id": TOO_BIG},
        {"type": "accept", "dialog_id": 1.5},
        {"type": "decline", "dialog_id": [1]},
        {"type": "send", "dialog_id": 1, "text": ["x"]},
        {"type": "send", "dialog_id": 1, "text": "nul\x00"},
        {"type": "transfer", "dialog_id": 1, "queue": {"a": 1}},
        {"type": "transfer", "dialog_id": 1, "operator_id": TOO_BIG},
        {"type": "close", "dialog_id": -1},
        {"type": "read", "dialog_id": "x"},
        {"type": ["ping"]},
        {"type": "x" * 100_000},
    ]
    for frame in frames:
        await ws.send_str(json.dumps(frame))
        answer = json.loads(await ws.receive_str())
        assert answer["type"] == "error", (frame, answer)
    await ws.send_str(json.dumps({"type": "ping"}))
    while (message := await ws.receive()).type == WSMsgType.TEXT:
        if json.loads(message.data)["type"] == "pong":
            break
    else:
        raise AssertionError(f"socket ended: {message}")
    await ws.close()
