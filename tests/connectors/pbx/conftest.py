"""Telephony fixtures: the fake providers' server, operators with extensions on live
websockets, and a look at what the hub stored of a call."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from hub.domain import Channel
from storage import channels
from tests.conftest import add_operator, one_row
from tests.fixtures.sockets import Socket, signed_in
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]
CUSTOMER = "+79001234567"


async def add_pbx(pool: asyncpg.Pool, name: str, **settings: str) -> Channel:
    async with pool.acquire() as conn:
        return await channels.create(conn, "pbx", name, settings)


async def operator_online(
    client: Client, pool: asyncpg.Pool, login: str, extension: str
) -> tuple[int, Socket]:
    """An operator with an extension, signed in, online on a websocket."""
    operator_id = await add_operator(pool, login, extension=extension)
    socket = await signed_in(client, login)
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


async def stored_recording(pool: asyncpg.Pool, interaction_id: int) -> asyncpg.Record:
    """The call's recording once the media fetcher has stored it."""

    async def fetched() -> asyncpg.Record | None:
        return await pool.fetchrow(
            "SELECT * FROM attachments WHERE interaction_id = $1 AND state = 'stored'",
            interaction_id,
        )

    file = await eventually(fetched)
    assert file is not None
    return file
