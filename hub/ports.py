"""What connectors may ask of the hub, as protocols.

Connectors import this module and `hub.domain` only; the hub hands them concrete
implementations, so a connector never touches storage or routing directly and tests can
give it anything that fits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hub.domain import (
    Attachment,
    DialogId,
    DomainEvent,
    InboundMessage,
    InteractionId,
    InteractionKind,
    LeadId,
    UnsortedId,
)

OnUnknown = Literal["create", "stage"]


class IdempotencyConflict(Exception):
    """The same idempotency key came back with a different payload."""


class TooLarge(Exception):
    """A body or file over its limit; the caller answers 413."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    status: Literal["created", "duplicate", "staged"]
    interaction_id: InteractionId | None = None
    lead_id: LeadId | None = None
    dialog_id: DialogId | None = None
    unsorted_id: UnsortedId | None = None
    lead_created: bool = False
    dialog_created: bool = False
    events: tuple[DomainEvent, ...] = field(default=())


class IngestPort(Protocol):
    async def ingest(
        self,
        message: InboundMessage,
        kind: InteractionKind,
        *,
        on_unknown: OnUnknown = "create",
        strict_contacts: bool = False,
    ) -> IngestResult: ...


class AttachmentStore(Protocol):
    async def save(
        self, chunks: AsyncIterator[bytes], name: str, content_type: str, limit: int
    ) -> Attachment: ...

    async def discard(self, attachments: tuple[Attachment, ...]) -> None: ...


@dataclass(frozen=True, slots=True)
class HubPorts:
    ingest: IngestPort
    attachments: AttachmentStore
    public_url: str
    max_body_bytes: int
    max_upload_bytes: int
    max_files: int
    trust_forwarded: bool
