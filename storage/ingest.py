"""The one statement an inbound event costs: `hub_ingest` (migration 0002).

Everything the pipeline does in the database happens in that function, so the event loop
pays one round trip per event instead of ten; `hub.pipeline` prepares its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.domain import Attachment, Identity, InboundMessage, Phone
from storage.database import Conn
from storage.leads import phone_columns


def attachment_json(a: Attachment) -> dict[str, Any]:
    return {
        "name": a.name,
        "content_type": a.content_type,
        "size": a.size,
        "storage_path": a.storage_path,
        "sha256": a.sha256,
        "state": a.state.value,
        "remote_ref": a.remote_ref,
        "note": a.note,
    }


@dataclass(frozen=True, slots=True)
class IngestRow:
    status: str
    interaction_id: int | None
    lead_id: int | None
    dialog_id: int | None
    unsorted_id: int | None
    lead_created: bool
    lead_updated: bool
    dialog_created: bool
    stored_hash: str | None
    dialog_reopened: bool
    operator_id: int | None  # who holds the dialog now, when someone does


async def ingest(
    conn: Conn,
    *,
    lock_keys: Sequence[int],
    message: InboundMessage,
    kind: str,
    call: dict[str, Any] | None,
    name: str | None,
    phones: Sequence[Phone],
    emails: Sequence[str],
    identity: Identity | None,
    on_unknown: str,
    forced_lead: int | None,
    inbound_json: dict[str, Any] | None,
    reopen_seconds: int = 0,
) -> IngestRow:
    files = message.attachments
    row = await conn.fetchrow(
        "SELECT * FROM hub_ingest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
        " $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        list(lock_keys),
        message.channel_id,
        message.external_id,
        kind,
        message.occurred_at,
        message.text,
        message.subject,
        call,
        message.extra,
        message.payload_hash,
        name,
        *phone_columns(phones),
        list(emails),
        identity.kind if identity else None,
        identity.external_id if identity else None,
        on_unknown,
        forced_lead,
        inbound_json,
        message.peer,
        [attachment_json(a) for a in files] if files else None,
        reopen_seconds,
        message.fresh_external_id,
    )
    assert row is not None
    return IngestRow(*row)
