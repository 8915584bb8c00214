"""Interactions (one message, call or form each) and their attachments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hub.domain import (
    Attachment,
    AttachmentId,
    AttachmentState,
    CallInfo,
    CallStatus,
    ChannelId,
    DialogId,
    Direction,
    Interaction,
    InteractionId,
    LeadId,
)
from storage import events
from storage.database import Conn
from storage.events import NewEvent


def call_to_json(call: CallInfo | None) -> dict[str, Any] | None:
    if call is None:
        return None
    return {
        "id": call.id,
        "from": call.from_number,
        "to": call.to_number,
        "direction": call.direction,
        "status": call.status.value,
        "duration_s": call.duration_s,
        "recording_url": call.recording_url,
        "extension": call.extension,
        "operator_id": call.operator_id,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "cause": call.cause,
    }


def call_from_json(value: dict[str, Any] | None) -> CallInfo | None:
    if not value:
        return None
    return CallInfo(
        from_number=value["from"],
        to_number=value["to"],
        status=CallStatus(value["status"]),
        duration_s=int(value.get("duration_s") or 0),
        recording_url=value.get("recording_url"),
        id=value.get("id"),
        direction=value.get("direction"),
        extension=value.get("extension"),
        operator_id=value.get("operator_id"),
        started_at=value.get("started_at"),
        answered_at=value.get("answered_at"),
        ended_at=value.get("ended_at"),
        cause=value.get("cause"),
    )


_SELECT = """
    SELECT i.id, i.lead_id, i.dialog_id, i.channel_id, i.kind, i.direction, i.text, i.subject,
           i.occurred_at, i.external_id, i.call, i.extra, i.delivery_state, i.delivery_error,
           i.author, i.edited_at, c.name AS channel_name,
           COALESCE((SELECT jsonb_agg(jsonb_build_object(
                        'id', a.id, 'name', a.name, 'content_type', a.content_type,
                        'size', a.size, 'state', a.state, 'note', a.note) ORDER BY a.id)
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
        kind=row["kind"],
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
                state=AttachmentState(f["state"]),
                note=f["note"],
            )
            for f in row["files"]
        ),
        call=call_from_json(row["call"]),
        extra=dict(row["extra"]),
        delivery_state=row["delivery_state"],
        delivery_error=row["delivery_error"],
        author=row["author"],
        edited_at=row["edited_at"],
    )


async def get(conn: Conn, interaction_id: int) -> Interaction | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE i.id = $1", interaction_id)
    return _interaction(row) if row else None


async def of_lead(
    conn: Conn,
    lead_id: int,
    *,
    after_id: int = 0,
    limit: int = 100,
    before_id: int | None = None,
) -> list[Interaction]:
    """Every interaction of the lead across channels: oldest first after `after_id`, or,
    with `before_id`, newest first before it (a console loads the latest page, then older
    ones as the operator scrolls up)."""
    if before_id is not None:
        rows = await conn.fetch(
            f"{_SELECT} WHERE i.lead_id = $1 AND i.id < $2 ORDER BY i.id DESC LIMIT $3",
            lead_id,
            before_id,
            limit,
        )
    else:
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


async def edit(
    conn: Conn, channel_id: ChannelId, external_id: str, text: str | None, edited_at: datetime
) -> tuple[str, InteractionId | None]:
    """Apply a provider's edit; the previous text is kept in `extra.edits`.

    Returns `("updated" | "stale" | "missing", id)`: an older edit arriving after a newer
    one (a retry) changes nothing.
    """
    row = await conn.fetchrow(
        """
        WITH target AS (
            SELECT id, edited_at FROM interactions
            WHERE channel_id = $1 AND external_id = $2 FOR UPDATE
        ), upd AS (
            UPDATE interactions i SET
                extra = jsonb_set(i.extra, '{edits}', COALESCE(i.extra->'edits', '[]'::jsonb)
                        || jsonb_build_array(jsonb_build_object(
                               'text', i.text, 'replaced_at', $4::timestamptz))),
                text = $3,
                edited_at = $4
            FROM target t
            WHERE i.id = t.id AND (t.edited_at IS NULL OR t.edited_at < $4)
            RETURNING i.id, i.lead_id, i.dialog_id
        )
        SELECT (SELECT id FROM target) AS target, upd.id AS updated, upd.lead_id, upd.dialog_id
        FROM (SELECT 1) one LEFT JOIN upd ON true
        """,
        channel_id,
        external_id,
        text,
        edited_at,
    )
    assert row is not None
    if row["target"] is None:
        return "missing", None
    if row["updated"] is None:
        return "stale", InteractionId(row["target"])
    await events.append(
        conn,
        [
            NewEvent(
                "interaction.edited",
                lead_id=row["lead_id"],
                dialog_id=row["dialog_id"],
                interaction_id=row["updated"],
                data={"edited_at": edited_at.isoformat()},
                actor="customer",
            )
        ],
    )
    return "updated", InteractionId(row["target"])


_STATE_RANK = {"pending": 0, "sent": 1, "delivered": 2, "seen": 3}


async def mark_delivery(
    conn: Conn, channel_id: ChannelId, provider_message_id: str, state: str, error: str | None
) -> InteractionId | None:
    """A provider's receipt for one of our messages; states only move forward."""
    if state == "failed":
        allowed = ["pending", "sent", "delivered"]
    else:
        allowed = [s for s, rank in _STATE_RANK.items() if rank < _STATE_RANK[state]]
    interaction_id = await conn.fetchval(
        """UPDATE interactions SET delivery_state = $3, delivery_error = COALESCE($4, delivery_error)
           WHERE channel_id = $1 AND provider_message_id = $2 AND direction = 'out'
             AND delivery_state = ANY($5::text[])
           RETURNING id""",
        channel_id,
        provider_message_id,
        state,
        error,
        allowed,
    )
    return InteractionId(interaction_id) if interaction_id is not None else None
