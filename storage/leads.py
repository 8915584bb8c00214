"""Leads with their phones, emails and channel identities.

Contact details live in side tables keyed by their normal form (E.164, lower-cased email,
`(kind, external id)`), each indexed, so identification is an index lookup whatever
format the customer typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from hub.domain import Identity, Lead, LeadId, Phone
from storage import events
from storage.database import Conn, id_filter
from storage.events import NewEvent

_LEAD_COLUMNS = """
    l.id, l.name, l.name_suggestions, l.phone_suggestions, l.merged_into, l.created_at, l.updated_at,
    l.blocked, l.source,
    (SELECT c.name FROM channels c WHERE c.id = (l.source->>'channel_id')::bigint) AS source_channel,
    COALESCE((SELECT array_agg(p.phone || COALESCE('#' || p.extension, '')
                               ORDER BY p.created_at, p.phone)
              FROM lead_phones p WHERE p.lead_id = l.id), '{}') AS phones,
    COALESCE((SELECT array_agg(e.email ORDER BY e.created_at, e.email)
              FROM lead_emails e WHERE e.lead_id = l.id), '{}') AS emails,
    COALESCE((SELECT array_agg(i.kind || ':' || i.external_id ORDER BY i.created_at, i.kind)
              FROM lead_identities i WHERE i.lead_id = l.id), '{}') AS identities,
    COALESCE((SELECT jsonb_object_agg(x.system, x.external_id ORDER BY x.created_at)
              FROM lead_external_ids x WHERE x.lead_id = l.id), '{}') AS external_ids
