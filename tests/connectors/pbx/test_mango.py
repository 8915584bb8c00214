"""Mango Office against tests/fakes/pbx.py: signed event forms on events/… paths, ping, a
full inbound call with its recording, a missed call and its callback, a bad sign."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import pytest

from tests.conftest import count, one_row
from tests.connectors.pbx.conftest import (
    CUSTOMER,
    Client,
    add_pbx,
    operator_online,
    stored_recording,
    the_call,
)
from tests.fakes.pbx import RECORDING, FakePbx, mango_form

BASE = "/connectors/pbx/mango"
ENTRY = "MzUyODbvczg4OTo0MDE="
T0 = 1_715_670_903


async def _event(client: Client, fake: FakePbx, path: str, event: dict[str, Any]) -> None:
    body, headers = mango_form(fake.key, fake.salt, event)
    reply = await client.post(f"{BASE}/{path}", data=body, headers=headers)
    assert reply.status == 200, await reply.text()
    assert await reply.json() == {"success": True}


@pytest.fixture
async def mango(pool: asyncpg.Pool, fake_pbx: FakePbx) -> FakePbx:
    await add_pbx(
        pool,
        "mango",
        provider="mango",
        api_key=fake_pbx.key,
        api_salt=fake_pbx.salt,
        api_base=fake_pbx.base,
    )
    return fake_pbx


def _leg(seq: int, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "entry_id": ENTRY,
        "call_id": "MzUyODbvczg4OTo0MDEMzUyODbvczg4O",
        "timestamp": T0 + seq,
        "seq": seq,
        "call_state": state,
        "location": "abonent",
        "from": {"number": "79001234567"},
        "to": {
            "extension": "101",
            "number": "sip:anna@example.mangosip.ru",
            "line_number": "74952129298",
        },
        **extra,
    }


def _summary(result: int, talk: int, reason: int) -> dict[str, Any]:
    return {
        "entry_id": ENTRY,
        "call_direction": 1,
        "from": {"number": "79001234567"},
        "to": {"extension": "101", "number": "sip:anna@example.mangosip.ru"},
        "line_number": "74952129298",
        "create_time": T0,
        "forward_time": T0 + 1,
        "talk_time": talk,
        "end_time": T0 + 60,
        "entry_result": result,
        "disconnect_reason": reason,
    }


async def test_ping_and_signatures(
    client: Client, pool: asyncpg.Pool, mango: FakePbx, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await client.post(
        f"{BASE}/ping", data=b"", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert reply.status == 200
    body, headers = mango_form(mango.key, "not-the-salt", _leg(1, "Appeared"))
    with caplog.at_level(logging.WARNING):
        reply = await client.post(f"{BASE}/events/call", data=body, headers=headers)
    assert reply.status == 403
    assert "please report it" in caplog.text and mango.salt not in caplog.text
    body, headers = mango_form("another-key", mango.salt, _leg(1, "Appeared"))
    assert (await client.post(f"{BASE}/events/call", data=body, headers=headers)).status == 403
    assert (
        await client.post(f"{BASE}/events/call", data=b"json=%7B%7D", headers=headers)
    ).status == 401
    assert await count(pool, "calls") == 0
    # A pbx channel of another provider has no events/… paths.
    await add_pbx(pool, "cti", provider="generic", secret="t")
    body, headers = mango_form(mango.key, mango.salt, _leg(1, "Appeared"))
    assert (
        await client.post("/connectors/pbx/cti/events/call", data=body, headers=headers)
    ).status == 404
    # Command results and DTMF are acknowledged and not stored.
    await _event(client, mango, "events/dtmf", {"entry_id": ENTRY, "dtmf": "1"})
    await _event(client, mango, "result/callback", {"command_id": "c1", "result": 1000})
    with caplog.at_level(logging.WARNING):
        await _event(client, mango, "events/teleport", {"entry_id": ENTRY})
    assert "events/teleport is an unknown event type" in caplog.text
    assert await count(pool, "calls") == 0


async def test_an_inbound_call_pops_is_answered_and_keeps_its_recording(
    client: Client, pool: asyncpg.Pool, mango: FakePbx, auth: dict[str, str]
) -> None:
    anna, anna_ws = await operator_online(client, pool, "anna", "101")
    _, boris_ws = await operator_online(client, pool, "boris", "102")
    await _event(client, mango, "events/call", _leg(1, "Appeared"))
    ringing = await anna_ws.next("call.ringing")
    assert ringing["call"]["from"] == CUSTOMER and ringing["call"]["to"] == "+74952129298"
    assert "call.ringing" not in [f["type"] for f in await boris_ws.settle()]
    await _event(client, mango, "events/call", _leg(2, "Connected"))
    await anna_ws.next("call.answered")
    await _event(client, mango, "events/call", _leg(3, "Disconnected", disconnect_reason=1110))
    await _event(client, mango, "events/call", _leg(3, "Disconnected", disconnect_reason=1110))
    recording = {
        "entry_id": ENTRY,
        "call_id": "MzUyODbvczg4OTo0MDEMzUyODbvczg4O",
        "extension": "101",
        "recording_id": "rec-77",
        "recording_state": "Completed",
        "seq": 4,
        "timestamp": T0 + 61,
        "completion_code": 1000,
        "recipient": "Cloud",
    }
    await _event(client, mango, "events/recording", recording)  # before the summary
    await _event(client, mango, "events/summary", _summary(1, T0 + 5, 1110))
    assert (await anna_ws.next("call.ended"))["call"]["duration_s"] == 55

    stored = await the_call(pool, ENTRY)
    assert stored["status"] == "answered" and stored["operator_id"] == anna
    assert stored["cause"] == "mango 1110" and await count(pool, "calls") == 1

    file = await stored_recording(pool, stored["interaction_id"])
    assert mango.mango_requests == [{"recording_id": "rec-77", "action": "download"}]
    audio = await client.get(f"/api/v1/attachments/{file['id']}", headers=auth)
    assert await audio.read() == RECORDING


async def test_a_missed_call_leaves_a_callback(
    client: Client, pool: asyncpg.Pool, mango: FakePbx
) -> None:
    _, anna_ws = await operator_online(client, pool, "anna", "101")
    await _event(
        client,
        mango,
        "events/call",
        _leg(1, "Appeared", location="queue", to={"acd_group": "22", "line_number": "74952129298"}),
    )
    await anna_ws.next("call.ringing")  # the group rang: the queue's online operators
    await _event(client, mango, "events/summary", _summary(0, 0, 1110))
    missed = await the_call(pool, ENTRY)
    assert missed["status"] == "missed"
    offered = await anna_ws.next("dialog.offered")
    assert offered["dialog"]["callback"]["call_id"] == missed["id"]
    event = await one_row(pool, "SELECT * FROM domain_events WHERE type = 'call.missed'")
    assert event["data"]["call"]["status"] == "missed"

    # anna calls the customer back from her extension; the answer closes the task.
    back = "MzUyODbvczg4OTo0MDI="
    leg = {
        "entry_id": back,
        "call_id": "back-leg",
        "location": "abonent",
        "from": {"extension": "101", "number": "sip:anna@example.mangosip.ru"},
        "to": {"number": "79001234567"},
    }
    await _event(
        client,
        mango,
        "events/call",
        {**leg, "seq": 1, "call_state": "Appeared", "timestamp": T0 + 100},
    )
    await _event(
        client,
        mango,
        "events/call",
        {**leg, "seq": 2, "call_state": "Connected", "timestamp": T0 + 105},
    )
    returned = await the_call(pool, back)
    assert returned["direction"] == "out" and returned["status"] == "in_progress"
    assert returned["lead_id"] == missed["lead_id"]
    callback = await one_row(pool, "SELECT * FROM callbacks")
    assert callback["closed_by_call"] == returned["id"]
    summary = {**_summary(1, T0 + 105, 1100), "entry_id": back, "call_direction": 2}
    summary["end_time"] = T0 + 160
    summary |= {"from": leg["from"], "to": leg["to"]}
    await _event(client, mango, "events/summary", summary)
    assert (await the_call(pool, back))["status"] == "answered"
