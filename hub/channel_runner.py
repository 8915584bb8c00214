"""Keeps each channel's background work (pollers, webhook registration) running on exactly
one node.

A node runs a channel only while it holds that channel's session advisory lock, taken on a
connection of the supervisor's own: if the node dies or loses its database connection, the
lock goes with it and another node's supervisor takes the channel over within one interval.
A node that stops (SIGTERM) releases its channels at once and says so on the bus
(`channels.released`): the other nodes look at once instead of at their next interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from hub.backoff import backoff
from hub.domain import Channel, ChannelId, Notice
from hub.notify import Publish
from hub.pipeline import lock_key
from hub.ports.connector import (
    AuthFailed,
    ChannelConfigError,
    Connector,
    ConnectorDescriptor,
    ConnectorError,
    NotReady,
    remember_channel_secrets,
)
from hub.wakeup import sleep_until_woken
from storage import channels
from storage.database import DATABASE_UNAVAILABLE, report_unavailable

log = logging.getLogger(__name__)

# How often a node says it still runs its channels (a running entry older than a minute
# reads as "starting": its node went quiet and another takes the channel over).
SEEN_EVERY_S = 20.0


@dataclass
class _Running:
    channel: Channel
    task: asyncio.Task[None]
    key: int


def node_name() -> str:
    """This process as admins and metrics name it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ChannelRunner:
    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        connectors: Mapping[str, Connector],
        kinds: Mapping[str, ConnectorDescriptor],
        interval: float = 5.0,
        publish: Publish | None = None,
    ) -> None:
        self.dsn = dsn
        self.publish = publish
        self.pool = pool
        self.connectors = connectors
        self.kinds = kinds
        self.interval = interval
        self.running: dict[ChannelId, _Running] = {}
        self._retry_at: dict[ChannelId, tuple[float, dict[str, str]]] = {}
        self._failures: dict[ChannelId, int] = {}
        # Which node runs a channel, as admins see it (`hub channel list`, the admin page).
        self.node = node_name()
        self._seen_at = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._released: list[ChannelId] = []

    async def on_notice(self, notice: Notice) -> None:
        """Another node let its channels go: look for them now, not at the next interval."""
        if notice.kind == "channels.released" and notice.data.get("node") != self.node:
            self._wake.set()

    async def release(self) -> None:
        """The node stops: stop every channel's work, release their locks and tell the
        other nodes, before the requests in flight are waited for."""
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait([task])
        released, self._released = self._released, []
        if released and self.publish is not None:
            log.info("released channels %s for the other nodes", sorted(released))
            await self.publish(
                Notice(
                    "channels.released",
                    None,
                    data={"node": self.node, "channels": sorted(released)},
                )
            )

    def is_running(self, channel_id: int) -> bool:
        entry = self.running.get(ChannelId(channel_id))
        return entry is not None and not entry.task.done()

    async def run(self) -> None:
        self._task = asyncio.current_task()
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn)
                await self._supervise(conn)
            except DATABASE_UNAVAILABLE as exc:
                report_unavailable(log, "channel supervisor (releasing channels)", exc)
            finally:
                await self._stop_all(conn)
                if conn is not None:
                    await conn.close()
            await asyncio.sleep(self.interval)

    async def _supervise(self, conn: asyncpg.Connection) -> None:
        while True:
            self._wake.clear()  # a wake-up during this pass makes another pass at once
            await conn.execute("SELECT 1")  # the lock holder must still be alive
            listed = await channels.list_all(self.pool)
            for c in listed:
                remember_channel_secrets(self.kinds, c)
            wanted = {
                c.id: c
                for c in listed
                if c.enabled
                and c.kind in self.connectors
                and self.kinds[c.kind].capabilities.needs_runner(c)
            }
            for channel_id, entry in list(self.running.items()):
                current = wanted.get(channel_id)
                if current is None or current.settings != entry.channel.settings:
                    await self._stop(conn, channel_id)
                    if current is None:  # disabled or removed; a changed one restarts below
                        await channels.set_status(self.pool, channel_id, "stopped", self.node)
                elif entry.task.done():
                    error = self._note_end(entry)
                    await self._stop(conn, channel_id)
                    await channels.set_status(self.pool, channel_id, "failed", self.node, error)
            if self.running and time.monotonic() - self._seen_at > SEEN_EVERY_S:
                await channels.seen_running(self.pool, list(self.running), self.node)
                self._seen_at = time.monotonic()
            now = time.monotonic()
            for channel_id, channel in wanted.items():
                if channel_id in self.running:
                    continue
                retry = self._retry_at.get(channel_id)
                if retry and retry[0] > now and retry[1] == channel.settings:
                    continue
                key = lock_key(f"channel:{channel_id}")
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    task = asyncio.create_task(
                        self.connectors[channel.kind].run(channel), name=f"channel-{channel.name}"
                    )
                    self.running[channel_id] = _Running(channel, task, key)
                    await channels.set_status(self.pool, channel_id, "running", self.node)
                    log.info("running channel %s (%s) on this node", channel.name, channel.kind)
            await sleep_until_woken(self._wake, self.interval)

    def _note_end(self, entry: _Running) -> str:
        """Log why the channel's work ended and when it is tried again; that, for admins."""
        channel = entry.channel
        exc = entry.task.exception() if not entry.task.cancelled() else None
        failures = self._failures.get(channel.id, 0) + 1
        self._failures[channel.id] = failures
        if isinstance(exc, ChannelConfigError):
            delay = float("inf")  # until the settings change
            log.error("channel %s: configuration error: %s", channel.name, exc)
        elif isinstance(exc, AuthFailed):
            delay = 300.0
            log.error("channel %s: the provider refused the credentials: %s", channel.name, exc)
        elif isinstance(exc, NotReady):
            delay = backoff(failures, 2.0, 60.0)
            log.warning("channel %s: provider not ready: %s", channel.name, exc)
        else:
            delay = 30.0
            log.error("channel %s stopped unexpectedly", channel.name, exc_info=exc)
        self._retry_at[channel.id] = (time.monotonic() + delay, channel.settings)
        why = exc.note if isinstance(exc, ConnectorError) else "stopped unexpectedly"
        when = "until its settings change" if delay == float("inf") else f"retried in {delay:.0f} s"
        return f"{why} ({when})"

    async def _stop(self, conn: asyncpg.Connection | None, channel_id: ChannelId) -> None:
        entry = self.running.pop(channel_id)
        if not entry.task.done():
            entry.task.cancel()
            await asyncio.wait([entry.task])  # its outcome no longer matters
        elif not entry.task.cancelled() and (exc := entry.task.exception()) is not None:
            # An end the loop had not noted yet; say it, so it is not lost at shutdown.
            log.info("channel %s had stopped: %s", entry.channel.name, exc)
        if conn is not None and not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", entry.key)

    async def _stop_all(self, conn: asyncpg.Connection | None) -> None:
        """Stop every channel and let its lock go (unlocked, or gone with the connection)."""
        self._released = list(self.running)
        for channel_id in list(self.running):
            try:
                await self._stop(conn, channel_id)
            except DATABASE_UNAVAILABLE:
                self.running.pop(channel_id, None)
