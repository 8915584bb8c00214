"""The hub connects to PostgreSQL as an ordinary role that owns its database, never as a
superuser: a bug or an injection in the hub then reaches the hub's own tables, not the
server (no `COPY ... PROGRAM`, no other databases, no roles).

With the embedded server the superuser `postgres` made by `initdb` is used once per start,
only to create that role (`hub`: LOGIN, nothing else) and its database. Installations made
before kept their tables in the `postgres` database as the superuser's: those are handed
to the `hub` role where they are, so no data moves.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

ROLE = "hub"
DATABASE = "hub"

# Everything in the public schema of a database the superuser populated, handed to ROLE.
_HAND_OVER = f"""
DO $$
DECLARE r record;
BEGIN
    EXECUTE 'ALTER SCHEMA public OWNER TO {ROLE}';
    FOR r IN SELECT c.relname, c.relkind FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                               AND d.deptype IN ('e', 'i', 'a'))
    LOOP
        EXECUTE format('ALTER %s public.%I OWNER TO {ROLE}',
                       CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                      WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                       r.relname);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid
                               AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO {ROLE}', r.signature);
    END LOOP;
END $$;
"""


def _with(dsn: str, *, user: str, database: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}", path=f"/{database}"))


async def ensure_owner_role(superuser_dsn: str) -> str:
    """Create the hub's role and database if missing; the DSN to connect as that role."""
    conn = await asyncpg.connect(superuser_dsn)
    try:
        # Two hubs starting at once on one data folder: one creates, the other finds.
        await conn.execute("SELECT pg_advisory_lock(hashtext('hub:owner-role'))")
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", ROLE):
            await conn.execute(
                f"CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                " NOREPLICATION NOBYPASSRLS"
            )
            log.info("created the database role %r for the hub", ROLE)
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            return _with(superuser_dsn, user=ROLE, database=DATABASE)
        legacy = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
        current = await conn.fetchval("SELECT current_database()")
        if legacy:
            # An installation from before the role: its data stays in this database.
            owner = await conn.fetchval(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'schema_migrations'"
                " AND schemaname = 'public'"
            )
            if owner != ROLE:
                async with conn.transaction():
                    await conn.execute(_HAND_OVER)
                log.info("handed the hub's tables in %r to the role %r", current, ROLE)
            return _with(superuser_dsn, user=ROLE, database=current)
        await conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        return _with(superuser_dsn, user=ROLE, database=DATABASE)
    finally:
        await conn.close()


async def is_superuser(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
