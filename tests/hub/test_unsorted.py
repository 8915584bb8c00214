"""The unsorted inbox: first contacts on `on_unknown=stage` channels wait for a decision."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.conftest import add_form, count

Client = TestClient[Any, Any]


async def _stage(client: Client, **fields: str) -> int:
    reply = await client.post("/forms/inbox", json=fields)
    assert reply.status == 202, await reply.text()
    unsorted_id: int = (await reply.json())["unsorted_id"]
    return unsorted_id


async def test_accept_link_and_decline(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_form(pool, "inbox", on_unknown="stage", rate_limit="0")
    first = await _stage(client, name="Nina", phone="+79161112233", message="price?", size="XL")
    second = await _stage(client, name="Spam Bot", email="bot@spam.example")
    third = await _stage(client, name="Nina again", email="nina@example.com")
    assert await count(pool, "leads") == 0

    listing = await client.get("/api/v1/unsorted", headers=auth)
    items = (await listing.json())["items"]
    assert [i["id"] for i in items] == [first, second, third]
    assert items[0]["phones"] == ["+79161112233"] and items[0]["fields"] == {"size": "XL"}

    accepted = await client.post(f"/api/v1/unsorted/{first}/accept", headers=auth)
    assert accepted.status == 200, await accepted.text()
    body = await accepted.json()
    assert body["item"]["status"] == "accepted" and body["lead_id"] == body["item"]["lead_id"]
    lead = await (await client.get(f"/api/v1/leads/{body['lead_id']}", headers=auth)).json()
    assert lead["name"] == "Nina" and lead["phones"] == ["+79161112233"]
    interactions = await (
        await client.get(f"/api/v1/leads/{body['lead_id']}/interactions", headers=auth)
    ).json()
    assert [i["text"] for i in interactions["items"]] == ["price?"]

    declined = await client.post(f"/api/v1/unsorted/{second}/decline", headers=auth)
    assert (await declined.json())["item"]["status"] == "declined"

    linked = await client.post(
        f"/api/v1/unsorted/{third}/link", json={"lead_id": body["lead_id"]}, headers=auth
    )
    assert linked.status == 200
    lead = await (await client.get(f"/api/v1/leads/{body['lead_id']}", headers=auth)).json()
    assert lead["emails"] == ["nina@example.com"] and lead["name_suggestions"] == ["Nina again"]

    assert await count(pool, "leads") == 1
    pending = await (await client.get("/api/v1/unsorted", headers=auth)).json()
    assert pending["items"] == []
    everything = await (
        await client.get("/api/v1/unsorted", params={"status": "all"}, headers=auth)
    ).json()
    assert [i["status"] for i in everything["items"]] == ["accepted", "declined", "linked"]

    # A known contact skips the inbox.
    known = await client.post("/forms/inbox", json={"phone": "89161112233", "message": "again"})
    assert known.status == 201
    assert (await known.json())["lead_id"] == body["lead_id"]


async def test_decisions_are_final_and_validated(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_form(pool, "inbox", on_unknown="stage", rate_limit="0")
    item = await _stage(client, phone="+79162223344")
    results = await asyncio.gather(
        *[client.post(f"/api/v1/unsorted/{item}/accept", headers=auth) for _ in range(5)]
    )
    assert sorted(r.status for r in results) == [200, 409, 409, 409, 409]
    assert await count(pool, "leads") == 1 and await count(pool, "interactions") == 1
    other = await _stage(client, phone="+79163334455")
    assert (
        await client.post(f"/api/v1/unsorted/{other}/link", json={"lead_id": 99999}, headers=auth)
    ).status == 404
    assert (
        await client.post(f"/api/v1/unsorted/{other}/link", json={}, headers=auth)
    ).status == 422
    assert (await client.post("/api/v1/unsorted/99999/accept", headers=auth)).status == 404
    assert (
        await client.get("/api/v1/unsorted", params={"status": "bad"}, headers=auth)
    ).status == 400


async def test_a_retried_staged_submission_is_held_once(client: Client, pool: asyncpg.Pool) -> None:
    await add_form(pool, "inbox", on_unknown="stage", rate_limit="0")
    headers = {"Idempotency-Key": "abc"}
    one = await client.post("/forms/inbox", json={"name": "X"}, headers=headers)
    two = await client.post("/forms/inbox", json={"name": "X"}, headers=headers)
    assert (await one.json())["unsorted_id"] == (await two.json())["unsorted_id"]
    assert await count(pool, "unsorted") == 1
