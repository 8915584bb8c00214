"""`GET /api/v1/dialogs`: filters, newest first (an operator's recently closed dialogs),
and each dialog with its lead."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from hub.domain import Channel
from tests.conftest import add_operator, form_lead, operator_token

Client = TestClient[Any, Any]


async def test_closed_dialogs_newest_first_with_their_leads(
    client: Client, pool: asyncpg.Pool, form: Channel, auth: dict[str, str]
) -> None:
    anna = await add_operator(pool, "anna")
    boris = await add_operator(pool, "boris")
    mine = [
        await form_lead(client, pool, anna, name=f"Lead {n}", phone=f"+7916000070{n}")
        for n in range(3)
    ]
    theirs = await form_lead(client, pool, boris, name="Boris's", phone="+79160000799")
    await pool.execute("UPDATE dialogs SET status = 'closed', closed_at = now()")
    as_anna = await operator_token(client, "anna")

    first = await client.get("/api/v1/dialogs?status=closed&order=desc&limit=2", headers=as_anna)
    assert first.status == 200, await first.text()
    page = await first.json()
    assert [d["lead"]["name"] for d in page["items"]] == ["Lead 2", "Lead 1"]
    assert [d["lead_id"] for d in page["items"]] == [mine[2], mine[1]]
    rest = await client.get(
        f"/api/v1/dialogs?status=closed&order=desc&limit=2&before={page['next_cursor']}",
        headers=as_anna,
    )
    assert [d["lead_id"] for d in (await rest.json())["items"]] == [mine[0]]
    # A CRM sees every one, oldest first by default.
    every = await (await client.get("/api/v1/dialogs?status=closed", headers=auth)).json()
    assert [d["lead_id"] for d in every["items"]] == [*mine, theirs]
    for query in ("order=sideways", "order=desc&before=x"):
        bad = await client.get(f"/api/v1/dialogs?{query}", headers=auth)
        assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_query"
