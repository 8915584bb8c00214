"""The ingest pipeline: one customer touch in, one committed transaction out.

Every connector hands an `InboundMessage` here. In one transaction the pipeline
recognises a provider's retry by `(channel, external id)`, finds the lead (channel
identity, then phone, then email), creates it or teaches it new details, threads the
interaction into the lead's open dialog on that channel, and runs the in-transaction
hooks that later stages (routing, the webhook outbox) plug in. Only after the commit does
the provider get its 200, so an acknowledged event is never lost and a retry is never
doubled.

Events that arrive together share a commit (hub.group_commit): each is still its own
`hub_ingest` call with its own result, and its request is answered after that commit.

Concurrency: the first contacts of one new customer can arrive at once (a double-clicked
form, a provider retrying in parallel). Before looking anything up, the transaction takes
advisory locks on the normal forms of every key it may create, in a fixed order, so such
transactions queue behind each other and the second sees the lead the first created.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import cast

import asyncpg

from hub import tracing
from hub.attachments import safe_display_name
from hub.domain import (
    AttachmentState,
    DialogId,
    Identity,
    InboundMessage,
    InteractionId,
    LeadId,
    Phone,
    UnsortedId,
)
from hub.group_commit import GroupCommit
from hub.identity import InvalidContact, clean_name, normalize_email, normalize_phone
from hub.metrics import Metrics
from hub.ports import (
    ChannelPosition,
    IdempotencyConflict,
    IngestResult,
    OnUnknown,
    UnusableMessage,
)
from hub.text import scrub, scrub_text, unusable_in
from storage.channels import save_state, store_state
from storage.database import Conn
from storage.ingest import IngestCall, IngestRow, keys_taken_first
from storage.ingest import ingest as ingest_row
from storage.ingest import ingest_many as ingest_rows
from storage.interactions import call_to_json
from storage.unsorted_inbox import inbound_to_json

log = logging.getLogger(__name__)

InTransactionHook = Callable[[Conn, IngestResult], Awaitable[None]]
AfterCommitHook = Callable[[IngestResult], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class NormalContacts:
    phones: tuple[Phone, ...]
    emails: tuple[str, ...]
    name: str | None
    # Details that are not a phone or an email as written ("phone" → "8-800-FLOWERS"):
    # kept in the interaction's fields for a person to read, never matched on.
    as_written: tuple[tuple[str, str], ...] = ()
    phone_suggestions: tuple[str, ...] = ()  # E.164, none of them among `phones`


def normalize_contacts(message: InboundMessage, region: str, *, strict: bool) -> NormalContacts:
    """Normal forms of the message's details. A detail that cannot be understood is kept
    as written, so a typo never loses a lead; `strict` (forms, the API) refuses the
    message only when nothing usable is left: no phone, no email and no name."""
    phones: dict[str, Phone] = {}
    as_written: list[tuple[str, str]] = []
    errors: list[InvalidContact] = []
    for raw in message.phones:
        try:
            phone = normalize_phone(raw, region)
        except InvalidContact as exc:
            errors.append(exc)
            as_written.append(("phone", raw[:100]))
            continue
        phones.setdefault(phone.e164, phone)
    emails: dict[str, None] = {}
    for raw in message.emails:
        try:
            emails[normalize_email(raw)] = None
        except InvalidContact as exc:
            errors.append(exc)
            as_written.append(("email", raw[:254]))
    name = clean_name(message.name)
    if strict and errors and not (phones or emails or name):
        raise errors[0]
    suggestions: dict[str, None] = {}
    for raw in message.suggested_phones:
        with contextlib.suppress(InvalidContact):  # a guess that is no phone is no loss
            e164 = normalize_phone(raw, region).e164
            if e164 not in phones:
                suggestions[e164] = None
    return NormalContacts(
        tuple(phones.values()), tuple(emails), name, tuple(as_written), tuple(suggestions)
    )


def keep_as_written(message: InboundMessage, contacts: NormalContacts) -> InboundMessage:
    """The message with the details that were not understood added to its fields."""
    if not contacts.as_written:
        return message
    fields = dict(message.extra.get("fields") or {})
    for key, raw in contacts.as_written:
        name = key if key not in fields else f"{key} (as written)"
        fields[name] = raw
    return replace(message, extra={**message.extra, "fields": fields})


def _optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def usable_message(message: InboundMessage) -> InboundMessage:
    """The message as PostgreSQL can store it: `UnusableMessage` when a connector passed
    a value of the wrong type (a provider's event of an unexpected shape), NULs and lone
    surrogates cleaned from a provider's text (`hub.text`), attachment names made safe to
    show and to download (no path, no control characters)."""
    if not isinstance(message.external_id, str) or not message.external_id:
        raise UnusableMessage("external_id must be a non-empty string")
    if not isinstance(message.thread_key, str) or len(message.thread_key) > 1000:
        raise UnusableMessage("thread_key must be a string of at most 1000 characters")
    if not all(isinstance(r, str) for r in message.thread_refs) or len(message.thread_refs) > 100:
        raise UnusableMessage("thread_refs must be at most 100 strings")
    for name in ("text", "subject", "name", "peer"):
        if not _optional_text(getattr(message, name)):
            raise UnusableMessage(f"{name} must be a string")
    contacts = (*message.phones, *message.emails, *message.suggested_phones)
    if not all(isinstance(c, str) for c in contacts):
        raise UnusableMessage("phones and emails must be strings")
    if message.identity is not None and not isinstance(message.identity.external_id, str):
        raise UnusableMessage("the identity's id must be a string")
    if not isinstance(message.extra, dict) or not all(
        isinstance(a.name, str) for a in message.attachments
    ):
        raise UnusableMessage("extra must be an object and attachment names strings")
    attachments = tuple(
        a if a.name == (safe := safe_display_name(a.name)) else replace(a, name=safe)
        for a in message.attachments
    )
    fields = (
        message.external_id,
        message.text,
        message.subject,
        message.name,
        message.peer,
        contacts,
        message.identity.external_id if message.identity else None,
        message.extra,
        message.thread_key,
        message.thread_refs,
    )
    if attachments == message.attachments and not unusable_in(fields):
        return message
    return replace(
        message,
        external_id=scrub_text(message.external_id),
        text=scrub(message.text),
        subject=scrub(message.subject),
        name=scrub(message.name),
        peer=scrub(message.peer),
        phones=scrub(message.phones),
        emails=scrub(message.emails),
        identity=replace(message.identity, external_id=scrub_text(message.identity.external_id))
        if message.identity
        else None,
        extra=scrub(message.extra),
        thread_key=scrub_text(message.thread_key),
        thread_refs=scrub(message.thread_refs),
        attachments=attachments,
    )


def lock_key(text: str) -> int:
    """A stable signed 64-bit advisory-lock key for one normal form."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


def contact_lock_keys(
    channel_id: int,
    external_id: str,
    identity: Identity | None,
    contacts: NormalContacts,
    fresh: bool = False,
) -> list[int]:
    keys = set() if fresh else {lock_key(f"ext:{channel_id}:{external_id}")}
    if identity:
        keys.add(lock_key(f"identity:{identity.kind}:{identity.external_id}"))
    keys.update(lock_key(f"phone:{p.e164}") for p in contacts.phones)
    keys.update(lock_key(f"email:{e}") for e in contacts.emails)
    return sorted(keys)


async def take_locks(conn: Conn, keys: Sequence[int]) -> None:
    # unnest yields the sorted keys in order, so every transaction locks in one order.
    await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", keys)


BATCH_LANES = 2  # transactions one batch is stored in at once


def thread_tokens(message: InboundMessage) -> tuple[str, ...]:
    """The ids that tie a message to a thread: its own, its thread's, those it refers to."""
    return (message.external_id, *filter(None, [message.thread_key]), *message.thread_refs)


def batch_lanes(
    messages: Sequence[tuple[Sequence[int], Sequence[str]]], lanes: int
) -> list[list[int]]:
    """A batch's messages (each given by its lock keys and thread tokens) as at most
    `lanes` lists of their indices, in order: two that share a key (one customer, one
    provider id) or a thread token (an answer and what it answers) are in one list, so
    lists can be stored side by side without waiting on each other or threading wrongly."""
    parent = list(range(len(messages)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    owner: dict[object, int] = {}
    for n, (keys, tokens) in enumerate(messages):
        for token in (*keys, *(f"thread:{t}" for t in tokens)):
            if token in owner:
                parent[root(n)] = root(owner[token])
            else:
                owner[token] = n
    groups: dict[int, list[int]] = {}
    for n in range(len(messages)):
        groups.setdefault(root(n), []).append(n)
    filled: list[list[int]] = [[] for _ in range(min(lanes, len(groups)))]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(filled, key=len).extend(group)
    return [sorted(lane) for lane in filled]


def _keys(message: InboundMessage, contacts: NormalContacts) -> list[int]:
    return contact_lock_keys(
        message.channel_id,
        message.external_id,
        message.identity,
        contacts,
        fresh=message.fresh_external_id,
    )


class IngestPipeline:
    def __init__(
        self,
        pool: asyncpg.Pool,
        default_region: str = "RU",
        reopen_seconds: int = 86400,
        metrics: Metrics | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics or Metrics()
        self.commits = GroupCommit(pool)
        self.default_region = default_region
        self.reopen_seconds = reopen_seconds
        self.in_transaction: list[InTransactionHook] = []
        self.after_commit: list[AfterCommitHook] = []

    async def ingest(
        self,
        message: InboundMessage,
        kind: str,
        *,
        on_unknown: OnUnknown = "create",
        strict_contacts: bool = False,
    ) -> IngestResult:
        """Store one inbound touch in its own transaction, then run the after-commit hooks."""
        # A refused message is counted where it was refused: by the provider's route (a 4xx)
        # or by the poller that took it (`ingest_many`).
        message = usable_message(message)
        contacts = normalize_contacts(message, self.default_region, strict=strict_contacts)
        message = keep_as_written(message, contacts)
        with self.metrics.timing(kind):
            if self.in_transaction:
                async with self.pool.acquire() as conn, conn.transaction():
                    result = await self.ingest_on(
                        conn, message, kind, contacts, on_unknown=on_unknown
                    )
            else:
                # One statement, committed with whatever else arrives meanwhile.
                call = self._call(
                    message, kind, contacts, _keys(message, contacts), on_unknown, None
                )
                result = self._result(await self.commits.ingest(call), message)
        self.metrics.inbound_outcome(kind, result.status)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s event %s: interaction %s, lead %s, dialog %s",
                kind,
                result.status,
                result.interaction_id,
                result.lead_id,
                result.dialog_id,
            )
        await self.announce(result)
        return result

    async def ingest_on(
        self,
        conn: Conn,
        message: InboundMessage,
        kind: str,
        contacts: NormalContacts,
        *,
        on_unknown: OnUnknown = "create",
        lead_id: LeadId | None = None,
    ) -> IngestResult:
        """The pipeline inside the caller's transaction; `lead_id` forces the lead, as
        linking an unsorted contact to a known lead does. The caller runs `announce`
        after its commit."""
        keys = _keys(message, contacts)
        result = await self._ingest_locked(conn, message, kind, contacts, keys, on_unknown, lead_id)
        if result.status == "created":
            for hook in self.in_transaction:
                await hook(conn, result)
        return result

    async def announce(self, result: IngestResult) -> None:
        if result.status != "created":
            return
        for after in self.after_commit:
            try:
                await after(result)
            except Exception:
                log.exception("after-commit hook failed; the event itself is stored")

    async def ingest_many(
        self,
        messages: Sequence[InboundMessage],
        kind: str,
        *,
        position: ChannelPosition | None = None,
    ) -> list[IngestResult | UnusableMessage]:
        """A poller's batch in one transaction with its new position, then the after-commit
        hooks of each message in order. A batch the database refuses as a whole (a deadlock
        with another node, one message it cannot take) is stored again one message at a
        time, so one bad message costs its batch only speed."""
        outcomes: list[IngestResult | UnusableMessage | None] = []
        ready: list[tuple[int, InboundMessage, NormalContacts]] = []
        for message in messages:
            if message.payload_hash is not None:
                raise ValueError("messages with an idempotency key are ingested one by one")
            try:
                message = usable_message(message)
            except UnusableMessage as exc:
                self.metrics.rejected(kind)
                outcomes.append(exc)
                continue
            contacts = normalize_contacts(message, self.default_region, strict=False)
            ready.append((len(outcomes), keep_as_written(message, contacts), contacts))
            outcomes.append(None)  # its result, once stored
        started = time.perf_counter()
        try:
            results = await self._ingest_batch(ready, kind, position)
        except asyncpg.PostgresError as exc:
            log.warning(
                "a batch of %d %s messages was refused as a whole (%s); storing them one by one",
                len(ready),
                kind,
                type(exc).__name__,
            )
            for index, _, _ in ready:
                outcomes[index] = await self.ingest(messages[index], kind)  # as it came
            if position is not None:
                await save_state(self.pool, position.channel_id, position.state)
        else:
            took = time.perf_counter() - started  # each message of the batch waited as long
            for (index, _, _), result in zip(ready, results, strict=True):
                outcomes[index] = result
                self.metrics.ingest_seconds.labels(kind).observe(took)
                self.metrics.inbound_outcome(kind, result.status)
                await self.announce(result)
        return [outcome for outcome in outcomes if outcome is not None]

    async def _ingest_batch(
        self,
        ready: Sequence[tuple[int, InboundMessage, NormalContacts]],
        kind: str,
        position: ChannelPosition | None,
    ) -> list[IngestResult]:
        """The batch in up to BATCH_LANES transactions at once (one database core each),
        split so that messages that may touch one lead or one thread share a transaction
        and keep their order; the position is saved with a lone lane, or after all."""
        keys = [
            contact_lock_keys(
                message.channel_id,
                message.external_id,
                message.identity,
                contacts,
                fresh=message.fresh_external_id,
            )
            for _, message, contacts in ready
        ]
        lanes = batch_lanes(
            [(k, thread_tokens(message)) for k, (_, message, _) in zip(keys, ready, strict=True)],
            BATCH_LANES,
        )
        if len(lanes) <= 1:
            return await self._ingest_lane(ready, keys, lanes[0] if lanes else [], kind, position)
        stored = await asyncio.gather(
            *(self._ingest_lane(ready, keys, lane, kind, None) for lane in lanes),
            return_exceptions=True,
        )
        for outcome in stored:
            if isinstance(outcome, BaseException):
                raise outcome  # what committed is recognised when stored one by one
        if position is not None:
            # After every lane's commit, so it never runs ahead of what is stored.
            await save_state(self.pool, position.channel_id, position.state)
        by_index = {
            n: result
            for lane, results in zip(lanes, cast(list[list[IngestResult]], stored), strict=True)
            for n, result in zip(lane, results, strict=True)
        }
        return [by_index[n] for n in range(len(ready))]

    async def _ingest_lane(
        self,
        ready: Sequence[tuple[int, InboundMessage, NormalContacts]],
        keys: Sequence[Sequence[int]],
        lane: Sequence[int],
        kind: str,
        position: ChannelPosition | None,
    ) -> list[IngestResult]:
        calls = keys_taken_first(
            [self._call(ready[n][1], kind, ready[n][2], keys[n], "create", None) for n in lane]
        )
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await ingest_rows(conn, calls)
            results = [self._result(row, ready[n][1]) for row, n in zip(rows, lane, strict=True)]
            for result in results:
                if result.status == "created":
                    for hook in self.in_transaction:
                        await hook(conn, result)
            if position is not None:
                await store_state(conn, position.channel_id, position.state)
        return results

    async def _ingest_locked(
        self,
        conn: Conn,
        message: InboundMessage,
        kind: str,
        contacts: NormalContacts,
        keys: list[int],
        on_unknown: OnUnknown,
        forced_lead: LeadId | None,
    ) -> IngestResult:
        row = await ingest_row(
            conn, self._call(message, kind, contacts, keys, on_unknown, forced_lead)
        )
        return self._result(row, message)

    def _call(
        self,
        message: InboundMessage,
        kind: str,
        contacts: NormalContacts,
        keys: Sequence[int],
        on_unknown: OnUnknown,
        forced_lead: LeadId | None,
    ) -> IngestCall:
        return IngestCall(
            lock_keys=keys,
            message=message,
            kind=kind,
            call=call_to_json(message.call),
            name=contacts.name,
            phones=contacts.phones,
            emails=contacts.emails,
            identity=message.identity,
            on_unknown=on_unknown,
            forced_lead=forced_lead,
            inbound_json=inbound_to_json(message) if on_unknown == "stage" else None,
            reopen_seconds=self.reopen_seconds,
            phone_suggestions=contacts.phone_suggestions,
            trace_id=tracing.current(),
        )

    @staticmethod
    def _result(row: IngestRow, message: InboundMessage) -> IngestResult:
        if row.status in ("duplicate", "staged"):
            if row.stored_hash and message.payload_hash and row.stored_hash != message.payload_hash:
                raise IdempotencyConflict(row.interaction_id or row.unsorted_id)
            if row.status == "staged":
                return IngestResult(status="staged", unsorted_id=UnsortedId(row.unsorted_id or 0))
            return IngestResult(
                status="duplicate",
                interaction_id=InteractionId(row.interaction_id or 0),
                lead_id=LeadId(row.lead_id or 0),
                dialog_id=DialogId(row.dialog_id or 0),
            )
        lead_id, dialog_id = LeadId(row.lead_id or 0), DialogId(row.dialog_id or 0)
        interaction_id = InteractionId(row.interaction_id or 0)
        return IngestResult(
            status="created",
            interaction_id=interaction_id,
            lead_id=lead_id,
            dialog_id=dialog_id,
            lead_created=row.lead_created,
            dialog_created=row.dialog_created,
            dialog_reopened=row.dialog_reopened,
            operator_id=row.operator_id,
            pending_media=any(a.state == AttachmentState.PENDING for a in message.attachments),
            holders=row.holders,
        )
