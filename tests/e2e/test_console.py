"""The operator console in a real headless Chromium, end to end: a Telegram message
arrives through the fake Bot API, the offer appears, the operator accepts and replies,
the fake provider receives the reply, and the supervisor's table shows the load change."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect

from hub.app import build_app
from hub.context import Hub
from hub.runtime import build_hub
from storage import channels
from tests.conftest import OPERATOR_PASSWORD, add_operator, one_row
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.processes import free_port
from tests.fixtures.waiting import eventually

CHROMIUM = "/usr/bin/chromium"
PASSWORD = OPERATOR_PASSWORD
SECRET = "e2e-secret"
XSS = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian chromium is installed by make test"
)


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

        async def watched_page(**kwargs: Any) -> Page:
            page = await original(**kwargs)
            page.on(
                "console",
                lambda message: errors.append(f"console: {message.text}")
                if message.type == "error"
                else None,
            )
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


async def _login(page: Page, base: str, login: str) -> None:
    await page.goto(base + "/")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("header .me")).to_have_text(login.title())


async def test_operator_answers_a_telegram_customer(
    browser: Browser, site: tuple[str, FakeTelegram]
) -> None:
    base, telegram = site
    alerts: list[str] = []
    operator = await browser.new_page()

    async def on_dialog(dialog: Dialog) -> None:
        alerts.append(dialog.message)
        await dialog.dismiss()

    operator.on("dialog", on_dialog)
    supervisor = await browser.new_page()
    await _login(operator, base, "anna")
    await _login(supervisor, base, "sam")
    await operator.select_option("select.presence", "online")
    await expect(supervisor.locator("table.operators tr", has_text="Anna")).to_contain_text(
        "Online"
    )
    await expect(
        supervisor.locator("table.operators tr", has_text="Anna").locator(".load")
    ).to_have_text("0/5")

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/connectors/telegram/tg",
            json=text_update(900000001, XSS),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as reply,
    ):
        assert reply.status == 200

    offer = operator.locator(".offer")
    await expect(offer).to_contain_text("Ivan")
    await expect(offer.locator(".countdown")).to_contain_text("expires in")
    await offer.locator("button.accept").click()
    await expect(operator.locator(".dialog-item")).to_have_count(1)
    message = operator.locator(".message.in .text").first
    await expect(message).to_have_text(XSS)  # shown as text...
    assert await operator.locator(".messages img").count() == 0  # ...never as markup
    await expect(
        supervisor.locator("table.operators tr", has_text="Anna").locator(".load")
    ).to_have_text("1/5")

    await operator.fill(".composer textarea", "Здравствуйте! Чем помочь?")
    await operator.press(".composer textarea", "Control+Enter")
    await eventually(lambda: _sent(telegram))
    call = telegram.calls_of("sendMessage")[0]
    assert (call.params["chat_id"], call.params["text"]) == ("5550001", "Здравствуйте! Чем помочь?")
    await expect(operator.locator(".message.out")).to_contain_text("sent")
    assert alerts == []

    await operator.locator("button.close").click()
    await expect(operator.locator(".dialog-item")).to_have_count(0)
    await expect(
        supervisor.locator("table.operators tr", has_text="Anna").locator(".load")
    ).to_have_text("0/5")


async def _sent(telegram: FakeTelegram) -> Any:
    return telegram.calls_of("sendMessage")


async def test_console_speaks_russian_and_renders_lead_card(
    browser: Browser, site: tuple[str, FakeTelegram]
) -> None:
    base, _ = site
    page = await browser.new_page()
    await _login(page, base, "anna")
    await page.select_option("header select[aria-label=Language]", "ru")
    await expect(page.locator("header button").last).to_have_text("Выйти")
    await expect(page.locator(".dialogs h2")).to_have_text("Мои диалоги")


async def _post_update(base: str, update: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/connectors/telegram/tg",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as reply,
    ):
        assert reply.status == 200


async def test_lead_card_canned_reply_unread_and_merge(
    browser: Browser, site: tuple[str, FakeTelegram], pool: asyncpg.Pool
) -> None:
    base, telegram = site
    page = await browser.new_page()
    await _login(page, base, "anna")
    await page.select_option("select.presence", "online")
    await expect(page.locator("select.presence")).to_have_value("online")
    # A duplicate from an earlier conversation of anna's (operators see duplicates only
    # among leads they may see): same phone, no Telegram.
    other = await pool.fetchval("INSERT INTO leads (name) VALUES ('Ivan P.') RETURNING id")
    await pool.execute(
        "INSERT INTO lead_phones (lead_id, phone) VALUES ($1, '+79001234567')", other
    )
    await pool.execute(
        """INSERT INTO dialogs (lead_id, channel_id, status, operator_id, closed_at)
           SELECT $1, c.id, 'closed', o.id, now() FROM channels c, operators o
           WHERE o.login = 'anna' LIMIT 1""",
        other,
    )

    await _post_update(base, text_update(1, "first question", user_id=5550001))
    await page.locator(".offer button.accept").click()
    await expect(page.locator(".message.in .text")).to_have_text("first question")

    # Edit the lead card: the phone makes the CRM's lead a likely duplicate; merge it.
    await page.fill(".lead-card input[name=name]", "Ivan Petrov")
    await page.fill(".lead-card textarea[name=phones]", "8 900 123-45-67")
    await page.click(".lead-card button[type=submit]")
    await expect(page.locator("#toast")).to_have_text("Saved")
    await page.reload()  # the duplicates list is read when a dialog opens
    await page.locator(".dialog-item").click()
    await expect(page.locator(".dup")).to_contain_text("Ivan P.")
    await page.locator(".dup button").click()
    await expect(page.locator(".dup")).to_have_count(0)
    lead = await one_row(
        pool, "SELECT id, name FROM leads WHERE merged_into IS NULL AND id <> $1", other
    )
    assert lead["name"] == "Ivan Petrov"
    assert await pool.fetchval("SELECT merged_into FROM leads WHERE id = $1", other) == lead["id"]

    # A canned response fills in the lead's name.
    await page.select_option("select.canned", index=1)
    await expect(page.locator(".composer textarea")).to_have_value(
        "Hello, Ivan Petrov! How can I help you?"
    )
    await page.click("button.send")
    await eventually(lambda: _sent(telegram))
    assert (
        telegram.calls_of("sendMessage")[0].params["text"]
        == "Hello, Ivan Petrov! How can I help you?"
    )

    # A message in a dialog that is not open counts as unread; in the open one it shows.
    await _post_update(base, text_update(2, "second customer", user_id=5550002, first_name="Olga"))
    await page.locator(".offer button.accept").click()
    await expect(page.locator(".dialog-item")).to_have_count(2)
    await _post_update(base, text_update(3, "hello again", user_id=5550002, first_name="Olga"))
    await expect(page.locator(".dialog-item", has_text="Olga").locator(".badge")).to_have_text("2")
    await _post_update(base, text_update(4, "are you there?", user_id=5550001))
    await expect(page.locator(".message.in .text").last).to_have_text("are you there?")
    await page.locator(".dialog-item", has_text="Olga").click()
    await expect(page.locator(".dialog-item", has_text="Olga").locator(".badge")).to_have_count(0)
    await expect(page.locator(".message.in .text")).to_have_text(["second customer", "hello again"])


async def test_the_console_returns_to_the_login_form_when_the_session_ends(
    browser: Browser, site: tuple[str, FakeTelegram], pool: asyncpg.Pool
) -> None:
    """The token is revoked elsewhere (another tab signed out, an admin): the hub closes
    the socket with 4401 and the console asks to sign in again instead of reconnecting."""
    base, _ = site
    page = await browser.new_page()
    await _login(page, base, "anna")
    token = await page.evaluate("sessionStorage.getItem('hub.token')")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ) as out,
    ):
        assert out.status == 200
    await expect(page.locator("form.login input[name=login]")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('hub.token')") is None
    await page.close()
