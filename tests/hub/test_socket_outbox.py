"""A slow console never holds up whoever sends it a frame; a socket that stops reading is
closed instead of buffering without end."""

from __future__ import annotations

import asyncio
from typing import cast

from aiohttp import web

from hub import socket_outbox
from hub.socket_outbox import SocketOutbox


class StuckSocket:
    """A websocket whose peer reads nothing until `release` is set."""

    def __init__(self) -> None:
        self.closed = False
        self.sent: list[str] = []
        self.release = asyncio.Event()
        self.close_code: int | None = None

    async def send_str(self, text: str) -> None:
        await self.release.wait()
        self.sent.append(text)

    async def close(self, *, code: int, message: bytes) -> bool:
        self.closed, self.close_code = True, code
        return True


async def test_frames_are_queued_in_order_without_waiting_for_the_reader() -> None:
    ws = StuckSocket()
    outbox = SocketOutbox(cast(web.WebSocketResponse, ws))
    outbox.put("heard before hello")
    outbox.start("hello")
    async with asyncio.timeout(1):
        for i in range(100):
            outbox.put(f"frame {i}")  # returns at once although nothing is read
    ws.release.set()
    async with asyncio.timeout(2):
        while len(ws.sent) < 102:
            await asyncio.sleep(0.01)
    # hello first, then what was heard while it was being read, then the rest in order.
    assert ws.sent == ["hello", "heard before hello"] + [f"frame {i}" for i in range(100)]
    await outbox.close()


async def test_a_socket_that_never_reads_is_closed_past_the_limit() -> None:
    ws = StuckSocket()
    outbox = SocketOutbox(cast(web.WebSocketResponse, ws))
    outbox.start("hello")
    for i in range(socket_outbox.LIMIT + 5):
        outbox.put(f"frame {i}")
    async with asyncio.timeout(2):
        while not ws.closed:
            await asyncio.sleep(0.01)
    assert ws.close_code == 1013  # try again later: the console reconnects and resyncs
    outbox.put("after close")  # ignored, no error
    await outbox.close()
