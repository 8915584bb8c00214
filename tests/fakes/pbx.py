"""Fake PBX providers on loopback, speaking their real wire formats (PROTOCOLS.md §4).

- Zadarma: the signed REST call `GET /v1/pbx/record/request/?call_id=…` (Authorization
  `key:base64(hex(HMAC-SHA1(secret, path + query + md5(query))))`) answering
  `{"status": "success", "link": …}`, and the temporary link itself; plus helpers that
  build NOTIFY_* form bodies with their `Signature` header as Zadarma sends them.
- Mango Office: the `queries/recording/post` command (form `vpbx_api_key`, `sign`, `json`
  with sign = sha256(key + json + salt)) answering with a redirect to the file; plus a
  helper building signed event forms.
- Plain recording files for the generic provider's `recordingUrl`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

RECORDING = b"ID3\x03\x00fake mp3 frames " + bytes(range(256)) * 8


def zadarma_signature(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


SIGNED = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_IVR": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}


def zadarma_notify(secret: str, **fields: str) -> tuple[bytes, dict[str, str]]:
    """A NOTIFY_* request as Zadarma sends it: form-encoded, signed over decoded values."""
    message = "".join(fields.get(name, "") for name in SIGNED[fields["event"]])
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Signature": zadarma_signature(secret, message),
    }
    return urlencode(fields).encode(), headers


def mango_sign(key: str, document: str, salt: str) -> str:
    return hashlib.sha256((key + document + salt).encode()).hexdigest()


def mango_form(key: str, salt: str, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    document = json.dumps(event, separators=(",", ":"))
    body = urlencode(
        {"vpbx_api_key": key, "sign": mango_sign(key, document, salt), "json": document}
    ).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded"}


class FakePbx:
    """Zadarma's and Mango's recording APIs, and plain files, on one loopback server."""

    def __init__(
        self, key: str = "zd-key", secret: str = "zd-secret", salt: str = "mango-salt"
    ) -> None:
        self.key, self.secret, self.salt = key, secret, salt
        self.base = ""  # set once the server listens
        self.files: dict[str, bytes] = {}
        self.record_requests: list[dict[str, str]] = []
        self.mango_requests: list[dict[str, Any]] = []
        self.missing: set[str] = set()  # recordings Zadarma says are not there
        self.app = web.Application()
        self.app.router.add_get("/v1/pbx/record/request/", self._record_request)
        self.app.router.add_post("/vpbx/queries/recording/post/", self._mango_recording)
        self.app.router.add_get("/files/{name}", self._file)

    async def _record_request(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        query = urlencode(sorted(params.items()))
        md5 = hashlib.md5(query.encode(), usedforsecurity=False).hexdigest()
        message = "/v1/pbx/record/request/" + query + md5
        expected = f"{self.key}:{zadarma_signature(self.secret, message)}"
        if request.headers.get("Authorization") != expected:
            return web.json_response({"status": "error", "message": "Not authorized"}, status=401)
        self.record_requests.append(params)
        call_id = params.get("call_id", "")
        if call_id in self.missing:
            return web.json_response({"status": "error", "message": "Record not found"})
        return web.json_response(
            {
                "status": "success",
                "link": f"{self.base}/files/{call_id}.mp3",
                "lifetime_till": "2030-01-01 00:00:00",
            }
        )

    async def _mango_recording(self, request: web.Request) -> web.Response:
        form = await request.post()
        document = str(form.get("json", ""))
        if form.get("vpbx_api_key") != self.key or form.get("sign") != mango_sign(
            self.key, document, self.salt
        ):
            return web.json_response({"result": 3102}, status=401)
        command = json.loads(document)
        self.mango_requests.append(command)
        raise web.HTTPFound(f"{self.base}/files/{command['recording_id']}.mp3")

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        data = self.files.get(name, RECORDING if name not in self.missing else None)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="audio/mpeg")
