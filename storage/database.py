"""The asyncpg pool and the JSON codec every repository relies on."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

if TYPE_CHECKING:
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    # A plain connection or one borrowed from the pool: repositories accept either.
    Conn = asyncpg.Connection | PoolConnectionProxy

# What a lost or failing database raises: the background workers catch exactly these,
# log, and try again later; anything else is a bug and is logged as one.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

# The narrower set that means "the database cannot be reached or is shutting down", as
# opposed to a statement the database refused: the HTTP app answers these with 503.
DATABASE_ONLY: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
# A refused or reset connection to the server is a plain OSError: also one of these, once
# the database is seen not to answer.
DATABASE_DOWN: tuple[type[BaseException], ...] = (OSError, *DATABASE_ONLY)

# Background loops retry every few seconds while the database is away; each says so at
# most once a minute, in one line (a lost connection is not a bug: no traceback).
_REPORT_EVERY_S = 60.0
_reported: dict[str, float] = {}


def report_unavailable(log: logging.Logger, what: str, error: BaseException) -> None:
    now = time.monotonic()
    if now - _reported.get(what, -_REPORT_EVERY_S) < _REPORT_EVERY_S:
        log.debug("%s: database still unavailable (%s)", what, type(error).__name__)
        return
    _reported[what] = now
    log.warning("%s: database unavailable (%s); retrying", what, type(error).__name__)


@asynccontextmanager
async def connection(db: Conn | asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection: the one given, or one borrowed from the given pool for the block."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query (`RESET ALL; UNLISTEN *; ...`) on every release.

    It costs a round trip per request, and pooled connections here carry no session
    state: transactions are managed by context managers, advisory locks are
    transaction-scoped, and whatever needs session state (the migration lock, LISTEN)
    uses a connection of its own and cleans up after itself.
    """


def id_filter(column: str, ids: Sequence[int]) -> tuple[str, int | list[int]]:
    """`column = $1` for one id, `column = ANY($1::bigint[])` for several, with the argument
    to pass. A prepared statement filtering on an array never settles on a generic plan:
    PostgreSQL prices one for an array of unknown length above a custom plan for the
    one-element array it is mostly given, so it plans the statement again on every call
    (for the console's dialog summaries, six times what running them costs). A lone id is
    what the live path asks for, and its statement is planned once."""
    if len(ids) == 1:
        return f"{column} = $1", ids[0]
    return f"{column} = ANY($1::bigint[])", list(ids)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections decode jsonb to Python values.

    The statement cache stays on: the hot ingest path runs the same handful of statements
    for every event, so prepared plans save a parse and plan per statement.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=60,
    )
    assert pool is not None
    return pool


async def update_columns(
    conn: Conn,
    table: str,
    row_id: int,
    changes: dict[str, Any],
    allowed: tuple[str, ...],
    *,
    also: str = "TRUE",
) -> asyncpg.Record | None:
    """`UPDATE table SET` the `allowed` columns named in `changes` on the row `row_id` (and
    `also`, a condition); the row after, or None when no row matched. Nothing to change
    reads the row as it is. Lists and tuples are stored as arrays."""
    columns = [c for c in changes if c in allowed]
    if not columns:
        return await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1 AND {also}", row_id)
    assignments = ", ".join(f"{c} = ${n}" for n, c in enumerate(columns, start=2))
    values = [list(v) if isinstance(v, list | tuple) else v for v in (changes[c] for c in columns)]
    return await conn.fetchrow(
        f"UPDATE {table} SET {assignments} WHERE id = $1 AND {also} RETURNING *", row_id, *values
    )