"""


def phone_columns(phones: Sequence[Phone]) -> tuple[list[str], list[str]]:
    """Numbers and extensions as two parallel arrays, the shape the SQL functions take."""
    return [p.e164 for p in phones], [p.extension or "" for p in phones]


def _lead(row: asyncpg.Record) -> Lead:
    phones = []
    for value in row["phones"]:
        number, _, ext = value.partition("#")
        phones.append(Phone(number, ext or None))
    identities = []
    for value in row["identities"]:
        kind, _, external_id = value.partition(":")
        identities.append(Identity(kind, external_id))
    return Lead(
        id=LeadId(row["id"]),
        name=row["name"],
        phones=tuple(phones),
        emails=tuple(row["emails"]),
        identities=tuple(identities),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        merged_into=LeadId(row["merged_into"]) if row["merged_into"] is not None else None,
        name_suggestions=tuple(row["name_suggestions"]),
        # One that became a phone of the lead (a merge brought it) is no suggestion.
        phone_suggestions=tuple(
            s for s in row["phone_suggestions"] if all(p.e164 != s for p in phones)
        ),
        blocked=row["blocked"],
        external_ids=dict(row["external_ids"]),
        source=(
            {**row["source"], "channel": row["source_channel"]}
            if row["source"] is not None
            else None
        ),
    )


async def get(conn: Conn, lead_id: int) -> Lead | None:
    row = await conn.fetchrow(f"SELECT {_LEAD_COLUMNS} FROM leads l WHERE l.id = $1", lead_id)
    return _lead(row) if row else None


async def get_many(conn: Conn, ids: Sequence[int]) -> dict[LeadId, Lead]:
    which, arg = id_filter("l.id", ids)
    rows = await conn.fetch(f"SELECT {_LEAD_COLUMNS} FROM leads l WHERE {which}", arg)
    return {LeadId(r["id"]): _lead(r) for r in rows}


async def find_match(
    conn: Conn,
    identity: Identity | None,
    phones: Sequence[str],
    emails: Sequence[str],
) -> LeadId | None:
    """The lead these details identify (`hub_identify`: identity, then phone, then email)."""
    lead_id = await conn.fetchval(
        "SELECT hub_identify(p_identity_kind => $1, p_identity_id => $2,"
        " p_phones => $3::text[], p_emails => $4::text[])",
        identity.kind if identity else None,
        identity.external_id if identity else None,
        list(phones),
        list(emails),
    )
    return LeadId(lead_id) if lead_id is not None else None


async def by_external_id(conn: Conn, pairs: Sequence[tuple[str, str]]) -> LeadId | None:
    """The lead a CRM's ids name (the one it was merged into, if it was)."""
    lead_id = await conn.fetchval(
        """WITH RECURSIVE found AS (
               SELECT l.id, l.merged_into, 0 AS depth FROM lead_external_ids x
               JOIN leads l ON l.id = x.lead_id
               WHERE (x.system, x.external_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
               UNION ALL
               SELECT l.id, l.merged_into, f.depth + 1 FROM found f JOIN leads l ON l.id = f.merged_into
               WHERE f.depth < 20)
           SELECT id FROM found WHERE merged_into IS NULL ORDER BY depth LIMIT 1""",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return LeadId(lead_id) if lead_id is not None else None


async def add_external_ids(conn: Conn, lead_id: int, pairs: Sequence[tuple[str, str]]) -> bool:
    """True when an id was new to the lead (one another lead holds stays with it)."""
    added = await conn.fetch(
        """INSERT INTO lead_external_ids (system, external_id, lead_id)
           SELECT s, e, $1 FROM unnest($2::text[], $3::text[]) AS t(s, e)
           ON CONFLICT (system, external_id) DO NOTHING RETURNING system""",
        lead_id,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return bool(added)


async def create(conn: Conn, name: str | None, source: dict[str, Any]) -> LeadId:
    """A lead made by the business (`source`: `{"kind": "api"}` from a CRM, `"import"`)."""
    lead_id: int = await conn.fetchval(
        "INSERT INTO leads (name, source) VALUES ($1, $2::jsonb || jsonb_build_object('at', now()))"
        " RETURNING id",
        name,
        source,
    )
    return LeadId(lead_id)


async def learn(
    conn: Conn,
    lead_id: LeadId,
    name: str | None,
    phones: Sequence[Phone],
    emails: Sequence[str],
    identity: Identity | None,
) -> bool:
    """Teach the lead new details without overwriting any (`hub_learn`); true on change."""
    changed: bool = await conn.fetchval(
        "SELECT hub_learn(p_lead => $1, p_name => $2, p_phones => $3::text[],"
        " p_exts => $4::text[], p_emails => $5::text[], p_identity_kind => $6,"
        " p_identity_id => $7)",
        lead_id,
        name,
        *phone_columns(phones),
        list(emails),
        identity.kind if identity else None,
        identity.external_id if identity else None,
    )
    return changed


async def touch(conn: Conn, lead_id: LeadId) -> None:
    await conn.execute("UPDATE leads SET updated_at = now() WHERE id = $1", lead_id)


async def update(
    conn: Conn,
    lead_id: LeadId,
    *,
    name: str | None = None,
    set_name: bool = False,
    phones: Sequence[Phone] | None = None,
    emails: Sequence[str] | None = None,
    phone_suggestions: Sequence[str] | None = None,
    blocked: bool | None = None,
) -> None:
    """Replace the given parts of a lead (PATCH semantics: omitted parts stay); recorded as
    `lead.updated` with the names of the parts given. A suggested phone that becomes one of
    the lead's phones stops being a suggestion; one left out of `phone_suggestions` is
    dismissed for good."""
    parts = [
        name
        for name, given in (
            ("name", set_name),
            ("phones", phones is not None),
            ("emails", emails is not None),
            ("phone_suggestions", phone_suggestions is not None),
            ("blocked", blocked is not None),
        )
        if given
    ]
    if parts:
        await events.append(
            conn, [NewEvent("lead.updated", lead_id=lead_id, data={"fields": parts})]
        )
    if blocked is not None:
        await conn.execute(
            "UPDATE leads SET blocked = $2, updated_at = now() WHERE id = $1", lead_id, blocked
        )
    if set_name:
        await conn.execute(
            "UPDATE leads SET name = $2, name_suggestions = array_remove(name_suggestions, $2),"
            " updated_at = now() WHERE id = $1",
            lead_id,
            name,
        )
    if phone_suggestions is not None:
        await conn.execute(
            """UPDATE leads SET
                   dismissed_phone_suggestions = ARRAY(
                       SELECT DISTINCT x FROM unnest(dismissed_phone_suggestions
                                                     || phone_suggestions) AS x
                        WHERE NOT x = ANY($2::text[])),
                   phone_suggestions = $2::text[]
               WHERE id = $1""",
            lead_id,
            list(phone_suggestions),
        )
    if phones is not None:
        await conn.execute(
            "UPDATE leads SET phone_suggestions = ARRAY(SELECT x FROM unnest(phone_suggestions)"
            " AS x WHERE NOT x = ANY($2::text[])) WHERE id = $1",
            lead_id,
            [p.e164 for p in phones],
        )
        await conn.execute(
            "DELETE FROM lead_phones WHERE lead_id = $1 AND NOT phone = ANY($2::text[])",
            lead_id,
            [p.e164 for p in phones],
        )
        await conn.execute(
            """INSERT INTO lead_phones (lead_id, phone, extension)
               SELECT $1, p.phone, NULLIF(p.ext, '')
               FROM unnest($2::text[], $3::text[]) AS p(phone, ext)
               ON CONFLICT (lead_id, phone) DO UPDATE SET extension = EXCLUDED.extension""",
            lead_id,
            *phone_columns(phones),
        )
    if emails is not None:
        await conn.execute(
            "DELETE FROM lead_emails WHERE lead_id = $1 AND NOT email = ANY($2::text[])",
            lead_id,
            list(emails),
        )
        await conn.execute(
            "INSERT INTO lead_emails (lead_id, email) SELECT $1, e FROM unnest($2::text[]) e"
            " ON CONFLICT DO NOTHING",
            lead_id,
            list(emails),
        )
    await touch(conn, lead_id)


async def search(
    conn: Conn,
    *,
    phone: str | None = None,
    email: str | None = None,
    identity: Identity | None = None,
    text: str | None = None,
    after_id: int = 0,
    limit: int = 50,
    visible_to: int | None = None,
    source: str | None = None,
    utm: dict[str, str] | None = None,
) -> list[Lead]:
    """Leads matching every given filter, oldest first, keyset-paginated by id; with
    `visible_to`, only leads with a dialog held by (or offered to) that operator; `source`
    and `utm` filter by the first touch."""
    conditions = ["l.merged_into IS NULL", "l.id > $1"]
    args: list[Any] = [after_id]
    if source is not None:
        args.append(source)
        conditions.append(f"l.source->>'kind' = ${len(args)}")
    for key, value in (utm or {}).items():
        args.extend([key, value])
        conditions.append(f"l.source->'utm'->>${len(args) - 1} = ${len(args)}")
    if visible_to is not None:
        args.append(visible_to)
        conditions.append(
            "EXISTS (SELECT 1 FROM dialogs d WHERE d.lead_id = l.id"
            f" AND (d.operator_id = ${len(args)} OR ${len(args)} = ANY(d.offered_to)))"
        )
    if phone is not None:
        args.append(phone)
        conditions.append(
            f"EXISTS (SELECT 1 FROM lead_phones p WHERE p.lead_id = l.id AND p.phone = ${len(args)})"
        )
    if email is not None:
        args.append(email)
        conditions.append(
            f"EXISTS (SELECT 1 FROM lead_emails e WHERE e.lead_id = l.id AND e.email = ${len(args)})"
        )
    if identity is not None:
        args.extend([identity.kind, identity.external_id])
        conditions.append(
            "EXISTS (SELECT 1 FROM lead_identities i WHERE i.lead_id = l.id"
            f" AND i.kind = ${len(args) - 1} AND i.external_id = ${len(args)})"
        )
    if text:
        args.append(text.lower())
        n = len(args)
        pattern = (
            f"'%' || replace(replace(replace(${n}, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'"
        )
        digits = f"NULLIF(regexp_replace(${n}, '\\D', '', 'g'), '')"
        conditions.append(
            f"(lower(l.name) LIKE {pattern}"
            f" OR EXISTS (SELECT 1 FROM lead_emails e WHERE e.lead_id = l.id AND e.email LIKE {pattern})"
            f" OR EXISTS (SELECT 1 FROM lead_phones p WHERE p.lead_id = l.id"
            f"            AND length({digits}) >= 3 AND p.phone LIKE '%' || {digits} || '%'))"
        )
    args.append(limit)
    # The WHERE clause is assembled from fixed fragments above; every value is a parameter.
    sql = (
        f"SELECT {_LEAD_COLUMNS} FROM leads l WHERE {' AND '.join(conditions)}"
        f" ORDER BY l.id LIMIT ${len(args)}"
    )
    return [_lead(r) for r in await conn.fetch(sql, *args)]


async def duplicates(
    conn: Conn, lead_id: LeadId, limit: int = 20
) -> list[tuple[LeadId, list[str], float]]:
    """Other live leads sharing a phone or email, or with a similar name, best first."""
    rows = await conn.fetch(
        """
        WITH me AS (SELECT id, lower(name) AS name FROM leads WHERE id = $1),
        cand AS (
            SELECT p2.lead_id AS id, 'phone' AS reason, 1.0::float8 AS score
            FROM lead_phones p1 JOIN lead_phones p2 ON p2.phone = p1.phone AND p2.lead_id <> $1
            WHERE p1.lead_id = $1
            UNION ALL
            SELECT e2.lead_id, 'email', 1.0
            FROM lead_emails e1 JOIN lead_emails e2 ON e2.email = e1.email AND e2.lead_id <> $1
            WHERE e1.lead_id = $1
            UNION ALL
            SELECT l.id, 'name', similarity(lower(l.name), me.name)::float8
            FROM leads l, me
            WHERE me.name IS NOT NULL AND l.id <> $1 AND lower(l.name) % me.name
        )
        SELECT c.id, array_agg(DISTINCT c.reason ORDER BY c.reason) AS reasons,
               sum(c.score)::float8 AS score
        FROM cand c JOIN leads l ON l.id = c.id AND l.merged_into IS NULL
        GROUP BY c.id ORDER BY score DESC, c.id LIMIT $2
        """,
        lead_id,
        limit,
    )
    return [(LeadId(r["id"]), list(r["reasons"]), round(r["score"], 3)) for r in rows]
