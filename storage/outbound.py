"""Outbound interactions as a durable delivery queue.

A reply is stored before anything is sent. A sender claims it with a short lease
(`next_attempt_at` moved into the future), so a node that dies mid-send lets another retry
after the lease; and a message is only claimed when no older message of its dialog is still
pending, so a customer never receives replies out of order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.domain import Attachment, ChannelId, DialogId, InteractionId
from storage import events
from storage.database import Conn
from storage.events import NewEvent
from storage.ingest import attachment_json


@dataclass(frozen=True, slots=True)
class Claimed:
    interaction_id: InteractionId
    dialog_id: DialogId
    channel_id: ChannelId
    peer: str | None
    text: str | None
    attempts: int
    files: tuple[Attachment, ...]
    author: str | None = None


async def insert(
    conn: Conn,
    *,
    dialog_id: int,
    lead_id: int,
    channel_id: int,
    kind: str,
    text: str | None,
    author: str,
    state: str | None,
    error: str | None,
    external_id: str,
    attachments: Sequence[Attachment] = (),
    peer: str | None = None,
    operator_id: int | None = None,
) -> InteractionId:
    """A reply; `peer` when it goes to another address than the dialog's (a form's lead
    answered by email). An internal note (kind `note`) has no delivery state: never sent.
    `operator_id` names the human who wrote it: its event carries them, which is how the
    reports tell an operator's answer from an auto-reply or a CRM's message."""
    interaction_id: int = await conn.fetchval(
        """INSERT INTO interactions (lead_id, dialog_id, channel_id, kind, direction, text,
                                     occurred_at, external_id, author, delivery_state,
                                     delivery_error, next_attempt_at, extra)
           VALUES ($1, $2, $3, $4, 'out', $5, now(), $6, $7, $8, $9,
                   CASE WHEN $8 = 'pending' THEN now() + interval '30 seconds' END,
                   CASE WHEN $10::text IS NULL THEN '{}'::jsonb
                        ELSE jsonb_build_object('peer', $10::text) END)
           RETURNING id""",
        lead_id,
        dialog_id,
        channel_id,
        kind,
        text,
        external_id,
        author,
        state,
        error,
        peer,
    )
    if attachments:
        await conn.execute(
            """INSERT INTO attachments (interaction_id, name, content_type, size, storage_path,
                                        sha256, state)
               SELECT $1, a.name, a.content_type, a.size, a.storage_path, a.sha256, 'stored'
               FROM jsonb_to_recordset($2::jsonb) AS a(name text, content_type text, size bigint,
                                                       storage_path text, sha256 text)""",
            interaction_id,
            [attachment_json(a) for a in attachments],
        )
    await conn.execute("UPDATE dialogs SET updated_at = now() WHERE id = $1", dialog_id)
    await events.append(
        conn,
        [
            NewEvent(
                "interaction.created",
                lead_id=lead_id,
                dialog_id=dialog_id,
                interaction_id=interaction_id,
                operator_id=operator_id,
                data={
                    "channel_id": channel_id,
                    "kind": kind,
                    "direction": "out",
                    "author": author,
                    "delivery_state": state,
                },
            )
        ],
    )
    return InteractionId(interaction_id)


async def claim(
    conn: Conn, lease_seconds: float, interaction_id: int | None = None
) -> Claimed | None:
    """Lease one due message, or the given one if it is first in its dialog.

    A new reply is inserted reserved for 30 seconds for the first attempt its sender makes
    inline (the dispatcher would otherwise race it); if that sender dies, the dispatcher
    takes it when the reservation ends.
    """
    row = await conn.fetchrow(
        """
        WITH next AS (
            SELECT i.id FROM interactions i
            WHERE i.delivery_state = 'pending'
              AND (CASE WHEN $2::bigint IS NULL THEN i.next_attempt_at <= now() ELSE i.id = $2 END)
              AND NOT EXISTS (SELECT 1 FROM interactions e
                              WHERE e.dialog_id = i.dialog_id AND e.delivery_state = 'pending'
                                AND e.direction = 'out' AND e.id < i.id)
            ORDER BY i.next_attempt_at, i.id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE interactions i SET attempts = i.attempts + 1,
               next_attempt_at = now() + make_interval(secs => $1)
        FROM next, dialogs d
        WHERE i.id = next.id AND d.id = i.dialog_id
        RETURNING i.id, i.dialog_id, i.channel_id, COALESCE(i.extra->>'peer', d.peer) AS peer,
          i.text, i.attempts, i.author,
          COALESCE((SELECT jsonb_agg(jsonb_build_object('name', a.name, 'content_type',
                    a.content_type, 'size', a.size, 'storage_path', a.storage_path) ORDER BY a.id)
                    FROM attachments a WHERE a.interaction_id = i.id), '[]') AS files
        """,
        lease_seconds,
        interaction_id,
    )
    if row is None:
        return None
    return Claimed(
        interaction_id=InteractionId(row["id"]),
        dialog_id=DialogId(row["dialog_id"]),
        channel_id=ChannelId(row["channel_id"]),
        peer=row["peer"],
        text=row["text"],
        attempts=row["attempts"],
        files=tuple(Attachment(**f) for f in row["files"]),
        author=row["author"],
    )


async def record(
    conn: Conn,
    interaction_id: int,
    *,
    state: str,
    provider_message_id: str | None = None,
    error: str | None = None,
    retry_in: float | None = None,
) -> None:
    """The outcome of one attempt: final state, or pending again after `retry_in` seconds."""
    await conn.execute(
        """UPDATE interactions SET delivery_state = $2,
                  provider_message_id = COALESCE($3, provider_message_id),
                  delivery_error = $4,
                  next_attempt_at = CASE WHEN $2 = 'pending'
                                         THEN now() + make_interval(secs => $5) END
           WHERE id = $1""",
        interaction_id,
        state,
        provider_message_id,
        error,
        retry_in or 0.0,
    )


async def release(conn: Conn, interaction_id: int) -> None:
    """Hand a reserved reply to the dispatcher now (an older one of its dialog is pending)."""
    await conn.execute(
        "UPDATE interactions SET next_attempt_at = now()"
        " WHERE id = $1 AND delivery_state = 'pending' AND next_attempt_at > now()",
        interaction_id,
    )


async def next_due_in(conn: Conn) -> float | None:
    """Seconds until the earliest pending message is due (0 if overdue), None if none.

    The clamp to zero is done here: in SQL, `GREATEST(0, NULL)` is 0, which made an empty
    queue look overdue and kept the dispatcher from ever sleeping."""
    value = await conn.fetchval(
        "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8"
        " FROM interactions WHERE delivery_state = 'pending'"
    )
    return max(0.0, float(value)) if value is not None else None
