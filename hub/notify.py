"""Telling operators that an interaction is new or changed: every operator holding an open
dialog of the interaction's lead, since the console shows a lead's conversation across all
its channels (a form message from the customer anna is chatting with on Telegram appears in
anna's open conversation), and whoever monitors its dialog from the supervisors' desk."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from hub.domain import Notice

Publish = Callable[[Notice], Awaitable[None]]


async def interaction_changed(
    pool: asyncpg.Pool, publish: Publish | None, interaction_id: int, kind: str = "interaction"
) -> None:
    if publish is None:
        return
    row = await pool.fetchrow(
        """SELECT i.dialog_id,
                  array(SELECT DISTINCT d.operator_id FROM dialogs d
                        WHERE d.lead_id = i.lead_id AND d.status = 'assigned'
                          AND d.operator_id IS NOT NULL) AS holders
           FROM interactions i WHERE i.id = $1""",
        interaction_id,
    )
    if row is not None:
        await tell_holders(publish, row["holders"], row["dialog_id"], interaction_id, kind)


async def tell_holders(
    publish: Publish,
    holders: Sequence[int],
    dialog_id: int | None,
    interaction_id: int,
    kind: str = "interaction",
) -> None:
    """The notice of a new or changed interaction, to the operators already known to hold
    a dialog of its lead (the ingest names them itself). It goes out with no holder too: a
    supervisor on any node may be monitoring the dialog."""
    await publish(Notice(kind, dialog_id, tuple(holders), {"interaction_id": interaction_id}))


async def lead_changed(
    pool: asyncpg.Pool,
    publish: Publish | None,
    lead_ids: list[int],
    kind: str,
    data: dict[str, int],
) -> None:
    """A lead was merged, unmerged or edited: the operators holding its dialogs reload it."""
    if publish is None:
        return
    holders = await pool.fetchval(
        """SELECT array(SELECT DISTINCT operator_id FROM dialogs
                        WHERE lead_id = ANY($1::bigint[]) AND status = 'assigned'
                          AND operator_id IS NOT NULL)""",
        lead_ids,
    )
    if holders:
        await publish(Notice(kind, None, tuple(holders), data))
