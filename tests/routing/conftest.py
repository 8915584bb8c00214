"""Routing fixtures: operators, queues and dialogs on a real database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hub.domain import ChannelId, InboundMessage, Notice
from hub.pipeline import IngestPipeline
from routing.router import Router
from storage import queues
from tests.conftest import add_form, add_operator


class Recorder:
    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self.auto_replies: list[tuple[int, str]] = []

    async def publish(self, notice: Notice) -> None:
        self.notices.append(notice)

    async def auto_reply(self, dialog_id: int, text: str) -> None:
        self.auto_replies.append((dialog_id, text))

    def of(self, kind: str) -> list[Notice]:
        return [n for n in self.notices if n.kind == kind]


class World:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.recorder = Recorder()
        self.router = Router(pool, self.recorder.publish, self.recorder.auto_reply)
        self.pipeline = IngestPipeline(pool)
        self.channel_id = 0
        self._n = 0

    async def setup(self) -> None:
        self.channel_id = (await add_form(self.pool, "site")).id

    async def operator(
        self, login: str, *, online: bool = True, max_dialogs: int = 5, skills: tuple[str, ...] = ()
    ) -> int:
        return await add_operator(
            self.pool, login, max_dialogs=max_dialogs, skills=skills, online=online
        )

    async def dialog(self, phone: str | None = None) -> int:
        self._n += 1
        message = InboundMessage(
            channel_id=ChannelId(self.channel_id),
            external_id=f"m{self._n}",
            occurred_at=datetime.now(UTC),
            phones=(phone or f"+7916{self._n:07d}",),
        )
        result = await self.pipeline.ingest(message, "form")
        assert result.dialog_id is not None
        return result.dialog_id

    async def queue(self, name: str = "main", **values: Any) -> None:
        defaults: dict[str, Any] = dict(
            strategy="least_busy",
            offer_timeout_s=30,
            channels=("site",),
            skills=(),
            hours=None,
            timezone="UTC",
            auto_reply=None,
        )
        await queues.create(self.pool, name=name, **{**defaults, **values})
        self.router.forget_queues()

    async def status(self, dialog_id: int) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT status, operator_id, offered_to, declined_by FROM dialogs WHERE id = $1",
            dialog_id,
        )
        assert row is not None
        return row


@pytest.fixture
async def world(pool: asyncpg.Pool) -> World:
    w = World(pool)
    await w.setup()
    return w
