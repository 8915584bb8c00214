"""Bounded request reading shared by API handlers and connectors.

aiohttp's own limit answers a plain-text 413; reading through here keeps every error in
the contract's JSON shape and lets each endpoint choose its own limit.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

import orjson
from aiohttp import web

from hub.errors import ApiError
from hub.text import unusable_in


def large_json(body: Any) -> web.Response:
    """A JSON answer encoded by orjson: a report's summary of 200 operators is a quarter of
    a megabyte of figures, which took the standard library's encoder 14 ms of the event
    loop and orjson under one (numbers written alike; both give the same document)."""
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        content_type="application/json",
        charset="utf-8",
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body is over {limit} bytes")


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    body = bytearray()
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        body.extend(chunk)
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


def media_type(request: web.Request) -> str:
    """The request's media type: the Content-Type header as sent (an empty body with
    `application/json` is a JSON body that is empty, a 400, not a missing type)."""
    if "Content-Type" not in request.headers and not request.body_exists:
        return ""
    return request.content_type.lower()


def parse_json(raw: bytes) -> Any:
    """A JSON document; 400 for anything else, including nesting deeper than the parser
    allows (a `RecursionError`, which is not a `ValueError`)."""
    if not raw.strip():
        raise ApiError(400, "malformed_json", "the body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def refuse_unusable_text(value: Any, where: str = "the body") -> None:
    """400 when a string in `value` holds what PostgreSQL cannot store (`hub.text`)."""
    if unusable_in(value):
        raise ApiError(400, "invalid_text", f"{where} contains a NUL character or a lone surrogate")


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    if media_type(request) != "application/json":
        raise ApiError(415, "unsupported_media_type", "send application/json")
    value = parse_json(await read_body(request, limit))
    if not isinstance(value, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    refuse_unusable_text(value)
    return value


# PostgreSQL's bigint: every id and cursor the hub hands out fits.
MAX_ID = 2**63 - 1


def whole_number(raw: str, name: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int:
    """A query or path value in ASCII digits within bounds (`int()` would also take
    Arabic-Indic or full-width digits, and numbers PostgreSQL cannot hold)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not minimum <= int(raw) <= maximum:
        raise ApiError(400, "bad_query", f"{name} must be a whole number {minimum}..{maximum}")
    return int(raw)


def is_id(value: object) -> TypeGuard[int]:
    """A JSON value that can name a row: an int (not a bool) in 1..2^63-1."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def client_address(request: web.Request, trust_forwarded: bool) -> str:
    if trust_forwarded:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or "unknown"


MAX_HANDOVER_COMMENT = 1000


def handover_comment(value: object) -> str | None:
    """A transfer's note for its receiver, from a request or a frame: absent or blank is
    none; anything but text, or text PostgreSQL cannot keep, is refused."""
    if value is None:
        return None
    if not isinstance(value, str) or unusable_in(value):
        raise ApiError(422, "invalid_field", "comment must be text")
    text = value.strip()
    if len(text) > MAX_HANDOVER_COMMENT:
        raise ApiError(
            422, "text_too_long", f"a comment holds at most {MAX_HANDOVER_COMMENT} characters"
        )
    return text or None
