"""Admin work over the REST API: operators (create, edit, reset a password, disable) and
API keys (make, list, revoke), by an admin's token or an API key with the `admin` scope;
every change in the domain-event log with who made it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import jsonschema
from aiohttp.test_utils import TestClient

from hub.domain import Channel
from storage import apikeys, operators
from tests.conftest import OPERATOR_PASSWORD, add_operator, form_lead, operator_token
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.sockets import closed_with, connected, signed_in
from tests.fixtures.waiting import eventually
from tests.storage.test_domain_events import SCHEMA

Client = TestClient[Any, Any]


async def _events(pool: asyncpg.Pool, prefix: str) -> list[tuple[str, str]]:
    """The admin events of a kind, each valid by the published schema."""
    rows = await pool.fetch(
        "SELECT * FROM domain_events WHERE type LIKE $1 || '%' ORDER BY id", prefix
    )
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for row in rows:
        validator.validate({**dict(row), "occurred_at": row["occurred_at"].isoformat()})
    return [(r["type"], r["actor"]) for r in rows]


async def test_only_admins_do_admin_work(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    await add_operator(pool, "anna")
    await add_operator(pool, "sam", role="supervisor")
    await add_operator(pool, "root", role="admin")
    body = {"login": "new", "name": "New", "password": "long enough"}
    for headers in (
        await operator_token(client, "anna"),
        await operator_token(client, "sam"),
        auth,  # an API key with every scope but admin
    ):
        for method, path, json in (
            ("POST", "/api/v1/operators", body),
            ("GET", "/api/v1/operators/1", None),
            ("PATCH", "/api/v1/operators/1", {"name": "x"}),
            ("DELETE", "/api/v1/operators/1", None),
            ("GET", "/api/v1/apikeys", None),
            ("POST", "/api/v1/apikeys", {"name": "x"}),
            ("DELETE", "/api/v1/apikeys/1", None),
        ):
            reply = await client.request(method, path, json=json, headers=headers)
            assert reply.status == 403, (method, path, await reply.text())
    assert await pool.fetchval("SELECT count(*) FROM operators") == 3
    # An API key given the admin scope by name does admin work; `admin:read` only reads.
    _, admin_key = await apikeys.create(pool, "provisioning", ["admin"])
    _, reader = await apikeys.create(pool, "audit", ["admin:read"])
    made = await client.post(
        "/api/v1/operators", json=body, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert made.status == 201, await made.text()
    listed = await client.get("/api/v1/apikeys", headers={"Authorization": f"Bearer {reader}"})
    assert listed.status == 200
    refused = await client.post(
        "/api/v1/apikeys", json={"name": "x"}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert refused.status == 403
    assert await _events(pool, "operator.created") == [("operator.created", "api:provisioning")]


async def test_an_admin_manages_operators(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    root = await add_operator(pool, "root", role="admin")
    as_root = await operator_token(client, "root")
    for body, code in (
        ({"login": "olga", "name": "Olga"}, "invalid_field"),  # no password
        ({"login": "olga", "name": "Olga", "password": "short"}, "invalid_field"),
        (
            {"login": "olga", "name": "Olga", "password": "long enough", "role": "boss"},
            "invalid_field",
        ),
        ({"login": "o l", "name": "Olga", "password": "long enough"}, "invalid_field"),
        (
            {"login": "olga", "name": "Olga", "password": "long enough", "salary": 1},
            "invalid_field",
        ),
        ({"login": "root", "name": "Again", "password": "long enough"}, "conflict"),
    ):
        reply = await client.post("/api/v1/operators", json=body, headers=as_root)
        assert reply.status in (409, 422) and (await reply.json())["error"]["code"] == code, body
    made = await client.post(
        "/api/v1/operators",
        json={
            "login": "olga",
            "name": "Olga",
            "password": OPERATOR_PASSWORD,
            "skills": ["ru", "sales"],
            "max_dialogs": 3,
            "extension": "104",
        },
        headers=as_root,
    )
    assert made.status == 201, await made.text()
    olga = await made.json()
    assert (olga["role"], olga["skills"], olga["max_dialogs"], olga["extension"]) == (
        "operator",
        ["ru", "sales"],
        3,
        "104",
    )
    assert "password" not in olga and "password_hash" not in olga and olga["disabled"] is False

    edited = await client.patch(
        f"/api/v1/operators/{olga['id']}",
        json={"name": "Olga K", "role": "supervisor", "skills": ["ru"], "max_dialogs": 8},
        headers=as_root,
    )
    assert edited.status == 200, await edited.text()
    assert (await edited.json())["name"] == "Olga K"
    socket = await signed_in(client, "olga")  # signed in with the password given
    lead = await form_lead(client, pool, olga["id"], name="Ivan", phone="+79160000901")

    # A new password ends the sessions of the old one.
    reset = await client.patch(
        f"/api/v1/operators/{olga['id']}", json={"password": "a new password"}, headers=as_root
    )
    assert reset.status == 200
    assert await closed_with(socket) == 4401
    assert (
        await client.post(
            "/api/v1/auth/login", json={"login": "olga", "password": OPERATOR_PASSWORD}
        )
    ).status == 401
    login = await client.post(
        "/api/v1/auth/login", json={"login": "olga", "password": "a new password"}
    )
    assert login.status == 200
    token = (await login.json())["token"]
    socket = await connected(client, token)

    # Disabled: the socket closes at once, the token and the login are refused, the dialog
    # she held waits in the queue again; enabled again, she signs in.
    await operators.set_presence(pool, olga["id"], "online")
    gone = await client.delete(f"/api/v1/operators/{olga['id']}", headers=as_root)
    assert gone.status == 200 and (await gone.json())["disabled"] is True
    assert await closed_with(socket) == 4401
    # Offline at once, in the log too (the reports' online time ends there), by the admin.
    went = await pool.fetchrow(
        """SELECT data, actor FROM domain_events WHERE type = 'operator.presence_changed'
             AND operator_id = $1 ORDER BY id DESC LIMIT 1""",
        olga["id"],
    )
    assert went is not None and went["data"]["status"] == "offline"
    assert went["actor"].startswith("operator:")
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 401
    again = await client.post(
        "/api/v1/auth/login", json={"login": "olga", "password": "a new password"}
    )
    assert again.status == 401
    dialog = await pool.fetchrow("SELECT status, operator_id FROM dialogs WHERE lead_id = $1", lead)
    assert dialog is not None and dialog["status"] in ("queued", "offered")
    assert dialog["operator_id"] is None
    roster = await (
        await client.get("/api/v1/operators", headers=await operator_token(client, "root"))
    ).json()
    assert olga["id"] not in [o["id"] for o in roster["items"]]
    everyone = await (
        await client.get("/api/v1/operators?include_disabled=true", headers=as_root)
    ).json()
    assert [o["disabled"] for o in everyone["items"] if o["id"] == olga["id"]] == [True]
    back = await client.patch(
        f"/api/v1/operators/{olga['id']}", json={"disabled": False}, headers=as_root
    )
    assert back.status == 200 and (await back.json())["disabled"] is False
    assert (
        await client.post(
            "/api/v1/auth/login", json={"login": "olga", "password": "a new password"}
        )
    ).status == 200

    # An admin cannot lock themselves out.
    lockouts: list[dict[str, object]] = [{"disabled": True}, {"role": "operator"}]
    for lockout in lockouts:
        refused = await client.patch(f"/api/v1/operators/{root}", json=lockout, headers=as_root)
        assert refused.status == 409
    assert (await client.get("/api/v1/operators/999", headers=as_root)).status == 404
    assert await _events(pool, "operator.") == [
        ("operator.created", f"operator:{root}"),
        ("operator.updated", f"operator:{root}"),
        ("operator.password_reset", f"operator:{root}"),
        ("operator.presence_changed", f"operator:{olga['id']}"),  # online, by herself
        ("operator.presence_changed", f"operator:{root}"),  # offline, as she was disabled
        ("operator.disabled", f"operator:{root}"),
        ("operator.enabled", f"operator:{root}"),
    ]
    # The password is in no event.
    assert not await pool.fetchval(
        "SELECT count(*) FROM domain_events WHERE data::text LIKE '%new password%'"
    )


async def test_an_admin_makes_lists_and_revokes_api_keys(
    client: Client, pool: asyncpg.Pool
) -> None:
    root = await add_operator(pool, "root", role="admin")
    as_root = await operator_token(client, "root")
    for body in ({}, {"name": "x", "scopes": ["everything"]}, {"name": "x", "scopes": []}):
        reply = await client.post("/api/v1/apikeys", json=body, headers=as_root)
        assert reply.status == 422, body
    made = await client.post("/api/v1/apikeys", json={"name": "crm"}, headers=as_root)
    assert made.status == 201
    record = await made.json()
    key = record.pop("key")
    assert key.startswith("hub_") and record["prefix"] == key[:10]
    assert "admin" not in record["scopes"] and "leads" in record["scopes"]
    crm = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/leads", headers=crm)).status == 200
    listed = await (await client.get("/api/v1/apikeys", headers=as_root)).json()
    assert [k["name"] for k in listed["items"]] == ["crm"]
    assert key not in str(listed) and listed["items"][0]["last_used_at"] is not None
    assert "key_hash" not in listed["items"][0]

    # Narrowed to reading leads: its next request has only that.
    narrowed = await client.patch(
        f"/api/v1/apikeys/{record['id']}",
        json={"name": "crm (read)", "scopes": ["leads:read"]},
        headers=as_root,
    )
    assert narrowed.status == 200 and (await narrowed.json())["scopes"] == ["leads:read"]
    assert (await client.get("/api/v1/leads", headers=crm)).status == 200
    assert (await client.get("/api/v1/dialogs", headers=crm)).status == 403
    one = await (await client.get(f"/api/v1/apikeys/{record['id']}", headers=as_root)).json()
    assert one["name"] == "crm (read)" and key not in str(one)
    assert (
        await client.patch(
            f"/api/v1/apikeys/{record['id']}", json={"scopes": ["root"]}, headers=as_root
        )
    ).status == 422
    revoked = await client.delete(f"/api/v1/apikeys/{record['id']}", headers=as_root)
    assert revoked.status == 200 and (await revoked.json())["revoked"] is True
    assert (await client.get("/api/v1/leads", headers=crm)).status == 401
    # Revoking twice changes nothing more; an unknown key is a 404.
    assert (await client.delete(f"/api/v1/apikeys/{record['id']}", headers=as_root)).status == 200
    assert (await client.delete("/api/v1/apikeys/999", headers=as_root)).status == 404
    # A revoked key stays dead.
    assert (
        await client.patch(f"/api/v1/apikeys/{record['id']}", json={"name": "x"}, headers=as_root)
    ).status == 409
    assert await _events(pool, "apikey.") == [
        ("apikey.created", f"operator:{root}"),
        ("apikey.updated", f"operator:{root}"),
        ("apikey.revoked", f"operator:{root}"),
    ]


async def test_an_admin_manages_queues_and_the_router_follows(
    client: Client, pool: asyncpg.Pool, form: Channel
) -> None:
    await add_operator(pool, "root", role="admin")
    anna = await add_operator(pool, "anna", skills=("vip",), online=True)
    as_root = await operator_token(client, "root")
    for body in (
        {"name": "bad name"},
        {"name": "q", "strategy": "random"},
        {"name": "q", "channels": ["nowhere"]},
        {"name": "q", "hours": "someday"},
        {"name": "q", "hours": "mon-fri 09:00-18:00", "timezone": "Mars/Olympus"},
        {"name": "q", "offer_timeout_s": 0},
        {"name": "q", "color": "red"},
    ):
        reply = await client.post("/api/v1/queues", json=body, headers=as_root)
        assert reply.status == 422, body
    made = await client.post(
        "/api/v1/queues",
        json={"name": "vip", "channels": ["site"], "skills": ["gold"], "offer_timeout_s": 20},
        headers=as_root,
    )
    assert made.status == 201, await made.text()
    vip = await made.json()
    assert (
        await client.post("/api/v1/queues", json={"name": "vip"}, headers=as_root)
    ).status == 409
    # Nobody has the skill: a site dialog waits.
    lead = await form_lead(client, pool, None, name="Ivan", phone="+79160000951")
    await asyncio.sleep(0.3)
    assert await pool.fetchval("SELECT status FROM dialogs WHERE lead_id = $1", lead) == "queued"
    # The queue asks for Anna's skill now, with a lunch break and holidays: it is offered.
    changed = await client.patch(
        f"/api/v1/queues/{vip['id']}",
        json={"skills": ["vip"], "hours": "mon-sun 00:00-24:00; closed 2000-01-01"},
        headers=as_root,
    )
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["skills"] == ["vip"]
    offered = await eventually(
        lambda: pool.fetchval(
            "SELECT offered_to FROM dialogs WHERE lead_id = $1 AND status = 'offered'", lead
        )
    )
    assert offered == [anna]
    # Removed: dialogs went through it, so it is disabled and its name free again.
    assert (await client.delete(f"/api/v1/queues/{vip['id']}", headers=as_root)).status == 204
    assert (await client.get(f"/api/v1/queues/{vip['id']}", headers=as_root)).status == 404
    listed = await (await client.get("/api/v1/queues", headers=as_root)).json()
    assert listed["items"] == []
    assert await pool.fetchval("SELECT disabled_at IS NOT NULL FROM queues") is True
    again = await client.post("/api/v1/queues", json={"name": "vip"}, headers=as_root)
    assert again.status == 201
    # A queue nothing went through is deleted outright.
    assert (
        await client.delete(f"/api/v1/queues/{(await again.json())['id']}", headers=as_root)
    ).status == 204
    assert await pool.fetchval("SELECT count(*) FROM queues") == 1
    assert [t for t, _ in await _events(pool, "queue.")] == [
        "queue.created",
        "queue.updated",
        "queue.removed",
        "queue.created",
        "queue.removed",
    ]
    sam_headers = await operator_token(client, "anna")
    assert (await client.get("/api/v1/queues", headers=sam_headers)).status == 403


async def test_an_admin_wires_a_channel_and_sees_it_run(
    client: Client, pool: asyncpg.Pool, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    """A Telegram bot added with a wrong token says so beside the channel; the right token
    makes it run without a restart; secrets are never shown back; removal keeps history."""
    telegram, base = fake_telegram
    await add_operator(pool, "root", role="admin")
    as_root = await operator_token(client, "root")
    kinds = await (await client.get("/api/v1/channel-kinds", headers=as_root)).json()
    telegram_kind = next(k for k in kinds["items"] if k["kind"] == "telegram")
    token_field = next(f for f in telegram_kind["settings"] if f["name"] == "token")
    assert token_field["required"] and token_field["secret"]
    for body, code in (
        ({"kind": "fax", "name": "x"}, "invalid_field"),
        ({"kind": "telegram", "name": "bad name"}, "invalid_field"),
        ({"kind": "telegram", "name": "tg"}, "invalid_settings"),  # no token
        ({"kind": "telegram", "name": "tg", "settings": {"token": "nonsense"}}, "invalid_settings"),
        ({"kind": "telegram", "name": "tg", "settings": {"color": "red"}}, "invalid_settings"),
    ):
        reply = await client.post("/api/v1/channels", json=body, headers=as_root)
        assert reply.status == 422 and (await reply.json())["error"]["code"] == code, body
    wrong = "123456:WRONG-token_abc"
    made = await client.post(
        "/api/v1/channels",
        json={
            "kind": "telegram",
            "name": "tg",
            "settings": {"token": wrong, "mode": "polling", "api_base": base, "poll_timeout": "1"},
        },
        headers=as_root,
    )
    assert made.status == 201, await made.text()
    channel = await made.json()
    assert channel["secrets"] == {"secret_token": True, "token": True}
    assert wrong not in str(channel) and "token" not in channel["settings"]
    failed = await eventually(lambda: _status(client, as_root, channel["id"], "failed"))
    assert "provider_auth_failed" in failed["error"]

    changed = await client.patch(
        f"/api/v1/channels/{channel['id']}",
        json={"settings": {"token": telegram.token}},
        headers=as_root,
    )
    assert changed.status == 200, await changed.text()
    running = await eventually(lambda: _status(client, as_root, channel["id"], "running"))
    assert running["node"]
    # The generated webhook secret was kept though not given again.
    stored = await pool.fetchval("SELECT settings FROM channels WHERE id = $1", channel["id"])
    assert stored["token"] == telegram.token and stored["secret_token"]
    await client.post(
        "/connectors/telegram/tg",
        json=text_update(1, "hello", user_id=5558001),
        headers={"X-Telegram-Bot-Api-Secret-Token": stored["secret_token"]},
    )
    telegram.push_update(text_update(2, "polled", user_id=5558001))
    # Both arrived: through the webhook route and through the poller the new token runs.
    await eventually(lambda: pool.fetchval("SELECT count(*) = 2 FROM interactions"))

    disabled = await client.patch(
        f"/api/v1/channels/{channel['id']}", json={"enabled": False}, headers=as_root
    )
    assert (await disabled.json())["status"] == {"state": "disabled"}
    gone = await client.delete(f"/api/v1/channels/{channel['id']}", headers=as_root)
    assert (await gone.json())["deleted"] is False  # its dialog names it
    assert await pool.fetchval("SELECT count(*) FROM channels") == 1
    unused = await client.post(
        "/api/v1/channels", json={"kind": "form", "name": "site"}, headers=as_root
    )
    site = await unused.json()
    assert site["status"] == {"state": "listening"} and site["inbound_path"] == "/forms/site"
    assert (await (await client.delete(f"/api/v1/channels/{site['id']}", headers=as_root)).json())[
        "deleted"
    ]
    assert (await client.get(f"/api/v1/channels/{site['id']}", headers=as_root)).status == 404
    assert [t for t, _ in await _events(pool, "channel.")] == [
        "channel.created",
        "channel.updated",
        "channel.disabled",
        "channel.disabled",
        "channel.created",
        "channel.removed",
    ]
    assert not await pool.fetchval(
        "SELECT count(*) FROM domain_events WHERE data::text LIKE '%' || $1 || '%'",
        telegram.token,
    )


async def _status(
    client: Client, headers: dict[str, str], channel_id: int, state: str
) -> dict[str, Any]:
    """The channel's status once it is `state` (empty until then)."""
    reply = await client.get(f"/api/v1/channels/{channel_id}", headers=headers)
    status: dict[str, Any] = (await reply.json())["status"]
    return status if status["state"] == state else {}
