"""Webhook deliveries to a real receiver on loopback that verifies them with the reference
`standardwebhooks` library: signed, in order per lead, retried, dead-lettered, disabled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.context import Hub
from hub.domain import Channel
from storage import channels, webhooks
from tests.conftest import add_form, add_operator, one_row, with_settings
from tests.fakes.crm import Receiver
from tests.fixtures.dns import resolve_to_loopback
from tests.fixtures.sockets import signed_in
from tests.fixtures.waiting import eventually
from webhooks.dispatcher import Dispatcher
from webhooks.sender import Sender
from webhooks.signing import new_secret

Client = TestClient[Any, Any]


@pytest.fixture
async def live(hub: Hub) -> AsyncIterator[Client]:
    """The hub with its dispatcher running, allowed to deliver to loopback, retrying fast."""
    fast = with_settings(hub, webhook_allow_private=True, webhook_retry_schedule="0.3")
    async with TestClient(TestServer(build_app(fast))) as client:
        yield client


async def _form(client: Client, **fields: str) -> None:
    reply = await client.post("/forms/site", json=fields)
    assert reply.status == 201, await reply.text()


async def test_events_arrive_signed_and_in_order_per_lead(
    live: Client, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    crm, url, secret = receiver
    await webhooks.create(pool, url, [], secret)
    await _form(live, name="Ivan", phone="+79160000001", message="hi")
    await _form(live, phone="89160000001", message="again")
    await eventually(lambda: _count(crm, 4))
    assert [e["type"] for e in crm.received] == [
        "lead.created",
        "dialog.created",
        "interaction.created",
        "interaction.created",
    ]
    assert crm.received[2]["data"]["kind"] == "form"
    # The CRM reads the message and who wrote it without asking back.
    assert crm.received[3]["data"]["interaction"]["text"] == "again"
    assert crm.received[3]["data"]["interaction"]["channel"] == "site"
    assert crm.received[0]["data"]["lead"]["phones"] == ["+79160000001"]
    assert crm.received[0]["data"]["lead"]["name"] == "Ivan"
    lead_id = crm.received[0]["data"]["lead_id"]
    assert all(e["data"]["lead_id"] == lead_id for e in crm.received)
    ids = [int(i.removeprefix("evt_")) for i in crm.ids]
    assert ids == sorted(ids)  # in the order they happened
    delivered = await pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"
    )
    assert delivered == len(crm.received)


async def _count(crm: Receiver, n: int) -> bool:
    return len(crm.received) >= n


async def test_a_receiver_down_then_up_gets_everything_with_the_same_ids(
    live: Client, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    crm, url, secret = receiver
    crm.answers = [(503, {"Retry-After": "1"}), (502, {}), (429, {}), (302, {"Location": url})]
    await webhooks.create(pool, url, ["interaction.created"], secret)
    await _form(live, name="Olga", phone="+79160000002", message="one")
    await eventually(lambda: _count(crm, 1), timeout=20)
    assert crm.received[0]["type"] == "interaction.created"
    assert crm.times[1] - crm.times[0] >= 0.9  # Retry-After honoured
    row = await one_row(pool, "SELECT * FROM webhook_deliveries")
    assert row["status"] == "delivered" and row["attempts"] == 5
    codes = [a["status_code"] for a in row["attempt_log"]]
    assert codes == [503, 502, 429, 302, 204]
    assert "redirects are not followed" in row["attempt_log"][3]["error"]


async def test_410_disables_and_other_4xx_are_dead_at_once(
    live: Client,
    pool: asyncpg.Pool,
    form: Channel,
    receiver: tuple[Receiver, str, str],
    auth: dict[str, str],
) -> None:
    crm, url, secret = receiver
    crm.answers = [(400, {})]
    sub = await webhooks.create(pool, url, ["interaction.created"], secret)
    await _form(live, name="Petr", phone="+79160000003", message="one")

    async def dead() -> bool:
        return bool(
            await pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'dead'")
        )

    await eventually(dead)
    assert (await one_row(pool, "SELECT attempts FROM webhook_deliveries"))["attempts"] == 1
    # Replayed, it arrives with the id it was first sent with.
    reply = await live.post(
        f"/api/v1/webhooks/{sub.id}/replay", json={"event_ids": []}, headers=auth
    )
    assert (await reply.json())["queued"] == 1
    await eventually(lambda: _count(crm, 1))
    row = await one_row(pool, "SELECT * FROM webhook_deliveries")
    assert crm.ids == [f"evt_{row['event_id']}"] and row["status"] == "delivered"
    crm.answers = [(410, {})]
    await _form(live, phone="+79160000003", message="two")

    async def disabled() -> bool:
        return not (
            await one_row(pool, "SELECT enabled FROM webhook_subscriptions WHERE id = $1", sub.id)
        )["enabled"]

    await eventually(disabled)
    await _form(live, phone="+79160000003", message="three")  # nothing more is made for it
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 2
    # Turned back on, it takes new events again.
    on = await live.patch(f"/api/v1/webhooks/{sub.id}", json={"enabled": True}, headers=auth)
    assert on.status == 200 and (await on.json())["enabled"] is True
    bad = await live.patch(f"/api/v1/webhooks/{sub.id}", json={"enabled": False}, headers=auth)
    assert bad.status == 422
    await _form(live, phone="+79160000003", message="four")
    await eventually(lambda: _count(crm, 2))
    assert crm.received[-1]["type"] == "interaction.created"


async def test_two_nodes_never_make_one_attempt_twice(
    hub: Hub, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    """Two dispatchers (two nodes) on one database, deliveries claimed at once."""
    crm, url, secret = receiver
    await webhooks.create(pool, url, ["interaction.created"], secret)
    async with TestClient(TestServer(build_app(hub, background=False))) as client:
        for n in range(12):
            await _form(client, name=f"Lead {n}", phone=f"+7916111{n:04d}", message="hi")
    nodes = [Dispatcher(pool, hub.dsn, allow_private=True, schedule=(0.3,)) for _ in range(2)]
    try:
        await asyncio.gather(*(node.deliver_due() for node in nodes for _ in range(3)))
        await eventually(lambda: _count(crm, 12))
    finally:
        for node in nodes:
            await node.sender.close()
    assert len(crm.ids) == len(set(crm.ids)) == 12
    attempts = await pool.fetchval("SELECT sum(attempts) FROM webhook_deliveries")
    assert attempts == 12


async def test_a_slow_subscriber_backlog_never_outlives_its_lease(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str, str]
) -> None:
    """A node claims more than its subscriber can take within a lease: what waits too long
    is left for the lease to run out and claimed again, never sent by two nodes."""
    crm, url, secret = receiver
    # 16 at a time, 0.4 s each: the third 16 would start after waiting 0.8 s, past the 0.5 s
    # a claimed one may wait (2.5 s lease - 1.5 s timeout - a quarter of the lease), so most
    # of the 64 are left to their lease and claimed again, by either node.
    crm.delay = 0.4
    await webhooks.create(pool, url, ["lead.created"], secret)
    await pool.execute(
        """INSERT INTO domain_events (type, lead_id, lead_seq, actor)
           SELECT 'lead.created', 900000 + n, 1, 'customer' FROM generate_series(1, 64) AS n"""
    )
    nodes = [Dispatcher(pool, "", allow_private=True, timeout_s=1.5, lease_s=2.5) for _ in range(2)]
    assert nodes[0].stale_after_s == 0.5

    claims: list[int] = []

    async def keep_delivering(node: Dispatcher) -> None:
        while len(set(crm.ids)) < 64:
            claims.append(await node.deliver_due())
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(asyncio.gather(*(keep_delivering(n) for n in nodes)), 30)
    finally:
        for node in nodes:
            await node.sender.close()
    assert sum(claims) > 64  # some were left to their lease and claimed again
    # Each event reached the CRM once, and every request it saw is one recorded attempt: none
    # was sent by two nodes, or sent and left unrecorded. On a loaded machine a request may
    # still outlast its timeout; that is a failed attempt, recorded and made again.
    assert len(crm.ids) == len(set(crm.ids)) == 64
    attempts = await pool.fetch("SELECT attempts, attempt_log FROM webhook_deliveries")
    assert len(crm.times) == sum(r["attempts"] for r in attempts) >= 64
    for row in attempts:
        for failed in row["attempt_log"][:-1]:
            assert "Timeout" in failed["error"]


async def test_a_slow_subscriber_does_not_hold_back_the_others(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str, str]
) -> None:
    """One CRM answers slowly with a long backlog: another one following the same events
    gets them all meanwhile (each subscriber's queue has a room of its own)."""
    slow, slow_url, slow_secret = receiver
    slow.delay = 0.5
    fast_secret = new_secret()
    fast = Receiver(fast_secret)
    server = TestServer(fast.app)
    await server.start_server()
    await webhooks.create(pool, slow_url, ["lead.created"], slow_secret)
    await webhooks.create(pool, str(server.make_url("/hooks")), ["lead.created"], fast_secret)
    await pool.execute(
        """INSERT INTO domain_events (type, lead_id, lead_seq, actor)
           SELECT 'lead.created', 800000 + n, 1, 'customer' FROM generate_series(1, 1000) AS n"""
    )
    node = Dispatcher(pool, "", allow_private=True)
    running = asyncio.ensure_future(node.deliver_due())
    try:
        await eventually(lambda: _count(fast, 1000), timeout=30)
        # 16 every half second: a few dozen so far. Had the slow one's backlog filled the
        # node's claims, the fast one would have waited for it to drain.
        assert len(slow.ids) < 100
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await node.sender.close()
        await server.close()


async def test_deliveries_wait_out_a_restart(
    hub: Hub, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    """Events recorded while no dispatcher runs (the node is down) go out when one starts."""
    crm, url, secret = receiver
    await webhooks.create(pool, url, ["interaction.created"], secret)
    async with TestClient(TestServer(build_app(hub, background=False))) as client:
        await _form(client, name="Ivan", phone="+79160000009", message="while down")
    assert await pool.fetchval("SELECT status FROM webhook_deliveries") == "pending"
    fast = with_settings(hub, webhook_allow_private=True, webhook_retry_schedule="0.3")
    async with TestClient(TestServer(build_app(fast))):
        await eventually(lambda: _count(crm, 1))
    assert crm.received[0]["data"]["kind"] == "form"


async def test_a_receiver_silent_for_days_is_disabled_and_supervisors_told(
    live: Client, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    crm, url, secret = receiver
    crm.answers = [(500, {})] * 3
    sub = await webhooks.create(pool, url, ["interaction.created"], secret)
    await pool.execute(
        "UPDATE webhook_subscriptions SET created_at = now() - interval '4 days' WHERE id = $1",
        sub.id,
    )
    await add_operator(pool, "sam", role="supervisor")
    sam = await signed_in(live, "sam")
    await _form(live, name="Ivan", phone="+79160000010", message="anyone?")
    told = await sam.next("webhook.disabled", timeout=10)
    assert told["webhook_id"] == sub.id and "no successful delivery" in told["reason"]
    row = await one_row(pool, "SELECT * FROM webhook_subscriptions WHERE id = $1", sub.id)
    assert not row["enabled"] and row["disabled_reason"].startswith("no successful delivery")
    await sam.ws.close()


async def test_a_missed_call_reaches_the_crm_with_the_call_and_the_lead(
    live: Client, pool: asyncpg.Pool, receiver: tuple[Receiver, str, str]
) -> None:
    crm, url, secret = receiver
    await webhooks.create(pool, url, ["call.missed"], secret)
    async with pool.acquire() as conn:
        await channels.create(conn, "pbx", "cti", {"provider": "generic", "secret": "t"})
    call = {"from": "+79001234567", "to": "+74951234567", "direction": "in", "callId": "m"}
    for event in ({"event": "newCall"}, {"event": "hangup", "cause": "noAnswer"}):
        reply = await live.post("/connectors/pbx/cti?token=t", json={**event, **call})
        assert reply.status == 200
    await eventually(lambda: _count(crm, 1))
    (missed,) = crm.received
    assert missed["type"] == "call.missed"
    assert missed["data"]["call"]["status"] == "missed"
    assert missed["data"]["call"]["from"] == "+79001234567"
    assert missed["data"]["lead"]["phones"] == ["+79001234567"]


async def test_what_cannot_be_claimed_does_not_keep_the_dispatcher_awake(
    hub: Hub, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    """A lead's later delivery waiting behind a retried one, and a disabled subscription's
    deliveries, are not "due now": the dispatcher sleeps until the retry."""
    crm, url, secret = receiver
    crm.answers = [(503, {})]
    sub = await webhooks.create(pool, url, [], secret)
    async with TestClient(TestServer(build_app(hub, background=False))) as client:
        await _form(client, name="Ivan", phone="+79160000011", message="one")
    node = Dispatcher(pool, hub.dsn, allow_private=True, schedule=(30.0,))
    try:
        assert await node.deliver_due() == 1  # the first fails; its lead's others wait
        async with pool.acquire() as conn:
            wait = await webhooks.next_due_in(conn)
            assert wait is not None and wait > 20
            await webhooks.disable(conn, sub.id, "test")
            assert await webhooks.next_due_in(conn) is None
    finally:
        await node.sender.close()


async def test_a_name_that_turns_private_after_subscribing_is_not_delivered_to(
    hub: Hub, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    crm, url, secret = receiver
    port = url.split(":")[2].split("/")[0]
    # Accepted while the name was public; now it resolves to loopback.
    await webhooks.create(pool, f"http://crm.example.com:{port}/hooks", [], secret)
    async with TestClient(TestServer(build_app(hub, background=False))) as client:
        await _form(client, name="Ivan", phone="+79160000012", message="one")
    node = Dispatcher(pool, hub.dsn, allow_private=False)
    node.sender = Sender(timeout_s=5, resolve=resolve_to_loopback)
    try:
        await node.deliver_due()
    finally:
        await node.sender.close()
    assert crm.received == []
    rows = await pool.fetch("SELECT status, attempt_log FROM webhook_deliveries ORDER BY id")
    assert rows[0]["status"] == "dead"
    assert "not a public address" in rows[0]["attempt_log"][0]["error"]


async def test_a_subscription_follows_only_the_channels_it_names(
    live: Client, pool: asyncpg.Pool, form: Channel, receiver: tuple[Receiver, str, str]
) -> None:
    crm, url, secret = receiver
    await add_form(pool, "other", rate_limit="0")
    await webhooks.create(pool, url, [], secret, ["other"])
    await _form(live, name="Site Lead", phone="+79160000013", message="on site")
    reply = await live.post("/forms/other", json={"name": "Other Lead", "phone": "+79160000014"})
    assert reply.status == 201
    await eventually(lambda: _count(crm, 3))
    await asyncio.sleep(0.5)
    assert {e["type"] for e in crm.received} == {
        "lead.created",
        "dialog.created",
        "interaction.created",
    }
    assert len(crm.received) == 3  # nothing of the site form's lead
    made = await pool.fetchval("SELECT count(*) FROM webhook_deliveries")
    assert made == 3
