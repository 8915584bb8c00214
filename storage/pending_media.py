"""Media recorded with an event and fetched from the provider afterwards."""

from __future__ import annotations

from dataclasses import dataclass

from hub.domain import AttachmentId, ChannelId
from storage.database import Conn


@dataclass(frozen=True, slots=True)
class PendingFile:
    attachment_id: AttachmentId
    channel_id: ChannelId
    remote_ref: str
    name: str
    content_type: str
    attempts: int
    interaction_id: int = 0


async def claim(conn: Conn, lease_seconds: float) -> PendingFile | None:
    row = await conn.fetchrow(
        """
        WITH next AS (
            SELECT a.id FROM attachments a
            WHERE a.state = 'pending' AND a.next_attempt_at <= now()
            ORDER BY a.next_attempt_at, a.id LIMIT 1 FOR UPDATE SKIP LOCKED
        )
        UPDATE attachments a SET attempts = a.attempts + 1,
               next_attempt_at = now() + make_interval(secs => $1)
        FROM next, interactions i
        WHERE a.id = next.id AND i.id = a.interaction_id
        RETURNING a.id, i.channel_id, a.remote_ref, a.name, a.content_type, a.attempts,
                  a.interaction_id
        """,
        lease_seconds,
    )
    if row is None:
        return None
    return PendingFile(
        AttachmentId(row["id"]),
        ChannelId(row["channel_id"]),
        row["remote_ref"],
        row["name"],
        row["content_type"],
        row["attempts"],
        row["interaction_id"],
    )


async def stored(
    conn: Conn, attachment_id: int, *, storage_path: str, size: int, sha256: str, content_type: str
) -> None:
    await conn.execute(
        """UPDATE attachments SET state = 'stored', storage_path = $2, size = $3, sha256 = $4,
                  content_type = $5, next_attempt_at = NULL, note = NULL WHERE id = $1""",
        attachment_id,
        storage_path,
        size,
        sha256,
        content_type,
    )


async def give_up(conn: Conn, attachment_id: int, state: str, note: str) -> None:
    await conn.execute(
        "UPDATE attachments SET state = $2, note = $3, next_attempt_at = NULL WHERE id = $1",
        attachment_id,
        state,
        note,
    )


async def retry_later(conn: Conn, attachment_id: int, seconds: float, note: str) -> None:
    await conn.execute(
        "UPDATE attachments SET note = $3, next_attempt_at = now() + make_interval(secs => $2)"
        " WHERE id = $1",
        attachment_id,
        seconds,
        note,
    )


async def next_due_in(conn: Conn) -> float | None:
    """Seconds until the earliest pending file is due (0 if overdue), None if none."""
    value = await conn.fetchval(
        "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8"
        " FROM attachments WHERE state = 'pending'"
    )
    return max(0.0, float(value)) if value is not None else None
