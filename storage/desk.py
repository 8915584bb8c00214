"""What the supervisors' desk reads: the open dialogs and their queues, and what was missed
since the start of the day."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.database import Conn

# A dialog the desk shows: waiting in the hub's queues, offered, or held. A ringing call's
# dialog waits outside them (the PBX routes it) until the call ends.
OPEN_DIALOG = "d.status <> 'closed' AND (d.routable OR d.status = 'assigned')"


async def open_groups(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    """Open dialogs counted by their queue and channel: how many wait (queued or offered)
    and since when the oldest does, and how many are held."""
    return await conn.fetch(
        f"""SELECT d.queue_id, c.name AS channel,
                  count(*) FILTER (WHERE d.status <> 'assigned') AS waiting,
                  count(*) FILTER (WHERE d.status = 'assigned') AS held,
                  min(d.queued_at) FILTER (WHERE d.status <> 'assigned') AS oldest,
                  now() AS at
           FROM dialogs d JOIN channels c ON c.id = d.channel_id
           WHERE {OPEN_DIALOG}
           GROUP BY 1, 2"""
    )


async def open_dialogs(conn: Conn | asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    """The open dialogs, those not yet held first, each kind oldest first, at most `limit`;
    each with its queue, channel name, when it was queued, whom it is offered to, and how
    many there are in all."""
    return await conn.fetch(
        f"""SELECT d.id, d.queue_id, c.name AS channel, d.queued_at, d.offered_to,
                   count(*) OVER () AS total
            FROM dialogs d JOIN channels c ON c.id = d.channel_id
            WHERE {OPEN_DIALOG}
            ORDER BY d.status = 'assigned', d.queued_at, d.id
            LIMIT $1""",
        limit,
    )


async def missed_since_midnight(conn: Conn | asyncpg.Pool, zones: Sequence[str]) -> dict[str, int]:
    """For each time zone, what was missed since its last midnight: inbound calls nobody
    answered, and dialogs of written messages closed without a human answer (a missed call's
    own dialog is its callback task, counted as the call)."""
    rows = await conn.fetch(
        """SELECT m.zone,
                  (SELECT count(*) FROM calls c
                   WHERE c.direction = 'in' AND c.status = 'missed'
                     AND c.created_at >= m.start)
                + (SELECT count(*) FROM dialogs d
                   WHERE d.status = 'closed' AND d.first_response_at IS NULL
                     AND d.closed_at >= m.start
                     AND EXISTS (SELECT 1 FROM interactions i
                                 WHERE i.dialog_id = d.id AND i.direction = 'in'
                                   AND i.call IS NULL)) AS missed
           FROM (SELECT zone, date_trunc('day', now() AT TIME ZONE zone) AT TIME ZONE zone AS start
                 FROM unnest($1::text[]) AS zone) m""",
        list(zones),
    )
    return {r["zone"]: int(r["missed"]) for r in rows}
