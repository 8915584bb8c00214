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
from collections import deque

from aiohttp import WSCloseCode, web

log = logging.getLogger(__name__)

LIMIT = 2000


class SocketOutbox:
    """An idle socket holds only an empty deque: its writer task lives while frames wait
    (thousands of consoles sit idle most of the day; a task and a queue each was a third
    of what an idle console cost the node)."""

    __slots__ = ("_frames", "_started", "_writer", "ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._frames: deque[str] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._started = False

    def start(self, first: str) -> None:
        """Write `first`, then every frame queued before and after it, in order."""
        if not self._started:
            self._started = True
            self._frames.appendleft(first)
            self._write_soon()

    def put(self, text: str) -> None:
        if self.ws.closed:
            return
        if len(self._frames) >= LIMIT:
            log.warning("closing an operator socket that does not read its frames")
            self._frames.clear()
            task = asyncio.create_task(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            )
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
            return
        self._frames.append(text)
        if self._started:
            self._write_soon()

    def _write_soon(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="socket-outbox")

    async def _write(self) -> None:
        try:
            while self._frames:
                try:
                    await self.ws.send_str(self._frames.popleft())
                except (ConnectionError, RuntimeError):
                    self._frames.clear()  # the socket closed; its console resyncs with hello
        finally:
            # No await between the last look at the frames and this: a frame put after it
            # starts a new writer.
            self._writer = None

    async def close(self) -> None:
        writer = self._writer
        if writer is None:
            return
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
