"""Domain types shared by every package.

This module imports nothing of the project so that connectors, routing, storage and
webhooks can all depend on it without import cycles. Types are frozen: a value that
crosses a package boundary must not change under the receiver's feet.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NewType

LeadId = NewType("LeadId", int)
DialogId = NewType("DialogId", int)
InteractionId = NewType("InteractionId", int)
ChannelId = NewType("ChannelId", int)
OperatorId = NewType("OperatorId", int)
AttachmentId = NewType("AttachmentId", int)
UnsortedId = NewType("UnsortedId", int)


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class DialogStatus(enum.StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class CallStatus(enum.StrEnum):
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self not in (CallStatus.RINGING, CallStatus.IN_PROGRESS)


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone in E.164; an extension is kept beside the number, never folded into it."""

    e164: str
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """A customer's identity on one channel kind, e.g. a Telegram user id."""

    kind: str
    external_id: str


class AttachmentState(enum.StrEnum):
    STORED = "stored"
    PENDING = "pending"  # recorded with the event, fetched from the provider afterwards
    REFUSED = "refused"  # over the size limit: the interaction keeps a note instead
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    size: int
    id: AttachmentId | None = None
    storage_path: str | None = None
    sha256: str | None = None
    state: AttachmentState = AttachmentState.STORED
    remote_ref: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A call as an interaction shows it (`storage/calls.py` keeps the call itself)."""

    from_number: str
    to_number: str
    status: CallStatus
    duration_s: int = 0
    recording_url: str | None = None
    id: int | None = None  # the hub's call id (`call.ringing` names it)
    direction: str | None = None
    extension: str | None = None
    operator_id: int | None = None
    started_at: str | None = None  # ISO 8601
    answered_at: str | None = None
    ended_at: str | None = None
    cause: str | None = None


class CallPhase(enum.StrEnum):
    """What one provider event says of a call; any phase may arrive first or twice."""

    RINGING = "ringing"  # it entered the PBX, or an extension (or a group) rings
    ANSWERED = "answered"
    ENDED = "ended"
    RECORDED = "recorded"  # a recording is ready to fetch


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One provider event of a call, in the hub's terms; numbers are raw (the hub decides
    which are phone numbers). `key` tells the event apart from the call's other events, so
    a repeat is recognised; `outcome` is the provider's result already mapped through the
    connector's outcome table (None: decided by whether the call was answered)."""

    channel_id: ChannelId
    call_id: str
    key: str
    phase: CallPhase
    at: datetime
    direction: Direction | None = None
    from_number: str | None = None
    to_number: str | None = None
    ringing: tuple[str, ...] = ()  # extensions or logins that ring
    group: str | None = None  # a ringing group or queue, when no one person rings
    answered_by: str | None = None  # the extension (or login) that answered or dialled
    started_at: datetime | None = None
    answered_at: datetime | None = None
    outcome: CallStatus | None = None
    cause: str | None = None
    duration_s: int | None = None
    recording_ref: str | None = None
    recording_delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Channel:
    id: ChannelId
    kind: str  # a registered connector kind (connectors/registry.py)
    name: str
    enabled: bool
    settings: dict[str, str]
    created_at: datetime

    def setting(self, key: str, default: str = "") -> str:
        return self.settings.get(key, default)


