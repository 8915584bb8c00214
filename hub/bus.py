"""Live notices between the router and the operators' websockets.

On one node the bus is in-process. Nothing that matters lives only on the bus: PostgreSQL
holds every dialog's state, and an operator who reconnects gets it all again in `hello`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from routing.events import Notice

log = logging.getLogger(__name__)

Subscriber = Callable[[Notice], Awaitable[None]]


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def publish(self, notice: Notice) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber(notice)
            except Exception:
                log.exception("a bus subscriber failed on %s", notice.kind)
