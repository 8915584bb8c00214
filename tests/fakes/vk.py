"""A fake VK API: `POST /method/<name>` with form parameters (access_token, v, ...)
answering `{"response": ...}` or `{"error": {"error_code", "error_msg", "request_params"}}`,
plus a Bots Long Poll server (`GET /lp?act=a_check&key=&ts=&wait=`) and media files."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Call:
    method: str
    params: dict[str, str]


class FakeVk:
    def __init__(self, token: str = "vk1.a.community-token", group_id: int = 218000000) -> None:
        self.token = token
        self.group_id = group_id
        self.base = ""  # set by the test once the server listens
        self.calls: list[Call] = []
        self.delivered: list[dict[str, Any]] = []
        self.by_random_id: dict[tuple[str, str], int] = {}
        self.failures: dict[str, list[int]] = {}
        self.crash_after_send = 0
        self.key = "key-1"
        self.ts = 10
        self.events: list[tuple[int, dict[str, Any]]] = []  # (ts, update)
        self.poll_failures: list[dict[str, Any]] = []
        self.checks: list[dict[str, str]] = []
        self.files: dict[str, bytes] = {}
        self._message_id = 500
        self._new = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/method/{name}", self._method)
        self.app.router.add_get("/lp", self._long_poll)
        self.app.router.add_get("/files/{name}", self._file)
        self.app.router.add_get("/moved", self._moved)

    def fail_next(self, method: str, code: int) -> None:
        self.failures.setdefault(method, []).append(code)

    def push(self, update: dict[str, Any]) -> None:
        self.ts += 1
        self.events.append((self.ts, update))
        self._new.set()

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def _method(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        params = {k: str(v) for k, v in (await request.post()).items()}
        self.calls.append(Call(name, params))
        if params.get("access_token") != self.token:
            return self._error(5, "User authorization failed: invalid access_token (4).", params)
        if not params.get("v"):
            return self._error(8, "Invalid request: v is required", params)
        queued = self.failures.get(name)
        if queued:
            return self._error(queued.pop(0), "programmed failure", params)
        if name == "groups.getLongPollServer":
            return web.json_response(
                {"response": {"server": f"{self.base}/lp", "key": self.key, "ts": str(self.ts)}}
            )
        if name == "messages.send":
            return self._send(params)
        if name == "messages.setActivity":
            return self._set_activity(params)
        return self._error(3, "Unknown method passed", params)

    def _set_activity(self, params: dict[str, str]) -> web.Response:
        """A community token must name its own group; `type` is typing or audiomessage."""
        if (
            params.get("type") not in ("typing", "audiomessage")
            or not params.get("peer_id")
            or params.get("group_id") != str(self.group_id)
        ):
            return self._error(
                100, "One of the parameters specified was missing or invalid", params
            )
        return web.json_response({"response": 1})

    def _send(self, params: dict[str, str]) -> web.Response:
        key = (params["peer_id"], params["random_id"])
        if key in self.by_random_id:  # VK does not deliver a second message with one random_id
            return web.json_response({"response": self.by_random_id[key]})
        self._message_id += 1
        self.by_random_id[key] = self._message_id
        self.delivered.append(
            {
                "peer_id": params["peer_id"],
                "message": params.get("message"),
                "random_id": params["random_id"],
                "id": self._message_id,
            }
        )
        if self.crash_after_send:
            self.crash_after_send -= 1
            return web.Response(status=502, text="Bad Gateway")
        return web.json_response({"response": self._message_id})

    def _error(self, code: int, message: str, params: dict[str, str]) -> web.Response:
        return web.json_response(
            {
                "error": {
                    "error_code": code,
                    "error_msg": message,
                    "request_params": [
                        {"key": k, "value": v} for k, v in params.items() if k != "access_token"
                    ],
                }
            }
        )

    async def _long_poll(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.checks.append(query)
        if self.poll_failures:
            return web.json_response(self.poll_failures.pop(0))
        if query.get("act") != "a_check" or query.get("key") != self.key:
            return web.json_response({"failed": 2})
        ts = int(query.get("ts", "0"))
        deadline = time.monotonic() + min(float(query.get("wait", "25")), 1.0)
        while time.monotonic() < deadline:
            ready = [u for t, u in self.events if t > ts]
            if ready:
                return web.json_response({"ts": str(self.ts), "updates": ready})
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        return web.json_response({"ts": str(max(ts, self.ts)), "updates": []})

    async def _moved(self, request: web.Request) -> web.Response:
        """A redirect to wherever `?to=` says (VK's CDN does redirect file URLs)."""
        raise web.HTTPFound(request.query["to"])

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/jpeg")


def message_new(
    group_id: int,
    event_id: str,
    text: str,
    from_id: int = 1234567,
    cmid: int = 88,
    secret: str | None = "s3cr3t",
    **message: Any,
) -> dict[str, Any]:
    """A `message_new` callback shaped like VK's schema (API 5.199)."""
    event: dict[str, Any] = {
        "group_id": group_id,
        "type": "message_new",
        "event_id": event_id,
        "v": "5.199",
        "object": {
            "message": {
                "date": 1700000000,
                "from_id": from_id,
                "id": 500 + cmid,
                "out": 0,
                "peer_id": from_id,
                "text": text,
                "conversation_message_id": cmid,
                "attachments": [],
                "fwd_messages": [],
                "important": False,
                "is_hidden": False,
                "random_id": 0,
                **message,
            },
            "client_info": {
                "button_actions": [
                    "text",
                    "vkpay",
                    "open_app",
                    "location",
                    "open_link",
                    "callback",
                ],
                "keyboard": True,
                "inline_keyboard": True,
                "carousel": True,
                "lang_id": 0,
            },
        },
    }
    if secret is not None:
        event["secret"] = secret
    return event
