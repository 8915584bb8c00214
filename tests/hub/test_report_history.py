"""Report facts for what happened before the reports existed (the migration's backfill),
for what real traffic writes (a form, a reopening, a merge) and for a live conversation with
real waits of about a second."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from hub.context import Hub
from hub.domain import Channel
from storage.migrate import migrate
from tests.conftest import add_operator, operator_token
from tests.hub.reports_script import office_queue
from tests.hub.test_reports import report

Client = TestClient[Any, Any]


async def _rerun_reports_migration(pool: asyncpg.Pool) -> None:
    """The database as a hub before reports left it, then upgraded (the reports' migrations
    again, in order)."""
    async with pool.acquire() as conn:
        await conn.execute(
            """DROP TABLE report_offers, report_responses, report_cycles, report_calls, report_presence,
                          report_leads, report_cursor CASCADE;
               DROP FUNCTION report_calls_inserted, report_calls_updated,
                             report_calls_next_answered;
               DROP INDEX leads_created;
               ALTER TABLE domain_events DROP COLUMN txid;
               DELETE FROM schema_migrations WHERE version IN (23, 27, 28, 29, 30, 31, 32, 33)"""
        )
        await migrate(conn)


async def test_the_migration_backfills_existing_dialogs_and_marks_them(
    client: Client, hub: Hub, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    anna = await add_operator(pool, "anna")
    queue = await office_queue(pool, "UTC")
    made = await client.post("/forms/site", json={"name": "Old", "phone": "+79160000101"})
    dialog = (await made.json())["dialog_id"]
    friday_1750 = datetime(2026, 3, 6, 17, 50, tzinfo=UTC)
    await pool.execute(
        """UPDATE dialogs SET created_at = $2::timestamptz,
                  assigned_at = $2::timestamptz + interval '5 minutes',
                  first_response_at = $2::timestamptz + interval '3 days 20 minutes'
                                      - interval '8 hours 50 minutes',
                  closed_at = $2::timestamptz + interval '3 days', status = 'closed',
                  operator_id = $3,
                  queue_id = $4
            WHERE id = $1""",
        dialog,
        friday_1750,
        anna,
        queue,
    )
    await _rerun_reports_migration(pool)

    row = await pool.fetchrow("SELECT * FROM report_cycles WHERE dialog_id = $1", dialog)
    assert row is not None and row["backfilled"] and row["hours_due"]
    assert row["first_response_s"] == (3 * 86_400 - 8.5 * 3600)
    assert row["operator_id"] == anna and row["offers"] == 0  # what old data cannot say
    await hub.facts.catch_up()
    row = await pool.fetchrow("SELECT * FROM report_cycles WHERE dialog_id = $1", dialog)
    assert row is not None and not row["hours_due"]
    # Friday 17:50-18:00 and Monday 09:00-09:20 inside the hours: 30 minutes.
    assert row["first_response_bh_s"] == 1800.0 and row["queue_wait_bh_s"] == 300.0

    # Written after the upgrade, the customer's next message reopens: a second, live cycle.
    await pool.execute("UPDATE dialogs SET closed_at = now() WHERE id = $1", dialog)
    again = await client.post("/forms/site", json={"name": "Old", "phone": "+79160000101"})
    assert (await again.json())["dialog_id"] == dialog
    body = await report(
        client, auth, "dialogs", **{"from": "2026-03-06", "to": str(datetime.now(UTC).date())}
    )
    assert [(r["cycle"], r["backfilled"], r["reopened"]) for r in body["items"]] == [
        (1, True, False),
        (2, False, True),
    ]


async def test_the_facts_follow_a_merge_to_the_surviving_lead(
    client: Client, hub: Hub, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    a = await (await client.post("/forms/site", json={"name": "A", "phone": "+79160000201"})).json()
    b = await (
        await client.post("/forms/site", json={"name": "B", "email": "b@example.com"})
    ).json()
    # B first wrote on Telegram, before A's form: a merge makes that A's first touch.
    await pool.execute(
        """UPDATE leads SET source = jsonb_build_object('kind', 'telegram',
                                                        'at', now() - interval '1 hour')
            WHERE id = $1""",
        b["lead_id"],
    )
    await hub.facts.catch_up()
    assert await _cycles_by_source(client, auth) == {"form": 1, "telegram": 1}
    merged = await client.post(
        f"/api/v1/leads/{a['lead_id']}/merge", json={"other_id": b["lead_id"]}, headers=auth
    )
    assert merged.status == 200, await merged.text()
    rows = (await report(client, auth, "dialogs"))["items"]
    assert {r["lead_id"] for r in rows} == {a["lead_id"]}
    assert {r["source"] for r in rows} == {"telegram"}
    totals = (await report(client, auth, "summary"))["totals"]
    assert totals["leads_new"] == {"value": 1} and totals["cycles"] == {"value": 2}
    assert await _cycles_by_source(client, auth) == {"telegram": 2}
    assert await _facts_off_their_leads_source(pool) == 0
    restored = await client.post(
        f"/api/v1/leads/{a['lead_id']}/unmerge", json={"other_id": b["lead_id"]}, headers=auth
    )
    assert restored.status == 200
    rows = (await report(client, auth, "dialogs"))["items"]
    assert sorted(r["lead_id"] for r in rows) == sorted([a["lead_id"], b["lead_id"]])
    assert await _cycles_by_source(client, auth) == {"form": 1, "telegram": 1}
    assert await _facts_off_their_leads_source(pool) == 0


async def _cycles_by_source(client: Client, auth: dict[str, str]) -> dict[str, int]:
    body = await report(client, auth, "summary", group_by="source", metrics="cycles")
    return {g["key"]["id"]: g["metrics"]["cycles"]["value"] for g in body["groups"]}


async def _facts_off_their_leads_source(pool: asyncpg.Pool) -> int:
    """Facts whose kept first touch is not their lead's (migration 0032)."""
    off: int = await pool.fetchval(
        """SELECT (SELECT count(*) FROM report_cycles f JOIN leads l ON l.id = f.lead_id
                    WHERE f.source IS DISTINCT FROM l.source->>'kind')
                + (SELECT count(*) FROM report_responses f JOIN leads l ON l.id = f.lead_id
                    WHERE f.source IS DISTINCT FROM l.source->>'kind')
                + (SELECT count(*) FROM report_calls f JOIN leads l ON l.id = f.lead_id
                    WHERE f.source IS DISTINCT FROM l.source->>'kind')"""
    )
    return off


