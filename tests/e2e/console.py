"""What the console's browser tests share: where Chromium is, the channel's secret, and
small steps (sign in, post a Telegram update)."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.conftest import OPERATOR_PASSWORD
from tests.fakes.telegram import FakeTelegram

CHROMIUM = "/usr/bin/chromium"
PASSWORD = OPERATOR_PASSWORD
SECRET = "e2e-secret"
XSS = "<img src=x onerror=alert(1)>"

SKIP_WITHOUT_CHROMIUM = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian chromium is installed by make test"
)


async def login_as(page: Page, base: str, login: str) -> None:
    await page.goto(base + "/")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("header .me")).to_have_text(login.title())


async def sent_messages(telegram: FakeTelegram) -> Any:
    return telegram.calls_of("sendMessage")


async def post_update(base: str, update: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/connectors/telegram/tg",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as reply,
    ):
        assert reply.status == 200
