"""The operator console in a real headless Chromium, end to end: a Telegram message
arrives through the fake Bot API, the offer appears, the operator accepts and replies,
the fake provider receives the reply, and the supervisor's table shows the load change."""

from __future__ import annotations

import aiohttp
import asyncpg
from playwright.async_api import Browser, Dialog, expect

from tests.conftest import one_row
from tests.e2e.console import SECRET, XSS, login_as, post_update, sent_messages
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.waiting import eventually


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
    await login_as(operator, base, "anna")
    await login_as(supervisor, base, "sam")
    await supervisor.locator("header .page-switch").click()  # the desk
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
    await eventually(lambda: sent_messages(telegram))
    call = telegram.calls_of("sendMessage")[0]
    assert (call.params["chat_id"], call.params["text"]) == ("5550001", "Здравствуйте! Чем помочь?")
    await expect(operator.locator(".message.out")).to_contain_text("sent")
    assert alerts == []

    await operator.locator("button.close").click()
    await expect(operator.locator(".dialog-item")).to_have_count(0)
    await expect(
        supervisor.locator("table.operators tr", has_text="Anna").locator(".load")
    ).to_have_text("0/5")


async def test_console_speaks_russian_and_renders_lead_card(
    browser: Browser, site: tuple[str, FakeTelegram]
) -> None:
    base, _ = site
    page = await browser.new_page()
    await login_as(page, base, "anna")
    await page.select_option("header select[aria-label=Language]", "ru")
    await expect(page.locator("header button").last).to_have_text("Выйти")
    await expect(page.locator(".dialogs h2")).to_have_text("Мои диалоги")


async def test_lead_card_canned_reply_unread_and_merge(
    browser: Browser, site: tuple[str, FakeTelegram], pool: asyncpg.Pool
) -> None:
    base, telegram = site
    page = await browser.new_page()
    await login_as(page, base, "anna")
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

    await post_update(base, text_update(1, "first question", user_id=5550001))
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
    await eventually(lambda: sent_messages(telegram))
    assert (
        telegram.calls_of("sendMessage")[0].params["text"]
        == "Hello, Ivan Petrov! How can I help you?"
    )

    # A message in a dialog that is not open counts as unread; in the open one it shows.
    await post_update(base, text_update(2, "second customer", user_id=5550002, first_name="Olga"))
    await page.locator(".offer button.accept").click()
    await expect(page.locator(".dialog-item")).to_have_count(2)
    await post_update(base, text_update(3, "hello again", user_id=5550002, first_name="Olga"))
    await expect(page.locator(".dialog-item", has_text="Olga").locator(".badge")).to_have_text("2")
    await post_update(base, text_update(4, "are you there?", user_id=5550001))
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
    await login_as(page, base, "anna")
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
