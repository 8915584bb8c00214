"""Leads: lookup by any phone format, email, identity or free text; edit; merge; vCard."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

from hub.api.access import ensure_lead_visible, restricted_to, visible_leads
from hub.api.auth import principal_of, scoped
from hub.api.dialogs import MAX_TEXT, created_interaction
from hub.api.shapes import interaction_json, lead_json, newest_first, page, paging, path_id
from hub.context import hub_of
from hub.domain import Identity, Lead, LeadId
from hub.errors import ApiError, not_found, unprocessable
from hub.httputil import is_id, read_json_object
from hub.identity import InvalidContact, clean_name, normalize_email, normalize_phone
from hub.notify import lead_changed
from hub.pipeline import lock_key, take_locks
from hub.text import usable
from hub.vcard import lead_vcard
from storage import channels, events, interactions, leads, merges
from storage.events import NewEvent, set_actor

PATCHABLE = {"name", "phones", "emails", "phone_suggestions", "blocked"}


async def _lead_or_404(request: web.Request, lead_id: int) -> Lead:
    await ensure_lead_visible(request, lead_id)
    async with hub_of(request).pool.acquire() as conn:
        lead = await leads.get(conn, lead_id)
    if lead is None:
        raise not_found(f"lead {lead_id} not found")
    return lead


def _parse_identity(raw: str) -> Identity:
    kind, sep, external_id = raw.partition(":")
    if not sep or not kind or not external_id:
        raise ApiError(
            400, "bad_query", "identity must look like kind:external_id, e.g. telegram:12345"
        )
    return Identity(kind.strip().lower(), external_id.strip())


@dataclass(frozen=True, slots=True)
class LeadLookup:
    """The query parameters of `GET /api/v1/leads`, written once for the parser and for
    the OpenAPI document (each field's `doc`)."""

    phone: str | None = field(default=None, metadata={"doc": "any format; normalized to E.164"})
    email: str | None = field(default=None, metadata={"doc": "any case"})
    identity: str | None = field(
        default=None, metadata={"doc": "kind:external_id, e.g. telegram:12345"}
    )
    q: str | None = field(default=None, metadata={"doc": "free text: name, email or phone digits"})
    source: str | None = field(
        default=None,
        metadata={"doc": "where the lead came from: a channel kind, call, api or import"},
    )
    utm_source: str | None = field(default=None, metadata={"doc": "the first touch's utm_source"})
    utm_medium: str | None = field(default=None, metadata={"doc": "the first touch's utm_medium"})
    utm_campaign: str | None = field(
        default=None, metadata={"doc": "the first touch's utm_campaign"}
    )

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> LeadLookup:
        return cls(**{f.name: query[f.name] for f in fields(cls) if f.name in query})

    @classmethod
    def parameters(cls) -> list[tuple[str, str]]:
        return [(f.name, f.metadata["doc"]) for f in fields(cls)]


@scoped("leads")
async def list_leads(request: web.Request) -> web.Response:
    hub = hub_of(request)
    after_id, limit = paging(request)
    lookup = LeadLookup.from_query(request.query)
    try:
        phone = (
            normalize_phone(lookup.phone, hub.settings.default_region).e164
            if lookup.phone is not None
            else None
        )
        email = normalize_email(lookup.email) if lookup.email is not None else None
    except InvalidContact as exc:
        raise unprocessable(exc.code, str(exc)) from None
    identity = _parse_identity(lookup.identity) if lookup.identity is not None else None
    text = (lookup.q or "").strip()[:200] or None
    utm = {
        k: v[:200]
        for k, v in (
            ("utm_source", lookup.utm_source),
            ("utm_medium", lookup.utm_medium),
            ("utm_campaign", lookup.utm_campaign),
        )
        if v
    }
    async with hub.pool.acquire() as conn:
        found = await leads.search(
            conn,
            phone=phone,
            email=email,
            identity=identity,
            text=text,
            source=(lookup.source or "")[:40] or None,
            utm=utm,
            after_id=after_id,
            limit=limit,
            visible_to=restricted_to(request),
        )
    return web.json_response(page([lead_json(lead) for lead in found], limit))


@scoped("leads")
async def get_lead(request: web.Request) -> web.Response:
    return web.json_response(lead_json(await _lead_or_404(request, path_id(request))))


@scoped("leads")
async def lead_as_vcard(request: web.Request) -> web.Response:
    lead = await _lead_or_404(request, path_id(request))
    return web.Response(
        text=lead_vcard(lead),
        content_type="text/vcard",
        headers={"Content-Disposition": f'attachment; filename="lead-{lead.id}.vcf"'},
    )


def _patch_values(body: dict[str, Any], region: str) -> dict[str, Any]:
    unknown = set(body) - PATCHABLE
    if unknown:
        raise unprocessable(
            "unknown_field", f"cannot change {sorted(unknown)}; allowed: {sorted(PATCHABLE)}"
        )
    values: dict[str, Any] = {}
    if "name" in body:
        if body["name"] is not None and not isinstance(body["name"], str):
            raise unprocessable("invalid_field", "name must be a string or null")
        values["name"] = clean_name(body["name"])
    if "blocked" in body:
        if not isinstance(body["blocked"], bool):
            raise unprocessable("invalid_field", "blocked must be true or false")
        values["blocked"] = body["blocked"]
    for key in ("phones", "emails", "phone_suggestions"):
        if key in body:
            items = body[key]
            if (
                not isinstance(items, list)
                or not all(isinstance(x, str) for x in items)
                or len(items) > 50
            ):
                raise unprocessable("invalid_field", f"{key} must be a list of at most 50 strings")
            try:
                if key == "phones":
                    normal = {p.e164: p for p in (normalize_phone(x, region) for x in items)}
                    values[key] = list(normal.values())
                elif key == "phone_suggestions":
                    values[key] = list(
                        dict.fromkeys(normalize_phone(x, region).e164 for x in items)
                    )
                else:
                    values[key] = list(dict.fromkeys(normalize_email(x) for x in items))
            except InvalidContact as exc:
                raise unprocessable(exc.code, str(exc)) from None
    return values


@scoped("leads")
async def patch_lead(request: web.Request) -> web.Response:
    hub = hub_of(request)
    lead_id = path_id(request)
    await ensure_lead_visible(request, lead_id)
    values = _patch_values(
        await read_json_object(request, hub.settings.max_body_bytes), hub.settings.default_region
    )
    async with hub.pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(
            "SELECT merged_into FROM leads WHERE id = $1 FOR UPDATE", lead_id
        )
        if current is None:
            raise not_found(f"lead {lead_id} not found")
        if current["merged_into"] is not None:
            raise ApiError(
                409,
                "lead_merged",
                f"lead {lead_id} was merged into {current['merged_into']}; edit that one",
            )
        await set_actor(conn, principal_of(request).actor)
        await leads.update(
            conn,
            LeadId(lead_id),
            name=values.get("name"),
            set_name="name" in values,
            phones=values.get("phones"),
            emails=values.get("emails"),
            phone_suggestions=values.get("phone_suggestions"),
            blocked=values.get("blocked"),
        )
        lead = await leads.get(conn, lead_id)
    assert lead is not None
    await lead_changed(
        hub_of(request).pool,
        hub_of(request).bus.publish,
        [lead_id],
        "lead.updated",
        {"lead_id": lead_id},
    )
    return web.json_response(lead_json(lead))


async def _other_id(request: web.Request) -> int:
    body = await read_json_object(request, hub_of(request).settings.max_body_bytes)
    other = body.get("other_id")
    if not is_id(other):
        raise unprocessable("invalid_field", "other_id must be a lead id")
    return other


@scoped("leads")
async def merge_lead(request: web.Request) -> web.Response:
    """Merge `other_id` into this lead."""
    hub = hub_of(request)
    survivor = path_id(request)
    other = await _other_id(request)
    # An operator merges only leads they may see (a suggested duplicate of another
    # operator's customer is not theirs to take); supervisors merge any.
    await ensure_lead_visible(request, survivor)
    await ensure_lead_visible(request, other)
    async with hub.pool.acquire() as conn, conn.transaction():
        await set_actor(conn, principal_of(request).actor)
        moved = await merges.merge(
            conn, LeadId(survivor), LeadId(other), principal_of(request).name
        )
        lead = await leads.get(conn, survivor)
    assert lead is not None
    # Other operators holding a dialog of either lead reload it.
    await lead_changed(
        hub.pool,
        hub.bus.publish,
        [survivor, other],
        "lead.merged",
        {"lead_id": survivor, "merged_id": other},
    )
    return web.json_response({"lead": lead_json(lead), "merge": moved})


@scoped("leads")
async def unmerge_lead(request: web.Request) -> web.Response:
    """Undo the merge of `other_id` into this lead, restoring it with what was its own."""
    hub = hub_of(request)
    survivor = path_id(request)
    other = await _other_id(request)
    await ensure_lead_visible(request, survivor)
    if restricted_to(request) is not None:
        # The merged lead's history is now the survivor's, which the operator sees; any
        # other lead is not theirs to restore or learn of.
        merged_into = await hub.pool.fetchval("SELECT merged_into FROM leads WHERE id = $1", other)
        if merged_into != survivor:
            raise not_found(f"lead {other} not found")
    async with hub.pool.acquire() as conn, conn.transaction():
        await set_actor(conn, principal_of(request).actor)
        await merges.unmerge(conn, LeadId(survivor), LeadId(other))
        restored = await leads.get_many(conn, [survivor, other])
    await lead_changed(
        hub.pool,
        hub.bus.publish,
        [survivor, other],
        "lead.unmerged",
        {"lead_id": survivor, "restored_id": other},
    )
    return web.json_response(
        {
            "lead": lead_json(restored[LeadId(survivor)]),
            "restored": lead_json(restored[LeadId(other)]),
        }
    )


@scoped("leads")
async def lead_duplicates(request: web.Request) -> web.Response:
    hub = hub_of(request)
    lead = await _lead_or_404(request, path_id(request))
    async with hub.pool.acquire() as conn:
        found = await leads.duplicates(conn, lead.id)
    # Operators see duplicates only among the leads they may see.
    visible = await visible_leads(request, [lead_id for lead_id, _, _ in found])
    async with hub.pool.acquire() as conn:
        by_id = await leads.get_many(conn, [i for i, _, _ in found if i in visible])
    items = [
        {"lead": lead_json(by_id[lead_id]), "reasons": reasons, "score": score}
        for lead_id, reasons, score in found
        if lead_id in by_id
    ]
    return web.json_response({"items": items})


@scoped("leads")
async def lead_timeline(request: web.Request) -> web.Response:
    """How the lead's dialogs changed hands, from the domain-event log, oldest first."""
    hub = hub_of(request)
    lead = await _lead_or_404(request, path_id(request))
    async with hub.pool.acquire() as conn:
        rows = await events.hand_overs(conn, lead.id)
    items = [
        {
            "id": r["id"],
            "type": r["type"],
            "dialog_id": r["dialog_id"],
            "operator_id": r["operator_id"],
            "actor": r["actor"],
            "data": r["data"],
            "queue": r["queue"],
            "occurred_at": r["occurred_at"].isoformat(),
        }
        for r in rows
    ]
    return web.json_response({"items": items})


@scoped("leads")
async def lead_interactions(request: web.Request) -> web.Response:
    hub = hub_of(request)
    lead = await _lead_or_404(request, path_id(request))
    after_id, limit = paging(request)
    before_id = newest_first(request)
    async with hub.pool.acquire() as conn:
        items = await interactions.of_lead(
            conn, lead.id, after_id=after_id, limit=limit, before_id=before_id
        )
    return web.json_response(page([interaction_json(i) for i in items], limit))


@scoped("dialogs")
async def send_to_lead(request: web.Request) -> web.Response:
    """Write to a lead, as a CRM does: on the channel named, else on the channel the lead
    last wrote on; the message goes into the lead's latest conversation there (open, else
    the last closed one, whose address the hub knows). On a channel that can write first
    (email) where the lead never wrote, a new conversation to one of the lead's addresses
    (`to`, else the first) with an optional `subject`."""
    hub = hub_of(request)
    lead_id = path_id(request)
    await ensure_lead_visible(request, lead_id)
    body = await read_json_object(request, hub.settings.max_body_bytes)
    text, channel = body.get("text"), body.get("channel")
    if not isinstance(text, str) or not text.strip():
        raise unprocessable("empty_message", "text must be a non-empty string")
    if len(text.strip()) > MAX_TEXT:
        raise unprocessable("text_too_long", f"a message holds at most {MAX_TEXT} characters")
    if channel is not None and not isinstance(channel, str):
        raise unprocessable("invalid_field", "channel must be a channel's name")
    async with hub.pool.acquire() as conn:
        lead = await leads.get(conn, lead_id)
        if lead is None:
            raise not_found(f"lead {lead_id} not found")
        if lead.merged_into is not None:
            raise ApiError(409, "lead_merged", f"lead {lead_id} was merged into {lead.merged_into}")
        if channel is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM channels WHERE name = $1 AND enabled)", channel
        ):
            raise ApiError(404, "unknown_channel", f"no enabled channel named {channel[:64]!r}")
        dialog_id = await conn.fetchval(
            """SELECT d.id FROM dialogs d JOIN channels c ON c.id = d.channel_id
               WHERE d.lead_id = $1 AND c.enabled
                 AND CASE WHEN $2::text IS NOT NULL THEN c.name = $2
                          ELSE d.channel_id = (SELECT i.channel_id FROM interactions i
                                               WHERE i.lead_id = $1 AND i.direction = 'in'
                                               ORDER BY i.id DESC LIMIT 1) END
               ORDER BY (d.status <> 'closed') DESC, d.id DESC LIMIT 1""",
            lead_id,
            channel,
        )
    principal = principal_of(request)
    if dialog_id is None and channel is not None:
        dialog_id = await _write_first(request, lead, channel, body)
    if dialog_id is None:
        where = f"on {channel}" if channel else "on any channel"
        raise ApiError(
            409, "no_conversation", f"the lead has not written {where}: no address to write to"
        )
    interaction_id = await hub.outbound.send(
        dialog_id, text.strip(), [], principal.author, operator_id=principal.operator_id
    )
    return await created_interaction(request, interaction_id)


