"""Zadarma against tests/fakes/pbx.py: the echo check, signatures, a full inbound call with
its recording, a missed call returned from an extension, the PBX's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

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
from tests.fakes.pbx import RECORDING, FakePbx, zadarma_notify
from tests.fixtures.waiting import eventually

PATH = "/connectors/pbx/zd"
START = "2024-05-14 10:15:03"  # Moscow time, as Zadarma sends it


async def _notify(client: Client, fake: FakePbx, **fields: str) -> str:
    body, headers = zadarma_notify(fake.secret, **fields)
    reply = await client.post(PATH, data=body, headers=headers)
    assert reply.status == 200, await reply.text()
    return await reply.text()


@pytest.fixture
async def zadarma(pool: asyncpg.Pool, fake_pbx: FakePbx) -> FakePbx:
    await add_pbx(
        pool,
        "zd",
        provider="zadarma",
        api_key=fake_pbx.key,
        secret=fake_pbx.secret,
        api_base=fake_pbx.base,
        recording_delay="0",
    )
    return fake_pbx


async def test_the_echo_check_answers_the_value(client: Client, zadarma: FakePbx) -> None:
    reply = await client.get(f"{PATH}?zd_echo=f7a3b2")
    assert reply.status == 200 and await reply.text() == "f7a3b2"
    assert (await client.get(PATH)).status == 400


async def test_a_missing_or_wrong_signature_stores_nothing(
    client: Client, pool: asyncpg.Pool, zadarma: FakePbx
) -> None:
    body, headers = zadarma_notify(
        zadarma.secret,
        event="NOTIFY_START",
        call_start=START,
        pbx_call_id="in_1",
        caller_id="79001234567",
        called_did="74951234567",
    )
    missing = {k: v for k, v in headers.items() if k != "Signature"}
    assert (await client.post(PATH, data=body, headers=missing)).status == 401
    wrong = {**headers, "Signature": zadarma_notify("other", event="NOTIFY_START")[1]["Signature"]}
    reply = await client.post(PATH, data=body, headers=wrong)
    assert reply.status == 403 and (await reply.json())["error"]["code"] == "bad_signature"
    # A signed event whose signed fields were changed on the way is refused too.
    tampered = body.replace(b"79001234567", b"79009999999")
    assert (await client.post(PATH, data=tampered, headers=headers)).status == 403
    assert await count(pool, "calls") == 0 and await count(pool, "leads") == 0
    unknown, unknown_headers = zadarma_notify(zadarma.secret, event="NOTIFY_RECORD")
    reply = await client.post(
        PATH, data=unknown.replace(b"NOTIFY_RECORD", b"NOTIFY_SMS"), headers=unknown_headers
    )
    assert reply.status == 200 and await count(pool, "calls") == 0


async def test_an_inbound_call_rings_the_extension_and_keeps_its_recording(
    client: Client, pool: asyncpg.Pool, zadarma: FakePbx, auth: dict[str, str]
) -> None:
    anna, anna_ws = await operator_online(client, pool, "anna", "100")
    _, boris_ws = await operator_online(client, pool, "boris", "200")
    call = {
        "call_start": START,
        "pbx_call_id": "in_5f0c1e2d3a4b",
        "caller_id": "79001234567",
        "called_did": "74951234567",
    }
    await _notify(client, zadarma, event="NOTIFY_START", **call)
    await _notify(client, zadarma, event="NOTIFY_INTERNAL", internal="100", **call)
    ringing = await anna_ws.next("call.ringing")
    assert ringing["call"]["from"] == CUSTOMER and ringing["lead"]["phones"] == [CUSTOMER]
    assert "call.ringing" not in [f["type"] for f in await boris_ws.settle()]
    answer = {k: v for k, v in call.items() if k != "called_did"}
    await _notify(
        client, zadarma, event="NOTIFY_ANSWER", destination="74951234567", internal="100", **answer
    )
    await anna_ws.next("call.answered")
    end = {"internal": "100", "duration": "95", "disposition": "answered", "status_code": "16"}
    recorded = {"is_recorded": "1", "call_id_with_rec": "1715670903.123456"}
    await _notify(client, zadarma, event="NOTIFY_END", **end, **recorded, **call)
    assert (await anna_ws.next("call.ended"))["call"]["duration_s"] == 95

    stored = await the_call(pool, "in_5f0c1e2d3a4b")
    assert stored["status"] == "answered" and stored["operator_id"] == anna
    assert stored["cause"] == "answered (Q.850 16)"
    # call_start carries no offset: it is the channel's time zone (Moscow, UTC+3).
    assert stored["started_at"] == datetime(2024, 5, 14, 7, 15, 3, tzinfo=UTC)

    file = await stored_recording(pool, stored["interaction_id"])
    assert zadarma.record_requests == [{"call_id": "1715670903.123456"}]
    audio = await client.get(f"/api/v1/attachments/{file['id']}", headers=auth)
    assert await audio.read() == RECORDING
    # NOTIFY_RECORD for the same recording later adds nothing.
    await _notify(
        client,
        zadarma,
        event="NOTIFY_RECORD",
        pbx_call_id="in_5f0c1e2d3a4b",
        call_id_with_rec="1715670903.123456",
    )
    assert await count(pool, "attachments") == 1


async def test_a_missed_call_is_returned_from_an_extension(
    client: Client, pool: asyncpg.Pool, zadarma: FakePbx
) -> None:
    _, anna_ws = await operator_online(client, pool, "anna", "100")
    call = {
        "call_start": START,
        "pbx_call_id": "in_missed",
        "caller_id": "79001234567",
        "called_did": "74951234567",
    }
    await _notify(client, zadarma, event="NOTIFY_START", **call)
    await _notify(client, zadarma, event="NOTIFY_INTERNAL", internal="100", **call)
    end = {"duration": "0", "disposition": "no answer", "status_code": "19", "is_recorded": "0"}
    await _notify(client, zadarma, event="NOTIFY_END", **end, **call)
    missed = await the_call(pool, "in_missed")
    assert missed["status"] == "missed" and missed["outcome"] == "missed"
    callback = await one_row(pool, "SELECT * FROM callbacks")
    assert callback["phone"] == CUSTOMER and callback["closed_at"] is None
    offered = await anna_ws.next("dialog.offered")  # the callback, routed like a dialog
    assert offered["dialog"]["callback"]["call_id"] == missed["id"]

    back = {"call_start": "2024-05-14 10:20:00", "pbx_call_id": "out_1", "internal": "100"}
    await _notify(client, zadarma, event="NOTIFY_OUT_START", destination="79001234567", **back)
    out_end = {"duration": "30", "disposition": "answered", "status_code": "16"}
    await _notify(
        client, zadarma, event="NOTIFY_OUT_END", destination="79001234567", **out_end, **back
    )
    returned = await the_call(pool, "out_1")
    assert returned["status"] == "answered" and returned["direction"] == "out"
    assert returned["lead_id"] == missed["lead_id"]
    assert (await one_row(pool, "SELECT * FROM callbacks"))["closed_by_call"] == returned["id"]


async def test_a_recording_that_is_gone_leaves_a_note_without_secrets(
    client: Client, pool: asyncpg.Pool, zadarma: FakePbx
) -> None:
    zadarma.missing.add("gone.1")
    zadarma.files["big.1.mp3"] = b"x" * (30 * 1024 * 1024)
    for rec in ("gone.1", "big.1"):
        call = {
            "call_start": START,
            "pbx_call_id": f"in_{rec}",
            "caller_id": "79001234567",
            "called_did": "74951234567",
        }
        end = {"duration": "5", "disposition": "answered", "status_code": "16"}
        await _notify(
            client,
            zadarma,
            event="NOTIFY_END",
            is_recorded="1",
            call_id_with_rec=rec,
            **end,
            **call,
        )
    assert await count(pool, "calls") == 2 and await count(pool, "interactions") == 2

    async def settled() -> list[asyncpg.Record]:
        rows = await pool.fetch("SELECT * FROM attachments ORDER BY id")
        done = [r for r in rows if r["state"] in ("failed", "refused")]
        return rows if len(done) == 2 else []

    for row in await eventually(settled, timeout=30):
        assert row["note"], row
        assert zadarma.secret not in row["note"] and zadarma.base not in row["note"]
        assert "http" not in row["note"]
