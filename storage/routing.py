"""The routing state of dialogs in SQL.

Every change of who holds a dialog is one conditional UPDATE on the dialog row, taken with
row locks, so two hub nodes routing at once can never give one dialog to two operators:
the router that locks the row (`FOR UPDATE SKIP LOCKED`) decides, the other moves on, and
an `accept` only wins while the offer still names the operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import asyncpg

from storage.database import Conn
from storage.operators import FRESH, FRESH_S


class Candidate(NamedTuple):
    """An operator who could take a dialog now, with their load. (A tuple: the router
    builds one per online operator for every dialog it offers.)"""

    operator_id: int
    load: int
    max_dialogs: int

    @property
    def has_room(self) -> bool:
        return self.load < self.max_dialogs


# A hand-over's note for the receiver and the operator who wrote it (None: none given).
Handover = tuple[str | None, int | None] | None

# An operator counts as online only while a hub node keeps refreshing their presence.
ONLINE = f"p.status = 'online' AND {FRESH}"


async def queued(conn: Conn, dialog_id: int) -> asyncpg.Record | None:
    """The dialog if it waits to be offered (read without a lock: `offer` takes it)."""
    return await conn.fetchrow(
        """SELECT d.*, c.name AS channel_name FROM dialogs d JOIN channels c ON c.id = d.channel_id
           WHERE d.id = $1 AND d.status = 'queued' AND d.routable""",
        dialog_id,
    )


async def waiting(conn: Conn | asyncpg.Pool, limit: int = 200) -> list[tuple[int, int | None, str]]:
    """(dialog id, queue id, channel name) of waiting dialogs, oldest first."""
    rows = await conn.fetch(
        """SELECT d.id, d.queue_id, c.name FROM dialogs d JOIN channels c ON c.id = d.channel_id
           WHERE d.status = 'queued' AND d.routable ORDER BY d.queued_at, d.id LIMIT $1""",
        limit,
    )
    return [(r["id"], r["queue_id"], r["name"]) for r in rows]


async def online_count(conn: Conn | asyncpg.Pool) -> int:
    value = await conn.fetchval(f"SELECT count(*) FROM operator_presence p WHERE {ONLINE}")
    return int(value)


# Every operator's load in one pass over what is held now (partial indexes keep it to the
# open dialogs): counted per candidate instead, the offers were scanned once per operator.
_HELD = """
    SELECT operator_id, count(*) AS load FROM (
        SELECT d.operator_id FROM dialogs d WHERE d.status = 'assigned'
        UNION ALL
        SELECT d.offered_to[1] FROM dialogs d
         WHERE d.status = 'offered' AND cardinality(d.offered_to) = 1
    ) held GROUP BY operator_id"""


async def candidates(conn: Conn, skills: Sequence[str], excluded: Sequence[int]) -> list[Candidate]:
    """Online operators having every skill, with their current load (assigned dialogs plus
    offers made to them alone)."""
    # Three arrays in one row rather than a row per operator: decoded at once.
    row = await conn.fetchrow(
        f"""
        SELECT COALESCE(array_agg(o.id ORDER BY o.id), '{{}}') AS ids,
               COALESCE(array_agg(COALESCE(held.load, 0) ORDER BY o.id), '{{}}') AS loads,
               COALESCE(array_agg(o.max_dialogs ORDER BY o.id), '{{}}') AS maxes
        FROM operators o JOIN operator_presence p ON p.operator_id = o.id
        LEFT JOIN ({_HELD}) held ON held.operator_id = o.id
        WHERE {ONLINE} AND o.skills @> $1::text[] AND NOT o.id = ANY($2::bigint[])
        """,
        list(skills),
        list(excluded),
    )
    assert row is not None
    return list(map(Candidate, row["ids"], row["loads"], row["maxes"]))


async def load_of(conn: Conn, operator_id: int) -> tuple[int, int, str]:
    """(load, max_dialogs, presence) of one operator, read under their routing lock."""
    row = await conn.fetchrow(
        f"""
        SELECT o.max_dialogs, hub_operator_load(o.id) AS load,
               COALESCE((SELECT CASE WHEN {ONLINE} THEN p.status ELSE 'offline' END
                         FROM operator_presence p WHERE p.operator_id = o.id), 'offline') AS presence
        FROM operators o WHERE o.id = $1
        """,
        operator_id,
    )
    if row is None:
        return 0, 0, "offline"
    return int(row["load"]), row["max_dialogs"], row["presence"]


async def previous_operator(conn: Conn, lead_id: int) -> int | None:
    value = await conn.fetchval(
        """SELECT last_operator_id FROM dialogs WHERE lead_id = $1 AND last_operator_id IS NOT NULL
           ORDER BY COALESCE(assigned_at, created_at) DESC LIMIT 1""",
        lead_id,
    )
    return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Offered:
    """What `offer` did: 'offered' (to `chosen`), 'nobody' (no one could take it now) or
    'gone' (it no longer waits, or another router holds it)."""

    result: str
    chosen: list[int]
    contended: bool  # someone was skipped for another router's lock: worth a retry soon


async def offer(
    conn: Conn,
    dialog_id: int,
    ranked: Sequence[int],
    *,
    to_all: bool,
    timeout_s: int,
    queue_id: int | None,
    round_robin: bool,
    lock_base: int,
) -> Offered:
    """Offer a waiting dialog to the first of `ranked` who can take it now, or to all of
    them, in one statement (hub_offer, storage/functions/50_routing.sql)."""
    row = await conn.fetchrow(
        "SELECT o_result, o_chosen, o_contended FROM hub_offer($1, $2, $3, $4, $5, $6, $7, $8)",
        dialog_id,
        list(ranked),
        to_all,
        float(timeout_s),
        queue_id,
        round_robin,
        lock_base,
        float(FRESH_S),
    )
    assert row is not None
    return Offered(row["o_result"], list(row["o_chosen"]), row["o_contended"])


async def reset_declines(conn: Conn, dialog_id: int) -> None:
    await conn.execute("UPDATE dialogs SET declined_by = '{}' WHERE id = $1", dialog_id)


async def mark_auto_replied(conn: Conn, dialog_id: int) -> bool:
    """True for the first caller only: a customer gets a queue's auto-reply once."""
    value = await conn.fetchval(
        "UPDATE dialogs SET auto_replied_at = now() WHERE id = $1 AND auto_replied_at IS NULL"
        " RETURNING id",
        dialog_id,
    )
    return value is not None