async def _write_first(
    request: web.Request, lead: Lead, channel_name: str, body: Mapping[str, Any]
) -> int | None:
    """A new dialog on `channel_name` to one of the lead's addresses, if the channel's kind
    can write first; None (no conversation) when it cannot."""
    hub = hub_of(request)
    async with hub.pool.acquire() as conn:
        channel = await channels.get_by_name(conn, channel_name)
    descriptor = hub.kinds.get(channel.kind) if channel else None
    if channel is None or descriptor is None or descriptor.capabilities.writes_first != "email":
        return None
    to, subject = body.get("to"), body.get("subject")
    if to is not None and (not isinstance(to, str) or to.strip().lower() not in lead.emails):
        raise unprocessable("invalid_field", "to must be one of the lead's email addresses")
    if subject is not None and (
        not isinstance(subject, str) or len(subject) > 200 or not usable(subject)
    ):
        raise unprocessable("invalid_field", "subject must be text of at most 200 characters")
    address = (
        to.strip().lower() if isinstance(to, str) else (lead.emails[0] if lead.emails else None)
    )
    if address is None:
        raise ApiError(409, "no_conversation", "the lead has no email address to write to")
    principal = principal_of(request)
    return await hub.outbound.write_first(
        lead.id,
        channel,
        address,
        subject.strip() or None if subject else None,
        principal.operator_id,
    )


