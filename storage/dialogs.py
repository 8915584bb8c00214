"""Dialogs: the thread of one lead on one channel, the unit that is routed to operators."""

from __future__ import annotations

from typing import Any

import asyncpg

from hub.domain import ChannelId, Dialog, DialogId, DialogStatus, LeadId, OperatorId
from storage.database import Conn, id_filter
from storage.events import NewEvent, append

_COLUMNS = "d.*, c.name AS channel_name, c.kind AS channel_kind"


def _dialog(row: asyncpg.Record) -> Dialog:
    return Dialog(
        id=DialogId(row["id"]),
        lead_id=LeadId(row["lead_id"]),
        channel_id=ChannelId(row["channel_id"]),
        channel=row["channel_name"],
        channel_kind=row["channel_kind"],
        status=DialogStatus(row["status"]),
        operator_id=OperatorId(row["operator_id"]) if row["operator_id"] is not None else None,
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        timings={
            "queued_at": row["queued_at"],
            "assigned_at": row["assigned_at"],
            "first_response_at": row["first_response_at"],
        },
        handover_comment=row["handover_comment"],
        handover_by=OperatorId(row["handover_by"]) if row["handover_by"] is not None else None,
    )


async def get(conn: Conn, dialog_id: int) -> Dialog | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM dialogs d JOIN channels c ON c.id = d.channel_id WHERE d.id = $1",
        dialog_id,
    )
    return _dialog(row) if row else None


async def get_many(conn: Conn, ids: list[int]) -> list[Dialog]:
    which, arg = id_filter("d.id", ids)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dialogs d JOIN channels c ON c.id = d.channel_id"
        f" WHERE {which} ORDER BY d.id",
        arg,
    )
    return [_dialog(r) for r in rows]


async def reading_state(conn: Conn, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What the console lists of each dialog: `unread` (customer messages since it was last
    read), `last_text` (the customer's latest message: an operator's own reply is not the
    customer's words), `last_at` (the latest activity either way) and `waiting_since` (the
    customer's first message after our latest reply or answered call: null when answered;
    a missed call waits, a call ringing or answered does not; an internal note is no
    answer)."""
    which, arg = id_filter("d.id", ids)
    rows = await conn.fetch(
        f"""SELECT d.id, d.created_at,
                  (SELECT count(*) FROM interactions i WHERE i.dialog_id = d.id
                     AND i.direction = 'in'
                     AND i.created_at > COALESCE(d.operator_read_at, '-infinity')) AS unread,
                  last_in.text AS last_text, last_in.occurred_at AS last_in_at,
                  (SELECT max(i.created_at) FROM interactions i
                     WHERE i.dialog_id = d.id) AS last_at,
                  (SELECT min(i.created_at) FROM interactions i
                     WHERE i.dialog_id = d.id AND i.direction = 'in'
                       AND COALESCE(i.call->>'status', 'missed')
                           NOT IN ('ringing', 'in_progress', 'answered')
                       AND i.id > COALESCE((SELECT max(o.id) FROM interactions o
                                            WHERE o.dialog_id = d.id
                                              AND ((o.direction = 'out'
                                                    AND o.author IS DISTINCT FROM 'auto-reply'
                                                    AND o.kind <> 'note')
                                                   OR o.call->>'status'
                                                      IN ('in_progress', 'answered'))), 0)
                  ) AS waiting_since
           FROM dialogs d
           LEFT JOIN LATERAL (SELECT i.text, i.occurred_at FROM interactions i
                              WHERE i.dialog_id = d.id AND i.direction = 'in'
                              ORDER BY i.id DESC LIMIT 1) last_in ON true
           WHERE {which}""",
        arg,
    )
    return {
        r["id"]: {
            "unread": int(r["unread"]),
            "last_text": r["last_text"],
            "last_at": (r["last_at"] or r["created_at"]).isoformat(),
            "waiting_since": r["waiting_since"].isoformat() if r["waiting_since"] else None,
        }
        for r in rows
    }


async def search(
    conn: Conn,
    *,
    status: str | None = None,
    operator_id: int | None = None,
    lead_id: int | None = None,
    channel: str | None = None,
    after_id: int = 0,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Dialog]:
    """Dialogs matching every given filter (`channel` by name), oldest first; newest first
    below `before_id` when it is given."""
    newest = before_id is not None
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM dialogs d JOIN channels c ON c.id = d.channel_id
        WHERE {"d.id < $1" if newest else "d.id > $1"}
          AND ($2::text IS NULL OR d.status = $2)
          AND ($3::bigint IS NULL OR d.operator_id = $3)
          AND ($4::bigint IS NULL OR d.lead_id = $4)
          AND ($6::text IS NULL OR c.name = $6)
        ORDER BY d.id {"DESC" if newest else ""} LIMIT $5
        """,
        before_id if newest else after_id,
        status,
        operator_id,
        lead_id,
        limit,
        channel,
    )
    return [_dialog(r) for r in rows]


async def holder(conn: Conn | asyncpg.Pool, dialog_id: int) -> int | None:
    """The operator holding an assigned dialog, if any."""
    value = await conn.fetchval(
        "SELECT operator_id FROM dialogs WHERE id = $1 AND status = 'assigned'", dialog_id
    )
    return int(value) if value is not None else None


async def mark_read(conn: Conn | asyncpg.Pool, dialog_id: int, operator_id: int) -> None:
    """The holder has read the dialog up to now (the console's unread count)."""
    await conn.execute(
        "UPDATE dialogs SET operator_read_at = now() WHERE id = $1 AND operator_id = $2",
        dialog_id,
        operator_id,
    )


async def start(
    conn: Conn, lead_id: int, channel_id: int, peer: str, operator_id: int | None
) -> int:
    """A dialog the business starts, writing first where the customer never wrote: held by
    the operator who writes, or closed at once when a CRM writes (a record; the customer's
    answer reopens it, threaded by the message it answers). Its own thread, never another's."""
    dialog_id: int = await conn.fetchval(
        """INSERT INTO dialogs (lead_id, channel_id, peer, thread_key, status, operator_id,
                                last_operator_id, assigned_at, closed_at)
           VALUES ($1, $2, $3, 'out:' || gen_random_uuid(),
                   CASE WHEN $4::bigint IS NULL THEN 'closed' ELSE 'assigned' END, $4, $4,
                   CASE WHEN $4::bigint IS NOT NULL THEN now() END,
                   CASE WHEN $4::bigint IS NULL THEN now() END)
           RETURNING id""",
        lead_id,
        channel_id,
        peer,
        operator_id,
    )
    await append(
        conn,
        [
            NewEvent(
                "dialog.created",
                lead_id=lead_id,
                dialog_id=dialog_id,
                operator_id=operator_id,
                data={"channel_id": channel_id, "via": "outbound"},
            )
        ],
    )
    return dialog_id
