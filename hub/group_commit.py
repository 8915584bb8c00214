"""Inbound events that arrive together share one transaction and one commit.

Each event is still one `hub_ingest` call with its own locks and its own result, and each
request is answered only after the commit that holds its event. What is shared is the
rest: the round trip, the transaction's start and end, and the commit's write to the log,
which under load is most of what an event costs beyond its own statements. Nothing waits
on a timer to fill a group: an event arriving while the node commits nothing goes at once;
those arriving during a commit go together with the next one (at most `GROUP` of them, at
most `AT_ONCE` commits at a time).

Safety is what a single event has: a group takes every key of its events first, in the one
order every caller uses (advisory locks are re-entrant), so two groups, or a group and a
single event, never wait for each other in a circle, and a second message of a new
customer in the same group sees the lead the first one made. A group the database refuses
as a whole (one event it cannot take) is stored again one event at a time, so one bad
event costs the others only speed, and the bad one alone gets its error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg

from storage.database import DATABASE_DOWN, DATABASE_ONLY
from storage.ingest import IngestCall, IngestRow, keys_taken_first
from storage.ingest import ingest as ingest_row
from storage.ingest import ingest_many as ingest_rows

log = logging.getLogger(__name__)

# What a connection lost in the middle of a group raises: asyncpg's own errors, a plain
# OSError of its socket, or (a pipelined group cut short) asyncpg's internal state error.
_LOST: tuple[type[BaseException], ...] = (*DATABASE_DOWN, asyncpg.exceptions.InternalClientError)

GROUP = 64  # events in one commit at most
AT_ONCE = 4  # commits in flight at once (each holds a pooled connection)


class GroupCommit:
    def __init__(self, pool: asyncpg.Pool, group: int = GROUP, at_once: int = AT_ONCE) -> None:
        self.pool = pool
        self.group = group
        self.at_once = at_once
        self._waiting: list[tuple[IngestCall, asyncio.Future[IngestRow]]] = []
        self._committers: set[asyncio.Task[None]] = set()

    async def ingest(self, call: IngestCall) -> IngestRow:
        """Store one event, together with whatever else arrives meanwhile; its row once
        the commit holding it is done."""
        done: asyncio.Future[IngestRow] = asyncio.get_running_loop().create_future()
        self._waiting.append((call, done))
        if len(self._committers) < self.at_once:
            task = asyncio.create_task(self._commit_while_waiting())
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)
        return await done

    async def _commit_while_waiting(self) -> None:
        group: list[tuple[IngestCall, asyncio.Future[IngestRow]]] = []
        try:
            while self._waiting:
                group = self._waiting[: self.group]
                del self._waiting[: self.group]
                await self._commit(group)
        finally:
            # Stopped mid-way (the node shuts down): no request waits for ever.
            for _, done in group:
                done.cancel()
            if len(self._committers) <= 1:
                for _, done in self._waiting:
                    done.cancel()
                self._waiting.clear()

    async def _commit(self, group: Sequence[tuple[IngestCall, asyncio.Future[IngestRow]]]) -> None:
        if len(group) == 1:
            await self._one(*group[0])
            return
        calls = keys_taken_first([call for call, _ in group])
        try:
            async with self.pool.acquire() as conn:
                # One round trip, one implicit transaction: all or none.
                rows = await ingest_rows(conn, calls)
        except _LOST as exc:
            # The database went away: nothing to store one by one; every request of the
            # group answers that (a 503), at once.
            _fail(group, _as_database_error(exc))
            return
        except asyncpg.PostgresError as exc:
            log.warning(
                "a group of %d events was refused as a whole (%s); storing them one by one",
                len(group),
                type(exc).__name__,
            )
            for call, done in group:
                await self._one(call, done)
            return
        except Exception as exc:  # anything else is a bug: each request answers it
            _fail(group, exc)
            return
        for (_, done), row in zip(group, rows, strict=True):
            if not done.done():
                done.set_result(row)

    async def _one(self, call: IngestCall, done: asyncio.Future[IngestRow]) -> None:
        try:
            async with self.pool.acquire() as conn:
                row = await ingest_row(conn, call)
        except Exception as exc:
            _fail([(call, done)], _as_database_error(exc) if isinstance(exc, _LOST) else exc)
        else:
            if not done.done():
                done.set_result(row)


def _fail(
    group: Sequence[tuple[IngestCall, asyncio.Future[IngestRow]]], error: BaseException
) -> None:
    for _, done in group:
        if not done.done():
            done.set_exception(error)


def _as_database_error(exc: BaseException) -> BaseException:
    """An error of the database's connection, said as one: a plain OSError (or asyncpg's
    internal state error) here is the database's connection (this code does nothing else),
    and the request that receives it later, perhaps after the database is back, must still
    answer 503, not take it for a bug."""
    if isinstance(exc, DATABASE_ONLY):
        return exc
    lost = asyncpg.exceptions.ConnectionFailureError(f"the database connection failed: {exc}")
    lost.__cause__ = exc
    return lost
