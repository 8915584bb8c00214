"""The connector protocol every channel implements, its three errors, and the registry.

A new channel is one new module that implements `Connector` and registers a factory under
its kind; the hub routes inbound HTTP to it, keeps its runner going on exactly one node,
asks it to send replies and to download media.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from hub.domain import Channel, ChannelKind, DeliveryResult, OutboundMessage
from hub.ports import HubPorts


class ConnectorError(Exception):
    """Base of the only three errors a connector lets escape."""


class AuthFailed(ConnectorError):
    """The provider refused our credentials: stop the channel and tell the admin."""


class NotReady(ConnectorError):
    """The provider cannot be reached or asked us to wait: retry with backoff."""


class ChannelConfigError(ConnectorError):
    """The channel's settings cannot work: do not retry until they are changed."""


class Connector(Protocol):
    kind: ChannelKind

    async def handle_inbound(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        """Verify and parse one provider request, ingest it, answer the provider."""
        ...

    def needs_runner(self, channel: Channel) -> bool:
        """Whether `run` must be kept going for this channel (a poller, a webhook to set)."""
        ...

    async def run(self, channel: Channel) -> None:
        """The channel's background work on the one node that holds its lock: register the
        webhook, or poll. Runs until cancelled; raises only `ConnectorError`s."""
        ...

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        """Deliver one reply; never raises for provider refusals, returns the outcome."""
        ...

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        """Fetch a file the provider referenced; `hub.ports.TooLarge` over `limit`."""
        ...

    async def close(self) -> None:
        """Release HTTP sessions."""
        ...


ConnectorFactory = Callable[[HubPorts], Connector]

_REGISTRY: dict[ChannelKind, ConnectorFactory] = {}


def register(kind: ChannelKind) -> Callable[[ConnectorFactory], ConnectorFactory]:
    def wrap(factory: ConnectorFactory) -> ConnectorFactory:
        _REGISTRY[kind] = factory
        return factory

    return wrap


def factory_for(kind: ChannelKind) -> ConnectorFactory | None:
    return _REGISTRY.get(kind)


def registered_kinds() -> list[ChannelKind]:
    return sorted(_REGISTRY)
