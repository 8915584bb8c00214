"""The Zammad-compatible generic CTI endpoint: screen pop, answer, hang-up, recording,
missed calls and callbacks, blocked callers, tokens, repeats and order."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import asyncpg
import jsonschema

from tests.conftest import count, one_row
from tests.connectors.pbx.conftest import (
    CUSTOMER,
    Client,
    add_pbx,
    operator_online,
    stored_recording,
    the_call,
)
from tests.fakes.pbx import RECORDING, FakePbx
from tests.storage.test_domain_events import CALL_EVENTS, SCHEMA

URL = "/connectors/pbx/office?token=cti-token"
CALL = "307fa962-de8d-4ffc-817b-7f6993204159"


async def _cti(client: Client, **event: Any) -> Any:
    reply = await client.post(URL, json=event)
    assert reply.status == 200, await reply.text()
    return await reply.json()


async def _events(pool: asyncpg.Pool, kind: str) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT * FROM domain_events WHERE type = $1 ORDER BY id", kind))


async def test_an_answered_call_pops_the_card_is_answered_and_keeps_its_recording(
    client: Client, pool: asyncpg.Pool, fake_pbx: FakePbx, auth: dict[str, str]
) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token", api_base=fake_pbx.base)
    anna, anna_ws = await operator_online(client, pool, "anna", "101")
    _, boris_ws = await operator_online(client, pool, "boris", "102")
    call = {"from": "89001234567", "to": "74951234567", "direction": "in", "callId": CALL}

    assert await _cti(client, event="newCall", user=["101"], **call) == {}
    ringing = await anna_ws.next("call.ringing")
    assert ringing["call"]["from"] == CUSTOMER and ringing["call"]["direction"] == "in"
    assert ringing["call"]["to"] == "+74951234567"
    assert ringing["lead"]["phones"] == [CUSTOMER]  # created before the frame was sent
    assert "call.ringing" not in [f["type"] for f in await boris_ws.settle()]

    assert await _cti(client, event="answer", answeringNumber="101", **call) == {}
    answered = await anna_ws.next("call.answered")
    assert answered["call"]["status"] == "in_progress" and answered["call"]["operator_id"] == anna
    assigned = await anna_ws.next("dialog.assigned")  # the call is in anna's dialog list
    assert assigned["dialog"]["lead"]["id"] == ringing["lead"]["id"]

    recording = f"{fake_pbx.base}/files/{CALL}.mp3"
    hangup = {"event": "hangup", "cause": "normalClearing", "recordingUrl": recording}
    assert await _cti(client, answeringNumber="101", **hangup, **call) == {}
    ended = await anna_ws.next("call.ended")
    assert ended["call"]["status"] == "answered"
    assert "call.answered" not in boris_ws.kinds() and "call.ended" not in boris_ws.kinds()

    stored = await the_call(pool, CALL)
    assert stored["status"] == "answered" and stored["operator_id"] == anna
    assert stored["extension"] == "101" and stored["answered_at"] is not None
    dialog = await one_row(pool, "SELECT * FROM dialogs WHERE id = $1", stored["dialog_id"])
    assert dialog["status"] == "assigned" and dialog["operator_id"] == anna
    assert dialog["first_response_at"] == stored["answered_at"]  # the answer is the response

    file = await stored_recording(pool, stored["interaction_id"])
    reply = await client.get(f"/api/v1/leads/{stored['lead_id']}/interactions", headers=auth)
    (item,) = (await reply.json())["items"]
    assert item["kind"] == "call" and item["call"]["status"] == "answered"
    assert item["call"]["recording_url"] == f"/api/v1/attachments/{file['id']}"
    # The lead came from this call.
    lead = await (await client.get(f"/api/v1/leads/{stored['lead_id']}", headers=auth)).json()
    assert (lead["source"]["kind"], lead["source"]["channel"]) == ("call", "office")
    assert lead["source"]["direction"] == "in"
    audio = await client.get(item["call"]["recording_url"], headers=auth)
    assert audio.status == 200 and await audio.read() == RECORDING

    # The same hang-up again (a retrying PBX script) changes nothing.
    events_before = await count(pool, "domain_events")
    assert await _cti(client, answeringNumber="101", **hangup, **call) == {}
    assert await count(pool, "domain_events") == events_before
    assert await count(pool, "calls") == 1 and await count(pool, "interactions") == 1


async def test_a_missed_call_becomes_a_callback_which_the_return_call_closes(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token")
    anna, anna_ws = await operator_online(client, pool, "anna", "101")
    call = {"from": CUSTOMER, "to": "74951234567", "direction": "in", "callId": "missed-1"}
    await _cti(client, event="newCall", user="101", **call)
    await anna_ws.next("call.ringing")
    await _cti(client, event="hangup", cause="noAnswer", **call)
    assert (await anna_ws.next("call.ended"))["call"]["status"] == "missed"

    # The callback is offered like a dialog, and says which missed call it is for.
    offered = await anna_ws.next("dialog.offered")
    missed = await the_call(pool, "missed-1")
    assert offered["dialog"]["id"] == missed["dialog_id"]
    assert offered["dialog"]["callback"]["call_id"] == missed["id"]
    assert offered["dialog"]["callback"]["phone"] == CUSTOMER
    (event,) = await _events(pool, "call.missed")
    assert event["lead_id"] == missed["lead_id"] and event["data"]["call"]["from"] == CUSTOMER
    assert event["data"]["lead"]["phones"] == [CUSTOMER]
    await anna_ws.ws.send_json({"type": "accept", "dialog_id": missed["dialog_id"]})
    await anna_ws.next("dialog.assigned")

    # anna calls back from her extension; once the customer answers, the task is done.
    back = {"from": "101", "to": CUSTOMER, "direction": "out", "callId": "back-1", "user": "101"}
    await _cti(client, event="newCall", **back)
    assert await pool.fetchval("SELECT closed_at FROM callbacks") is None
    await _cti(client, event="answer", **back)
    callback = await one_row(pool, "SELECT * FROM callbacks")
    returned = await the_call(pool, "back-1")
    assert callback["closed_at"] is not None and callback["closed_by_call"] == returned["id"]
    assert returned["dialog_id"] == missed["dialog_id"]  # the same conversation
    await _cti(client, event="hangup", cause="normalClearing", **back)
    assert (await the_call(pool, "back-1"))["status"] == "answered"
    dialog = await one_row(pool, "SELECT * FROM dialogs WHERE id = $1", missed["dialog_id"])
    assert dialog["status"] == "assigned" and dialog["operator_id"] == anna
    assert len(await _events(pool, "callback.closed")) == 1
    await _fit_the_schema(pool)


async def _fit_the_schema(pool: asyncpg.Pool) -> None:
    """Every event the calls wrote fits the log's schema; each lead's are numbered 1, 2, 3…"""
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    per_lead: dict[int, list[int]] = defaultdict(list)
    seen = set()
    for record in await pool.fetch("SELECT * FROM domain_events ORDER BY id"):
        row = {**dict(record), "occurred_at": record["occurred_at"].isoformat()}
        validator.validate(row)
        seen.add(row["type"])
        if row["lead_id"] is not None:
            per_lead[row["lead_id"]].append(row["lead_seq"])
    assert seen >= CALL_EVENTS, sorted(seen)
    for seqs in per_lead.values():
        assert seqs == list(range(1, len(seqs) + 1))


async def test_a_callback_nobody_took_closes_when_the_customer_gets_through(
    client: Client, pool: asyncpg.Pool
) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token")
    first = {"from": CUSTOMER, "to": "74951234567", "direction": "in", "callId": "m-1"}
    await _cti(client, event="newCall", **first)
    await _cti(client, event="hangup", cause="cancel", **first)
    missed = await the_call(pool, "m-1")
    assert missed["status"] == "missed"
    waiting = await one_row(pool, "SELECT * FROM dialogs WHERE id = $1", missed["dialog_id"])
    assert waiting["status"] == "queued" and waiting["routable"]  # in the hub's queue

    # The customer calls again and someone outside the hub's operators answers.
    again = {"from": CUSTOMER, "to": "74951234567", "direction": "in", "callId": "m-2"}
    await _cti(client, event="newCall", **again)
    await _cti(client, event="answer", answeringNumber="reception", **again)
    assert (await one_row(pool, "SELECT * FROM callbacks"))["closed_at"] is not None
    dialog = await one_row(pool, "SELECT * FROM dialogs WHERE id = $1", missed["dialog_id"])
    assert dialog["status"] == "closed"


async def test_a_blocked_caller_is_rejected_busy(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token")
    call = {"from": CUSTOMER, "to": "74951234567", "direction": "in"}
    assert await _cti(client, event="newCall", callId="c-1", **call) == {}
    lead_id = (await the_call(pool, "c-1"))["lead_id"]
    reply = await client.patch(f"/api/v1/leads/{lead_id}", json={"blocked": True}, headers=auth)
    assert reply.status == 200 and (await reply.json())["blocked"] is True
    rejected = await _cti(client, event="newCall", callId="c-2", **call)
    assert rejected == {"action": "reject", "reason": "busy"}
    # A repeat of that newCall is answered the same way.
    assert await _cti(client, event="newCall", callId="c-2", **call) == rejected
    # The PBX still reports the hang-up: the call is kept, missed, and not called back.
    await _cti(client, event="hangup", callId="c-2", cause="busy", **call)
    assert (await the_call(pool, "c-2"))["status"] == "busy"
    assert await count(pool, "callbacks") == 0
    bad = await client.patch(f"/api/v1/leads/{lead_id}", json={"blocked": "yes"}, headers=auth)
    assert bad.status == 422


async def test_tokens_directions_and_unknown_events(client: Client, pool: asyncpg.Pool) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token")
    event = {"event": "newCall", "from": CUSTOMER, "to": "1", "direction": "in", "callId": "x"}
    for url in ("/connectors/pbx/office", "/connectors/pbx/office?token=wrong"):
        reply = await client.post(url, json=event)
        assert reply.status == 401
        assert await reply.json() == {"error": "Invalid token, please contact your admin!"}
    reply = await client.post(URL, json={**event, "direction": "sideways"})
    assert reply.status == 422 and await reply.json() == {"error": "Invalid direction!"}
    reply = await client.post(URL, json={**event, "event": "transfer"})
    assert reply.status == 200 and await reply.json() == {}
    reply = await client.post(URL, json={**event, "callId": None})
    assert reply.status == 422
    reply = await client.post(URL, data=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status == 400
    reply = await client.post(URL, data=b"event=newCall", headers={"Content-Type": "text/plain"})
    assert reply.status == 415
    assert await count(pool, "calls") == 0 and await count(pool, "leads") == 0


async def test_form_data_events_out_of_order_merge_into_one_call(
    client: Client, pool: asyncpg.Pool
) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token")
    await operator_online(client, pool, "anna", "101")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    fields = "from=%2B79001234567&to=74951234567&direction=in&call_id=ooo&user%5B%5D=101"
    for event in (
        "hangup&cause=normalClearing&answeringNumber=101",
        "answer&answeringNumber=101",
        "newCall",
    ):
        reply = await client.post(URL, data=f"event={event}&{fields}".encode(), headers=form)
        assert reply.status == 200, await reply.text()
    stored = await the_call(pool, "ooo")
    assert stored["status"] == "answered" and stored["rang"] == ["101"]
    assert await count(pool, "calls") == 1 and await count(pool, "interactions") == 1
    assert stored["shown"]["status"] == "answered"


async def test_an_anonymous_call_is_kept_without_a_lead_and_pops_to_the_queue(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token")
    _, anna_ws = await operator_online(client, pool, "anna", "101")
    call = {"from": "anonymous", "to": "74951234567", "direction": "in", "callId": "anon"}
    await _cti(client, event="newCall", **call)  # nobody named: the queue's operators ring
    ringing = await anna_ws.next("call.ringing")
    assert ringing["lead"] is None and ringing["call"]["from"] == "anonymous"
    await _cti(client, event="hangup", cause="cancel", **call)
    stored = await the_call(pool, "anon")
    assert stored["status"] == "missed" and stored["interaction_id"] is None
    assert await count(pool, "leads") == 0 and await count(pool, "callbacks") == 0
    listed = await client.get("/api/v1/calls", headers=auth)
    (item,) = (await listed.json())["items"]
    assert item["from"] == "anonymous" and item["lead_id"] is None and item["status"] == "missed"


async def test_text_cannot_be_sent_on_a_call_dialog(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_pbx(pool, "office", provider="generic", secret="cti-token")
    await _cti(
        client, event="newCall", callId="t-1", **{"from": CUSTOMER, "to": "1", "direction": "in"}
    )
    dialog_id = (await the_call(pool, "t-1"))["dialog_id"]
    before = await count(pool, "interactions")
    reply = await client.post(
        f"/api/v1/dialogs/{dialog_id}/messages", json={"text": "hello"}, headers=auth
    )
    assert reply.status == 409 and (await reply.json())["error"]["code"] == "cannot_send_text"
    assert await count(pool, "interactions") == before