_SYSTEM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")


def _external_ids(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, dict) or not value or len(value) > 10:
        raise unprocessable(
            "invalid_field", 'external_ids must name the lead in your system: {"bitrix24": "123"}'
        )
    pairs = []
    for system, external_id in value.items():
        if not _SYSTEM.match(system):
            raise unprocessable(
                "invalid_field", f"{system[:40]!r} is not a system name (a-z0-9_.-)"
            )
        if isinstance(external_id, int) and not isinstance(external_id, bool):
            external_id = str(external_id)
        if not isinstance(external_id, str) or not 0 < len(external_id.strip()) <= 200:
            raise unprocessable("invalid_field", f"the {system} id must be a string of 1-200")
        pairs.append((system, external_id.strip()))
    return pairs


@scoped("leads")
async def upsert_lead(request: web.Request) -> web.Response:
    """A CRM creates or updates a lead by its own id (`external_ids`): the lead holding one
    of those ids, else the one its phones or emails identify, is updated (200; phones and
    emails are added, never removed; a given name replaces the name), else one is made (201).
    Repeating the request changes nothing more."""
    hub = hub_of(request)
    if restricted_to(request) is not None:
        # Matching by phone would show an operator a lead that is not theirs.
        raise ApiError(403, "forbidden", "creating leads by a CRM's id takes an API key")
    body = await read_json_object(request, hub.settings.max_body_bytes)
    pairs = _external_ids(body.get("external_ids"))
    values = _patch_values(
        {k: v for k, v in body.items() if k in ("name", "phones", "emails")},
        hub.settings.default_region,
    )
    phones, emails = values.get("phones", []), values.get("emails", [])
    keys = sorted(
        {lock_key(f"ext:{s}:{e}") for s, e in pairs}
        | {lock_key(f"phone:{p.e164}") for p in phones}
        | {lock_key(f"email:{e}") for e in emails}
    )
    async with hub.pool.acquire() as conn, conn.transaction():
        await set_actor(conn, principal_of(request).actor)
        await take_locks(conn, keys)
        lead_id = await leads.by_external_id(conn, pairs) or await leads.find_match(
            conn, None, [p.e164 for p in phones], emails
        )
        created = lead_id is None
        if lead_id is None:
            lead_id = await leads.create(
                conn, values.get("name"), {"kind": "api", "by": principal_of(request).name}
            )
        changed = await leads.learn(conn, lead_id, None, phones, emails, None)
        if not created and "name" in values:
            current = await leads.get(conn, lead_id)
            if current is not None and current.name != values["name"]:
                await leads.update(conn, lead_id, name=values["name"], set_name=True)
        changed = await leads.add_external_ids(conn, lead_id, pairs) or changed
        if created:
            await events.append(conn, [NewEvent("lead.created", lead_id=lead_id)])
        elif changed:
            fields = [
                "external_ids",
                *(["phones"] if phones else []),
                *(["emails"] if emails else []),
            ]
            await events.append(
                conn, [NewEvent("lead.updated", lead_id=lead_id, data={"fields": fields})]
            )
        lead = await leads.get(conn, lead_id)
    assert lead is not None
    return web.json_response(lead_json(lead), status=201 if created else 200)
