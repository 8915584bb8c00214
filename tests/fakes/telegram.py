"""A fake Telegram Bot API server speaking the real wire format, for aiogram to talk to
through `TelegramAPIServer.from_base`.

Requests arrive as aiogram sends them: `POST /bot<token>/<method>` with form fields
(multipart when a file is uploaded), nested objects as JSON strings. Replies are
`{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description", "parameters"}`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-token_abc") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] | None = None
        self.updates: list[dict[str, Any]] = []
        self.confirmed_offset = 0
        self.files: dict[str, tuple[str, bytes]] = {}
        # A status the file endpoint answers instead of the file (a CDN outage).
        self.file_status: int | None = None
        self.failures: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        self.sent: list[dict[str, Any]] = []
        self._new_update = asyncio.Event()
        self._message_id = 1000
        self.app = web.Application(client_max_size=50 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._method)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    # -- test controls ------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> None:
        self.updates.append(update)
        self._new_update.set()

    def add_file(self, file_id: str, path: str, data: bytes) -> None:
        self.files[file_id] = (path, data)

    def fail_next(self, method: str, code: int, description: str, **parameters: Any) -> None:
        self.failures.setdefault(method, []).append((code, description, parameters))

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # -- the API ------------------------------------------------------------------------

    async def _params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader) and part.name is not None
                data = await part.read()
                if part.filename:
                    files[part.name] = (part.filename, bytes(data))
                else:
                    params[part.name] = data.decode()
        elif request.can_read_body:
            params.update(dict(await request.post()))
        return params, files

    def _error(self, code: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        params, files = await self._params(request)
        self.calls.append(Call(method, params, files))
        queued = self.failures.get(method)
        if queued:
            code, description, parameters = queued.pop(0)
            return self._error(code, description, **parameters)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        result = await handler(params, files)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _m_getMe(self, params: dict[str, Any], files: Any) -> Any:
        return {
            "id": int(self.token.split(":")[0]),
            "is_bot": True,
            "first_name": "HubBot",
            "username": "hub_test_bot",
        }

    async def _m_setWebhook(self, params: dict[str, Any], files: Any) -> Any:
        self.webhook = {
            "url": params.get("url"),
            "secret_token": params.get("secret_token"),
            "allowed_updates": json.loads(params["allowed_updates"])
            if params.get("allowed_updates")
            else None,
        }
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any], files: Any) -> Any:
        self.webhook = None
        return True

    async def _m_getUpdates(self, params: dict[str, Any], files: Any) -> Any:
        if self.webhook is not None:
            return self._error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        timeout = min(float(params.get("timeout") or 0), 2.0)
        deadline = time.monotonic() + timeout
        while not self.updates and time.monotonic() < deadline:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        limit = int(params.get("limit") or 100)
        return self.updates[:limit]

    def _message(self, chat_id: Any, **fields: Any) -> dict[str, Any]:
        self._message_id += 1
        return {
            "message_id": self._message_id,
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "HubBot"},
            **fields,
        }

    async def _m_sendMessage(self, params: dict[str, Any], files: Any) -> Any:
        message = self._message(params["chat_id"], text=params["text"])
        self.sent.append(message)
        return message

    async def _m_sendDocument(
        self, params: dict[str, Any], files: dict[str, tuple[str, bytes]]
    ) -> Any:
        # aiogram uploads the file as its own part and names it in the field: attach://<part>
        reference = str(params.get("document", ""))
        name, data = (
            files[reference.removeprefix("attach://")]
            if reference.startswith("attach://")
            else files["document"]
        )
        files["document"] = (name, data)
        message = self._message(
            params["chat_id"],
            document={
                "file_id": f"doc-{self._message_id}",
                "file_unique_id": f"u{self._message_id}",
                "file_name": name,
                "file_size": len(data),
            },
        )
        message["_bytes"] = data
        self.sent.append(message)
        return {k: v for k, v in message.items() if k != "_bytes"}

    async def _m_getFile(self, params: dict[str, Any], files: Any) -> Any:
        file_id = params["file_id"]
        if file_id not in self.files:
            return self._error(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data),
            "file_path": path,
        }

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: Any) -> Any:
        return True

    async def _m_sendChatAction(self, params: dict[str, Any], files: Any) -> Any:
        actions = {"typing", "upload_photo", "record_video", "upload_video", "record_voice",
                   "upload_voice", "upload_document", "choose_sticker", "find_location",
                   "record_video_note", "upload_video_note"}  # fmt: skip
        if params.get("action") not in actions:
            return self._error(400, "Bad Request: wrong parameter action in request")
        if not params.get("chat_id"):
            return self._error(400, "Bad Request: chat not found")
        return True

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        if self.file_status is not None:
            return web.Response(status=self.file_status, text="Bad Gateway")
        for path, data in self.files.values():
            if path == request.match_info["path"]:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)


def text_update(
    update_id: int,
    text: str,
    user_id: int = 5550001,
    message_id: int | None = None,
    first_name: str = "Ivan",
    **extra: Any,
) -> dict[str, Any]:
    """An Update shaped like the Bot API documentation's sample."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id if message_id is not None else update_id % 100000,
            "date": 1700000000 + update_id % 100000,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name,
                "username": "ivan",
                "language_code": "ru",
            },
            "chat": {
                "id": user_id,
                "type": "private",
                "first_name": first_name,
                "username": "ivan",
            },
            "text": text,
            **extra,
        },
    }
