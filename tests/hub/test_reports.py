"""Each report metric against a scripted timeline with known times (a fixed clock: the
events are written at exact moments), through the fact builder and the HTTP API."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from hub.context import Hub
from hub.domain import Channel
from tests.conftest import add_operator, operator_token
from tests.hub.reports_script import Script, office_queue

Client = TestClient[Any, Any]
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


async def report(client: Client, auth: dict[str, str], path: str, **params: Any) -> Any:
    reply = await client.get(
        f"/api/v1/reports/{path}", params={k: str(v) for k, v in params.items()}, headers=auth
    )
    assert reply.status == 200, await reply.text()
    return await reply.json()


async def totals(client: Client, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    params = {"from": "2026-03-02", "to": "2026-03-02"} | params
    body = await report(client, auth, "summary", **params)
    found: dict[str, Any] = body["totals"]
    return found


def by_key(body: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {g["key"]["id"]: g["metrics"] for g in body["groups"]}


@pytest.fixture
async def script(pool: asyncpg.Pool, form: Channel) -> Script:
    return Script(pool, form.id, MONDAY)


async def test_first_response_is_a_humans_reply_never_an_auto_reply_an_api_send_or_a_note(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna = await add_operator(pool, "anna")
    d = await script.dialog(0)
    await script.auto_reply(d, 1)
    await script.offer(d, 2, anna)
    await script.api_send(d, 5)
    await script.accept(d, 10, anna)
    await script.note(d, 20, anna)
    await script.reply(d, 70, anna)  # the first response: 70 s after the start
    await script.customer(d, 80)
    await script.customer(d, 85)  # still the same wait
    await script.reply(d, 95, anna)  # a next response: 15 s
    await script.close(d, 100)

    t = await totals(client, auth)
    assert t["first_response_s"] == {"n": 1, "mean": 70.0, "p50": 70.0, "p90": 70.0}
    assert t["queue_wait_s"]["p50"] == 10.0
    assert t["resolution_s"]["p50"] == 100.0
    assert t["next_response_s"] == {"n": 1, "mean": 15.0, "p50": 15.0, "p90": 15.0}
    assert t["customer_silent"] == {"value": 1}  # nothing after our last reply
    assert t["unanswered"] == {"value": 0}
    assert t["dialogs_new"] == {"value": 1} and t["leads_new"] == {"value": 1}
    assert t["offers"] == {"value": 1} and t["offers_missed_share"] == {"value": 0.0}
    groups = by_key(await report(client, auth, "summary", group_by="operator", **_day()))
    assert groups[anna]["first_response_s"]["p50"] == 70.0
    assert groups[anna]["handled"] == {"value": 1}
    assert groups[anna]["leads_new"] == {"value": 1}  # through the lead's first cycle


def _day(day: str = "2026-03-02") -> dict[str, str]:
    return {"from": day, "to": day}


async def test_an_answered_call_is_the_first_response_and_missed_calls_are_recovered(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    boris = await add_operator(pool, "boris")
    d = await script.dialog(0, source="call")
    await script.call(d, "+79160000001", 0, answered=12, ended=72, operator=boris)
    await script.close(d, 80)
    # Missed at 1000, called back (answered) at 1600: recovered within a day.
    m = await script.dialog(1000, source="call")
    await script.call(m, "+79160000002", 1000, ended=1020)
    await script.call(m, "+79160000002", 1600, answered=1610, ended=1700, direction="out")
    # Missed at 2000; the next answered call with that number comes two days later.
    late = await script.dialog(2000, source="call")
    await script.call(late, "+79160000003", 2000, ended=2010)
    await script.call(
        late, "+79160000003", 2000 + 2 * 86_400, answered=2 * 86_400 + 2005, ended=2 * 86_400 + 2100
    )

    t = await totals(client, auth)
    # The three cycles were answered by a call: 12 s, a callback at 610 s, two days on.
    assert t["first_response_s"]["n"] == 3 and t["first_response_s"]["p50"] == 610.0
    assert t["calls_answered"] == {"value": 1}
    assert t["calls_missed"] == {"value": 2}
    assert t["calls_recovered"] == {"value": 1}
    assert t["calls_outbound"] == {"value": 1}
    assert t["talk_s"]["n"] == 2 and t["talk_s"]["mean"] == (60 + 90) / 2
    wider = await totals(client, auth, recovered_within_s=3 * 86_400)
    assert wider["calls_recovered"] == {"value": 2}
    rows = (await report(client, auth, "dialogs", **_day()))["items"]
    assert rows[0]["first_response_via"] == "call" and rows[0]["operator_id"] == boris
    assert rows[0]["first_response_s"] == 12.0


async def test_a_transfer_credits_the_operator_who_answered(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna, boris = await add_operator(pool, "anna"), await add_operator(pool, "boris")
    d = await script.dialog(0)
    await script.offer(d, 1, anna)
    await script.accept(d, 5, anna)
    await script.transfer(d, 30, anna, boris)
    await script.reply(d, 50, boris)
    await script.customer(d, 60)  # the customer wrote after our reply: not silent
    await script.close(d, 90)

    t = await totals(client, auth)
    assert t["first_response_s"]["p50"] == 50.0 and t["queue_wait_s"]["p50"] == 5.0
    assert t["transfers"] == {"value": 1} and t["customer_silent"] == {"value": 0}
    groups = by_key(await report(client, auth, "summary", group_by="operator", **_day()))
    assert groups[anna]["cycles"] == {"value": 0} and groups[anna]["offers"] == {"value": 1}
    assert groups[boris]["cycles"] == {"value": 1} and groups[boris]["handled"] == {"value": 1}
    assert groups[boris]["first_response_s"]["p50"] == 50.0


async def test_offers_count_under_their_cycles_queue_when_it_moves(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    """An offer is split by its cycle's channel, queue and first touch, kept with the offer
    (migration 0033): when the cycle moves to another queue after the offer was folded, the
    offer follows it."""
    anna = await add_operator(pool, "anna")
    sales = await office_queue(pool, "UTC")
    support = await pool.fetchval("INSERT INTO queues (name) VALUES ('support') RETURNING id")
    d = await script.dialog(0, source="form")
    await script.offer(d, 1, anna, queue=sales)
    before = by_key(await report(client, auth, "summary", group_by="queue", **_day()))
    assert before[sales]["offers"] == {"value": 1}
    await script.requeue(d, 31, "offer_expired", queue_id=support)
    after = by_key(await report(client, auth, "summary", group_by="queue", **_day()))
    assert after[support]["offers"] == {"value": 1}
    assert after[support]["offers_expired"] == {"value": 1}
    assert sales not in after or after[sales]["offers"] == {"value": 0}
    by_source = by_key(await report(client, auth, "summary", group_by="source", **_day()))
    assert by_source["form"]["offers"] == {"value": 1}
    by_channel = by_key(await report(client, auth, "summary", group_by="channel", **_day()))
    assert by_channel[script.channel_id]["offers"] == {"value": 1}
    off = await pool.fetchval(
        """SELECT count(*) FROM report_offers o JOIN report_cycles c ON c.id = o.cycle_id
            WHERE (o.channel_id, o.queue_id, o.source)
                  IS DISTINCT FROM (c.channel_id, c.queue_id, c.source)"""
    )
    assert off == 0


async def test_a_reopened_dialog_is_a_second_cycle(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna = await add_operator(pool, "anna")
    d = await script.dialog(0)
    await script.give(d, 3, anna)
    await script.reply(d, 20, anna)
    await script.close(d, 100)
    await script.reopen(d, 1000)
    await script.give(d, 1010, anna)
    await script.reply(d, 1060, anna)
    await script.close(d, 1200)

    t = await totals(client, auth)
    assert t["cycles"] == {"value": 2} and t["reopened"] == {"value": 1}
    assert t["dialogs_new"] == {"value": 1}
    assert t["first_response_s"] == {"n": 2, "mean": 40.0, "p50": 40.0, "p90": 56.0}
    assert t["resolution_s"]["n"] == 2 and t["resolution_s"]["mean"] == 150.0
    rows = (await report(client, auth, "dialogs", **_day()))["items"]
    assert [(r["cycle"], r["reopened"], r["first_response_s"]) for r in rows] == [
        (1, False, 20.0),
        (2, True, 60.0),
    ]


async def test_unanswered_cycles_and_declined_or_expired_offers(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna, boris, vera = [await add_operator(pool, n) for n in ("anna", "boris", "vera")]
    abandoned = await script.dialog(0)
    await script.offer(abandoned, 1, anna)
    await script.requeue(abandoned, 4, "offer_declined", declined_by=[anna])
    await script.offer(abandoned, 5, boris)
    await script.requeue(abandoned, 35, "offer_expired")
    await script.close(abandoned, 40)  # the customer gave up waiting
    ignored = await script.dialog(100)
    await script.offer(ignored, 101, vera)
    await script.accept(ignored, 110, vera)
    await script.close(ignored, 400)  # held, never answered

    t = await totals(client, auth)
    assert t["unanswered"] == {"value": 2}
    assert t["unanswered_abandoned"] == {"value": 1}
    assert t["unanswered_assigned"] == {"value": 1}
    assert t["customer_silent"] == {"value": 0}
    assert t["offers"] == {"value": 3}
    assert t["offers_declined"] == {"value": 1} and t["offers_expired"] == {"value": 1}
    assert t["offers_missed_share"]["value"] == pytest.approx(2 / 3, abs=0.001)
    groups = by_key(await report(client, auth, "summary", group_by="operator", **_day()))
    assert groups[anna]["offers_missed_share"] == {"value": 1.0}
    assert groups[vera]["offers_missed_share"] == {"value": 0.0}
    assert groups[vera]["unanswered_assigned"] == {"value": 1}
    rows = (await report(client, auth, "dialogs", **_day()))["items"]
    assert [r["outcome"] for r in rows] == ["abandoned", "unanswered"]


async def test_durations_are_over_raw_rows_never_an_average_of_averages(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna, boris = await add_operator(pool, "anna"), await add_operator(pool, "boris")
    slow = await script.dialog(0)
    await script.give(slow, 1, anna)
    await script.reply(slow, 100, anna)
    for start in (200, 300, 400):
        quick = await script.dialog(start)
        await script.give(quick, start + 1, boris)
        await script.reply(quick, start + 10, boris)
    t = await totals(client, auth)
    # Per-operator means are 100 and 10; their average (55) would be wrong.
    assert t["first_response_s"]["mean"] == 32.5
    assert t["first_response_s"]["p50"] == 10.0
    assert t["first_response_s"]["p90"] == pytest.approx(73.0)


async def test_business_hours_count_only_the_queues_open_time(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna = await add_operator(pool, "anna")
    queue = await office_queue(pool, "Europe/Moscow")
    friday = Script(script.pool, script.channel_id, datetime(2026, 3, 6, 14, 30, tzinfo=UTC))
    d = await friday.dialog(0)  # Friday 17:30 in Moscow, half an hour before closing
    await friday.offer(d, 1, anna, queue=queue)
    monday_0915 = (datetime(2026, 3, 9, 6, 15, tzinfo=UTC) - friday.t0).total_seconds()
    await friday.accept(d, monday_0915 - 60, anna)
    await friday.reply(d, monday_0915, anna)
    t = await totals(client, auth, **{"from": "2026-03-06", "to": "2026-03-06"})
    assert t["first_response_s"]["p50"] == monday_0915
    assert t["first_response_business_s"]["p50"] == 45 * 60.0  # 30 min Friday + 15 Monday
    assert t["queue_wait_business_s"]["p50"] == 44 * 60.0
    row = (await report(client, auth, "dialogs", **{"from": "2026-03-06", "to": "2026-03-06"}))[
        "items"
    ][0]
    assert row["queue"] == "sales" and row["first_response_business_s"] == 2700.0


async def test_a_day_is_the_zones_own_day(
    client: Client, auth: dict[str, str], script: Script
) -> None:
    """22:30 UTC on Monday is 01:30 on Tuesday in Moscow."""
    await script.dialog(13.5 * 3600)
    assert (await totals(client, auth))["cycles"] == {"value": 1}
    assert (await totals(client, auth, tz="Europe/Moscow"))["cycles"] == {"value": 0}
    tuesday = {"from": "2026-03-03", "to": "2026-03-03"}
    assert (await totals(client, auth, tz="Europe/Moscow", **tuesday))["cycles"] == {"value": 1}
    days = await report(
        client, auth, "series", tz="Europe/Moscow", **{"from": "2026-03-02", "to": "2026-03-03"}
    )
    assert days["points"] == [
        {"at": "2026-03-02T00:00:00+03:00", "value": 0},
        {"at": "2026-03-03T00:00:00+03:00", "value": 1},
    ]
    heat = await report(client, auth, "heatmap", tz="Europe/Moscow", **tuesday)
    tue = next(r for r in heat["rows"] if r["weekday"] == "tue")
    assert tue["hours"][1] == 1 and sum(tue["hours"]) == 1


async def test_a_daylight_saving_day_has_its_real_length(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, form: Channel
) -> None:
    """Berlin moves to summer time on 29 March 2026: that day has 23 hours."""
    s = Script(pool, form.id, datetime(2026, 3, 28, 23, 30, tzinfo=UTC))  # 00:30 CET on the 29th
    await s.dialog(0)
    await s.dialog(22 * 3600 + 29 * 60)  # 21:59 UTC = 23:59 CEST, still the 29th
    await s.dialog(22 * 3600 + 31 * 60)  # 22:01 UTC = 00:01 CEST on the 30th
    sunday = {"from": "2026-03-29", "to": "2026-03-29", "tz": "Europe/Berlin"}
    assert (await totals(client, auth, **sunday))["cycles"] == {"value": 2}
    hours = await report(client, auth, "series", interval="hour", **sunday)
    assert len(hours["points"]) == 23
    assert hours["points"][2]["at"] == "2026-03-29T03:00:00+02:00"  # 02:00 never happened
    assert hours["points"][0]["value"] == 1 and hours["points"][-1]["value"] == 1
    # In UTC the same three cycles fall on 28 March (one) and 29 March (two).
    utc = await report(client, auth, "series", **{"from": "2026-03-28", "to": "2026-03-29"})
    assert [p["value"] for p in utc["points"]] == [1, 2]


async def test_the_csv_export_matches_the_summary(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna = await add_operator(pool, "anna")
    for i, wait in enumerate((30, 45, 200, 12)):
        d = await script.dialog(i * 1000, name='=HYPERLINK("http://evil")' if i == 0 else "Ann")
        await script.give(d, i * 1000 + 2, anna)
        await script.reply(d, i * 1000 + wait, anna)
        await script.close(d, i * 1000 + 500)
    await script.dialog(9000)  # open, unanswered so far
    t = await totals(client, auth, tz="Europe/Moscow")

    reply = await client.get(
        "/api/v1/reports/dialogs",
        params={"from": "2026-03-02", "to": "2026-03-02", "tz": "Europe/Moscow"},
        headers=auth | {"Accept": "text/csv"},
    )
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in reply.headers["Content-Disposition"]
    raw = await reply.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == t["cycles"]["value"] == 5
    waits = [float(r["first_response_s"]) for r in rows if r["first_response_s"]]
    assert len(waits) == t["first_response_s"]["n"]
    assert statistics.median(waits) == t["first_response_s"]["p50"]
    assert statistics.fmean(waits) == t["first_response_s"]["mean"]
    assert rows[0]["started_at"] == "2026-03-02T12:00:00+03:00"  # ISO 8601, Moscow's offset
    assert rows[0]["lead_name"] == '\'=HYPERLINK("http://evil")'  # never a formula
    assert rows[-1]["outcome"] == "open"

    semi = await client.get(
        "/api/v1/reports/dialogs",
        params={
            "from": "2026-03-02",
            "to": "2026-03-02",
            "delimiter": "semicolon",
            "format": "csv",
        },
        headers=auth,
    )
    text = (await semi.read()).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("dialog_id;cycle;lead_id;")
    assert len(list(csv.reader(io.StringIO(text), delimiter=";"))) == 6


async def test_online_time_comes_from_presence_changes(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    anna = await add_operator(pool, "anna")
    await script.presence(anna, 0, "online", "offline")
    await script.presence(anna, 3600, "away", "online")
    await script.presence(anna, 5400, "online", "away")
    await script.presence(anna, 7200, "offline", "online")
    groups = by_key(await report(client, auth, "summary", group_by="operator", **_day()))
    assert groups[anna]["online_s"] == {"value": 5400.0}
    assert groups[anna]["away_s"] == {"value": 1800.0}


async def test_the_previous_period_is_beside_it_and_filters_narrow_both(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool, script: Script
) -> None:
    await script.dialog(-7 * 86_400, source="form")  # the Monday before
    await script.dialog(-86_400, source="telegram")  # Sunday
    await script.dialog(0, source="form")
    week = {"from": "2026-03-02", "to": "2026-03-08"}
    body = await report(client, auth, "summary", group_by="source", **week)
    assert body["previous"]["period"] == {"from": "2026-02-23", "to": "2026-03-01", "tz": "UTC"}
    assert body["previous"]["totals"]["cycles"] == {"value": 2}
    assert body["totals"]["cycles"] == {"value": 1}
    assert {g["key"]["id"]: g["metrics"]["leads_new"]["value"] for g in body["groups"]} == {
        "form": 1
    }
    forms = await report(client, auth, "summary", source="form", **week)
    assert forms["previous"]["totals"]["leads_new"] == {"value": 1}


async def test_the_cursor_never_skips_an_event_committed_late(
    client: Client, auth: dict[str, str], hub: Hub, pool: asyncpg.Pool, script: Script
) -> None:
    """An event whose transaction began first but commits last is still folded: the
    builder stops below the oldest transaction still running."""
    first = await script.dialog(0)
    second = await script.dialog(10)
    anna = await add_operator(pool, "anna")
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        # The older transaction writes first (the lower event id) and commits last.
        await Script(slow, script.channel_id, script.t0).reply(first, 30, anna)  # type: ignore[arg-type]
        await script.give(second, 20, anna)  # a newer transaction, committed at once
        await hub.facts.catch_up()
        await tx.commit()
    t = await totals(client, auth)
    assert t["first_response_s"]["n"] == 1 and t["first_response_s"]["p50"] == 30.0
    assert t["queue_wait_s"]["n"] == 1


async def test_reports_are_for_supervisors_and_keys_with_the_reports_scope(
    client: Client, pool: asyncpg.Pool
) -> None:
    await add_operator(pool, "olga")
    await add_operator(pool, "sam", role="supervisor")
    olga, sam = await operator_token(client, "olga"), await operator_token(client, "sam")
    assert (await client.get("/api/v1/reports/summary", headers=olga)).status == 403
    assert (await client.get("/api/v1/reports/summary", headers=sam)).status == 200
    bad = {
        "tz": "Mars/Olympus",
        "from": "2026-13-01",
        "group_by": "weather",
        "metric": "happiness",
        "interval": "minute",
        "delimiter": "tab",
    }
    for name, value in bad.items():
        path = "series" if name in ("metric", "interval") else "summary"
        path = "dialogs" if name == "delimiter" else path
        reply = await client.get(f"/api/v1/reports/{path}", params={name: value}, headers=sam)
        assert reply.status == 400, name
        assert (await reply.json())["error"]["code"] == "bad_query"
    backwards = await client.get(
        "/api/v1/reports/summary", params={"from": "2026-03-02", "to": "2026-03-01"}, headers=sam
    )
    assert backwards.status == 400
    stat = await client.get(
        "/api/v1/reports/series", params={"metric": "cycles", "stat": "p90"}, headers=sam
    )
    assert stat.status == 400
