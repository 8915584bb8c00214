"""The proof that a channel kind is one module plus one registry call: a connector defined
here, in the test, is validated by `hub channel add`, answers on its inbound route, is in
`openapi.json`, and receives the replies to its dialogs, with no change under `hub/`."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors import registry
from hub.app import build_app
from hub.cli import main
from hub.config import Settings
from hub.domain import Channel, DeliveryResult, Identity, InboundMessage, OutboundMessage
from hub.ports import HubPorts
from hub.ports.connector import (
    Capabilities,
    Connector,
    ConnectorDescriptor,
    InboundRoute,
    never,
)
from hub.ports.settings import ChannelSettings, SettingsInvalid, setting
from hub.runtime import build_hub
from tests.conftest import one_row

KIND = "smoke"
DELIVERED: list[tuple[str, OutboundMessage]] = []


@dataclass(frozen=True, kw_only=True)
class SmokeSettings(ChannelSettings):
    key: str = setting(required=True, secret=True, help="shared key the sender signs with")
    greeting: str = setting(default="hello")

    def validate(self) -> None:
        if len(self.key) < 8:
            raise SettingsInvalid("key must have at least 8 characters")


class SmokeConnector:
    """A toy provider: JSON `{"id", "from", "text"}` with the key in `X-Smoke-Key`."""

    def __init__(self, ports: HubPorts) -> None:
        self.ports = ports

    async def inbound(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        if not hmac.compare_digest(
            request.headers.get("X-Smoke-Key", "").encode(), channel.setting("key").encode()
        ):
            return web.json_response({"error": {"code": "bad_key", "message": "no"}}, status=401)
        body = await request.json()
        await self.ports.ingest.ingest(
            InboundMessage(
                channel_id=channel.id,
                external_id=str(body["id"]),
                occurred_at=datetime.now(UTC),
                text=body["text"],
                identity=Identity(KIND, str(body["from"])),
                peer=str(body["from"]),
            ),
            KIND,
        )
        return web.Response(text="ok")

    async def run(self, channel: Channel) -> None:
        raise AssertionError("a smoke channel has no runner")

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        DELIVERED.append((channel.name, message))
        return DeliveryResult.sent(f"smoke-{message.interaction_id}")

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        raise AssertionError("a smoke channel has no media")

    async def close(self) -> None:
        """Nothing to release."""


def _make(ports: HubPorts) -> Connector:
    return SmokeConnector(ports)


async def _inbound(connector: Any, request: web.Request, channel: Channel) -> web.StreamResponse:
    assert isinstance(connector, SmokeConnector)
    return await connector.inbound(request, channel)


DESCRIPTOR = ConnectorDescriptor(
    kind=KIND,
    title="Smoke signals",
    settings=SmokeSettings,
    capabilities=Capabilities(interaction_kind=KIND, needs_runner=never),
    factory=_make,
    routes=(
        InboundRoute(
            "POST",
            "/connectors/smoke/{channel}",
            _inbound,
            {"summary": "Smoke signals", "tags": ["connectors"], "responses": {"200": {}}},
        ),
    ),
)


@pytest.fixture
def smoke() -> Iterator[None]:
    registry.register(DESCRIPTOR)  # the one registry call
    DELIVERED.clear()
    yield
    registry.unregister(KIND)


@pytest.fixture
async def smoke_client(
    smoke: None, settings: Settings, pool: asyncpg.Pool, db_dsn: str
) -> AsyncIterator[TestClient[Any, Any]]:
    hub = build_hub(settings, pool, db_dsn, supervise_every=0.2)
    async with TestClient(TestServer(build_app(hub))) as client:
        yield client


async def _cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, dsn: str, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("HUB_DATABASE_URL", dsn)
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_channel_add_validates_the_new_kinds_settings(
    smoke: None,
    db_dsn: str,
    pool: asyncpg.Pool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for args, message in [
        ((), "smoke channels need --set key=..."),
        (("--set", "key=short"), "key must have at least 8 characters"),
        (("--set", "key=long-enough", "--set", "colour=red"), "unknown smoke setting 'colour'"),
    ]:
        code, _, err = await _cli(capsys, monkeypatch, db_dsn, "channel", "add", KIND, "s", *args)
        assert code == 2 and message in err, (args, err)
    code, out, _ = await _cli(
        capsys, monkeypatch, db_dsn, "channel", "add", KIND, "signals", "--set", "key=long-enough"
    )
    assert (code, out.strip()) == (0, "/connectors/smoke/signals")
    assert await pool.fetchval("SELECT settings FROM channels WHERE name = 'signals'") == {
        "key": "long-enough"
    }
    code, out, _ = await _cli(capsys, monkeypatch, db_dsn, "channel", "list")
    assert out.split() == ["smoke", "signals", "enabled", "/connectors/smoke/signals", "listening"]


async def test_the_new_kind_is_served_documented_and_answered(
    smoke_client: TestClient[Any, Any], pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    async with pool.acquire() as conn:
        from storage import channels

        await channels.create(conn, KIND, "signals", {"key": "long-enough"})
    url = "/connectors/smoke/signals"
    assert (await smoke_client.post(url, json={"id": 1, "from": "x", "text": "?"})).status == 401
    reply = await smoke_client.post(
        url,
        json={"id": 1, "from": "hill-7", "text": "puff"},
        headers={"X-Smoke-Key": "long-enough"},
    )
    assert (reply.status, await reply.text()) == (200, "ok")
    row = await one_row(pool, "SELECT kind, text, dialog_id FROM interactions")
    assert (row["kind"], row["text"]) == (KIND, "puff")

    spec = await (await smoke_client.get("/api/v1/openapi.json")).json()
    assert "post" in spec["paths"]["/connectors/smoke/{channel}"]
    assert KIND in spec["components"]["schemas"]["Interaction"]["properties"]["kind"]["enum"]

    answer = await smoke_client.post(
        f"/api/v1/dialogs/{row['dialog_id']}/messages", json={"text": "puff puff"}, headers=auth
    )
    assert answer.status == 201, await answer.text()
    body = await answer.json()
    assert (body["kind"], body["delivery_state"]) == (KIND, "sent")
    assert [(name, m.peer, m.text) for name, m in DELIVERED] == [("signals", "hill-7", "puff puff")]
    # A kind the hub does not serve is a 404 on another kind's path, not a crash.
    assert (await smoke_client.post("/connectors/smoke/nowhere", json={})).status == 404
