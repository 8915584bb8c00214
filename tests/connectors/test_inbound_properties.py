"""Property-based tests of the connectors' inbound parsers.

Each starts from an event shaped as the provider documents it, correctly signed, and
replaces one value anywhere in it with arbitrary JSON (huge numbers, nested objects, NULs,
lone surrogates...). Whatever comes in, a connector answers the provider (a 2xx when the
signature holds, so nothing is retried forever) or raises a `HubError` with a 4xx; and
every message it hands the hub is one the hub can store.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import registry
from hub.domain import Attachment, CallEvent, Channel, ChannelId, InboundMessage
from hub.errors import HubError
from hub.pipeline import normalize_contacts, usable_message
from hub.ports import (
    CallResult,
    ChannelPosition,
    HubPorts,
    IngestResult,
    OnUnknown,
    UnusableMessage,
)
from tests.fakes.telegram import text_update
from tests.fakes.viber import message_event, sign
from tests.fakes.vk import message_new

GROUP = 218000000
VK_SECRET = "s3cr3t"
TG_SECRET = "tg-secret"
VIBER_TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"


class _Ingest:
    """Checks every message as the pipeline would, without a database."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.positions: list[ChannelPosition | None] = []

    async def ingest(
        self,
        message: InboundMessage,
        kind: str,
        *,
        on_unknown: OnUnknown = "create",
        strict_contacts: bool = False,
    ) -> IngestResult:
        checked = usable_message(message)
        normalize_contacts(checked, "RU", strict=strict_contacts)
        json.dumps(checked.extra, ensure_ascii=False).encode()  # storable as jsonb
        self.messages.append(checked)
        return IngestResult("created", lead_id=1, dialog_id=1, interaction_id=1)  # type: ignore[arg-type]

    async def ingest_many(
        self,
        messages: Sequence[InboundMessage],
        kind: str,
        *,
        position: ChannelPosition | None = None,
    ) -> list[IngestResult | UnusableMessage]:
        self.positions.append(position)
        return [await self.ingest(m, kind) for m in messages]


class _Events:
    async def edit(self, *args: Any) -> str:
        return "missing"

    async def delivery(self, *args: Any) -> None:
        return None

    async def subscription(self, *args: Any) -> None:
        return None

    async def load_state(self, channel_id: ChannelId) -> dict[str, Any]:
        return {}

    async def save_state(self, channel_id: ChannelId, state: dict[str, Any]) -> None:
        return None


class _Calls:
    """Checks every call event is one the hub can store: text where text is expected,
    within its column's limits, nothing PostgreSQL cannot hold."""

    async def call_event(self, event: CallEvent) -> CallResult:
        texts = [
            event.call_id,
            event.key,
            event.from_number,
            event.to_number,
            event.cause,
            event.answered_by,
            event.group,
            event.recording_ref,
            *event.ringing,
        ]
        assert all(t is None or isinstance(t, str) for t in texts), event
        assert event.call_id and len(event.call_id) <= 200
        assert not any(
            t and ("\x00" in t or any(0xD800 <= ord(c) <= 0xDFFF for c in t)) for t in texts
        )
        assert event.duration_s is None or (
            isinstance(event.duration_s, int) and 0 <= event.duration_s < 2**31
        )
        assert event.at.tzinfo is not None
        return CallResult("applied", 1, "ringing")


class _Files:
    async def save(self, chunks: Any, name: str, content_type: str, limit: int) -> Attachment:
        # Read the upload to its end, as the disk store does; nothing is kept.
        _ = [chunk async for chunk in chunks]
        return Attachment(name=name, content_type=content_type, size=0, storage_path="x")

    async def save_bytes(self, data: bytes, name: str, content_type: str) -> Attachment:
        return Attachment(name=name, content_type=content_type, size=len(data), storage_path="x")

    async def read(self, storage_path: str) -> bytes:
        return b""

    async def discard(self, attachments: tuple[Attachment, ...]) -> None:
        return None


def _ports() -> HubPorts:
    return HubPorts(
        ingest=_Ingest(),
        events=_Events(),
        calls=_Calls(),
        attachments=_Files(),
        public_url="http://hub.test",
        max_body_bytes=1024 * 1024,
        max_upload_bytes=1024 * 1024,
        max_files=5,
        trust_forwarded=False,
    )


