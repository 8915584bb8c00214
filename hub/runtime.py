"""Opening the hub's resources: the database (embedded or external), migrations, the
pipeline and the connectors. `hub serve`, the other CLI commands and the tests share it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from connectors import registry
from hub.after_ingest import AfterIngest
from hub.attachments import DiskAttachmentStore, private_folders
from hub.bus import Bus, InProcessBus, NatsBus, StateNudge
from hub.calls import CallService
from hub.channel_runner import ChannelRunner, node_name
from hub.config import Settings
from hub.context import ChannelCache, Hub
from hub.gateway import OperatorGateway
from hub.media_fetcher import MediaFetcher
from hub.metrics import Metrics
from hub.outbound import OutboundService
from hub.pipeline import IngestPipeline
from hub.ports import HubPorts
from hub.ports.connector import Connector
from hub.reports.builder import FactBuilder
from hub.services import ChannelEventsService
from routing.router import Router
from storage.database import create_pool
from storage.embedded import EmbeddedPostgres
from storage.migrate import migrate
from storage.owner_role import ensure_owner_role, is_superuser
from webhooks.dispatcher import DEFAULT_SCHEDULE, Dispatcher

log = logging.getLogger(__name__)


@asynccontextmanager
async def database(
    settings: Settings, *, run_migrations: bool = True
) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A migrated pool (and its DSN) on `HUB_DATABASE_URL`, or on the embedded server in `HUB_DATA_DIR`."""
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url or ""
    superuser_dsn = ""
    # The data folder holds the database and customers' files: the hub's user alone.
    await asyncio.to_thread(private_folders, settings.data_dir)
    await asyncio.to_thread(private_folders, settings.attachments_dir)
    if not dsn:
        embedded = EmbeddedPostgres(settings.data_dir)
        superuser_dsn = await asyncio.to_thread(embedded.start)
    try:
        if embedded is not None:
            # The superuser only creates the hub's own role; the hub connects as that role.
            dsn = await ensure_owner_role(superuser_dsn)
        if run_migrations:
            # A connection of its own: the migration lock is a session lock.
            conn = await asyncpg.connect(dsn)
            try:
                if await is_superuser(conn):
                    log.warning(
                        "the hub connects to PostgreSQL as a superuser; give it an ordinary"
                        " role that owns its database (see SECURITY.md)"
                    )
                applied = await migrate(conn)
            finally:
                await conn.close()
            if applied:
                log.info("database migrated to version %d", applied[-1])
        pool = await create_pool(dsn, max_size=settings.pool_size)
        try:
            yield pool, dsn
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def build_hub(
    settings: Settings, pool: asyncpg.Pool, dsn: str, *, supervise_every: float | None = None
) -> Hub:
    """The node's services. `supervise_every` makes every background check that often (the
    tests make them quick); by default the channel runner looks for channels to run every
    `HUB_CHANNEL_CHECK_S` and the router's and gateway's clocks tick on 5 s."""
    runner_every = float(settings.channel_check_s) if supervise_every is None else supervise_every
    supervise_every = 5.0 if supervise_every is None else supervise_every
    kinds = registry.descriptors()
    metrics = Metrics(node_name())
    pipeline = IngestPipeline(
        pool, settings.default_region, settings.reopen_window_s, metrics=metrics
    )
    attachments = DiskAttachmentStore(settings.attachments_dir)
    bus: Bus = NatsBus(settings.bus_url) if settings.bus_url else InProcessBus()
    calls = CallService(pool, settings.default_region, bus.publish, metrics)
    ports = HubPorts(
        ingest=pipeline,
        events=ChannelEventsService(pool, bus.publish),
        calls=calls,
        attachments=attachments,
        public_url=settings.base_url,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        max_files=settings.max_form_files,
        trust_forwarded=settings.trust_forwarded,
    )
    connectors: dict[str, Connector] = {
        kind: descriptor.factory(ports) for kind, descriptor in kinds.items()
    }
    media = MediaFetcher(
        pool, connectors, attachments, settings.max_upload_bytes, kinds, publish=bus.publish
    )
    outbound = OutboundService(pool, connectors, kinds, bus.publish, metrics)

    async def auto_reply(dialog_id: int, text: str) -> None:
        await outbound.send(dialog_id, text, [], "auto-reply")

    router = Router(
        pool, metrics.counting_offers(bus.publish), auto_reply, tick=min(10.0, supervise_every * 5)
    )
    bus.subscribe(router.on_notice)
    gateway = OperatorGateway(
        pool, router, outbound, grace=min(15.0, supervise_every * 2), publish=bus.publish
    )
    bus.subscribe(gateway.on_notice)
    facts = FactBuilder(pool)
    bus.subscribe(facts.on_notice)
    channel_runner = ChannelRunner(
        dsn, pool, connectors, kinds, interval=runner_every, publish=bus.publish
    )
    bus.subscribe(channel_runner.on_notice)

    nudge = StateNudge(bus.publish)
    pipeline.after_commit.append(
        AfterIngest(
            submit_dialog=router.submit,
            wake_media=media.wake,
            publish=bus.publish,
            nudge_supervisors=nudge,
        )
    )
    calls.connect(router, media.wake, nudge)
    webhooks = Dispatcher(
        pool,
        dsn,
        allow_private=settings.webhook_allow_private,
        schedule=settings.retry_schedule() or DEFAULT_SCHEDULE,
        budget_s=float(settings.webhook_retry_budget_s),
        disable_after_s=float(settings.webhook_disable_after_s),
        publish=bus.publish,
    )
    return Hub(
        settings=settings,
        dsn=dsn,
        pool=pool,
        pipeline=pipeline,
        calls=calls,
        webhooks=webhooks,
        attachments=attachments,
        channels=ChannelCache(pool, kinds),
        outbound=outbound,
        media=media,
        channel_runner=channel_runner,
        bus=bus,
        router=router,
        gateway=gateway,
        facts=facts,
        metrics=metrics,
        kinds=kinds,
        connectors=connectors,
    )
