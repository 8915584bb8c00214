"""tests/fakes/vk.py checked against vk-api, the reference Python client of the VK API.

The hub talks to VK over aiohttp (vk-api is synchronous), so the fake must answer as VK
does for the real library too: method calls with `access_token` and `v`, error objects
with their codes, `random_id` deduplication, and the Bots Long Poll protocol with its
`failed` codes. vk-api hard-codes its host, so its requests session gets a transport
adapter that sends them to the fake on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
import requests
import vk_api
from requests.adapters import HTTPAdapter
from vk_api.bot_longpoll import VkBotEventType, VkBotLongPoll

from tests.conftest import VK_GROUP
from tests.fakes.vk import FakeVk, message_new

GROUP = VK_GROUP


class ToFake(HTTPAdapter):
    """Sends what vk-api addresses to https://api.vk.ru to the fake server instead."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        assert request.url is not None
        request.url = request.url.replace("https://api.vk.ru", self.base, 1)
        return super().send(request, stream, timeout, verify, cert, proxies)


@pytest.fixture
def fake(fake_vk: FakeVk) -> FakeVk:
    return fake_vk


def _client(fake: FakeVk, token: str | None = None) -> vk_api.VkApi:
    session = requests.Session()
    session.mount("https://api.vk.ru/", ToFake(fake.base))
    client = vk_api.VkApi(token=token or fake.token, api_version="5.199", session=session)
    client.RPS_DELAY = 0.0  # the fake has no rate limit to respect
    return client


async def test_messages_send_and_random_id_as_vk_api_sees_them(fake: FakeVk) -> None:
    vk = _client(fake)
    values = {"peer_id": 5550001, "message": "Здравствуйте", "random_id": 4242}
    first = await asyncio.to_thread(vk.method, "messages.send", values)
    again = await asyncio.to_thread(vk.method, "messages.send", values)
    assert isinstance(first, int) and again == first  # one random_id, one message
    assert [(d["peer_id"], d["message"]) for d in fake.delivered] == [("5550001", "Здравствуйте")]
    call = fake.calls_of("messages.send")[0]
    assert call.params["v"] == "5.199" and call.params["access_token"] == fake.token


async def test_error_objects_carry_vk_codes(fake: FakeVk) -> None:
    vk = _client(fake)
    fake.fail_next("messages.send", 901)
    with pytest.raises(vk_api.ApiError) as refused:
        await asyncio.to_thread(
            vk.method, "messages.send", {"peer_id": 1, "message": "x", "random_id": 1}
        )
    assert refused.value.code == 901
    with pytest.raises(vk_api.ApiError) as bad_token:
        await asyncio.to_thread(
            _client(fake, token="wrong").method, "groups.getLongPollServer", {"group_id": GROUP}
        )
    assert bad_token.value.code == 5
    with pytest.raises(vk_api.ApiError) as unknown:
        await asyncio.to_thread(vk.method, "no.suchMethod", {})
    assert unknown.value.code == 3


async def test_bots_long_poll_with_failed_codes(fake: FakeVk) -> None:
    vk = _client(fake)
    longpoll = await asyncio.to_thread(VkBotLongPoll, vk, GROUP, 1)
    fake.push(
        {
            "type": "message_new",
            "event_id": "e1",
            "v": "5.199",
            "group_id": GROUP,
            "object": message_new(GROUP, "e1", "первое", cmid=1)["object"],
        }
    )
    events = await asyncio.to_thread(longpoll.check)
    assert [e.type for e in events] == [VkBotEventType.MESSAGE_NEW]
    assert events[0].object["message"]["text"] == "первое"
    # failed 1: take the new ts; 2: new key, same ts; 3: new key and ts. vk-api handles
    # each the documented way against the fake, and the next event still arrives once.
    servers = len(fake.calls_of("groups.getLongPollServer"))
    fake.poll_failures = [{"failed": 1, "ts": str(fake.ts)}, {"failed": 2}, {"failed": 3}]
    for _ in range(3):
        assert await asyncio.to_thread(longpoll.check) == []
    assert len(fake.calls_of("groups.getLongPollServer")) == servers + 2
    fake.push(
        {
            "type": "message_new",
            "event_id": "e2",
            "v": "5.199",
            "group_id": GROUP,
            "object": message_new(GROUP, "e2", "второе", cmid=2)["object"],
        }
    )
    events = await asyncio.to_thread(longpoll.check)
    assert [e.object["message"]["text"] for e in events] == ["второе"]
