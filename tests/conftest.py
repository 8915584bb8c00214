"""Fixtures that start real servers: PostgreSQL (embedded, and external when
`HUB_TEST_DATABASE_URL` is set), the hub's aiohttp app, and helpers to build channels
and API keys."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from hub.app import build_app
from hub.config import Settings
from hub.context import Hub
from hub.domain import Channel
from hub.runtime import build_hub
from storage import apikeys, channels, operators
from storage.database import create_pool
from tests.fakes.crm import Receiver
from tests.fakes.pbx import FakePbx
from tests.fakes.telegram import FakeTelegram
from tests.fakes.viber import FakeViber
from tests.fakes.vk import FakeVk
from tests.fixtures.dovecot import Dovecot, dovecot_server
from tests.fixtures.mailbox import SmtpCapture, smtp_server
from tests.fixtures.postgres import PgServer, embedded_server, external_server
from webhooks.signing import new_secret

os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/hub-runtime-{os.getuid()}")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)

VK_GROUP = 218000000
_SERVERS = ["embedded"] + (["external"] if os.environ.get("HUB_TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session", params=_SERVERS)
def pg_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PgServer]:
    if request.param == "external":
        yield from external_server(os.environ["HUB_TEST_DATABASE_URL"])
    else:
        yield from embedded_server(tmp_path_factory.mktemp("pg"))


@pytest.fixture
async def db_dsn(pg_server: PgServer) -> AsyncIterator[str]:
    dsn = await pg_server.create_database()
    yield dsn
    await pg_server.drop_database(dsn)


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_dsn, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
def settings(db_dsn: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_dsn, data_dir=tmp_path / "data", public_url="http://hub.test")


@pytest.fixture
def hub(settings: Settings, pool: asyncpg.Pool, db_dsn: str) -> Hub:
    return build_hub(settings, pool, db_dsn, supervise_every=0.2)


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(hub))) as client:
        yield client


def with_settings(hub: Hub, **changes: Any) -> Hub:
    return build_hub(replace(hub.settings, **changes), hub.pool, hub.dsn, supervise_every=0.2)


async def add_form(pool: asyncpg.Pool, name: str = "site", **values: str) -> Channel:
    async with pool.acquire() as conn:
        return await channels.create(conn, "form", name, values)


@pytest.fixture
async def form(pool: asyncpg.Pool) -> Channel:
    return await add_form(pool, "site", rate_limit="0")


@pytest.fixture
async def api_key(pool: asyncpg.Pool) -> str:
    _, secret = await apikeys.create(
        pool, "crm", ["leads", "dialogs", "unsorted", "webhooks", "reports"]
    )
    return secret


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
async def fake_telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    """tests/fakes/telegram.py listening on loopback, and its base URL (the `api_base`)."""
    telegram = FakeTelegram()
    server = TestServer(telegram.app)
    await server.start_server()
    yield telegram, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def fake_viber() -> AsyncIterator[tuple[FakeViber, str]]:
    """tests/fakes/viber.py listening on loopback, and its base URL (the `api_base`)."""
    viber = FakeViber()
    server = TestServer(viber.app)
    await server.start_server()
    yield viber, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str, str]]:
    """A CRM's webhook endpoint (tests/fakes/crm.py) on loopback: it, its URL, its secret."""
    secret = new_secret()
    crm = Receiver(secret)
    server = TestServer(crm.app)
    await server.start_server()
    yield crm, str(server.make_url("/hooks")), secret
    await server.close()


@pytest.fixture
async def fake_pbx() -> AsyncIterator[FakePbx]:
    """tests/fakes/pbx.py (Zadarma's and Mango's recording APIs, plain files) on loopback."""
    pbx = FakePbx()
    server = TestServer(pbx.app)
    await server.start_server()
    pbx.base = str(server.make_url("")).rstrip("/")
    yield pbx
    await server.close()


