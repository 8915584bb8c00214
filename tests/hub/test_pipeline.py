"""The ingest pipeline directly: identification order, idempotency, threading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hub.domain import ChannelId, Identity, InboundMessage
from hub.identity import InvalidContact
from hub.pipeline import IngestPipeline, batch_lanes
from hub.ports import ChannelPosition, IngestResult, UnusableMessage
from storage import channels, events
from tests.conftest import add_form, count


def _message(channel_id: int, external_id: str, **fields: Any) -> InboundMessage:
    return InboundMessage(
        channel_id=ChannelId(channel_id),
        external_id=external_id,
        occurred_at=datetime.now(UTC),
        **fields,
    )


def _announced(pipeline: IngestPipeline) -> list[IngestResult]:
    """What the pipeline's after-commit hooks are given, in order."""
    seen: list[IngestResult] = []

    async def after(result: IngestResult) -> None:
        seen.append(result)

    pipeline.after_commit.append(after)
    return seen


async def test_identity_wins_over_phone_and_email(pool: asyncpg.Pool) -> None:
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool)
    by_phone = await pipeline.ingest(_message(channel.id, "1", phones=("+79120000001",)), "form")
    by_identity = await pipeline.ingest(
        _message(channel.id, "2", identity=Identity("telegram", "5")), "telegram"
    )
    # Identity 5 now shares the phone of the first lead: the identity decides.
    third = await pipeline.ingest(
        _message(channel.id, "3", identity=Identity("telegram", "5"), phones=("+79120000001",)),
        "telegram",
    )
    assert third.lead_id == by_identity.lead_id != by_phone.lead_id
    # The phone was learned by the identity's lead too (duplicates are suggested, not forced).
    assert await pool.fetchval("SELECT count(*) FROM lead_phones WHERE phone = '+79120000001'") == 2


async def test_same_external_id_is_stored_once_and_returns_the_first_result(
    pool: asyncpg.Pool,
) -> None:
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool)
    seen = _announced(pipeline)
    message = _message(channel.id, "update-1", emails=("A@x.ru",), text="hi")
    results = await asyncio.gather(*[pipeline.ingest(message, "form") for _ in range(8)])
    assert sorted(r.status for r in results) == ["created"] + ["duplicate"] * 7
    assert len({r.interaction_id for r in results}) == 1
    assert await count(pool, "interactions") == 1
    assert len(seen) == 1
    lead_id = seen[0].lead_id
    assert lead_id is not None
    assert [(e.type, e.lead_seq) for e in await events.of_lead(pool, lead_id)] == [
        ("lead.created", 1),
        ("dialog.created", 2),
        ("interaction.created", 3),
    ]


async def test_in_transaction_hook_failure_rolls_back_everything(pool: asyncpg.Pool) -> None:
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool)

    async def broken(conn: object, result: IngestResult) -> None:
        raise RuntimeError("outbox unavailable")

    pipeline.in_transaction.append(broken)
    with pytest.raises(RuntimeError):
        await pipeline.ingest(_message(channel.id, "x", phones=("+79120000002",)), "form")
    assert await count(pool, "leads") == 0 and await count(pool, "interactions") == 0


async def test_closed_dialog_is_reopened_within_the_window_else_a_new_one(
    pool: asyncpg.Pool,
) -> None:
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool, reopen_seconds=3600)
    first = await pipeline.ingest(_message(channel.id, "r1", phones=("+79120000009",)), "form")
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() WHERE id = $1", first.dialog_id
    )
    again = await pipeline.ingest(_message(channel.id, "r2", phones=("+79120000009",)), "form")
    assert again.dialog_id == first.dialog_id and again.dialog_reopened and not again.dialog_created
    assert (
        await pool.fetchval("SELECT status FROM dialogs WHERE id = $1", first.dialog_id) == "queued"
    )
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() - interval '2 hours' WHERE id = $1",
        first.dialog_id,
    )
    later = await pipeline.ingest(_message(channel.id, "r3", phones=("+79120000009",)), "form")
    assert later.dialog_id != first.dialog_id and later.dialog_created


