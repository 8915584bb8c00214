"""The webhook sender against real servers on loopback: aiohttp's for ordinary receivers,
a scripted socket server for receivers that misbehave at the byte level (closing kept-alive
connections, answering until close, answering garbage or never)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from hub.netguard import Refused
from tests.fixtures.dns import resolve_to_loopback
from webhooks.sender import MAX_REPLY_BYTES, Reply, Resolve, Sender, SendError, resolve_host

HEADERS = {"webhook-id": "evt_1", "content-type": "application/json"}
BODY = b'{"type": "lead.created"}'

# One connection's script: serve it, adding every request read to the list.
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's head and body, or None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def scripted(*scripts: Script) -> AsyncIterator[tuple[URL, list[bytes]]]:
    """A server whose n-th connection is served by the n-th script (the last one for the
    rest); yields its URL and every request it read."""
    requests: list[bytes] = []
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        script = scripts[min(connections, len(scripts) - 1)]
        connections += 1
        try:
            await script(reader, writer, requests)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield URL(f"http://127.0.0.1:{port}/hooks"), requests
    finally:
        server.close()
        await server.wait_closed()


def answering(*answers: bytes | None) -> Script:
    """A connection that answers its requests with `answers` in turn (None: close without
    answering), then keeps answering the last one."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[bytes]
    ) -> None:
        for n in range(100):
            request = await _read_request(reader)
            if request is None:
                return
            requests.append(request)
            answer = answers[min(n, len(answers) - 1)]
            if answer is None:
                return
            writer.write(answer)
            await writer.drain()

    return script


NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def sender(
    timeout_s: float = 5.0,
    resolve: Resolve = resolve_host,
    ssl_context: ssl.SSLContext | None = None,
) -> Sender:
    """A sender allowed to reach loopback, where these receivers are."""
    return Sender(timeout_s=timeout_s, allow_private=True, resolve=resolve, ssl_context=ssl_context)


async def test_connections_are_kept_alive_and_reused() -> None:
    peers: set[object] = set()

    async def hook(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        assert await request.read() == BODY
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", hook)
    async with TestServer(app) as server:
        send = sender()
        try:
            replies = [await send.post(server.make_url("/hooks"), HEADERS, BODY) for _ in range(20)]
        finally:
            await send.close()
    assert {r.status for r in replies} == {204}
    assert len(peers) == 1
    # Past its age a connection is not reused: the name is resolved and judged again.
    ageing = Sender(timeout_s=5.0, allow_private=True, max_age_s=0.0)
    async with TestServer(app) as server:
        try:
            for _ in range(3):
                await ageing.post(server.make_url("/hooks"), HEADERS, BODY)
        finally:
            await ageing.close()
    assert len(peers) == 4


async def test_the_request_carries_host_length_and_the_headers() -> None:
    async with scripted(answering(NO_CONTENT)) as (url, requests):
        send = sender()
        try:
            target = url.with_query(token="a b")
            assert (await send.post(target, HEADERS, BODY)).status == 204
        finally:
            await send.close()
    head, body = requests[0].split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hooks?token=a+b HTTP/1.1"
    assert f"Host: 127.0.0.1:{url.port}" in lines
    assert "webhook-id: evt_1" in lines and f"Content-Length: {len(BODY)}" in lines
    assert body == BODY


async def test_a_header_that_would_split_the_request_is_refused() -> None:
    send = sender()
    with pytest.raises(ValueError):
        await send.post(URL("http://127.0.0.1:9/hooks"), {"webhook-id": "a\r\nX: y"}, BODY)


async def test_a_kept_alive_connection_the_receiver_closed_is_replaced() -> None:
    """The receiver reads the second request on its first connection and closes it without
    an answer (as a receiver timing out an idle connection does while a request is on its
    way): the request goes again on a new connection, once."""
    async with scripted(answering(NO_CONTENT, None), answering(NO_CONTENT)) as (url, requests):
        send = sender()
        try:
            assert (await send.post(url, HEADERS, BODY)).status == 204
            assert (await send.post(url, HEADERS, BODY)).status == 204
        finally:
            await send.close()
    assert len(requests) == 3


async def test_a_new_connection_closed_without_an_answer_fails_once() -> None:
    async with scripted(answering(None)) as (url, requests):
        send = sender()
        try:
            with pytest.raises(SendError, match="closed the connection"):
                await send.post(url, HEADERS, BODY)
        finally:
            await send.close()
    assert len(requests) == 1


async def test_connection_close_is_honoured() -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    connections = 0

    async def counting(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[bytes]
    ) -> None:
        nonlocal connections
        connections += 1
        await answering(close)(reader, writer, requests)

    async with scripted(counting) as (url, _):
        send = sender()
        try:
            for _ in range(3):
                assert (await send.post(url, HEADERS, BODY)).status == 200
        finally:
            await send.close()
    assert connections == 3


@pytest.mark.parametrize(
    "answer",
    [
        # HTTP/1.0, no length: the body runs until the connection closes.
        b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 7\r\n\r\nbusy, come back later",
        # Chunked, after an informational answer.
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n"
        b"Transfer-Encoding: chunked\r\nretry-after:  7 \r\n\r\n4\r\nbusy\r\n0\r\n\r\n",
    ],
)
async def test_status_and_retry_after_of_any_well_formed_answer(answer: bytes) -> None:
    async def answer_and_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[bytes]
    ) -> None:
        await _read_request(reader)
        writer.write(answer)
        await writer.drain()

    async with scripted(answer_and_close) as (url, _):
        send = sender()
        try:
            assert await send.post(url, HEADERS, BODY) == Reply(503, "7")
        finally:
            await send.close()


