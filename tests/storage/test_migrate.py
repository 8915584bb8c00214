"""Migrations: recorded, idempotent, safe when nodes start at once, refused when newer."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage.migrate import SchemaTooNew, apply_functions, load_functions, load_migrations, migrate
from tests.fixtures.postgres import PgServer


async def test_fresh_database_is_migrated_once_even_by_concurrent_nodes(
    pg_server: PgServer,
) -> None:
    admin = await asyncpg.connect(pg_server.admin_dsn)
    name = "hub_migrate_test"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        from tests.fixtures.postgres import with_database

        dsn = with_database(pg_server.admin_dsn, name)
        conns = [await asyncpg.connect(dsn) for _ in range(3)]
        results = await asyncio.gather(*[migrate(c) for c in conns])
        versions = [m.version for m in load_migrations()]
        assert sorted(v for applied in results for v in applied) == versions
        rows = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == versions
        assert await migrate(conns[0]) == []
        for c in conns:
            await c.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_newer_schema_is_refused(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')"
    )
    async with pool.acquire() as conn:
        with pytest.raises(SchemaTooNew):
            await migrate(conn)


async def test_lookup_keys_are_indexed(pool: asyncpg.Pool) -> None:
    indexes = {
        r["indexdef"]
        for r in await pool.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")
    }
    text = "\n".join(indexes)
    for needle in [
        "lead_phones USING btree (phone)",
        "lead_emails USING btree (email)",
        "lead_identities USING btree (kind, external_id)",
        "interactions USING btree (channel_id, external_id)",
        "channels USING btree (name)",
        "api_keys USING btree (key_hash)",
        "unsorted USING btree (channel_id, external_id)",
    ]:
        assert needle in text, needle


async def test_stored_functions_are_applied_when_their_text_changes(pool: asyncpg.Pool) -> None:
    """Each file under storage/functions is applied after the migrations when its text is
    not the one last applied, and left alone otherwise."""
    names = [name for name, _ in load_functions()]
    recorded = await pool.fetch("SELECT name FROM schema_functions ORDER BY name")
    assert [r["name"] for r in recorded] == names
    async with pool.acquire() as conn:
        assert await apply_functions(conn) == []  # nothing changed since the start
        # An older body of a function, as a previous hub version left it:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION hub_event_lock(p_lead bigint) RETURNS bigint"
            " LANGUAGE sql IMMUTABLE AS $$ SELECT 0::bigint $$"
        )
        await conn.execute(
            "UPDATE schema_functions SET sha256 = 'older' WHERE name = '05_events.sql'"
        )
        assert await migrate(conn) == []  # no migration pending, but the functions are seen
        assert await conn.fetchval("SELECT hub_event_lock(1)") == 0x6576 * 2**48 + 1
        assert await apply_functions(conn) == []
