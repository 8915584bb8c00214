"""What an operator session may see: their own dialogs (and offers), and the leads and
history behind them. API keys and supervisors see everything."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from hub.api.auth import principal_of
from hub.context import hub_of
from hub.errors import not_found


def restricted_to(request: web.Request) -> int | None:
    """The operator id an answer must be limited to, or None for full access."""
    principal = principal_of(request)
    return None if principal.sees_everything else principal.operator_id


async def ensure_lead_visible(request: web.Request, lead_id: int) -> None:
    operator_id = restricted_to(request)
    if operator_id is None:
        return
    visible = await hub_of(request).pool.fetchval(
        """SELECT EXISTS (SELECT 1 FROM dialogs d WHERE d.lead_id = $1
                          AND (d.operator_id = $2 OR $2 = ANY(d.offered_to)))""",
        lead_id,
        operator_id,
    )
    if not visible:
        raise not_found(f"lead {lead_id} not found")


async def visible_leads(request: web.Request, lead_ids: Collection[int]) -> set[int]:
    """Which of `lead_ids` the caller may see: all of them for full access, else those with
    a dialog the operator holds or is offered."""
    operator_id = restricted_to(request)
    if operator_id is None or not lead_ids:
        return set(lead_ids)
    rows = await hub_of(request).pool.fetch(
        """SELECT DISTINCT d.lead_id FROM dialogs d WHERE d.lead_id = ANY($1::bigint[])
                  AND (d.operator_id = $2 OR $2 = ANY(d.offered_to))""",
        list(lead_ids),
        operator_id,
    )
    return {r["lead_id"] for r in rows}


async def ensure_dialog_visible(
    request: web.Request, dialog_id: int, *, holding: bool = False
) -> None:
    """Own dialogs (and, unless `holding`, offers) only, for operators."""
    operator_id = restricted_to(request)
    if operator_id is None:
        return
    visible = await hub_of(request).pool.fetchval(
        """SELECT EXISTS (SELECT 1 FROM dialogs d WHERE d.id = $1
                          AND (d.operator_id = $2 OR (NOT $3 AND $2 = ANY(d.offered_to))))""",
        dialog_id,
        operator_id,
        holding,
    )
    if not visible:
        raise not_found(f"dialog {dialog_id} not found")
