"""The unsorted inbox: first contacts held for review on channels with `on_unknown=stage`.

The whole normalized inbound message is kept as JSON so that accepting or linking it
later runs the very same pipeline as a direct ingest would have.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from hub.domain import (
    Attachment,
    AttachmentState,
    ChannelId,
    Identity,
    InboundMessage,
)
from storage.database import Conn
from storage.ingest import attachment_json
from storage.interactions import call_from_json, call_to_json


def inbound_to_json(m: InboundMessage) -> dict[str, Any]:
    return {
        "channel_id": m.channel_id,
        "external_id": m.external_id,
        "occurred_at": m.occurred_at.isoformat(),
        "text": m.text,
        "subject": m.subject,
        "name": m.name,
        "phones": list(m.phones),
        "emails": list(m.emails),
        "identity": [m.identity.kind, m.identity.external_id] if m.identity else None,
        "attachments": [attachment_json(a) for a in m.attachments],
        "peer": m.peer,
        "thread_key": m.thread_key,
        "thread_refs": list(m.thread_refs),
        "suggested_phones": list(m.suggested_phones),
        "call": call_to_json(m.call),
        "extra": m.extra,
        "payload_hash": m.payload_hash,
    }


def inbound_from_json(d: dict[str, Any]) -> InboundMessage:
    return InboundMessage(
        channel_id=ChannelId(d["channel_id"]),
        external_id=d["external_id"],
        occurred_at=datetime.fromisoformat(d["occurred_at"]),
        text=d.get("text"),
        subject=d.get("subject"),
        name=d.get("name"),
        phones=tuple(d.get("phones") or ()),
        emails=tuple(d.get("emails") or ()),
        identity=Identity(*d["identity"]) if d.get("identity") else None,
        attachments=tuple(
            Attachment(**{**a, "state": AttachmentState(a.get("state") or "stored")})
            for a in d.get("attachments") or ()
        ),
        peer=d.get("peer"),
        thread_key=str(d.get("thread_key") or ""),
        thread_refs=tuple(str(r) for r in d.get("thread_refs") or ()),
        suggested_phones=tuple(str(r) for r in d.get("suggested_phones") or ()),
        call=call_from_json(d.get("call")),
        extra=dict(d.get("extra") or {}),
        payload_hash=d.get("payload_hash"),
    )


async def list_items(
    conn: Conn, *, status: str | None, after_id: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT u.*, c.name AS channel_name FROM unsorted u
           JOIN channels c ON c.id = u.channel_id
           WHERE u.id > $1 AND ($2::text IS NULL OR u.status = $2)
           ORDER BY u.id LIMIT $3""",
        after_id,
        status,
        limit,
    )


async def get_for_update(conn: Conn, unsorted_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT u.*, c.name AS channel_name, c.kind AS channel_kind FROM unsorted u"
        " JOIN channels c ON c.id = u.channel_id WHERE u.id = $1 FOR UPDATE OF u",
        unsorted_id,
    )


async def get(conn: Conn, unsorted_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT u.*, c.name AS channel_name FROM unsorted u"
        " JOIN channels c ON c.id = u.channel_id WHERE u.id = $1",
        unsorted_id,
    )


async def decide(
    conn: Conn,
    unsorted_id: int,
    status: str,
    *,
    lead_id: int | None,
    interaction_id: int | None,
    decided_by: str,
) -> None:
    await conn.execute(
        """UPDATE unsorted SET status = $2, lead_id = $3, interaction_id = $4, decided_by = $5,
                  decided_at = now() WHERE id = $1""",
        unsorted_id,
        status,
        lead_id,
        interaction_id,
        decided_by,
    )