async def test_a_live_conversation_with_real_waits(
    client: Client, hub: Hub, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    """A customer writes, an operator online in the console is offered the dialog, accepts,
    answers about a second later and closes it: the report has those waits."""
    anna = await add_operator(pool, "anna", role="supervisor")
    headers = await operator_token(client, "anna")
    token = headers["Authorization"].split()[1]
    async with client.ws_connect(f"/ws/operator?token={token}") as ws:

        async def frame(kind: str) -> dict[str, Any]:
            async with asyncio.timeout(10):
                while True:
                    got = json.loads((await ws.receive()).data)
                    if got["type"] == kind:
                        return dict(got)

        await frame("hello")
        await ws.send_json({"type": "presence", "status": "online"})
        made = await client.post("/forms/site", json={"name": "Live", "phone": "+79160000301"})
        dialog = (await made.json())["dialog_id"]
        offered = await frame("dialog.offered")
        assert offered["dialog"]["id"] == dialog
        await asyncio.sleep(0.5)
        await ws.send_json({"type": "accept", "dialog_id": dialog})
        await frame("dialog.assigned")
        await asyncio.sleep(1.0)
        await ws.send_json({"type": "send", "dialog_id": dialog, "text": "Hello!"})
        await frame("sent")
        await ws.send_json({"type": "close", "dialog_id": dialog})
        await frame("dialog.closed")

    for token_of in (auth, headers):  # an API key, and the supervisor's own session
        body = await report(client, token_of, "summary", group_by="operator")
        t = body["totals"]
        assert t["cycles"] == {"value": 1} and t["offers"] == {"value": 1}
        assert 0.5 <= t["queue_wait_s"]["p50"] < 5
        assert 1.5 <= t["first_response_s"]["p50"] < 6
        assert t["first_response_s"]["p50"] >= t["queue_wait_s"]["p50"] + 1.0
        assert t["resolution_s"]["p50"] >= t["first_response_s"]["p50"]
        assert t["customer_silent"] == {"value": 1}
        group = body["groups"][0]
        assert group["key"] == {"type": "operator", "id": anna, "name": "Anna"}
        assert group["metrics"]["online_s"]["value"] > 1.0

    # Her tab closed: after the grace period she is offline, in the log too, so her online
    # time stops growing.
    async with asyncio.timeout(10):
        while not await pool.fetchval(
            """SELECT count(*) FROM domain_events WHERE type = 'operator.presence_changed'
                 AND operator_id = $1 AND data->>'status' = 'offline'""",
            anna,
        ):
            await asyncio.sleep(0.1)
    online = []
    for _ in range(2):
        body = await report(client, auth, "summary", group_by="operator")
        online.append(body["groups"][0]["metrics"]["online_s"]["value"])
        await asyncio.sleep(0.3)
    assert online[0] == online[1] > 1.0
    assert not await pool.fetchval("SELECT count(*) FROM report_presence WHERE ended_at IS NULL")
