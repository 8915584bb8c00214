"""An operator's typing, shown to the customer where the provider can show it (Telegram's
`sendChatAction`, VK's `messages.setActivity`).

The console says "typing" while the operator writes; the provider shows it for a few
seconds (Telegram 5 s, VK about 10 s). So one request per dialog in `EVERY_S` keeps it
shown, and no console, however chatty, costs the provider more than that: the limit is
kept here, per dialog, whatever arrives. It is fire and forget: a failure costs the
customer the hint, never the operator an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import cast

import asyncpg

from hub.ports.connector import (
    Connector,
    ConnectorDescriptor,
    ConnectorError,
    ShowsTyping,
)
from storage import channels
from storage.database import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

EVERY_S = 4.0
TIMEOUT_S = 5.0
# Dialogs remembered at most; older entries are dropped (they are past EVERY_S anyway).
REMEMBERED = 2048


class TypingRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        connectors: Mapping[str, Connector],
        kinds: Mapping[str, ConnectorDescriptor],
    ) -> None:
        self.pool = pool
        self.connectors = connectors
        self.kinds = kinds
        self._last: dict[int, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def typing(self, dialog_id: int) -> bool:
        """Relay it unless the dialog's customer was shown it less than `EVERY_S` ago;
        whether a request is made."""
        now = time.monotonic()
        if now - self._last.get(dialog_id, -EVERY_S) < EVERY_S:
            return False
        if len(self._last) >= REMEMBERED:
            self._last = {d: t for d, t in self._last.items() if now - t < EVERY_S}
        self._last[dialog_id] = now
        task = asyncio.create_task(self._relay(dialog_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _relay(self, dialog_id: int) -> None:
        try:
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT channel_id, peer FROM dialogs WHERE id = $1 AND status <> 'closed'",
                    dialog_id,
                )
                channel = await channels.get(conn, row["channel_id"]) if row else None
            if row is None or channel is None or not row["peer"] or not channel.enabled:
                return
            descriptor = self.kinds.get(channel.kind)
            connector = self.connectors.get(channel.kind)
            if descriptor is None or connector is None or not descriptor.capabilities.shows_typing:
                return
            async with asyncio.timeout(TIMEOUT_S):
                await cast(ShowsTyping, connector).typing(channel, row["peer"])
        except (ConnectorError, TimeoutError) as exc:
            log.debug("typing in dialog %s not shown: %s", dialog_id, exc)
        except DATABASE_UNAVAILABLE:
            log.debug("typing in dialog %s not shown: database unavailable", dialog_id)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
