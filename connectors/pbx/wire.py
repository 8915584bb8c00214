"""Reading the bodies PBXs post: form fields (repeated keys and `key[]` kept as lists) or a
JSON object, refused with a clear 4xx before anything is stored."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from hub.errors import ApiError
from hub.httputil import media_type, parse_json, read_body, refuse_unusable_text

FORM = "application/x-www-form-urlencoded"


def form_fields(raw: bytes) -> dict[str, Any]:
    """URL-decoded form fields; a key sent more than once, or as `key[]`, is a list."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "malformed_form", "the form body is not UTF-8 form data") from None
    lists: dict[str, list[str]] = {}
    for key, value in pairs:
        lists.setdefault(key.removesuffix("[]"), []).append(value)
    bracketed = {key.removesuffix("[]") for key, _ in pairs if key.endswith("[]")}
    fields: dict[str, Any] = {
        name: values if len(values) > 1 or name in bracketed else values[0]
        for name, values in lists.items()
    }
    return fields


async def read_fields(request: web.Request, limit: int, *, json_too: bool) -> dict[str, Any]:
    """The body's fields: a form, or (where the provider may send it) a JSON object."""
    kind = media_type(request)
    raw = await read_body(request, limit)
    if kind == "application/json" and json_too:
        value = parse_json(raw)
        if not isinstance(value, dict):
            raise ApiError(400, "malformed_json", "the body must be a JSON object")
    elif kind == FORM:
        value = form_fields(raw)
    else:
        expected = f"application/json or {FORM}" if json_too else FORM
        raise ApiError(415, "unsupported_media_type", f"send {expected}")
    refuse_unusable_text(value)
    fields: dict[str, Any] = value
    return fields


def text(fields: dict[str, Any], *names: str) -> str | None:
    """The first of the fields given as a non-empty string (a number is read as text)."""
    for name in names:
        value = fields.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def texts(value: Any) -> tuple[str, ...]:
    """A field that is one string or a list of them."""
    items = value if isinstance(value, list) else [value]
    return tuple(str(v).strip() for v in items if isinstance(v, str | int) and str(v).strip())
