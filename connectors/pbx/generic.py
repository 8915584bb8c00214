"""The generic provider, compatible with Zammad's CTI API (PROTOCOLS.md §4e), so a PBX
script written for Zammad only changes its URL: `POST /connectors/pbx/{channel}?token=…`.

Events `newCall`, `answer`, `hangup` with `from`, `to`, `direction` (`in`/`out`), `callId`
(or `call_id`), `user` (one name or a list: extensions or logins), `queue`,
`answeringNumber`, `cause`; JSON or form data. Answers as Zammad does: `{}`; for a blocked
caller's inbound `newCall`, `{"action":"reject","reason":"busy"}`; a wrong token is 401
`{"error":"Invalid token, please contact your admin!"}`, a wrong direction 422
`{"error":"Invalid direction!"}`. Unlike Zammad, a repeated event changes nothing.

Beyond Zammad: `hangup` may carry `recordingUrl`, the recording the hub then downloads.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from connectors.http import download
from connectors.pbx import outcomes
from connectors.pbx.wire import read_fields, text, texts
from hub.domain import CallEvent, CallPhase, CallStatus, Channel, Direction
from hub.errors import ApiError
from hub.netguard import NetGuard, trusted
from hub.ports import HubPorts

log = logging.getLogger(__name__)

EVENTS = ("newCall", "answer", "hangup")


def _zammad_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def handle(ports: HubPorts, channel: Channel, request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    if not token or not hmac.compare_digest(token.encode(), channel.setting("secret").encode()):
        return _zammad_error(401, "Invalid token, please contact your admin!")
    fields = await read_fields(request, ports.max_body_bytes, json_too=True)
    kind = text(fields, "event")
    if kind not in EVENTS:
        log.warning("pbx channel %s: unknown generic call event %r ignored", channel.name, kind)
        return web.json_response({})
    direction = text(fields, "direction")
    if direction not in ("in", "out"):
        return _zammad_error(422, "Invalid direction!")
    call_id = text(fields, "callId", "call_id")
    if call_id is None or len(call_id) > 200:
        raise ApiError(
            422, "invalid_field", "callId (or call_id) is required, 200 characters at most"
        )
    event = to_event(channel, kind, Direction(direction), call_id, fields)
    result = await ports.calls.call_event(event)
    if kind == "newCall" and direction == "in" and result.blocked:
        return web.json_response({"action": "reject", "reason": "busy"})
    return web.json_response({})


def to_event(
    channel: Channel, kind: str, direction: Direction, call_id: str, fields: dict[str, Any]
) -> CallEvent:
    users = texts(fields.get("user"))
    answering = text(fields, "answeringNumber") or (users[0] if users else None)
    base = CallEvent(
        channel_id=channel.id,
        call_id=call_id,
        key=kind,
        phase=CallPhase.RINGING,
        at=datetime.now(UTC),
        direction=direction,
        from_number=text(fields, "from"),
        to_number=text(fields, "to"),
    )
    if kind == "newCall":
        if direction == Direction.OUT:
            # The user placing an outbound call is the operator on it.
            return replace(base, answered_by=users[0] if users else None)
        queue = text(fields, "queue")
        return replace(base, ringing=users, group=None if users else (queue or ""))
    if kind == "answer":
        if answering == outcomes.VOICEMAIL:
            return replace(
                base, phase=CallPhase.ENDED, outcome=CallStatus.MISSED, cause="voicemail"
            )
        return replace(base, phase=CallPhase.ANSWERED, answered_by=answering)
    cause = text(fields, "cause")
    return replace(
        base,
        phase=CallPhase.ENDED,
        outcome=outcomes.mapped(outcomes.ZAMMAD, cause),
        cause=cause[:100] if cause else None,
        answered_by=text(fields, "answeringNumber"),
        recording_ref=text(fields, "recordingUrl", "recording_url"),
    )


async def recording(
    guard: NetGuard, channel: Channel, url: str, limit: int
) -> tuple[bytes, str | None]:
    """A recording URL the PBX gave: fetched from public addresses, or from the channel's
    configured `api_base` host."""
    hosts = trusted([channel.setting("api_base")] if channel.setting("api_base") else [])
    return await download(guard, url, limit, hosts)
