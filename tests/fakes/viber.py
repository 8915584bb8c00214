"""A fake Viber REST Bot API: `POST /pa/<endpoint>` with a JSON body and the
`X-Viber-Auth-Token` header, answering HTTP 200 with `{"status": 0, ...}` or a non-zero
status. `set_webhook` first POSTs a signed `webhook` event to the URL, as Viber does, and
fails with status 1 when that URL does not answer 200. Media files are served too."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
from aiohttp import web


def sign(token: str, body: bytes) -> str:
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


class FakeViber:
    def __init__(self, token: str = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9") -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook: dict[str, Any] | None = None
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.sent: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self._token = 5741311803571721000
        self.app = web.Application()
        self.app.router.add_post("/pa/{endpoint}", self._endpoint)
        self.app.router.add_get("/media/{name}", self._media)

    def answer_next(self, endpoint: str, **body: Any) -> None:
        self.statuses.setdefault(endpoint, []).append(body)

    def calls_of(self, endpoint: str) -> list[dict[str, Any]]:
        return [body for name, body in self.calls if name == endpoint]

    async def _endpoint(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        body = await request.json()
        self.calls.append((endpoint, body))
        if request.headers.get("X-Viber-Auth-Token") != self.token:
            return web.json_response({"status": 2, "status_message": "invalidAuthToken"})
        queued = self.statuses.get(endpoint)
        if queued:
            return web.json_response(queued.pop(0))
        if endpoint == "set_webhook":
            return await self._set_webhook(body)
        if endpoint == "send_message":
            self._token += 1
            self.sent.append({**body, "message_token": self._token})
            return web.json_response(
                {
                    "status": 0,
                    "status_message": "ok",
                    "message_token": self._token,
                    "chat_hostname": "SN-CHAT-05_",
                }
            )
        return web.json_response({"status": 3, "status_message": "badData"})

    async def _set_webhook(self, body: dict[str, Any]) -> web.Response:
        url = body.get("url") or ""
        if url:
            check = json.dumps(
                {
                    "event": "webhook",
                    "timestamp": int(time.time() * 1000),
                    "chat_hostname": "SN-376_",
                    "message_token": 5741311803571721088,
                }
            ).encode()
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        url,
                        data=check,
                        headers={
                            "X-Viber-Content-Signature": sign(self.token, check),
                            "Content-Type": "application/json",
                        },
                    ) as reply,
                ):
                    if reply.status != 200:
                        return web.json_response({"status": 1, "status_message": "invalidUrl"})
            except aiohttp.ClientError:
                return web.json_response({"status": 1, "status_message": "invalidUrl"})
        self.webhook = body
        return web.json_response(
            {"status": 0, "status_message": "ok", "event_types": body.get("event_types", [])}
        )

    async def _media(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        return (
            web.Response(body=data, content_type="image/jpeg")
            if data is not None
            else web.Response(status=404)
        )


def message_event(
    token: int, message: dict[str, Any], user_id: str = "01234567890A=", name: str = "Ivan"
) -> dict[str, Any]:
    """A `message` callback shaped like Viber's documentation."""
    return {
        "event": "message",
        "timestamp": 1700000000123,
        "chat_hostname": "SN-376_",
        "message_token": token,
        "sender": {
            "id": user_id,
            "name": name,
            "avatar": "https://media-direct.cdn.viber.com/x.jpg",
            "country": "RU",
            "language": "ru",
            "api_version": 10,
        },
        "message": message,
        "silent": False,
    }
