"""Calls, whichever way they ended and whether or not they have a lead (an anonymous
caller's call is kept, with no lead invented for it)."""

from __future__ import annotations

from aiohttp import web

from hub.api.access import restricted_to
from hub.api.auth import scoped
from hub.api.shapes import DEFAULT_LIMIT, MAX_LIMIT, page
from hub.calls import rows_to_json
from hub.context import hub_of
from hub.domain import CallStatus
from hub.errors import ApiError
from hub.httputil import whole_number
from storage import calls


@scoped("dialogs")
async def list_calls(request: web.Request) -> web.Response:
    """Newest first; `?before=ID` pages on, `?status=` and `?lead_id=` filter. An operator
    sees the calls they answered or were shown."""
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in {s.value for s in CallStatus}:
        raise ApiError(400, "bad_query", f"status must be one of {', '.join(CallStatus)}")
    limit = whole_number(
        query.get("limit", str(DEFAULT_LIMIT)), "limit", minimum=1, maximum=MAX_LIMIT
    )
    before = whole_number(query["before"], "before") if query.get("before") else None
    lead = whole_number(query["lead_id"], "lead_id") if query.get("lead_id") else None
    rows = await calls.list_calls(
        hub_of(request).pool,
        before_id=before,
        limit=limit,
        status=status,
        lead_id=lead,
        operator_id=restricted_to(request),
    )
    return web.json_response(page(rows_to_json(rows), limit))
