"""What an operator's token may see and change: the leads of the dialogs they hold or are
offered, never another operator's customers, not even through duplicates and merges."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from hub.domain import Channel
from tests.conftest import add_operator, form_lead, operator_token

Client = TestClient[Any, Any]


async def test_an_operator_neither_sees_nor_merges_another_operators_lead(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    anna = await add_operator(pool, "anna")
    boris = await add_operator(pool, "boris")
    await add_operator(pool, "sveta", role="supervisor")
    mine = await form_lead(client, pool, anna, name="Ivan", phone="+79120000001")
    theirs = await form_lead(
        client, pool, boris, name="Ivan Petrov", phone="+79990000002", message="private"
    )
    as_anna = await operator_token(client, "anna")
    renamed = await client.patch(
        f"/api/v1/leads/{mine}", json={"name": "Ivan Petrov"}, headers=as_anna
    )
    assert renamed.status == 200, await renamed.text()

    as_sveta = await operator_token(client, "sveta")
    supervisor_view = await client.get(f"/api/v1/leads/{mine}/duplicates", headers=as_sveta)
    assert [i["lead"]["id"] for i in (await supervisor_view.json())["items"]] == [theirs]

    duplicates = await client.get(f"/api/v1/leads/{mine}/duplicates", headers=as_anna)
    assert duplicates.status == 200
    assert (await duplicates.json())["items"] == []
    assert "+79990000002" not in await duplicates.text()

    merge = await client.post(
        f"/api/v1/leads/{mine}/merge", json={"other_id": theirs}, headers=as_anna
    )
    assert merge.status == 404
    assert await pool.fetchval("SELECT merged_into FROM leads WHERE id = $1", theirs) is None
    unmerge = await client.post(
        f"/api/v1/leads/{mine}/unmerge", json={"other_id": theirs}, headers=as_anna
    )
    assert unmerge.status == 404
    for path in (f"/api/v1/leads/{theirs}", f"/api/v1/leads/{theirs}/interactions"):
        assert (await client.get(path, headers=as_anna)).status == 404

    # The supervisor merges; the operator may then undo it from their own lead.
    merged = await client.post(
        f"/api/v1/leads/{mine}/merge", json={"other_id": theirs}, headers=as_sveta
    )
    assert merged.status == 200, await merged.text()
    undone = await client.post(
        f"/api/v1/leads/{mine}/unmerge", json={"other_id": theirs}, headers=as_anna
    )
    assert undone.status == 200, await undone.text()


async def test_an_attachment_of_another_operators_lead_looks_like_no_attachment(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    anna = await add_operator(pool, "anna")
    boris = await add_operator(pool, "boris")
    await form_lead(client, pool, anna, name="Anna's customer", phone="+79120000001")
    theirs = await form_lead(client, pool, boris, name="Boris's", phone="+79990000002")
    interaction = await pool.fetchval("SELECT id FROM interactions WHERE lead_id = $1", theirs)
    attachment = await pool.fetchval(
        """INSERT INTO attachments (interaction_id, name, content_type, size, storage_path)
           VALUES ($1, 'contract.pdf', 'application/pdf', 4, 'x/y') RETURNING id""",
        interaction,
    )
    as_anna = await operator_token(client, "anna")
    hidden = await client.get(f"/api/v1/attachments/{attachment}", headers=as_anna)
    absent = await client.get(f"/api/v1/attachments/{attachment + 1000}", headers=as_anna)
    assert hidden.status == absent.status == 404
    hidden_message = (await hidden.json())["error"]["message"]
    absent_message = (await absent.json())["error"]["message"]
    assert hidden_message.replace(str(attachment), "N") == absent_message.replace(
        str(attachment + 1000), "N"
    )
