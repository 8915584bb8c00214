"""The reports page in headless Chromium at both sizes: the summary cards beside the period
before, the chart over time, the heatmap, the tables by operator, channel and source, the
period and zone pickers, and the CSV download. Screenshots of each size; axe in light and
dark."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from playwright.async_api import Browser, expect

from tests.e2e.console import login_as
from tests.e2e.test_console_calls import _accessible
from tests.e2e.test_console_day import DESKTOP, PHONE, _shot
from tests.hub.reports_script import Script


async def _history(pool: asyncpg.Pool) -> None:
    """Three days of work: answered dialogs, an unanswered one, a form lead."""
    channel = await pool.fetchval("SELECT id FROM channels WHERE name = 'tg'")
    anna = await pool.fetchval("SELECT id FROM operators WHERE login = 'anna'")
    now = datetime.now(UTC).replace(microsecond=0)
    for days_ago, waits in ((2, (40, 95)), (1, (20, 300, 61)), (0, (15,))):
        s = Script(pool, channel, now - timedelta(days=days_ago, hours=1))
        for i, wait in enumerate(waits):
            start = i * 600
            d = await s.dialog(start, name=f"Customer {days_ago}-{i}")
            await s.offer(d, start + 1, anna)
            await s.accept(d, start + 5, anna)
            await s.reply(d, start + wait, anna)
            await s.close(d, start + wait + 120)
    s = Script(pool, channel, now - timedelta(hours=3))
    lost = await s.dialog(0, name="<img src=x onerror=alert(1)>", source="form")
    await s.close(lost, 900)


async def test_a_supervisor_reads_the_reports(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool, tmp_path: Path
) -> None:
    base, _ = site
    await _history(pool)
    operator = await browser.new_page(viewport=DESKTOP)
    await login_as(operator, base, "anna")
    await expect(operator.locator("header .reports-switch")).to_have_count(0)
    await operator.close()

    for size in (DESKTOP, PHONE):
        page = await browser.new_page(viewport=size, accept_downloads=True)
        await login_as(page, base, "sam")
        await page.locator("header .reports-switch").click()
        cards = page.locator(".report-cards .card")
        await expect(cards).to_have_count(8)
        await expect(page.locator(".card[data-metric=dialogs_new] .card-value")).to_have_text("7")
        await expect(page.locator(".card[data-metric=unanswered] .card-value")).to_have_text("1")
        # The median of 15, 20, 40, 61, 95 and 300 seconds is 50.5.
        await expect(page.locator(".card[data-metric=first_response_s] .card-value")).to_have_text(
            "51 s"
        )
        # Seven days, seven bars; the heatmap has a row a weekday.
        await expect(page.locator(".report-chart rect.bar")).to_have_count(7)
        await expect(page.locator(".heatmap .heat-row[role=row]")).to_have_count(8)
        anna = page.locator(".report-table[data-group=operator] tbody tr", has_text="Anna")
        await expect(anna.locator("td").nth(1)).to_have_text("6")  # answered by her
        sources = page.locator(".report-table[data-group=source] tbody")
        await expect(sources).to_contain_text("Site form")
        await expect(sources).to_contain_text("Telegram")
        # Customer text stays text: no image element came from a lead's name.
        assert await page.locator(".reports img").count() == 0
        await _shot(page, "reports")
        await _accessible(page)
        await page.locator(".report-table[data-group=operator]").scroll_into_view_if_needed()
        await _shot(page, "reports-tables")

        # Another zone and a longer period; a duration metric draws a line.
        await page.locator("input[name=tz]").fill("Europe/Moscow")
        await page.locator("input[name=tz]").press("Tab")  # a changed field is read on leaving
        await expect(page.locator(".report-period")).to_contain_text("Europe/Moscow")
        await page.locator("select[name=preset]").select_option("30d")
        await expect(page.locator(".report-chart rect.bar")).to_have_count(30)
        await page.locator(".report-chart select").select_option("first_response_s:p50")
        await expect(page.locator(".report-chart polyline")).to_have_count(1)
        await expect(page.locator(".report-chart circle")).to_have_count(3)

        # The CSV of every cycle: the same count as the cards say.
        await page.locator(".csv-download select").select_option("semicolon")
        async with page.expect_download() as waiting:
            await page.locator(".csv-download button").click()
        download = await waiting.value
        saved = tmp_path / f"dialogs-{size['width']}.csv"
        await download.save_as(saved)
        raw = saved.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
        assert len(rows) == 7
        assert rows[0]["started_at"].endswith("+03:00")
        assert {r["outcome"] for r in rows} == {"answered", "abandoned"}
        await page.close()
