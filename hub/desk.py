"""The supervisors' desk: one live view of the shift, pushed to every supervisor's console.

It holds a summary (waiting now, the longest wait, who is online, the load against the
capacity online, what was missed today), each queue with what waits in it and what is held,
each operator with their presence and load, and the open dialogs themselves (the ones not yet
held first, oldest first) in the shape the console lists its own. The console computes the
ticking waits from the timestamps, so a push is needed only when something changed.

"Today" is each console's own: a socket names its time zone, and the missed count is read
once per zone in use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg

from routing.router import Router
from storage import desk, operators

# At most this many open dialogs on the desk (the most urgent); the summary counts them all.
DESK_DIALOGS = 500

Summaries = Callable[[list[int]], Awaitable[dict[int, dict[str, Any]]]]


def _queue_entry(name: str) -> dict[str, Any]:
    return {"name": name, "waiting": 0, "held": 0, "oldest_wait_s": 0.0}


class Desk:
    def __init__(self, pool: asyncpg.Pool, router: Router, summaries: Summaries) -> None:
        self.pool = pool
        self.router = router
        self.summaries = summaries

    async def state(self, zones: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The desk's frame for each time zone (they differ in `missed_today` alone)."""
        queues = await self.router.queues()
        # Every queue is listed, waiting or not (without queues, the built-in default one).
        counts: dict[str, dict[str, Any]] = {
            name: _queue_entry(name) for name in [q.name for q in queues] or ["default"]
        }
        for group in await desk.open_groups(self.pool):
            name = self.router.queue_for(group["queue_id"], group["channel"], queues).name
            entry = counts.setdefault(name, _queue_entry(name))
            entry["waiting"] += group["waiting"]
            entry["held"] += group["held"]
            if group["oldest"] is not None:
                waited = (group["at"] - group["oldest"]).total_seconds()
                entry["oldest_wait_s"] = round(max(entry["oldest_wait_s"], waited), 1)
        rows = await desk.open_dialogs(self.pool, DESK_DIALOGS)
        found = await self.summaries([r["id"] for r in rows])
        listed = []
        for r in rows:
            summary = found.get(r["id"])
            if summary is None:
                continue
            summary["queue"] = self.router.queue_for(r["queue_id"], r["channel"], queues).name
            summary["queued_at"] = r["queued_at"].isoformat() if r["queued_at"] else None
            summary["offered_to"] = list(r["offered_to"])
            listed.append(summary)
        people = [
            {k: p[k] for k in ("id", "name", "role", "max_dialogs", "presence", "load")}
            for p in await operators.roster(self.pool)
        ]
        online = [p for p in people if p["presence"] == "online"]
        wanted = sorted(set(zones))
        missed = await desk.missed_since_midnight(self.pool, wanted)
        summary = {
            "waiting": sum(q["waiting"] for q in counts.values()),
            "longest_wait_s": max((q["oldest_wait_s"] for q in counts.values()), default=0),
            "online": len(online),
            "away": sum(1 for p in people if p["presence"] == "away"),
            "load": sum(int(p["load"]) for p in people),
            "capacity": sum(int(p["max_dialogs"]) for p in online),
        }
        base = {
            "type": "supervisor.state",
            "queues": sorted(counts.values(), key=lambda q: str(q["name"])),
            "operators": people,
            "dialogs": listed,
            "dialogs_total": int(rows[0]["total"]) if rows else 0,
        }
        return {
            zone: {
                **base,
                "summary": {**summary, "missed_today": missed.get(zone, 0), "zone": zone},
            }
            for zone in wanted
        }
