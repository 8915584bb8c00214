"""Interactions (one message, call or form each) and their attachments."""

from __future__ import annotations

from typing import Any

import asyncpg

from hub.domain import (
    Attachment,
    AttachmentId,
    CallInfo,
    CallStatus,
    ChannelId,
    DialogId,
    Direction,
    Interaction,
    InteractionId,
    InteractionKind,
    LeadId,
)
from storage.database import Conn


def call_to_json(call: CallInfo | None) -> dict[str, Any] | None:
    if call is None:
        return None
    return {
        "from": call.from_number,
        "to": call.to_number,
        "status": call.status.value,
        "duration_s": call.duration_s,
        "recording_url": call.recording_url,
    }


def _call(value: dict[str, Any] | None) -> CallInfo | None:
    if not value:
        return None
    return CallInfo(
        from_number=value["from"],
        to_number=value["to"],
        status=CallStatus(value["status"]),
        duration_s=int(value.get("duration_s") or 0),
        recording_url=value.get("recording_url"),
    )


_SELECT = """
    SELECT i.*, c.name AS channel_name,
           COALESCE((SELECT jsonb_agg(jsonb_build_object(
                        'id', a.id, 'name', a.name, 'content_type', a.content_type,
                        'size', a.size) ORDER BY a.id)
                     FROM attachments a WHERE a.interaction_id = i.id), '[]') AS files
    FROM interactions i JOIN channels c ON c.id = i.channel_id
"""


def _interaction(row: asyncpg.Record) -> Interaction:
    return Interaction(
        id=InteractionId(row["id"]),
        lead_id=LeadId(row["lead_id"]),
        dialog_id=DialogId(row["dialog_id"]),
        channel_id=ChannelId(row["channel_id"]),
        channel=row["channel_name"],
        kind=InteractionKind(row["kind"]),
        direction=Direction(row["direction"]),
        text=row["text"],
        subject=row["subject"],
        occurred_at=row["occurred_at"],
        external_id=row["external_id"],
        attachments=tuple(
            Attachment(
                id=AttachmentId(f["id"]),
                name=f["name"],
                content_type=f["content_type"],
                size=f["size"],
            )
            for f in row["files"]
        ),
        call=_call(row["call"]),
        extra=dict(row["extra"]),
        delivery_state=row["delivery_state"],
    )


async def get(conn: Conn, interaction_id: int) -> Interaction | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE i.id = $1", interaction_id)
    return _interaction(row) if row else None


async def of_lead(
    conn: Conn, lead_id: int, *, after_id: int = 0, limit: int = 100
) -> list[Interaction]:
    """Every interaction of the lead across channels, oldest first."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE i.lead_id = $1 AND i.id > $2 ORDER BY i.id LIMIT $3",
        lead_id,
        after_id,
        limit,
    )
    return [_interaction(r) for r in rows]


async def of_dialog(conn: Conn, dialog_id: int, limit: int = 500) -> list[Interaction]:
    rows = await conn.fetch(
        f"{_SELECT} WHERE i.dialog_id = $1 ORDER BY i.id LIMIT $2", dialog_id, limit
    )
    return [_interaction(r) for r in rows]


async def attachment(conn: Conn, attachment_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT a.*, i.lead_id, i.dialog_id FROM attachments a"
        " JOIN interactions i ON i.id = a.interaction_id WHERE a.id = $1",
        attachment_id,
    )
