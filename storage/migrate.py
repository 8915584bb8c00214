"""Numbered, forward-only schema migrations, then the stored functions.

Each `migrations/NNNN_name.sql` runs in its own transaction and is recorded in
`schema_migrations`. A session advisory lock makes several nodes starting at once take
turns, and a database that is newer than this code refuses to be used rather than be
corrupted by an older binary.

Stored functions (and the triggers that call them) are not migrations: each lives in one
file under `functions/`, written with `CREATE OR REPLACE`, applied in file-name order after
the migrations whenever its text changed (its hash is kept in `schema_functions`), so a
function has one home instead of a copy in every migration that changes it. A change of a
function's arguments or result columns, which `CREATE OR REPLACE` cannot make, needs a
migration that drops the old one first.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from storage.database import Conn

log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x68_75_62_6D_69_67  # "hubmig"
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_FUNCTIONS_RE = re.compile(r"^\d{2}_[a-z0-9_]+\.sql$")


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer hub; refuse to start."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


async def migrate(conn: Conn) -> list[int]:
    """Apply pending migrations; return the versions applied now."""
    migrations = load_migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        newest_known = migrations[-1].version if migrations else 0
        if applied and max(applied) > newest_known:
            raise SchemaTooNew(
                f"database schema is at version {max(applied)}, this hub knows {newest_known}: "
                "upgrade the hub"
            )
        done: list[int] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            done.append(migration.version)
        await apply_functions(conn)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


def load_functions() -> list[tuple[str, str]]:
    """(file name, SQL) of every stored-function file, in the order they are applied."""
    folder = resources.files("storage").joinpath("functions")
    return sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if _FUNCTIONS_RE.match(entry.name)
    )


async def apply_functions(conn: Conn) -> list[str]:
    """(Re)create the stored functions whose text changed; the caller holds the lock."""
    applied = {
        r["name"]: r["sha256"]
        for r in await conn.fetch("SELECT name, sha256 FROM schema_functions")
    }
    done: list[str] = []
    for name, sql in load_functions():
        digest = hashlib.sha256(sql.encode()).hexdigest()
        if applied.get(name) == digest:
            continue
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute(
                """INSERT INTO schema_functions (name, sha256) VALUES ($1, $2)
                   ON CONFLICT (name) DO UPDATE SET sha256 = $2, applied_at = now()""",
                name,
                digest,
            )
        log.info("applied stored functions %s", name)
        done.append(name)
    return done
