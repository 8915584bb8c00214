"""Bounded request reading shared by API handlers and connectors.

aiohttp's own limit answers a plain-text 413; reading through here keeps every error in
the contract's JSON shape and lets each endpoint choose its own limit.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from hub.errors import ApiError


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
    return request.content_type.lower() if request.body_exists else ""


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    if media_type(request) != "application/json":
        raise ApiError(415, "unsupported_media_type", "send application/json")
    raw = await read_body(request, limit)
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return value


def client_address(request: web.Request, trust_forwarded: bool) -> str:
    if trust_forwarded:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or "unknown"
