"""Where a lead came from: its first touch, kept as it was. A form adds the page, the page
before it and the page's utm parameters (the embed script sends them; a plain form's
Referer names the page); a chat its channel; a CRM's lead says so."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from hub.domain import Channel
from tests.conftest import add_telegram
from tests.fakes.telegram import FakeTelegram, text_update

Client = TestClient[Any, Any]
SECRET = "source-secret"
AD = "https://shop.example/sofas?utm_source=yandex&utm_medium=cpc&utm_campaign=sofa-sale&x=1"


async def _lead(client: Client, auth: dict[str, str], lead_id: int) -> dict[str, Any]:
    reply = await client.get(f"/api/v1/leads/{lead_id}", headers=auth)
    assert reply.status == 200
    body: dict[str, Any] = await reply.json()
    return body


async def test_the_first_touch_is_the_leads_source(
    client: Client,
    pool: asyncpg.Pool,
    form: Channel,
    auth: dict[str, str],
    fake_telegram: tuple[FakeTelegram, str],
) -> None:
    made = await client.post(
        "/forms/site",
        data={
            "name": "Ivan",
            "phone": "+79160000611",
            "_page": AD,
            "_referrer": "https://yandex.ru/search?text=sofa",
        },
        headers={"Accept": "application/json"},  # as the embed script sends it
    )
    assert made.status == 201, await made.text()
    ivan = (await made.json())["lead_id"]
    source = (await _lead(client, auth, ivan))["source"]
    assert source["kind"] == "form" and source["channel"] == "site"
    assert source["channel_id"] == form.id and source["at"]
    assert source["page"] == AD and source["referrer"] == "https://yandex.ru/search?text=sofa"
    assert source["utm"] == {
        "utm_source": "yandex",
        "utm_medium": "cpc",
        "utm_campaign": "sofa-sale",
    }
    # The embed script's own fields are not the customer's.
    fields = await pool.fetchval("SELECT extra->'fields' FROM interactions")
    assert fields is None or "_page" not in fields

    # A later touch on another channel is no source.
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, SECRET)
    await client.post(
        "/connectors/telegram/tg",
        json=text_update(1, "it's me again", user_id=5550611),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    newcomer = await pool.fetchval(
        "SELECT lead_id FROM interactions WHERE channel_id <> $1", form.id
    )
    assert (await _lead(client, auth, ivan))["source"]["kind"] == "form"
    chat = (await _lead(client, auth, newcomer))["source"]
    assert (chat["kind"], chat["channel"]) == ("telegram", "tg") and "utm" not in chat

    # A plain form (no embed script): its Referer names the page; no page, no utm.
    plain = await client.post(
        "/forms/site",
        json={"name": "Olga", "phone": "+79160000612"},
        headers={"Referer": "https://shop.example/contacts?utm_source=vk"},
    )
    olga = (await _lead(client, auth, (await plain.json())["lead_id"]))["source"]
    assert olga["page"] == "https://shop.example/contacts?utm_source=vk"
    assert olga["utm"] == {"utm_source": "vk"} and "referrer" not in olga
    bare = await client.post("/forms/site", json={"name": "Petr", "phone": "+79160000613"})
    petr = (await _lead(client, auth, (await bare.json())["lead_id"]))["source"]
    assert petr["kind"] == "form" and "page" not in petr
    # Not a web address: not kept as a page.
    odd = await client.post(
        "/forms/site",
        data={"name": "Anna", "phone": "+79160000614", "_page": "javascript:alert(1)"},
        headers={"Accept": "application/json"},
    )
    assert "page" not in (await _lead(client, auth, (await odd.json())["lead_id"]))["source"]

    # A CRM's lead.
    crm = await client.post(
        "/api/v1/leads",
        json={"name": "From CRM", "phones": ["+79160000615"], "external_ids": {"crm": "615"}},
        headers=auth,
    )
    assert (await crm.json())["source"]["kind"] == "api"
    assert (await crm.json())["source"]["by"] == "crm"


async def test_a_merge_keeps_the_earlier_first_touch_and_an_unmerge_gives_it_back(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    first = await client.post(
        "/forms/site",
        json={"name": "Ivan", "phone": "+79160000621"},
        headers={"Referer": "https://shop.example/?utm_source=vk"},
    )
    older = (await first.json())["lead_id"]
    crm = await client.post(
        "/api/v1/leads",
        json={"name": "Ivan P", "emails": ["ivan@example.com"], "external_ids": {"crm": "621"}},
        headers=auth,
    )
    newer = (await crm.json())["id"]
    merged = await client.post(
        f"/api/v1/leads/{newer}/merge", json={"other_id": older}, headers=auth
    )
    assert merged.status == 200, await merged.text()
    source = (await _lead(client, auth, newer))["source"]
    assert source["kind"] == "form" and source["utm"] == {"utm_source": "vk"}
    undone = await client.post(
        f"/api/v1/leads/{newer}/unmerge", json={"other_id": older}, headers=auth
    )
    assert undone.status == 200, await undone.text()
    assert (await _lead(client, auth, newer))["source"]["kind"] == "api"
    assert (await _lead(client, auth, older))["source"]["kind"] == "form"


async def test_leads_are_found_by_where_they_came_from(
    client: Client, form: Channel, auth: dict[str, str]
) -> None:
    for n, page in enumerate(
        (
            "https://shop.example/?utm_source=yandex&utm_campaign=sofa",
            "https://shop.example/?utm_source=yandex&utm_campaign=chair",
            "https://shop.example/?utm_source=vk",
        )
    ):
        reply = await client.post(
            "/forms/site",
            json={"name": f"Lead {n}", "phone": f"+7916000063{n}"},
            headers={"Referer": page},
        )
        assert reply.status == 201
    await client.post(
        "/api/v1/leads",
        json={"name": "CRM", "phones": ["+79160000639"], "external_ids": {"crm": "639"}},
        headers=auth,
    )

    async def names(query: str) -> list[str]:
        reply = await client.get(f"/api/v1/leads?{query}", headers=auth)
        assert reply.status == 200, await reply.text()
        return [lead["name"] for lead in (await reply.json())["items"]]

    assert await names("source=form") == ["Lead 0", "Lead 1", "Lead 2"]
    assert await names("source=api") == ["CRM"]
    assert await names("utm_source=yandex") == ["Lead 0", "Lead 1"]
    assert await names("utm_source=yandex&utm_campaign=chair") == ["Lead 1"]
    assert await names("source=telegram") == []
