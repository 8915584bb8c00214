"""An installation from before the hub had its own role: its tables, sequences and stored
functions, made by the superuser, are handed to the `hub` role where they are; the hub then
works as that role."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from hub.domain import ChannelId, InboundMessage
from hub.pipeline import IngestPipeline
from storage import channels
from storage.database import create_pool
from storage.migrate import migrate
from storage.owner_role import ensure_owner_role


async def test_a_superuser_installation_is_handed_to_the_hub_role(
    db_dsn: str, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as admin:
        form = await channels.create(admin, "form", "site", {})
    await pool.execute("INSERT INTO leads (name) VALUES ('Kept from before')")

    dsn = await ensure_owner_role(db_dsn)
    assert await ensure_owner_role(db_dsn) == dsn  # idempotent

    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "hub"
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = 'hub'")
        assert await conn.fetchval("SELECT name FROM leads") == "Kept from before"
        # Stored functions are re-applied by the hub as the new owner.
        await conn.execute("DELETE FROM schema_functions")
        await migrate(conn)
        owners = {
            r["owner"]
            for r in await conn.fetch(
                """SELECT pg_get_userbyid(c.relowner) AS owner FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')"""
            )
        }
        assert owners == {"hub"}
    finally:
        await conn.close()

    as_hub = await create_pool(dsn, min_size=1, max_size=2)
    try:
        result = await IngestPipeline(as_hub).ingest(
            InboundMessage(
                channel_id=ChannelId(form.id),
                external_id="after-handover",
                occurred_at=datetime.now(UTC),
                text="hello",
                phones=("+79120000001",),
            ),
            "form",
        )
    finally:
        await as_hub.close()
    assert result.status == "created"
