"""What connectors may ask of the hub, as protocols.

Connectors import this module and `hub.domain` only; the hub hands them concrete
implementations, so a connector never touches storage or routing directly and tests can
give it anything that fits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from hub.domain import (
    Attachment,
    CallEvent,
    ChannelId,
    DialogId,
    InboundMessage,
    InteractionId,
    LeadId,
    UnsortedId,
)

OnUnknown = Literal["create", "stage"]


class IdempotencyConflict(Exception):
    """The same idempotency key came back with a different payload."""


class UnusableMessage(ValueError):
    """A connector built a message the hub cannot store (a field of the wrong type): the
    provider's event is acknowledged and logged, not retried."""


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
    dialog_reopened: bool = False
    operator_id: int | None = None
    pending_media: bool = False
    holders: tuple[int, ...] = ()  # operators holding a dialog of the lead


@dataclass(frozen=True, slots=True)
class ChannelPosition:
    """Where a poller stands in its provider's stream (an update offset, a mailbox's last
    UID): saved in the transaction that stores what it read up to there."""

    channel_id: ChannelId
    state: dict[str, Any]


class IngestPort(Protocol):
    async def ingest(
        self,
        message: InboundMessage,
        kind: str,
        *,
        on_unknown: OnUnknown = "create",
        strict_contacts: bool = False,
    ) -> IngestResult: ...

    async def ingest_many(
        self,
        messages: Sequence[InboundMessage],
        kind: str,
        *,
        position: ChannelPosition | None = None,
    ) -> list[IngestResult | UnusableMessage]:
        """A poller's batch, in order, in one transaction with its new position: each
        message's result, or why it could not be stored."""
        ...


class ChannelEvents(Protocol):
    """What a messenger connector reports besides new messages."""

    async def edit(
        self, channel_id: ChannelId, external_id: str, text: str | None, edited_at: datetime
    ) -> str:
        """Apply an edit; "updated", "stale" (an older edit) or "missing" (never seen)."""
        ...

    async def delivery(
        self, channel_id: ChannelId, provider_message_id: str, state: str, error: str | None = None
    ) -> None: ...

    async def subscription(
        self, channel_id: ChannelId, external_id: str, subscribed: bool
    ) -> None: ...

    async def load_state(self, channel_id: ChannelId) -> dict[str, Any]: ...

    async def save_state(self, channel_id: ChannelId, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class CallResult:
    """What the hub made of one call event: whether it was new, the call's status after
    it, and the caller's lead (`blocked`: the business does not take their calls)."""

    status: Literal["applied", "duplicate"]
    call_id: int
    call_status: str
    lead_id: LeadId | None = None
    blocked: bool = False


class CallPort(Protocol):
    async def call_event(self, event: CallEvent) -> CallResult:
        """Merge one provider event into its call, in one transaction, then tell the
        operators concerned (screen pop, answered, ended) and route a callback."""
        ...


class AttachmentStore(Protocol):
    async def save(
        self, chunks: AsyncIterator[bytes], name: str, content_type: str, limit: int
    ) -> Attachment: ...

    async def save_bytes(self, data: bytes, name: str, content_type: str) -> Attachment: ...

    async def read(self, storage_path: str) -> bytes: ...

    async def discard(self, attachments: tuple[Attachment, ...]) -> None: ...


@dataclass(frozen=True, slots=True)
class HubPorts:
    ingest: IngestPort
    events: ChannelEvents
    calls: CallPort
    attachments: AttachmentStore
    public_url: str
    max_body_bytes: int
    max_upload_bytes: int
    max_files: int
    trust_forwarded: bool
