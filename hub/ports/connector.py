"""What a connector gives the hub: the `Connector` protocol, its three errors, and the
descriptor that makes a channel kind part of the hub.

A channel kind is one module under `connectors/` that exports a `ConnectorDescriptor` and
one line in `connectors/registry.py`. Everything the hub needs to know of the kind is read
from the descriptor: the CLI validates settings with its settings class, the HTTP app mounts
its inbound routes, the OpenAPI document takes its route descriptions, the outbound path
reads its capabilities, the channel runner asks it whether a channel needs background work.
`hub/` names no channel kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from hub import redact
from hub.domain import Channel, DeliveryResult, OutboundMessage
from hub.ports import HubPorts
from hub.ports.settings import ChannelSettings
from hub.redact import clean


class ConnectorError(Exception):
    """Base of the only three errors a connector lets escape. Their text reaches stored
    notes, API answers and logs, so it is cleaned of URLs and credentials when the error is
    made (`hub.redact`): a library's message quoting a Bot API URL loses the token there."""

    code = "provider_error"

    def __init__(self, message: str) -> None:
        self.message = clean(message)
        super().__init__(self.message)

    @property
    def note(self) -> str:
        """How a stored note or delivery error reads it: its code, then the cleaned message."""
        return f"{self.code}: {self.message}"


class AuthFailed(ConnectorError):
    """The provider refused our credentials: stop the channel and tell the admin."""

    code = "provider_auth_failed"


class NotReady(ConnectorError):
    """The provider cannot be reached or asked us to wait: retry with backoff."""

    code = "provider_unavailable"


class ChannelConfigError(ConnectorError):
    """The channel's settings cannot work: do not retry until they are changed."""

    code = "provider_refused"


class Connector(Protocol):
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


class ShowsTyping(Protocol):
    async def typing(self, channel: Channel, peer: str) -> None:
        """Show the customer that an operator is writing to them; raises only
        `ConnectorError`s. Its kind declares `Capabilities.shows_typing`."""
        ...


# The connector is the kind's own class; the route's handler knows which.
RouteHandler = Callable[[Any, web.Request, Channel], Awaitable[web.StreamResponse]]


class HandlesInbound(Protocol):
    async def handle_inbound(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        """Verify and parse one provider request, ingest it, answer the provider."""
        ...


async def handle_inbound(
    connector: HandlesInbound, request: web.Request, channel: Channel
) -> web.StreamResponse:
    """The usual route handler: the connector's own `handle_inbound`."""
    return await connector.handle_inbound(request, channel)


@dataclass(frozen=True, slots=True)
class InboundRoute:
    """One HTTP route a provider (or a browser) calls. `path` holds `{channel}`, resolved by
    the app to an enabled channel of the descriptor's kind (404 otherwise) before `handle`
    runs. `openapi` is the route's OpenAPI operation object."""

    method: str
    path: str
    handle: RouteHandler
    openapi: Mapping[str, Any] = field(default_factory=dict)


def never(channel: Channel) -> bool:
    return False


def always(channel: Channel) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a kind can do, read by the hub instead of probing connector objects."""

    interaction_kind: str  # the `kind` of its interactions (a pbx channel's are `call`)
    sends_text: bool = True
    sends_files: bool = False
    delivery_receipts: bool = False
    needs_runner: Callable[[Channel], bool] = never  # background work for this channel
    # A kind that cannot carry replies itself names the kind that answers its dialogs
    # (a site form is answered by email).
    replies_via: str | None = None
    # The customer can be shown that a reply is being written (the connector then has
    # `ShowsTyping.typing`).
    shows_typing: bool = False
    # The lead's contact the kind can write to unprompted, where the customer never wrote
    # ("email": one of the lead's addresses, the peer `{"to", "subject", "first": true}`); None for
    # kinds that can only answer (a bot cannot write first to someone who never wrote).
    writes_first: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectorDescriptor:
    kind: str
    title: str
    settings: type[ChannelSettings]
    capabilities: Capabilities
    factory: Callable[[HubPorts], Connector]
    routes: tuple[InboundRoute, ...] = ()

    def inbound_path(self, channel_name: str) -> str | None:
        """Where the provider posts for this channel (the first route), if anywhere."""
        return self.routes[0].path.format(channel=channel_name) if self.routes else None

    def openapi_paths(self) -> dict[str, dict[str, Any]]:
        paths: dict[str, dict[str, Any]] = {}
        for route in self.routes:
            paths.setdefault(route.path, {})[route.method.lower()] = dict(route.openapi)
        return paths

    def check_settings(self, values: Mapping[str, str]) -> dict[str, str]:
        return self.settings.check(self.kind, values)


def remember_channel_secrets(kinds: Mapping[str, ConnectorDescriptor], channel: Channel) -> None:
    """A channel's secret settings join what the log filter removes from every line."""
    descriptor = kinds.get(channel.kind)
    if descriptor is not None:
        redact.remember(descriptor.settings.secret_values(channel.settings))