@dataclass(frozen=True, slots=True)
class Lead:
    id: LeadId
    name: str | None
    phones: tuple[Phone, ...]
    emails: tuple[str, ...]
    identities: tuple[Identity, ...]
    created_at: datetime
    updated_at: datetime
    merged_into: LeadId | None = None
    name_suggestions: tuple[str, ...] = ()
    phone_suggestions: tuple[str, ...] = ()  # E.164 numbers offered, not the lead's yet
    blocked: bool = False  # the business takes no calls from them (the PBX is told busy)
    external_ids: dict[str, str] = field(default_factory=dict)  # a CRM's ids: {"bitrix24": "1"}
    # The first touch: kind, channel (its id and name), when, and for forms the page,
    # referrer and utm parameters.
    source: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Dialog:
    id: DialogId
    lead_id: LeadId
    channel_id: ChannelId
    channel: str
    status: DialogStatus
    operator_id: OperatorId | None
    created_at: datetime
    closed_at: datetime | None
    timings: dict[str, datetime | None] = field(default_factory=dict)
    channel_kind: str = ""
    # The note written with the latest hand-over for its receiver, and who wrote it.
    handover_comment: str | None = None
    handover_by: OperatorId | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    id: InteractionId
    lead_id: LeadId
    dialog_id: DialogId
    channel_id: ChannelId
    channel: str
    kind: str  # the connector's interaction kind, or `note`
    direction: Direction
    text: str | None
    subject: str | None
    occurred_at: datetime
    external_id: str
    attachments: tuple[Attachment, ...] = ()
    call: CallInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    delivery_state: str | None = None
    delivery_error: str | None = None
    author: str | None = None
    edited_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Operator:
    id: OperatorId
    login: str
    name: str
    role: str
    skills: tuple[str, ...]
    max_dialogs: int
    extension: str | None
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """What every connector produces: one customer touch, already in the hub's terms.

    Contact details are raw (as the customer typed them); the pipeline normalizes them so
    that every connector gets the same phone and email rules.
    """

    channel_id: ChannelId
    external_id: str
    occurred_at: datetime
    text: str | None = None
    subject: str | None = None
    name: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    identity: Identity | None = None
    attachments: tuple[Attachment, ...] = ()
    call: CallInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    payload_hash: str | None = None
    peer: str | None = None  # where replies go: Telegram chat id, VK peer id, Viber user id
    fresh_external_id: bool = False  # minted by the hub just now, so it cannot be a retry
    # Which conversation of the channel it belongs to: an email thread's root Message-ID;
    # empty for chat channels, where a lead has one conversation per channel.
    thread_key: str = ""
    # Earlier messages of the channel this one answers (an email's References and
    # In-Reply-To): when one is known, the message joins that message's thread.
    thread_refs: tuple[str, ...] = ()
    # Phones seen near the customer's words but not given as theirs (an email signature):
    # offered on the lead for an operator to add, never matched on or added by themselves.
    suggested_phones: tuple[str, ...] = ()


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    SEEN = "seen"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One reply to deliver on a dialog's channel."""

    interaction_id: InteractionId
    dialog_id: DialogId
    channel_id: ChannelId
    peer: str
    text: str | None
    attachments: tuple[Attachment, ...] = ()
    # Who wrote it: an operator's login, an API key's name, or `auto-reply` for a queue's
    # automatic answer (which email marks `Auto-Submitted`, so no two robots loop).
    author: str | None = None


class DeliveryOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # the provider asked us to wait, or could not be reached
    FAILED = "failed"  # final: the provider refused this message


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    provider_message_id: str | None = None
    retry_after: float | None = None
    error: str | None = None

    @classmethod
    def sent(cls, provider_message_id: str | None) -> DeliveryResult:
        return cls(DeliveryOutcome.SENT, provider_message_id=provider_message_id)

    @classmethod
    def retry(cls, error: str, after: float | None = None) -> DeliveryResult:
        return cls(DeliveryOutcome.RETRY, retry_after=after, error=error)

    @classmethod
    def failed(cls, error: str) -> DeliveryResult:
        return cls(DeliveryOutcome.FAILED, error=error)


@dataclass(frozen=True, slots=True)
class Notice:
    """A live notice on the bus (in-process, or NATS between nodes): who must hear about
    which dialog. `kind` is offered, withdrawn, assigned, unassigned, closed, interaction,
    interaction.updated or state (the supervisors' view changed)."""

    kind: str
    dialog_id: int | None
    operators: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
