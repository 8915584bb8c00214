"""An idle hub rests: with no channels and no clients, `hub serve` makes almost no database
calls (every background loop sleeps until woken or due)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from tests.fixtures.processes import HubProcess

IDLE_SECONDS = 10.0


async def _transactions(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        # Statistics are flushed by each backend now and then; ask for a fresh snapshot.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value: int = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return value
    finally:
        await conn.close()


async def test_an_idle_hub_makes_fewer_than_ten_transactions_a_second(
    db_dsn: str, tmp_path: Path
) -> None:
    node = HubProcess(
        {"HUB_DATABASE_URL": db_dsn, "HUB_DATA_DIR": str(tmp_path / "data")},
        tmp_path,
        tmp_path / "hub.log",
    )
    node.start()
    try:
        await asyncio.sleep(2.0)  # the start's own work (migrations, first passes) settles
        before = await _transactions(db_dsn)
        await asyncio.sleep(IDLE_SECONDS)
        after = await _transactions(db_dsn)
    finally:
        node.stop()
    rate = (after - before) / IDLE_SECONDS
    assert rate < 10, f"{rate:.1f} transactions a second while idle"
