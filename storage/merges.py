"""Merging duplicate leads, and undoing a merge.

A merge moves everything of the merged lead B onto the survivor A and records exactly
what it moved and what it added to A, so that `unmerge` restores B with what was B's and
takes from A only what the merge gave it. Interactions travel with their dialogs (every
interaction belongs to one), so moving dialogs back moves their interactions back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hub.domain import LeadId
from hub.errors import HubError
from storage import events
from storage.database import Conn
from storage.events import NewEvent


class MergeError(HubError):
    """A merge or unmerge that cannot be done as asked; `code` says why."""


def _earlier(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether the first touch `a` came before `b` (a source without a time never does)."""
    if not a or not a.get("at"):
        return False
    if not b or not b.get("at"):
        return True
    return datetime.fromisoformat(str(a["at"])) < datetime.fromisoformat(str(b["at"]))


async def _lock_pair(conn: Conn, a: int, b: int) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT id, name, merged_into, phone_suggestions, source FROM leads"
        " WHERE id = ANY($1::bigint[]) ORDER BY id"
        " FOR UPDATE",
        [a, b],
    )
    return {r["id"]: r for r in rows}


async def merge(conn: Conn, survivor: LeadId, merged: LeadId, actor: str) -> dict[str, Any]:
    """Merge `merged` into `survivor` inside the caller's transaction."""
    if survivor == merged:
        raise MergeError("same_lead", "a lead cannot be merged into itself")
    rows = await _lock_pair(conn, survivor, merged)
    if survivor not in rows or merged not in rows:
        raise MergeError("not_found", "lead not found")
    if rows[survivor]["merged_into"] is not None:
        raise MergeError("already_merged", f"lead {survivor} was merged into another lead")
    if rows[merged]["merged_into"] is not None:
        raise MergeError("already_merged", f"lead {merged} was already merged")

    phones = await conn.fetch(
        "DELETE FROM lead_phones WHERE lead_id = $1 RETURNING phone, extension", merged
    )
    phones_added = await conn.fetch(
        """INSERT INTO lead_phones (lead_id, phone, extension)
           SELECT $1, p.phone, NULLIF(p.ext, '') FROM unnest($2::text[], $3::text[]) AS p(phone, ext)
           ON CONFLICT DO NOTHING RETURNING phone""",
        survivor,
        [r["phone"] for r in phones],
        [r["extension"] or "" for r in phones],
    )
    emails = await conn.fetch("DELETE FROM lead_emails WHERE lead_id = $1 RETURNING email", merged)
    emails_added = await conn.fetch(
        "INSERT INTO lead_emails (lead_id, email) SELECT $1, e FROM unnest($2::text[]) e"
        " ON CONFLICT DO NOTHING RETURNING email",
        survivor,
        [r["email"] for r in emails],
    )
    identities = await conn.fetch(
        "UPDATE lead_identities SET lead_id = $1 WHERE lead_id = $2 RETURNING kind, external_id",
        survivor,
        merged,
    )
    # Where both leads have an open dialog on one channel (and thread), the survivor's stays
    # open and the merged lead's is closed, since one lead has one open dialog per channel
    # and thread.
    closed = await conn.fetch(
        """UPDATE dialogs d SET status = 'closed', closed_at = now(), updated_at = now()
           WHERE d.lead_id = $2 AND d.status <> 'closed' AND EXISTS (
               SELECT 1 FROM dialogs s WHERE s.lead_id = $1 AND s.channel_id = d.channel_id
               AND s.thread_key = d.thread_key AND s.status <> 'closed')
           RETURNING d.id, d.status""",
        survivor,
        merged,
    )
    moved_dialogs = await conn.fetch(
        "UPDATE dialogs SET lead_id = $1, updated_at = now() WHERE lead_id = $2 RETURNING id",
        survivor,
        merged,
    )
    await conn.execute("UPDATE interactions SET lead_id = $1 WHERE lead_id = $2", survivor, merged)
    name_taken = rows[survivor]["name"] is None and rows[merged]["name"] is not None
    suggestion = (
        rows[merged]["name"]
        if not name_taken
        and rows[merged]["name"]
        and rows[merged]["name"].lower() != (rows[survivor]["name"] or "").lower()
        else None
    )
    await conn.execute(
        """UPDATE leads SET
               name = CASE WHEN $2 THEN $3 ELSE name END,
               name_suggestions = CASE WHEN $4::text IS NOT NULL AND NOT $4 = ANY(name_suggestions)
                                  THEN array_append(name_suggestions, $4) ELSE name_suggestions END,
               updated_at = now()
           WHERE id = $1""",
        survivor,
        name_taken,
        rows[merged]["name"],
        suggestion,
    )
    # The merged lead's open phone suggestions are offered on the survivor (unless it has
    # the phone, offers it already or had it dismissed).
    suggestions_added = await conn.fetchval(
        """UPDATE leads s SET phone_suggestions = s.phone_suggestions || ARRAY(
               SELECT DISTINCT x FROM unnest(m.phone_suggestions) AS x
                WHERE NOT x = ANY(s.phone_suggestions)
                  AND NOT x = ANY(s.dismissed_phone_suggestions)
                  AND NOT EXISTS (SELECT 1 FROM lead_phones p WHERE p.lead_id = s.id
                                  AND p.phone = x))
             FROM leads m
            WHERE s.id = $1 AND m.id = $2
        RETURNING ARRAY(SELECT x FROM unnest(s.phone_suggestions) AS x
                         WHERE NOT x = ANY($3::text[]))""",
        survivor,
        merged,
        list(rows[survivor]["phone_suggestions"]),
    )
    await conn.execute(
        "UPDATE leads SET merged_into = $1, updated_at = now() WHERE id = $2", survivor, merged
    )
    # The merged lead's first touch came first: it is where the customer came from.
    source_replaced = _earlier(rows[merged]["source"], rows[survivor]["source"])
    if source_replaced:
        await conn.execute(
            "UPDATE leads SET source = $2 WHERE id = $1", survivor, rows[merged]["source"]
        )
    moved = {
        "phones": [[r["phone"], r["extension"]] for r in phones],
        "phones_added": [r["phone"] for r in phones_added],
        "emails": [r["email"] for r in emails],
        "emails_added": [r["email"] for r in emails_added],
        "identities": [[r["kind"], r["external_id"]] for r in identities],
        "dialogs": [r["id"] for r in moved_dialogs],
        "dialogs_closed": [r["id"] for r in closed],
        "name_taken": name_taken,
        "suggestion_added": suggestion,
        "phone_suggestions_added": list(suggestions_added or ()),
        # The survivor's own source, when the merged lead's replaced it (undone by unmerge).
        "source_replaced": rows[survivor]["source"] if source_replaced else None,
    }
    merge_id = await conn.fetchval(
        "INSERT INTO lead_merges (survivor_id, merged_id, moved, merged_by) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        survivor,
        merged,
        moved,
        actor,
    )
    await events.append(
        conn,
        [
            NewEvent(
                "lead.merged",
                lead_id=survivor,
                data={"merged_id": merged, "merge_id": merge_id},
            )
        ],
    )
    return {"merge_id": merge_id, **moved}


