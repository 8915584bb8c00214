"""An operator's typing reaches the customer where the provider shows it: Telegram's
`sendChatAction`, VK's `messages.setActivity`; at most once in a few seconds per dialog."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from hub import typing_relay
from tests.conftest import VK_GROUP, add_operator, add_telegram, add_vk
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fakes.vk import FakeVk, message_new
from tests.fixtures.sockets import signed_in
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
SECRET = "typing-secret"


async def _held_by_anna(pool: asyncpg.Pool) -> int:
    anna = await add_operator(pool, "anna")
    await add_operator(pool, "boris")
    dialog_id: int = await eventually(lambda: pool.fetchval("SELECT id FROM dialogs"))
    await pool.execute(
        "UPDATE dialogs SET status = 'assigned', operator_id = $2 WHERE id = $1", dialog_id, anna
    )
    return dialog_id


async def test_typing_is_shown_in_telegram_once_in_a_while(
    client: Client,
    pool: asyncpg.Pool,
    fake_telegram: tuple[FakeTelegram, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, SECRET)
    await client.post(
        "/connectors/telegram/tg",
        json=text_update(1, "hi", user_id=5557301),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    dialog_id = await _held_by_anna(pool)
    monkeypatch.setattr(typing_relay, "EVERY_S", 0.5)
    anna = await signed_in(client, "anna")
    for _ in range(5):  # a console sending on every key
        await anna.send(type="typing", dialog_id=dialog_id)
    await anna.settle()
    actions = await eventually(lambda: _calls(telegram.calls_of("sendChatAction")))
    assert [(c.params["chat_id"], c.params["action"]) for c in actions] == [("5557301", "typing")]
    await asyncio.sleep(0.6)  # past the limit: shown again
    await anna.send(type="typing", dialog_id=dialog_id)
    await eventually(lambda: _calls(telegram.calls_of("sendChatAction"), 2))
    assert "error" not in anna.kinds()

    # Someone else's dialog: refused, and nothing reaches the provider.
    boris = await signed_in(client, "boris")
    await boris.send(type="typing", dialog_id=dialog_id)
    assert (await boris.next("error"))["code"] == "not_yours"
    # A provider failing costs the hint, never the operator an error.
    telegram.fail_next("sendChatAction", 403, "Forbidden: bot was blocked by the user")
    await asyncio.sleep(0.6)
    await anna.send(type="typing", dialog_id=dialog_id)
    await eventually(lambda: _calls(telegram.calls_of("sendChatAction"), 3))
    await anna.settle()
    assert "error" not in anna.kinds()
    assert telegram.calls_of("sendMessage") == []
    for socket in (anna, boris):
        await socket.ws.close()


async def test_typing_is_shown_in_vk(client: Client, pool: asyncpg.Pool, fake_vk: FakeVk) -> None:
    await add_vk(pool, fake_vk)
    event = message_new(VK_GROUP, "e-typing", "hello", from_id=7730001)
    assert await (await client.post("/connectors/vk/club", json=event)).text() == "ok"
    dialog_id = await _held_by_anna(pool)
    anna = await signed_in(client, "anna")
    await anna.send(type="typing", dialog_id=dialog_id)
    calls = await eventually(lambda: _calls(fake_vk.calls_of("messages.setActivity")))
    params = calls[0].params
    assert (params["peer_id"], params["type"], params["group_id"]) == (
        "7730001",
        "typing",
        str(VK_GROUP),
    )
    await anna.settle()
    assert "error" not in anna.kinds()
    await anna.ws.close()


async def test_a_channel_without_typing_is_not_asked(
    client: Client, pool: asyncpg.Pool, fake_telegram: tuple[FakeTelegram, str], form: Any
) -> None:
    """A site form's dialog (answered by email) has no typing to show: no request, no error."""
    telegram, _ = fake_telegram
    await client.post("/forms/site", json={"phone": "+79160007301", "message": "hi"})
    dialog_id = await _held_by_anna(pool)
    anna = await signed_in(client, "anna")
    await anna.send(type="typing", dialog_id=dialog_id)
    await asyncio.sleep(0.3)
    await anna.settle()
    assert "error" not in anna.kinds() and telegram.calls == []
    await anna.ws.close()


async def _calls(found: list[Any], at_least: int = 1) -> list[Any]:
    """The calls found so far, once there are `at_least` of them (none until then)."""
    return found if len(found) >= at_least else []
