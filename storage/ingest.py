"""The one statement an inbound event costs: `hub_ingest` (storage/functions/30_ingest.sql).

Everything the pipeline does in the database happens in that function, so the event loop
pays one round trip per event instead of ten; `hub.pipeline` prepares its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

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
    holders: tuple[int, ...]  # who holds any dialog of the lead (a new message's audience)


_INGEST = """
SELECT o_status, o_interaction, o_lead, o_dialog, o_unsorted, o_lead_created, o_lead_updated,
       o_dialog_created, o_stored_hash, o_dialog_reopened, o_operator, o_holders
FROM hub_ingest(
    p_lock_keys => $1, p_channel_id => $2, p_external_id => $3, p_kind => $4,
    p_occurred_at => $5, p_text => $6, p_subject => $7, p_call => $8, p_extra => $9,
    p_payload_hash => $10, p_name => $11, p_phones => $12, p_exts => $13, p_emails => $14,
    p_identity_kind => $15, p_identity_id => $16, p_on_unknown => $17, p_forced_lead => $18,
    p_inbound => $19, p_peer => $20, p_attachments => $21, p_reopen_seconds => $22,
    p_fresh_id => $23, p_thread_key => $24, p_thread_refs => $25,
    p_phone_suggestions => $26, p_trace => $27)
"""


@dataclass(frozen=True, slots=True)
class IngestCall:
    """One event's arguments to `hub_ingest`, as `hub.pipeline` prepares them."""

    lock_keys: Sequence[int]
    message: InboundMessage
    kind: str
    call: dict[str, Any] | None
    name: str | None
    phones: Sequence[Phone]
    emails: Sequence[str]
    identity: Identity | None
    on_unknown: str
    forced_lead: int | None
    inbound_json: dict[str, Any] | None
    reopen_seconds: int = 0
    phone_suggestions: Sequence[str] = ()
    trace_id: str | None = None  # recorded on the domain events it writes

    def arguments(self) -> tuple[Any, ...]:
        message, files = self.message, self.message.attachments
        phone_list, extensions = phone_columns(self.phones)
        return (
            list(self.lock_keys),
            message.channel_id,
            message.external_id,
            self.kind,
            message.occurred_at,
            message.text,
            message.subject,
            self.call,
            message.extra,
            message.payload_hash,
            self.name,
            phone_list,
            extensions,
            list(self.emails),
            self.identity.kind if self.identity else None,
            self.identity.external_id if self.identity else None,
            self.on_unknown,
            self.forced_lead,
            self.inbound_json,
            message.peer,
            [attachment_json(a) for a in files] if files else None,
            self.reopen_seconds,
            message.fresh_external_id,
            message.thread_key,
            list(message.thread_refs),
            list(self.phone_suggestions),
            self.trace_id,
        )


def keys_taken_first(calls: Sequence[IngestCall]) -> list[IngestCall]:
    """Calls to run in one transaction: the first takes every key of them all, in the one
    order all callers use; the others hold theirs already (advisory locks are re-entrant),
    so two such transactions, or one and a single event, never wait for each other in a
    circle, and a later event of a new customer sees the lead an earlier one made."""
    every_key = sorted({key for call in calls for key in call.lock_keys})
    return [replace(call, lock_keys=every_key if i == 0 else ()) for i, call in enumerate(calls)]


async def ingest(conn: Conn, call: IngestCall) -> IngestRow:
    row = await conn.fetchrow(_INGEST, *call.arguments())
    assert row is not None
    return _row(row)


async def ingest_many(conn: Conn, calls: Sequence[IngestCall]) -> list[IngestRow]:
    """Several events in one round trip (asyncpg pipelines the calls and reads the rows
    back in order), inside the caller's transaction: a poller's batch costs one commit."""
    if not calls:
        return []
    rows = await conn.fetchmany(_INGEST, [c.arguments() for c in calls])
    return [_row(row) for row in rows]


def _row(row: asyncpg.Record) -> IngestRow:
    return IngestRow(
        status=row["o_status"],
        interaction_id=row["o_interaction"],
        lead_id=row["o_lead"],
        dialog_id=row["o_dialog"],
        unsorted_id=row["o_unsorted"],
        lead_created=row["o_lead_created"],
        lead_updated=row["o_lead_updated"],
        dialog_created=row["o_dialog_created"],
        stored_hash=row["o_stored_hash"],
        dialog_reopened=row["o_dialog_reopened"],
        operator_id=row["o_operator"],
        holders=tuple(row["o_holders"] or ()),
    )
