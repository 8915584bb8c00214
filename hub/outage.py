"""What the HTTP app does while the database is down: every request that needs it gets a
503 with `Retry-After` (providers and clients retry later; nothing was acknowledged), and
the log says so once per outage, not with a traceback per request.

The first failure starts a probe that asks the database every few seconds until it
answers; then one line says it is back. Nothing runs while the database is up.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
PROBE_EVERY_S = 2.0


class _PoolFloorRetries(logging.Filter):
    """asyncpg's pool logs a traceback each time it fails to reopen its idle connections;
    during an outage that is one per release of a connection. The watch says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to restore the pool connection floor")


_POOL_FLOOR = _PoolFloorRetries()


class OutageWatch:
    def __init__(self, pool: asyncpg.Pool, probe_every: float = PROBE_EVERY_S) -> None:
        pool_log = logging.getLogger("asyncpg.pool")
        if _POOL_FLOOR not in pool_log.filters:
            pool_log.addFilter(_POOL_FLOOR)
        self.pool = pool
        self.probe_every = probe_every
        self._probe: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return self._probe is not None and not self._probe.done()

    async def database_answers(self) -> bool:
        """Whether the database answers now (within a few seconds: a busy server is not a
        lost one): tells an outage from an OSError of something else."""
        if self.down:
            return False
        try:
            async with asyncio.timeout(3.0):
                await self.pool.fetchval("SELECT 1")
        except (Exception, TimeoutError):  # any failure to answer means it does not
            return False
        return True

    def failed(self, error: BaseException) -> None:
        """A request could not reach the database."""
        if self.down:
            return
        log.warning(
            "the database is unavailable (%s); answering 503 until it is back",
            type(error).__name__,
        )
        self._probe = asyncio.create_task(self._until_back(), name="database-probe")

    async def _until_back(self) -> None:
        started = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.probe_every)
            try:
                async with asyncio.timeout(self.probe_every):
                    await self.pool.fetchval("SELECT 1")
            except (Exception, TimeoutError) as exc:  # still down, whatever the reason
                log.debug("database still unavailable: %s", type(exc).__name__)
                continue
            took = asyncio.get_running_loop().time() - started
            log.warning("the database is reachable again after %.0f s", took)
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
