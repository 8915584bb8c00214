"""Website forms: `POST /forms/{channel}`.

Checklist
- origin: `allowed_origins` per channel (comma-separated, `*` by default), CORS preflight
  answered, a cross-site post from an unknown origin refused with 403;
- abuse: honeypot field (`honeypot`, `_gotcha` by default) silently discarded, per-client
  token bucket (`rate_limit` a minute, 30 by default, 0 for none) answering 429 with
  `Retry-After`;
- idempotent: the `Idempotency-Key` header is the interaction's external id, so a double
  click or a client retry makes one interaction; the same key with another payload is 422;
- bad input: wrong content type 415, malformed JSON 400, body or file over its limit 413,
  none of name/phone/email or an invalid phone/email 422, all before anything is written;
- files: multipart parts with a file name become attachments, size- and count-limited;
- answers: JSON clients get `201 {"interaction_id", "lead_id", "dialog_id"}` (`202` with
  `unsorted_id` when the channel stages unknown contacts), browsers a `303` to the
  channel's `redirect`;
- tests: tests/connectors/test_forms.py.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from connectors.openapi import CHANNEL_PARAM, ERROR
from hub.domain import (
    Attachment,
    Channel,
    DeliveryResult,
    InboundMessage,
    OutboundMessage,
)
from hub.errors import ApiError, error_response, unprocessable
from hub.httputil import (
    client_address,
    media_type,
    parse_json,
    read_body,
    refuse_unusable_text,
)
from hub.identity import InvalidContact
from hub.ports import HubPorts, IdempotencyConflict, IngestResult, OnUnknown, TooLarge
from hub.ports.connector import (
    Capabilities,
    ChannelConfigError,
    ConnectorDescriptor,
    InboundRoute,
    handle_inbound,
)
from hub.ports.settings import ChannelSettings, setting
from hub.ratelimit import RateLimiter, retry_after_header

FIELD_ALIASES: dict[str, str] = {
    "name": "name",
    "full_name": "name",
    "fio": "name",
    "your-name": "name",
    "phone": "phone",
    "tel": "phone",
    "telephone": "phone",
    "your-phone": "phone",
    "email": "email",
    "e-mail": "email",
    "mail": "email",
    "your-email": "email",
    "message": "message",
    "comment": "message",
    "text": "message",
    "your-message": "message",
}
MAX_FIELD_CHARS = 20_000
MAX_FIELDS = 100
DEFAULT_RATE_LIMIT = 30
# Ids for submissions without an Idempotency-Key: a random per-process prefix and a
# counter, unique across nodes and restarts without a system call per request.
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


KIND = "form"


class FormConnector:
    def __init__(self, ports: HubPorts) -> None:
        self.ports = ports
        self.limiter = RateLimiter()

    async def run(self, channel: Channel) -> None:
        raise ChannelConfigError("form channels have no background work")

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        # Replies to a form go by email (Capabilities.replies_via); a form cannot send itself.
        return DeliveryResult.failed("a site form cannot carry replies")

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        raise ChannelConfigError("form files arrive with the submission")

    async def close(self) -> None:
        """Nothing to release."""

    async def handle_inbound(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        cors = self._cors_headers(request, channel)
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=cors)
        try:
            response = await self._submit(request, channel)
        except ApiError as error:
            error.headers.update(cors)
            response = error_response(error)
            return response
        response.headers.update(cors)
        return response

    def _cors_headers(self, request: web.Request, channel: Channel) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if origin is None:
            return {}
        allowed = [
            o.strip().rstrip("/") for o in channel.setting("allowed_origins", "*").split(",")
        ]
        if "*" not in allowed and origin.rstrip("/") not in allowed:
            raise ApiError(
                403, "origin_not_allowed", f"origin {origin[:100]} may not post this form"
            )
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Accept, Idempotency-Key",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    async def _submit(self, request: web.Request, channel: Channel) -> web.Response:
        if request.method != "POST":
            raise ApiError(405, "method_not_allowed", "forms are submitted with POST")
        client = client_address(request, self.ports.trust_forwarded)
        wait = self.limiter.check(
            channel.name, client, _int_setting(channel, "rate_limit", DEFAULT_RATE_LIMIT)
        )
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                "too many submissions from this address; try again later",
                headers={"Retry-After": retry_after_header(wait)},
            )
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            raise ApiError(
                400, "bad_idempotency_key", "Idempotency-Key must be 1-200 printable characters"
            )

        kind = media_type(request)
        files: list[Attachment] = []
        try:
            if kind == "application/json":
                fields = await self._json_fields(request)
            elif kind == "application/x-www-form-urlencoded":
                fields = self._urlencoded_fields(
                    await read_body(request, self.ports.max_body_bytes)
                )
            elif kind == "multipart/form-data":
                fields = await self._multipart_fields(request, files)
            else:
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    "send application/json, application/x-www-form-urlencoded or multipart/form-data",
                )
            refuse_unusable_text(fields, "a field")
            honeypot = channel.setting("honeypot", "_gotcha")
            if honeypot and _text(fields.get(honeypot)):
                await self.ports.attachments.discard(tuple(files))
                return self._discarded(request, channel, kind)
            message = self._inbound(request, channel, fields, files, key, client)
            on_unknown: OnUnknown = (
                "stage" if channel.setting("on_unknown", "create") == "stage" else "create"
            )
            result = await self.ports.ingest.ingest(
                message, KIND, on_unknown=on_unknown, strict_contacts=True
            )
        except InvalidContact as exc:
            await self.ports.attachments.discard(tuple(files))
            code = exc.code
            raise unprocessable(code, str(exc)) from None
        except IdempotencyConflict:
            await self.ports.attachments.discard(tuple(files))
            raise unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different submission",
            ) from None
        except BaseException:
            await self.ports.attachments.discard(tuple(files))
            raise
        if result.status == "duplicate" and files:
            await self.ports.attachments.discard(tuple(files))
        return self._answer(request, channel, kind, result)

    async def _json_fields(self, request: web.Request) -> dict[str, Any]:
        value = parse_json(await read_body(request, self.ports.max_body_bytes))
        if not isinstance(value, dict):
            raise ApiError(400, "malformed_json", "the body must be a JSON object")
        if len(value) > MAX_FIELDS:
            raise ApiError(400, "too_many_fields", f"at most {MAX_FIELDS} fields")
        return value

    def _urlencoded_fields(self, raw: bytes) -> dict[str, Any]:
        try:
            pairs = parse_qsl(
                raw.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "malformed_form", "the form body cannot be decoded") from None
        fields: dict[str, Any] = {}
        for name, value in pairs:
            _add_field(fields, name, value)
        return fields

    async def _multipart_fields(
        self, request: web.Request, files: list[Attachment]
    ) -> dict[str, Any]:
        ceiling = self.ports.max_body_bytes + self.ports.max_files * self.ports.max_upload_bytes
        if request.content_length is not None and request.content_length > ceiling:
            raise ApiError(413, "body_too_large", f"request body is over {ceiling} bytes")
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError):
            raise ApiError(400, "malformed_form", "the multipart body cannot be parsed") from None
        fields: dict[str, Any] = {}
        count = 0
        try:
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise ApiError(400, "malformed_form", "nested or unnamed multipart parts")
                count += 1
                if count > MAX_FIELDS:
                    raise ApiError(400, "too_many_fields", f"at most {MAX_FIELDS} fields")
                if part.filename is not None:
                    if not part.filename and not await part.read_chunk(1):
                        continue  # an empty <input type=file> sends a nameless empty part
                    if len(files) >= self.ports.max_files:
                        raise ApiError(
                            413, "too_many_files", f"at most {self.ports.max_files} files"
                        )
                    try:
                        stored = await self.ports.attachments.save(
                            _chunks(part),
                            part.filename,
                            part.headers.get("Content-Type", ""),
                            self.ports.max_upload_bytes,
                        )
                    except TooLarge as exc:
                        raise ApiError(413, "file_too_large", str(exc)) from None
                    files.append(stored)
                else:
                    raw = bytearray()
                    while chunk := await part.read_chunk(8192):
                        raw.extend(chunk)
                        if len(raw) > MAX_FIELD_CHARS * 4:
                            raise ApiError(413, "field_too_large", f"field {part.name} is too long")
                    _add_field(fields, part.name, bytes(raw).decode("utf-8", errors="replace"))
        except (ValueError, HttpProcessingError):  # a part's header aiohttp refuses (a NUL)
            raise ApiError(400, "malformed_form", "the multipart body cannot be parsed") from None
        return fields

    def _inbound(
        self,
        request: web.Request,
        channel: Channel,
        fields: dict[str, Any],
        files: list[Attachment],
        key: str | None,
        client: str,
    ) -> InboundMessage:
        known: dict[str, str] = {}
        extras: dict[str, Any] = {}
        honeypot = channel.setting("honeypot", "_gotcha")
        for name, value in fields.items():
            target = FIELD_ALIASES.get(name.strip().lower())
            if target and target not in known:
                text = _text(value)
                if text is None and value is not None:
                    raise unprocessable("invalid_field", f"field {name} must be text")
                if text:
                    known[target] = text
            elif name != honeypot and not name.startswith("_"):
                extras[name[:100]] = value
        for name, text in known.items():
            if len(text) > (MAX_FIELD_CHARS if name == "message" else 300):
                raise unprocessable("field_too_long", f"field {name} is too long")
        if not (known.get("name") or known.get("phone") or known.get("email")):
            raise unprocessable(
                "missing_contact", "a form needs at least one of name, phone or email"
            )
        fingerprint = json.dumps(
            {"fields": known, "extras": extras, "files": [f.sha256 for f in files]},
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        extra: dict[str, Any] = {"client_ip": client}
        if extras:
            extra["fields"] = extras
        # The page the form was sent from: the embed script says it (`_page`, and the page
        # before it in `_referrer`); a plain form's browser sends it as the Referer.
        page = _text(fields.get("_page")) or request.headers.get("Referer")
        if page:
            extra["page"] = page[:500]
        extra["source"] = lead_source(page, _text(fields.get("_referrer")))
        if agent := request.headers.get("User-Agent"):
            extra["user_agent"] = agent[:300]
        return InboundMessage(
            channel_id=channel.id,
            external_id=f"idem:{key}" if key else f"form:{_ID_PREFIX}{next(_ID_COUNTER):x}",
            occurred_at=datetime.now(UTC),
            text=known.get("message"),
            subject=channel.setting("subject") or None,
            name=known.get("name"),
            phones=(known["phone"],) if known.get("phone") else (),
            emails=(known["email"],) if known.get("email") else (),
            attachments=tuple(files),
            extra=extra,
            payload_hash=hashlib.sha256(fingerprint.encode()).hexdigest() if key else None,
            fresh_external_id=key is None,
        )

    def _wants_json(self, request: web.Request, kind: str) -> bool:
        return kind == "application/json" or "application/json" in request.headers.get("Accept", "")

    def _redirect(self, channel: Channel) -> web.Response:
        target = channel.setting("redirect") or f"/forms/{channel.name}/thanks"
        return web.Response(status=303, headers={"Location": target})

    def _discarded(self, request: web.Request, channel: Channel, kind: str) -> web.Response:
        # A bot that filled the honeypot is told nothing useful: it looks like success.
        if self._wants_json(request, kind):
            return web.json_response({"status": "received"}, status=202)
        return self._redirect(channel)

    def _answer(
        self, request: web.Request, channel: Channel, kind: str, result: IngestResult
    ) -> web.Response:
        if not self._wants_json(request, kind):
            return self._redirect(channel)
        if result.status == "staged":
            return web.json_response(
                {"unsorted_id": result.unsorted_id, "status": "pending"}, status=202
            )
        body = {
            "interaction_id": result.interaction_id,
            "lead_id": result.lead_id,
            "dialog_id": result.dialog_id,
        }
        if result.status == "duplicate":
            return web.json_response(body, status=200, headers={"Idempotent-Replayed": "true"})
        return web.json_response(body, status=201)


def _add_field(fields: dict[str, Any], name: str, value: str) -> None:
    if name in fields:
        current = fields[name]
        fields[name] = [*current, value] if isinstance(current, list) else [current, value]
    else:
        fields[name] = value


UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def lead_source(page: str | None, referrer: str | None) -> dict[str, Any]:
    """Where a form's lead came from, as the lead keeps it: the page, the page before it,
    and the page's `utm_*` parameters (what an ad link carries)."""
    source: dict[str, Any] = {}
    if page and page.startswith(("http://", "https://")):
        source["page"] = page[:500]
        query = parse_qs(urlsplit(page).query)
        utm = {k: v[0][:200] for k in UTM if (v := query.get(k)) and v[0]}
        if utm:
            source["utm"] = utm
    if referrer and referrer.startswith(("http://", "https://")):
        source["referrer"] = referrer[:500]
    return source


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str | int | float):
        return str(value).strip()
    return None


