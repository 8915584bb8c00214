"""Operators over /ws/operator: login, offers, accept, replies, transfer, close, resync."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import gateway as gateway_module
from hub.app import build_app
from hub.context import Hub
from hub.domain import Channel, Operator
from storage import operators
from tests.conftest import OPERATOR_PASSWORD, add_form, add_operator, one_row
from tests.fixtures.sockets import Socket, closed_with

Client = TestClient[Any, Any]
PASSWORD = OPERATOR_PASSWORD


async def _operator(
    pool: asyncpg.Pool, login: str, role: str = "operator", max_dialogs: int = 5
) -> int:
    return await add_operator(pool, login, role=role, max_dialogs=max_dialogs)


async def _login(client: Client, login: str) -> str:
    reply = await client.post("/api/v1/auth/login", json={"login": login, "password": PASSWORD})
    assert reply.status == 200, await reply.text()
    token: str = (await reply.json())["token"]
    return token


async def _connect(client: Client, token: str) -> Socket:
    ws = await client.ws_connect(f"/ws/operator?token={token}")
    return Socket(ws)


async def test_login_errors_and_unauthorized_socket(client: Client, pool: asyncpg.Pool) -> None:
    await _operator(pool, "anna")
    wrong = await client.post("/api/v1/auth/login", json={"login": "anna", "password": "nope"})
    assert wrong.status == 401 and (await wrong.json())["error"]["code"] == "invalid_credentials"
    unknown = await client.post("/api/v1/auth/login", json={"login": "nobody", "password": "nope"})
    assert unknown.status == 401
    assert (await client.post("/api/v1/auth/login", json={"login": 5})).status == 422
    assert (await client.get("/ws/operator?token=op_forged")).status == 401
    token = await _login(client, "anna")
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (await me.json())["login"] == "anna"
    await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert (
        await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    ).status == 401


async def test_offer_accept_reply_transfer_close(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    anna, boris = await _operator(pool, "anna"), await _operator(pool, "boris")
    a = await _connect(client, await _login(client, "anna"))
    b = await _connect(client, await _login(client, "boris"))
    for sock in (a, b):
        hello = await sock.next("hello")
        assert hello["dialogs"] == [] and hello["offers"] == []
        await sock.send(type="presence", status="online")
        assert (await sock.next("presence"))["status"] == "online"

    submitted = await (
        await client.post(
            "/forms/site",
            json={
                "name": "Ivan",
                "phone": "+79161234567",
                "message": "<img src=x onerror=alert(1)>",
            },
        )
    ).json()
    offer = await a.next("dialog.offered")  # equal load: the lowest id
    assert offer["dialog"]["id"] == submitted["dialog_id"]
    assert offer["lead"]["name"] == "Ivan" and offer["expires_in_s"] == 30
    await a.send(type="accept", dialog_id=submitted["dialog_id"])
    assigned = await a.next("dialog.assigned")
    assert assigned["dialog"]["status"] == "assigned" and assigned["dialog"]["operator_id"] == anna

    await client.post("/forms/site", json={"phone": "89161234567", "message": "are you there?"})
    new = await a.next("interaction")
    assert new["interaction"]["text"] == "are you there?"

    await a.send(type="send", dialog_id=submitted["dialog_id"], text="Hello!", ref=7)
    sent = await a.next("sent")
    assert sent["ref"] == 7
    echo = await a.next("interaction")
    assert echo["interaction"]["direction"] == "out" and echo["interaction"]["author"] == "anna"
    assert echo["interaction"]["delivery_state"] == "undeliverable"  # a form dialog, no email yet

    await b.send(type="send", dialog_id=submitted["dialog_id"], text="not mine")
    assert (await b.next("error"))["code"] == "not_yours"

    await a.send(type="transfer", dialog_id=submitted["dialog_id"], operator_id=boris)
    assert (await a.next("dialog.unassigned"))["dialog_id"] == submitted["dialog_id"]
    assert (await b.next("dialog.assigned"))["dialog"]["operator_id"] == boris

    await b.send(type="close", dialog_id=submitted["dialog_id"])
    assert (await b.next("dialog.closed"))["dialog_id"] == submitted["dialog_id"]
    dialog = await one_row(
        pool,
        "SELECT status, assigned_at, first_response_at FROM dialogs WHERE id = $1",
        submitted["dialog_id"],
    )
    assert dialog["status"] == "closed" and dialog["first_response_at"] is not None
    for sock in (a, b):
        await sock.ws.close()


async def test_reconnect_resyncs_and_leaving_withdraws_offers(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    await _operator(pool, "anna")
    await _operator(pool, "boris")
    token = await _login(client, "anna")
    a = await _connect(client, token)
    await a.next("hello")
    await a.send(type="presence", status="online")
    await a.next("presence")
    first = await (await client.post("/forms/site", json={"phone": "+79160000001"})).json()
    await a.next("dialog.offered")
    await a.send(type="accept", dialog_id=first["dialog_id"])
    await a.next("dialog.assigned")
    await client.post("/forms/site", json={"phone": "+79160000001", "message": "while away"})
    await a.next("interaction")
    await a.ws.close()  # a reload: the state comes back with hello
    again = await _connect(client, token)
    hello = await again.next("hello")
    assert [d["id"] for d in hello["dialogs"]] == [first["dialog_id"]]
    # Unread: everything since the dialog was last read (never, here).
    assert hello["dialogs"][0]["unread"] == 2 and hello["dialogs"][0]["last_text"] == "while away"
    assert hello["presence"] == "online"
    second = await (await client.post("/forms/site", json={"phone": "+79160000002"})).json()
    await again.next("dialog.offered")
    # Anna leaves for good with an offer pending: it goes to Boris once he is online.
    b = await _connect(client, await _login(client, "boris"))
    await b.next("hello")
    await b.send(type="presence", status="online")
    await again.ws.close()
    offer = await b.next("dialog.offered", timeout=10)
    assert offer["dialog"]["id"] == second["dialog_id"]
    assert (
        await operators.presence(
            pool, await pool.fetchval("SELECT id FROM operators WHERE login = 'anna'")
        )
        == "offline"
    )
    await b.ws.close()


async def test_operator_sees_only_own_dialogs_and_leads(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    await _operator(pool, "anna")
    await _operator(pool, "sam", role="supervisor")
    mine = await (await client.post("/forms/site", json={"phone": "+79160000011"})).json()
    other = await (await client.post("/forms/site", json={"phone": "+79160000022"})).json()
    anna = await pool.fetchval("SELECT id FROM operators WHERE login = 'anna'")
    await pool.execute(
        "UPDATE dialogs SET status = 'assigned', operator_id = $1 WHERE id = $2",
        anna,
        mine["dialog_id"],
    )
    headers = {"Authorization": f"Bearer {await _login(client, 'anna')}"}
    listed = await (await client.get("/api/v1/dialogs", headers=headers)).json()
    assert [d["id"] for d in listed["items"]] == [mine["dialog_id"]]
    assert (
        await client.get(f"/api/v1/dialogs/{other['dialog_id']}", headers=headers)
    ).status == 404
    assert (await client.get(f"/api/v1/leads/{other['lead_id']}", headers=headers)).status == 404
    assert (
        await client.get(f"/api/v1/leads/{mine['lead_id']}/interactions", headers=headers)
    ).status == 200
    leads = await (await client.get("/api/v1/leads", headers=headers)).json()
    assert [lead["id"] for lead in leads["items"]] == [mine["lead_id"]]
    assert (
        await client.post(
            f"/api/v1/dialogs/{other['dialog_id']}/messages", json={"text": "x"}, headers=headers
        )
    ).status == 404
    assert (await client.get("/api/v1/unsorted", headers=headers)).status == 403
    boss = {"Authorization": f"Bearer {await _login(client, 'sam')}"}
    everything = await (await client.get("/api/v1/dialogs", headers=boss)).json()
    assert len(everything["items"]) == 2


@pytest.mark.parametrize(
    "frame",
    [
        '{"type": "accept"}',
        "not json",
        '{"no": "type"}',
        '{"type": "dance"}',
        '{"type": "presence", "status": "sleeping"}',
        '{"type": "accept", "dialog_id": 999}',
    ],
)
async def test_bad_frames_get_error_frames(client: Client, pool: asyncpg.Pool, frame: str) -> None:
    await _operator(pool, "anna")
    sock = await _connect(client, await _login(client, "anna"))
    await sock.next("hello")
    await sock.ws.send_str(frame)
    error = await sock.next("error")
    assert error["code"] and error["message"]
    await sock.send(type="ping")
    assert (await sock.next("pong"))["type"] == "pong"  # the socket stays usable
    await sock.ws.close()


async def test_supervisor_sees_queues_and_load_live(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    await _operator(pool, "sam", role="supervisor")
    await _operator(pool, "anna")
    boss = await _connect(client, await _login(client, "sam"))
    await boss.next("hello")
    state = await boss.next("supervisor.state")
    assert {o["name"] for o in state["operators"]} == {"Sam", "Anna"}
    assert state["queues"] == [{"name": "default", "waiting": 0, "held": 0, "oldest_wait_s": 0.0}]
    await client.post("/forms/site", json={"phone": "+79160000033"})  # nobody online: it waits
    async with asyncio.timeout(10):
        while (await boss.next("supervisor.state"))["queues"][0]["waiting"] != 1:
            continue
    await boss.ws.close()


async def test_login_attempts_are_limited(client: Client, pool: asyncpg.Pool) -> None:
    await _operator(pool, "anna")
    statuses = [
        (
            await client.post("/api/v1/auth/login", json={"login": "anna", "password": "guess"})
        ).status
        for _ in range(12)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]


async def test_a_socket_ends_when_its_token_is_revoked_or_expires(
    client: Client, pool: asyncpg.Pool, hub: Hub
) -> None:
    await _operator(pool, "anna")
    token = await _login(client, "anna")
    other_tab = await _login(client, "anna")
    socket = await _connect(client, token)
    other = await _connect(client, other_tab)
    await socket.next("hello")
    await other.next("hello")
    out = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status == 200
    assert await closed_with(socket) == 4401
    # Another session of the same operator is not touched.
    await other.send(type="ping")
    await other.next("pong")

    await pool.execute("UPDATE operator_tokens SET expires_at = now() + interval '1 second'")
    expiring = await _connect(client, other_tab)
    await expiring.next("hello")
    assert await closed_with(expiring) == 4401
    # A token that ended without a notice reaching this node (revoked elsewhere, a notice
    # lost) is found by the gateway's periodic look.
    await other.send(type="ping")
    await other.next("pong")
    await hub.gateway.check_sessions()
    assert await closed_with(other) == 4401


async def test_previews_show_the_customers_latest_message_and_waiting_time(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    anna = await _operator(pool, "anna")
    dialog_id = 0
    for n in range(3):
        reply = await client.post(
            "/forms/site", json={"email": "ivan@example.com", "message": f"question {n}"}
        )
        dialog_id = (await reply.json())["dialog_id"]
    await pool.execute(
        "UPDATE dialogs SET status = 'assigned', operator_id = $2 WHERE id = $1", dialog_id, anna
    )
    socket = await _connect(client, await _login(client, "anna"))
    [waiting] = (await socket.next("hello"))["dialogs"]
    assert waiting["last_text"] == "question 2" and waiting["waiting_since"] is not None
    answered = await client.post(
        f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "our answer"}, headers=auth
    )
    assert answered.status == 201
    await socket.ws.close()
    socket = await _connect(client, await _login(client, "anna"))
    [dialog] = (await socket.next("hello"))["dialogs"]
    # Our own reply is not the customer's words; the customer no longer waits.
    assert dialog["last_text"] == "question 2" and dialog["waiting_since"] is None
    assert dialog["last_at"] >= waiting["last_at"]
    await socket.ws.close()


async def test_presence_changes_at_once_are_folded_into_one_frame(
    client: Client, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many consoles coming online together (a node restart) are one frame to each console,
    not one per colleague."""
    # A window wide enough for a slow machine to take every change in it.
    monkeypatch.setattr(gateway_module, "PRESENCE_FOLD_S", 1.0)
    logins = [f"op{i}" for i in range(6)]
    ids = [await _operator(pool, login) for login in logins]
    watcher = await _connect(client, await _login(client, "op0"))
    await watcher.next("hello")
    others = [await _connect(client, await _login(client, login)) for login in logins[1:]]
    for socket in others:
        await socket.next("hello")
    for socket in others:  # all within the fold window
        await socket.send(type="presence", status="online")
    folded = await watcher.next("operators.presence")
    assert {c["operator_id"]: c["presence"] for c in folded["changes"]} == {
        i: "online" for i in ids[1:]
    }
    await watcher.settle()
    assert "operator.presence" not in watcher.kinds()
    for socket in [watcher, *others]:
        await socket.ws.close()