async def accept(
    conn: Conn | asyncpg.Pool, dialog_id: int, operator_id: int, lock: int, actor: str
) -> tuple[str, list[int]]:
    """The operator takes the dialog if the offer still names them and it leaves them
    within their max_dialogs, in one statement (storage/functions/50_routing.sql): the
    outcome ('accepted', 'offer_gone' or 'at_capacity') and whom it was offered to."""
    row = await conn.fetchrow(
        "SELECT o_result, o_offered FROM hub_accept($1, $2, $3, $4)",
        dialog_id,
        operator_id,
        lock,
        actor,
    )
    assert row is not None
    return row["o_result"], list(row["o_offered"] or ())


async def decline(conn: Conn, dialog_id: int, operator_id: int) -> asyncpg.Record | None:
    """Take the operator off the offer; when nobody is left on it the dialog waits again."""
    return await conn.fetchrow(
        """UPDATE dialogs SET offered_to = array_remove(offered_to, $2),
                  declined_by = array_append(declined_by, $2),
                  status = CASE WHEN cardinality(array_remove(offered_to, $2)) = 0
                                THEN 'queued' ELSE status END,
                  offer_expires_at = CASE WHEN cardinality(array_remove(offered_to, $2)) = 0
                                          THEN NULL ELSE offer_expires_at END,
                  updated_at = now()
           WHERE id = $1 AND status = 'offered' AND $2 = ANY(offered_to)
           RETURNING id, status""",
        dialog_id,
        operator_id,
    )


async def expire_offers(conn: Conn, limit: int = 100) -> list[asyncpg.Record]:
    """Offers past their time: back to waiting, and not offered to the same people first."""
    return await conn.fetch(
        """
        WITH due AS (
            SELECT id, offered_to FROM dialogs
            WHERE status = 'offered' AND offer_expires_at <= now()
            ORDER BY offer_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
        )
        UPDATE dialogs d SET status = 'queued', declined_by = d.declined_by || due.offered_to,
               offered_to = '{}', offer_expires_at = NULL, updated_at = now()
        FROM due WHERE d.id = due.id
        RETURNING d.id, due.offered_to AS was_offered_to
        """,
        limit,
    )


