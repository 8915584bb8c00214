"""One guard against server-side request forgery, for every URL the hub fetches because
somebody else named it: a provider's media URL (VK docs, Viber files), a CRM's webhook
URL, a PBX's call recording.

A URL from outside may only reach an address that is public on the internet. The check is
made on the address the socket is about to connect to (aiohttp's `socket_factory`), after
DNS resolution, so a name that resolves to `127.0.0.1` or changes its answer between a check
and the connection (DNS rebinding) is refused just the same; redirects are followed here,
one hop at a time, and each hop is checked again. The hosts an admin configured for a
channel (its `api_base`, a self-hosted Bot API server, a PBX's recording host) are trusted
by host and port as written: they may be on a private network on purpose.

A leaf module: connectors and webhooks use it without depending on the rest of the hub.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Refused(aiohttp.ClientConnectionError):
    """A URL the guard does not let the hub reach."""


class NotPublic(OSError):
    """Raised at connect time (an `OSError`, so aiohttp reports it as a failed connection
    and tries the name's other addresses); `NetGuard.request` turns it into `Refused`."""


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: str | IpAddress) -> bool:
    """True for an address on the public internet: not loopback, private (RFC 1918, ULA),
    link-local (169.254.0.0/16 with the cloud metadata service, fe80::/10), carrier-grade
    NAT, multicast, reserved or unspecified; IPv4 written inside IPv6 is judged as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return is_public(embedded)
        if ip.teredo is not None:
            return is_public(ip.teredo[1])
    return ip.is_global and not ip.is_multicast


def _public_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp's socket factory: the last moment before connecting, with the resolved
    address in hand."""
    family, type_, proto, _, address = addr_info
    if not is_public(address[0]):
        raise NotPublic(f"{address[0]} is not a public address")
    return socket.socket(family=family, type=type_, proto=proto)


def host_key(url: str | URL) -> str:
    """How a trusted host is compared: lower-case host and explicit port."""
    parsed = URL(url) if isinstance(url, str) else url
    return f"{(parsed.host or '').lower()}:{parsed.port}"


def trusted(urls: Collection[str]) -> frozenset[str]:
    """The hosts of the configured base URLs (empty values ignored)."""
    return frozenset(host_key(u) for u in urls if u)


class NetGuard:
    """Two HTTP sessions: one whose connections reach public addresses only, for URLs from
    outside; one without that rule, for the hosts an admin configured."""

    def __init__(
        self,
        timeout: aiohttp.ClientTimeout,
        *,
        allow_private: bool = False,
        resolver: AbstractResolver | None = None,
        cookies: bool = True,
    ) -> None:
        self.timeout = timeout
        self.cookies = cookies
        self.allow_private = allow_private
        self.resolver = resolver
        self._guarded: aiohttp.ClientSession | None = None
        self._open: aiohttp.ClientSession | None = None

    def _jar(self) -> aiohttp.abc.AbstractCookieJar:
        """A session's cookies; none for a sender that never needs them (webhooks), which
        saves looking them up on every request."""
        return aiohttp.CookieJar() if self.cookies else aiohttp.DummyCookieJar()

    def session(self, url: URL, trusted_hosts: Collection[str] = ()) -> aiohttp.ClientSession:
        if self.allow_private or host_key(url) in trusted_hosts:
            if self._open is None or self._open.closed:
                self._open = aiohttp.ClientSession(timeout=self.timeout, cookie_jar=self._jar())
            return self._open
        if self._guarded is None or self._guarded.closed:
            self._guarded = aiohttp.ClientSession(
                timeout=self.timeout,
                cookie_jar=self._jar(),
                connector=aiohttp.TCPConnector(
                    socket_factory=_public_socket, resolver=self.resolver
                ),
            )
        return self._guarded

    async def send(
        self, method: str, url: URL, *, trusted_hosts: Collection[str] = (), **kwargs: Any
    ) -> aiohttp.ClientResponse:
        """One request to `url`, redirects not followed; the caller releases the response.
        `Refused` for a URL that is not http(s) or reaches a private address."""
        if url.scheme not in ("http", "https") or not url.host:
            raise Refused("only http(s) URLs with a host are fetched")
        session = self.session(url, trusted_hosts)
        try:
            return await session.request(method, url, allow_redirects=False, **kwargs)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, NotPublic):
                raise Refused(f"{url.host} is not a public address") from None
            raise

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        trusted_hosts: Collection[str] = (),
        **kwargs: Any,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response from `url`, following at most `MAX_REDIRECTS` redirects (each hop
        judged anew); `Refused` for a URL that is not http(s) or reaches a private
        address."""
        target = URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = await self.send(method, target, trusted_hosts=trusted_hosts, **kwargs)
            async with response as reply:
                location = reply.headers.get("Location")
                if reply.status in REDIRECTS and location:
                    target = target.join(URL(location))
                    # As browsers and aiohttp do: a POST redirected by 301/302/303 is a GET.
                    if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                        method, kwargs = "GET", {k: v for k, v in kwargs.items() if k != "data"}
                    continue
                yield reply
                return
        raise Refused(f"more than {MAX_REDIRECTS} redirects")

    async def close(self) -> None:
        for session in (self._guarded, self._open):
            if session is not None:
                await session.close()
        self._guarded = self._open = None
