"""What the router tells the rest of the hub: who must hear about which dialog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Notice:
    """`kind` is offered, withdrawn, assigned, unassigned, closed, interaction,
    interaction.updated or state (the supervisors' view changed)."""

    kind: str
    dialog_id: int | None
    operators: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
