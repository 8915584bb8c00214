"""Requests aiohttp cannot even parse (a header over its 8 KB line limit, a malformed
request line) are answered by the low-level protocol before any middleware runs, in plain
text. The hub's contract is JSON errors everywhere, so `hub serve` uses a runner whose
request handler answers those in the contract's shape too."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from hub.errors import code_for_status


class JsonErrorRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs, checks output
        if isinstance(exc, LineTooLong):
            status, code = 431, "headers_too_large"
            text = "a request line or header is over the hub's 8 KB limit"
        else:
            code = code_for_status(status)
            text = (
                "internal error; see the hub's log"
                if status >= 500
                else (f"the request could not be read: {(message or 'bad request')[:200]}")
            )
        body = json.dumps({"error": {"code": code, "message": text}})
        response = web.Response(status=status, text=body, content_type="application/json")
        if plain.keep_alive is False:
            response.force_close()
        return response


class JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorAppRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same server, its connections' handler answering parse errors in JSON.
        server.__class__ = JsonErrorServer
        return server
