"""The router directly: strategies, capacity, timeouts, hours, transfer, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.domain import Notice
from routing.hours import InvalidHours, parse_hours
from routing.router import Router, RoutingError
from storage import routing as store
from storage.database import Conn
from tests.routing.conftest import World


async def test_least_busy_respects_capacity(world: World) -> None:
    a = await world.operator("anna", max_dialogs=2)
    b = await world.operator("boris", max_dialogs=1)
    d1 = await world.dialog()
    assert await world.router.route(d1) == [a]  # equal load: lowest id
    d2 = await world.router.route(await world.dialog())
    assert d2 == [b]  # anna holds an offer now
    assert await world.router.route(await world.dialog()) == [a]
    assert await world.router.route(await world.dialog()) == []  # everyone is full
    offered = world.recorder.of("offered")
    assert [n.operators for n in offered] == [(a,), (b,), (a,)]
    assert offered[0].data["expires_in_s"] == 30


async def test_round_robin_cycles(world: World) -> None:
    await world.queue(strategy="round_robin")
    ops = [await world.operator(name) for name in ("a1", "a2", "a3")]
    chosen = []
    for _ in range(4):
        dialog = await world.dialog()
        [operator] = await world.router.route(dialog)
        await world.router.accept(operator, dialog)
        chosen.append(operator)
    assert chosen == [ops[0], ops[1], ops[2], ops[0]]


async def test_sticky_prefers_the_previous_operator(world: World) -> None:
    await world.queue(strategy="sticky")
    a = await world.operator("anna")
    b = await world.operator("boris")
    first = await world.dialog("+79160000001")
    await world.pool.execute("UPDATE dialogs SET last_operator_id = $1 WHERE id = $2", b, first)
    await world.pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() - interval '2 days' WHERE id = $1",
        first,
    )
    again = await world.dialog("+79160000001")
    assert again != first
    assert await world.router.route(again) == [b]
    other = await world.dialog("+79160000002")
    assert await world.router.route(other) == [a]


async def test_offer_to_all_first_accept_wins(world: World) -> None:
    await world.queue(strategy="all")
    ops = [await world.operator(n) for n in ("a", "b", "c")]
    dialog = await world.dialog()
    assert sorted(await world.router.route(dialog)) == sorted(ops)
    results = await asyncio.gather(
        *[world.router.accept(o, dialog) for o in ops], return_exceptions=True
    )
    winners = [o for o, r in zip(ops, results, strict=True) if r is None]
    assert len(winners) == 1
    assert all(
        isinstance(r, RoutingError) and r.code == "offer_gone" for r in results if r is not None
    )
    row = await world.status(dialog)
    assert (row["status"], row["operator_id"]) == ("assigned", winners[0])
    withdrawn = world.recorder.of("withdrawn")
    assert sorted(withdrawn[0].operators) == sorted(o for o in ops if o != winners[0])


async def test_routes_at_once_share_candidates_yet_never_overfill(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routes running together rank from one reading of the candidates; whoever is offered
    a dialog is still read again under their lock, so nobody gets more than their room."""
    ops = [await world.operator(name, max_dialogs=1) for name in ("anna", "boris", "clara")]
    dialogs = [await world.dialog() for _ in range(5)]
    reads: list[int] = []
    read = store.candidates

    async def counted(conn: Conn, skills: Sequence[str], excluded: Sequence[int]) -> Any:
        reads.append(1)
        return await read(conn, skills, excluded)

    monkeypatch.setattr(store, "candidates", counted)
    chosen = await asyncio.gather(*[world.router.route(d) for d in dialogs])
    assert sorted(o for c in chosen for o in c) == sorted(ops)  # one each
    assert len(reads) < len(dialogs)  # the burst shared a reading
    waiting = [
        r["id"] for r in await world.pool.fetch("SELECT id FROM dialogs WHERE status = 'queued'")
    ]
    assert len(waiting) == 2
    # A route on its own reads afresh: the shared reading ended with the burst.
    await world.pool.execute("UPDATE operators SET max_dialogs = 2 WHERE id = $1", ops[0])
    before = len(reads)
    assert await world.router.route(waiting[0]) == [ops[0]]
    assert len(reads) == before + 1


