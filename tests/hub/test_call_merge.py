"""Merging a call's events: any order gives the same call, and the status follows the facts
(hub/calls.py). No database: these are the rules the storage applies."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hub.calls import Numbers, merge, status_of
from hub.domain import CallEvent, CallPhase, CallStatus, ChannelId, Direction
from storage.calls import CallFacts

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
NUMBERS = Numbers("+79001234567", "+74951234567", "+79001234567", None)


def _event(phase: CallPhase, at: int, **extra: object) -> CallEvent:
    return CallEvent(
        channel_id=ChannelId(1),
        call_id="c",
        key=phase.value,
        phase=phase,
        at=T0 + timedelta(seconds=at),
        direction=Direction.IN,
        **extra,  # type: ignore[arg-type]
    )


def _merged(events: list[CallEvent], answering: int | None = None) -> CallFacts:
    facts = CallFacts()
    for event in events:
        facts = merge(facts, event, NUMBERS, answering if event.answered_by else None)
    return facts


def test_any_order_of_a_calls_events_gives_the_same_call() -> None:
    events = [
        _event(CallPhase.RINGING, 0, ringing=("101",)),
        _event(CallPhase.RINGING, 1, ringing=("102",)),
        _event(CallPhase.ANSWERED, 5, answered_by="101"),
        _event(CallPhase.ENDED, 65, cause="normalClearing", answered_by="101"),
        _event(CallPhase.RECORDED, 70, recording_ref="r1"),
    ]
    results = {
        (
            status_of(f := _merged(list(order), answering=7)),
            f.answered_at,
            f.ended_at,
            f.started_at,
            f.operator_id,
            f.recording_ref,
            frozenset(f.rang),
        )
        for order in itertools.permutations(events)
    }
    assert results == {
        (
            CallStatus.ANSWERED,
            T0 + timedelta(seconds=5),
            T0 + timedelta(seconds=65),
            T0,
            7,
            "r1",
            frozenset({"101", "102"}),
        )
    }


def test_the_status_follows_the_facts() -> None:
    ringing = _merged([_event(CallPhase.RINGING, 0)])
    assert status_of(ringing) == CallStatus.RINGING
    talking = _merged([_event(CallPhase.RINGING, 0), _event(CallPhase.ANSWERED, 3)])
    assert status_of(talking) == CallStatus.IN_PROGRESS
    # A hang-up with no outcome of its own: missed unless an answer was seen.
    assert status_of(_merged([_event(CallPhase.ENDED, 9)])) == CallStatus.MISSED
    hung_up = _merged([_event(CallPhase.ENDED, 9), _event(CallPhase.ANSWERED, 3)])
    assert status_of(hung_up) == CallStatus.ANSWERED
    busy = _merged([_event(CallPhase.ENDED, 1, outcome=CallStatus.BUSY)])
    assert status_of(busy) == CallStatus.BUSY
    # A provider's "answered" without an answer event (Zadarma's NOTIFY_END alone).
    said = _merged([_event(CallPhase.ENDED, 9, outcome=CallStatus.ANSWERED, duration_s=4)])
    assert status_of(said) == CallStatus.ANSWERED and said.duration_s == 4
    # A summary after the hang-up makes the outcome precise; a later bare hang-up does not undo it.
    precise = _merged(
        [
            _event(CallPhase.ENDED, 9),
            _event(CallPhase.ENDED, 10, outcome=CallStatus.FAILED),
            _event(CallPhase.ENDED, 11),
        ]
    )
    assert status_of(precise) == CallStatus.FAILED and precise.ended_at == T0 + timedelta(seconds=9)
