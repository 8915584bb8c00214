"""Mango Office's VPBX API events (PROTOCOLS.md §4b).

Mango posts to paths under the base URL it is given: `events/call` (each leg's state:
Appeared, Connected, OnHold, Disconnected), `events/summary` (one per call, at its end),
`events/recording`, `events/dtmf`, command results under `result/…`, and `ping`. Each is a
form with `vpbx_api_key`, `sign` and `json` (the event as a JSON string). The hub checks
`sign = hex(sha256(api_key + json + api_salt))`, the formula Mango uses for commands; for
incoming events it is not verified against a real PBX, so a mismatch is logged with a
request to report it. `entry_id` is the call; a leg's events are told apart by `call_id`
and `seq`. Recordings are downloaded with the `queries/recording/post` command.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from connectors.http import read_limited
from connectors.pbx import outcomes
from connectors.pbx.wire import read_fields, text
from hub.domain import CallEvent, CallPhase, CallStatus, Channel, Direction
from hub.errors import ApiError
from hub.httputil import refuse_unusable_text
from hub.netguard import NetGuard, Refused, trusted
from hub.ports import HubPorts
from hub.ports.connector import AuthFailed, ChannelConfigError, NotReady

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://app.mango-office.ru"
STORED = ("events/call", "events/summary", "events/recording")


def sign(api_key: str, document: str, salt: str) -> str:
    return hashlib.sha256((api_key + document + salt).encode()).hexdigest()


def _ok() -> web.Response:
    return web.json_response({"success": True})


async def handle(
    ports: HubPorts, channel: Channel, request: web.Request, path: str
) -> web.StreamResponse:
    fields = await read_fields(request, ports.max_body_bytes, json_too=False)
    if path == "ping" and not fields:
        return _ok()
    key, given, document = (text(fields, n) or "" for n in ("vpbx_api_key", "sign", "json"))
    if not key or not given:
        raise ApiError(401, "missing_signature", "vpbx_api_key and sign are required")
    if not hmac.compare_digest(key.encode(), channel.setting("api_key").encode()):
        raise ApiError(403, "bad_signature", "vpbx_api_key is not this channel's")
    expected = sign(channel.setting("api_key"), document, channel.setting("api_salt"))
    if not hmac.compare_digest(given.lower().encode(), expected.encode()):
        log.warning(
            "pbx channel %s: a Mango Office %s event's sign does not match sha256(api_key + json"
            " + api_salt). If api_salt is right, the PBX signs incoming events another way than"
            " commands: please report it to the hub's maintainers (the event was refused)",
            channel.name,
            path,
        )
        raise ApiError(403, "bad_signature", "sign does not match")
    if path == "ping":
        return _ok()
    if path not in STORED:
        # DTMF and command results are Mango's, known and of no use here; others are new.
        known = path == "events/dtmf" or path.startswith("result/")
        log.log(
            logging.INFO if known else logging.WARNING,
            "pbx channel %s: Mango Office %s %s",
            channel.name,
            path,
            "acknowledged, not stored" if known else "is an unknown event type; ignored",
        )
        return _ok()
    try:
        event = json.loads(document)
    except ValueError:
        raise ApiError(400, "malformed_json", "the json field is not valid JSON") from None
    refuse_unusable_text(event, "the json field")
    if not isinstance(event, dict) or not text(event, "entry_id"):
        raise ApiError(422, "invalid_field", "the event needs an entry_id")
    call_event = to_event(channel, path, event)
    if call_event is not None:
        await ports.calls.call_event(call_event)
    return _ok()


LATEST = 4_102_444_800  # 2100-01-01: a time past it is no PBX's clock


def _at(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < LATEST:
        return datetime.fromtimestamp(value, UTC)
    return None


def _party(event: dict[str, Any], side: str) -> dict[str, Any]:
    value = event.get(side)
    return value if isinstance(value, dict) else {}


def _direction(event: dict[str, Any]) -> Direction | None:
    """Summaries say it (1 in, 2 out, 0 internal); a leg is outbound when an extension
    calls a number outside."""
    code = event.get("call_direction")
    if code in (1, 2):
        return Direction.IN if code == 1 else Direction.OUT
    if code == 0:
        return None
    caller, callee = _party(event, "from"), _party(event, "to")
    if caller.get("extension") and not callee.get("extension"):
        return Direction.OUT
    return Direction.IN


def to_event(channel: Channel, path: str, event: dict[str, Any]) -> CallEvent | None:
    entry = str(event["entry_id"])[:200]
    caller, callee = _party(event, "from"), _party(event, "to")
    direction = _direction(event)
    outbound = direction == Direction.OUT
    base = CallEvent(
        channel_id=channel.id,
        call_id=entry,
        key=path,
        phase=CallPhase.RINGING,
        at=_at(event.get("timestamp")) or datetime.now(UTC),
        direction=direction,
        from_number=text(caller, "number"),
        to_number=text(callee, "line_number", "number") if not outbound else text(callee, "number"),
    )
    if path == "events/recording":
        if event.get("recording_state") != "Completed" or not text(event, "recording_id"):
            return replace(
                base,
                key=f"{path}:{event.get('recording_id')}:{event.get('recording_state')}",
                direction=None,
                from_number=None,
                to_number=None,
            )
        return replace(
            base,
            key=f"{path}:{event['recording_id']}",
            phase=CallPhase.RECORDED,
            direction=None,
            from_number=None,
            to_number=None,
            recording_ref=str(event["recording_id"]),
        )
    if path == "events/summary":
        result = event.get("entry_result")
        answered = _at(event.get("talk_time"))
        ended = _at(event.get("end_time"))
        outcome = outcomes.MANGO_ENTRY_RESULT.get(result) if isinstance(result, int) else None
        reason = event.get("disconnect_reason")
        return replace(
            base,
            phase=CallPhase.ENDED,
            at=ended or base.at,
            started_at=_at(event.get("create_time")),
            answered_at=answered,
            outcome=outcome,
            cause=f"mango {reason}" if reason is not None else None,
            duration_s=max(0, int((ended - answered).total_seconds()))
            if answered and ended
            else None,
            answered_by=text(caller if outbound else callee, "extension")
            if outcome == CallStatus.ANSWERED or outbound
            else None,
        )
    leg = f"{path}:{event.get('call_id')}:{event.get('seq')}"
    state = event.get("call_state")
    if state == "Appeared":
        extension = text(callee, "extension")
        if outbound:
            return replace(base, key=leg, answered_by=text(caller, "extension"))
        group = text(callee, "acd_group")
        return replace(
            base,
            key=leg,
            ringing=(extension,) if extension else (),
            group=None
            if extension
            else (group or ("" if event.get("location") == "queue" else None)),
        )
    if state == "Connected":
        answering = text(caller, "extension") if outbound else text(callee, "extension")
        return replace(base, key=leg, phase=CallPhase.ANSWERED, answered_by=answering)
    # OnHold, and a leg's Disconnected (one extension of a ringing group hanging up does not
    # end the call: its summary does), add nothing but the numbers.
    return replace(base, key=leg)


async def recording(
    guard: NetGuard, channel: Channel, recording_id: str, limit: int
) -> tuple[bytes, str | None]:
    """The `queries/recording/post` command answers with the file, or a redirect to it."""
    base = (channel.setting("api_base") or DEFAULT_API_BASE).rstrip("/")
    document = json.dumps({"recording_id": recording_id, "action": "download"})
    form = {
        "vpbx_api_key": channel.setting("api_key"),
        "sign": sign(channel.setting("api_key"), document, channel.setting("api_salt")),
        "json": document,
    }
    try:
        async with guard.request(
            "POST", f"{base}/vpbx/queries/recording/post/", trusted_hosts=trusted([base]), data=form
        ) as reply:
            if reply.status in (401, 403):
                raise AuthFailed(f"Mango Office refused the API key (HTTP {reply.status})")
            if reply.status in (404, 410):
                raise ChannelConfigError(
                    f"Mango Office has no such recording (HTTP {reply.status})"
                )
            if reply.status >= 400:
                raise NotReady(f"Mango Office answered HTTP {reply.status}")
            return await read_limited(reply, limit)
    except Refused as exc:
        raise ChannelConfigError(f"the recording was not fetched: {exc}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise NotReady(f"Mango Office unreachable: {type(exc).__name__}") from exc
