"""The statements the console asks for on every offer and assignment settle on one generic
plan instead of being planned again on every call (PostgreSQL's own counters of a
session's prepared statements tell which plan each execution used)."""

from __future__ import annotations

import asyncpg

from hub.domain import Channel
from storage import dialogs, leads


async def test_one_dialogs_summary_is_planned_once(pool: asyncpg.Pool, form: Channel) -> None:
    async with pool.acquire() as conn:
        lead_id = await conn.fetchval("INSERT INTO leads (name) VALUES ('Anna') RETURNING id")
        dialog_id = await conn.fetchval(
            "INSERT INTO dialogs (lead_id, channel_id) VALUES ($1, $2) RETURNING id",
            lead_id,
            form.id,
        )
        for _ in range(12):
            assert [d.id for d in await dialogs.get_many(conn, [dialog_id])] == [dialog_id]
            assert list(await leads.get_many(conn, [lead_id])) == [lead_id]
            assert list(await dialogs.reading_state(conn, [dialog_id])) == [dialog_id]
        plans = await conn.fetch(
            """SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
                WHERE (statement LIKE '%FROM dialogs d JOIN channels%'
                       OR statement LIKE '%FROM leads l WHERE%'
                       OR statement LIKE '%AS waiting_since%')
                  AND statement NOT LIKE '%pg_prepared_statements%'"""
        )
        assert len(plans) == 3
        for row in plans:
            # PostgreSQL tries five custom plans before it compares them with the generic.
            assert row["custom_plans"] <= 5, row["statement"]
            assert row["generic_plans"] >= 7, row["statement"]

        # Several ids are still one statement each, answered alike.
        other = await conn.fetchval(
            "INSERT INTO dialogs (lead_id, channel_id, status) VALUES ($1, $2, 'closed')"
            " RETURNING id",
            lead_id,
            form.id,
        )
        found = await dialogs.get_many(conn, [other, dialog_id])
        assert [d.id for d in found] == sorted([dialog_id, other])
        assert set(await dialogs.reading_state(conn, [dialog_id, other])) == {dialog_id, other}
