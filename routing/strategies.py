"""Who gets a dialog, among the operators who can take it now."""

from __future__ import annotations

from collections.abc import Sequence

from storage.routing import Candidate


def least_busy(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Fewest open dialogs first; among equals, the lowest free share, then the lowest id."""
    return sorted(candidates, key=lambda c: (c.load, c.load / c.max_dialogs, c.operator_id))


def round_robin(candidates: Sequence[Candidate], last_operator_id: int | None) -> list[Candidate]:
    """The next operator after the queue's previous choice, wrapping around."""
    ordered = sorted(candidates, key=lambda c: c.operator_id)
    if last_operator_id is None:
        return ordered
    after = [c for c in ordered if c.operator_id > last_operator_id]
    return after + [c for c in ordered if c.operator_id <= last_operator_id]


def sticky(candidates: Sequence[Candidate], previous_operator_id: int | None) -> list[Candidate]:
    """The lead's previous operator when they can take it, else the least busy."""
    ranked = least_busy(candidates)
    preferred = [c for c in ranked if c.operator_id == previous_operator_id]
    return preferred + [c for c in ranked if c.operator_id != previous_operator_id]


def order(
    strategy: str,
    candidates: Sequence[Candidate],
    *,
    last_operator_id: int | None = None,
    previous_operator_id: int | None = None,
) -> list[Candidate]:
    """Candidates with room in the order the strategy would offer to them."""
    with_room = [c for c in candidates if c.has_room]
    if strategy == "round_robin":
        return round_robin(with_room, last_operator_id)
    if strategy == "sticky":
        return sticky(with_room, previous_operator_id)
    return least_busy(with_room)
