"""Frames waiting for one websocket, written in order by a task of their own.

Whoever produces a frame (the router offering a dialog, another operator's reply, the
supervisors' view) must not wait for a slow console to read it: awaiting each socket's
write made routing queue behind the slowest reader. A socket whose backlog grows past
`LIMIT` frames is closed instead of buffering without end; its console reconnects and
gets the whole current state again in `hello`.

`hello` goes first: the socket hears of changes from the moment it joins the broadcasts
(so none made while its `hello` is read from the database is lost), but they wait until
`start` puts the `hello` ahead of them. A console never gets news of a state it has not
been given yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSCloseCode, web

log = logging.getLogger(__name__)

LIMIT = 2000


class SocketOutbox:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def start(self, first: str) -> None:
        """Write `first`, then every frame queued before and after it, in order."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(first), name="socket-outbox")

    def put(self, text: str) -> None:
        if self.ws.closed:
            return
        if self._queue.qsize() >= LIMIT:
            log.warning("closing an operator socket that does not read its frames")
            self._queue = asyncio.Queue()
            task = asyncio.create_task(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            )
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
            return
        self._queue.put_nowait(text)

    async def _write(self, first: str) -> None:
        text = first
        while True:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return  # the socket closed; its console resyncs with its next hello
            text = await self._queue.get()

    async def close(self) -> None:
        if self._writer is None:
            return
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
