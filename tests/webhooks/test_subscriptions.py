"""Subscribing CRMs through the API and the command line: the secret shown once, event
types checked, URLs to loopback, private, link-local or metadata addresses refused."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from storage import apikeys
from tests.conftest import count

Client = TestClient[Any, Any]
PUBLIC = "https://93.184.216.34/hooks/crm"  # a literal public address: no DNS needed


async def test_the_api_subscribes_lists_and_removes(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    made = await client.post(
        "/api/v1/webhooks", json={"url": PUBLIC, "events": ["lead.created"]}, headers=auth
    )
    assert made.status == 201
    body = await made.json()
    assert body["url"] == PUBLIC and body["events"] == ["lead.created"] and body["enabled"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]+=*", body["secret"])
    listed = await (await client.get("/api/v1/webhooks", headers=auth)).json()
    assert [s["id"] for s in listed["items"]] == [body["id"]]
    assert "secret" not in listed["items"][0]  # shown once, never again
    log = await client.get(f"/api/v1/webhooks/{body['id']}/deliveries", headers=auth)
    assert log.status == 200 and (await log.json())["items"] == []
    replay = await client.post(
        f"/api/v1/webhooks/{body['id']}/replay", json={"event_ids": ["evt_1"]}, headers=auth
    )
    assert replay.status == 202 and (await replay.json())["queued"] == 0
    bad = await client.post(
        f"/api/v1/webhooks/{body['id']}/replay", json={"event_ids": ["nope"]}, headers=auth
    )
    assert bad.status == 422
    assert (await client.delete(f"/api/v1/webhooks/{body['id']}", headers=auth)).status == 204
    assert (await client.delete(f"/api/v1/webhooks/{body['id']}", headers=auth)).status == 404
    assert (
        await client.get(f"/api/v1/webhooks/{body['id']}/deliveries", headers=auth)
    ).status == 404


async def test_urls_that_reach_inside_are_refused(
    client: Client, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "ftp://93.184.216.34/hook",
        "https://user:pw@93.184.216.34/hook",
        "not a url",
    ):
        reply = await client.post("/api/v1/webhooks", json={"url": url}, headers=auth)
        assert reply.status == 422, url
        assert (await reply.json())["error"]["code"] == "invalid_field"
    unknown = await client.post(
        "/api/v1/webhooks", json={"url": PUBLIC, "events": ["lead.exploded"]}, headers=auth
    )
    assert unknown.status == 422 and "lead.exploded" in (await unknown.json())["error"]["message"]
    nowhere = await client.post(
        "/api/v1/webhooks", json={"url": PUBLIC, "channels": ["nowhere"]}, headers=auth
    )
    assert nowhere.status == 422 and "nowhere" in (await nowhere.json())["error"]["message"]
    assert await count(pool, "webhook_subscriptions") == 0
    _, reader = await apikeys.create(pool, "reader", ["leads"])
    denied = await client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status == 403


async def _hub(dsn: str, *args: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        *args,
        env={**os.environ, "HUB_DATABASE_URL": dsn, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_command_line(db_dsn: str, pool: asyncpg.Pool) -> None:
    code, _, err = await _hub(db_dsn, "webhook", "add", "http://127.0.0.1:9/hook")
    assert code == 2 and "HUB_WEBHOOK_ALLOW_PRIVATE" in err
    code, out, _ = await _hub(
        db_dsn,
        "webhook",
        "add",
        "http://127.0.0.1:9/hook",
        "--events",
        "call.missed",
        HUB_WEBHOOK_ALLOW_PRIVATE="1",
    )
    assert code == 0 and "events call.missed" in out
    first = re.search(r"whsec_\S+", out)
    assert first is not None
    code, out, _ = await _hub(db_dsn, "webhook", "list")
    assert out.split("\t")[1:3] == ["http://127.0.0.1:9/hook", "call.missed"]
    sub_id = out.split("\t")[0]
    code, out, _ = await _hub(db_dsn, "webhook", "rotate-secret", sub_id)
    second = re.search(r"whsec_\S+", out)
    assert code == 0 and second is not None
    secrets = await pool.fetchval("SELECT secrets FROM webhook_subscriptions")
    assert secrets == [second.group(0), first.group(0)]  # both sign during the rotation
    await _hub(db_dsn, "webhook", "rotate-secret", sub_id, "--finish")
    assert await pool.fetchval("SELECT secrets FROM webhook_subscriptions") == [second.group(0)]
    await pool.execute("UPDATE webhook_subscriptions SET enabled = false")
    code, out, _ = await _hub(db_dsn, "webhook", "enable", sub_id)
    assert code == 0 and await pool.fetchval("SELECT enabled FROM webhook_subscriptions")
    code, out, _ = await _hub(db_dsn, "webhook", "replay", sub_id)
    assert code == 0 and out.startswith("0 deliveries")
    assert (await _hub(db_dsn, "webhook", "remove", sub_id))[0] == 0
    assert (await _hub(db_dsn, "webhook", "remove", sub_id))[0] == 2
