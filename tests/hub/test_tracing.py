"""Trace ids: one inbound event's id in every JSON log line that follows from it, from the
provider's request through the pipeline and the router to the operator's frame and the
webhook delivery; taken from a caller's well-formed `traceparent` or `X-Request-Id`."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import tracing
from hub.app import build_app
from hub.bus import NatsBus
from hub.config import ConfigError, load_settings
from hub.context import Hub
from hub.domain import Notice
from storage import webhooks
from tests.conftest import OPERATOR_PASSWORD, add_operator, add_telegram, with_settings
from tests.fakes.crm import Receiver
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.sockets import Socket
from tests.fixtures.waiting import eventually

SECRET = "trace-secret"


def test_a_callers_trace_is_taken_only_when_well_formed() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert tracing.trace_from_headers(parent, None) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.trace_from_headers(None, "crm-req-12345") == "crm-req-12345"
    cases: list[tuple[str | None, str | None]] = [
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),  # the all-zero id is invalid
        ("garbage", "no spaces allowed"),
        (None, "x" * 65),
        (None, "short"),
    ]
    for bad_parent, given in cases:
        made = tracing.trace_from_headers(bad_parent, given)
        assert len(made) == 32 and made not in (bad_parent, given)
    with pytest.raises(ConfigError, match="HUB_LOG_FORMAT"):
        load_settings({"HUB_LOG_FORMAT": "xml"})


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger's lines as `HUB_LOG_FORMAT=json` writes them, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    tracing.configure([handler], "json", "node-1")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_one_trace_from_the_providers_request_to_the_frame_and_the_crm(
    hub: Hub,
    pool: asyncpg.Pool,
    fake_telegram: tuple[FakeTelegram, str],
    receiver: tuple[Receiver, str, str],
    json_log: io.StringIO,
) -> None:
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, SECRET)
    crm, url, secret = receiver
    await webhooks.create(pool, url, ["interaction.created"], secret)
    await add_operator(pool, "anna")
    live = with_settings(hub, webhook_allow_private=True)
    async with TestClient(TestServer(build_app(live))) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"login": "anna", "password": OPERATOR_PASSWORD}
        )
        token = (await login.json())["token"]
        anna = Socket(await client.ws_connect(f"/ws/operator?token={token}"))
        await anna.next("hello")
        await anna.send(type="presence", status="online")
        await anna.next("presence")
        # The router counts her from the presence notice on a task of its own; a dialog that
        # came before that count would wait for the router's next pass, which carries no
        # request's trace. Counted now, it is routed from the request, as in service.
        await live.router.count_online()
        reply = await client.post(
            "/connectors/telegram/tg",
            json=text_update(1, "hello"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert reply.status == 200
        trace = reply.headers["X-Request-Id"]
        await anna.next("dialog.offered")
        await eventually(lambda: _delivered(crm))
        await anna.ws.close()

    lines = _lines(json_log)
    assert all(line["node"] == "node-1" and line["time"].endswith("+00:00") for line in lines)
    mine = [line for line in lines if line["trace_id"] == trace]
    said = " | ".join(line["message"] for line in mine)
    assert any(line["logger"] == "hub.pipeline" for line in mine), said
    assert any(line["logger"] == "routing.router" and "offered" in line["message"] for line in mine)
    assert any(
        line["logger"] == "hub.gateway" and "frame dialog.offered" in line["message"]
        for line in mine
    ), said
    delivered = [line for line in mine if line["logger"] == "webhooks.dispatcher"]
    assert delivered and "delivered" in delivered[0]["message"], said
    # Nothing else that happened carries this request's id.
    assert all(
        line["logger"] in ("hub.pipeline", "routing.router", "hub.gateway", "webhooks.dispatcher")
        for line in mine
    ), said


async def _delivered(crm: Receiver) -> bool:
    return len(crm.received) >= 1


class _FakeNats:
    """What NatsBus uses of a NATS client: the payloads published."""

    is_connected = True

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.sent.append(payload)


async def test_a_notice_carries_its_trace_to_the_other_nodes() -> None:
    sender, receiver = NatsBus("nats://127.0.0.1:9"), NatsBus("nats://127.0.0.1:9")
    nats = _FakeNats()
    sender._nc = nats
    heard: list[str | None] = []

    async def subscriber(notice: Notice) -> None:
        heard.append(tracing.current())

    receiver.subscribe(subscriber)
    token = tracing.begin("4bf92f3577b34da6a3ce929d0e0e4736")
    try:
        await sender.publish(Notice("offered", 7, (1,)))
    finally:
        tracing.end(token)
    assert tracing.current() is None
    await receiver._on_message(SimpleNamespace(data=nats.sent[0]))
    assert heard == ["4bf92f3577b34da6a3ce929d0e0e4736"]
    assert tracing.current() is None  # the receiver's own context is left as it was