def _int_setting(channel: Channel, key: str, default: int) -> int:
    try:
        return int(channel.setting(key, str(default)))
    except ValueError:
        return default


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(65536):
        yield chunk


def embed_script(channel: Channel, public_url: str) -> str:
    """The script a site includes to send its existing form here without a page reload."""
    template = resources.files("connectors").joinpath("form_embed.js").read_text(encoding="utf-8")
    endpoint = f"{public_url.rstrip('/')}/forms/{channel.name}"
    return template.replace("__HUB_ENDPOINT__", json.dumps(endpoint)).replace(
        "__HUB_CHANNEL__", json.dumps(channel.name)
    )


@dataclass(frozen=True, kw_only=True)
class FormSettings(ChannelSettings):
    on_unknown: str = setting(
        default="create",
        choices=("create", "stage"),
        help="a first contact creates a lead, or waits in the unsorted inbox",
    )
    allowed_origins: str = setting(default="*", help="comma-separated origins allowed to post")
    redirect: str = setting(help="where a browser goes after posting")
    rate_limit: int = setting(
        default=DEFAULT_RATE_LIMIT, help="submissions a minute per client address, 0 for none"
    )
    honeypot: str = setting(help="a hidden field bots fill in; _gotcha and honeypot by default")
    subject: str = setting(help="the subject given to the form's interactions")
    thanks_text: str = setting(help="the text of the default page after a browser post")
    reply_via: str = setting(
        help="the email channel that answers this form's dialogs (the only one by default)"
    )


