"""`GET /api/v1/search?q=`: one box for everything an operator remembers about a customer:
a name, a phone number in any format, an email or a piece of one, words of a message.
Operators find what they may see (their own dialogs' leads); supervisors, admins and API
keys everything."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from hub.api.access import restricted_to
from hub.api.auth import scoped
from hub.api.shapes import lead_json
from hub.context import hub_of
from hub.domain import LeadId
from hub.errors import unprocessable
from hub.httputil import refuse_unusable_text, whole_number
from hub.identity import InvalidContact, normalize_phone
from storage import leads
from storage import search as store

MAX_QUERY = 200
DEFAULT_LIMIT, MAX_LIMIT = 20, 50
SNIPPET = 160  # characters of a message shown around its first match
PHONE_LIKE = re.compile(r"^[\d\s()+\-.]+$")


def kind_of(query: str) -> str:
    """`email`, `phone` (three digits or more and nothing but a number's punctuation) or
    `text` (a name or a message's words)."""
    if "@" in query:
        return "email"
    if PHONE_LIKE.match(query) and sum(c.isdigit() for c in query) >= 3:
        return "phone"
    return "text"


def snippet(text: str, query: str) -> str:
    """The part of `text` around the first word of `query` it contains, on one line."""
    flat = " ".join(text.split())
    lowered = flat.lower()
    found = [p for w in store.WORDS.findall(query.lower()) if (p := lowered.find(w)) >= 0]
    start = max(0, min(found) - SNIPPET // 4) if found else 0
    piece = flat[start : start + SNIPPET]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET < len(flat) else "")


@scoped("leads")
async def search(request: web.Request) -> web.Response:
    hub = hub_of(request)
    query = " ".join(request.query.get("q", "").split())
    refuse_unusable_text(query, "q")
    if not query:
        raise unprocessable("missing_field", "q is required: a name, phone, email or words")
    if len(query) > MAX_QUERY:
        raise unprocessable("invalid_field", f"q is longer than {MAX_QUERY} characters")
    limit = whole_number(
        request.query.get("limit", str(DEFAULT_LIMIT)), "limit", minimum=1, maximum=MAX_LIMIT
    )
    operator = restricted_to(request)
    kind = kind_of(query)
    async with hub.pool.acquire() as conn:
        if kind == "email":
            ids = await store.lead_ids_by_email(conn, query, operator, limit)
        elif kind == "phone":
            try:
                e164: str | None = normalize_phone(query, hub.settings.default_region).e164
            except InvalidContact:
                e164 = None
            digits = "".join(c for c in query if c.isdigit())
            ids = await store.lead_ids_by_phone(conn, e164, digits, operator, limit)
        elif len(query) >= 2:
            ids = await store.lead_ids_by_name(conn, query, operator, limit)
        else:
            ids = []
        found = await leads.get_many(conn, ids)
        # A number is looked for among phones only: its digits in messages are noise.
        messages = [] if kind == "phone" else await store.messages(conn, query, operator, limit)
    body: dict[str, Any] = {
        "query": query,
        "kind": kind,
        "leads": [lead_json(found[LeadId(i)]) for i in ids if LeadId(i) in found],
        "messages": [
            {
                "id": m.id,
                "lead_id": m.lead_id,
                "lead_name": m.lead_name,
                "dialog_id": m.dialog_id,
                "channel": m.channel,
                "kind": m.kind,
                "direction": m.direction,
                "subject": m.subject,
                "snippet": snippet(m.text or m.subject or "", query),
                "occurred_at": m.occurred_at.isoformat(),
            }
            for m in messages
        ],
    }
    return web.json_response(body)
