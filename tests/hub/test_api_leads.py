"""The leads API: auth and scopes, lookup in any format, edit, merge and unmerge, vCard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import vobject
from aiohttp.test_utils import TestClient

from hub.context import Hub
from hub.domain import Channel, InboundMessage
from storage import apikeys
from tests.conftest import add_form, count

Client = TestClient[Any, Any]


async def _submit(client: Client, channel: str = "site", **fields: str) -> dict[str, Any]:
    reply = await client.post(f"/forms/{channel}", json=fields)
    assert reply.status == 201, await reply.text()
    body: dict[str, Any] = await reply.json()
    return body


async def _json(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, await reply.text()
    return await reply.json()


async def test_auth_is_required_and_scopes_are_enforced(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    missing = await client.get("/api/v1/leads")
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "unauthorized"
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    wrong = await client.get("/api/v1/leads", headers={"Authorization": "Bearer hub_nope"})
    assert wrong.status == 401
    _, reader = await apikeys.create(pool, "reader", ["leads:read"])
    _, dialogs_only = await apikeys.create(pool, "d", ["dialogs"])
    lead = await _submit(client, name="A", phone="+79120000000")
    read = await client.get("/api/v1/leads", headers={"Authorization": f"Bearer {reader}"})
    assert read.status == 200
    patch = await client.patch(
        f"/api/v1/leads/{lead['lead_id']}",
        json={"name": "B"},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert patch.status == 403
    assert (await patch.json())["error"]["code"] == "forbidden"
    other = await client.get("/api/v1/leads", headers={"Authorization": f"Bearer {dialogs_only}"})
    assert other.status == 403
    await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'reader'")
    revoked = await client.get("/api/v1/leads", headers={"Authorization": f"Bearer {reader}"})
    assert revoked.status == 401


async def test_lookup_by_any_phone_format_email_identity_and_text(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    created = await _submit(
        client, name="Мария Иванова", phone="+7 (903) 555-12-34", email="Maria@Mail.RU"
    )
    await _submit(client, name="Someone Else", phone="+79035550000")
    await pool.execute(
        "INSERT INTO lead_identities (lead_id, kind, external_id) VALUES ($1, 'telegram', '777')",
        created["lead_id"],
    )
    for phone in ["89035551234", "+7 903 555 12 34", "9035551234", "8 (903) 555-12-34"]:
        found = await _json(
            await client.get("/api/v1/leads", params={"phone": phone}, headers=auth)
        )
        assert [lead["id"] for lead in found["items"]] == [created["lead_id"]], phone
    by_email = await _json(
        await client.get("/api/v1/leads", params={"email": " MARIA@mail.ru"}, headers=auth)
    )
    assert [lead["id"] for lead in by_email["items"]] == [created["lead_id"]]
    lead = by_email["items"][0]
    assert lead["phones"] == ["+79035551234"] and lead["emails"] == ["maria@mail.ru"]
    assert lead["identities"] == [{"kind": "telegram", "external_id": "777"}]
    assert lead["merged_into"] is None
    by_identity = await _json(
        await client.get("/api/v1/leads", params={"identity": "telegram:777"}, headers=auth)
    )
    assert [x["id"] for x in by_identity["items"]] == [created["lead_id"]]
    by_text = await _json(await client.get("/api/v1/leads", params={"q": "иванова"}, headers=auth))
    assert [x["id"] for x in by_text["items"]] == [created["lead_id"]]
    by_digits = await _json(await client.get("/api/v1/leads", params={"q": "555-12"}, headers=auth))
    assert [x["id"] for x in by_digits["items"]] == [created["lead_id"]]
    percent = await _json(await client.get("/api/v1/leads", params={"q": "%"}, headers=auth))
    assert percent["items"] == []
    none = await _json(
        await client.get("/api/v1/leads", params={"phone": "+79990001122"}, headers=auth)
    )
    assert none["items"] == []
    bad = await client.get("/api/v1/leads", params={"phone": "12"}, headers=auth)
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "invalid_phone"
    bad_identity = await client.get("/api/v1/leads", params={"identity": "telegram"}, headers=auth)
    assert bad_identity.status == 400


async def test_pagination_walks_every_lead_once(
    client: Client, form: Channel, auth: dict[str, str]
) -> None:
    for i in range(7):
        await _submit(client, name=f"Lead {i}", phone=f"+7912000010{i}")
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await _json(await client.get("/api/v1/leads", params=params, headers=auth))
        seen += [lead["id"] for lead in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 == len(set(seen))
    assert (await client.get("/api/v1/leads", params={"limit": "0"}, headers=auth)).status == 400
    assert (await client.get("/api/v1/leads", params={"cursor": "x"}, headers=auth)).status == 400


async def test_interactions_across_channels_oldest_first(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    await add_form(pool, "landing", rate_limit="0")
    first = await _submit(client, "site", phone="+79125550000", message="one")
    second = await _submit(client, "landing", phone="89125550000", message="two")
    assert first["lead_id"] == second["lead_id"] and first["dialog_id"] != second["dialog_id"]
    items = (
        await _json(
            await client.get(f"/api/v1/leads/{first['lead_id']}/interactions", headers=auth)
        )
    )["items"]
    assert [(i["channel"], i["text"], i["kind"], i["direction"]) for i in items] == [
        ("site", "one", "form", "in"),
        ("landing", "two", "form", "in"),
    ]
    dialogs = await _json(
        await client.get("/api/v1/dialogs", params={"lead_id": str(first["lead_id"])}, headers=auth)
    )
    assert {d["channel"] for d in dialogs["items"]} == {"site", "landing"}
    assert all(d["status"] == "queued" for d in dialogs["items"])
    one = await _json(await client.get(f"/api/v1/dialogs/{first['dialog_id']}", headers=auth))
    assert [i["text"] for i in one["interactions"]] == ["one"]
    assert (await client.get("/api/v1/dialogs/999999", headers=auth)).status == 404
    assert (
        await client.get("/api/v1/dialogs", params={"status": "nope"}, headers=auth)
    ).status == 400


async def test_interactions_page_newest_first_with_before(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    """A console loads the latest page, then older ones as the operator scrolls up."""
    lead_id = 0
    for n in range(7):
        lead_id = (await _submit(client, phone="+79125550000", message=f"m{n}"))["lead_id"]
    path = f"/api/v1/leads/{lead_id}/interactions"
    seen: list[str] = []
    params = {"order": "desc", "limit": "3"}
    while True:
        body = await _json(await client.get(path, params=params, headers=auth))
        seen += [i["text"] for i in body["items"]]
        if body["next_cursor"] is None:
            break
        params = {"order": "desc", "limit": "3", "before": body["next_cursor"]}
    assert seen == [f"m{n}" for n in reversed(range(7))]
    oldest_first = await _json(await client.get(path, headers=auth))
    assert [i["text"] for i in oldest_first["items"]] == [f"m{n}" for n in range(7)]
    for bad in ({"order": "sideways"}, {"order": "desc", "before": "x"}):
        assert (await client.get(path, params=bad, headers=auth)).status == 400


async def test_patch_edits_and_validates(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    lead = await _submit(client, name="Old", phone="+79120000001")
    url = f"/api/v1/leads/{lead['lead_id']}"
    updated = await _json(
        await client.patch(
            url,
            json={
                "name": "New Name",
                "phones": ["8 912 000-00-01", "+7 495 123-45-67 доб. 12"],
                "emails": ["A@B.ru"],
            },
            headers=auth,
        )
    )
    assert updated["name"] == "New Name"
    assert updated["phones"] == ["+79120000001", "+74951234567"]
    assert updated["phone_extensions"] == {"+74951234567": "12"}
    assert updated["emails"] == ["a@b.ru"]
    found = await _json(
        await client.get("/api/v1/leads", params={"phone": "84951234567"}, headers=auth)
    )
    assert [x["id"] for x in found["items"]] == [lead["lead_id"]]
    before = await pool.fetchval("SELECT count(*) FROM lead_phones")
    for body, code in [
        ({"phones": ["123"]}, "invalid_phone"),
        ({"emails": ["x"]}, "invalid_email"),
        ({"phones": "+79120000001"}, "invalid_field"),
        ({"id": 5}, "unknown_field"),
    ]:
        reply = await client.patch(url, json=body, headers=auth)
        assert reply.status == 422 and (await reply.json())["error"]["code"] == code
    assert await pool.fetchval("SELECT count(*) FROM lead_phones") == before
    assert (
        await client.patch(url, data=b"{", headers={**auth, "Content-Type": "application/json"})
    ).status == 400
    assert (
        await client.patch(url, data=b"name=x", headers={**auth, "Content-Type": "text/plain"})
    ).status == 415
    assert (
        await client.patch("/api/v1/leads/424242", json={"name": "x"}, headers=auth)
    ).status == 404


async def test_automatic_match_never_overwrites_a_conflicting_detail(
    client: Client, form: Channel, auth: dict[str, str]
) -> None:
    first = await _submit(client, name="Ivan Petrov", phone="+79121112233")
    await _submit(client, name="Vanya", phone="+79121112233", email="ivan@example.com")
    lead = await _json(await client.get(f"/api/v1/leads/{first['lead_id']}", headers=auth))
    assert lead["name"] == "Ivan Petrov"
    assert lead["name_suggestions"] == ["Vanya"]
    assert lead["emails"] == ["ivan@example.com"]
    await _submit(client, email="ivan@example.com", phone="+79034445566")
    lead = await _json(await client.get(f"/api/v1/leads/{first['lead_id']}", headers=auth))
    assert lead["phones"] == ["+79121112233", "+79034445566"]


async def test_duplicates_merge_and_unmerge_round_trip(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    a = await _submit(
        client, name="Alexey Smirnov", phone="+79120000011", email="alex@a.ru", message="a1"
    )
    b = await _submit(
        client, name="Alexei Smirnov", phone="+79120000022", email="alex@b.ru", message="b1"
    )
    c = await _submit(client, name="Totally Different", phone="+79120000033")
    await pool.execute(
        "INSERT INTO lead_identities (lead_id, kind, external_id) VALUES ($1, 'telegram', '42')",
        b["lead_id"],
    )
    # b also shares a's phone, as a CRM import might have made it.
    await pool.execute(
        "INSERT INTO lead_phones (lead_id, phone) VALUES ($1, '+79120000011')", b["lead_id"]
    )
    dups = await _json(await client.get(f"/api/v1/leads/{a['lead_id']}/duplicates", headers=auth))
    assert [d["lead"]["id"] for d in dups["items"]] == [b["lead_id"]]
    assert set(dups["items"][0]["reasons"]) == {"phone", "name"}
    assert c["lead_id"] not in [d["lead"]["id"] for d in dups["items"]]

    merged = await _json(
        await client.post(
            f"/api/v1/leads/{a['lead_id']}/merge", json={"other_id": b["lead_id"]}, headers=auth
        )
    )
    lead = merged["lead"]
    assert lead["name"] == "Alexey Smirnov" and lead["name_suggestions"] == ["Alexei Smirnov"]
    assert lead["phones"] == ["+79120000011", "+79120000022"]
    assert sorted(lead["emails"]) == ["alex@a.ru", "alex@b.ru"]
    assert lead["identities"] == [{"kind": "telegram", "external_id": "42"}]
    history = await _json(
        await client.get(f"/api/v1/leads/{a['lead_id']}/interactions", headers=auth)
    )
    assert [i["text"] for i in history["items"]] == ["a1", "b1"]
    gone = await _json(await client.get(f"/api/v1/leads/{b['lead_id']}", headers=auth))
    assert gone["merged_into"] == a["lead_id"] and gone["phones"] == []
    for params in ({"phone": "+79120000022"}, {"email": "alex@b.ru"}, {"identity": "telegram:42"}):
        found = await _json(await client.get("/api/v1/leads", params=params, headers=auth))
        assert [x["id"] for x in found["items"]] == [a["lead_id"]], params
    # A new message from b's phone now lands on a.
    later = await _submit(client, phone="+79120000022", message="after merge")
    assert later["lead_id"] == a["lead_id"]

    again = await client.post(
        f"/api/v1/leads/{a['lead_id']}/merge", json={"other_id": b["lead_id"]}, headers=auth
    )
    assert again.status == 409
    restored = await _json(
        await client.post(
            f"/api/v1/leads/{a['lead_id']}/unmerge", json={"other_id": b["lead_id"]}, headers=auth
        )
    )
    assert restored["restored"]["merged_into"] is None
    assert sorted(restored["restored"]["phones"]) == ["+79120000011", "+79120000022"]
    assert restored["restored"]["emails"] == ["alex@b.ru"]
    assert restored["restored"]["identities"] == [{"kind": "telegram", "external_id": "42"}]
    assert restored["lead"]["phones"] == ["+79120000011"]
    assert restored["lead"]["emails"] == ["alex@a.ru"]
    assert restored["lead"]["name_suggestions"] == []
    b_history = await _json(
        await client.get(f"/api/v1/leads/{b['lead_id']}/interactions", headers=auth)
    )
    assert [i["text"] for i in b_history["items"]] == ["b1"]
    twice = await client.post(
        f"/api/v1/leads/{a['lead_id']}/unmerge", json={"other_id": b["lead_id"]}, headers=auth
    )
    assert twice.status == 409 and (await twice.json())["error"]["code"] == "not_merged"


async def test_merge_refusals(client: Client, form: Channel, auth: dict[str, str]) -> None:
    a = await _submit(client, name="A", phone="+79120000044")
    url = f"/api/v1/leads/{a['lead_id']}/merge"
    assert (await client.post(url, json={"other_id": a["lead_id"]}, headers=auth)).status == 422
    assert (await client.post(url, json={"other_id": 999999}, headers=auth)).status == 404
    assert (await client.post(url, json={"other_id": "2"}, headers=auth)).status == 422
    assert (await client.post(url, json={}, headers=auth)).status == 422


async def test_merge_with_open_dialogs_on_one_channel_keeps_one_open(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    a = await _submit(client, phone="+79120000055")
    b = await _submit(client, phone="+79120000066")
    await _json(
        await client.post(
            f"/api/v1/leads/{a['lead_id']}/merge", json={"other_id": b["lead_id"]}, headers=auth
        )
    )
    open_dialogs = await pool.fetch(
        "SELECT id FROM dialogs WHERE lead_id = $1 AND status <> 'closed'", a["lead_id"]
    )
    assert [r["id"] for r in open_dialogs] == [a["dialog_id"]]
    await _json(
        await client.post(
            f"/api/v1/leads/{a['lead_id']}/unmerge", json={"other_id": b["lead_id"]}, headers=auth
        )
    )
    assert (
        await pool.fetchval("SELECT lead_id FROM dialogs WHERE id = $1", b["dialog_id"])
        == b["lead_id"]
    )


async def test_lead_as_vcard(client: Client, form: Channel, auth: dict[str, str]) -> None:
    lead = await _submit(
        client, name="Иван Петров", phone="+7 495 123-45-67 ext. 5", email="ivan@example.com"
    )
    reply = await client.get(f"/api/v1/leads/{lead['lead_id']}.vcf", headers=auth)
    assert reply.status == 200 and reply.content_type == "text/vcard"
    card = vobject.readOne(await reply.text())
    assert card.fn.value == "Иван Петров"
    assert [t.value for t in card.contents["tel"]] == ["+74951234567 ext. 5"]
    assert card.email.value == "ivan@example.com"
    assert (await client.get("/api/v1/leads/999.vcf", headers=auth)).status == 404


async def test_unknown_routes_and_methods_answer_json(
    client: Client, auth: dict[str, str], pool: asyncpg.Pool
) -> None:
    for reply, status in [
        (await client.get("/api/v1/nothing", headers=auth), 404),
        (await client.delete("/api/v1/leads", headers=auth), 405),
        (await client.get("/api/v1/leads/abc", headers=auth), 404),
    ]:
        assert reply.status == status
        assert (await reply.json())["error"]["code"] in {"not_found", "method_not_allowed"}
    assert await count(pool, "leads") == 0


async def test_a_suggested_phone_is_offered_added_or_dismissed_for_good(
    client: Client, hub: Hub, form: Channel, auth: dict[str, str]
) -> None:
    """A phone seen in an email signature is offered on the lead, never added by itself;
    an operator adds it (PATCH phones) or dismisses it (PATCH phone_suggestions), and a
    dismissed one is not offered again by the next message."""

    async def signed(n: int, *phones: str, email: str = "ivan@example.com") -> int:
        message = InboundMessage(
            channel_id=form.id,
            external_id=f"sig-{n}",
            occurred_at=datetime.now(UTC),
            text="Добрый день",
            emails=(email,),
            suggested_phones=phones,
        )
        result = await hub.pipeline.ingest(message, "form")
        return int(result.lead_id or 0)

    lead_id = await signed(1, "+7 (912) 345-67-89", "8 800 555 35 35", "not a phone")
    url = f"/api/v1/leads/{lead_id}"
    lead = await _json(await client.get(url, headers=auth))
    assert lead["phones"] == []
    assert lead["phone_suggestions"] == ["+79123456789", "+78005553535"]
    assert await _json(await client.get("/api/v1/leads?phone=89123456789", headers=auth)) == {
        "items": [],
        "next_cursor": None,
    }  # a suggestion finds no lead: it is nobody's phone yet

    dismissed = await _json(
        await client.patch(url, json={"phone_suggestions": ["+79123456789"]}, headers=auth)
    )
    assert dismissed["phone_suggestions"] == ["+79123456789"]
    added = await _json(await client.patch(url, json={"phones": ["+79123456789"]}, headers=auth))
    assert added["phones"] == ["+79123456789"] and added["phone_suggestions"] == []

    await signed(2, "8 800 555 35 35", "+79123456789", "+7 903 111 22 33")
    lead = await _json(await client.get(url, headers=auth))
    assert lead["phone_suggestions"] == ["+79031112233"]  # dismissed and owned ones stay out
    assert lead["phones"] == ["+79123456789"]
    bad = await client.patch(url, json={"phone_suggestions": ["abc"]}, headers=auth)
    assert bad.status == 422

    # A merge offers the other lead's suggestions on the survivor; undoing it takes them back.
    other = await signed(3, "+7 495 000 00 00", email="office@example.com")
    await _json(await client.post(f"{url}/merge", json={"other_id": other}, headers=auth))
    merged = await _json(await client.get(url, headers=auth))
    assert merged["phone_suggestions"] == ["+79031112233", "+74950000000"]
    await _json(await client.post(f"{url}/unmerge", json={"other_id": other}, headers=auth))
    restored = await _json(await client.get(url, headers=auth))
    assert restored["phone_suggestions"] == ["+79031112233"]
