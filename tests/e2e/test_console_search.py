"""Search in the console, in headless Chromium: "/" opens the box, a name or words of a
message find the lead and the message as the operator types, the customer's words stay text,
a result opens the lead's history. Screenshots at 1440×900 and 390×844."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
from playwright.async_api import Browser, Page, expect

from tests.conftest import add_form
from tests.e2e.console import XSS, login_as
from tests.e2e.test_console_calls import _accessible
from tests.e2e.test_console_day import DESKTOP, PHONE, _accept, _customer, _online, _shot
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.waiting import eventually


async def _sent(telegram: FakeTelegram, text: str) -> bool:
    return any(c.params.get("text") == text for c in telegram.calls_of("sendMessage"))


async def _search(page: Page, text: str) -> None:
    await page.locator("body").press("/")
    box = page.locator(".search input")
    await expect(box).to_be_focused()
    await box.fill(text)


async def test_a_supervisor_finds_a_lead_and_a_message_and_opens_the_history(
    browser: Browser, site: tuple[str, Any]
) -> None:
    base, telegram = site
    await _customer(base, 1, f"Where is my order? {XSS}", 5550101, name="Ivan")
    await _customer(base, 2, "What is the price of the green sofa?", 5550102, name="Olga")
    for size in (DESKTOP, PHONE):
        page = await browser.new_page(viewport=size)
        await login_as(page, base, "sam")
        await _search(page, "green so")
        found = page.locator(".found-message")
        await expect(found).to_have_count(1)
        await expect(found.locator(".dialog-name")).to_have_text("Olga")
        await expect(found.locator(".found-text")).to_contain_text("price of the green sofa")
        await expect(found.locator("mark")).to_have_text(["green", "so"])
        await _shot(page, "operator-search")
        await _accessible(page)
        await found.click()
        await expect(page.locator(".lead-card input[name=name]")).to_have_value("Olga")
        if size is DESKTOP:  # her history to read, and a first message on her channel
            history = page.locator(".lead-history")
            await expect(history.locator(".message.in .text")).to_have_text(
                "What is the price of the green sofa?"
            )
            await history.locator("textarea").fill("It is in stock, 300 EUR")
            await history.locator("button.send").click()
            await expect(history.locator(".message.out .text")).to_have_text(
                "It is in stock, 300 EUR"
            )
            await eventually(lambda: _sent(telegram, "It is in stock, 300 EUR"))
            await _shot(page, "operator-lead-history")
        await _search(page, "order")
        await expect(page.locator(".found-message .found-text")).to_contain_text(XSS)
        assert await page.locator(".search-results img").count() == 0  # text, never HTML
        await _search(page, "ivan")
        await expect(page.locator(".found-lead .dialog-name")).to_have_text("Ivan")
        await _search(page, "nothing like this")
        await expect(page.locator(".search-results .empty").first).to_be_visible()
        await page.locator(".search input").press("Escape")
        await expect(page.locator(".search-results")).to_have_count(0)
        await page.close()


async def test_an_operator_finds_only_their_own_customers(
    browser: Browser, site: tuple[str, Any]
) -> None:
    base, _ = site
    await _customer(base, 3, "a private question about invoices", 5550103, name="Boris")
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")  # not offered, not holding Boris's dialog
    await _search(page, "invoices")
    await expect(page.locator(".search-results")).to_be_visible()
    await expect(page.locator(".found-message")).to_have_count(0)
    await expect(page.locator(".found-lead")).to_have_count(0)


async def test_the_dialog_list_narrows_to_one_channel(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    await add_form(pool, "site", rate_limit="0")
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 4, "hello", 5550104, name="Ivan")
    await _accept(page)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/forms/site", json={"name": "Olga", "phone": "+79035550104"}) as r,
    ):
        assert r.status == 201
    await _accept(page)
    items = page.locator(".dialog-item .dialog-name")
    await expect(items).to_have_count(2)
    await page.select_option("select.channel-filter", "tg")
    await expect(items).to_have_text(["Ivan"])
    await page.reload()  # the choice is remembered
    await expect(page.locator("select.channel-filter")).to_have_value("tg")
    await expect(items).to_have_text(["Ivan"])
    await page.select_option("select.channel-filter", "site")
    await expect(items).to_have_text(["Olga"])
    await page.select_option("select.channel-filter", "")
    await expect(items).to_have_count(2)


async def test_the_dialog_list_narrows_by_status(browser: Browser, site: tuple[str, Any]) -> None:
    """Open, awaiting a reply, or closed recently (newest first, opened as history)."""
    base, _ = site
    for n, size in enumerate((DESKTOP, PHONE)):
        page = await browser.new_page(viewport=size)
        await login_as(page, base, "anna")
        await _online(page)
        first, second = f"Ivan{n}", f"Olga{n}"
        await _customer(base, 30 + 2 * n, "hello", 5550130 + 2 * n, name=first)
        await _accept(page)
        if size is PHONE:  # the first accepted opens at once; offers are on the list
            await page.locator(".views .view-list").click()
        await _customer(base, 31 + 2 * n, "hi there", 5550131 + 2 * n, name=second)
        await _accept(page)
        items = page.locator(".dialog-item .dialog-name")
        await expect(items).to_have_count(2 + n)  # the last round's answered one stays open
        # Answer Ivan: only Olga awaits a reply.
        await page.locator(".dialog-item", has_text=first).click()
        await page.locator(".composer textarea").fill("Hello!")
        await page.locator(".composer button.send").click()
        await expect(page.locator(".message.out")).to_have_count(1)
        if size is PHONE:
            await page.locator(".views .view-list").click()
        await page.select_option("select.status-filter", "waiting")
        await expect(items).to_have_text([second])
        # Close Olga's: she is among the recently closed, and opens as her history.
        await page.locator(".dialog-item", has_text=second).click()
        await page.locator(".conv-head button.close").click()
        if size is PHONE:
            await page.locator(".views .view-list").click()
        await page.select_option("select.status-filter", "closed")
        closed = page.locator(".closed-items .dialog-name")
        await expect(closed.first).to_have_text(second)
        await _shot(page, "operator-closed-dialogs")
        await page.reload()  # remembered
        await expect(page.locator("select.status-filter")).to_have_value("closed")
        await page.locator(".closed-items .dialog-item", has_text=second).click()
        await expect(page.locator(".lead-history .message.in .text")).to_have_text(["hi there"])
        if size is PHONE:
            await page.locator(".views .view-list").click()
        await page.select_option("select.status-filter", "open")
        await expect(items.filter(has_text=first)).to_have_count(1)
        await expect(items.filter(has_text=second)).to_have_count(0)
        await page.close()


async def test_the_lead_card_says_where_the_lead_came_from(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    await add_form(pool, "site", rate_limit="0")
    for n, size in enumerate((DESKTOP, PHONE)):
        page = await browser.new_page(viewport=size)
        await login_as(page, base, "anna")
        await _online(page)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/forms/site",
                data={
                    "name": f"Ivan {n}",
                    "phone": f"+7916555070{n}",
                    "_page": f"https://shop.example/sofa?utm_source=yandex&utm_campaign={XSS}",
                    "_referrer": "https://yandex.ru/search",
                },
                headers={"Accept": "application/json"},
            ) as reply,
        ):
            assert reply.status == 201
        await _accept(page)
        if size is PHONE:
            await page.locator(".views .view-lead").click()
        source = page.locator(".lead-source")
        await expect(source).to_contain_text("Site form · site")
        await expect(source.locator("dd", has_text="yandex").first).to_be_visible()
        await expect(source).to_contain_text(f"utm_campaign{XSS}")
        assert await source.locator("img").count() == 0  # the visitor's text, never markup
        await _shot(page, "operator-lead-source")
        await _accessible(page)
        await page.close()