async def unmerge(conn: Conn, survivor: LeadId, merged: LeadId) -> dict[str, Any]:
    """Undo the active merge of `merged` into `survivor` inside the caller's transaction."""
    rows = await _lock_pair(conn, survivor, merged)
    if survivor not in rows or merged not in rows:
        raise MergeError("not_found", "lead not found")
    record = await conn.fetchrow(
        "SELECT id, moved FROM lead_merges WHERE survivor_id = $1 AND merged_id = $2"
        " AND undone_at IS NULL ORDER BY id DESC LIMIT 1 FOR UPDATE",
        survivor,
        merged,
    )
    if record is None or rows[merged]["merged_into"] != survivor:
        raise MergeError("not_merged", f"lead {merged} is not merged into lead {survivor}")
    if rows[survivor]["merged_into"] is not None:
        raise MergeError(
            "survivor_merged",
            f"lead {survivor} was itself merged into lead {rows[survivor]['merged_into']} since;"
            " undo that merge first",
        )
    moved: dict[str, Any] = record["moved"]
    await conn.execute(
        "DELETE FROM lead_phones WHERE lead_id = $1 AND phone = ANY($2::text[])",
        survivor,
        moved["phones_added"],
    )
    await conn.execute(
        """INSERT INTO lead_phones (lead_id, phone, extension)
           SELECT $1, p.phone, NULLIF(p.ext, '') FROM unnest($2::text[], $3::text[]) AS p(phone, ext)
           ON CONFLICT DO NOTHING""",
        merged,
        [p for p, _ in moved["phones"]],
        [e or "" for _, e in moved["phones"]],
    )
    await conn.execute(
        "DELETE FROM lead_emails WHERE lead_id = $1 AND email = ANY($2::text[])",
        survivor,
        moved["emails_added"],
    )
    await conn.execute(
        "INSERT INTO lead_emails (lead_id, email) SELECT $1, e FROM unnest($2::text[]) e"
        " ON CONFLICT DO NOTHING",
        merged,
        moved["emails"],
    )
    await conn.execute(
        """UPDATE lead_identities i SET lead_id = $2
           FROM unnest($3::text[], $4::text[]) AS m(kind, external_id)
           WHERE i.kind = m.kind AND i.external_id = m.external_id AND i.lead_id = $1""",
        survivor,
        merged,
        [k for k, _ in moved["identities"]],
        [x for _, x in moved["identities"]],
    )
    await conn.execute(
        "UPDATE dialogs SET lead_id = $2, updated_at = now()"
        " WHERE id = ANY($3::bigint[]) AND lead_id = $1",
        survivor,
        merged,
        moved["dialogs"],
    )
    await conn.execute(
        "UPDATE interactions SET lead_id = $1 WHERE dialog_id = ANY($2::bigint[])",
        merged,
        moved["dialogs"],
    )
    await conn.execute(
        """UPDATE leads SET
               name = CASE WHEN $2 AND lower(name) = lower($3) THEN NULL ELSE name END,
               name_suggestions = CASE WHEN $4::text IS NULL THEN name_suggestions
                                  ELSE array_remove(name_suggestions, $4) END,
               updated_at = now()
           WHERE id = $1""",
        survivor,
        bool(moved["name_taken"]),
        rows[merged]["name"],
        moved["suggestion_added"],
    )
    await conn.execute(
        "UPDATE leads SET phone_suggestions = ARRAY(SELECT x FROM unnest(phone_suggestions) AS x"
        " WHERE NOT x = ANY($2::text[])) WHERE id = $1",
        survivor,
        list(moved.get("phone_suggestions_added") or ()),
    )
    await conn.execute(
        "UPDATE leads SET merged_into = NULL, updated_at = now() WHERE id = $1", merged
    )
    if moved.get("source_replaced") is not None:
        await conn.execute(
            "UPDATE leads SET source = $2 WHERE id = $1", survivor, moved["source_replaced"]
        )
    await conn.execute("UPDATE lead_merges SET undone_at = now() WHERE id = $1", record["id"])
    await events.append(
        conn,
        [
            NewEvent(
                "lead.unmerged",
                lead_id=survivor,
                data={"restored_id": merged, "merge_id": record["id"]},
            )
        ],
    )
    return {"merge_id": record["id"]}
