"""/ws/operator driven by the `websockets` library, as a third-party console (a CRM's
widget, a mobile app) would: nothing of aiohttp on the client side."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
import websockets
from aiohttp.test_utils import TestClient
from websockets.asyncio.client import ClientConnection

from tests.conftest import OPERATOR_PASSWORD, add_operator, add_telegram
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
SECRET = "console-secret"


async def _next(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of a type; others (state pushes, echoes) are skipped."""
    while True:
        frame: dict[str, Any] = json.loads(await ws.recv(decode=True))
        if frame["type"] == kind:
            return frame


async def test_a_third_party_console_works_a_dialog_end_to_end(
    client: Client, pool: asyncpg.Pool, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, SECRET)
    await add_operator(pool, "anna")
    login = await client.post(
        "/api/v1/auth/login", json={"login": "anna", "password": OPERATOR_PASSWORD}
    )
    token = (await login.json())["token"]
    url = str(client.make_url("/ws/operator")).replace("http://", "ws://")

    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{url}?token=op_forged")  # refused before the upgrade
    assert refused.value.response.status_code == 401

    async with websockets.connect(f"{url}?token={token}", open_timeout=5) as ws:
        hello = await _next(ws, "hello")
        assert hello["operator"]["login"] == "anna"
        await ws.send(json.dumps({"type": "presence", "status": "online"}))
        assert (await _next(ws, "presence"))["status"] == "online"

        reply = await client.post(
            "/connectors/telegram/tg",
            json=text_update(31, "Где мой заказ?"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert reply.status == 200
        offer = await _next(ws, "dialog.offered")
        dialog_id = offer["dialog"]["id"]
        assert offer["lead"]["identities"] == [{"kind": "telegram", "external_id": "5550001"}]
        await ws.send(json.dumps({"type": "accept", "dialog_id": dialog_id}))
        assert (await _next(ws, "dialog.assigned"))["dialog"]["id"] == dialog_id

        await ws.send(
            json.dumps({"type": "send", "dialog_id": dialog_id, "text": "Уже едет", "ref": "r1"})
        )
        sent = await _next(ws, "sent")
        assert (sent["dialog_id"], sent["ref"]) == (dialog_id, "r1")
        await eventually(lambda: _texts(telegram, ["Уже едет"]))

        await ws.send("{not json")
        assert (await _next(ws, "error"))["code"] == "malformed_json"
        await ws.send(json.dumps({"type": "ping"}))
        await _next(ws, "pong")  # the socket stayed usable

        await ws.send(json.dumps({"type": "close", "dialog_id": dialog_id}))
        assert (await _next(ws, "dialog.closed"))["dialog_id"] == dialog_id
    assert await pool.fetchval("SELECT status FROM dialogs WHERE id = $1", dialog_id) == "closed"


async def _texts(telegram: FakeTelegram, texts: list[str]) -> bool:
    return [m["text"] for m in telegram.sent] == texts