async def test_closed_dialog_is_not_reused_without_a_window(pool: asyncpg.Pool) -> None:
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool, reopen_seconds=0)
    first = await pipeline.ingest(_message(channel.id, "a", phones=("+79120000003",)), "form")
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() WHERE id = $1", first.dialog_id
    )
    second = await pipeline.ingest(_message(channel.id, "b", phones=("+79120000003",)), "form")
    assert second.lead_id == first.lead_id and second.dialog_id != first.dialog_id
    assert second.dialog_created


async def test_lenient_contacts_drop_bad_details_and_strict_refuse(pool: asyncpg.Pool) -> None:
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool)
    lenient = await pipeline.ingest(
        _message(channel.id, "l", phones=("garbage", "+79120000004"), emails=("bad",)),
        "viber",
    )
    assert lenient.status == "created"
    with pytest.raises(InvalidContact):
        await pipeline.ingest(
            _message(channel.id, "s", phones=("garbage",)),
            "form",
            strict_contacts=True,
        )
    assert await count(pool, "interactions") == 1


async def test_concurrent_first_contacts_by_email_and_identity_make_one_lead(
    pool: asyncpg.Pool,
) -> None:
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool)
    await asyncio.gather(
        *[
            pipeline.ingest(_message(channel.id, f"e{i}", emails=("Same@Example.com",)), "email")
            for i in range(20)
        ],
        *[
            pipeline.ingest(
                _message(channel.id, f"t{i}", identity=Identity("telegram", "99")),
                "telegram",
            )
            for i in range(20)
        ],
    )
    assert await count(pool, "leads") == 2
    assert await count(pool, "dialogs") == 2


async def test_each_thread_of_a_channel_is_a_dialog_of_its_own(pool: asyncpg.Pool) -> None:
    """Email threads: a new thread opens a new dialog even while another is open; a message
    of a thread joins it, or reopens it when closed within the reopen window. Chat channels
    (empty thread key) keep one open dialog per lead and channel."""
    channel = await add_form(pool, "mailbox")
    pipeline = IngestPipeline(pool, reopen_seconds=3600)
    mail = {"emails": ("ivan@example.com",)}
    first = await pipeline.ingest(_message(channel.id, "m1", thread_key="<a@x>", **mail), "form")
    second = await pipeline.ingest(_message(channel.id, "m2", thread_key="<b@x>", **mail), "form")
    assert first.lead_id == second.lead_id and first.dialog_id != second.dialog_id
    again = await pipeline.ingest(_message(channel.id, "m3", thread_key="<a@x>", **mail), "form")
    assert again.dialog_id == first.dialog_id and not again.dialog_created
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() WHERE id = $1", first.dialog_id
    )
    reopened = await pipeline.ingest(_message(channel.id, "m4", thread_key="<a@x>", **mail), "form")
    assert reopened.dialog_id == first.dialog_id and reopened.dialog_reopened
    chat = [await pipeline.ingest(_message(channel.id, f"c{n}", **mail), "form") for n in range(2)]
    assert chat[0].dialog_id == chat[1].dialog_id
    assert chat[0].dialog_id not in (first.dialog_id, second.dialog_id)
    assert await count(pool, "dialogs") == 3