async def test_presence_changes_reach_every_console(client: Client, pool: asyncpg.Pool) -> None:
    """Colleagues' transfer lists and an operator's other tabs follow presence live."""
    anna = await _operator(pool, "anna")
    boris = await _operator(pool, "boris")
    anna_tab = await _connect(client, await _login(client, "anna"))
    anna_other_tab = await _connect(client, await _login(client, "anna"))
    boris_tab = await _connect(client, await _login(client, "boris"))
    for socket in (anna_tab, anna_other_tab, boris_tab):
        await socket.next("hello")
    await boris_tab.send(type="presence", status="online")
    seen = await anna_tab.next("operator.presence")
    assert (seen["operator_id"], seen["presence"]) == (boris, "online")
    await anna_tab.send(type="presence", status="away")
    mine = await anna_other_tab.next("operator.presence")
    while mine["operator_id"] != anna:
        mine = await anna_other_tab.next("operator.presence")
    assert mine["presence"] == "away"
    for socket in (anna_tab, anna_other_tab, boris_tab):
        await socket.ws.close()


async def test_hello_comes_first_though_news_arrives_while_it_is_read(
    client: Client, pool: asyncpg.Pool, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket hears of changes from the moment it joins (none made while its hello is
    read is lost), yet its console gets hello before them: news of a state it was not
    given yet would be applied to nothing, then overwritten by the older hello."""
    boris = await _operator(pool, "boris")
    await _operator(pool, "anna")
    boris_tab = await _connect(client, await _login(client, "boris"))
    await boris_tab.next("hello")
    reading, go_on = asyncio.Event(), asyncio.Event()
    read_hello = hub.gateway.hello

    async def slow_hello(operator: Operator) -> dict[str, Any]:
        reading.set()
        await go_on.wait()
        return await read_hello(operator)

    monkeypatch.setattr(hub.gateway, "hello", slow_hello)
    anna_tab = await _connect(client, await _login(client, "anna"))
    async with asyncio.timeout(5):
        await reading.wait()  # anna's socket has joined; her hello is being read
    await boris_tab.send(type="presence", status="online")
    await asyncio.sleep(0.2)  # the change is broadcast meanwhile
    go_on.set()
    async with asyncio.timeout(5):
        first = json.loads(await anna_tab.ws.receive_str())
        second = json.loads(await anna_tab.ws.receive_str())
    assert first["type"] == "hello"
    assert (second["type"], second["operator_id"], second["presence"]) == (
        "operator.presence",
        boris,
        "online",
    )
    for socket in (anna_tab, boris_tab):
        await socket.ws.close()


async def test_a_leads_news_reaches_whoever_holds_one_of_its_dialogs(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    """The console shows a lead's conversation across channels: a message in another
    dialog of the lead, and a merge done by someone else, reach the holder live."""
    anna = await _operator(pool, "anna")
    first = await (
        await client.post("/forms/site", json={"phone": "+79120000001", "message": "one"})
    ).json()
    await pool.execute(
        "UPDATE dialogs SET status = 'assigned', operator_id = $2 WHERE id = $1",
        first["dialog_id"],
        anna,
    )
    socket = await _connect(client, await _login(client, "anna"))
    await socket.next("hello")
    await add_form(pool, "landing", rate_limit="0")
    other = await client.post(
        "/forms/landing", json={"phone": "89120000001", "message": "from the landing page"}
    )
    assert other.status == 201
    frame = await socket.next("interaction")
    assert frame["interaction"]["text"] == "from the landing page"
    assert frame["interaction"]["lead_id"] == first["lead_id"]

    duplicate = await pool.fetchval("INSERT INTO leads (name) VALUES ('CRM copy') RETURNING id")
    merged = await client.post(
        f"/api/v1/leads/{first['lead_id']}/merge", json={"other_id": duplicate}, headers=auth
    )
    assert merged.status == 200
    notice = await socket.next("lead.merged")
    assert (notice["lead_id"], notice["merged_id"]) == (first["lead_id"], duplicate)
    await socket.ws.close()


async def test_a_stopping_node_closes_sockets_with_service_restart(
    hub: Hub, pool: asyncpg.Pool
) -> None:
    """1012: the console reconnects at once (to another node behind the balancer)."""
    await _operator(pool, "anna")
    client = TestClient(TestServer(build_app(hub, background=False)))
    await client.start_server()
    try:
        sock = await _connect(client, await _login(client, "anna"))
        await sock.next("hello")

        async def until_closed() -> None:
            while (await sock.ws.receive()).type not in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
            ):
                continue

        reading = asyncio.ensure_future(until_closed())  # the console answers the close
        await client.server.close()  # the node stops: SIGTERM's path, on_shutdown first
        async with asyncio.timeout(5):
            await reading
        assert sock.ws.close_code == 1012
    finally:
        await client.close()
