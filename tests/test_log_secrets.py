"""A whole run of `hub serve` logging JSON at DEBUG, with every kind of secret configured
and used (bot tokens and webhook secrets, a mailbox password the hub fails to log in with,
the metrics token, an API key, an operator's password): no line holds any of them, and
every line is one JSON object with the node and a trace id field."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from storage import apikeys, channels
from tests.conftest import OPERATOR_PASSWORD, add_operator, add_telegram, add_vk
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fakes.viber import FakeViber, sign
from tests.fakes.vk import FakeVk
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.processes import HubProcess
from tests.fixtures.waiting import eventually

METRICS_TOKEN = "metrics-token-7d1f0c2a9b"
TG_SECRET = "tg-webhook-secret-51c3e"
MAIL_PASSWORD = "imap-pa55word-9e2b"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port  # closed again when the socket is: a mailbox nobody answers at


async def test_a_whole_run_logs_no_secret(
    db_dsn: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
    fake_telegram: tuple[FakeTelegram, str],
    fake_vk: FakeVk,
    fake_viber: tuple[FakeViber, str],
    dovecot: Dovecot,
) -> None:
    telegram, tg_base = fake_telegram
    viber, viber_base = fake_viber
    await add_telegram(pool, telegram, tg_base, TG_SECRET)
    await add_vk(pool, fake_vk)
    async with pool.acquire() as conn:
        await channels.create(
            conn, "viber", "vb", {"auth_token": viber.token, "api_base": viber_base}
        )
        await channels.create(
            conn,
            "email",
            "mail",
            {
                "imap_host": dovecot.host,
                "imap_port": str(dovecot.port),
                "imap_security": "plain",
                "smtp_host": "127.0.0.1",
                "smtp_port": str(_closed_port()),
                "smtp_security": "plain",
                "username": dovecot.user,
                "password": MAIL_PASSWORD,  # not the mailbox's: the login fails
                "from_address": "sales@example.test",
            },
        )
        await channels.create(conn, "form", "site", {"rate_limit": "0"})
    _, api_key = await apikeys.create(pool, "crm", ["leads"])
    await add_operator(pool, "anna")
    log = tmp_path / "hub.log"
    hub = HubProcess(
        {
            "HUB_DATABASE_URL": db_dsn,
            "HUB_DATA_DIR": str(tmp_path / "data"),
            "HUB_LOG_FORMAT": "json",
            "HUB_LOG_LEVEL": "DEBUG",
            "HUB_METRICS_TOKEN": METRICS_TOKEN,
            "HUB_WEBHOOK_ALLOW_PRIVATE": "1",
        },
        tmp_path,
        log,
    )
    hub.start()
    try:
        async with aiohttp.ClientSession(base_url=hub.url) as http:
            await _traffic(http, viber, api_key)
            # The mailbox is tried by the channel runner meanwhile, and refuses the login.
            await eventually(lambda: _said(log, "mail"), timeout=15)
    finally:
        hub.stop()

    text = log.read_text()
    secrets = {
        "telegram token": telegram.token,
        "telegram secret": TG_SECRET,
        "vk token": fake_vk.token,
        "vk secret": "s3cr3t",
        "viber token": viber.token,
        "mail password": MAIL_PASSWORD,
        "metrics token": METRICS_TOKEN,
        "api key": api_key,
        "operator password": OPERATOR_PASSWORD,
    }
    leaked = {name for name, value in secrets.items() if value in text}
    assert not leaked, leaked
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) > 10  # DEBUG: the run did say things
    assert all({"time", "level", "logger", "message", "node", "trace_id"} <= set(x) for x in lines)
    # Every line, the start-up one included, is a JSON object.
    assert all(line.startswith("{") for line in text.splitlines() if line.strip())
    assert any(x["trace_id"] for x in lines)


async def _traffic(http: aiohttp.ClientSession, viber: FakeViber, api_key: str) -> None:
    async def ok(reply: aiohttp.ClientResponse, *statuses: int) -> Any:
        assert reply.status in statuses, await reply.text()
        return await reply.read()

    tg = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    await ok(await http.post("/connectors/telegram/tg", json=text_update(1, "hi"), headers=tg), 200)
    wrong = {"X-Telegram-Bot-Api-Secret-Token": "nope"}
    await ok(
        await http.post("/connectors/telegram/tg", json=text_update(2, "x"), headers=wrong), 401
    )
    event = {
        "event": "message",
        "timestamp": 1700000000000,
        "message_token": 5001,
        "sender": {"id": "01234567890A=", "name": "Ivan"},
        "message": {"type": "text", "text": "hello"},
    }
    body = json.dumps(event).encode()
    signed = {
        "X-Viber-Content-Signature": sign(viber.token, body),
        "Content-Type": "application/json",
    }
    await ok(await http.post("/connectors/viber/vb", data=body, headers=signed), 200)
    await ok(await http.post("/forms/site", json={"phone": "+79160000001", "message": "hi"}), 201)
    auth = {"Authorization": f"Bearer {api_key}"}
    await ok(await http.get("/api/v1/leads", headers=auth), 200)
    await ok(await http.get("/api/v1/leads", headers={"Authorization": "Bearer hub_wrong"}), 401)
    login = {"login": "anna", "password": OPERATOR_PASSWORD}
    await ok(await http.post("/api/v1/auth/login", json=login), 200)
    await ok(await http.post("/api/v1/auth/login", json={**login, "password": "bad"}), 401)
    await ok(await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}), 200)
    await ok(await http.get("/metrics"), 401)


async def _said(log: Path, channel: str) -> bool:
    """The channel runner has reported the mailbox's failure."""
    return any(
        json.loads(line).get("level") in ("WARNING", "ERROR") and channel in line
        for line in log.read_text().splitlines()
        if line.startswith("{")
    )