async def test_accept_keeps_an_operator_within_max_dialogs(world: World) -> None:
    await world.queue(strategy="all")
    anna = await world.operator("anna", max_dialogs=1)
    boris = await world.operator("boris", max_dialogs=1)
    first = await world.dialog("+79160000001")
    await world.router.route(first)
    await world.router.accept(anna, first)  # anna is now full
    second = await world.dialog("+79160000002")
    assert await world.router.route(second) == [boris]  # only who has room is offered
    # An offer made while she had room (the queue offers to everyone): taking it now
    # would put her over, so it stays offered and nothing is written.
    await world.pool.execute(
        "UPDATE dialogs SET offered_to = $2 WHERE id = $1", second, [anna, boris]
    )
    events = await world.pool.fetchval("SELECT count(*) FROM domain_events")
    with pytest.raises(RoutingError) as refused:
        await world.router.accept(anna, second)
    assert refused.value.code == "at_capacity"
    row = await world.status(second)
    assert (row["status"], row["operator_id"]) == ("offered", None)
    assert await world.pool.fetchval("SELECT count(*) FROM domain_events") == events
    await world.router.accept(boris, second)  # he has room for it
    row = await world.status(second)
    assert (row["status"], row["operator_id"]) == ("assigned", boris)
    # An offer made to one operator alone already counts in their load: at their max with
    # it, they can still take it.
    clara = await world.operator("clara", max_dialogs=1)
    third = await world.dialog("+79160000003")
    await world.pool.execute(
        "UPDATE dialogs SET status = 'offered', offered_to = $2,"
        " offer_expires_at = now() + interval '30 seconds' WHERE id = $1",
        third,
        [clara],
    )
    await world.router.accept(clara, third)
    assert (await world.status(third))["operator_id"] == clara
    actor = await world.pool.fetchval(
        "SELECT actor FROM domain_events WHERE dialog_id = $1 AND type = 'dialog.assigned'",
        second,
    )
    assert actor == f"operator:{boris}"


async def test_expired_and_declined_offers_go_to_the_next_operator(world: World) -> None:
    a = await world.operator("anna")
    b = await world.operator("boris")
    c = await world.operator("carl")
    dialog = await world.dialog()
    assert await world.router.route(dialog) == [a]
    await world.pool.execute(
        "UPDATE dialogs SET offer_expires_at = now() - interval '1 second' WHERE id = $1", dialog
    )
    assert await world.router.expire_offers() == 1
    row = await world.status(dialog)
    assert (row["status"], list(row["offered_to"])) == ("offered", [b])
    await world.router.decline(b, dialog)
    assert list((await world.status(dialog))["offered_to"]) == [c]
    with pytest.raises(RoutingError):
        await world.router.accept(a, dialog)  # anna's offer is gone
    await world.router.decline(c, dialog)
    # Everyone passed once: the round starts again rather than leaving the customer waiting.
    assert list((await world.status(dialog))["offered_to"]) == [a]


async def test_nobody_online_waits_fifo_with_one_auto_reply(world: World) -> None:
    await world.queue(auto_reply="All operators are busy, we will answer soon.")
    anna = await world.operator("anna", online=False, max_dialogs=1)
    first = await world.dialog()
    second = await world.dialog()
    for dialog in (first, second, first):
        assert await world.router.route(dialog) == []
    assert world.recorder.auto_replies == [
        (first, "All operators are busy, we will answer soon."),
        (second, "All operators are busy, we will answer soon."),
    ]
    from storage import operators

    await operators.set_presence(world.pool, anna, "online")
    assert await world.router.route_waiting() == 1
    assert (await world.status(first))["status"] == "offered"  # the oldest first
    assert (await world.status(second))["status"] == "queued"
    await world.router.accept(anna, first)
    await world.router.close(first)
    assert await world.router.route_waiting() == 1
    assert list((await world.status(second))["offered_to"]) == [anna]


