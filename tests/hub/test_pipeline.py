"""The ingest pipeline directly: identification order, idempotency, threading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hub.domain import ChannelId, Identity, InboundMessage
from hub.identity import InvalidContact
from hub.pipeline import IngestPipeline
from hub.ports import IngestResult
from storage import events
from tests.conftest import add_form, count


def _message(channel_id: int, external_id: str, **fields: Any) -> InboundMessage:
    return InboundMessage(
        channel_id=ChannelId(channel_id),
        external_id=external_id,
        occurred_at=datetime.now(UTC),
        **fields,
    )


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
    seen: list[IngestResult] = []

    async def after(result: IngestResult) -> None:
        seen.append(result)

    pipeline.after_commit.append(after)
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
