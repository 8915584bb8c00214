"""Replies: stored first, then delivered on the dialog's channel, retried until final.

`send` records the outbound interaction and makes the first attempt at once, so an operator
or CRM usually gets `sent` (or the provider's refusal) in the API answer. Anything that must
wait (a 429 with `retry_after`, a provider that is down, an older reply of the same dialog
still pending) is picked up by the dispatcher loop, on whichever node gets to it first. A
bounded number of attempts ends in `failed` with the last reason, never in silence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import textwrap
from collections.abc import Mapping, Sequence

import asyncpg

from hub.backoff import backoff
from hub.domain import (
    Attachment,
    Channel,
    DeliveryOutcome,
    DeliveryResult,
    DeliveryState,
    DialogId,
    InteractionId,
    Notice,
    OutboundMessage,
)
from hub.errors import HubError
from hub.metrics import Metrics
from hub.notify import Publish, interaction_changed
from hub.ports.connector import (
    Connector,
    ConnectorDescriptor,
    ConnectorError,
    remember_channel_secrets,
)
from hub.redact import clean
from hub.typing_relay import TypingRelay
from hub.wakeup import sleep_until_woken
from storage import channels, dialogs, outbound
from storage.database import DATABASE_UNAVAILABLE, Conn, report_unavailable
from storage.events import set_actor

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE_SECONDS = 60.0
SEND_TIMEOUT = 45.0
# With nothing pending, a look now and then for replies another node stored and left behind.
IDLE_CHECK_S = 60.0
NOTE = "note"  # the kind of an internal note


class DialogNotFound(HubError):
    """A reply to a dialog that does not exist."""

    def __init__(self, dialog_id: int) -> None:
        super().__init__("not_found", f"dialog {dialog_id} not found")


class CannotSendText(HubError):
    """A reply on a channel that carries no text (a PBX), with no other kind answering it."""

    def __init__(self, kind: str) -> None:
        super().__init__(
            "cannot_send_text",
            f"a {kind} dialog cannot carry text replies; call the customer, or write to them"
            " on another channel of theirs",
        )


class OutboundService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        connectors: Mapping[str, Connector],
        kinds: Mapping[str, ConnectorDescriptor],
        publish: Publish | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics or Metrics()
        self.connectors = connectors
        self.kinds = kinds
        self.publish = publish
        self.max_attempts = MAX_ATTEMPTS
        self.base_delay = 1.0
        self._wake = asyncio.Event()
        self.typing_relay = TypingRelay(pool, connectors, kinds)

    def typing(self, dialog_id: int) -> bool:
        """The operator is writing in the dialog: shown to the customer where the channel
        can (rate-limited; whether a request to the provider is made)."""
        return self.typing_relay.typing(dialog_id)

    async def write_first(
        self,
        lead_id: int,
        channel: Channel,
        address: str,
        subject: str | None,
        operator_id: int | None,
    ) -> DialogId:
        """A new dialog on a channel the customer never wrote on, to one of the lead's
        addresses (a kind with `writes_first`): the writing operator's at once (their console
        hears of it), or, written by a CRM, closed until the customer answers."""
        peer = json.dumps({"to": address, "subject": subject, "first": True}, ensure_ascii=False)
        async with self.pool.acquire() as conn, conn.transaction():
            if operator_id is not None:
                await set_actor(conn, f"operator:{operator_id}")
            dialog_id = await dialogs.start(conn, lead_id, channel.id, peer, operator_id)
        if operator_id is not None and self.publish is not None:
            await self.publish(Notice("assigned", dialog_id, (operator_id,)))
            await self.publish(Notice("state", dialog_id))
        return DialogId(dialog_id)

    async def note(self, dialog_id: int, text: str, author: str) -> InteractionId:
        """An internal note in the dialog: kept with its conversation for colleagues and
        CRMs (`interaction.created`, kind `note`), never sent to the customer, and neither
        an answer nor a first response."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT id, lead_id, channel_id FROM dialogs WHERE id = $1", dialog_id
            )
            if row is None:
                raise DialogNotFound(dialog_id)
            interaction_id = await outbound.insert(
                conn,
                dialog_id=row["id"],
                lead_id=row["lead_id"],
                channel_id=row["channel_id"],
                kind=NOTE,
                text=text,
                author=author,
                state=None,
                error=None,
                external_id=f"note:{secrets.token_hex(8)}",
            )
        await interaction_changed(self.pool, self.publish, interaction_id)
        return interaction_id

    async def send(
        self,
        dialog_id: int,
        text: str | None,
        files: Sequence[Attachment],
        author: str,
        *,
        operator_id: int | None = None,
    ) -> InteractionId:
        """Store a reply and attempt it; `operator_id` marks a human operator's answer, which
        sets the dialog's first-response time once and is credited to them in reports."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT d.id, d.lead_id, d.channel_id, d.peer, d.operator_id, d.status,
                          c.kind, c.enabled, c.settings
                   FROM dialogs d JOIN channels c ON c.id = d.channel_id WHERE d.id = $1""",
                dialog_id,
            )
            if row is None:
                raise DialogNotFound(dialog_id)
            descriptor = self.kinds.get(row["kind"])
            state, error = self._deliverable(row["kind"], descriptor, row["peer"])
            channel_id, kind, peer = row["channel_id"], row["kind"], None
            via = descriptor.capabilities.replies_via if descriptor else None
            if via is not None and not descriptor.capabilities.sends_text:  # type: ignore[union-attr]
                answering = await self._answering(conn, row, via)
                if isinstance(answering, str):
                    state, error = DeliveryState.UNDELIVERABLE, answering
                else:
                    state, error = DeliveryState.PENDING, None
                    channel_id, kind, peer = answering
            elif descriptor is not None:
                kind = descriptor.capabilities.interaction_kind
            interaction_id = await outbound.insert(
                conn,
                dialog_id=row["id"],
                lead_id=row["lead_id"],
                channel_id=channel_id,
                peer=peer,
                kind=kind,
                text=text,
                author=author,
                state=state.value,
                error=error,
                external_id=f"out:{secrets.token_hex(8)}",
                attachments=files,
                operator_id=operator_id,
            )
            if operator_id is not None:
                await conn.execute(
                    "UPDATE dialogs SET first_response_at = COALESCE(first_response_at, now())"
                    " WHERE id = $1 AND status = 'assigned'",
                    row["id"],
                )
        # Whoever holds a dialog of this lead sees the reply in the lead's conversation.
        await interaction_changed(self.pool, self.publish, interaction_id)
        if state == DeliveryState.PENDING:
            if not await self.deliver(interaction_id):
                async with self.pool.acquire() as conn:
                    await outbound.release(conn, interaction_id)
            self._wake.set()  # the dispatcher recomputes when the next retry is due
        return interaction_id

    async def _answering(
        self, conn: Conn, row: asyncpg.Record, via: str
    ) -> tuple[int, str, str] | str:
        """The channel (of kind `via`) that answers a dialog whose own channel cannot, the
        interaction kind and the peer it sends to; or why there is none."""
        named = (row["settings"] or {}).get("reply_via") or None
        candidates = await conn.fetch(
            """SELECT id, name FROM channels WHERE kind = $1 AND enabled
                      AND ($2::text IS NULL OR name = $2) ORDER BY id""",
            via,
            named,
        )
        if not candidates:
            return (
                f"a {row['kind']} dialog is answered by {via}, and no {via} channel is configured"
            )
        if len(candidates) > 1:
            return f"several {via} channels: set the {row['kind']} channel's reply_via"
        answering = self.kinds.get(via)
        if answering is None:
            return f"this hub does not serve {via} channels"
        address = await conn.fetchval(
            "SELECT email FROM lead_emails WHERE lead_id = $1 ORDER BY email LIMIT 1",
            row["lead_id"],
        )
        if address is None:
            return f"the lead has no {via} address"
        # The subject the customer's form gave the dialog (the form's own subject setting),
        # else the start of their latest words: a letter titled only "Re:" reads as spam.
        latest = await conn.fetchrow(
            """SELECT subject, text FROM interactions WHERE dialog_id = $1 AND direction = 'in'
                ORDER BY (subject IS NULL), id DESC LIMIT 1""",
            row["id"],
        )
        subject = None
        if latest is not None:
            subject = latest["subject"] or (
                textwrap.shorten(latest["text"], 60, placeholder="…") if latest["text"] else None
            )
        peer = json.dumps({"to": address, "subject": subject}, ensure_ascii=False)
        return candidates[0]["id"], answering.capabilities.interaction_kind, peer

    def _deliverable(
        self, kind: str, descriptor: ConnectorDescriptor | None, peer: str | None
    ) -> tuple[DeliveryState, str | None]:
        """Whether a reply can be attempted at all, and why not; `CannotSendText` (nothing is
        stored) for a kind that carries no text and names no kind to answer for it."""
        if descriptor is None:
            return DeliveryState.UNDELIVERABLE, f"this hub does not serve {kind} channels"
        capabilities = descriptor.capabilities
        if not capabilities.sends_text:
            via = capabilities.replies_via
            if via is None:
                raise CannotSendText(kind)
            # The kind that answers (email for forms) brings its own delivery; until it is
            # served here, the reply is kept and marked so that the operator sees why.
            return (
                DeliveryState.UNDELIVERABLE,
                f"a {kind} dialog is answered by {via}, and no {via} channel is configured",
            )
        if peer is None:
            return DeliveryState.UNDELIVERABLE, "the customer's chat is not known"
        return DeliveryState.PENDING, None

    async def deliver(self, interaction_id: int | None = None) -> bool:
        """Claim and attempt one due message; False when nothing was due."""
        async with self.pool.acquire() as conn:
            claimed = await outbound.claim(conn, LEASE_SECONDS, interaction_id)
            if claimed is None:
                return False
            channel = await channels.get(conn, claimed.channel_id)
            unsubscribed = claimed.peer is not None and await channels.is_unsubscribed(
                conn, claimed.channel_id, claimed.peer
            )
        connector = self.connectors.get(channel.kind) if channel else None
        if channel is not None:
            remember_channel_secrets(self.kinds, channel)
        if channel is None or connector is None or claimed.peer is None:
            result = DeliveryResult.failed("the channel is gone or not served by this hub")
        elif not channel.enabled:
            result = DeliveryResult.retry("the channel is disabled", after=60)
        elif unsubscribed:
            result = DeliveryResult.failed("the customer unsubscribed from this channel")
        else:
            message = OutboundMessage(
                interaction_id=claimed.interaction_id,
                dialog_id=DialogId(claimed.dialog_id),
                channel_id=claimed.channel_id,
                peer=claimed.peer,
                text=claimed.text,
                attachments=claimed.files,
                author=claimed.author,
            )
            result = await self._attempt(connector, channel, message)
        kind = channel.kind if channel is not None else "unknown"
        self.metrics.outbound.labels(kind, result.outcome.value).inc()
        await self._record(claimed.interaction_id, claimed.attempts, result)
        return True

    async def _attempt(
        self, connector: Connector, channel: Channel, message: OutboundMessage
    ) -> DeliveryResult:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                return await connector.send(channel, message)
        except TimeoutError:
            return DeliveryResult.retry("the provider did not answer in time")
        except ConnectorError as exc:
            return DeliveryResult.retry(exc.note)
        except Exception as exc:
            log.exception("sending interaction %s failed unexpectedly", message.interaction_id)
            return DeliveryResult.retry(f"unexpected error: {type(exc).__name__}")

    async def _record(self, interaction_id: int, attempts: int, result: DeliveryResult) -> None:
        await self._store_outcome(interaction_id, attempts, result)
        await interaction_changed(self.pool, self.publish, interaction_id, "interaction.updated")

    async def _store_outcome(
        self, interaction_id: int, attempts: int, result: DeliveryResult
    ) -> None:
        # A connector's own refusal text may quote the provider; it is shown by the API.
        error = clean(result.error) if result.error is not None else None
        async with self.pool.acquire() as conn:
            if result.outcome == DeliveryOutcome.SENT:
                await outbound.record(
                    conn,
                    interaction_id,
                    state="sent",
                    provider_message_id=result.provider_message_id,
                )
            elif result.outcome == DeliveryOutcome.FAILED:
                await outbound.record(conn, interaction_id, state="failed", error=error)
            elif attempts >= self.max_attempts:
                await outbound.record(
                    conn,
                    interaction_id,
                    state="failed",
                    error=f"gave up after {attempts} attempts: {error}",
                )
            else:
                delay = max(result.retry_after or 0.0, 0.0) or backoff(attempts, self.base_delay)
                await outbound.record(
                    conn, interaction_id, state="pending", error=error, retry_in=delay
                )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """The dispatcher: deliver whatever is due, sleep until the next is, repeat."""
        while True:
            self._wake.clear()
            try:
                while await self.deliver():
                    continue
                async with self.pool.acquire() as conn:
                    due = await outbound.next_due_in(conn)
            except DATABASE_UNAVAILABLE as exc:
                report_unavailable(log, "outbound dispatcher", exc)
                due = 5.0
            await sleep_until_woken(
                self._wake, IDLE_CHECK_S if due is None else min(due, IDLE_CHECK_S)
            )
