"""Fetching media that messenger events only referenced (a Telegram file_id, a VK or Viber
URL) into `HUB_DATA_DIR`, after the provider already got its 200.

Over the size limit a file is `refused` and the interaction keeps a note; a provider that
cannot be reached is retried with backoff, then the file is marked `failed`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import asyncpg

from hub.attachments import DiskAttachmentStore
from hub.backoff import backoff
from hub.notify import Publish, interaction_changed
from hub.ports import TooLarge
from hub.ports.connector import (
    AuthFailed,
    ChannelConfigError,
    Connector,
    ConnectorDescriptor,
    ConnectorError,
    remember_channel_secrets,
)
from hub.wakeup import sleep_until_woken
from storage import channels, pending_media
from storage.database import DATABASE_UNAVAILABLE, report_unavailable

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
LEASE_SECONDS = 120.0
# With nothing pending, a look now and then for files another node recorded and left behind.
IDLE_CHECK_S = 60.0


def _note(exc: BaseException) -> str:
    """What the interaction's attachment says of a failed fetch: the error's code and a
    message cleaned of URLs and credentials (it is shown by the API and the console)."""
    if isinstance(exc, ConnectorError):
        return exc.note
    if isinstance(exc, TimeoutError):
        return "provider_unavailable: the provider did not answer in time"
    return f"storage_error: {type(exc).__name__}"


class MediaFetcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        connectors: Mapping[str, Connector],
        store: DiskAttachmentStore,
        limit: int,
        kinds: Mapping[str, ConnectorDescriptor] | None = None,
        publish: Publish | None = None,
    ) -> None:
        self.pool = pool
        self.publish = publish
        self.connectors = connectors
        self.kinds = kinds or {}
        self.store = store
        self.limit = limit
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def fetch_one(self) -> bool:
        async with self.pool.acquire() as conn:
            pending = await pending_media.claim(conn, LEASE_SECONDS)
            if pending is None:
                return False
        await self._fetch(pending)
        # The console shows the file, or why there is none yet, without a reload.
        await interaction_changed(
            self.pool, self.publish, pending.interaction_id, "interaction.updated"
        )
        return True

    async def _fetch(self, pending: pending_media.PendingFile) -> None:
        """Fetch one claimed file and record its outcome (stored, refused, failed, or a
        retry with the reason in its note)."""
        async with self.pool.acquire() as conn:
            channel = await channels.get(conn, pending.channel_id)
        connector = self.connectors.get(channel.kind) if channel else None
        if channel is not None:
            remember_channel_secrets(self.kinds, channel)
        try:
            if channel is None or connector is None:
                raise ChannelConfigError("the channel is gone or not served by this hub")
            data, content_type = await connector.download(channel, pending.remote_ref, self.limit)
            if len(data) > self.limit:
                raise TooLarge(f"{len(data)} bytes")
            stored = await self.store.save_bytes(
                data, pending.name, content_type or pending.content_type
            )
        except TooLarge:
            async with self.pool.acquire() as conn:
                await pending_media.give_up(
                    conn,
                    pending.attachment_id,
                    "refused",
                    f"the file is over the {self.limit // (1024 * 1024)} MB limit and was not kept",
                )
            return
        except (ChannelConfigError, AuthFailed) as exc:
            async with self.pool.acquire() as conn:
                await pending_media.give_up(conn, pending.attachment_id, "failed", _note(exc))
            return
        except (ConnectorError, OSError, TimeoutError) as exc:
            async with self.pool.acquire() as conn:
                if pending.attempts >= MAX_ATTEMPTS:
                    await pending_media.give_up(
                        conn, pending.attachment_id, "failed", f"could not be fetched: {_note(exc)}"
                    )
                else:
                    await pending_media.retry_later(
                        conn, pending.attachment_id, backoff(pending.attempts, 2.0), _note(exc)
                    )
            return
        async with self.pool.acquire() as conn:
            await pending_media.stored(
                conn,
                pending.attachment_id,
                storage_path=stored.storage_path or "",
                size=stored.size,
                sha256=stored.sha256 or "",
                content_type=stored.content_type,
            )

    async def run(self) -> None:
        while True:
            self._wake.clear()
            due: float | None = 5.0
            try:
                while await self.fetch_one():
                    continue
                async with self.pool.acquire() as conn:
                    due = await pending_media.next_due_in(conn)
            except DATABASE_UNAVAILABLE as exc:
                report_unavailable(log, "media fetcher", exc)
            except Exception:
                log.exception("media fetcher: unexpected error")
            # New files wake the fetcher; with none pending it sleeps until woken.
            await sleep_until_woken(self._wake, IDLE_CHECK_S if due is None else due)
