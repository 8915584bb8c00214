"""Viber bots over the REST Bot API (`{api_base}/pa/{endpoint}`).

Checklist
- signature: `X-Viber-Content-Signature` (or `?sig=`) must be the lowercase hex
  HMAC-SHA256 of the raw body keyed with the bot's auth token, compared in constant time
  before the body is parsed; missing 401, wrong 403, nothing stored;
- idempotent: messages are keyed on `message_token`; receipts (`delivered`, `seen`,
  `failed`) only move an outbound message's state forward, so repeats change nothing;
- events: `message` (text, picture, video, file, contact, location, sticker, url),
  `subscribed` / `unsubscribed` (tracked; sending to an unsubscribed user fails fast),
  `conversation_started`, `webhook` (the check during `set_webhook`), receipts; unknown
  events are answered 200 so Viber does not resend them;
- contacts: a shared contact's phone feeds the lead;
- sending: `send_message` with `X-Viber-Auth-Token`; errors come back as HTTP 200 with a
  non-zero `status`, mapped to final failures or retries; `set_webhook` on start;
- media: picture, video and file URLs fetched after the event, size-limited;
- tests: tests/connectors/test_viber.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from connectors.http import download, new_guard, new_session
from connectors.openapi import provider_post
from connectors.remote_media import remote_attachment
from connectors.unusable import acknowledged_if_unusable
from hub.domain import (
    Attachment,
    Channel,
    DeliveryResult,
    Identity,
    InboundMessage,
    OutboundMessage,
)
from hub.errors import ApiError
from hub.httputil import parse_json, read_body
from hub.netguard import trusted
from hub.ports import HubPorts
from hub.ports.connector import (
    AuthFailed,
    Capabilities,
    ChannelConfigError,
    ConnectorDescriptor,
    InboundRoute,
    NotReady,
    always,
    handle_inbound,
)
from hub.ports.settings import ChannelSettings, setting

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://chatapi.viber.com"
EVENT_TYPES = ["delivered", "seen", "failed", "subscribed", "unsubscribed", "conversation_started"]
RECEIPTS = {"delivered": "delivered", "seen": "seen", "failed": "failed"}
# Final refusals by status code; everything else non-zero is treated as final too, except:
RETRY_STATUSES = {12: 1.0, 13: 5.0}  # rate limit exceeded, api version not supported (transient)
NOT_SUBSCRIBED = {5, 6}  # receiver not registered / not subscribed


def signature(auth_token: str, body: bytes) -> str:
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


KIND = "viber"


class ViberConnector:
    def __init__(self, ports: HubPorts) -> None:
        self.ports = ports
        self._session: aiohttp.ClientSession | None = None
        self._media = new_guard()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = new_session()
        return self._session

    async def close(self) -> None:
        await self._media.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, channel: Channel, endpoint: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        base = (channel.setting("api_base") or DEFAULT_API_BASE).rstrip("/")
        try:
            async with self.session.post(
                f"{base}/pa/{endpoint}",
                json=payload,
                headers={"X-Viber-Auth-Token": channel.setting("auth_token")},
            ) as reply:
                if reply.status == 429 or reply.status >= 500:
                    raise NotReady(f"Viber answered HTTP {reply.status}")
                body = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise NotReady(f"Viber unreachable: {type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise NotReady("Viber answered something that is not an object")
        return body

    # -- inbound ----------------------------------------------------------------------

    async def handle_inbound(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        raw = await read_body(request, self.ports.max_body_bytes)
        given = request.headers.get("X-Viber-Content-Signature") or request.query.get("sig")
        if not given:
            raise ApiError(401, "missing_signature", "X-Viber-Content-Signature is required")
        expected = signature(channel.setting("auth_token"), raw)
        if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            raise ApiError(403, "bad_signature", "the content signature does not match")
        event = parse_json(raw)
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise ApiError(400, "malformed_event", "a Viber callback is an object with an event")
        with acknowledged_if_unusable(KIND, channel.name, event.get("message_token")):
            await self.process(channel, event)
        return web.Response(status=200)

    async def process(self, channel: Channel, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "message":
            inbound = self.normalize(channel, event)
            if inbound is not None:
                await self.ports.ingest.ingest(inbound, KIND)
        elif kind in RECEIPTS and event.get("message_token") is not None:
            await self.ports.events.delivery(
                channel.id, str(event["message_token"]), RECEIPTS[kind], event.get("desc")
            )
        elif kind == "subscribed" and isinstance(event.get("user"), dict):
            await self.ports.events.subscription(channel.id, str(event["user"].get("id")), True)
        elif kind == "unsubscribed" and event.get("user_id"):
            await self.ports.events.subscription(channel.id, str(event["user_id"]), False)
        else:  # webhook, conversation_started, and anything newer
            log.debug("viber channel %s: %s event acknowledged", channel.name, kind)

    def normalize(self, channel: Channel, event: dict[str, Any]) -> InboundMessage | None:
        sender = event.get("sender")
        message = event.get("message")
        token = event.get("message_token")
        if not isinstance(sender, dict) or not isinstance(message, dict) or token is None:
            log.warning(
                "viber channel %s: message event without sender/message ignored", channel.name
            )
            return None
        user_id = str(sender.get("id") or "")
        if not user_id:
            return None
        kind = message.get("type")
        text = message.get("text") or None
        phones: list[str] = []
        files: list[Attachment] = []
        extra: dict[str, Any] = {"viber": {"type": kind}}
        limit = self.ports.max_upload_bytes
        if kind in ("picture", "video", "file") and message.get("media"):
            default = {
                "picture": ("image.jpg", "image/jpeg"),
                "video": ("video.mp4", "video/mp4"),
                "file": ("file", "application/octet-stream"),
            }[kind]
            name = str(message.get("file_name") or default[0])
            size = message.get("size")
            files.append(
                remote_attachment(
                    name,
                    default[1] if kind != "file" else _guess(name),
                    int(size) if isinstance(size, int) else None,
                    str(message["media"]),
                    limit,
                )
            )
        elif kind == "contact" and isinstance(message.get("contact"), dict):
            contact = message["contact"]
            if contact.get("phone_number"):
                phones.append(str(contact["phone_number"]))
            text = (
                text
                or f"Contact: {contact.get('name') or ''} {contact.get('phone_number') or ''}".strip()
            )
        elif kind == "location" and isinstance(message.get("location"), dict):
            lat, lon = message["location"].get("lat"), message["location"].get("lon")
            extra["location"] = {"lat": lat, "lon": lon}
            text = text or f"Location: {lat}, {lon}"
        elif kind == "sticker":
            text = text or "[sticker]"
        elif kind == "url":
            text = text or message.get("media")
        timestamp = event.get("timestamp")
        occurred = (
            datetime.fromtimestamp(timestamp / 1000, UTC)
            if isinstance(timestamp, int | float)
            else datetime.now(UTC)
        )
        return InboundMessage(
            channel_id=channel.id,
            external_id=str(token),
            occurred_at=occurred,
            text=text,
            name=sender.get("name") or None,
            phones=tuple(phones),
            identity=Identity("viber", user_id),
            attachments=tuple(files),
            extra=extra,
            peer=user_id,
        )

    # -- runner: set the webhook --------------------------------------------------------

    async def run(self, channel: Channel) -> None:
        url = f"{self.ports.public_url}/connectors/{KIND}/{channel.name}"
        body = await self.call(
            channel,
            "set_webhook",
            {"url": url, "event_types": EVENT_TYPES, "send_name": True, "send_photo": False},
        )
        status = body.get("status")
        if status == 2:
            raise AuthFailed(str(body.get("status_message", "invalid auth token")))
        if status == 1:
            raise ChannelConfigError(
                f"Viber refused the webhook URL {url}: {body.get('status_message')}"
            )
        if status != 0:
            raise NotReady(f"set_webhook failed: {status} {body.get('status_message')}")
        log.info("viber channel %s: webhook set to %s", channel.name, url)
        await asyncio.Event().wait()

    # -- outbound ---------------------------------------------------------------------

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        if message.attachments:
            return DeliveryResult.failed("files are not sent to Viber by this hub yet")
        payload: dict[str, Any] = {
            "receiver": message.peer,
            "min_api_version": 1,
            "sender": {"name": (channel.setting("sender_name") or channel.name)[:28]},
            "tracking_data": f"interaction:{message.interaction_id}",
            "type": "text",
            "text": message.text or "",
        }
        if channel.setting("sender_avatar"):
            payload["sender"]["avatar"] = channel.setting("sender_avatar")
        try:
            body = await self.call(channel, "send_message", payload)
        except NotReady as exc:
            return DeliveryResult.retry(str(exc))
        status = body.get("status")
        if status == 0:
            token = body.get("message_token")
            return DeliveryResult.sent(str(token) if token is not None else None)
        reason = f"{status}: {body.get('status_message', 'error')}"
        if isinstance(status, int) and status in RETRY_STATUSES:
            return DeliveryResult.retry(reason, after=RETRY_STATUSES[status])
        if status in NOT_SUBSCRIBED:
            await self.ports.events.subscription(channel.id, message.peer, False)
        return DeliveryResult.failed(reason)

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        # Media is fetched from public addresses, or from the channel's own API host.
        hosts = trusted([channel.setting("api_base") or DEFAULT_API_BASE])
        return await download(self._media, remote_ref, limit, hosts)


def _guess(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass(frozen=True, kw_only=True)
class ViberSettings(ChannelSettings):
    auth_token: str = setting(required=True, secret=True, help="the bot's authentication token")
    sender_name: str = setting(help="the name shown with replies (28 characters at most)")
    sender_avatar: str = setting(url=True, help="the avatar shown with replies")
    api_base: str = setting(url=True, help="https://chatapi.viber.com")


DESCRIPTOR = ConnectorDescriptor(
    kind=KIND,
    title="Viber",
    settings=ViberSettings,
    capabilities=Capabilities(
        interaction_kind=KIND,
        delivery_receipts=True,
        needs_runner=always,  # the runner sets the webhook
    ),
    factory=ViberConnector,
    routes=(
        InboundRoute(
            "POST",
            "/connectors/viber/{channel}",
            handle_inbound,
            provider_post("Viber events", "X-Viber-Content-Signature", "accepted"),
        ),
    ),
)
