"""The webhook sender: one POST at a time per kept-alive HTTP/1.1 connection, answered with
the status and `Retry-After`, nothing more.

A delivery needs little of an HTTP client: no redirects (a 3xx is a failed attempt), no
cookies, no proxy, no body but the receiver's status. A general client pays for all it can
do on every request: aiohttp's costs some 170 µs of CPU per POST, four times what writing
the request and parsing the answer with `httptools` (llhttp, the parser of Node.js) costs
here, and on a busy hub that difference is most of the dispatcher's time. What it keeps:
TLS with verified certificates, the network guard on the address each new connection is
about to reach (after resolution, so a name rebound to a private address is refused
as aiohttp's `socket_factory` hook does in `hub.netguard`), a bound on each attempt's time,
connections reused only while the receiver keeps them alive.

A request sent on a reused connection that the receiver had closed before answering (it
closed an idle connection while the request was on its way) is sent once more on a new
connection, as browsers do: nothing of it was answered, and a receiver that did act on it
finds the same `webhook-id` twice, which Standard Webhooks asks receivers to deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import cast

import httptools
from yarl import URL

from hub.netguard import Refused, is_public

KEEP_ALIVE_S = 10.0  # an idle connection older than this is closed, not reused
# A connection older than this is not reused either: the receiver's name is resolved (and
# its address judged) again at least this often, so a CRM that moved is followed.
MAX_AGE_S = 60.0
IDLE_PER_ORIGIN = 32  # idle connections kept per receiver
MAX_REPLY_BYTES = 1 << 20  # a longer answer body is not read: its connection is dropped
USER_AGENT = "omnichannel-hub-webhooks/1"

Origin = tuple[str, str, int]  # scheme, host, port

# host, port -> (family, address) pairs, in the order to try them.
Resolve = Callable[[str, int], Awaitable[list[tuple[int, tuple[object, ...]]]]]


class SendError(Exception):
    """The attempt failed on the network or on an answer that is not HTTP."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    retry_after: str | None


async def resolve_host(host: str, port: int) -> list[tuple[int, tuple[object, ...]]]:
    """The addresses of `host`, from the system's resolver (an address literal as is)."""
    with contextlib.suppress(ValueError):
        literal = ipaddress.ip_address(host)
        return [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, (host, port))]
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [(family, address) for family, _, _, _, address in infos]


class _Connection(asyncio.Protocol):
    """One connection to a receiver; one request on it at a time."""

    def __init__(self, origin: Origin, idle: dict[Origin, list[_Connection]]) -> None:
        self.origin = origin
        self.idle = idle
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.opened = time.monotonic()
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Reply] | None = None
        self._answered = False  # a byte of the current answer came
        self._status = 0
        self._retry_after: str | None = None
        self._body_bytes = 0
        self._keep = False
        self._final = False  # the current request's answer has been read
        self._out_of_step = False  # more answers than requests came: never reused

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # nothing was asked: a receiver that talks out of turn is not reused
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(SendError(f"the answer is not HTTP: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        with contextlib.suppress(ValueError):
            self.idle.get(self.origin, []).remove(self)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._status >= 200:
            # An answer read until the connection closed, or cut short after its status.
            waiter.set_result(Reply(self._status, self._retry_after))
        else:
            self._fail(_Closed(self._answered))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._final:
            self._out_of_step = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_REPLY_BYTES and self._waiter and not self._waiter.done():
            # The status is all a delivery needs: settle now, and drop the connection
            # rather than read the rest.
            self._waiter.set_result(Reply(self._status, self._retry_after))
            self.close()

    def on_message_complete(self) -> None:
        if self._status < 200:
            self._status, self._retry_after = 0, None  # 1xx: the answer is still to come
            return
        self._keep, self._final = self._parser.should_keep_alive(), True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Reply(self._status, self._retry_after))

    # use

    async def exchange(self, request: bytes) -> Reply:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._answered, self._status, self._retry_after = False, 0, None
        self._body_bytes, self._keep, self._final = 0, False, False
        self.transport.write(request)
        try:
            reply = await self._waiter
        finally:
            self._waiter = None
        return reply

    @property
    def reusable(self) -> bool:
        # (An answer over MAX_REPLY_BYTES has closed its connection already.)
        return self._keep and not self.closed and not self._out_of_step

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)


class _Closed(SendError):
    """The receiver closed the connection before answering."""

    def __init__(self, answered: bool) -> None:
        super().__init__("the receiver closed the connection before answering")
        self.answered = answered


class Sender:
    """POSTs to receivers, connections kept per origin (scheme, host, port)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        allow_private: bool = False,
        resolve: Resolve = resolve_host,
        ssl_context: ssl.SSLContext | None = None,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self.allow_private = allow_private
        self.resolve = resolve
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._heads: dict[URL, bytes] = {}

    async def post(self, url: URL, headers: Mapping[str, str], body: bytes) -> Reply:
        """One attempt: the receiver's status and `Retry-After`. `Refused` for a URL that
        is not http(s) or reaches a private address (unless allowed), `SendError` for a
        network failure, `TimeoutError` past the attempt's time."""
        if url.scheme not in ("http", "https") or not url.host:
            raise Refused("only http(s) URLs with a host are fetched")
        request = self._request(url, headers, body)
        origin = (url.scheme, url.host, url.port or 0)
        async with asyncio.timeout(self.timeout_s):
            while True:
                conn = self._reuse(origin)
                fresh = conn is None
                if conn is None:
                    conn = await self._connect(origin)
                try:
                    reply = await conn.exchange(request)
                except _Closed as exc:
                    conn.close()
                    if fresh or exc.answered:
                        raise
                    continue  # a stale kept-alive connection: once more on a new one
                except BaseException:
                    conn.close()  # a timeout or a cancel leaves it mid-answer
                    raise
                if conn.reusable:
                    self._keep(conn)
                else:
                    conn.close()
                return reply

    def _request(self, url: URL, headers: Mapping[str, str], body: bytes) -> bytes:
        head = self._heads.get(url)
        if head is None:
            lines = [
                f"POST {url.raw_path_qs or '/'} HTTP/1.1",
                f"Host: {url.host_port_subcomponent}",
                f"User-Agent: {USER_AGENT}",
                "Accept: */*",
            ]
            head = ("\r\n".join(lines) + "\r\n").encode("ascii")
            if len(self._heads) > 1024:
                self._heads.clear()
            self._heads[url] = head
        parts = [head]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} would break the request")
            parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        parts.append(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii"))
        parts.append(body)
        return b"".join(parts)

    def _reuse(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEP_ALIVE_S:
                return conn
            conn.close()
        return None

    def _keep(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        now = time.monotonic()
        if len(idle) >= IDLE_PER_ORIGIN or now - conn.opened >= self.max_age_s:
            conn.close()
            return
        conn.idle_since = now
        idle.append(conn)

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        try:
            addresses = await self.resolve(host, port)
        except OSError as exc:
            raise SendError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        allowed = [
            (family, address)
            for family, address in addresses
            if self.allow_private or is_public(str(address[0]))
        ]
        if not allowed:
            raise Refused(f"{host} is not a public address")
        tls = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        loop = asyncio.get_running_loop()
        failure: OSError | None = None
        for family, address in allowed:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin, self._idle),
                    host=str(address[0]),
                    port=port,
                    family=family,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
            except ssl.SSLError as exc:
                raise SendError(f"TLS with {host} failed: {exc.reason or exc}") from None
            except OSError as exc:
                failure = exc
                continue
            return conn
        where = f"[{host}]" if ":" in host else host
        raise SendError(f"cannot connect to {where}:{port}: {failure}")

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