async def test_a_batch_is_stored_with_its_position_in_order_and_once(pool: asyncpg.Pool) -> None:
    """A poller's batch: an answer joins the thread of what it answers though both arrive
    together (from different people, so possibly in different lanes), a message read twice is stored once, one the
    hub cannot use is reported in its place, and the position is saved with them."""
    channel = await add_form(pool, "mailbox")
    pipeline = IngestPipeline(pool)
    seen = _announced(pipeline)
    question = _message(channel.id, "<q@x>", thread_key="<q@x>", emails=("anna@example.com",))
    answer = _message(
        channel.id,
        "<a@y>",
        thread_key="<a@y>",  # as if the client kept only In-Reply-To
        thread_refs=("<q@x>",),
        emails=("boss@example.com",),
    )
    others = [
        _message(channel.id, f"<o{n}@z>", thread_key=f"<o{n}@z>", emails=(f"c{n}@example.com",))
        for n in range(6)
    ]
    broken = _message(channel.id, "", emails=("x@example.com",))  # no id: unusable
    batch = [question, *others[:3], answer, question, broken, *others[3:]]
    position = ChannelPosition(channel.id, {"uidvalidity": 7, "last_uid": 11})
    results = await pipeline.ingest_many(batch, "email", position=position)

    assert isinstance(results[6], UnusableMessage)
    stored = [r for r in results if isinstance(r, IngestResult)]
    assert [r.status for r in stored] == ["created"] * 5 + ["duplicate"] + ["created"] * 3
    first, again, reply = stored[0], stored[5], stored[4]
    assert again.interaction_id == first.interaction_id
    # The boss is a lead of their own; their answer is in the question's thread.
    assert reply.lead_id != first.lead_id
    thread = "SELECT thread_key FROM dialogs WHERE id = $1"
    assert await pool.fetchval(thread, reply.dialog_id) == "<q@x>"
    assert await count(pool, "interactions") == 8
    assert await channels.load_state(pool, channel.id) == position.state
    assert [r.interaction_id for r in seen] == [
        r.interaction_id for r in stored if r.status == "created"
    ]


async def test_a_batch_the_database_refuses_whole_is_stored_one_by_one(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """A deadlock with another node aborts the batch's transaction: every message is
    stored again on its own (what a lane had committed is recognised) and the position
    still saved."""
    channel = await add_form(pool, "mailbox")
    pipeline = IngestPipeline(pool)
    failures = [asyncpg.DeadlockDetectedError("deadlock detected")]

    async def deadlock_once(conn: object, result: IngestResult) -> None:
        if failures:
            raise failures.pop()

    pipeline.in_transaction.append(deadlock_once)
    batch = [
        _message(channel.id, f"<m{n}@x>", thread_key=f"<m{n}@x>", emails=(f"c{n}@example.com",))
        for n in range(10)
    ]
    position = ChannelPosition(channel.id, {"uidvalidity": 1, "last_uid": 10})
    results = await pipeline.ingest_many(batch, "email", position=position)
    assert all(isinstance(r, IngestResult) and r.interaction_id for r in results)
    assert await pool.fetchval("SELECT count(DISTINCT external_id) FROM interactions") == 10
    assert await count(pool, "interactions") == 10
    assert await channels.load_state(pool, channel.id) == position.state
    assert "storing them one by one" in caplog.text


async def test_the_operators_holding_a_leads_dialog_come_back_with_its_new_message(
    pool: asyncpg.Pool,
) -> None:
    """hub_ingest names who holds a dialog of the lead, so telling them costs no query."""
    channel = await add_form(pool, "c")
    pipeline = IngestPipeline(pool)
    first = await pipeline.ingest(_message(channel.id, "h1", emails=("h@example.com",)), "form")
    assert first.holders == ()  # a new lead: nobody holds anything of it
    operator = await pool.fetchval(
        "INSERT INTO operators (login, name, password_hash) VALUES ('h', 'H', 'x') RETURNING id"
    )
    await pool.execute(
        "UPDATE dialogs SET status = 'assigned', operator_id = $1 WHERE id = $2",
        operator,
        first.dialog_id,
    )
    second = await pipeline.ingest(_message(channel.id, "h2", emails=("h@example.com",)), "form")
    assert second.holders == (operator,)


def test_batch_lanes_keep_a_customer_and_a_thread_together() -> None:
    messages: list[tuple[list[int], list[str]]] = [
        ([1], ["<1>"]),
        ([2], ["<2>"]),
        ([1, 3], ["<3>"]),  # the first's customer
        ([4], ["<4>", "<2>"]),  # answers the second
        ([5], ["<5>"]),
        ([6], ["<6>", "<4>"]),  # answers the fourth: the second's thread still
    ]
    lanes = batch_lanes(messages, 2)
    assert sorted(lanes) == [[0, 2, 4], [1, 3, 5]]
    assert batch_lanes(messages, 1) == [[0, 1, 2, 3, 4, 5]]
    assert batch_lanes([], 2) == []
