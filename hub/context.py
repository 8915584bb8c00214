"""The running hub's shared objects, handed to HTTP handlers through the aiohttp app."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from hub.attachments import DiskAttachmentStore
from hub.bus import Bus
from hub.calls import CallService
from hub.channel_runner import ChannelRunner
from hub.config import Settings
from hub.domain import Channel
from hub.gateway import OperatorGateway
from hub.media_fetcher import MediaFetcher
from hub.metrics import Metrics
from hub.outage import OutageWatch
from hub.outbound import OutboundService
from hub.pipeline import IngestPipeline
from hub.ports.connector import Connector, ConnectorDescriptor, remember_channel_secrets
from hub.ratelimit import RateLimiter
from hub.reports.builder import FactBuilder
from routing.router import Router
from storage import channels
from webhooks.dispatcher import Dispatcher


class ChannelCache:
    """Channels by name, re-read after a few seconds so that `hub channel add` in another
    process is seen without a restart, and at once for a name not seen yet."""

    def __init__(
        self, pool: asyncpg.Pool, kinds: Mapping[str, ConnectorDescriptor], ttl: float = 5.0
    ) -> None:
        self.pool = pool
        self.kinds = kinds
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Channel | None]] = {}

    async def get(self, name: str) -> Channel | None:
        now = time.monotonic()
        hit = self._entries.get(name)
        if hit is not None and now - hit[0] < self.ttl and hit[1] is not None:
            return hit[1]
        channel = await channels.get_by_name(self.pool, name)
        if channel is not None:
            remember_channel_secrets(self.kinds, channel)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[name] = (now, channel)
        return channel

    def forget(self) -> None:
        """A channel was changed here (an admin): read them again at once. Other nodes
        follow within `ttl`."""
        self._entries.clear()


@dataclass
class Hub:
    settings: Settings
    dsn: str
    pool: asyncpg.Pool
    pipeline: IngestPipeline
    calls: CallService
    webhooks: Dispatcher
    attachments: DiskAttachmentStore
    channels: ChannelCache
    outbound: OutboundService
    media: MediaFetcher
    channel_runner: ChannelRunner
    bus: Bus
    router: Router
    gateway: OperatorGateway
    facts: FactBuilder
    metrics: Metrics
    # The kinds this hub serves (from connectors/registry.py) and one connector of each.
    kinds: dict[str, ConnectorDescriptor] = field(default_factory=dict)
    connectors: dict[str, Connector] = field(default_factory=dict)
    login_limiter: RateLimiter = field(default_factory=RateLimiter)
    outage: OutageWatch = field(init=False)

    def __post_init__(self) -> None:
        self.outage = OutageWatch(self.pool)


HUB_KEY: web.AppKey[Hub] = web.AppKey("hub", Hub)


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB_KEY]
