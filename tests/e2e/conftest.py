"""The console's browser tests: a real headless Chromium against a hub serving on loopback
with a Telegram channel on the fake Bot API, an operator and a supervisor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from hub.app import build_app
from hub.context import Hub
from hub.runtime import build_hub
from storage import channels
from tests.conftest import add_operator
from tests.e2e.console import CHROMIUM, SECRET, SKIP_WITHOUT_CHROMIUM
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.processes import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test is skipped where Debian's chromium is missing (`make test`
    installs it)."""
    for item in items:
        if "e2e" in item.nodeid:
            item.add_marker(SKIP_WITHOUT_CHROMIUM)


@pytest.fixture
async def browser(site: tuple[str, FakeTelegram]) -> AsyncIterator[Browser]:
    """Chromium whose every page fails the test on a console error or an uncaught page
    error (a CSP violation, a 404 resource, a script error). It is closed before the hub
    (it depends on `site`), so the hub going away is not a page's error."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        errors: list[str] = []
        original = browser.new_page

        def on_console(message: ConsoleMessage) -> None:
            # The API refusing a request (a stale token's 401, a 409 or 422 the console
            # words for the operator) is logged by Chromium too; it is not a page error.
            refused = any(f"status of {code}" in message.text for code in (401, 409, 422))
            if message.type == "error" and not refused:
                errors.append(f"console: {message.text}")

        async def watched_page(**kwargs: Any) -> Page:
            page = await original(**kwargs)
            page.on("console", on_console)
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            return page

        browser.new_page = watched_page  # type: ignore[method-assign]
        yield browser
        await browser.close()
        assert not errors, "\n".join(errors)


@pytest.fixture
async def site(hub: Hub, pool: asyncpg.Pool) -> AsyncIterator[tuple[str, FakeTelegram]]:
    telegram = FakeTelegram()
    fake = TestServer(telegram.app)
    await fake.start_server()
    async with pool.acquire() as conn:
        await channels.create(
            conn,
            "telegram",
            "tg",
            {
                "token": telegram.token,
                "secret_token": SECRET,
                "mode": "webhook",
                "api_base": str(fake.make_url("")).rstrip("/"),
            },
        )
    for login, role in (("anna", "operator"), ("sam", "supervisor")):
        await add_operator(pool, login, role=role)
    port = free_port()
    live = build_hub(
        replace(hub.settings, public_url=f"http://127.0.0.1:{port}"),
        pool,
        hub.dsn,
        supervise_every=0.2,
    )
    server = TestServer(build_app(live), port=port)
    await server.start_server()
    yield f"http://127.0.0.1:{port}", telegram
    await server.close()
    await fake.close()
