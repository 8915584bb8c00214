"""An operator's load as the router reads it: the dialogs they hold plus the offers made to
them alone, the same whether read for every candidate at once (`candidates`) or for one
operator under their lock (`load_of`); closed dialogs, dialogs held by others and offers
shared with others never count."""

from __future__ import annotations

import asyncpg

from hub.domain import Channel
from storage import routing as store
from storage.database import Conn
from tests.conftest import add_operator


async def _dialog(conn: Conn, channel: Channel, status: str, operator_id: int | None = None) -> int:
    """A dialog of a lead of its own, written as the router leaves it."""
    lead_id = await conn.fetchval("INSERT INTO leads (name) VALUES ('Customer') RETURNING id")
    dialog_id: int = await conn.fetchval(
        """INSERT INTO dialogs (lead_id, channel_id, status, operator_id, closed_at)
           VALUES ($1, $2, $3, $4, CASE WHEN $3 = 'closed' THEN now() END) RETURNING id""",
        lead_id,
        channel.id,
        status,
        operator_id,
    )
    return dialog_id


async def test_candidates_and_load_of_count_the_same_load(
    pool: asyncpg.Pool, form: Channel
) -> None:
    anna = await add_operator(pool, "anna", online=True, max_dialogs=4)
    boris = await add_operator(pool, "boris", online=True, skills=("en",))
    clara = await add_operator(pool, "clara", online=True)
    dmitry = await add_operator(pool, "dmitry")  # offline: never a candidate
    async with pool.acquire() as conn:
        for status in ("assigned", "assigned", "closed"):
            await _dialog(conn, form, status, anna)
        await _dialog(conn, form, "assigned", dmitry)
        await _dialog(conn, form, "queued")
        for offered_to in ([boris], [boris, clara]):
            await conn.execute(
                "UPDATE dialogs SET status = 'offered', offered_to = $2 WHERE id = $1",
                await _dialog(conn, form, "queued"),
                offered_to,
            )

    async with pool.acquire() as conn:
        everyone = {c.operator_id: c for c in await store.candidates(conn, [], [])}
        assert set(everyone) == {anna, boris, clara}
        assert {o: c.load for o, c in everyone.items()} == {anna: 2, boris: 1, clara: 0}
        assert everyone[anna].max_dialogs == 4
        for operator_id, candidate in everyone.items():
            read = await store.load_of(conn, operator_id)
            assert read == (candidate.load, candidate.max_dialogs, "online")
        assert await store.load_of(conn, dmitry) == (1, 5, "offline")

        # Skills and exclusions narrow the list without changing anyone's load.
        speaking = await store.candidates(conn, ["en"], [])
        assert [(c.operator_id, c.load) for c in speaking] == [(boris, 1)]
        others = await store.candidates(conn, [], [anna, clara])
        assert [(c.operator_id, c.load) for c in others] == [(boris, 1)]
