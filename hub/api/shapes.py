"""The contract's JSON shapes for leads, interactions and dialogs, plus paging helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from hub.domain import Dialog, Interaction, Lead, Operator
from hub.errors import ApiError
from hub.httputil import MAX_ID, whole_number
from storage.interactions import call_to_json

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def lead_json(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "name": lead.name,
        "phones": [p.e164 for p in lead.phones],
        "phone_extensions": {p.e164: p.extension for p in lead.phones if p.extension},
        "emails": list(lead.emails),
        "identities": [{"kind": i.kind, "external_id": i.external_id} for i in lead.identities],
        "name_suggestions": list(lead.name_suggestions),
        "phone_suggestions": list(lead.phone_suggestions),
        "created_at": lead.created_at.isoformat(),
        "updated_at": lead.updated_at.isoformat(),
        "merged_into": lead.merged_into,
        "blocked": lead.blocked,
        "external_ids": dict(lead.external_ids),
        "source": lead.source,
    }


def interaction_json(item: Interaction) -> dict[str, Any]:
    return {
        "id": item.id,
        "lead_id": item.lead_id,
        "dialog_id": item.dialog_id,
        "channel": item.channel,
        "kind": item.kind,
        "direction": item.direction.value,
        "text": item.text,
        "subject": item.subject,
        "occurred_at": item.occurred_at.isoformat(),
        "external_id": item.external_id,
        "attachments": [
            {
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "url": f"/api/v1/attachments/{a.id}" if a.state == "stored" else None,
                "state": a.state.value,
                "note": a.note,
            }
            for a in item.attachments
        ],
        "call": _call_json(item),
        "fields": item.extra.get("fields", {}),
        "delivery_state": item.delivery_state,
        "delivery_error": item.delivery_error,
        "author": item.author,
        "edited_at": item.edited_at.isoformat() if item.edited_at else None,
    }


def _call_json(item: Interaction) -> dict[str, Any] | None:
    """The call, with its recording's URL once the file is stored (and why not, if not)."""
    call = call_to_json(item.call)
    if call is None:
        return None
    audio = [a for a in item.attachments if a.content_type.startswith("audio/")]
    if audio and audio[0].state == "stored":
        call["recording_url"] = f"/api/v1/attachments/{audio[0].id}"
    elif audio:
        call["recording_state"] = audio[0].state.value
        call["recording_note"] = audio[0].note
    return call


def dialog_json(dialog: Dialog) -> dict[str, Any]:
    t = dialog.timings
    return {
        "timings": {
            "waited_s": _seconds(t.get("queued_at"), t.get("assigned_at")),
            "first_response_s": _seconds(t.get("assigned_at"), t.get("first_response_at")),
            "handled_s": _seconds(t.get("assigned_at"), dialog.closed_at),
        },
        "id": dialog.id,
        "lead_id": dialog.lead_id,
        "channel": dialog.channel,
        "channel_kind": dialog.channel_kind,
        "status": dialog.status.value,
        "operator_id": dialog.operator_id,
        "created_at": dialog.created_at.isoformat(),
        "closed_at": dialog.closed_at.isoformat() if dialog.closed_at else None,
        "handover": (
            {"comment": dialog.handover_comment, "by_operator_id": dialog.handover_by}
            if dialog.handover_comment or dialog.handover_by
            else None
        ),
    }


def operator_json(operator: Operator) -> dict[str, object]:
    return {
        "id": operator.id,
        "login": operator.login,
        "name": operator.name,
        "role": operator.role,
        "skills": list(operator.skills),
        "max_dialogs": operator.max_dialogs,
        "extension": operator.extension,
        "disabled": operator.disabled_at is not None,
        "created_at": operator.created_at.isoformat(),
    }


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return round(float((end - start).total_seconds()), 3)


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info.get(name, "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ApiError(404, "not_found", f"no such {name}")
    return int(raw)


def paging(request: web.Request) -> tuple[int, int]:
    """`(after_id, limit)` from `?cursor=&limit=`; the cursor is the last id seen."""
    limit = whole_number(
        request.query.get("limit", str(DEFAULT_LIMIT)), "limit", minimum=1, maximum=MAX_LIMIT
    )
    cursor = whole_number(request.query.get("cursor", "0") or "0", "cursor")
    return cursor, limit


def newest_first(request: web.Request) -> int | None:
    """`?order=desc`: the id to page below (`before`, or `cursor`, is the last id of the
    previous page); None for `asc`, the default (oldest first, paged by `cursor`)."""
    order = request.query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "bad_query", "order is asc (oldest first) or desc (newest first)")
    if order == "asc":
        return None
    raw = request.query.get("before") or request.query.get("cursor") or ""
    return whole_number(raw, "before") if raw else MAX_ID


def page(items: Sequence[dict[str, Any]], limit: int) -> dict[str, Any]:
    next_cursor = str(items[-1]["id"]) if len(items) == limit else None
    return {"items": list(items), "next_cursor": next_cursor}