async def _embed(connector: object, request: web.Request, channel: Channel) -> web.StreamResponse:
    assert isinstance(connector, FormConnector)
    return web.Response(
        text=embed_script(channel, connector.ports.public_url),
        content_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def _thanks(connector: object, request: web.Request, channel: Channel) -> web.StreamResponse:
    text = html.escape(channel.setting("thanks_text", "Thank you! We will be in touch soon."))
    page = (
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{text}</title><body style='font-family:sans-serif;margin:3em'><p>{text}</p>"
    )
    return web.Response(text=page, content_type="text/html")


def _form_post() -> dict[str, Any]:
    fields = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("name", "phone", "email", "message")},
        "additionalProperties": True,
    }
    return {
        "summary": "Submit a site form (JSON, urlencoded or multipart with files)",
        "tags": ["forms"],
        "security": [],
        "parameters": [
            CHANNEL_PARAM,
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
            },
        ],
        "requestBody": {
            "content": {
                "application/json": {"schema": fields},
                "application/x-www-form-urlencoded": {"schema": fields},
                "multipart/form-data": {"schema": fields},
            }
        },
        "responses": {
            "201": {
                "description": "stored",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/FormResult"}}
                },
            },
            "200": {
                "description": "replayed (same Idempotency-Key)",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/FormResult"}}
                },
            },
            "202": {"description": "held in the unsorted inbox (on_unknown=stage)"},
            "303": {"description": "browser post: redirect to the channel's page"},
            **{str(c): ERROR for c in (400, 403, 404, 413, 415, 422, 429)},
        },
    }