async def withdraw_offers_of(conn: Conn, operator_id: int) -> list[asyncpg.Record]:
    """An operator who leaves loses their pending offers to the next people."""
    return await conn.fetch(
        """UPDATE dialogs SET offered_to = array_remove(offered_to, $1),
                  status = CASE WHEN cardinality(array_remove(offered_to, $1)) = 0
                                THEN 'queued' ELSE status END,
                  offer_expires_at = CASE WHEN cardinality(array_remove(offered_to, $1)) = 0
                                          THEN NULL ELSE offer_expires_at END,
                  updated_at = now()
           WHERE status = 'offered' AND $1 = ANY(offered_to)
           RETURNING id, status""",
        operator_id,
    )


async def close(conn: Conn, dialog_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """UPDATE dialogs d SET status = 'closed', closed_at = now(), updated_at = now(),
                  offered_to = '{}', offer_expires_at = NULL,
                  handover_comment = NULL, handover_by = NULL
           FROM (SELECT id, operator_id, offered_to FROM dialogs WHERE id = $1 FOR UPDATE) old
           WHERE d.id = old.id AND d.status <> 'closed'
           RETURNING d.id, old.operator_id, old.offered_to""",
        dialog_id,
    )


async def assign_directly(
    conn: Conn, dialog_id: int, operator_id: int, handover: Handover = None
) -> asyncpg.Record | None:
    """A transfer to a named operator: theirs at once, from whoever held it."""
    comment, by = handover or (None, None)
    return await conn.fetchrow(
        """UPDATE dialogs d SET status = 'assigned', operator_id = $2, assigned_at = now(),
                  last_operator_id = $2, offered_to = '{}', offer_expires_at = NULL,
                  transferred_from = NULL, handover_comment = $3, handover_by = $4,
                  updated_at = now()
           FROM (SELECT id, operator_id, offered_to FROM dialogs WHERE id = $1 FOR UPDATE) old
           WHERE d.id = old.id AND d.status <> 'closed'
           RETURNING d.id, old.operator_id AS previous, old.offered_to""",
        dialog_id,
        operator_id,
        comment,
        by,
    )


async def requeue(
    conn: Conn, dialog_id: int, queue_id: int | None, handover: Handover = None
) -> asyncpg.Record | None:
    """A transfer to a queue: waiting again, offered afresh by that queue's rules."""
    comment, by = handover or (None, None)
    return await conn.fetchrow(
        """UPDATE dialogs d SET status = 'queued', operator_id = NULL, queue_id = $2,
                  queued_at = now(), offered_to = '{}', declined_by = '{}', routable = true,
                  transferred_from = old.operator_id, handover_comment = $3, handover_by = $4,
                  offer_expires_at = NULL, assigned_at = NULL, updated_at = now()
           FROM (SELECT id, operator_id, offered_to FROM dialogs WHERE id = $1 FOR UPDATE) old
           WHERE d.id = old.id AND d.status <> 'closed'
           RETURNING d.id, old.operator_id AS previous, old.offered_to""",
        dialog_id,
        queue_id,
        comment,
        by,
    )


async def open_dialogs_of(conn: Conn | asyncpg.Pool, operator_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM dialogs WHERE operator_id = $1 AND status = 'assigned' ORDER BY id",
        operator_id,
    )
    return [r["id"] for r in rows]


async def offers_to(conn: Conn | asyncpg.Pool, operator_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, GREATEST(0, EXTRACT(EPOCH FROM offer_expires_at - now()))::float8 AS expires_in
           FROM dialogs WHERE status = 'offered' AND $1 = ANY(offered_to) ORDER BY id""",
        operator_id,
    )


async def next_offer_expiry(conn: Conn) -> float | None:
    """Seconds until the earliest pending offer expires (0 if overdue), None if none."""
    value = await conn.fetchval(
        "SELECT EXTRACT(EPOCH FROM min(offer_expires_at) - now())::float8"
        " FROM dialogs WHERE status = 'offered'"
    )
    return max(0.0, float(value)) if value is not None else None


async def release_held(conn: Conn, operator_id: int) -> list[int]:
    """An operator disabled: the dialogs they held wait in their queues again, first in line
    (queued when they first were), and are not offered back to them."""
    rows = await conn.fetch(
        """UPDATE dialogs SET status = 'queued', operator_id = NULL, offered_to = '{}',
                  offer_expires_at = NULL, assigned_at = NULL, transferred_from = $1,
                  queued_at = queued_at - interval '1 microsecond', updated_at = now()
           WHERE operator_id = $1 AND status = 'assigned' RETURNING id""",
        operator_id,
    )
    return [r["id"] for r in rows]
