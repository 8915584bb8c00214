"""Decisions on the unsorted inbox: accept (create the lead), link, or decline as spam.

Accepting and linking run the ingest pipeline on the held message inside the same
transaction that records the decision, so a decision is never half applied, and a second
decision on the same item is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from hub.domain import LeadId
from hub.errors import HubError
from hub.pipeline import IngestPipeline, normalize_contacts
from hub.ports import IngestResult
from hub.ports.connector import ConnectorDescriptor
from storage import leads, unsorted_inbox

Decision = Literal["accept", "link", "decline"]


class DecisionError(HubError):
    """A decision on the unsorted inbox that cannot be made."""


async def decide(
    pipeline: IngestPipeline,
    unsorted_id: int,
    decision: Decision,
    actor: str,
    kinds: Mapping[str, ConnectorDescriptor],
    lead_id: int | None = None,
) -> IngestResult | None:
    async with pipeline.pool.acquire() as conn, conn.transaction():
        row = await unsorted_inbox.get_for_update(conn, unsorted_id)
        if row is None:
            raise DecisionError("not_found", f"unsorted item {unsorted_id} not found")
        if row["status"] != "pending":
            raise DecisionError("already_decided", f"this item was already {row['status']}")
        if decision == "decline":
            await unsorted_inbox.decide(
                conn, unsorted_id, "declined", lead_id=None, interaction_id=None, decided_by=actor
            )
            return None
        target: LeadId | None = None
        if decision == "link":
            if lead_id is None:
                raise DecisionError("invalid_field", "lead_id is required to link")
            lead = await leads.get(conn, lead_id)
            if lead is None:
                raise DecisionError("not_found", f"lead {lead_id} not found")
            target = lead.merged_into or lead.id
        message = unsorted_inbox.inbound_from_json(row["inbound"])
        descriptor = kinds.get(row["channel_kind"])
        if descriptor is None:
            raise DecisionError(
                "unknown_channel", f"this hub does not serve {row['channel_kind']} channels"
            )
        kind = descriptor.capabilities.interaction_kind
        contacts = normalize_contacts(message, pipeline.default_region, strict=False)
        result = await pipeline.ingest_on(conn, message, kind, contacts, lead_id=target)
        await unsorted_inbox.decide(
            conn,
            unsorted_id,
            "accepted" if decision == "accept" else "linked",
            lead_id=result.lead_id,
            interaction_id=result.interaction_id,
            decided_by=actor,
        )
    await pipeline.announce(result)
    return result
