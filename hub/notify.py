"""Telling the operator who holds a dialog that one of its interactions is new or changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from hub.domain import Notice

Publish = Callable[[Notice], Awaitable[None]]


async def interaction_changed(
    pool: asyncpg.Pool, publish: Publish | None, interaction_id: int, kind: str = "interaction"
) -> None:
    if publish is None:
        return
    row = await pool.fetchrow(
        """SELECT d.id, d.operator_id FROM interactions i JOIN dialogs d ON d.id = i.dialog_id
           WHERE i.id = $1 AND d.status = 'assigned'""",
        interaction_id,
    )
    if row is not None and row["operator_id"] is not None:
        await publish(
            Notice(kind, row["id"], (row["operator_id"],), {"interaction_id": interaction_id})
        )