async def add_telegram(
    pool: asyncpg.Pool,
    telegram: FakeTelegram,
    base: str,
    secret: str,
    name: str = "tg",
    **extra: str,
) -> Channel:
    """A Telegram channel in webhook mode on the fake Bot API at `base`."""
    async with pool.acquire() as conn:
        return await channels.create(
            conn,
            "telegram",
            name,
            {"token": telegram.token, "secret_token": secret, "api_base": base, **extra},
        )


async def add_vk(pool: asyncpg.Pool, vk: FakeVk, name: str = "club") -> Channel:
    """A VK community channel (Callback API, secret `s3cr3t`) on the fake VK API."""
    async with pool.acquire() as conn:
        return await channels.create(
            conn,
            "vk",
            name,
            {
                "token": vk.token,
                "group_id": str(VK_GROUP),
                "confirmation": "c0nf",
                "secret": "s3cr3t",
                "api_base": vk.base,
            },
        )


OPERATOR_PASSWORD = "correct horse battery"
_PASSWORD_HASH: list[str] = []


async def add_operator(
    pool: asyncpg.Pool,
    login: str,
    *,
    role: str = "operator",
    max_dialogs: int = 5,
    skills: tuple[str, ...] = (),
    extension: str | None = None,
    online: bool = False,
) -> int:
    """An operator who signs in with `OPERATOR_PASSWORD` (hashed once per test run: argon2
    is slow on purpose)."""
    if not _PASSWORD_HASH:
        _PASSWORD_HASH.append(PasswordHasher().hash(OPERATOR_PASSWORD))
    op = await operators.create(
        pool,
        login=login,
        name=login.title(),
        role=role,
        skills=skills,
        max_dialogs=max_dialogs,
        extension=extension,
        password_hash=_PASSWORD_HASH[0],
    )
    if online:
        await operators.set_presence(pool, op.id, "online")
    return op.id


async def operator_token(client: TestClient[Any, Any], login: str) -> dict[str, str]:
    """The headers of an operator signed in through the API (`add_operator`'s password)."""
    reply = await client.post(
        "/api/v1/auth/login", json={"login": login, "password": OPERATOR_PASSWORD}
    )
    assert reply.status == 200, await reply.text()
    return {"Authorization": f"Bearer {(await reply.json())['token']}"}


async def form_lead(
    client: TestClient[Any, Any], pool: asyncpg.Pool, held_by: int | None, **fields: str
) -> int:
    """A lead made by a site-form submission; its dialog held by `held_by` when given."""
    reply = await client.post("/forms/site", json=fields)
    assert reply.status == 201, await reply.text()
    body = await reply.json()
    if held_by is not None:
        await pool.execute(
            "UPDATE dialogs SET status = 'assigned', operator_id = $2 WHERE id = $1",
            body["dialog_id"],
            held_by,
        )
    lead_id: int = body["lead_id"]
    return lead_id


async def one_row(db: asyncpg.Pool | asyncpg.Connection, sql: str, *args: Any) -> asyncpg.Record:
    """The one row a query must find."""
    row = await db.fetchrow(sql, *args)
    assert row is not None, sql
    return row


@pytest.fixture
async def fake_vk() -> AsyncIterator[FakeVk]:
    """tests/fakes/vk.py listening on loopback; its `base` is the channel's `api_base`."""
    vk = FakeVk(group_id=VK_GROUP)
    server = TestServer(vk.app)
    await server.start_server()
    vk.base = str(server.make_url("")).rstrip("/")
    yield vk
    await server.close()


async def count(pool: asyncpg.Pool, table: str) -> int:
    assert table.isidentifier()
    value: int = await pool.fetchval(f"SELECT count(*) FROM {table}")
    return value


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot IMAP server on loopback for the whole run (tests/fixtures/dovecot.py)."""
    yield from dovecot_server()


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpCapture, int]]:
    """A real SMTP server (aiosmtpd) on loopback keeping what it was given."""
    yield from smtp_server()
