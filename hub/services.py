"""The hub's side of the `ChannelEvents` port: edits, receipts, subscriptions, poller state."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import asyncpg

from hub.domain import ChannelId
from hub.notify import Publish, interaction_changed
from hub.redact import clean
from storage import channels, interactions

log = logging.getLogger(__name__)


class ChannelEventsService:
    def __init__(self, pool: asyncpg.Pool, publish: Publish | None = None) -> None:
        self.pool = pool
        self.publish = publish

    async def edit(
        self, channel_id: ChannelId, external_id: str, text: str | None, edited_at: datetime
    ) -> str:
        async with self.pool.acquire() as conn, conn.transaction():
            outcome, interaction_id = await interactions.edit(
                conn, channel_id, external_id, text, edited_at
            )
        if outcome == "updated" and interaction_id is not None:
            await interaction_changed(
                self.pool, self.publish, interaction_id, "interaction.updated"
            )
        return outcome

    async def delivery(
        self, channel_id: ChannelId, provider_message_id: str, state: str, error: str | None = None
    ) -> None:
        async with self.pool.acquire() as conn:
            found = await interactions.mark_delivery(
                conn, channel_id, provider_message_id, state, clean(error) if error else None
            )
        if found is not None:
            await interaction_changed(self.pool, self.publish, found, "interaction.updated")
        else:
            log.debug(
                "receipt %s for unknown or later-state message on channel %s", state, channel_id
            )

    async def subscription(self, channel_id: ChannelId, external_id: str, subscribed: bool) -> None:
        await channels.set_subscribed(self.pool, channel_id, external_id, subscribed)

    async def load_state(self, channel_id: ChannelId) -> dict[str, Any]:
        return await channels.load_state(self.pool, channel_id)

    async def save_state(self, channel_id: ChannelId, state: dict[str, Any]) -> None:
        await channels.save_state(self.pool, channel_id, state)