async def test_a_huge_answer_is_not_read_to_its_end() -> None:
    big = MAX_REPLY_BYTES * 4
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % big + b"x" * big
    async with scripted(answering(answer)) as (url, _):
        send = sender()
        try:
            assert (await send.post(url, HEADERS, BODY)).status == 200
            assert not any(send._idle.values())  # that connection is not reused
        finally:
            await send.close()


async def test_a_connection_answering_twice_to_one_request_is_dropped() -> None:
    twice = NO_CONTENT + b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
    async with scripted(answering(twice, NO_CONTENT)) as (url, requests):
        send = sender()
        try:
            assert (await send.post(url, HEADERS, BODY)).status == 204
            assert not any(send._idle.values())
            assert (await send.post(url, HEADERS, BODY)).status == 204
        finally:
            await send.close()
    assert len(requests) == 2


async def test_an_answer_that_is_not_http_fails() -> None:
    async with scripted(answering(b"SSH-2.0-OpenSSH_9.2\r\n")) as (url, _):
        send = sender()
        try:
            with pytest.raises(SendError, match="not HTTP"):
                await send.post(url, HEADERS, BODY)
        finally:
            await send.close()


async def test_a_receiver_that_never_answers_times_out() -> None:
    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[bytes]
    ) -> None:
        await _read_request(reader)
        await asyncio.sleep(30)

    async with scripted(silent) as (url, _):
        send = sender(timeout_s=0.3)
        try:
            with pytest.raises(TimeoutError):
                await send.post(url, HEADERS, BODY)
        finally:
            await send.close()


async def test_nothing_listening_fails_to_connect() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    send = sender()
    with pytest.raises(SendError, match="cannot connect"):
        await send.post(URL(f"http://127.0.0.1:{port}/hooks"), HEADERS, BODY)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hooks",
        "http://10.1.2.3/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hooks",
        "http://[::ffff:127.0.0.1]:9/hooks",
        "ftp://crm.example.com/hooks",
    ],
)
async def test_private_and_odd_urls_are_refused_without_connecting(url: str) -> None:
    send = Sender(timeout_s=5.0)
    with pytest.raises(Refused):
        await send.post(URL(url), HEADERS, BODY)


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    async with scripted(answering(NO_CONTENT)) as (url, requests):
        send = Sender(timeout_s=5.0, resolve=resolve_to_loopback)
        with pytest.raises(Refused, match="not a public address"):
            await send.post(url.with_host("crm.example.com"), HEADERS, BODY)
        send.allow_private = True
        try:
            assert (await send.post(url.with_host("crm.example.com"), HEADERS, BODY)).status == 204
        finally:
            await send.close()
    assert b"Host: crm.example.com:" in requests[0]


async def test_https_with_a_verified_certificate() -> None:
    ca = trustme.CA()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("crm.example.com").configure_cert(served)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=served)
    await site.start()
    port = runner.addresses[0][1]
    url = URL(f"https://crm.example.com:{port}/hooks")
    try:
        send = sender(resolve=resolve_to_loopback, ssl_context=trusting)
        try:
            assert (await send.post(url, HEADERS, BODY)).status == 204
            assert (await send.post(url, HEADERS, BODY)).status == 204
        finally:
            await send.close()
        untrusting = sender(resolve=resolve_to_loopback)  # the system's CAs only
        with pytest.raises(SendError, match="TLS"):
            await untrusting.post(url, HEADERS, BODY)
        wrong_name = sender(resolve=resolve_to_loopback, ssl_context=trusting)
        with pytest.raises(SendError, match="TLS"):
            await wrong_name.post(url.with_host("other.example.com"), HEADERS, BODY)
    finally:
        await runner.cleanup()
