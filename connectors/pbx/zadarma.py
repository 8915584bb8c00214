"""Zadarma's PBX call notifications (PROTOCOLS.md §4a).

Zadarma POSTs form fields (`event` = NOTIFY_START, NOTIFY_IVR, NOTIFY_INTERNAL,
NOTIFY_ANSWER, NOTIFY_END, NOTIFY_OUT_START, NOTIFY_OUT_END, NOTIFY_RECORD) signed in the
`Signature` header: base64 of the *hex* HMAC-SHA1, keyed with the API secret, over some of
the URL-decoded fields, which ones depending on the event (`SIGNED`). Saving the URL in
Zadarma's panel sends `GET ?zd_echo=X`, answered with X. `call_start` is the PBX's local time
with no offset, read in the channel's `timezone`. Recordings are not in the events: their
temporary link comes from the signed REST call `GET /v1/pbx/record/request/`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from connectors.http import download
from connectors.pbx import outcomes
from connectors.pbx.wire import read_fields, text
from hub.domain import CallEvent, CallPhase, Channel, Direction
from hub.errors import ApiError
from hub.netguard import NetGuard, trusted
from hub.ports import HubPorts
from hub.ports.connector import AuthFailed, ChannelConfigError, NotReady

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.zadarma.com"
RECORD_REQUEST = "/v1/pbx/record/request/"

# The fields each event's signature covers, in order [verified: lib/Webhook/Notify*.php].
SIGNED: dict[str, tuple[str, ...]] = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_IVR": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}


def sign(secret: str, message: str) -> str:
    """Zadarma's signature: base64 of the hex digest (PHP's hash_hmac returns hex text)."""
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def event_signature(secret: str, fields: dict[str, Any]) -> str:
    kind = fields["event"]
    return sign(secret, "".join(str(fields.get(name) or "") for name in SIGNED[kind]))


def echo(request: web.Request) -> web.Response:
    return web.Response(text=request.query["zd_echo"], content_type="text/plain")


async def handle(ports: HubPorts, channel: Channel, request: web.Request) -> web.StreamResponse:
    given = request.headers.get("Signature", "").strip()
    if not given:
        raise ApiError(401, "missing_signature", "the Signature header is required")
    fields = await read_fields(request, ports.max_body_bytes, json_too=False)
    kind = fields.get("event")
    if not isinstance(kind, str) or kind not in SIGNED:
        log.warning("pbx channel %s: unknown Zadarma event %r ignored", channel.name, kind)
        return web.Response(status=200)
    expected = event_signature(channel.setting("secret"), fields)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(403, "bad_signature", "the Signature does not match the event")
    call_id = text(fields, "pbx_call_id")
    if call_id is None or len(call_id) > 200:
        raise ApiError(422, "invalid_field", "pbx_call_id is required")
    event = to_event(channel, kind, call_id, fields)
    result = await ports.calls.call_event(event)
    if kind == "NOTIFY_START" and result.blocked:
        return web.json_response({"hangup": 1})  # a caller the business does not take
    return web.Response(status=200)


def call_start(channel: Channel, value: str | None) -> datetime | None:
    """`call_start` ("2024-05-14 10:15:03", the PBX's local time) as an aware time."""
    if not value:
        return None
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ApiError(422, "invalid_field", "call_start must be YYYY-MM-DD HH:MM:SS") from None
    return local.replace(tzinfo=ZoneInfo(channel.setting("timezone") or "Europe/Moscow"))


def _whole(fields: dict[str, Any], name: str) -> int | None:
    value = text(fields, name)
    # A call lasts less than a decade: longer digit strings are not a duration.
    return int(value) if value is not None and value.isdigit() and len(value) <= 9 else None


def to_event(channel: Channel, kind: str, call_id: str, fields: dict[str, Any]) -> CallEvent:
    internal = text(fields, "internal")
    started = call_start(channel, text(fields, "call_start"))
    base = CallEvent(
        channel_id=channel.id,
        call_id=call_id,
        key=kind,
        phase=CallPhase.RINGING,
        at=datetime.now(UTC),
        started_at=started,
    )
    recorded = text(fields, "is_recorded") == "1" and text(fields, "call_id_with_rec")
    delay = float(channel.setting("recording_delay") or 40)
    inbound = replace(
        base,
        direction=Direction.IN,
        from_number=text(fields, "caller_id"),
        to_number=text(fields, "called_did") or text(fields, "destination"),
    )
    outbound = replace(
        base,
        direction=Direction.OUT,
        from_number=text(fields, "caller_id") or internal,
        to_number=text(fields, "destination"),
        answered_by=internal,
    )
    disposition = text(fields, "disposition")
    code = text(fields, "status_code")
    cause = f"{disposition} (Q.850 {code})" if disposition and code else disposition

    def ended(event: CallEvent) -> CallEvent:
        return replace(
            event,
            phase=CallPhase.ENDED,
            outcome=outcomes.mapped(outcomes.ZADARMA, disposition),
            cause=cause[:100] if cause else None,
            duration_s=_whole(fields, "duration"),
            recording_ref=recorded or None,
            recording_delay_s=delay,
        )

    if kind in ("NOTIFY_START", "NOTIFY_IVR"):
        return inbound  # in the PBX (its voice menu): nobody rings yet
    if kind == "NOTIFY_INTERNAL":
        return replace(inbound, key=f"{kind}:{internal}", ringing=(internal,) if internal else ())
    if kind == "NOTIFY_ANSWER":
        return replace(inbound, phase=CallPhase.ANSWERED, answered_by=internal)
    if kind == "NOTIFY_END":
        answered = disposition == "answered"
        return ended(replace(inbound, answered_by=internal if answered else None))
    if kind == "NOTIFY_OUT_START":
        return outbound
    if kind == "NOTIFY_OUT_END":
        return ended(outbound)
    return replace(
        base,
        phase=CallPhase.RECORDED,
        recording_ref=text(fields, "call_id_with_rec"),
        recording_delay_s=delay,
    )


def rest_authorization(key: str, secret: str, path: str, params: dict[str, str]) -> str:
    """Zadarma's REST signature [verified: Client.php]: the sorted query, its MD5 and the
    path, HMAC-SHA1 with the secret, hex, base64."""
    query = urlencode(sorted(params.items()))
    # MD5 is the provider's choice here, part of its signing format, not a security measure.
    message = path + query + hashlib.md5(query.encode(), usedforsecurity=False).hexdigest()
    return f"{key}:{sign(secret, message)}"


async def recording(
    session: aiohttp.ClientSession, guard: NetGuard, channel: Channel, ref: str, limit: int
) -> tuple[bytes, str | None]:
    """Ask Zadarma for the recording's temporary link, then download it."""
    base = (channel.setting("api_base") or DEFAULT_API_BASE).rstrip("/")
    params = {"call_id": ref}
    auth = rest_authorization(
        channel.setting("api_key"), channel.setting("secret"), RECORD_REQUEST, params
    )
    try:
        async with session.get(
            f"{base}{RECORD_REQUEST}", params=params, headers={"Authorization": auth}
        ) as reply:
            if reply.status in (401, 403):
                raise AuthFailed(f"Zadarma refused the API key (HTTP {reply.status})")
            if reply.status == 429 or reply.status >= 500:
                raise NotReady(f"Zadarma answered HTTP {reply.status}")
            body = await reply.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise NotReady(f"Zadarma unreachable: {type(exc).__name__}") from exc
    if not isinstance(body, dict) or body.get("status") != "success":
        message = body.get("message") if isinstance(body, dict) else None
        # Asked only `recording_delay` seconds after the call, once Zadarma has stored it.
        raise ChannelConfigError(
            f"Zadarma has no such recording: {str(message or 'no link')[:100]}"
        )
    links = body.get("links")
    link = body.get("link") or (links[0] if isinstance(links, list) and links else None)
    if not isinstance(link, str):
        raise ChannelConfigError("Zadarma answered without a recording link")
    return await download(guard, link, limit, trusted([base]))
