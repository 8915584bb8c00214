"""Opening the hub's resources: the database (embedded or external), migrations, the
pipeline and the connectors. `hub serve`, the other CLI commands and the tests share it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

import connectors.forms  # noqa: F401  (registers the form connector)
from connectors.base import factory_for, registered_kinds
from hub.attachments import DiskAttachmentStore
from hub.config import Settings
from hub.context import ChannelCache, Hub
from hub.pipeline import IngestPipeline
from hub.ports import HubPorts
from storage.database import create_pool
from storage.embedded import EmbeddedPostgres
from storage.migrate import migrate

log = logging.getLogger(__name__)


@asynccontextmanager
async def database(
    settings: Settings, *, run_migrations: bool = True
) -> AsyncIterator[asyncpg.Pool]:
    """A migrated pool on `HUB_DATABASE_URL`, or on the embedded server in `HUB_DATA_DIR`."""
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url
    if not dsn:
        embedded = EmbeddedPostgres(settings.data_dir)
        dsn = await asyncio.to_thread(embedded.start)
    try:
        if run_migrations:
            # A connection of its own: the migration lock is a session lock.
            conn = await asyncpg.connect(dsn)
            try:
                applied = await migrate(conn)
            finally:
                await conn.close()
            if applied:
                log.info("database migrated to version %d", applied[-1])
        pool = await create_pool(dsn, max_size=settings.pool_size)
        try:
            yield pool
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def build_hub(settings: Settings, pool: asyncpg.Pool) -> Hub:
    pipeline = IngestPipeline(pool, settings.default_region)
    attachments = DiskAttachmentStore(settings.attachments_dir)
    hub = Hub(
        settings=settings,
        pool=pool,
        pipeline=pipeline,
        attachments=attachments,
        channels=ChannelCache(pool),
    )
    ports = HubPorts(
        ingest=pipeline,
        attachments=attachments,
        public_url=settings.base_url,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        max_files=settings.max_form_files,
        trust_forwarded=settings.trust_forwarded,
    )
    for kind in registered_kinds():
        factory = factory_for(kind)
        assert factory is not None
        hub.connectors[kind] = factory(ports)
    return hub
