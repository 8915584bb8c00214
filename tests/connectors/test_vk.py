"""VK communities against tests/fakes/vk.py: Callback API, Bots Long Poll, messages.send."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.vk import random_id
from hub.app import build_app
from hub.context import Hub
from hub.domain import Channel
from storage import channels
from tests.conftest import VK_GROUP, count
from tests.fakes.vk import FakeVk, message_new
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
GROUP = VK_GROUP


@pytest.fixture
def fake(fake_vk: FakeVk) -> FakeVk:
    return fake_vk


async def _channel(pool: asyncpg.Pool, vk: FakeVk, mode: str = "webhook", **extra: str) -> Channel:
    settings = {
        "token": vk.token,
        "group_id": str(GROUP),
        "confirmation": "693d0ba9",
        "secret": "s3cr3t",
        "mode": mode,
        "api_base": vk.base,
        "wait": "1",
        **extra,
    }
    async with pool.acquire() as conn:
        return await channels.create(conn, "vk", "club", settings)


async def test_confirmation_handshake(client: Client, pool: asyncpg.Pool, fake: FakeVk) -> None:
    await _channel(pool, fake)
    reply = await client.post(
        "/connectors/vk/club", json={"type": "confirmation", "group_id": GROUP}
    )
    assert reply.status == 200 and reply.content_type == "text/plain"
    assert await reply.text() == "693d0ba9"
    other = await client.post("/connectors/vk/club", json={"type": "confirmation", "group_id": 1})
    assert other.status == 403


async def test_secret_is_checked(client: Client, pool: asyncpg.Pool, fake: FakeVk) -> None:
    await _channel(pool, fake)
    for secret in ("wrong", None):
        reply = await client.post(
            "/connectors/vk/club", json=message_new(GROUP, "e1", "hi", secret=secret)
        )
        assert reply.status == 403
        assert await reply.text() != "ok"
    assert await count(pool, "interactions") == 0


async def test_a_channel_stored_without_a_secret_refuses_every_event(
    client: Client, pool: asyncpg.Pool, fake: FakeVk
) -> None:
    """Channels made before a secret was required: events are refused, not trusted."""
    await _channel(pool, fake, secret="")
    for secret in ("", None, "anything"):
        reply = await client.post(
            "/connectors/vk/club", json=message_new(GROUP, "e1", "hi", secret=secret)
        )
        assert reply.status == 403 and (await reply.json())["error"]["code"] == "no_secret"
    assert await count(pool, "interactions") == 0


async def test_message_new_is_stored_once_and_answered_ok(
    client: Client, pool: asyncpg.Pool, fake: FakeVk, auth: dict[str, str]
) -> None:
    await _channel(pool, fake)
    event = message_new(
        GROUP, "2b1c7e0f8f3d1c6a9e0d4b7a5c3e2f1a0b9c8d7e", "Здравствуйте, где мой заказ?"
    )
    for _ in range(2):  # VK resends when it did not see "ok" in time
        reply = await client.post("/connectors/vk/club", json=event)
        assert reply.status == 200 and await reply.text() == "ok"
    assert await count(pool, "interactions") == 1
    found = await (
        await client.get("/api/v1/leads", params={"identity": "vk:1234567"}, headers=auth)
    ).json()
    assert len(found["items"]) == 1
    assert await pool.fetchval("SELECT peer FROM dialogs") == "1234567"


async def test_edit_reply_and_unknown_events(
    client: Client, pool: asyncpg.Pool, fake: FakeVk
) -> None:
    await _channel(pool, fake)
    await client.post("/connectors/vk/club", json=message_new(GROUP, "e1", "Где мой заказ?"))
    edit = {
        "group_id": GROUP,
        "type": "message_edit",
        "event_id": "7f0e",
        "v": "5.199",
        "secret": "s3cr3t",
        "object": {
            "date": 1700000000,
            "update_time": 1700000050,
            "from_id": 1234567,
            "id": 588,
            "out": 0,
            "peer_id": 1234567,
            "text": "Где мой заказ №42?",
            "conversation_message_id": 88,
            "attachments": [],
        },
    }
    assert await (await client.post("/connectors/vk/club", json=edit)).text() == "ok"
    reply = {
        "group_id": GROUP,
        "type": "message_reply",
        "event_id": "a1b2",
        "v": "5.199",
        "secret": "s3cr3t",
        "object": {
            "date": 1700000100,
            "from_id": -GROUP,
            "id": 502,
            "out": 1,
            "peer_id": 1234567,
            "text": "Заказ передан в доставку",
            "conversation_message_id": 89,
            "random_id": 17,
        },
    }
    assert await (await client.post("/connectors/vk/club", json=reply)).text() == "ok"
    typing = {
        "group_id": GROUP,
        "type": "message_typing_state",
        "event_id": "t1",
        "v": "5.199",
        "secret": "s3cr3t",
        "object": {"state": "typing", "from_id": 1234567, "to_id": -GROUP},
    }
    assert await (await client.post("/connectors/vk/club", json=typing)).text() == "ok"
    rows = await pool.fetch("SELECT text, direction FROM interactions")
    assert [(r["text"], r["direction"]) for r in rows] == [("Где мой заказ №42?", "in")]
    bad = await client.post(
        "/connectors/vk/club", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad.status == 400
    assert (await client.post("/connectors/vk/club", json=[1])).status == 400


async def test_photo_and_doc_are_fetched(
    client: Client, pool: asyncpg.Pool, fake: FakeVk, auth: dict[str, str]
) -> None:
    await _channel(pool, fake)
    fake.files["big.jpg"] = b"jpeg-large"
    fake.files["invoice.pdf"] = b"%PDF"
    attachments = [
        {
            "type": "photo",
            "photo": {
                "id": 1,
                "owner_id": 1234567,
                "sizes": [
                    {"type": "s", "url": f"{fake.base}/files/small.jpg", "width": 75, "height": 50},
                    {
                        "type": "w",
                        "url": f"{fake.base}/files/big.jpg",
                        "width": 1280,
                        "height": 853,
                    },
                ],
            },
        },
        {
            "type": "doc",
            "doc": {
                "id": 2,
                "owner_id": 1234567,
                "title": "invoice",
                "ext": "pdf",
                "size": 4,
                "url": f"{fake.base}/files/invoice.pdf",
            },
        },
    ]
    event = message_new(GROUP, "e9", "", attachments=attachments)
    assert await (await client.post("/connectors/vk/club", json=event)).text() == "ok"
    await eventually(
        lambda: pool.fetchval("SELECT count(*) = 2 FROM attachments WHERE state = 'stored'")
    )
    names = [r["name"] for r in await pool.fetch("SELECT name FROM attachments ORDER BY id")]
    assert names == ["photo_1234567_1.jpg", "invoice.pdf"]


async def test_reply_uses_peer_and_a_random_id_from_our_id(
    client: Client, pool: asyncpg.Pool, fake: FakeVk, auth: dict[str, str]
) -> None:
    await _channel(pool, fake)
    await client.post("/connectors/vk/club", json=message_new(GROUP, "e1", "hi"))
    dialog_id = await pool.fetchval("SELECT id FROM dialogs")
    body = await (
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "Заказ в пути"}, headers=auth
        )
    ).json()
    assert body["delivery_state"] == "sent"
    send = fake.calls_of("messages.send")[0].params
    assert (send["peer_id"], send["message"], send["random_id"]) == (
        "1234567",
        "Заказ в пути",
        str(random_id(body["id"])),
    )
    assert send["v"] == "5.199"


async def test_a_retried_send_is_never_delivered_twice(
    client: Client, pool: asyncpg.Pool, fake: FakeVk, auth: dict[str, str], hub: Hub
) -> None:
    await _channel(pool, fake)
    await client.post("/connectors/vk/club", json=message_new(GROUP, "e1", "hi"))
    dialog_id = await pool.fetchval("SELECT id FROM dialogs")
    hub.outbound.base_delay = 0.05
    fake.crash_after_send = 1  # VK took the message, then the answer was lost
    body = await (
        await client.post(
            f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "once"}, headers=auth
        )
    ).json()
    assert body["delivery_state"] == "pending"
    await eventually(
        lambda: pool.fetchval(
            "SELECT delivery_state = 'sent' FROM interactions WHERE id = $1", body["id"]
        )
    )
    assert len(fake.calls_of("messages.send")) == 2
    assert [d["message"] for d in fake.delivered] == ["once"]


async def test_rate_limit_error_is_retried_and_refusal_is_final(
    client: Client, pool: asyncpg.Pool, fake: FakeVk, auth: dict[str, str]
) -> None:
    await _channel(pool, fake)
    await client.post("/connectors/vk/club", json=message_new(GROUP, "e1", "hi"))
    dialog_id = await pool.fetchval("SELECT id FROM dialogs")
    fake.fail_next("messages.send", 6)
    body = await (
        await client.post(f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "a"}, headers=auth)
    ).json()
    assert body["delivery_state"] == "pending"
    await eventually(
        lambda: pool.fetchval(
            "SELECT delivery_state = 'sent' FROM interactions WHERE id = $1", body["id"]
        )
    )
    fake.fail_next("messages.send", 901)
    body = await (
        await client.post(f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "b"}, headers=auth)
    ).json()
    assert body["delivery_state"] == "failed" and body["delivery_error"].startswith("901")


async def test_long_poll_with_failed_codes_and_restart(
    hub: Hub, pool: asyncpg.Pool, fake: FakeVk
) -> None:
    channel = await _channel(pool, fake, mode="polling")
    fake.poll_failures = [{"failed": 1, "ts": str(fake.ts)}, {"failed": 2}]
    async with TestClient(TestServer(build_app(hub))):
        await eventually(lambda: _value(len(fake.checks) >= 3))
        for i in range(1, 3):
            fake.push(
                {
                    "type": "message_new",
                    "event_id": f"lp{i}",
                    "v": "5.199",
                    "group_id": GROUP,
                    "object": message_new(GROUP, f"lp{i}", f"m{i}", cmid=i)["object"],
                }
            )
        await eventually(lambda: _texts_are(pool, ["m1", "m2"]))
        await eventually(lambda: _ts_saved(pool, channel.id, str(fake.ts)))
    assert len(fake.calls_of("groups.getLongPollServer")) == 2  # the start, and after failed 2
    fake.push(
        {
            "type": "message_new",
            "event_id": "lp3",
            "v": "5.199",
            "group_id": GROUP,
            "object": message_new(GROUP, "lp3", "m3", cmid=3)["object"],
        }
    )
    fake.key = "key-2"  # the key expired while the hub was down: failed 2, keep our ts
    async with TestClient(TestServer(build_app(hub))):
        await eventually(lambda: _texts_are(pool, ["m1", "m2", "m3"]))
        servers = len(fake.calls_of("groups.getLongPollServer"))
        fake.poll_failures = [{"failed": 3}]  # history lost: new key and ts
        await eventually(lambda: _value(not fake.poll_failures))
        # Pushed once the hub polls with its new key and ts: an event pushed before that
        # is history the failure said was lost.
        await eventually(
            lambda: _value(len(fake.calls_of("groups.getLongPollServer")) == servers + 1)
        )
        polls = len(fake.checks)
        await eventually(lambda: _value(len(fake.checks) > polls))
        fake.push(
            {
                "type": "message_new",
                "event_id": "lp4",
                "v": "5.199",
                "group_id": GROUP,
                "object": message_new(GROUP, "lp4", "m4", cmid=4)["object"],
            }
        )
        await eventually(lambda: _texts_are(pool, ["m1", "m2", "m3", "m4"]))
        assert len(fake.calls_of("groups.getLongPollServer")) == servers + 1
    checks = [c["ts"] for c in fake.checks]
    assert checks[0] == "10"  # the first run starts at the server's ts
    assert "12" in checks  # the restart resumed from the saved ts, not the server's newest


async def _texts_are(pool: asyncpg.Pool, texts: list[str]) -> bool:
    return [
        r["text"] for r in await pool.fetch("SELECT text FROM interactions ORDER BY id")
    ] == texts


async def _ts_saved(pool: asyncpg.Pool, channel_id: int, ts: str) -> bool:
    state = await pool.fetchval("SELECT state FROM channel_state WHERE channel_id = $1", channel_id)
    return bool(state) and str(state.get("ts")) == ts


async def _value(value: object) -> object:
    return value


@pytest.mark.parametrize("code", [6, 9, 10])
async def test_retryable_errors_of_get_long_poll_server_are_retried(
    hub: Hub, pool: asyncpg.Pool, fake: FakeVk, code: int
) -> None:
    """Too many requests (6), flood control (9) and VK's internal error (10) while asking
    for the long-poll server must not park the channel until its settings change."""
    await _channel(pool, fake, mode="polling")
    fake.fail_next("groups.getLongPollServer", code)
    async with TestClient(TestServer(build_app(hub))):
        await eventually(lambda: _value(len(fake.calls_of("groups.getLongPollServer")) >= 2))
        fake.push(
            {
                "type": "message_new",
                "event_id": "after-retry",
                "v": "5.199",
                "group_id": GROUP,
                "object": message_new(GROUP, "after-retry", "still here", cmid=1)["object"],
            }
        )
        await eventually(lambda: _texts_are(pool, ["still here"]))
