"""Canned responses: read by every console, kept by admins through the API."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from storage import apikeys
from tests.conftest import add_operator, count, operator_token

Client = TestClient[Any, Any]
URL = "/api/v1/canned-responses"


async def test_admins_keep_canned_responses_every_operator_reads_them(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_operator(pool, "anna")
    await add_operator(pool, "root", role="admin")
    as_anna, as_root = await operator_token(client, "anna"), await operator_token(client, "root")

    seeded = await (await client.get(URL, params={"language": "ru"}, headers=as_anna)).json()
    assert {i["language"] for i in seeded["items"]} == {"ru"} and len(seeded["items"]) == 3

    made = await client.post(
        URL,
        json={"language": "EN", "title": "Delivery", "text": "Delivery takes 2 days, {name}."},
        headers=as_root,
    )
    assert made.status == 201, await made.text()
    item = await made.json()
    assert item["language"] == "en" and item["title"] == "Delivery"
    listed = await (await client.get(URL, params={"language": "en"}, headers=as_anna)).json()
    assert "Delivery" in [i["title"] for i in listed["items"]]

    changed = await client.patch(
        f"{URL}/{item['id']}", json={"text": "Delivery takes 3 days."}, headers=auth
    )
    assert changed.status == 200 and (await changed.json())["text"] == "Delivery takes 3 days."
    again = await client.post(
        URL, json={"language": "en", "title": "Delivery", "text": "x"}, headers=as_root
    )
    assert again.status == 409 and (await again.json())["error"]["code"] == "duplicate_title"

    before = await count(pool, "canned_responses")
    # An operator reads them but does not keep them.
    for method, path, body in (
        ("POST", URL, {"language": "en", "title": "Mine", "text": "x"}),
        ("PATCH", f"{URL}/{item['id']}", {"text": "x"}),
        ("DELETE", f"{URL}/{item['id']}", None),
    ):
        reply = await client.request(method, path, json=body, headers=as_anna)
        assert reply.status == 403, (method, path)
    bad: tuple[dict[str, object], ...] = (
        {"title": "t", "text": "x"},
        {"language": "english", "title": "t", "text": "x"},
        {"language": "en", "title": "  ", "text": "x"},
        {"language": "en", "title": "t", "text": "x" * 5000},
        {"language": "en", "title": "t" * 101, "text": "x"},
        {"language": "en", "title": "t", "text": 5},
        {"language": "en", "title": "t", "text": "bad\x00"},
    )
    for wrong in bad:
        reply = await client.post(URL, json=wrong, headers=as_root)
        assert reply.status in (400, 422), wrong
    assert (await client.patch(f"{URL}/{item['id']}", json={}, headers=as_root)).status == 422
    assert (await client.patch(f"{URL}/999999", json={"text": "x"}, headers=as_root)).status == 404
    assert (await client.get(URL, params={"language": "rus"}, headers=as_anna)).status == 400
    assert await count(pool, "canned_responses") == before

    one = await client.get(f"{URL}/{item['id']}", headers=as_anna)
    assert one.status == 200 and (await one.json())["id"] == item["id"]
    gone = await client.delete(f"{URL}/{item['id']}", headers=as_root)
    assert gone.status == 204
    assert (await client.delete(f"{URL}/{item['id']}", headers=as_root)).status == 404
    assert (await client.get(f"{URL}/{item['id']}", headers=as_root)).status == 404
    assert (await client.get(URL)).status == 401
    # Each change is in the domain-event log with who made it; an admin-scoped key keeps
    # them too.
    root_id = await pool.fetchval("SELECT id FROM operators WHERE login = 'root'")
    rows = await pool.fetch(
        "SELECT type, actor FROM domain_events WHERE type LIKE 'canned.%' ORDER BY id"
    )
    assert {r["actor"] for r in rows} == {f"operator:{root_id}", "api:crm"}
    assert [r["type"] for r in rows][-1] == "canned.removed"
    _, admin_key = await apikeys.create(pool, "provisioning", ["admin"])
    made = await client.post(
        URL,
        json={"language": "en", "title": "By key", "text": "x"},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert made.status == 201
    assert (
        await pool.fetchval(
            "SELECT actor FROM domain_events WHERE type = 'canned.created' ORDER BY id DESC LIMIT 1"
        )
        == "api:provisioning"
    )
