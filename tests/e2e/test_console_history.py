"""The lead's history in the console, in headless Chromium: each dialog under a divider,
a long message collapsed until opened, an edited message marked, and a name seen on
another channel one click from being the lead's name. Screenshots at 1440×900 and 390×844."""

from __future__ import annotations

from typing import Any

import asyncpg
from playwright.async_api import Browser, expect

from tests.e2e.console import login_as
from tests.e2e.test_console_calls import _accessible
from tests.e2e.test_console_day import DESKTOP, PHONE, _accept, _customer, _online, _shot


async def test_history_reads_well_over_several_dialogs(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    await _customer(base, 1, "An old question", 5550301, "Ivan")
    # Closed a week ago: a new message opens a new dialog (not the closed one again).
    await pool.execute(
        "UPDATE dialogs SET status = 'closed', closed_at = now() - interval '7 days'"
    )
    long_text = "\n".join(f"Line {n} of the contract we discussed" for n in range(60))
    await _customer(base, 2, long_text, 5550301, "Ivan")
    await pool.execute("UPDATE interactions SET edited_at = now() WHERE text = 'An old question'")
    await pool.execute("UPDATE leads SET name_suggestions = '{Ivan Petrov}'")
    for n, size in enumerate((DESKTOP, PHONE)):
        page = await browser.new_page(viewport=size)
        await login_as(page, base, "anna")
        await _online(page)
        if n == 0:
            await _accept(page)
        else:
            await page.locator(".dialog-item").first.click()
        if size is PHONE:
            await page.locator(".views .view-conversation").click()
        await expect(page.locator(".messages .divider")).to_have_count(1)
        await expect(page.locator(".message .edited")).to_have_count(1)
        more = page.locator(".message button.more")
        await expect(more).to_have_attribute("aria-expanded", "false")
        await _shot(page, "operator-history-dialogs")
        await _accessible(page)
        await more.click()
        await expect(more).to_have_attribute("aria-expanded", "true")
        if size is PHONE:
            await page.locator(".views .view-lead").click()
        card = page.locator(".lead-card")
        if n == 0:
            await card.locator(".name-suggestions button").click()
            await expect(card.locator("input[name=name]")).to_have_value("Ivan Petrov")
            await expect(card.locator(".name-suggestions")).to_have_count(0)
            assert await pool.fetchval("SELECT name FROM leads") == "Ivan Petrov"
        await page.close()


async def test_the_conversation_shows_who_had_the_dialog_when(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 31, "Who will answer me?", 5550331, "Ivan")
    await _accept(page)
    lines = page.locator(".messages .hand-over")
    await expect(lines.filter(has_text="Offered to Anna")).to_have_count(1)
    await expect(lines.filter(has_text="Anna accepted")).to_have_count(1)
    await _shot(page, "operator-hand-overs")
