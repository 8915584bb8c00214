"""Proactive send pacing, so a busy hub stays under a provider's rate limits instead of
collecting 429s (which are still honoured when they come)."""

from __future__ import annotations

import asyncio


class Throttle:
    """Reserves send slots: at most one a `per_key` interval for each key (a chat) and one a
    `overall` interval across keys (the bot). Callers wait for their slot in arrival order."""

    def __init__(self, per_key: float, overall: float) -> None:
        self.per_key = per_key
        self.overall = overall
        self._next_for: dict[str, float] = {}
        self._next_any = 0.0

    async def wait(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next_for.get(key, 0.0), self._next_any)
        self._next_for[key] = slot + self.per_key
        self._next_any = slot + self.overall
        if len(self._next_for) > 10_000:
            self._next_for = {k: t for k, t in self._next_for.items() if t > now}
        if slot > now:
            await asyncio.sleep(slot - now)
