"""Live notices between the router and the operators' websockets.

On one node the bus is in-process; with `HUB_BUS_URL` it is NATS, so an operator connected
to any node hears what the router decided on any other. Nothing that matters lives only on the bus: PostgreSQL
holds every dialog's state, and an operator who reconnects gets it all again in `hello`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hub import tracing
from hub.domain import Notice

log = logging.getLogger(__name__)

Subscriber = Callable[[Notice], Awaitable[None]]


class Bus(Protocol):
    def subscribe(self, subscriber: Subscriber) -> None: ...

    async def publish(self, notice: Notice) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    async def publish(self, notice: Notice) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber(notice)
            except Exception:
                log.exception("a bus subscriber failed on %s", notice.kind)


class NatsBus:
    """Notices shared by every node through NATS (`HUB_BUS_URL=nats://host:port`).

    A node hears its own notices back from NATS, so local and remote operators get them by
    one path. While NATS is unreachable, notices still reach this node's own operators;
    the others resync from PostgreSQL with their next `hello`.
    """

    SUBJECT = "hub.notices"

    def __init__(self, url: str) -> None:
        self.url = url
        self._subscribers: list[Subscriber] = []
        self._nc: Any = None

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def start(self) -> None:
        import nats

        self._nc = await nats.connect(
            self.url,
            name="contact-hub",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
        )
        await self._nc.subscribe(self.SUBJECT, cb=self._on_message)
        log.info("bus connected to NATS at %s", self.url)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None

    async def _deliver(self, notice: Notice) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber(notice)
            except Exception:
                log.exception("a bus subscriber failed on %s", notice.kind)

    async def _on_message(self, message: Any) -> None:
        try:
            data = json.loads(message.data)
            notice = Notice(data["kind"], data["dialog_id"], tuple(data["operators"]), data["data"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed notice on %s", self.SUBJECT)
            return
        # The publisher's trace goes on with the notice: the operator's frame on this node
        # is logged under the inbound event that caused it.
        trace = data.get("trace_id")
        token = tracing.begin(trace if isinstance(trace, str) and len(trace) <= 64 else None)
        try:
            await self._deliver(notice)
        finally:
            tracing.end(token)

    async def publish(self, notice: Notice) -> None:
        payload = json.dumps(
            {
                "kind": notice.kind,
                "dialog_id": notice.dialog_id,
                "operators": list(notice.operators),
                "data": notice.data,
                "trace_id": tracing.current(),
            },
            default=str,
        ).encode()
        if self._nc is not None and self._nc.is_connected:
            try:
                await self._nc.publish(self.SUBJECT, payload)
                return
            except Exception:
                log.warning("NATS publish failed; delivering on this node only", exc_info=True)
        await self._deliver(notice)


class StateNudge:
    """Tells supervisors' views that queues changed, at most once per `every` seconds.

    New dialogs can arrive thousands of times a second; a dashboard needs to hear of them,
    not of each one. The first change in a quiet period is sent at once, later ones in the
    same period are folded into one notice at its end.
    """

    def __init__(self, publish: Callable[[Notice], Awaitable[None]], every: float = 0.5) -> None:
        self.publish = publish
        self.every = every
        self._last = 0.0
        self._pending: asyncio.Task[None] | None = None

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last + self.every - loop.time()
        if wait <= 0:
            self._last = loop.time()
            await self.publish(Notice("state", None))
        elif self._pending is None:
            self._pending = asyncio.create_task(self._later(wait))

    async def _later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._pending = None
        self._last = asyncio.get_running_loop().time()
        await self.publish(Notice("state", None))
