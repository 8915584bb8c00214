"""The domain-event log: every kind of change appends its event in the same transaction,
each lead's events are numbered 1, 2, 3, ... without gaps, and every row fits the JSON
Schema the hub serves."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
from aiohttp.test_utils import TestClient, TestServer

from hub.app import build_app
from hub.context import Hub
from hub.domain import Channel
from storage import operators
from tests.conftest import add_operator, add_telegram
from tests.fakes.telegram import FakeTelegram, text_update

Client = TestClient[Any, Any]
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "hub" / "schemas" / "domain-events.json").read_text()
)
TG_SECRET = "events-secret"
CALL_EVENTS = {"call.answered", "call.ended", "call.missed", "callback.created", "callback.closed"}
# Admin work writes these, checked the same way in tests/hub/test_admin_api.py.
ADMIN_EVENTS = {
    "apikey.created",
    "apikey.revoked",
    "apikey.updated",
    "operator.created",
    "operator.updated",
    "operator.password_reset",
    "operator.disabled",
    "operator.enabled",
    "queue.created",
    "queue.updated",
    "queue.removed",
    "channel.created",
    "channel.updated",
    "channel.disabled",
    "channel.enabled",
    "channel.removed",
    "canned.created",
    "canned.updated",
    "canned.removed",
}


async def _form(client: Client, **fields: str) -> dict[str, Any]:
    reply = await client.post("/forms/site", json=fields)
    assert reply.status == 201, await reply.text()
    body: dict[str, Any] = await reply.json()
    return body


async def _types(pool: asyncpg.Pool, after: int) -> list[str]:
    rows = await pool.fetch("SELECT type FROM domain_events WHERE id > $1 ORDER BY id", after)
    return [r["type"] for r in rows]


async def _last_id(pool: asyncpg.Pool) -> int:
    value: int = await pool.fetchval("SELECT COALESCE(max(id), 0) FROM domain_events")
    return value


async def test_every_change_is_logged_in_order_and_fits_the_schema(
    hub: Hub,
    pool: asyncpg.Pool,
    form: Channel,
    auth: dict[str, str],
    fake_telegram: tuple[FakeTelegram, str],
) -> None:
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, TG_SECRET)
    async with TestClient(TestServer(build_app(hub, background=False))) as client:
        first = await _form(client, name="Ivan", phone="+79160000001", message="hi")
        lead, dialog = first["lead_id"], first["dialog_id"]
        mark = await _last_id(pool)
        await _form(client, name="Ivan P", phone="+79160000001", email="i@x.ru", message="again")
        assert await _types(pool, mark) == ["lead.updated", "interaction.created"]

        reply = await client.patch(
            f"/api/v1/leads/{lead}", json={"name": "Ivan Petrov"}, headers=auth
        )
        assert reply.status == 200
        other = (await _form(client, phone="+79160000002", message="other"))["lead_id"]
        mark = await _last_id(pool)
        reply = await client.post(
            f"/api/v1/leads/{lead}/merge", json={"other_id": other}, headers=auth
        )
        assert reply.status == 200, await reply.text()
        # The merged lead's open dialog on the same channel is closed, then the merge recorded.
        assert await _types(pool, mark) == ["dialog.closed", "lead.merged"]
        reply = await client.post(
            f"/api/v1/leads/{lead}/unmerge", json={"other_id": other}, headers=auth
        )
        assert reply.status == 200, await reply.text()

        anna = await add_operator(pool, "anna", online=True)
        bob = await add_operator(pool, "bob", online=True)
        router = hub.router
        await router.count_online()
        mark = await _last_id(pool)
        offered = await router.route(dialog)
        assert len(offered) == 1
        first_choice = offered[0]
        second_choice = bob if first_choice == anna else anna
        await router.decline(first_choice, dialog)  # goes on to the other operator
        await router.accept(second_choice, dialog)
        await router.transfer_to_operator(dialog, first_choice, actor=f"operator:{second_choice}")
        await router.transfer_to_queue(dialog, "default", actor=f"operator:{first_choice}")
        holder = (await pool.fetchval("SELECT offered_to FROM dialogs WHERE id = $1", dialog))[0]
        await router.accept(holder, dialog)
        await router.close(dialog, holder)
        assert await _types(pool, mark) == [
            "dialog.offered",
            "dialog.queued",
            "dialog.offered",
            "dialog.assigned",
            "dialog.transferred",
            "dialog.assigned",
            "dialog.transferred",
            "dialog.queued",
            "dialog.offered",
            "dialog.assigned",
            "dialog.closed",
        ]
        # Both leave, so that the reopened dialog below waits instead of being offered.
        await operators.set_presence(pool, anna, "offline")
        await operators.set_presence(pool, bob, "offline")
        await router.count_online()
        mark = await _last_id(pool)
        await _form(client, phone="+79160000001", message="one more thing")
        reply = await client.post(
            f"/api/v1/dialogs/{dialog}/messages", json={"text": "by email"}, headers=auth
        )
        assert reply.status == 201
        assert await _types(pool, mark) == [
            "dialog.reopened",
            "interaction.created",
            "interaction.created",
        ]

        headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        assert (
            await client.post(
                "/connectors/telegram/tg",
                json=text_update(7, "Привет", message_id=7),
                headers=headers,
            )
        ).status == 200
        tg_dialog = await pool.fetchval(
            "SELECT dialog_id FROM interactions WHERE external_id LIKE '5550001:%'"
        )
        edited = text_update(8, "Привет! Вопрос по заказу", message_id=7)
        edited["edited_message"] = {**edited.pop("message"), "edit_date": 1700000100}
        assert (
            await client.post("/connectors/telegram/tg", json=edited, headers=headers)
        ).status == 200
        mark = await _last_id(pool)
        reply = await client.post(
            f"/api/v1/dialogs/{tg_dialog}/messages", json={"text": "Здравствуйте"}, headers=auth
        )
        assert (await reply.json())["delivery_state"] == "sent"
        assert await _types(pool, mark) == ["interaction.created", "interaction.delivery_updated"]
        await operators.set_presence(pool, anna, "offline")  # no change, no event

    rows = [dict(r) for r in await pool.fetch("SELECT * FROM domain_events ORDER BY id")]
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    seen: set[str] = set()
    per_lead: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        row["occurred_at"] = row["occurred_at"].isoformat()
        validator.validate(row)
        seen.add(row["type"])
        if row["lead_id"] is not None:
            per_lead[row["lead_id"]].append(row["lead_seq"])
    # Calls write theirs in tests/connectors/pbx/test_generic.py, checked there the same way.
    expected = set(SCHEMA["properties"]["type"]["enum"]) - CALL_EVENTS - ADMIN_EVENTS
    assert seen == expected, sorted(seen)
    for lead_id, seqs in per_lead.items():
        assert seqs == list(range(1, len(seqs) + 1)), (lead_id, seqs)
    presence = [r for r in rows if r["type"] == "operator.presence_changed"]
    assert [(r["operator_id"], r["data"]["status"]) for r in presence] == [
        (anna, "online"),
        (bob, "online"),
        (anna, "offline"),
        (bob, "offline"),
    ]
    actors = {(r["type"], r["actor"]) for r in rows}
    assert ("lead.updated", "api:crm") in actors  # the PATCH
    assert ("dialog.assigned", f"operator:{second_choice}") in actors  # the accept
    assert ("interaction.edited", "customer") in actors


async def test_the_schema_is_served(client: Client) -> None:
    reply = await client.get("/api/v1/schemas/domain-events.json")
    assert reply.status == 200
    assert json.loads(await reply.text()) == SCHEMA
