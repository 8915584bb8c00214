"""A CRM's webhook endpoint on loopback: verifies each delivery with the reference
`standardwebhooks` library, answers what a test tells it to, keeps what it accepted."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook


class Receiver:
    """A CRM's endpoint: answers what it is told to, keeps what it verified."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.answers: list[tuple[int, dict[str, str]]] = []  # then 200 for ever
        self.received: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.times: list[float] = []
        self.delay = 0.0  # seconds before each answer: a slow CRM
        self.app = web.Application()
        self.app.router.add_post("/hooks", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.text()
        event = self.verifier.verify(body, dict(request.headers))  # raises if not signed right
        self.times.append(asyncio.get_running_loop().time())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answers:
            status, headers = self.answers.pop(0)
            if status >= 300:
                return web.Response(status=status, headers=headers)
        self.received.append(event)
        self.ids.append(request.headers["webhook-id"])
        return web.Response(status=204)
