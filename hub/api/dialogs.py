"""Dialogs and the files attached to their interactions."""

from __future__ import annotations

from aiohttp import web

from hub.api.auth import scoped
from hub.api.shapes import dialog_json, interaction_json, page, paging, path_id
from hub.context import hub_of
from hub.domain import DialogStatus
from hub.errors import ApiError, not_found
from storage import dialogs, interactions


@scoped("dialogs")
async def list_dialogs(request: web.Request) -> web.Response:
    hub = hub_of(request)
    after_id, limit = paging(request)
    status = request.query.get("status") or None
    if status is not None and status not in {s.value for s in DialogStatus}:
        raise ApiError(400, "bad_query", "status must be queued, offered, assigned or closed")
    operator = request.query.get("operator") or None
    lead = request.query.get("lead_id") or None
    for value in (operator, lead):
        if value is not None and not value.isdigit():
            raise ApiError(400, "bad_query", "operator and lead_id must be ids")
    async with hub.pool.acquire() as conn:
        found = await dialogs.search(
            conn,
            status=status,
            operator_id=int(operator) if operator else None,
            lead_id=int(lead) if lead else None,
            after_id=after_id,
            limit=limit,
        )
    return web.json_response(page([dialog_json(d) for d in found], limit))


@scoped("dialogs")
async def get_dialog(request: web.Request) -> web.Response:
    """One dialog with its interactions."""
    hub = hub_of(request)
    dialog_id = path_id(request)
    async with hub.pool.acquire() as conn:
        dialog = await dialogs.get(conn, dialog_id)
        if dialog is None:
            raise not_found(f"dialog {dialog_id} not found")
        items = await interactions.of_dialog(conn, dialog_id)
    body = dialog_json(dialog)
    body["interactions"] = [interaction_json(i) for i in items]
    return web.json_response(body)


@scoped("leads")
async def get_attachment(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    attachment_id = path_id(request)
    async with hub.pool.acquire() as conn:
        row = await interactions.attachment(conn, attachment_id)
    if row is None:
        raise not_found(f"attachment {attachment_id} not found")
    try:
        path = hub.attachments.path_of(row["storage_path"])
    except ValueError:
        raise not_found(f"attachment {attachment_id} not found") from None
    if not path.is_file():
        raise ApiError(410, "gone", "the file is no longer stored")
    safe_name = row["name"].replace('"', "")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": row["content_type"],
            # Customer files are never rendered by the browser in the hub's origin.
            "Content-Disposition": f'attachment; filename="{safe_name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )
