"""Events arriving together share a commit: fewer commits than events, each event still
its own result, one lead per new customer, and a group the database refuses stored again
one by one so that only the bad event fails."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from hub.domain import ChannelId, InboundMessage
from hub.pipeline import IngestPipeline
from tests.conftest import add_form, count


def _message(channel_id: int, external_id: str, phone: str) -> InboundMessage:
    return InboundMessage(
        channel_id=ChannelId(channel_id),
        external_id=external_id,
        occurred_at=datetime.now(UTC),
        phones=(phone,),
        text=f"message {external_id}",
    )


async def _transactions(pool: asyncpg.Pool) -> int:
    """How many transactions wrote the interactions (each row keeps its writer's id)."""
    return int(await pool.fetchval("SELECT count(DISTINCT xmin::text) FROM interactions"))


async def test_events_arriving_together_share_commits_and_keep_their_results(
    pool: asyncpg.Pool,
) -> None:
    channel = await add_form(pool, "site")
    pipeline = IngestPipeline(pool)
    await pipeline.ingest(_message(channel.id, "warm", "+79160000999"), "form")
    # Ten new customers, each writing five times at once.
    messages = [
        _message(channel.id, f"m{c}-{n}", f"+7916000{c:04d}") for n in range(5) for c in range(10)
    ]
    results = await asyncio.gather(*(pipeline.ingest(m, "form") for m in messages))
    commits = await _transactions(pool) - 1  # less the warm-up's
    assert all(r.status == "created" for r in results)
    assert len({r.interaction_id for r in results}) == 50
    # One lead and one dialog per customer, however their messages were grouped.
    by_customer: dict[str, set[int]] = {}
    for message, result in zip(messages, results, strict=True):
        by_customer.setdefault(message.phones[0], set()).add(int(result.lead_id or 0))
    assert all(len(leads) == 1 for leads in by_customer.values())
    assert await count(pool, "leads") == 11 and await count(pool, "dialogs") == 11
    # Each stored text is its own message's.
    texts = {
        r["id"]: r["text"]
        for r in await pool.fetch("SELECT id, text FROM interactions WHERE external_id <> 'warm'")
    }
    for message, result in zip(messages, results, strict=True):
        assert texts[result.interaction_id] == message.text
    assert commits <= 20, commits  # 50 events: a group waits for a commit in flight


async def test_a_group_refused_as_a_whole_is_stored_one_by_one(pool: asyncpg.Pool) -> None:
    channel = await add_form(pool, "site")
    pipeline = IngestPipeline(pool)
    good = [_message(channel.id, f"g{n}", f"+7916111{n:04d}") for n in range(6)]
    bad = _message(999_999, "bad", "+79162220000")  # no such channel: the database refuses
    outcomes = await asyncio.gather(
        *(pipeline.ingest(m, "form") for m in [*good[:3], bad, *good[3:]]),
        return_exceptions=True,
    )
    refused = outcomes[3]
    assert isinstance(refused, asyncpg.ForeignKeyViolationError)
    stored = [o for n, o in enumerate(outcomes) if n != 3]
    assert all(not isinstance(o, BaseException) and o.status == "created" for o in stored)
    assert await count(pool, "interactions") == 6


@pytest.mark.parametrize("group", [1, 3])
async def test_a_small_group_size_still_stores_everything_once(
    pool: asyncpg.Pool, group: int
) -> None:
    channel = await add_form(pool, "site")
    pipeline = IngestPipeline(pool)
    pipeline.commits.group = group
    messages = [_message(channel.id, f"s{n}", "+79163330000") for n in range(9)]
    results = await asyncio.gather(*(pipeline.ingest(m, "form") for m in messages))
    ids = [r.interaction_id for r in results]
    assert len(set(ids)) == 9 and len({r.lead_id for r in results}) == 1
    assert await count(pool, "interactions") == 9 and await count(pool, "dialogs") == 1