def _get(summary: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "tags": ["forms"],
        "security": [],
        "parameters": [CHANNEL_PARAM],
        "responses": {"200": answer, "404": ERROR},
    }


DESCRIPTOR = ConnectorDescriptor(
    kind=KIND,
    title="Site form",
    settings=FormSettings,
    capabilities=Capabilities(interaction_kind=KIND, sends_text=False, replies_via="email"),
    factory=FormConnector,
    routes=(
        InboundRoute("POST", "/forms/{channel}", handle_inbound, _form_post()),
        InboundRoute(
            "OPTIONS",
            "/forms/{channel}",
            handle_inbound,
            {
                "summary": "CORS preflight",
                "tags": ["forms"],
                "security": [],
                "parameters": [CHANNEL_PARAM],
                "responses": {"204": {"description": "allowed"}, "403": ERROR, "404": ERROR},
            },
        ),
        InboundRoute(
            "GET",
            "/forms/{channel}/embed.js",
            _embed,
            _get(
                "Script that posts a site's existing form without a reload",
                {"description": "JavaScript", "content": {"application/javascript": {}}},
            ),
        ),
        InboundRoute(
            "GET",
            "/forms/{channel}/thanks",
            _thanks,
            _get("Default page after a browser post", {"description": "HTML"}),
        ),
    ),
)
