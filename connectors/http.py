"""Small HTTP helpers shared by the connectors that talk to providers with plain aiohttp."""

from __future__ import annotations

from collections.abc import Collection

import aiohttp

from hub.netguard import NetGuard, Refused
from hub.ports import TooLarge
from hub.ports.connector import ChannelConfigError, NotReady

TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
MEDIA_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=TIMEOUT, raise_for_status=False)


def new_guard() -> NetGuard:
    return NetGuard(MEDIA_TIMEOUT)


async def read_limited(reply: aiohttp.ClientResponse, limit: int) -> tuple[bytes, str | None]:
    """A response's body and type, `TooLarge` as soon as it is over `limit` bytes."""
    if reply.content_length is not None and reply.content_length > limit:
        raise TooLarge(f"{reply.content_length} bytes")
    data = bytearray()
    async for chunk in reply.content.iter_chunked(65536):
        data.extend(chunk)
        if len(data) > limit:
            raise TooLarge(f"over {limit} bytes")
    return bytes(data), reply.content_type


async def download(
    guard: NetGuard, url: str, limit: int, trusted_hosts: Collection[str] = ()
) -> tuple[bytes, str | None]:
    """A provider's media URL, read up to `limit` bytes: only from a public address or from
    one of the channel's configured hosts (`trusted_hosts`), redirects included."""
    if not url.startswith(("http://", "https://")):
        raise ChannelConfigError("not an http(s) media URL")
    try:
        async with guard.request("GET", url, trusted_hosts=trusted_hosts) as reply:
            if reply.status in (404, 410, 403):
                raise ChannelConfigError(
                    f"the provider no longer serves the file (HTTP {reply.status})"
                )
            if reply.status >= 400:
                raise NotReady(f"HTTP {reply.status} fetching media")
            return await read_limited(reply, limit)
    except Refused as exc:
        raise ChannelConfigError(f"the media URL was not fetched: {exc}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise NotReady(f"media download failed: {type(exc).__name__}") from exc