def _channel(kind: str, settings: dict[str, str]) -> Channel:
    return Channel(ChannelId(1), kind, "c", True, settings, datetime.now(UTC))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(codec=None), max_size=30)
    | st.sampled_from(["", "\x00", "\ud800", "../../x", "8-800-FLOWERS", "a@b"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(event: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(event)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copied


def _request(path: str, body: bytes, headers: dict[str, str]) -> web.Request:
    protocol = mock.Mock(_reading_paused=False)
    payload = StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    return make_mocked_request(
        "POST",
        path,
        headers={"Content-Type": "application/json", "Content-Length": str(len(body)), **headers},
        payload=payload,
    )


async def _answer(
    kind: str, settings: dict[str, str], path: str, body: bytes, headers: dict[str, str]
) -> None:
    descriptor = registry.get(kind)
    assert descriptor is not None
    connector: Any = descriptor.factory(_ports())
    try:
        response = await connector.handle_inbound(
            _request(path, body, headers), _channel(kind, settings)
        )
    except HubError as error:
        assert 400 <= error.status < 500, error
    else:
        # A form refuses bad input with a 4xx answer of its own (with its CORS headers).
        assert response.status < (500 if kind == "form" else 300), response
    finally:
        await connector.close()


def _samples() -> dict[str, Any]:
    telegram = text_update(1, "Hello")
    telegram["message"]["contact"] = {
        "phone_number": "+79120000001",
        "first_name": "I",
        "user_id": 5,
    }
    telegram["message"]["document"] = {
        "file_id": "f",
        "file_unique_id": "u",
        "file_name": "a.pdf",
        "file_size": 3,
    }
    vk = message_new(
        GROUP,
        "e1",
        "Hello",
        attachments=[
            {
                "type": "doc",
                "doc": {
                    "id": 1,
                    "owner_id": 2,
                    "title": "a",
                    "ext": "pdf",
                    "size": 3,
                    "url": "https://vk.com/doc",
                },
            },
            {
                "type": "photo",
                "photo": {
                    "id": 1,
                    "owner_id": 2,
                    "sizes": [{"url": "https://vk.com/p", "width": 1, "height": 1}],
                },
            },
        ],
    )
    viber = message_event(
        4912661846655238145,
        {"type": "file", "media": "https://dl.viber.com/f", "file_name": "a.pdf", "size": 3},
    )
    form = {
        "name": "Ivan",
        "phone": "+79120000001",
        "email": "ivan@example.com",
        "message": "hi",
        "budget": "10",
    }
    return {"telegram": telegram, "vk": vk, "viber": viber, "form": form}


SAMPLES = _samples()
PROPERTY = settings(
    max_examples=int(os.environ.get("HUB_PROPERTY_EXAMPLES", "100")),
    deadline=None,
    derandomize=os.environ.get("HUB_PROPERTY_RANDOM") is None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@PROPERTY
@given(data=st.data())
def test_telegram_updates_of_any_shape(data: st.DataObject) -> None:
    event = SAMPLES["telegram"]
    mutated = _replace(event, data.draw(st.sampled_from(_paths(event))), data.draw(JSON))
    body = json.dumps(mutated).encode()
    settings_ = {"token": "123456:TEST-token_abc", "secret_token": TG_SECRET}
    asyncio.run(
        _answer(
            "telegram",
            settings_,
            "/connectors/telegram/c",
            body,
            {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        )
    )


@PROPERTY
@given(data=st.data())
def test_vk_callbacks_of_any_shape(data: st.DataObject) -> None:
    event = SAMPLES["vk"]
    mutated = _replace(event, data.draw(st.sampled_from(_paths(event))), data.draw(JSON))
    body = json.dumps(mutated).encode()
    settings_ = {"token": "t", "group_id": str(GROUP), "confirmation": "c", "secret": VK_SECRET}
    asyncio.run(_answer("vk", settings_, "/connectors/vk/c", body, {}))


@PROPERTY
@given(data=st.data())
def test_viber_events_of_any_shape(data: st.DataObject) -> None:
    event = SAMPLES["viber"]
    mutated = _replace(event, data.draw(st.sampled_from(_paths(event))), data.draw(JSON))
    body = json.dumps(mutated).encode()
    asyncio.run(
        _answer(
            "viber",
            {"auth_token": VIBER_TOKEN},
            "/connectors/viber/c",
            body,
            {"X-Viber-Content-Signature": sign(VIBER_TOKEN, body)},
        )
    )


@PROPERTY
@given(data=st.data())
def test_form_submissions_of_any_shape(data: st.DataObject) -> None:
    event = SAMPLES["form"]
    mutated = _replace(event, data.draw(st.sampled_from(_paths(event))), data.draw(JSON))
    body = json.dumps(mutated).encode()
    asyncio.run(_answer("form", {"rate_limit": "0"}, "/forms/c", body, {}))


CTI_EVENT = {
    "event": "hangup",
    "from": "493023125741",
    "to": "492214710334",
    "direction": "in",
    "callId": "307fa962-de8d-4ffc-817b-7f6993204159",
    "user": ["Christopher Miller", "Emma Taylor"],
    "answeringNumber": "emma@chrispresso.com",
    "cause": "normalClearing",
}
MANGO_EVENT = {
    "entry_id": "MzUyODbvczg4OTo0MDE=",
    "call_direction": 1,
    "from": {"number": "74991102914"},
    "to": {"extension": "101", "number": "sip:example@domain.mangosip.ru"},
    "line_number": "74952129298",
    "create_time": 1522347638,
    "talk_time": 1522347645,
    "end_time": 1522347700,
    "entry_result": 1,
    "disconnect_reason": 1110,
}


async def _pbx_answer(settings: dict[str, str], path: str, body: bytes, media: str) -> None:
    descriptor = registry.get("pbx")
    assert descriptor is not None
    connector: Any = descriptor.factory(_ports())
    request = _request(path, body, {"Content-Type": media})
    try:
        if "/events/" in path:
            response = await connector.mango_path(request, _channel("pbx", settings))
        else:
            response = await connector.events(request, _channel("pbx", settings))
    except HubError as error:
        assert 400 <= error.status < 500, error
    else:
        # Zammad's own refusals (a wrong direction) are answers, not errors.
        assert response.status < 300 or response.status == 422, response
    finally:
        await connector.close()


@PROPERTY
@given(data=st.data())
def test_generic_call_events_of_any_shape(data: st.DataObject) -> None:
    mutated = _replace(CTI_EVENT, data.draw(st.sampled_from(_paths(CTI_EVENT))), data.draw(JSON))
    body = json.dumps(mutated).encode()
    settings_ = {"provider": "generic", "secret": "t"}
    asyncio.run(_pbx_answer(settings_, "/connectors/pbx/c?token=t", body, "application/json"))


@PROPERTY
@given(data=st.data())
def test_mango_events_of_any_shape(data: st.DataObject) -> None:
    from tests.fakes.pbx import mango_form

    mutated = _replace(
        MANGO_EVENT, data.draw(st.sampled_from(_paths(MANGO_EVENT))), data.draw(JSON)
    )
    if not isinstance(mutated, dict):
        mutated = {"entry_id": mutated}
    body, headers = mango_form("k", "salt", mutated)
    settings_ = {"provider": "mango", "api_key": "k", "api_salt": "salt"}
    asyncio.run(
        _pbx_answer(settings_, "/connectors/pbx/c/events/summary", body, headers["Content-Type"])
    )


ZADARMA_END = {
    "event": "NOTIFY_END",
    "call_start": "2024-05-14 10:15:03",
    "pbx_call_id": "in_5f0c1e2d3a4b",
    "caller_id": "79001234567",
    "called_did": "74951234567",
    "internal": "100",
    "duration": "95",
    "disposition": "answered",
    "status_code": "16",
    "is_recorded": "1",
    "call_id_with_rec": "1715670903.123456",
}
FORM_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["", "99999999999999999999", "-5", "2024-13-45 99:99:99", "NOTIFY_OUT_END", "NOTIFY_X"]
)


@PROPERTY
@given(data=st.data())
def test_zadarma_notifications_of_any_shape(data: st.DataObject) -> None:
    from tests.fakes.pbx import zadarma_notify

    fields = dict(ZADARMA_END)
    fields[data.draw(st.sampled_from(sorted(fields)))] = data.draw(FORM_TEXT)
    if fields["event"] not in ("NOTIFY_END", "NOTIFY_OUT_END", "NOTIFY_START"):
        fields["event"] = "NOTIFY_END"
    body, headers = zadarma_notify("zd-secret", **fields)
    settings_ = {"provider": "zadarma", "api_key": "k", "secret": "zd-secret"}

    async def run() -> None:
        descriptor = registry.get("pbx")
        assert descriptor is not None
        connector: Any = descriptor.factory(_ports())
        request = _request("/connectors/pbx/c", body, headers)
        try:
            response = await connector.events(request, _channel("pbx", settings_))
        except HubError as error:
            assert 400 <= error.status < 500, error
        else:
            assert response.status < 300, response
        finally:
            await connector.close()

    asyncio.run(run())
