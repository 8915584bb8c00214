"""Scripted timelines for the report tests: leads, dialogs and the domain events a real
hub would write, each at an exact time (seconds after `t0`), so every metric can be checked
against a number worked out by hand. The events are shaped as the ingest, the router, the
outbound service and the call service write them (hub/schemas/domain-events.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from storage import queues


@dataclass(frozen=True, slots=True)
class Scripted:
    lead_id: int
    dialog_id: int


class Script:
    def __init__(self, pool: asyncpg.Pool, channel_id: int, t0: datetime) -> None:
        self.pool, self.channel_id, self.t0 = pool, channel_id, t0

    def at(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)

    async def dialog(
        self, at: float, *, name: str = "Customer", source: str = "telegram"
    ) -> Scripted:
        """A new lead writes: lead.created, dialog.created, interaction.created (in)."""
        lead = await self.pool.fetchval(
            "INSERT INTO leads (name, created_at, source) VALUES ($1, $2, $3) RETURNING id",
            name,
            self.at(at),
            {"kind": source, "channel_id": self.channel_id},
        )
        dialog = await self.pool.fetchval(
            """INSERT INTO dialogs (lead_id, channel_id, status, created_at, closed_at)
               VALUES ($1, $2, 'closed', $3, $3) RETURNING id""",
            lead,
            self.channel_id,
            self.at(at),
        )
        made = Scripted(lead, dialog)
        await self.event(made, "lead.created", at, channel_id=self.channel_id)
        await self.event(made, "dialog.created", at, channel_id=self.channel_id)
        await self.customer(made, at)
        return made

    async def event(
        self, d: Scripted, type_: str, at: float, operator: int | None = None, **data: Any
    ) -> None:
        await self.pool.execute(
            """INSERT INTO domain_events (type, lead_id, lead_seq, dialog_id, operator_id,
                                          actor, data, occurred_at)
               VALUES ($1, $2, (SELECT COALESCE(max(lead_seq), 0) + 1 FROM domain_events
                                 WHERE lead_id = $2), $3, $4, 'system', $5, $6)""",
            type_,
            d.lead_id,
            d.dialog_id,
            operator,
            data,
            self.at(at),
        )

    async def customer(self, d: Scripted, at: float, kind: str = "telegram") -> None:
        await self.event(
            d, "interaction.created", at, channel_id=self.channel_id, kind=kind, direction="in"
        )

    async def reply(self, d: Scripted, at: float, operator: int) -> None:
        await self._out(d, at, operator, "telegram", f"op{operator}")

    async def auto_reply(self, d: Scripted, at: float) -> None:
        await self._out(d, at, None, "telegram", "auto-reply")

    async def api_send(self, d: Scripted, at: float) -> None:
        await self._out(d, at, None, "telegram", "api:crm")

    async def note(self, d: Scripted, at: float, operator: int) -> None:
        await self._out(d, at, operator, "note", f"op{operator}")

    async def _out(
        self, d: Scripted, at: float, operator: int | None, kind: str, author: str
    ) -> None:
        await self.event(
            d,
            "interaction.created",
            at,
            operator,
            channel_id=self.channel_id,
            kind=kind,
            direction="out",
            author=author,
        )

    async def offer(
        self, d: Scripted, at: float, *operators: int, queue: int | None = None
    ) -> None:
        await self.event(d, "dialog.offered", at, operators=list(operators), queue_id=queue)

    async def accept(self, d: Scripted, at: float, operator: int) -> None:
        await self.event(d, "dialog.assigned", at, operator, via="accept")

    async def give(self, d: Scripted, at: float, operator: int) -> None:
        await self.event(d, "dialog.assigned", at, operator, via="transfer")

    async def requeue(self, d: Scripted, at: float, reason: str, **data: Any) -> None:
        await self.event(d, "dialog.queued", at, reason=reason, **data)

    async def transfer(self, d: Scripted, at: float, source: int, target: int) -> None:
        await self.event(
            d,
            "dialog.transferred",
            at,
            from_operator_id=source,
            to_operator_id=target,
            to_queue_id=None,
        )
        await self.give(d, at, target)

    async def close(self, d: Scripted, at: float) -> None:
        await self.event(d, "dialog.closed", at, previous_status="assigned")

    async def reopen(self, d: Scripted, at: float) -> None:
        await self.event(d, "dialog.reopened", at, channel_id=self.channel_id)
        await self.customer(d, at)

    async def call(
        self,
        d: Scripted,
        phone: str,
        started: float,
        *,
        answered: float | None = None,
        ended: float,
        operator: int | None = None,
        direction: str = "in",
    ) -> int:
        """A call of the dialog's lead, as the call service reports it."""
        status = "answered" if answered is not None else "missed"
        call_id: int = await self.pool.fetchval(
            """INSERT INTO calls (channel_id, provider_call_id, direction, customer_phone,
                                  status, operator_id, started_at, answered_at, ended_at,
                                  dialog_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
            self.channel_id,
            f"call-{started}-{phone}",
            direction,
            phone,
            status,
            operator,
            self.at(started),
            self.at(answered) if answered is not None else None,
            self.at(ended),
            d.dialog_id,
        )

        def shown(state: str, duration: float) -> dict[str, Any]:
            return {
                "id": call_id,
                "from": phone if direction == "in" else "101",
                "to": "101" if direction == "in" else phone,
                "direction": direction,
                "status": state,
                "duration_s": int(duration),
                "operator_id": operator,
                "started_at": self.at(started).isoformat(),
                "answered_at": self.at(answered).isoformat() if answered is not None else None,
                "ended_at": self.at(ended).isoformat() if state != "in_progress" else None,
            }

        if answered is not None:
            await self.event(d, "call.answered", answered, operator, call=shown("in_progress", 0))
            await self.event(
                d, "call.ended", ended, operator, call=shown("answered", ended - answered)
            )
        else:
            await self.event(d, "call.ended", ended, call=shown("missed", 0))
            await self.event(d, "call.missed", ended, call=shown("missed", 0))
        return call_id

    async def presence(self, operator: int, at: float, status: str, previous: str) -> None:
        await self.pool.execute(
            """INSERT INTO domain_events (type, operator_id, actor, data, occurred_at)
               VALUES ('operator.presence_changed', $1, 'system', $2, $3)""",
            operator,
            json.loads(json.dumps({"status": status, "previous_status": previous})),
            self.at(at),
        )


async def office_queue(pool: asyncpg.Pool, timezone: str) -> int:
    """A queue open Monday to Friday, 09:00-18:00 in `timezone`."""
    queue = await queues.create(
        pool,
        name="sales",
        strategy="least_busy",
        offer_timeout_s=30,
        channels=[],
        skills=[],
        hours="mon-fri 09:00-18:00",
        timezone=timezone,
        auto_reply=None,
    )
    return queue.id
