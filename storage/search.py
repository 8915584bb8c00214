"""Search over leads (name, phone, email) and message text, for the console's search box
and CRMs: what the query looks like decides where it is looked for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from storage.database import Conn

# Found through the index when fewer messages than this match; more, and the newest rows
# are read until enough match (a common word is in many of them).
RARE = 5000

# What an operator may see: leads with a dialog they hold or are offered (hub/api/access.py).
_VISIBLE = """($2::bigint IS NULL OR EXISTS (
    SELECT 1 FROM dialogs v WHERE v.lead_id = {lead}
      AND (v.operator_id = $2 OR $2 = ANY(v.offered_to))))"""

WORDS = re.compile(r"\w+", re.UNICODE)


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere (its own % and _ taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def prefix_query(text: str) -> str | None:
    """A tsquery for `text`: every word, the last also as the beginning of a longer one
    (it may still be being typed; a prefix of every word would make the index read every
    word beginning so, for each)."""
    words = [w.replace("'", "''") for w in WORDS.findall(text.lower())[:8]]
    if not words:
        return None
    return " & ".join([*(f"'{w}'" for w in words[:-1]), f"'{words[-1]}':*"])


async def lead_ids_by_name(conn: Conn, text: str, visible_to: int | None, limit: int) -> list[int]:
    rows = await conn.fetch(
        f"""SELECT l.id FROM leads l
            WHERE lower(l.name) LIKE $1 AND l.merged_into IS NULL
              AND {_VISIBLE.format(lead="l.id")}
            ORDER BY l.id DESC LIMIT $3""",
        _like(text.lower()),
        visible_to,
        limit,
    )
    return [r["id"] for r in rows]


async def lead_ids_by_phone(
    conn: Conn, e164: str | None, digits: str, visible_to: int | None, limit: int
) -> list[int]:
    """The number itself first, then numbers containing the digits."""
    rows = await conn.fetch(
        f"""SELECT p.lead_id AS id, bool_or(p.phone = $4) AS exact
            FROM lead_phones p JOIN leads l ON l.id = p.lead_id AND l.merged_into IS NULL
            WHERE (p.phone = $4 OR p.phone LIKE $1)
              AND {_VISIBLE.format(lead="p.lead_id")}
            GROUP BY p.lead_id
            ORDER BY exact DESC, p.lead_id DESC LIMIT $3""",
        _like(digits),
        visible_to,
        limit,
        e164,
    )
    return [r["id"] for r in rows]


async def lead_ids_by_email(conn: Conn, text: str, visible_to: int | None, limit: int) -> list[int]:
    rows = await conn.fetch(
        f"""SELECT e.lead_id AS id, bool_or(e.email = $4) AS exact
            FROM lead_emails e JOIN leads l ON l.id = e.lead_id AND l.merged_into IS NULL
            WHERE e.email LIKE $1 AND {_VISIBLE.format(lead="e.lead_id")}
            GROUP BY e.lead_id
            ORDER BY exact DESC, e.lead_id DESC LIMIT $3""",
        _like(text.lower()),
        visible_to,
        limit,
        text.lower(),
    )
    return [r["id"] for r in rows]


@dataclass(frozen=True, slots=True)
class Found:
    """A message whose words match, newest first."""

    id: int
    lead_id: int
    lead_name: str | None
    dialog_id: int
    channel: str
    kind: str
    direction: str
    subject: str | None
    text: str | None
    occurred_at: datetime


_DETAILS = """SELECT i.id, COALESCE(l.merged_into, l.id) AS lead_id, l.name AS lead_name,
                     i.dialog_id, c.name AS channel, i.kind, i.direction, i.subject,
                     left(i.text, 2000) AS text, i.occurred_at
              FROM interactions i
              JOIN leads l ON l.id = i.lead_id
              JOIN channels c ON c.id = i.channel_id"""


async def _estimate(conn: Conn, query: str) -> float:
    """How many messages the planner expects to match (from the words' statistics)."""
    plan = await conn.fetchval(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM interactions WHERE search @@ to_tsquery('simple', $1)",
        query,
    )
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return float(parsed[0]["Plan"]["Plan Rows"])


async def messages(conn: Conn, text: str, visible_to: int | None, limit: int) -> list[Found]:
    """The newest messages whose words match. A rare query (as the words' statistics say,
    and as it turns out) is answered from the index: its matches, at most `RARE`, then
    sorted. A common one by reading rows newest first and testing the stored words of each.
    Either way an operator gets their own leads' only."""
    query = prefix_query(text)
    if query is None:
        return []
    async with conn.transaction():
        matches: list[int] | None = None
        if await _estimate(conn, query) < RARE:
            # Only the index: reading rows in order would test each of them.
            await conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
            found = await conn.fetch(
                "SELECT id FROM interactions WHERE search @@ to_tsquery('simple', $1) LIMIT $2",
                query,
                RARE,
            )
            if len(found) < RARE:
                matches = [r["id"] for r in found]
            await conn.execute("RESET enable_seqscan; RESET enable_indexscan")
        if matches is None:
            # Common: newest rows first, each tested (cheap: its words are stored).
            await conn.execute("SET LOCAL enable_seqscan = off")
            if visible_to is None:
                await conn.execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        rows = await conn.fetch(
            f"""{_DETAILS}
                WHERE {
                "i.search @@ to_tsquery('simple', $1)"
                if matches is None
                else "i.id = ANY($1::bigint[])"
            }
                  AND {_VISIBLE.format(lead="i.lead_id")}
                ORDER BY i.id DESC LIMIT $3""",
            query if matches is None else matches,
            visible_to,
            limit,
        )
    return [Found(**dict(r)) for r in rows]
