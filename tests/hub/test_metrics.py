"""`GET /metrics`: Prometheus' text format, parsed by prometheus-client's own parser; the
inbound counts by kind and outcome, offers, the levels read from the database, the token."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from hub.app import build_app
from hub.context import Hub
from hub.domain import Channel
from storage import webhooks
from tests.conftest import OPERATOR_PASSWORD, add_operator, with_settings
from tests.fixtures.sockets import Socket
from webhooks.signing import new_secret

Client = TestClient[Any, Any]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(client: Client, **headers: str) -> Samples:
    reply = await client.get("/metrics", headers=headers)
    assert reply.status == 200, await reply.text()
    assert reply.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(await reply.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _inbound(samples: Samples, kind: str, outcome: str) -> float:
    return samples[("hub_inbound_events_total", (("kind", kind), ("outcome", outcome)))]


async def test_a_form_is_counted_stored_duplicate_or_rejected(
    client: Client, form: Channel
) -> None:
    before = await _scrape(client)
    for kind in ("form", "telegram", "vk", "viber", "email", "call"):
        for outcome in ("stored", "duplicate", "rejected"):
            assert _inbound(before, kind, outcome) == 0  # every series exists from the start
    headers = {"Idempotency-Key": "order-1"}
    body = {"name": "Ivan", "phone": "+79161234567", "message": "hi"}
    assert (await client.post("/forms/site", json=body, headers=headers)).status == 201
    assert (await client.post("/forms/site", json=body, headers=headers)).status == 200
    malformed = {"Content-Type": "application/json"}
    assert (await client.post("/forms/site", data=b"{not json", headers=malformed)).status == 400
    assert (await client.post("/forms/nowhere", json=body)).status == 404
    after = await _scrape(client)
    assert _inbound(after, "form", "stored") == 1
    assert _inbound(after, "form", "duplicate") == 1
    assert _inbound(after, "form", "rejected") == 2
    assert _inbound(after, "telegram", "stored") == 0
    histogram = ("hub_ingest_duration_seconds_count", (("kind", "form"),))
    assert after[histogram] == 2  # the stored one and the duplicate went through the pipeline
    assert after[("hub_database_up", ())] == 1
    assert after[("hub_node_info", (("node", after_node(after)),))] == 1


def after_node(samples: Samples) -> str:
    (labels,) = [dict(k[1]) for k in samples if k[0] == "hub_node_info"]
    return labels["node"]


async def test_levels_offers_and_sockets(client: Client, pool: asyncpg.Pool, form: Channel) -> None:
    await webhooks.create(pool, "http://127.0.0.1:9/hooks", ["lead.created"], new_secret())
    reply = await client.post("/forms/site", json={"phone": "+79160000001", "message": "first"})
    assert reply.status == 201
    waiting = await _scrape(client)
    queue = "default"  # no queue defined: the router's built-in one
    assert waiting[("hub_dialogs_waiting", (("queue", queue),))] == 1
    assert waiting[("hub_dialogs_oldest_wait_seconds", (("queue", queue),))] >= 0
    assert waiting[("hub_webhook_deliveries", (("status", "pending"),))] == 1
    assert waiting[("hub_webhook_deliveries", (("status", "dead"),))] == 0
    assert waiting[("hub_operator_sockets", ())] == 0

    await add_operator(pool, "anna")
    login = await client.post(
        "/api/v1/auth/login", json={"login": "anna", "password": OPERATOR_PASSWORD}
    )
    token = (await login.json())["token"]
    anna = Socket(await client.ws_connect(f"/ws/operator?token={token}"))
    try:
        await anna.next("hello")
        await anna.send(type="presence", status="online")
        offer = await anna.next("dialog.offered")
        await anna.send(type="accept", dialog_id=offer["dialog"]["id"])
        await anna.next("dialog.assigned")
        held = await _scrape(client)
    finally:
        await anna.ws.close()
    assert held[("hub_offers_total", (("outcome", "made"),))] == 1
    assert held[("hub_offers_total", (("outcome", "accepted"),))] == 1
    assert held[("hub_offers_total", (("outcome", "expired"),))] == 0
    assert held[("hub_operators", (("status", "online"),))] == 1
    assert held[("hub_operator_sockets", ())] == 1
    assert held[("hub_dialogs_waiting", (("queue", queue),))] == 0
    assert held[("hub_db_pool_connections", (("state", "max"),))] == pool.get_max_size()


async def test_a_token_guards_the_metrics(hub: Hub) -> None:
    guarded = with_settings(hub, metrics_token="scrape-me-0123456789")
    async with TestClient(TestServer(build_app(guarded, background=False))) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-me"}):
            reply = await client.get("/metrics", headers=headers)
            assert reply.status == 401
            assert (await reply.json())["error"]["code"] == "unauthorized"
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        samples = await _scrape(client, Authorization="Bearer scrape-me-0123456789")
        assert ("hub_database_up", ()) in samples
