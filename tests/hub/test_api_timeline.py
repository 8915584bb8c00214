"""`GET /api/v1/leads/{id}/timeline`: how the lead's dialogs changed hands, from the log."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from hub.domain import Channel
from tests.conftest import add_operator, form_lead, operator_token

Client = TestClient[Any, Any]


async def test_the_timeline_tells_who_had_the_dialog(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str], form: Channel
) -> None:
    anna = await add_operator(pool, "anna")
    await add_operator(pool, "boris")
    lead = await form_lead(client, pool, anna, name="Ivan", phone="+79160000088")
    dialog_id = await pool.fetchval("SELECT id FROM dialogs WHERE lead_id = $1", lead)
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() WHERE id = $1", dialog_id
    )

    reply = await client.get(f"/api/v1/leads/{lead}/timeline", headers=auth)
    assert reply.status == 200
    items = (await reply.json())["items"]
    assert [i["type"] for i in items] == ["dialog.created", "dialog.assigned", "dialog.closed"]
    assert items[1]["operator_id"] == anna and items[2]["dialog_id"] == dialog_id
    assert [i["occurred_at"] for i in items] == sorted(i["occurred_at"] for i in items)

    as_boris = await operator_token(client, "boris")  # never had it
    assert (await client.get(f"/api/v1/leads/{lead}/timeline", headers=as_boris)).status == 404
    as_anna = await operator_token(client, "anna")
    assert (await client.get(f"/api/v1/leads/{lead}/timeline", headers=as_anna)).status == 200
    assert (await client.get("/api/v1/leads/999999/timeline", headers=auth)).status == 404
