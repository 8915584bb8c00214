"""A phone call in the console, in headless Chromium: the screen pop shows the caller's card
with recent history while it rings, follows the call (answered, ended), opens the lead; a
missed call comes back as a "call back" offer; the answered call's recording plays in the
conversation. Screenshots at 1440×900 and 390×844."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, expect

from storage import channels
from tests.e2e.console import login_as
from tests.e2e.test_console_day import DESKTOP, PHONE, _online, _shot
from tests.fakes.pbx import FakePbx

TOKEN = "cti-e2e"


async def _accessible(page: Page) -> None:
    """No serious or critical axe violation, in light mode and dark."""
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        results = await Axe().run(page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{scheme}: {bad}"
    await page.emulate_media(color_scheme="light")


async def _cti(base: str, **event: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/connectors/pbx/office?token={TOKEN}", json=event) as reply,
    ):
        assert reply.status == 200, await reply.text()
        answer: dict[str, Any] = await reply.json()
        return answer


async def test_a_call_pops_the_callers_card_and_its_recording_plays(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool, fake_pbx: FakePbx
) -> None:
    base, _ = site
    await pool.execute("UPDATE operators SET extension = '101' WHERE login = 'anna'")
    async with pool.acquire() as conn:
        await channels.create(
            conn,
            "pbx",
            "office",
            {"provider": "generic", "secret": TOKEN, "api_base": fake_pbx.base},
        )
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)

    # Yesterday's missed call: a callback task, offered like a dialog.
    first = {"from": "+79001234567", "to": "+74951234567", "direction": "in", "callId": "c-1"}
    await _cti(base, event="newCall", user="101", **first)
    pop = page.locator(".call-pop")
    await expect(pop.locator(".call-state")).to_contain_text("ringing")
    await _cti(base, event="hangup", cause="noAnswer", **first)
    await expect(pop.locator(".call-state")).to_contain_text("missed")
    await expect(page.locator(".offer .callback-task")).to_contain_text("Call back +79001234567")
    await pop.locator("button.dismiss-call").click()
    await expect(pop).to_have_count(0)

    # The customer calls again: the card shows who it is and what happened before.
    second = {"from": "89001234567", "to": "+74951234567", "direction": "in", "callId": "c-2"}
    await _cti(base, event="newCall", user=["101"], **second)
    await expect(pop.locator(".caller")).to_have_text("+79001234567")
    await expect(pop.locator(".call-history li")).to_have_count(1)
    await expect(pop.locator(".call-history")).to_contain_text("missed")
    await _shot(page, "operator-call-ringing")
    await _accessible(page)
    await page.set_viewport_size(PHONE)
    await expect(pop.locator("button.open-lead")).to_be_visible()
    await _shot(page, "operator-call-ringing")
    await _accessible(page)
    await page.set_viewport_size(DESKTOP)

    await _cti(base, event="answer", answeringNumber="101", **second)
    await expect(pop.locator(".call-state")).to_contain_text("in progress")
    # Answered by anna: the lead's phone dialog is hers now (the callback is done).
    await expect(page.locator(".dialog-item")).to_have_count(1)
    await expect(page.locator(".offer")).to_have_count(0)
    recording = f"{fake_pbx.base}/files/c-2.mp3"
    await _cti(base, event="hangup", cause="normalClearing", recordingUrl=recording, **second)
    await expect(pop.locator(".call-state")).to_contain_text("answered")

    await pop.locator("button.open-lead").click()
    summaries = page.locator(".message .call-summary")
    await expect(summaries).to_have_count(2)
    await expect(summaries.first).to_contain_text("missed")
    audio = page.locator(".message audio.recording")
    await expect(audio).to_have_count(1, timeout=15_000)
    assert (await audio.get_attribute("src") or "").startswith("blob:")
    await page.wait_for_function(
        "() => document.querySelector('audio.recording').readyState >= 1"
        " || document.querySelector('audio.recording').error !== null"
    )
    # The lead card lists the lead's calls, the recording playable there too.
    await expect(page.locator(".lead-card .lead-call")).to_have_count(2)
    await expect(page.locator(".lead-card audio.recording")).to_have_count(1)
    await _shot(page, "operator-call-conversation")
    await _accessible(page)
    await page.set_viewport_size(PHONE)
    await page.locator("nav.views button.view-conversation").click()
    await expect(audio).to_be_visible()
    await _shot(page, "operator-call-conversation")
