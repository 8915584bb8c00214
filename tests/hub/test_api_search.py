"""`GET /api/v1/search`: one box for a name, a phone in any format, an email or part of
one, and words of messages; an operator finds only their own dialogs' customers."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from hub.api.search import kind_of, snippet
from hub.domain import Channel
from storage import search as search_store
from tests.conftest import add_operator, form_lead, operator_token

Client = TestClient[Any, Any]


async def _search(client: Client, headers: dict[str, str], q: str) -> dict[str, Any]:
    reply = await client.get("/api/v1/search", params={"q": q}, headers=headers)
    assert reply.status == 200, await reply.text()
    found: dict[str, Any] = await reply.json()
    return found


def _lead_ids(found: dict[str, Any]) -> list[int]:
    return [lead["id"] for lead in found["leads"]]


async def test_each_kind_of_query_finds_its_lead(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str], form: Channel
) -> None:
    ivan = await form_lead(
        client,
        pool,
        None,
        name="Иван Петров",
        phone="+7 916 123-45-67",
        email="Ivan.Petrov@Example.com",
        message="Нужна доставка кухонного гарнитура в пятницу",
    )
    olga = await form_lead(
        client, pool, None, name="Olga", phone="+79035550000", message="Price of the sofa?"
    )

    by_name = await _search(client, auth, "петров")
    assert by_name["kind"] == "text" and _lead_ids(by_name) == [ivan]
    # A phone in any format, or some of its digits.
    for q in ("8 (916) 123-45-67", "+79161234567", "123-45", "9161234567"):
        found = await _search(client, auth, q)
        assert found["kind"] == "phone" and _lead_ids(found) == [ivan], q
        assert found["messages"] == []
    by_email = await _search(client, auth, "ivan.petrov@example.com")
    assert by_email["kind"] == "email" and _lead_ids(by_email) == [ivan]
    assert _lead_ids(await _search(client, auth, "petrov@")) == [ivan]
    # Words of a message, the last one as it is being typed; newest first; a snippet.
    words = await _search(client, auth, "доставка кухон")
    assert _lead_ids(words) == []
    [message] = words["messages"]
    assert message["lead_id"] == ivan and message["lead_name"] == "Иван Петров"
    assert message["direction"] == "in" and message["channel"] == "site"
    assert "доставка кухонного" in message["snippet"]
    sofa = await _search(client, auth, "SOFA")
    assert [m["lead_id"] for m in sofa["messages"]] == [olga]
    assert (await _search(client, auth, "nothing-like-this"))["messages"] == []
    # What LIKE and tsquery would read as syntax is only text.
    for q in ("%", "_", "a & b | !c", "'quoted'", "ivan:*", "\\"):
        reply = await client.get("/api/v1/search", params={"q": q}, headers=auth)
        assert reply.status == 200, q


@pytest.mark.parametrize("rare", [5000, 1], ids=["from-the-index", "newest-rows-first"])
async def test_an_operator_finds_only_their_own_customers(
    client: Client, pool: asyncpg.Pool, form: Channel, rare: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways a message is found: through the index (a rare query) and by reading the
    newest rows (a common one), each with an operator's limits."""
    monkeypatch.setattr(search_store, "RARE", rare)
    anna = await add_operator(pool, "anna")
    boris = await add_operator(pool, "boris")
    await add_operator(pool, "sveta", role="supervisor")
    mine = await form_lead(
        client, pool, anna, name="Ivan Mine", phone="+79120000001", message="invoice please"
    )
    theirs = await form_lead(
        client,
        pool,
        boris,
        name="Ivan Theirs",
        phone="+79120000002",
        email="theirs@example.com",
        message="invoice again",
    )
    as_anna = await operator_token(client, "anna")
    assert _lead_ids(await _search(client, as_anna, "ivan")) == [mine]
    assert _lead_ids(await _search(client, as_anna, "+79120000002")) == []
    assert _lead_ids(await _search(client, as_anna, "theirs@example.com")) == []
    invoices = await _search(client, as_anna, "invoice")
    assert [m["lead_id"] for m in invoices["messages"]] == [mine]

    as_sveta = await operator_token(client, "sveta")
    assert sorted(_lead_ids(await _search(client, as_sveta, "ivan"))) == sorted([mine, theirs])
    everything = await _search(client, as_sveta, "invoice")
    assert [m["lead_id"] for m in everything["messages"]] == [theirs, mine]


async def test_bad_queries_are_refused(client: Client, auth: dict[str, str]) -> None:
    for params, status, code in (
        ({}, 422, "missing_field"),
        ({"q": "   "}, 422, "missing_field"),
        ({"q": "x" * 201}, 422, "invalid_field"),
        ({"q": "iv\x00an"}, 400, "invalid_text"),
        ({"q": "ivan", "limit": "0"}, 400, "bad_query"),
        ({"q": "ivan", "limit": "many"}, 400, "bad_query"),
    ):
        reply = await client.get("/api/v1/search", params=params, headers=auth)
        assert reply.status == status, params
        assert (await reply.json())["error"]["code"] == code
    assert (await client.get("/api/v1/search", params={"q": "ivan"})).status == 401


def test_what_a_query_looks_like_decides_where_it_is_looked_for() -> None:
    assert kind_of("a@b") == "email"
    assert kind_of("+7 (916) 123") == "phone"
    assert kind_of("12") == "text"
    assert kind_of("Ivan 916") == "text"
    text = "start " + "x " * 100 + "the delivery is late " + "y " * 100
    cut = snippet(text, "delivery")
    assert "delivery is late" in cut and cut.startswith("…") and cut.endswith("…")
    assert snippet("short", "nothing") == "short"


async def test_the_dialog_list_filters_by_channel(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str], form: Channel
) -> None:
    await form_lead(client, pool, None, name="Ivan", phone="+79160000077", message="hi")
    on_site = await client.get("/api/v1/dialogs", params={"channel": "site"}, headers=auth)
    assert [d["channel"] for d in (await on_site.json())["items"]] == ["site"]
    elsewhere = await client.get("/api/v1/dialogs", params={"channel": "tg"}, headers=auth)
    assert (await elsewhere.json())["items"] == []