async def test_outside_business_hours_nothing_is_offered(world: World) -> None:
    yesterday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][
        (datetime.now(UTC).weekday() - 1) % 7
    ]
    await world.queue(hours=f"{yesterday} 00:00-00:01", auto_reply="We are closed now.")
    await world.operator("anna")
    dialog = await world.dialog()
    assert await world.router.route(dialog) == []
    assert world.recorder.auto_replies == [(dialog, "We are closed now.")]


async def test_skills_select_operators(world: World) -> None:
    await world.queue(skills=("en",))
    await world.operator("ru_only", skills=("ru",))
    english = await world.operator("english", skills=("en", "ru"))
    assert await world.router.route(await world.dialog()) == [english]


async def test_transfer_to_operator_and_to_queue(world: World) -> None:
    await world.queue("first")
    await world.queue("second", channels=())
    a = await world.operator("anna")
    b = await world.operator("boris")
    dialog = await world.dialog()
    await world.router.route(dialog)
    await world.router.accept(a, dialog)
    await world.router.transfer_to_operator(dialog, b)
    assert (await world.status(dialog))["operator_id"] == b
    assert [n.operators for n in world.recorder.of("unassigned")] == [(a,)]
    await world.router.transfer_to_queue(dialog, "second")
    row = await world.status(dialog)
    assert row["status"] == "offered"
    assert (
        await world.pool.fetchval(
            "SELECT q.name FROM dialogs d JOIN queues q ON q.id = d.queue_id WHERE d.id = $1",
            dialog,
        )
        == "second"
    )
    with pytest.raises(RoutingError) as err:
        await world.router.transfer_to_queue(dialog, "nowhere")
    assert err.value.code == "no_queue"
    from storage import operators

    await operators.set_presence(world.pool, b, "offline")
    with pytest.raises(RoutingError) as err:
        await world.router.transfer_to_operator(dialog, b)
    assert err.value.code == "operator_unavailable"


async def test_a_dialog_given_to_a_queue_is_not_offered_back_to_the_giver(world: World) -> None:
    await world.queue("main")
    a = await world.operator("anna")
    dialog = await world.dialog()
    await world.router.route(dialog)
    await world.router.accept(a, dialog)
    # Alone online, anna hands it to the queue: it waits for someone else.
    await world.router.transfer_to_queue(dialog, "main")
    assert (await world.status(dialog))["status"] == "queued"
    await world.router.route_waiting()
    assert (await world.status(dialog))["status"] == "queued"
    b = await world.operator("boris")
    await world.router.route_waiting()
    row = await world.status(dialog)
    assert row["status"] == "offered" and list(row["offered_to"]) == [b]
    await world.router.accept(b, dialog)
    assert (
        await world.pool.fetchval("SELECT transferred_from FROM dialogs WHERE id = $1", dialog)
        is None
    )


async def test_two_routers_never_give_one_dialog_to_two_operators(world: World) -> None:
    ops = [await world.operator(f"op{i}", max_dialogs=3) for i in range(5)]
    dialogs = [await world.dialog() for _ in range(30)]
    other = Router(world.pool, world.recorder.publish, world.recorder.auto_reply)
    await asyncio.gather(
        world.router.route_waiting(),
        other.route_waiting(),
        *[r.route(d) for d in dialogs for r in (world.router, other)],
    )
    # A dialog that found every candidate's lock held by the other router waits for the
    # next pass of the routers' loops, which follows at once: run those passes here.
    for _ in range(10):
        if not await world.router.retry_contended() + await other.retry_contended():
            break
    rows = await world.pool.fetch("SELECT id, status, offered_to FROM dialogs ORDER BY id")
    offered = [r for r in rows if r["status"] == "offered"]
    assert len(offered) == 15  # 5 operators x 3 places
    assert all(len(r["offered_to"]) == 1 for r in offered)
    per_operator = {o: sum(1 for r in offered if r["offered_to"][0] == o) for o in ops}
    assert set(per_operator.values()) == {3}
    # Each offer was announced once, to one operator.
    announced = [n.dialog_id for n in world.recorder.of("offered") if n.dialog_id is not None]
    assert sorted(announced) == sorted(r["id"] for r in offered)
    # Both routers accept for the operators at once: still one holder each.
    results = await asyncio.gather(
        *[r.accept(d["offered_to"][0], d["id"]) for d in offered for r in (world.router, other)],
        return_exceptions=True,
    )
    assert sum(1 for r in results if r is None) == 15
    holders = await world.pool.fetch(
        "SELECT operator_id, count(*) FROM dialogs WHERE status = 'assigned' GROUP BY 1"
    )
    assert all(h["count"] == 3 for h in holders) and len(holders) == 5


