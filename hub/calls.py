"""Calls: every PBX event merged into one call, in one transaction, then told to operators.

A provider's events of one call arrive in any order and may repeat, so an event never sets
a call's status directly: it adds facts (when it started, was answered, ended, what the
provider said of the outcome, who rang and who answered), and the status is computed from
all the facts (`status_of`). A repeat of an event already merged changes nothing.

A call whose customer side is a phone number gets a lead (found, or created before the
screen pop is sent) and one interaction in the lead's dialog on the pbx channel. That dialog
waits outside the hub's queues while the call rings: the PBX routes calls. An answered call
is the dialog's human response and makes the dialog its operator's; a missed inbound call
leaves a callback task, routed like any dialog, which the next answered call with the
number (either way) closes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from hub.api.shapes import interaction_json, lead_json
from hub.domain import CallEvent, CallInfo, CallPhase, CallStatus, Direction, LeadId, Notice
from hub.identity import InvalidContact, normalize_phone
from hub.metrics import Metrics
from hub.notify import Publish, tell_holders
from hub.pipeline import lock_key
from hub.ports import CallResult
from routing import router as routing
from storage import calls as store
from storage import interactions, leads
from storage import routing as routing_store
from storage.calls import CallFacts, CallRow, DialogState
from storage.database import Conn
from storage.events import NewEvent
from storage.interactions import call_to_json
from storage.queues import QueueRow

log = logging.getLogger(__name__)

RECENT_HISTORY = 5  # interactions shown with the caller's card
OPERATORS_TTL_S = 5.0


def status_of(facts: CallFacts) -> CallStatus:
    """The status all the facts add up to, whatever order they came in."""
    if facts.ended_at is None and facts.outcome is None:
        return CallStatus.IN_PROGRESS if facts.answered_at else CallStatus.RINGING
    if facts.answered_at is not None or facts.outcome == CallStatus.ANSWERED:
        return CallStatus.ANSWERED
    return CallStatus(facts.outcome) if facts.outcome else CallStatus.MISSED


def answer_time(facts: CallFacts) -> datetime | None:
    """When the call was answered, known or inferred from its end and talk time."""
    if facts.answered_at is not None:
        return facts.answered_at
    if status_of(facts) != CallStatus.ANSWERED:
        return None
    if facts.ended_at is not None and facts.duration_s is not None:
        return facts.ended_at - timedelta(seconds=facts.duration_s)
    return facts.ended_at or facts.started_at


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


@dataclass(frozen=True, slots=True)
class Numbers:
    from_number: str | None
    to_number: str | None
    customer_phone: str | None
    customer_extension: str | None


def merge(old: CallFacts, event: CallEvent, numbers: Numbers, operator_id: int | None) -> CallFacts:
    """The facts after one more event; the first value given for a fact stays, except the
    outcome, which a later end report (a summary after a hang-up) may make precise."""
    ended = event.at if event.phase == CallPhase.ENDED else None
    answered = event.answered_at or (event.at if event.phase == CallPhase.ANSWERED else None)
    rang = old.rang + tuple(e for e in event.ringing if e not in old.rang)
    return CallFacts(
        direction=old.direction or (event.direction.value if event.direction else None),
        from_number=old.from_number or numbers.from_number,
        to_number=old.to_number or numbers.to_number,
        customer_phone=old.customer_phone or numbers.customer_phone,
        outcome=(event.outcome.value if event.outcome else None) or old.outcome,
        cause=event.cause or old.cause,
        rang=rang,
        extension=old.extension or event.answered_by,
        operator_id=old.operator_id or operator_id,
        started_at=_earliest(old.started_at, event.started_at or event.at),
        answered_at=_earliest(old.answered_at, answered),
        ended_at=_earliest(old.ended_at, ended),
        duration_s=event.duration_s if event.duration_s is not None else old.duration_s,
        recording_ref=old.recording_ref or event.recording_ref,
    )


def call_info(call_id: int, facts: CallFacts) -> CallInfo:
    duration = facts.duration_s
    if duration is None and facts.answered_at and facts.ended_at:
        duration = max(0, int((facts.ended_at - facts.answered_at).total_seconds()))
    return CallInfo(
        id=call_id,
        from_number=facts.from_number or "",
        to_number=facts.to_number or "",
        status=status_of(facts),
        duration_s=duration or 0,
        direction=facts.direction,
        extension=facts.extension,
        operator_id=facts.operator_id,
        started_at=facts.started_at.isoformat() if facts.started_at else None,
        answered_at=facts.answered_at.isoformat() if facts.answered_at else None,
        ended_at=facts.ended_at.isoformat() if facts.ended_at else None,
        cause=facts.cause,
    )


@dataclass
class CallChange:
    """What one merged event changed, for the notices sent after the commit."""

    row: CallRow
    facts: CallFacts
    status: CallStatus
    lead_id: int | None = None
    dialog_id: int | None = None
    interaction_id: int | None = None
    interaction_created: bool = False
    answered_now: bool = False
    ended_now: bool = False
    pop: list[int] = field(default_factory=list)
    assigned: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)
    closed: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)
    route: list[int] = field(default_factory=list)
    holders: list[int] = field(default_factory=list)
    recording: bool = False
    blocked: bool = False
    events: list[NewEvent] = field(default_factory=list)

    @property
    def call(self) -> dict[str, Any]:
        return {
            **(call_to_json(call_info(self.row.id, self.facts)) or {}),
            "lead_id": self.lead_id,
            "dialog_id": self.dialog_id,
            "interaction_id": self.interaction_id,
        }


class CallService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        default_region: str,
        publish: Publish,
        metrics: Metrics | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics or Metrics()
        self.region = default_region
        self.publish = publish
        self.router: routing.Router | None = None
        self.wake_media: Callable[[], None] = lambda: None
        self.nudge_supervisors: Callable[[], Awaitable[None]] | None = None
        self._directory: dict[str, int] = {}
        self._directory_read = float("-inf")

    def connect(
        self,
        router: routing.Router,
        wake_media: Callable[[], None],
        nudge_supervisors: Callable[[], Awaitable[None]],
    ) -> None:
        """The parts built after the connectors (which are handed this service)."""
        self.router = router
        self.wake_media = wake_media
        self.nudge_supervisors = nudge_supervisors

    async def _operators(self, names: Sequence[str]) -> dict[str, int]:
        """The operators a PBX names (extensions, else logins), from a directory read at
        most every few seconds: `hub operator add` is seen within OPERATORS_TTL_S."""
        if not names:
            return {}
        now = time.monotonic()
        unknown = any(n not in self._directory for n in names)
        age = now - self._directory_read
        if age > OPERATORS_TTL_S or (unknown and age > 0.5):
            self._directory = await store.extensions(self.pool)
            self._directory_read = now
        return {n: self._directory[n] for n in names if n in self._directory}

    def numbers(self, event: CallEvent) -> Numbers:
        """Phone numbers in E.164; anything else (`anonymous`, an extension, a SIP URI) as
        given. The customer is the caller of an inbound call, the callee of an outbound."""

        def phone(raw: str | None) -> tuple[str | None, str | None, str | None]:
            if raw is None or not raw.strip():
                return None, None, None
            with contextlib.suppress(InvalidContact):
                parsed = normalize_phone(raw, self.region)
                return parsed.e164, parsed.e164, parsed.extension
            return raw.strip()[:100], None, None

        shown_from, from_e164, from_ext = phone(event.from_number)
        shown_to, to_e164, to_ext = phone(event.to_number)
        if event.direction == Direction.OUT:
            return Numbers(shown_from, shown_to, to_e164, to_ext)
        if event.direction == Direction.IN:
            return Numbers(shown_from, shown_to, from_e164, from_ext)
        return Numbers(shown_from, shown_to, None, None)

    async def call_event(self, event: CallEvent) -> CallResult:
        with self.metrics.timing("call"):
            result = await self._call_event(event)
        self.metrics.inbound_outcome("call", result.status)
        return result

    async def _call_event(self, event: CallEvent) -> CallResult:
        numbers = self.numbers(event)
        keys = {lock_key(f"call:{event.channel_id}:{event.call_id}")}
        if numbers.customer_phone:
            keys.add(lock_key(f"phone:{numbers.customer_phone}"))
        # Read before the transaction: it holds a connection, the directory takes another.
        operators = await self._operators(
            [*event.ringing, *([event.answered_by] if event.answered_by else [])]
        )
        # The queue a ringing group stands for (read now, for the same reason).
        group_queue = await self._group_queue(event.channel_id, event.group)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock_call(conn, event.channel_id, event.call_id, sorted(keys))
            if event.key in row.applied:
                lead = LeadId(row.lead_id) if row.lead_id is not None else None
                return CallResult("duplicate", row.id, row.status, lead, row.blocked)
            change = await self._apply(conn, row, event, numbers, operators, group_queue)
        await self._tell(change)
        lead = LeadId(change.lead_id) if change.lead_id is not None else None
        return CallResult("applied", row.id, change.status.value, lead, blocked=change.blocked)

    async def _apply(
        self,
        conn: Conn,
        row: CallRow,
        event: CallEvent,
        numbers: Numbers,
        operators: dict[str, int],
        group_queue: QueueRow | None,
    ) -> CallChange:
        old = row.facts
        answering = operators.get(event.answered_by) if event.answered_by else None
        facts = merge(old, event, numbers, answering)
        old_status = status_of(old) if row.applied else None
        status = status_of(facts)
        change = CallChange(row=row, facts=facts, status=status, lead_id=row.lead_id)
        change.dialog_id, change.interaction_id = row.dialog_id, row.interaction_id
        dialog = row.dialog
        change.blocked = row.blocked
        if row.interaction_id is None and facts.customer_phone:
            dialog = await self._first_sight(conn, change, event, numbers)
        was_answered = old.answered_at is not None or old_status == CallStatus.ANSWERED
        change.answered_now = (
            status in (CallStatus.IN_PROGRESS, CallStatus.ANSWERED) and not was_answered
        )
        change.ended_now = status.final and not (old_status is not None and old_status.final)
        inbound = facts.direction == Direction.IN.value

        if dialog is not None and not inbound and facts.operator_id:
            dialog = await self._assign(conn, change, dialog, facts.operator_id)
        if change.answered_now:
            at = answer_time(facts) or event.at
            if dialog is not None:
                await store.first_response(conn, dialog.id, at)
                if facts.operator_id:
                    dialog = await self._assign(conn, change, dialog, facts.operator_id)
            if facts.customer_phone:
                await self._close_callbacks(conn, change, facts, row.id, dialog)
            change.events.append(self._event("call.answered", change))
        if change.ended_now:
            dialog = await self._on_end(conn, change, dialog, inbound)
        if (
            change.interaction_id is not None
            and facts.recording_ref
            and (change.interaction_created or old.recording_ref != facts.recording_ref)
        ):
            await store.add_recording(
                conn,
                change.interaction_id,
                f"call-{row.id}.mp3",
                facts.recording_ref,
                event.recording_delay_s,
            )
            change.recording = True

        popped = list(row.popped)
        if event.phase == CallPhase.RINGING and inbound and not status.final:
            targets = [operators[n] for n in event.ringing if n in operators]
            if not targets and group_queue is not None:
                online = await routing_store.candidates(conn, group_queue.skills, [])
                targets = [c.operator_id for c in online]
            change.pop = [t for t in dict.fromkeys(targets) if t not in popped]
            popped += change.pop
        change.row = replace(row, popped=tuple(popped))
        if change.lead_id is not None:
            change.events = [replace(e, lead_id=change.lead_id) for e in change.events]
        change.holders = await store.save(
            conn,
            row.id,
            facts,
            status.value,
            applied=event.key,
            popped=popped,
            dialog_id=change.dialog_id,
            interaction_id=change.interaction_id,
            shown=None if change.interaction_created else change.call,
            new_events=change.events,
            lead_id=change.lead_id,
        )
        return change

    async def _on_end(
        self, conn: Conn, change: CallChange, dialog: DialogState | None, inbound: bool
    ) -> DialogState | None:
        """A missed inbound call leaves a callback (routed with its dialog); a dialog the
        call opened outside the hub's queues becomes its operator's, or is done."""
        facts = change.facts
        change.events.append(self._event("call.ended", change))
        if inbound and change.status != CallStatus.ANSWERED:
            missed = self._event("call.missed", change)
            if change.lead_id is not None:
                # What a CRM is told of a missed call names the caller, not just their id.
                lead = await leads.get(conn, change.lead_id)
                missed = replace(
                    missed, data={**missed.data, "lead": lead_json(lead) if lead else None}
                )
            change.events.append(missed)
            # A blocked caller (rejected busy on purpose) is not called back.
            if dialog is not None and facts.customer_phone and not change.blocked:
                if await store.open_callback(conn, change.row.id, dialog.id, facts.customer_phone):
                    change.route.append(dialog.id)
                    dialog = replace(dialog, routable=True)
                change.events.append(self._event("callback.created", change))
        if dialog is not None and dialog.status == "queued" and not dialog.routable:
            if facts.operator_id:
                dialog = await self._assign(conn, change, dialog, facts.operator_id)
            elif (offered := await store.close_waiting(conn, dialog.id)) is not None:
                change.closed.append((dialog.id, offered))
        return dialog

    async def _first_sight(
        self, conn: Conn, change: CallChange, event: CallEvent, numbers: Numbers
    ) -> DialogState:
        """The first event that names the customer's number: their lead (found or made),
        the dialog on the channel, the call's interaction, and the events of all three."""
        row, facts = change.row, change.facts
        assert facts.customer_phone is not None
        lead_id, lead_created, change.blocked = await store.lead_for_phone(
            conn,
            facts.customer_phone,
            numbers.customer_extension,
            source={"kind": "call", "channel_id": row.channel_id, "direction": facts.direction},
        )
        dialog = await store.open_dialog(conn, lead_id, row.channel_id, facts.customer_phone)
        change.lead_id, change.dialog_id = lead_id, dialog.id
        change.interaction_id = await store.add_interaction(
            conn,
            lead_id=lead_id,
            dialog_id=dialog.id,
            channel_id=row.channel_id,
            direction=facts.direction or "in",
            occurred_at=facts.started_at or event.at,
            external_id=f"call:{row.provider_call_id}",
            call=change.call,
        )
        change.interaction_created = True
        # The lead's first events of this call, in the order they happened.
        made = [("lead.created", lead_created), ("dialog.created", dialog.created)]
        by = "customer" if facts.direction != Direction.OUT.value else "system"
        change.events += [
            NewEvent(
                kind,
                lead_id=lead_id,
                dialog_id=dialog.id,
                actor=by,
                data={"channel_id": row.channel_id},
            )
            for kind, wanted in made
            if wanted
        ]
        change.events.append(
            NewEvent(
                "interaction.created",
                lead_id=lead_id,
                dialog_id=dialog.id,
                interaction_id=change.interaction_id,
                data={
                    "channel_id": row.channel_id,
                    "kind": "call",
                    "direction": facts.direction or "in",
                },
                actor=by,
            )
        )
        return dialog

    def _event(self, kind: str, change: CallChange) -> NewEvent:
        return NewEvent(
            kind,
            lead_id=change.lead_id,
            dialog_id=change.dialog_id,
            interaction_id=change.interaction_id,
            operator_id=change.facts.operator_id,
            data={"call": change.call},
            actor="system",
        )

    async def _assign(
        self, conn: Conn, change: CallChange, dialog: DialogState, operator_id: int
    ) -> DialogState:
        if dialog.status not in ("queued", "offered"):
            return dialog
        offered = await store.assign(conn, dialog.id, operator_id)
        if offered is None:
            return dialog
        change.assigned.append((dialog.id, operator_id, offered))
        return replace(dialog, status="assigned", operator_id=operator_id, routable=False)

    async def _close_callbacks(
        self,
        conn: Conn,
        change: CallChange,
        facts: CallFacts,
        call_id: int,
        dialog: DialogState | None,
    ) -> None:
        """An answered call with the number does the callbacks left by earlier missed
        calls; a callback dialog nobody took is closed (this call's own, when nobody in the
        hub answered it)."""
        assert facts.customer_phone is not None
        before = facts.started_at or datetime.now(UTC)
        for callback_id, dialog_id, missed in await store.close_callbacks(
            conn, facts.customer_phone, call_id, before
        ):
            change.events.append(
                replace(
                    self._event("callback.closed", change),
                    dialog_id=dialog_id,
                    data={"callback_id": callback_id, "missed_call_id": missed, "by_call": call_id},
                )
            )
            if dialog is not None and dialog_id == dialog.id and dialog.status == "assigned":
                continue
            offered = await store.close_waiting(conn, dialog_id)
            if offered is not None:
                change.closed.append((dialog_id, offered))

    async def _group_queue(self, channel_id: int, group: str | None) -> QueueRow | None:
        """The queue whose online operators a ringing group stands for: the hub queue of that
        name, else the pbx channel's queue (the default queue without any)."""
        if group is None or self.router is None:
            return None
        channel = await self.pool.fetchval("SELECT name FROM channels WHERE id = $1", channel_id)
        queues = await self.router.queues()
        named = next((q for q in queues if group and q.name == group), None)
        return named or self.router.queue_for(None, channel or "", queues)

    async def _tell(self, change: CallChange) -> None:
        call = change.call
        if change.pop:
            lead, recent = await self._card(change.lead_id, change.interaction_id)
            await self.publish(
                Notice(
                    "call.ringing",
                    None,
                    tuple(change.pop),
                    {"call": call, "lead": lead, "recent": recent},
                )
            )
        operator = change.facts.operator_id
        told = tuple(dict.fromkeys([*change.row.popped, *([operator] if operator else [])]))
        if change.answered_now and told:
            await self.publish(Notice("call.answered", None, told, {"call": call}))
        if change.ended_now and told:
            await self.publish(Notice("call.ended", None, told, {"call": call}))
        for dialog_id, operator_id, offered in change.assigned:
            await self.publish(Notice("assigned", dialog_id, (operator_id,)))
            others = tuple(o for o in offered if o != operator_id)
            if others:
                await self.publish(Notice("withdrawn", dialog_id, others, {"reason": "taken"}))
        for dialog_id, offered in change.closed:
            await self.publish(Notice("closed", dialog_id, offered))
        if change.interaction_id is not None:
            await tell_holders(
                self.publish,
                change.holders,
                change.dialog_id,
                change.interaction_id,
                "interaction" if change.interaction_created else "interaction.updated",
            )
        if change.recording:
            self.wake_media()
        for dialog_id in change.route:
            if self.router is not None:
                self.router.submit(dialog_id)
        if change.assigned or change.closed or change.route:
            if self.nudge_supervisors is not None:
                await self.nudge_supervisors()
            if self.router is not None and change.closed:
                self.router.wake()

    async def _card(
        self, lead_id: int | None, interaction_id: int | None
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The caller's lead and its latest interactions, for the screen pop."""
        if lead_id is None:
            return None, []
        async with self.pool.acquire() as conn:
            lead = await leads.get(conn, lead_id)
            history = await interactions.of_lead(
                conn, lead_id, before_id=interaction_id or 2**62, limit=RECENT_HISTORY
            )
        if lead is None:
            return None, []
        return lead_json(lead), [interaction_json(i) for i in history]


def rows_to_json(rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """Calls as the calls API lists them."""
    items = []
    for r in rows:
        facts = store.facts_of(r)
        items.append(
            {
                **(call_to_json(call_info(r["id"], facts)) or {}),
                "channel": r["channel_name"],
                "lead_id": r["lead_id"],
                "dialog_id": r["dialog_id"],
                "interaction_id": r["interaction_id"],
                "rang": list(r["rang"]),
            }
        )
    return items
