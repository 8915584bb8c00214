"""The SSRF guard: provider media is fetched only from public addresses or the channel's
configured hosts, checked when the socket connects and again after each redirect."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from hub.netguard import NetGuard, Refused, is_public, trusted
from tests.conftest import VK_GROUP, add_vk
from tests.fakes.vk import FakeVk, message_new
from tests.fixtures.dns import LoopbackResolver
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.8.8",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",
        "not an address",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["87.240.190.72", "8.8.8.8", "2a00:bdc0:3:103:1:0:403:900"])
def test_internet_addresses_are_public(address: str) -> None:
    assert is_public(address)


class _Internal:
    """A service on loopback that must never be reached: it counts its visitors."""

    def __init__(self) -> None:
        self.hits = 0
        self.app = web.Application()
        self.app.router.add_get("/{tail:.*}", self._any)

    async def _any(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(body=b"internal secret", content_type="text/plain")


@pytest.fixture
async def internal() -> Any:
    service = _Internal()
    server = TestServer(service.app)
    await server.start_server()
    service.base = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    yield service
    await server.close()


def _doc(url: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "doc",
            "doc": {"id": 2, "owner_id": 1, "title": "x", "ext": "pdf", "size": 4, "url": url},
        }
    ]


@pytest.mark.parametrize("via_redirect", [False, True])
async def test_vk_media_on_an_internal_address_is_refused(
    client: Client, pool: asyncpg.Pool, fake_vk: FakeVk, internal: Any, via_redirect: bool
) -> None:
    await add_vk(pool, fake_vk)
    url = f"{internal.base}/latest/meta-data/"
    if via_redirect:  # the channel's own (trusted) host sends the fetcher elsewhere
        url = str(URL(f"{fake_vk.base}/moved").with_query(to=url))
    event = message_new(VK_GROUP, "e-ssrf", "", attachments=_doc(url))
    assert await (await client.post("/connectors/vk/club", json=event)).text() == "ok"
    row = await eventually(
        lambda: pool.fetchrow("SELECT state, note FROM attachments WHERE state <> 'pending'")
    )
    assert row is not None and row["state"] == "failed" and "not a public address" in row["note"]
    assert internal.hits == 0


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(internal: Any) -> None:
    """The address is judged after DNS: a public-looking name that resolves to 127.0.0.1
    (rebinding) does not get through."""

    port = int(internal.base.rsplit(":", 1)[1])
    guard = NetGuard(aiohttp.ClientTimeout(total=5), resolver=LoopbackResolver())
    try:
        with pytest.raises(Refused):
            async with guard.request("GET", f"http://media.example:{port}/x"):
                raise AssertionError("connected")
        # The configured host is trusted as written, private address or not.
        async with guard.request(
            "GET", f"{internal.base}/ok", trusted_hosts=trusted([internal.base])
        ) as reply:
            assert reply.status == 200
    finally:
        await guard.close()
    assert internal.hits == 1