def test_business_hours() -> None:
    hours = parse_hours("mon-fri 09:00-18:00; sat 10:00-14:00", "Europe/Moscow")
    monday_noon_msk = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
    assert hours.is_open(monday_noon_msk)
    assert not hours.is_open(monday_noon_msk + timedelta(hours=8))  # 20:00
    assert hours.is_open(datetime(2026, 11, 28, 8, 0, tzinfo=UTC))  # Saturday 11:00
    assert not hours.is_open(datetime(2026, 11, 29, 8, 0, tzinfo=UTC))  # Sunday
    night = parse_hours("fri 22:00-02:00")
    assert night.is_open(datetime(2026, 11, 28, 1, 0, tzinfo=UTC))  # Saturday 01:00 UTC
    for bad in (
        "",
        "someday 9-18",
        "mon 25:00-26:00",
        "closed 2026-12-31",  # holidays alone open nothing
        "mon 09:00-18:00; closed 2026-02-30",
        "mon 09:00-18:00; closed 2027-01-08..2026-12-31",
    ):
        with pytest.raises(InvalidHours):
            parse_hours(bad)


def test_business_hours_with_a_lunch_break_and_holidays() -> None:
    """Two windows a day, and dated holidays in the queue's own zone."""
    hours = parse_hours(
        "mon-fri 09:00-13:00; mon-fri 14:00-18:00; closed 2026-12-31..2027-01-02;"
        " closed 2027-01-07",
        "Europe/Moscow",
    )
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    assert hours.is_open(monday + timedelta(hours=7))  # 10:00 in Moscow
    assert not hours.is_open(monday + timedelta(hours=10, minutes=30))  # 13:30: lunch
    assert hours.is_open(monday + timedelta(hours=11, minutes=30))  # 14:30
    thursday_dec_31 = datetime(2026, 12, 31, 8, 0, tzinfo=UTC)  # 11:00 in Moscow
    assert not hours.is_open(thursday_dec_31)
    assert not hours.is_open(datetime(2027, 1, 7, 8, 0, tzinfo=UTC))
    assert hours.is_open(datetime(2027, 1, 6, 8, 0, tzinfo=UTC))  # a Wednesday at work
    # The holiday is Moscow's day: 22:00 UTC on the 30th is already the 31st there.
    assert not parse_hours("mon-sun 00:00-24:00; closed 2026-12-31", "Europe/Moscow").is_open(
        datetime(2026, 12, 30, 22, 0, tzinfo=UTC)
    )


async def test_an_operator_online_on_another_node_is_counted_at_once(world: World) -> None:
    """This node's operators all left; one comes online on another node (heard on the bus):
    a new dialog here is routed to them at once, not at this node's next full pass."""
    operator = await world.operator("anna", online=False)
    await world.router.count_online()
    dialog = await world.dialog()
    world.router.submit(dialog)  # nobody online, no auto-reply: it waits
    await asyncio.sleep(0.05)
    assert await world.pool.fetchval("SELECT status FROM dialogs WHERE id = $1", dialog) == "queued"
    await world.pool.execute(
        "INSERT INTO operator_presence (operator_id, status) VALUES ($1, 'online')"
        " ON CONFLICT (operator_id) DO UPDATE SET status = 'online', updated_at = now()",
        operator,
    )
    await world.router.on_notice(
        Notice("presence", None, data={"operator_id": operator, "presence": "online"})
    )
    world.router.submit(await world.dialog())
    await asyncio.sleep(0.05)
    assert [n.operators for n in world.recorder.of("offered")] == [(operator,)]
