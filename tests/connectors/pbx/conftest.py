"""Telephony fixtures: the fake providers' server, operators with extensions on live
websockets, and a look at what the hub stored of a call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.domain import Channel
from storage import channels
from tests.conftest import OPERATOR_PASSWORD, add_operator, one_row
from tests.fakes.pbx import FakePbx

Client = TestClient[Any, Any]
CUSTOMER = "+79001234567"


@pytest.fixture
async def fake_pbx() -> AsyncIterator[FakePbx]:
    pbx = FakePbx()
    server = TestServer(pbx.app)
    await server.start_server()
    pbx.base = str(server.make_url("")).rstrip("/")
    yield pbx
    await server.close()


async def add_pbx(pool: asyncpg.Pool, name: str, **settings: str) -> Channel:
    async with pool.acquire() as conn:
        return await channels.create(conn, "pbx", name, settings)


class Socket:
    """An operator's console socket, keeping frames it was not asked for yet."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def next(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        for i, frame in enumerate(self.frames):
            if frame["type"] == kind:
                return self.frames.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                received: dict[str, Any] = json.loads(await self.ws.receive_str())
                if received["type"] == kind:
                    return received
                self.frames.append(received)

    async def settle(self) -> list[dict[str, Any]]:
        """Every frame sent so far: a ping's pong comes after them all."""
        await self.ws.send_str(json.dumps({"type": "ping"}))
        await self.next("pong")
        return self.frames

    def kinds(self) -> list[str]:
        return [f["type"] for f in self.frames]


async def operator_online(
    client: Client, pool: asyncpg.Pool, login: str, extension: str
) -> tuple[int, Socket]:
    """An operator with an extension, signed in, online on a websocket."""
    operator_id = await add_operator(pool, login, extension=extension)
    reply = await client.post(
        "/api/v1/auth/login", json={"login": login, "password": OPERATOR_PASSWORD}
    )
    token = (await reply.json())["token"]
    socket = Socket(await client.ws_connect(f"/ws/operator?token={token}"))
    await socket.next("hello")
    await socket.ws.send_str(json.dumps({"type": "presence", "status": "online"}))
    await socket.next("presence")
    return operator_id, socket


async def the_call(pool: asyncpg.Pool, provider_call_id: str) -> asyncpg.Record:
    return await one_row(
        pool,
        """SELECT c.*, i.lead_id, i.call AS shown FROM calls c
           LEFT JOIN interactions i ON i.id = c.interaction_id
           WHERE c.provider_call_id = $1""",
        provider_call_id,
    )
