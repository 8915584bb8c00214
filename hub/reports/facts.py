"""How the domain-event log becomes report facts: one care cycle of a dialog at a time.

A cycle starts when a dialog is created or reopened and ends when it is closed. What counts
as an answer is decided here and nowhere else: a public reply whose event names the human
operator who wrote it, or the answer of a call. Auto-replies, messages a CRM sends through
the API and internal notes carry no operator and stop no clock.

Everything here is a pure fold over events, so the tests can replay scripted timelines
with exact times; storage/report_facts.py reads the events and writes the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from routing.hours import BusinessHours
from storage.events import StoredEvent


@dataclass(slots=True)
class Offer:
    operator_id: int
    offered_at: datetime
    outcome: str | None = None
    ended_at: datetime | None = None
    id: int | None = None
    changed: bool = True


@dataclass(slots=True)
class Cycle:
    dialog_id: int
    cycle: int
    lead_id: int
    channel_id: int
    started_at: datetime
    queue_id: int | None = None
    held_by: int | None = None
    first_assigned_at: datetime | None = None
    first_response_at: datetime | None = None
    first_response_by: int | None = None
    first_response_via: str | None = None
    closed_at: datetime | None = None
    last_customer_at: datetime | None = None
    last_reply_at: datetime | None = None
    awaiting_since: datetime | None = None
    next_response_s: list[float] = field(default_factory=list)
    messages_in: int = 0
    messages_out: int = 0
    offers: int = 0
    transfers: int = 0
    backfilled: bool = False
    id: int | None = None
    open_offers: list[Offer] = field(default_factory=list)
    ended_offers: list[Offer] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def business_seconds(self, hours: BusinessHours | None) -> dict[str, float | None]:
        return business_seconds(
            hours, self.started_at, self.first_assigned_at, self.first_response_at, self.closed_at
        )


def business_seconds(
    hours: BusinessHours | None,
    started_at: datetime,
    first_assigned_at: datetime | None,
    first_response_at: datetime | None,
    closed_at: datetime | None,
) -> dict[str, float | None]:
    """A cycle's waits counted only while its queue was open (every second when it keeps no
    hours)."""

    def between(end: datetime | None) -> float | None:
        if end is None:
            return None
        if hours is None:
            return (end - started_at).total_seconds()
        return hours.seconds_between(started_at, end)

    return {
        "queue_wait_bh_s": between(first_assigned_at),
        "first_response_bh_s": between(first_response_at),
        "resolution_bh_s": between(closed_at),
    }


CYCLE_EVENTS = frozenset(
    {
        "dialog.created",
        "dialog.reopened",
        "dialog.queued",
        "dialog.offered",
        "dialog.assigned",
        "dialog.transferred",
        "dialog.closed",
        "interaction.created",
        "call.answered",
    }
)
CALL_EVENTS = frozenset({"call.answered", "call.ended", "call.missed"})


def starts_cycle(event: StoredEvent) -> bool:
    return event.type in ("dialog.created", "dialog.reopened")


def new_cycle(event: StoredEvent, previous: Cycle | None) -> Cycle:
    assert event.dialog_id is not None and event.lead_id is not None
    channel = event.data.get("channel_id")
    return Cycle(
        dialog_id=event.dialog_id,
        cycle=previous.cycle + 1 if previous is not None else 1,
        lead_id=event.lead_id,
        channel_id=int(channel)
        if channel is not None
        else (previous.channel_id if previous else 0),
        started_at=event.occurred_at,
        queue_id=previous.queue_id if previous is not None else None,
    )


def apply(cycle: Cycle, event: StoredEvent) -> None:
    """Fold one event of the cycle's dialog into it (the cycle's own events only: a
    closed cycle takes no more but its own late call facts)."""
    at, kind = event.occurred_at, event.type
    if kind == "dialog.offered":
        queue = event.data.get("queue_id")
        if queue is not None:
            cycle.queue_id = int(queue)
        for operator in event.data.get("operators") or ():
            cycle.open_offers.append(Offer(int(operator), at))
            cycle.offers += 1
    elif kind == "dialog.queued":
        queue = event.data.get("queue_id")
        if queue is not None:
            cycle.queue_id = int(queue)
        reason = event.data.get("reason")
        declined = {int(o) for o in event.data.get("declined_by") or ()}
        for offer in list(cycle.open_offers):
            if reason == "offer_expired":
                _end(cycle, offer, "expired", at)
            elif reason == "offer_declined" and (not declined or offer.operator_id in declined):
                _end(cycle, offer, "declined", at)
            else:
                _end(cycle, offer, "withdrawn", at)
    elif kind == "dialog.assigned":
        if cycle.first_assigned_at is None:
            cycle.first_assigned_at = at
        cycle.held_by = event.operator_id
        accepted = event.data.get("via") == "accept"
        for offer in list(cycle.open_offers):
            took = accepted and offer.operator_id == event.operator_id
            _end(cycle, offer, "accepted" if took else "withdrawn", at)
    elif kind == "dialog.transferred":
        cycle.transfers += 1
    elif kind == "dialog.closed":
        if cycle.closed_at is None:
            cycle.closed_at = at
        for offer in list(cycle.open_offers):
            _end(cycle, offer, "withdrawn", at)
    elif kind == "interaction.created" and not cycle.closed:
        _interaction(cycle, event)
    elif kind == "call.answered" and not cycle.closed:
        call = event.data.get("call") or {}
        answered = _time(call.get("answered_at")) or at
        operator = call.get("operator_id")
        _answer(cycle, answered, int(operator) if operator is not None else None, "call")
        # Both sides spoke: the customer is not silent after this answer.
        cycle.last_customer_at = answered


def _interaction(cycle: Cycle, event: StoredEvent) -> None:
    data, at = event.data, event.occurred_at
    if data.get("kind") == "note":
        return
    if data.get("direction") == "in":
        cycle.messages_in += 1
        cycle.last_customer_at = at
        if cycle.first_response_at is not None and cycle.awaiting_since is None:
            cycle.awaiting_since = at
        return
    if data.get("kind") == "call":
        return  # an outbound call answers when it is answered (call.answered)
    if event.operator_id is not None:
        cycle.messages_out += 1
        _answer(cycle, at, event.operator_id, "message")


def _answer(cycle: Cycle, at: datetime, operator: int | None, via: str) -> None:
    cycle.last_reply_at = at
    if cycle.first_response_at is None:
        cycle.first_response_at, cycle.first_response_via = at, via
        cycle.first_response_by = operator if operator is not None else cycle.held_by
        cycle.awaiting_since = None
    elif cycle.awaiting_since is not None:
        cycle.next_response_s.append(max(0.0, (at - cycle.awaiting_since).total_seconds()))
        cycle.awaiting_since = None


def _end(cycle: Cycle, offer: Offer, outcome: str, at: datetime) -> None:
    offer.outcome, offer.ended_at, offer.changed = outcome, at, True
    cycle.open_offers.remove(offer)
    cycle.ended_offers.append(offer)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def call_fact(event: StoredEvent) -> dict[str, Any] | None:
    """The report row of a call from its event's copy of it (the last event wins)."""
    call = event.data.get("call")
    if not isinstance(call, Mapping) or call.get("id") is None:
        return None
    started = _time(call.get("started_at")) or event.occurred_at
    answered = _time(call.get("answered_at"))
    ended = _time(call.get("ended_at"))
    talk = call.get("duration_s")
    if talk is None and answered is not None and ended is not None:
        talk = (ended - answered).total_seconds()
    return {
        "call_id": int(call["id"]),
        "lead_id": event.lead_id,
        "dialog_id": event.dialog_id,
        "direction": call.get("direction"),
        "operator_id": call.get("operator_id"),
        "status": call.get("status") or "ringing",
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "talk_s": float(talk) if talk is not None and answered is not None else None,
    }
