"""The supervisors' desk over /ws/operator: the live state of the shift, monitoring a
dialog one does not hold, taking it over, and hand-overs with a comment for the receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient

from hub.domain import Channel
from storage import queues
from tests.conftest import add_operator, form_lead, one_row, operator_token
from tests.fixtures.sockets import Socket

Client = TestClient[Any, Any]


async def _socket(client: Client, login: str, tz: str | None = None) -> Socket:
    headers = await operator_token(client, login)
    token = headers["Authorization"].removeprefix("Bearer ")
    query = f"&tz={tz}" if tz is not None else ""
    socket = Socket(await client.ws_connect(f"/ws/operator?token={token}{query}"))
    await socket.next("hello")
    return socket


async def _desk_until(socket: Socket, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The first desk frame that passes `check` (the desk is pushed on every change)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await socket.next("supervisor.state")
            if check(frame):
                return frame


async def test_the_desk_shows_the_shift_live(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    await add_operator(pool, "sam", role="supervisor")
    anna = await add_operator(pool, "anna", max_dialogs=3, online=True)
    boss = await _socket(client, "sam")
    first = await boss.next("supervisor.state")
    assert first["summary"]["waiting"] == 0 and first["dialogs"] == []
    assert first["queues"] == [{"name": "default", "waiting": 0, "held": 0, "oldest_wait_s": 0.0}]
    assert {o["name"]: o["presence"] for o in first["operators"]} == {
        "Sam": "offline",
        "Anna": "online",
    }
    assert first["summary"]["online"] == 1 and first["summary"]["capacity"] == 3

    await form_lead(client, pool, anna, name="Held", phone="+79160000101")
    await pool.execute("UPDATE operator_presence SET status = 'away' WHERE operator_id = $1", anna)
    await form_lead(client, pool, None, name="Waiting", phone="+79160000102")
    frame = await _desk_until(boss, lambda f: f["summary"]["waiting"] == 1)
    listed = {d["lead"]["name"]: d for d in frame["dialogs"]}
    assert set(listed) == {"Held", "Waiting"}
    # Not yet held first: what needs a supervisor's eye.
    assert [d["lead"]["name"] for d in frame["dialogs"]] == ["Waiting", "Held"]
    assert listed["Waiting"]["status"] == "queued" and listed["Waiting"]["queue"] == "default"
    assert listed["Waiting"]["queued_at"] and listed["Waiting"]["waiting_since"]
    assert listed["Held"]["operator_id"] == anna
    assert frame["queues"][0]["waiting"] == 1 and frame["queues"][0]["held"] == 1
    assert frame["dialogs_total"] == 2
    summary = frame["summary"]
    assert summary["load"] == 1 and summary["away"] == 1 and summary["online"] == 0
    assert summary["longest_wait_s"] >= 0 and summary["zone"] == "UTC"
    assert summary["missed_today"] == 0
    assert {o["name"]: o["load"] for o in frame["operators"]} == {"Sam": 0, "Anna": 1}
    await boss.ws.close()


async def test_missed_today_counts_in_the_consoles_time_zone(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    """Missed: inbound calls nobody answered, and dialogs closed without a human answer,
    since midnight where the supervisor is; an unknown zone is read as UTC."""
    await add_operator(pool, "sam", role="supervisor")
    anna = await add_operator(pool, "anna")
    unanswered = await form_lead(client, pool, None, name="Lost", phone="+79160000201")
    answered = await form_lead(client, pool, anna, name="Kept", phone="+79160000202")
    old = await form_lead(client, pool, None, name="Old", phone="+79160000203")
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() WHERE lead_id = ANY($1::bigint[])",
        [unanswered, answered, old],
    )
    await pool.execute("UPDATE dialogs SET first_response_at = now() WHERE lead_id = $1", answered)
    # Closed a minute before midnight in Moscow: yesterday there, and where else depends on
    # the hour now; Python's own time-zone data says which.
    now = datetime.now(UTC)
    moscow_midnight = now.astimezone(ZoneInfo("Europe/Moscow")).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    closed = moscow_midnight - timedelta(minutes=1)
    await pool.execute("UPDATE dialogs SET closed_at = $2 WHERE lead_id = $1", old, closed)
    await pool.execute(
        """INSERT INTO calls (channel_id, provider_call_id, direction, status, created_at)
           VALUES ($1, 'missed-1', 'in', 'missed', now()), ($1, 'answered-1', 'in', 'answered',
                   now())""",
        form.id,
    )

    def expected(zone: str) -> int:
        midnight = now.astimezone(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
        return 2 + (closed >= midnight)  # the lost dialog and the missed call, then the old one

    for zone in ("Europe/Moscow", "America/Los_Angeles", "Asia/Tokyo"):
        boss = await _socket(client, "sam", zone)
        summary = (await boss.next("supervisor.state"))["summary"]
        assert summary["zone"] == zone
        assert summary["missed_today"] == expected(zone), zone
        await boss.ws.close()
    odd = await _socket(client, "sam", "Mars/Olympus_Mons")
    assert (await odd.next("supervisor.state"))["summary"]["zone"] == "UTC"
    await odd.ws.close()


async def test_a_supervisor_monitors_a_dialog_and_takes_it_over(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    sam = await add_operator(pool, "sam", role="supervisor")
    anna = await add_operator(pool, "anna")
    lead = await form_lead(client, pool, anna, name="Ivan", phone="+79160000301")
    dialog_id = await pool.fetchval("SELECT id FROM dialogs WHERE lead_id = $1", lead)
    worker = await _socket(client, "anna")
    boss = await _socket(client, "sam")

    # An operator neither monitors nor takes over.
    await worker.send(type="watch", dialog_id=dialog_id)
    assert (await worker.next("error"))["code"] == "forbidden"
    await worker.send(type="take_over", dialog_id=dialog_id)
    assert (await worker.next("error"))["code"] == "forbidden"

    await boss.send(type="watch", dialog_id=dialog_id)
    await boss.settle()
    await client.post("/forms/site", json={"phone": "+79160000301", "message": "hello?"})
    heard = await boss.next("interaction")
    assert heard["interaction"]["text"] == "hello?"
    assert (await worker.next("interaction"))["interaction"]["text"] == "hello?"
    # A note from the desk: the operator sees it, the customer never.
    as_sam = await operator_token(client, "sam")
    note = await client.post(
        f"/api/v1/dialogs/{dialog_id}/notes", json={"text": "offer 10% off"}, headers=as_sam
    )
    assert note.status == 201
    assert (await worker.next("interaction"))["interaction"]["kind"] == "note"

    await boss.send(type="take_over", dialog_id=dialog_id)
    lost = await worker.next("dialog.unassigned")
    assert lost["dialog_id"] == dialog_id and lost["reason"] == "taken_over"
    got = await boss.next("dialog.assigned")
    assert got["dialog"]["operator_id"] == sam and got["dialog"]["handover"] == {
        "comment": None,
        "by_operator_id": sam,
    }
    assert (await boss.next("dialog.changed"))["dialog_id"] == dialog_id
    timeline = await client.get(f"/api/v1/leads/{lead}/timeline", headers=as_sam)
    moved = [e for e in (await timeline.json())["items"] if e["type"] == "dialog.transferred"]
    assert moved[-1]["actor"] == f"operator:{sam}"
    assert moved[-1]["data"]["from_operator_id"] == anna
    assert moved[-1]["data"]["to_operator_id"] == sam

    # Stopped monitoring: no more of its news but what a holder hears.
    await boss.send(type="watch", dialog_id=None)
    await boss.send(type="close", dialog_id=dialog_id)
    assert (await boss.next("dialog.closed"))["dialog_id"] == dialog_id
    await boss.settle()
    assert "dialog.changed" not in boss.kinds()
    for socket in (boss, worker):
        await socket.ws.close()


async def test_a_transfer_carries_a_comment_to_the_receiver(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    anna = await add_operator(pool, "anna")
    boris = await add_operator(pool, "boris")
    lead = await form_lead(client, pool, anna, name="Ivan", phone="+79160000401")
    dialog_id = await pool.fetchval("SELECT id FROM dialogs WHERE lead_id = $1", lead)
    a, b = await _socket(client, "anna"), await _socket(client, "boris")
    for socket in (a, b):
        await socket.send(type="presence", status="online")
        await socket.next("presence")

    await a.send(type="transfer", dialog_id=dialog_id, operator_id=boris, comment="x" * 1001)
    assert (await a.next("error"))["code"] == "text_too_long"
    await a.send(type="transfer", dialog_id=dialog_id, operator_id=boris, comment=["no"])
    assert (await a.next("error"))["code"] == "invalid_field"
    assert await pool.fetchval("SELECT operator_id FROM dialogs WHERE id = $1", dialog_id) == anna

    await a.send(type="transfer", dialog_id=dialog_id, queue="default", comment=" wants a refund ")
    offer = await b.next("dialog.offered")
    assert offer["dialog"]["handover"] == {"comment": "wants a refund", "by_operator_id": anna}
    event = await one_row(
        pool, "SELECT actor, data FROM domain_events WHERE type = 'dialog.transferred'"
    )
    assert event["data"]["comment"] == "wants a refund" and event["actor"] == f"operator:{anna}"
    await b.send(type="accept", dialog_id=dialog_id)
    assigned = await b.next("dialog.assigned")
    assert assigned["dialog"]["handover"]["comment"] == "wants a refund"

    # A CRM hands it back to Anna with its own note; the next transfer replaces the last.
    reply = await client.post(
        f"/api/v1/dialogs/{dialog_id}/transfer",
        json={"operator_id": anna, "comment": "deal 77 is hers"},
        headers=auth,
    )
    assert reply.status == 200, await reply.text()
    assert (await reply.json())["handover"] == {
        "comment": "deal 77 is hers",
        "by_operator_id": None,
    }
    assert (await a.next("dialog.assigned"))["dialog"]["handover"]["comment"] == "deal 77 is hers"
    bad = await client.post(
        f"/api/v1/dialogs/{dialog_id}/transfer",
        json={"queue": "default", "comment": 5},
        headers=auth,
    )
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "invalid_field"
    # Closing ends the hand-over's note with the care cycle.
    await a.send(type="close", dialog_id=dialog_id)
    await a.next("dialog.closed")
    row = await one_row(
        pool, "SELECT handover_comment, handover_by FROM dialogs WHERE id = $1", dialog_id
    )
    assert row["handover_comment"] is None and row["handover_by"] is None
    for socket in (a, b):
        await socket.ws.close()


async def test_a_waiting_dialog_given_directly_keeps_its_comment_in_the_log(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    """A supervisor reassigning a dialog nobody held yet: no `dialog.transferred` (nobody
    lost it), so the note is in `dialog.assigned`."""
    await queues.create(
        pool,
        name="vip",
        strategy="least_busy",
        offer_timeout_s=30,
        channels=["site"],
        skills=["vip"],  # nobody has it: the dialog waits for the supervisor
        hours=None,
        timezone="UTC",
        auto_reply=None,
    )
    await add_operator(pool, "sam", role="supervisor")
    anna = await add_operator(pool, "anna", online=True)
    lead = await form_lead(client, pool, None, name="Ivan", phone="+79160000501")
    dialog_id = await pool.fetchval("SELECT id FROM dialogs WHERE lead_id = $1", lead)
    boss = await _socket(client, "sam")
    await boss.send(type="transfer", dialog_id=dialog_id, operator_id=anna, comment="VIP")
    await boss.settle()
    assert "error" not in boss.kinds(), boss.frames
    data = await pool.fetchval(
        "SELECT data FROM domain_events WHERE type = 'dialog.assigned' AND dialog_id = $1",
        dialog_id,
    )
    assert data == {"via": "transfer", "comment": "VIP"}
    await boss.ws.close()
