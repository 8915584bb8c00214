"""Telephony: one `pbx` channel kind, one module per provider (`provider` setting).

Checklist
- providers: Zadarma (`zadarma.py`: form-encoded NOTIFY_* events, the `Signature` header,
  the `zd_echo` check), Mango Office (`mango.py`: `events/call|summary|recording`, `ping`,
  signed `vpbx_api_key`/`sign`/`json` forms), and a generic endpoint compatible with
  Zammad's CTI API (`generic.py`: `newCall`/`answer`/`hangup`, `?token=`);
- one call per provider call id: every event becomes a `CallEvent` handed to the hub's
  `CallPort`, which merges events arriving out of order or twice into one call;
- outcomes: `outcomes.py` maps each provider's result to the hub's status (one table);
- recordings: referenced by the events, fetched afterwards through `download` (Zadarma's
  signed `pbx/record/request`, Mango's `queries/recording/post`, a URL for the generic
  provider), behind the network guard and the size limit;
- bad input: wrong signature or token 401/403 with nothing stored; unknown events 200 and
  a warning; malformed bodies 400/415/422;
- no text: a PBX carries no text replies (`sends_text=False`; the API answers 409);
- tests: tests/connectors/pbx/.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from aiohttp import web

from connectors.http import new_guard, new_session
from connectors.openapi import CHANNEL_PARAM, ERROR
from connectors.pbx import generic, mango, zadarma
from hub.domain import Channel, DeliveryResult, OutboundMessage
from hub.errors import ApiError
from hub.ports import HubPorts
from hub.ports.connector import (
    Capabilities,
    ChannelConfigError,
    ConnectorDescriptor,
    InboundRoute,
)
from hub.ports.settings import ChannelSettings, SettingsInvalid, setting

KIND = "pbx"
PROVIDERS = ("zadarma", "mango", "generic")


class PbxConnector:
    def __init__(self, ports: HubPorts) -> None:
        self.ports = ports
        self._session: aiohttp.ClientSession | None = None
        self.guard = new_guard()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = new_session()
        return self._session

    async def run(self, channel: Channel) -> None:
        raise ChannelConfigError("pbx channels have no background work")

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        # The hub refuses text on a pbx dialog (409) before it gets here.
        return DeliveryResult.failed("a PBX carries no text messages")

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        """A call's recording, by the reference its event gave."""
        provider = channel.setting("provider")
        if provider == "zadarma":
            return await zadarma.recording(self.session, self.guard, channel, remote_ref, limit)
        if provider == "mango":
            return await mango.recording(self.guard, channel, remote_ref, limit)
        return await generic.recording(self.guard, channel, remote_ref, limit)

    async def close(self) -> None:
        await self.guard.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def events(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        provider = channel.setting("provider")
        if provider == "zadarma":
            return await zadarma.handle(self.ports, channel, request)
        if provider == "generic":
            return await generic.handle(self.ports, channel, request)
        raise ApiError(
            404, "not_found", "a Mango Office channel takes events at its events/… and ping paths"
        )

    async def echo(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        if channel.setting("provider") == "zadarma" and "zd_echo" in request.query:
            return zadarma.echo(request)
        raise ApiError(400, "bad_request", "nothing to check here: POST the PBX's call events")

    async def mango_path(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        if channel.setting("provider") != "mango":
            raise ApiError(404, "not_found", "only Mango Office channels take events/… paths")
        path = request.path.rsplit("/", 2)
        name = path[-1] if path[-1] == "ping" else f"{path[-2]}/{path[-1]}"
        return await mango.handle(self.ports, channel, request, name)


async def _events(
    connector: PbxConnector, request: web.Request, channel: Channel
) -> web.StreamResponse:
    return await connector.events(request, channel)


async def _echo(
    connector: PbxConnector, request: web.Request, channel: Channel
) -> web.StreamResponse:
    return await connector.echo(request, channel)


async def _mango(
    connector: PbxConnector, request: web.Request, channel: Channel
) -> web.StreamResponse:
    return await connector.mango_path(request, channel)


@dataclass(frozen=True, kw_only=True)
class PbxSettings(ChannelSettings):
    provider: str = setting(required=True, choices=PROVIDERS, help="zadarma, mango or generic")
    api_key: str = setting(secret=True, help="Zadarma's or Mango Office's API key")
    secret: str = setting(
        secret=True, help="Zadarma's API secret, or the token generic (Zammad-style) callers pass"
    )
    api_salt: str = setting(secret=True, help="Mango Office's API salt (signature key)")
    api_base: str = setting(url=True, help="https://api.zadarma.com or https://app.mango-office.ru")
    timezone: str = setting(
        default="Europe/Moscow", help="the PBX's time zone (Zadarma's times carry no offset)"
    )
    recording_delay: int = setting(
        default=40, help="seconds to wait before fetching a Zadarma recording"
    )

    def validate(self) -> None:
        needs = {"zadarma": ("api_key", "secret"), "mango": ("api_key", "api_salt")}.get(
            self.provider, ("secret",)
        )
        missing = tuple(n for n in needs if not getattr(self, n))
        if missing:
            raise SettingsInvalid(
                f"{self.provider} pbx channels need {', '.join(missing)}", missing=missing
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsInvalid(f"unknown time zone {self.timezone!r}") from None


def _operation(summary: str, content: str, *path: str) -> dict[str, object]:
    params = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path
    ]
    return {
        "summary": summary,
        "tags": ["connectors"],
        "security": [],
        "parameters": [CHANNEL_PARAM, *params],
        "requestBody": {"required": True, "content": {content: {"schema": {"type": "object"}}}},
        "responses": {
            "200": {"description": "accepted"},
            **{str(c): ERROR for c in (400, 401, 403, 404, 413, 415, 422)},
        },
    }


DESCRIPTOR = ConnectorDescriptor(
    kind=KIND,
    title="Telephony (PBX)",
    settings=PbxSettings,
    capabilities=Capabilities(interaction_kind="call", sends_text=False),
    factory=PbxConnector,
    routes=(
        InboundRoute(
            "POST",
            "/connectors/pbx/{channel}",
            _events,
            _operation(
                "Zadarma NOTIFY_* events (Signature header) or Zammad-style CTI events (?token=)",
                "application/x-www-form-urlencoded",
            ),
        ),
        InboundRoute(
            "GET",
            "/connectors/pbx/{channel}",
            _echo,
            {
                "summary": "Zadarma's zd_echo check: answers the value it was given",
                "tags": ["connectors"],
                "security": [],
                "parameters": [
                    CHANNEL_PARAM,
                    {"name": "zd_echo", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "the zd_echo value"}, "400": ERROR},
            },
        ),
        InboundRoute(
            "POST",
            "/connectors/pbx/{channel}/events/{event}",
            _mango,
            _operation(
                "Mango Office events: call, summary, recording (vpbx_api_key, sign, json)",
                "application/x-www-form-urlencoded",
                "event",
            ),
        ),
        InboundRoute(
            "POST",
            "/connectors/pbx/{channel}/result/{event}",
            _mango,
            _operation(
                "Mango Office command results (acknowledged, not stored)",
                "application/x-www-form-urlencoded",
                "event",
            ),
        ),
        InboundRoute(
            "POST",
            "/connectors/pbx/{channel}/ping",
            _mango,
            _operation("Mango Office's connection check", "application/x-www-form-urlencoded"),
        ),
    ),
)
