"""The admin pages in headless Chromium, at both sizes: channels (a form built from the
kind's settings, the live state, removal), operators (added, disabled, enabled), queues
(hours with a break and a holiday), canned responses and API keys (shown once, revoked).
Screenshots of each tab; axe in light and dark."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
from playwright.async_api import Browser, Page, expect

from tests.conftest import add_operator
from tests.e2e.console import login_as
from tests.e2e.test_console_calls import _accessible
from tests.e2e.test_console_day import DESKTOP, PHONE, _shot


async def _tab(page: Page, name: str) -> None:
    await page.locator(f".admin-tabs .tab-{name}").click()
    await expect(page.locator(f".admin-tabs .tab-{name}")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(".admin-table, .admin-section .empty").first).to_be_visible()


async def test_an_admin_runs_the_hub_from_the_browser(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    await add_operator(pool, "root", role="admin")
    # Operators and supervisors have no admin pages.
    for login in ("anna", "sam"):
        other = await browser.new_page(viewport=DESKTOP)
        await login_as(other, base, login)
        await expect(other.locator("header .admin-switch")).to_have_count(0)
        await other.close()

    for n, size in enumerate((DESKTOP, PHONE)):
        page = await browser.new_page(viewport=size)
        await login_as(page, base, "root")
        await page.locator("header .admin-switch").click()

        # Channels: the Telegram bot of the site is listed with its state; a form is added
        # from its kind's settings, then removed.
        await expect(page.locator(".channels-table tr[data-channel=tg] .state")).to_be_visible()
        await page.locator(".admin-section .add").click()
        # The form is the kind's settings: a bot token is a secret (a password field).
        await page.locator(".kind-pick select").select_option("telegram")
        form = page.locator("#channel-form")
        await expect(form.locator("input[name='s.token']")).to_have_attribute("type", "password")
        await expect(form.locator("select[name='s.mode']")).to_be_visible()
        await _shot(page, "admin-channel-form")
        await _accessible(page)
        await page.locator(".kind-pick select").select_option("form")
        await form.locator("input[name=name]").fill(f"landing{n}")
        await form.locator("input[name='s.subject']").fill("Landing page")
        await form.locator("button[type=submit]").click()
        row = page.locator(f".channels-table tr[data-channel=landing{n}]")
        await expect(row.locator(".state")).to_have_text("listening")
        await expect(row).to_contain_text(f"/forms/landing{n}")
        await _shot(page, "admin-channels")
        await _accessible(page)
        await row.locator("button.edit").click()
        await form.locator("input[name='s.subject']").fill("Landing page 2")
        await form.locator("button[type=submit]").click()
        await expect(form).to_have_count(0)  # closed once saved
        settings = await pool.fetchval(
            "SELECT settings FROM channels WHERE name = $1", f"landing{n}"
        )
        assert settings["subject"] == "Landing page 2"
        # Disabled and enabled again from the page.
        await row.locator("button.disable").click()
        await row.locator("button.disable").click()
        await expect(row.locator(".state")).to_have_text("disabled")
        assert await _posts(base, f"/forms/landing{n}") == 404
        await row.locator("button.enable").click()
        await expect(row.locator(".state")).to_have_text("listening")
        assert await _posts(base, f"/forms/landing{n}") == 201
        await row.locator("button.remove").click()
        await row.locator("button.remove").click()  # asked once more
        # It has a dialog now: kept for its history, disabled, and the page says so.
        await expect(row.locator(".state")).to_have_text("disabled")
        await expect(page.locator(".once")).to_contain_text("kept, disabled")
        await page.locator(".once button").click()

        # Operators: added, disabled (they cannot sign in), enabled again.
        await _tab(page, "operators")
        await page.locator(".admin-section .add").click()
        form = page.locator("#operator-form")
        await form.locator("input[name=login]").fill(f"olga{n}")
        await form.locator("input[name=name]").fill(f"Olga {n}")
        await form.locator("select[name=role]").select_option("supervisor")
        await form.locator("input[name=skills]").fill("ru, sales")
        await form.locator("input[name=password]").fill("a long password")
        await form.locator("button[type=submit]").click()
        row = page.locator(f".operators-table tr[data-login=olga{n}]")
        await expect(row).to_contain_text(f"Olga {n}")
        await _shot(page, "admin-operators")
        await _accessible(page)
        await row.locator("button.disable").click()
        await row.locator("button.disable").click()
        await expect(row).to_have_class("disabled-row")
        assert await _signs_in(base, f"olga{n}", "a long password") == 401
        await row.locator("button.enable").click()
        await expect(row).not_to_have_class("disabled-row")
        assert await _signs_in(base, f"olga{n}", "a long password") == 200
        # Edited, and given a new password.
        await row.locator("button.edit").click()
        await form.locator("input[name=max_dialogs]").fill("8")
        await form.locator("input[name=password]").fill("another long one")
        await form.locator("button[type=submit]").click()
        await expect(form).to_have_count(0)
        await expect(row).to_contain_text("8")
        await expect(row).to_contain_text("Supervisor")  # the role shown was the role kept
        assert await _signs_in(base, f"olga{n}", "a long password") == 401
        assert await _signs_in(base, f"olga{n}", "another long one") == 200

        # Queues: hours with a lunch break and a holiday.
        await _tab(page, "queues")
        await page.locator(".admin-section .add").click()
        form = page.locator("#queue-form")
        await form.locator("input[name=name]").fill(f"sales{n}")
        await form.locator("input[name=channels][value=tg]").check()
        await form.locator("input[name=hours]").fill(
            "mon-fri 09:00-13:00; mon-fri 14:00-18:00; closed 2026-12-31"
        )
        await form.locator("input[name=timezone]").fill("Europe/Moscow")
        await form.locator("textarea[name=auto_reply]").fill("Back after lunch")
        await form.locator("button[type=submit]").click()
        row = page.locator(f".queues-table tr[data-queue=sales{n}]")
        await expect(row).to_contain_text("closed 2026-12-31")
        await _shot(page, "admin-queues")
        await _accessible(page)
        # A mistyped zone is refused, worded.
        await row.locator("button.edit").click()
        await form.locator("input[name=timezone]").fill("Mars/Olympus")
        await form.locator("button[type=submit]").click()
        await expect(page.locator("#toast")).to_contain_text("time zone")
        await form.locator("button", has_text="Cancel").click()
        await row.locator("button.remove").click()
        await row.locator("button.remove").click()
        await expect(row).to_have_count(0)

        # Canned responses.
        await _tab(page, "canned")
        await page.locator(".admin-section .add").click()
        form = page.locator("#canned-form")
        await form.locator("input[name=title]").fill(f"Delivery {n}")
        await form.locator("textarea[name=text]").fill("We deliver on weekdays, {name}.")
        await form.locator("button[type=submit]").click()
        row = page.locator(f".canned-table tr[data-title='Delivery {n}']")
        await expect(row).to_be_visible()
        await _shot(page, "admin-canned")
        await _accessible(page)
        await row.locator("button.edit").click()
        await form.locator("textarea[name=text]").fill("We deliver every day, {name}.")
        await form.locator("button[type=submit]").click()
        await expect(row.locator(".canned-text")).to_have_text("We deliver every day, {name}.")
        await row.locator("button.remove").click()
        await row.locator("button.remove").click()
        await expect(row).to_have_count(0)

        # API keys: shown once, working, then revoked.
        await _tab(page, "apikeys")
        await page.locator(".admin-section .add").click()
        form = page.locator("#key-form")
        await form.locator("input[name=name]").fill(f"crm{n}")
        await form.locator("button[type=submit]").click()
        shown = await page.locator(".once pre").inner_text()
        key = shown.split()[-1]
        assert key.startswith("hub_")
        assert await _get(base, key) == 200
        row = page.locator(f".keys-table tr[data-key=crm{n}]")
        await expect(row).to_contain_text("dialogs, leads, reports, unsorted, webhooks")
        await _shot(page, "admin-keys")
        await _accessible(page)
        await row.locator("button.revoke").click()
        await row.locator("button.revoke").click()
        await expect(row).to_contain_text("revoked")
        assert await _get(base, key) == 401
        assert key not in await page.locator(".keys-table").inner_text()
        # In Russian too.
        await page.select_option("header select[aria-label=Language]", "ru")
        await expect(page.locator(".admin-tabs .tab-channels")).to_have_text("Каналы")
        await expect(page.locator(".admin-head .add")).to_have_text("Создать ключ")
        await page.select_option("header select[aria-label='Язык']", "en")
        await page.close()


async def _signs_in(base: str, login: str, password: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/api/v1/auth/login", json={"login": login, "password": password}
        ) as reply,
    ):
        return reply.status


async def _posts(base: str, path: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}{path}", json={"name": "Test", "phone": "+79160001234"}) as reply,
    ):
        return reply.status


async def _get(base: str, key: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/api/v1/leads", headers={"Authorization": f"Bearer {key}"}) as reply,
    ):
        return reply.status
