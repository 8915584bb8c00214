"""An internal note in the console, in headless Chromium: written in the composer with
"Note", shown in the conversation marked as a note, never sent to the customer, and the
customer still waits for an answer. Screenshots at 1440×900 and 390×844."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.e2e.console import XSS, login_as
from tests.e2e.test_console_calls import _accessible
from tests.e2e.test_console_day import DESKTOP, PHONE, _accept, _customer, _online, _shot


async def test_a_note_stays_in_the_conversation_and_is_never_sent(
    browser: Browser, site: tuple[str, Any]
) -> None:
    base, telegram = site
    for n, size in enumerate((DESKTOP, PHONE)):
        page = await browser.new_page(viewport=size)
        await login_as(page, base, "anna")
        await _online(page)
        await _customer(base, n + 1, "Can you deliver on Friday?", 5550201 + n, "Ivan")
        await _accept(page)
        if size is PHONE:
            await page.locator(".views .view-conversation").click()
        await page.fill(".composer textarea", f"Ask the warehouse first {XSS}")
        await page.locator(".composer .add-note").click()
        note = page.locator(".message.note")
        await expect(note).to_have_count(1)
        await expect(note.locator(".note-label")).to_be_visible()
        await expect(note.locator(".text")).to_have_text(f"Ask the warehouse first {XSS}")
        assert await note.locator("img").count() == 0
        await expect(page.locator(".composer textarea")).to_have_value("")
        await _shot(page, "operator-note")
        await _accessible(page)
        assert telegram.calls_of("sendMessage") == []
        await page.close()


async def test_the_tab_title_counts_unread_messages(
    browser: Browser, site: tuple[str, Any]
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 11, "first", 5550211, "Ivan")
    await _accept(page)
    await _customer(base, 12, "second", 5550212, "Olga")
    await _accept(page)
    await page.locator(".dialog-item", has_text="Olga").click()
    await expect(page).to_have_title("Contact hub")
    await _customer(base, 13, "Ivan again", 5550211, "Ivan")
    await _customer(base, 14, "and again", 5550211, "Ivan")
    await expect(page).to_have_title("(2) Contact hub")
    await page.locator(".dialog-item", has_text="Ivan").click()
    await expect(page).to_have_title("Contact hub")


async def test_a_slash_in_the_reply_box_picks_a_canned_response(
    browser: Browser, site: tuple[str, Any]
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=PHONE)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 21, "Hello there", 5550221, "Ivan")
    await _accept(page)
    await page.locator(".views .view-conversation").click()
    await expect(page.locator(".lead-card input[name=name]")).to_have_value("Ivan")
    box = page.locator(".composer textarea")
    await box.fill("/thank")
    choices = page.locator(".canned-picker .canned-choice")
    await expect(choices).to_have_count(1)
    await expect(choices.locator("strong")).to_have_text("Thanks")
    await _shot(page, "operator-canned-picker")
    await box.press("Enter")
    await expect(box).to_have_value("Thank you for contacting us, Ivan. — Anna")
    await expect(page.locator(".canned-picker")).to_have_count(0)
