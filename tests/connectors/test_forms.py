"""Site forms through the real app on a real database."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient

from hub.context import Hub
from hub.domain import Channel
from tests.conftest import add_form, count, one_row

Client = TestClient[Any, Any]


async def test_four_phone_formats_make_one_lead_with_four_interactions_in_one_dialog(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    formats = ["8 (912) 345-67-89", "+7 912 345 67 89", "79123456789", "9123456789"]
    answers = []
    for i, phone in enumerate(formats):
        reply = await client.post(
            "/forms/site", json={"name": "Иван", "phone": phone, "message": f"#{i}"}
        )
        assert reply.status == 201, await reply.text()
        answers.append(await reply.json())
    assert len({a["lead_id"] for a in answers}) == 1
    assert len({a["dialog_id"] for a in answers}) == 1
    assert len({a["interaction_id"] for a in answers}) == 4
    assert await count(pool, "leads") == 1
    assert await pool.fetchval("SELECT array_agg(phone) FROM lead_phones") == ["+79123456789"]
    assert await count(pool, "interactions") == 4


async def test_urlencoded_browser_post_redirects_and_keeps_extra_fields(
    client: Client, pool: asyncpg.Pool
) -> None:
    await add_form(pool, "landing", redirect="https://shop.example/thanks", rate_limit="0")
    reply = await client.post(
        "/forms/landing",
        data={"name": "Anna", "email": " Anna@Example.COM ", "comment": "call me", "city": "Kazan"},
        allow_redirects=False,
        headers={"Referer": "https://shop.example/contacts"},
    )
    assert reply.status == 303
    assert reply.headers["Location"] == "https://shop.example/thanks"
    row = await one_row(pool, "SELECT text, extra FROM interactions")
    assert row["text"] == "call me"
    assert row["extra"]["fields"] == {"city": "Kazan"}
    assert row["extra"]["page"] == "https://shop.example/contacts"
    assert await pool.fetchval("SELECT email FROM lead_emails") == "anna@example.com"


async def test_default_redirect_is_a_thank_you_page(client: Client, form: Channel) -> None:
    reply = await client.post("/forms/site", data={"name": "A"}, allow_redirects=False)
    assert reply.headers["Location"] == "/forms/site/thanks"
    page = await client.get("/forms/site/thanks")
    assert page.status == 200 and "Thank you" in await page.text()


async def test_multipart_file_becomes_an_attachment_served_with_auth(
    client: Client, pool: asyncpg.Pool, form: Channel, hub: Hub, auth: dict[str, str]
) -> None:
    data = aiohttp.FormData()
    data.add_field("name", "Oleg")
    data.add_field("phone", "+7 912 000 11 22")
    data.add_field(
        "file",
        b"%PDF-1.4 price list",
        filename="../../etc/price.pdf",
        content_type="application/pdf",
    )
    reply = await client.post("/forms/site", data=data, headers={"Accept": "application/json"})
    assert reply.status == 201, await reply.text()
    body = await reply.json()
    listing = await client.get(f"/api/v1/leads/{body['lead_id']}/interactions", headers=auth)
    attachment = (await listing.json())["items"][0]["attachments"][0]
    assert attachment["name"] == "price.pdf" and attachment["size"] == 19
    assert (await client.get(attachment["url"])).status == 401
    download = await client.get(attachment["url"], headers=auth)
    assert download.status == 200
    assert await download.read() == b"%PDF-1.4 price list"
    assert "attachment" in download.headers["Content-Disposition"]
    stored = list((hub.settings.attachments_dir).rglob("*"))
    assert any(p.is_file() for p in stored)


async def test_file_over_the_limit_is_refused_and_nothing_is_written(
    client: Client, pool: asyncpg.Pool, form: Channel, hub: Hub
) -> None:
    data = aiohttp.FormData()
    data.add_field("name", "Oleg")
    data.add_field(
        "file", io.BytesIO(b"x" * (hub.settings.max_upload_bytes + 1)), filename="big.bin"
    )
    reply = await client.post("/forms/site", data=data)
    assert reply.status == 413
    assert (await reply.json())["error"]["code"] == "file_too_large"
    assert await count(pool, "interactions") == 0
    assert not [p for p in hub.settings.attachments_dir.rglob("*") if p.is_file()]


async def test_same_idempotency_key_makes_one_interaction(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    payload = {"name": "Ivan", "phone": "+79123456789", "message": "hello"}
    headers = {"Idempotency-Key": "order-42-submit"}
    first = await client.post("/forms/site", json=payload, headers=headers)
    second = await client.post("/forms/site", json=payload, headers=headers)
    assert first.status == 201 and second.status == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await second.json()
    assert await count(pool, "interactions") == 1
    changed = await client.post(
        "/forms/site", json={**payload, "message": "other"}, headers=headers
    )
    assert changed.status == 422
    assert (await changed.json())["error"]["code"] == "idempotency_key_reused"
    assert await count(pool, "interactions") == 1


async def test_concurrent_retries_with_one_key_make_one_interaction(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    payload = {"phone": "+79120000001"}
    replies = await asyncio.gather(
        *[
            client.post("/forms/site", json=payload, headers={"Idempotency-Key": "k1"})
            for _ in range(10)
        ]
    )
    assert sorted(r.status for r in replies) == [200] * 9 + [201]
    assert await count(pool, "interactions") == 1


async def test_fifty_concurrent_first_submissions_with_one_new_phone_make_one_lead(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    phones = ["8 (915) 111-22-33", "+7 915 111 22 33", "79151112233", "9151112233"]
    replies = await asyncio.gather(
        *[
            client.post(
                "/forms/site", json={"phone": phones[i % 4], "name": "Петр", "message": str(i)}
            )
            for i in range(50)
        ]
    )
    assert [r.status for r in replies] == [201] * 50
    bodies = [await r.json() for r in replies]
    assert len({b["lead_id"] for b in bodies}) == 1
    assert len({b["dialog_id"] for b in bodies}) == 1
    assert await count(pool, "leads") == 1
    assert await count(pool, "interactions") == 50


async def test_honeypot_is_discarded_silently(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    reply = await client.post("/forms/site", json={"name": "bot", "_gotcha": "http://spam"})
    assert reply.status == 202
    assert await count(pool, "interactions") == 0 and await count(pool, "leads") == 0


async def test_cors_allowed_origin_and_refused_origin(client: Client, pool: asyncpg.Pool) -> None:
    await add_form(pool, "shop", allowed_origins="https://shop.example, https://www.shop.example")
    preflight = await client.options(
        "/forms/shop",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    ok = await client.post(
        "/forms/shop", json={"name": "A"}, headers={"Origin": "https://www.shop.example"}
    )
    assert ok.status == 201
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.shop.example"
    refused = await client.post(
        "/forms/shop", json={"name": "A"}, headers={"Origin": "https://evil.example"}
    )
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "origin_not_allowed"
    bad_preflight = await client.options("/forms/shop", headers={"Origin": "https://evil.example"})
    assert bad_preflight.status == 403
    assert await count(pool, "interactions") == 1


async def test_cors_headers_are_on_error_answers_too(client: Client, form: Channel) -> None:
    reply = await client.post(
        "/forms/site", json={"message": "no contact"}, headers={"Origin": "https://a.example"}
    )
    assert reply.status == 422
    assert reply.headers["Access-Control-Allow-Origin"] == "https://a.example"


async def test_rate_limit_answers_429_with_retry_after(client: Client, pool: asyncpg.Pool) -> None:
    await add_form(pool, "limited", rate_limit="3")
    statuses = []
    for i in range(5):
        reply = await client.post("/forms/limited", json={"name": f"n{i}"})
        statuses.append(reply.status)
        if reply.status == 429:
            assert int(reply.headers["Retry-After"]) >= 1
            assert (await reply.json())["error"]["code"] == "rate_limited"
    assert statuses == [201, 201, 201, 429, 429]
    assert await count(pool, "interactions") == 3


async def test_stage_channel_holds_unknown_contacts(client: Client, pool: asyncpg.Pool) -> None:
    await add_form(pool, "staged", on_unknown="stage", rate_limit="0")
    reply = await client.post("/forms/staged", json={"name": "New", "phone": "+79160000000"})
    assert reply.status == 202
    assert (await reply.json())["status"] == "pending"
    assert await count(pool, "leads") == 0 and await count(pool, "unsorted") == 1


async def test_embed_script_names_the_endpoint(client: Client, form: Channel) -> None:
    reply = await client.get("/forms/site/embed.js")
    assert reply.status == 200
    assert reply.content_type == "application/javascript"
    text = await reply.text()
    assert '"http://hub.test/forms/site"' in text
    assert "Idempotency-Key" in text and "__HUB_ENDPOINT__" not in text


async def _assert_refused(
    reply: aiohttp.ClientResponse, status: int, code: str, pool: asyncpg.Pool
) -> None:
    assert reply.status == status, await reply.text()
    assert reply.content_type == "application/json"
    assert (await reply.json())["error"]["code"] == code
    assert await count(pool, "interactions") == 0
    assert await count(pool, "leads") == 0


async def test_bad_input_gets_clear_json_errors_and_writes_nothing(
    client: Client, pool: asyncpg.Pool, form: Channel, hub: Hub
) -> None:
    post = client.post
    await _assert_refused(
        await post("/forms/site", data=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "malformed_json",
        pool,
    )
    await _assert_refused(
        await post("/forms/site", data=b"[1, 2]", headers={"Content-Type": "application/json"}),
        400,
        "malformed_json",
        pool,
    )
    await _assert_refused(
        await post("/forms/site", data=b"name=x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
        pool,
    )
    await _assert_refused(
        await post("/forms/nowhere", json={"name": "x"}), 404, "unknown_channel", pool
    )
    await _assert_refused(
        await post("/forms/site", json={"message": "hi"}), 422, "missing_contact", pool
    )
    await _assert_refused(
        await post("/forms/site", json={"phone": "12"}), 422, "invalid_phone", pool
    )
    await _assert_refused(
        await post("/forms/site", json={"phone": "not a phone at all"}), 422, "invalid_phone", pool
    )
    await _assert_refused(
        await post("/forms/site", json={"email": "nobody@"}), 422, "invalid_email", pool
    )
    await _assert_refused(
        await post("/forms/site", json={"name": {"a": 1}}), 422, "invalid_field", pool
    )
    big = {"name": "x", "message": "y" * (hub.settings.max_body_bytes + 10)}
    await _assert_refused(
        await post(
            "/forms/site",
            data=io.BytesIO(json.dumps(big).encode()),
            headers={"Content-Type": "application/json"},
        ),
        413,
        "body_too_large",
        pool,
    )
    await _assert_refused(
        await post("/forms/site", json={"name": "x"}, headers={"Idempotency-Key": "with space"}),
        400,
        "bad_idempotency_key",
        pool,
    )
    await _assert_refused(await client.get("/forms/site"), 405, "method_not_allowed", pool)


async def test_disabled_or_other_kind_channel_is_unknown(
    client: Client, pool: asyncpg.Pool
) -> None:
    await add_form(pool, "off")
    await pool.execute("UPDATE channels SET enabled = false WHERE name = 'off'")
    reply = await client.post("/forms/off", json={"name": "x"})
    assert reply.status == 404
    assert (await client.get("/forms/off/embed.js")).status == 404


async def test_a_detail_that_is_not_understood_is_kept_as_written(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    """Letters are not keypad digits, and a typo in one detail never loses the lead: the
    value stays in the interaction's fields; 422 only when nothing usable is left."""
    reply = await client.post(
        "/forms/site",
        json={"name": "Ivan", "phone": "8-800-FLOWERS", "email": "ivan@example"},
    )
    assert reply.status == 201, await reply.text()
    lead_id = (await reply.json())["lead_id"]
    assert await count(pool, "lead_phones") == 0 and await count(pool, "lead_emails") == 0
    items = (
        await (await client.get(f"/api/v1/leads/{lead_id}/interactions", headers=auth)).json()
    )["items"]
    assert items[0]["fields"] == {"phone": "8-800-FLOWERS", "email": "ivan@example"}

    typo = await client.post(
        "/forms/site", json={"phone": "8 912 345-67-8O", "email": "anna@example.com"}
    )
    assert typo.status == 201
    assert await pool.fetchval("SELECT email FROM lead_emails") == "anna@example.com"

    refused = await client.post("/forms/site", json={"phone": "8-800-FLOWERS"})
    assert refused.status == 422 and (await refused.json())["error"]["code"] == "invalid_phone"
    with_extension = await client.post("/forms/site", json={"phone": "8 495 123-45-67 доб. 123"})
    assert with_extension.status == 201
    assert (
        await pool.fetchval("SELECT phone FROM lead_phones WHERE phone = '+74951234567'")
        == "+74951234567"
    )
