"""The connector protocol every channel implements, its three errors, and the registry.

A new channel is one new module that implements `Connector` and registers a factory
under its kind; the hub routes inbound HTTP to it and asks it to send replies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from hub.domain import Channel, ChannelKind
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

    async def start(self, channel: Channel) -> None:
        """Start the channel's poller, if it has one (IMAP IDLE, getUpdates, long poll)."""
        ...

    async def stop(self) -> None: ...


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
