"""VK communities: Callback API and Bots Long Poll in, `messages.send` out.

Talks to VK's HTTP methods directly with aiohttp (`{api_base}/method/{name}`), which is what
the synchronous `vk-api` library does, without a thread per call and with a base URL that
tests can point at tests/fakes/vk.py.

Checklist
- confirmation: `{"type": "confirmation"}` for the channel's `group_id` is answered with the
  configured `confirmation` string as plain text;
- signature: VK has none; the Callback API `secret` in the body must equal the channel's
  (constant-time), else 403 and nothing stored; a wrong `group_id` is refused too;
- ack: every accepted event, handled or not, gets exactly `ok`, so VK stops resending;
- idempotent: messages are keyed `(peer_id, conversation_message_id)`, so an event VK resends
  (same `event_id`) is recognised; `message_edit` replaces the text; `message_reply` (the
  community's own outgoing messages, ours included) is not stored as customer input;
- long poll: `groups.getLongPollServer`, then `a_check` with `failed` 1 (take the new ts),
  2 (new key, keep ts) and 3 (new key and ts); `ts` saved after each batch;
- sending: `messages.send` with `random_id` derived from our outbound interaction id, so a
  retried send is never delivered twice; paced to 20 requests/s; error 6 (too many
  requests) and 9 (flood control) retried later, refusals (901 and others) final;
- media: photo (largest size), doc and voice (`audio_message`) fetched after the event;
- tests: tests/connectors/test_vk.py.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import mimetypes
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from connectors.http import download, new_guard, new_session
from connectors.openapi import provider_post
from connectors.remote_media import remote_attachment
from connectors.throttle import Throttle
from connectors.unusable import acknowledged_if_unusable
from hub.backoff import backoff
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
    handle_inbound,
)
from hub.ports.settings import ChannelSettings, SettingsInvalid, setting

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.vk.com"
API_VERSION = "5.199"
LONG_POLL_WAIT = 25
RETRYABLE = {1: 1.0, 6: 1.0, 9: 60.0, 10: 2.0}  # unknown, too many rps, flood control, internal
AUTH_ERRORS = {5, 27, 28}


class VkError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"VK error {code}: {message}")
        self.code = code
        self.message = message


KIND = "vk"


class VkConnector:
    def __init__(self, ports: HubPorts) -> None:
        self.ports = ports
        self._session: aiohttp.ClientSession | None = None
        self._media = new_guard()
        self._throttles: dict[int, Throttle] = {}

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

    async def call(self, channel: Channel, method: str, **params: Any) -> Any:
        """One API method; raises `VkError` for VK's errors, `NotReady` when unreachable."""
        base = (channel.setting("api_base") or DEFAULT_API_BASE).rstrip("/")
        throttle = self._throttles.setdefault(channel.id, Throttle(per_key=0.0, overall=1 / 20))
        await throttle.wait("")
        data = {k: str(v) for k, v in params.items() if v is not None}
        data["access_token"] = channel.setting("token")
        data["v"] = channel.setting("api_version") or API_VERSION
        try:
            async with self.session.post(f"{base}/method/{method}", data=data) as reply:
                if reply.status == 429 or reply.status >= 500:
                    raise NotReady(f"VK answered HTTP {reply.status}")
                body = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise NotReady(f"VK unreachable: {type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise NotReady("VK answered something that is not an object")
        if "error" in body:
            error = body["error"] or {}
            raise VkError(int(error.get("error_code", 0)), str(error.get("error_msg", "")))
        return body.get("response")

    # -- Callback API ---------------------------------------------------------------

    async def handle_inbound(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        event = parse_json(await read_body(request, self.ports.max_body_bytes))
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ApiError(400, "malformed_event", "a VK callback is an object with a type")
        if str(event.get("group_id", "")) != channel.setting("group_id"):
            raise ApiError(403, "wrong_group", "this channel serves another VK community")
        if event["type"] == "confirmation":
            code = channel.setting("confirmation")
            if not code:
                raise ApiError(
                    409, "no_confirmation", "set the channel's confirmation string first"
                )
            return web.Response(text=code, content_type="text/plain")
        secret = channel.setting("secret")
        if not secret:  # a channel stored before secrets were required: fail closed
            raise ApiError(
                403,
                "no_secret",
                "the channel has no Callback API secret; set one in the hub and VK",
            )
        if not hmac.compare_digest(str(event.get("secret", "")).encode(), secret.encode()):
            raise ApiError(403, "bad_secret", "the callback secret does not match")
        with acknowledged_if_unusable(KIND, channel.name, event.get("event_id")):
            await self.process(channel, event)
        return web.Response(text="ok", content_type="text/plain")

    async def process(self, channel: Channel, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            log.info("vk channel %s: %s event without an object ignored", channel.name, kind)
            return
        if kind == "message_new":
            message = obj.get("message", obj)  # API < 5.103 sent the bare message
            if message.get("out") == 1:
                return
            inbound = self.normalize(channel, message)
            if inbound is not None:
                await self.ports.ingest.ingest(inbound, KIND)
        elif kind == "message_edit":
            if obj.get("out") == 1:
                return
            edited = datetime.fromtimestamp(
                int(obj.get("update_time") or obj.get("date") or 0), UTC
            )
            outcome = await self.ports.events.edit(
                channel.id, _external_id(obj), obj.get("text") or None, edited
            )
            if outcome == "missing":
                inbound = self.normalize(channel, obj)
                if inbound is not None:
                    await self.ports.ingest.ingest(inbound, KIND)
        elif kind in ("message_allow", "message_deny") and "user_id" in obj:
            await self.ports.events.subscription(
                channel.id, str(obj["user_id"]), kind == "message_allow"
            )
        else:
            log.debug("vk channel %s: %s event ignored", channel.name, kind)

    def normalize(self, channel: Channel, message: dict[str, Any]) -> InboundMessage | None:
        try:
            from_id = int(message["from_id"])
            peer_id = int(message.get("peer_id") or from_id)
            date = datetime.fromtimestamp(int(message["date"]), UTC)
        except (KeyError, TypeError, ValueError):
            log.warning("vk channel %s: message without from_id/date ignored", channel.name)
            return None
        if from_id <= 0:  # a community (negative id) writing, not a person
            return None
        text = message.get("text") or None
        extra: dict[str, Any] = {
            "vk": {
                "peer_id": peer_id,
                "id": message.get("id"),
                "conversation_message_id": message.get("conversation_message_id"),
            }
        }
        files: list[Attachment] = []
        for item in message.get("attachments") or []:
            file, note = _attachment(item, self.ports.max_upload_bytes)
            if file is not None:
                files.append(file)
            elif note and not text:
                text = note
        geo = message.get("geo")
        if isinstance(geo, dict) and isinstance(geo.get("coordinates"), dict):
            lat, lon = geo["coordinates"].get("latitude"), geo["coordinates"].get("longitude")
            extra["location"] = {"lat": lat, "lon": lon}
            text = text or f"Location: {lat}, {lon}"
        return InboundMessage(
            channel_id=channel.id,
            external_id=_external_id(message),
            occurred_at=date,
            text=text,
            identity=Identity("vk", str(from_id)),
            attachments=tuple(files),
            extra=extra,
            peer=str(peer_id),
        )

    # -- Bots Long Poll -------------------------------------------------------------

    async def run(self, channel: Channel) -> None:
        group_id = channel.setting("group_id")
        wait = int(channel.setting("wait") or LONG_POLL_WAIT)
        state = await self.ports.events.load_state(channel.id)
        try:
            server, key, fresh_ts = await self._long_poll_server(channel, group_id)
            ts = state.get("ts") or fresh_ts
            failures = 0
            while True:
                try:
                    body = await self._check(server, key, ts, wait)
                    failures = 0
                except NotReady:
                    failures += 1
                    await asyncio.sleep(backoff(failures, 0.5, 30.0))
                    continue
                failed = body.get("failed")
                if failed == 1:
                    ts = body.get("ts", ts)
                elif failed == 2:
                    server, key, _ = await self._long_poll_server(channel, group_id)
                elif failed == 3:
                    server, key, ts = await self._long_poll_server(channel, group_id)
                elif failed is not None:
                    raise NotReady(f"long poll failed with {failed}")
                else:
                    for update in body.get("updates") or []:
                        if isinstance(update, dict):
                            await self.process(channel, update)
                    ts = body.get("ts", ts)
                state["ts"] = ts
                await self.ports.events.save_state(channel.id, state)
        except VkError as exc:
            if exc.code in AUTH_ERRORS:
                raise AuthFailed(exc.message) from exc
            if exc.code in RETRYABLE:
                # Too many requests, flood control, an internal error: VK will take the
                # same call later; the channel runner retries with backoff.
                raise NotReady(str(exc)) from exc
            raise ChannelConfigError(str(exc)) from exc

    async def _long_poll_server(self, channel: Channel, group_id: str) -> tuple[str, str, str]:
        response = await self.call(channel, "groups.getLongPollServer", group_id=group_id)
        return str(response["server"]), str(response["key"]), str(response["ts"])

    async def _check(self, server: str, key: str, ts: str, wait: int) -> dict[str, Any]:
        params = {"act": "a_check", "key": key, "ts": ts, "wait": str(wait)}
        try:
            async with self.session.get(
                server, params=params, timeout=aiohttp.ClientTimeout(total=wait + 15)
            ) as reply:
                if reply.status >= 400:
                    raise NotReady(f"long poll server answered HTTP {reply.status}")
                body = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise NotReady(f"long poll failed: {type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise NotReady("long poll answered something that is not an object")
        return body

    # -- outbound ---------------------------------------------------------------------

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        if message.attachments:
            return DeliveryResult.failed("files are not sent to VK by this hub yet")
        try:
            response = await self.call(
                channel,
                "messages.send",
                peer_id=message.peer,
                message=message.text or "",
                random_id=random_id(message.interaction_id),
            )
        except NotReady as exc:
            return DeliveryResult.retry(str(exc))
        except VkError as exc:
            if exc.code in RETRYABLE:
                return DeliveryResult.retry(exc.message, after=RETRYABLE[exc.code])
            if exc.code == 901:  # the user does not allow messages from the community
                await self.ports.events.subscription(channel.id, message.peer, False)
            return DeliveryResult.failed(f"{exc.code}: {exc.message}")
        return DeliveryResult.sent(str(response))

    async def typing(self, channel: Channel, peer: str) -> None:
        """ "Typing…" in the customer's chat with the community (VK shows it about 10 s)."""
        try:
            await self.call(
                channel,
                "messages.setActivity",
                peer_id=peer,
                type="typing",
                group_id=channel.setting("group_id"),
            )
        except VkError as exc:
            raise NotReady(f"VK refused messages.setActivity: {exc.code}") from exc

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        # Media is fetched from public addresses, or from the channel's own API host.
        hosts = trusted([channel.setting("api_base") or DEFAULT_API_BASE])
        return await download(self._media, remote_ref, limit, hosts)


def random_id(interaction_id: int) -> int:
    """VK's idempotency key for `messages.send`: the same outbound message always gets the
    same int32, so VK refuses a second delivery of a retried send."""
    return interaction_id & 0x7FFFFFFF


def _external_id(message: dict[str, Any]) -> str:
    peer = message.get("peer_id") or message.get("from_id")
    cmid = message.get("conversation_message_id")
    return f"{peer}:{cmid}" if cmid is not None else f"id:{message.get('id')}"


def _attachment(item: dict[str, Any], limit: int) -> tuple[Attachment | None, str | None]:
    kind = item.get("type")
    body = item.get(kind) if isinstance(kind, str) else None
    if not isinstance(body, dict):
        return None, None
    if kind == "photo":
        sizes = [s for s in body.get("sizes") or [] if isinstance(s, dict) and s.get("url")]
        if not sizes:
            return None, "[photo]"
        best = max(sizes, key=lambda s: int(s.get("width", 0)) * int(s.get("height", 0)))
        name = f"photo_{body.get('owner_id')}_{body.get('id')}.jpg"
        return remote_attachment(name, "image/jpeg", 0, best["url"], limit), None
    if kind == "doc" and body.get("url"):
        title = str(body.get("title") or "document")
        ext = str(body.get("ext") or "")
        name = title if not ext or title.endswith(f".{ext}") else f"{title}.{ext}"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return remote_attachment(
            name, content_type, int(body.get("size") or 0), body["url"], limit
        ), None
    if kind == "audio_message" and (body.get("link_ogg") or body.get("link_mp3")):
        url = body.get("link_ogg") or body.get("link_mp3")
        ogg = bool(body.get("link_ogg"))
        return remote_attachment(
            f"voice_{body.get('id')}.{'ogg' if ogg else 'mp3'}",
            "audio/ogg" if ogg else "audio/mpeg",
            0,
            str(url),
            limit,
        ), None
    if kind == "sticker":
        return None, "[sticker]"
    return None, f"[{kind}]"


_SECRET = re.compile(r"^[A-Za-z0-9]{1,50}$")


def _new_secret() -> str:
    # Without a secret anybody could post events in the community's name: one is made.
    return secrets.token_hex(16)


@dataclass(frozen=True, kw_only=True)
class VkSettings(ChannelSettings):
    token: str = setting(required=True, secret=True, help="the community's access token")
    group_id: str = setting(required=True, help="the community's numeric id")
    confirmation: str = setting(help="the Callback API confirmation string (webhook mode)")
    secret: str = setting(
        secret=True,
        generate=_new_secret,
        paste_at="VK: the community's Manage → API usage → Callback API → Server settings"
        " → Secret key",
        help="the Callback API secret key; every webhook event must carry it",
    )
    mode: str = setting(default="webhook", choices=("webhook", "polling"))
    api_base: str = setting(url=True, help="https://api.vk.com")
    api_version: str = setting(default=API_VERSION)
    wait: int = setting(default=LONG_POLL_WAIT, help="long-poll seconds (polling mode)")

    def validate(self) -> None:
        if not self.group_id.isdigit():
            raise SettingsInvalid("group_id is the community's numeric id")
        if self.mode == "webhook" and not _SECRET.match(self.secret):
            raise SettingsInvalid("secret takes 1-50 letters A-Z, a-z and digits (VK's rule)")
        if self.mode == "webhook" and not self.confirmation:
            raise SettingsInvalid(
                "the Callback API needs the confirmation string from the VK settings"
                " (--set confirmation=...)"
            )


def _polling(channel: Channel) -> bool:
    return channel.setting("mode", "webhook") == "polling"


async def _callback(
    connector: object, request: web.Request, channel: Channel
) -> web.StreamResponse:
    assert isinstance(connector, VkConnector)
    return await connector.handle_inbound(request, channel)


DESCRIPTOR = ConnectorDescriptor(
    kind=KIND,
    title="VK",
    settings=VkSettings,
    capabilities=Capabilities(
        interaction_kind=KIND,
        needs_runner=_polling,
        shows_typing=True,  # messages.setActivity
    ),
    factory=VkConnector,
    routes=(
        InboundRoute(
            "POST",
            "/connectors/vk/{channel}",
            handle_inbound,
            provider_post(
                "VK Callback API events",
                "secret in the body; confirmation answered",
                "plain text ok",
            ),
        ),
    ),
)
