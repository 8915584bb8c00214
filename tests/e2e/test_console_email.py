"""An email conversation in the console, in headless Chromium, end to end through a real
Dovecot and a real SMTP server: the subject is shown, the customer's words are text (never
HTML), an inline picture is shown in place and a file is listed, the phone of the signature
is offered on the lead card, and the reply box sends a threaded email."""

from __future__ import annotations

import base64
import struct
import zlib
from email import message_from_bytes, policy
from functools import partial
from typing import Any

import asyncpg
from playwright.async_api import Browser, expect

from connectors.email.imap import close
from tests.e2e.console import XSS, login_as
from tests.e2e.test_console_day import DESKTOP, PHONE, _online, _shot
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mailbox import SmtpCapture, email_channel, mailbox_writer
from tests.fixtures.waiting import eventually


def _png(width: int, height: int) -> bytes:
    """A small picture (a colour gradient), big enough to see in a screenshot."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (255, x * 255 // width, y * 255 // height))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = _png(160, 100)


def _mail() -> bytes:
    """Shaped like Thunderbird's output: an alternative text/HTML body with a picture
    referenced by Content-ID, and a PDF attached."""
    png = base64.encodebytes(PNG).decode()
    return (
        "From: =?UTF-8?B?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= <ivan@example.com>\r\n"
        "To: sales@example.test\r\n"
        "Subject: =?UTF-8?B?0JfQsNC60LDQtyDihJYgNDI=?=\r\n"
        "Message-ID: <tb-1@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="mixed"\r\n\r\n'
        "--mixed\r\n"
        'Content-Type: multipart/related; boundary="related"\r\n\r\n'
        "--related\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Где мой заказ? {XSS}\r\n\r\n-- \r\nИван Петров\r\nтел. +7 912 345-67-89\r\n"
        "--related\r\n"
        "Content-Type: image/png; name=photo.png\r\n"
        "Content-Disposition: inline; filename=photo.png\r\n"
        "Content-ID: <part1@example.com>\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{png}"
        "--related--\r\n"
        "--mixed\r\n"
        "Content-Type: application/pdf; name=price.pdf\r\n"
        "Content-Disposition: attachment; filename=price.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.encodebytes(b'%PDF-1.4 price list').decode()}"
        "--mixed--\r\n"
    ).encode()


async def test_an_email_conversation_in_the_console(
    browser: Browser,
    site: tuple[str, Any],
    pool: asyncpg.Pool,
    dovecot: Dovecot,
    smtp_sink: tuple[SmtpCapture, int],
) -> None:
    base, _ = site
    capture, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    try:
        await email_channel(pool, dovecot, smtp_port, folder)
        page = await browser.new_page(viewport=DESKTOP)
        await login_as(page, base, "anna")
        await _online(page)
        assert (await writer.append(_mail(), mailbox=folder)).result == "OK"
        offer = page.locator(".offer")
        await expect(offer).to_contain_text("Где мой заказ?", timeout=20_000)
        await page.locator(".offer button.accept").first.click()

        message = page.locator(".message.in").first
        await expect(message.locator(".subject")).to_have_text("Заказ № 42")
        # The customer's markup is text: shown as written, no element made of it.
        await expect(message.locator(".text")).to_have_text(f"Где мой заказ? {XSS}")
        assert await message.locator(".text img").count() == 0
        picture = message.locator(".picture img")
        await expect(picture).to_have_attribute("alt", "photo.png")
        await eventually(
            lambda: picture.evaluate("(img) => img.complete && img.naturalWidth === 160"),
            timeout=10,
        )
        await expect(message.locator("a", has_text="price.pdf")).to_be_visible()

        suggestion = page.locator(".lead-card .suggestion")
        await expect(suggestion).to_have_attribute("data-phone", "+79123456789")
        await _shot(page, "operator-email")
        await suggestion.locator("button", has_text="Add").click()
        await expect(page.locator(".lead-card textarea[name=phones]")).to_have_value("+79123456789")
        await expect(suggestion).to_have_count(0)

        await page.fill(".composer textarea", "Заказ приедет завтра")
        await page.click("button.send")
        await eventually(lambda: _sent(capture), timeout=15)
        reply = message_from_bytes(capture.contents[0], policy=policy.default)
        assert reply["In-Reply-To"] == "<tb-1@example.com>"
        assert reply["Subject"] == "Re: Заказ № 42" and reply["To"] == "ivan@example.com"
        await expect(page.locator(".message.out .meta")).to_contain_text("sent")

        await page.set_viewport_size(PHONE)
        await page.locator("nav.views button.view-conversation").click()
        await expect(message.locator(".subject")).to_be_visible()
        await _shot(page, "operator-email")
    finally:
        await close(writer)


async def _sent(capture: SmtpCapture) -> bool:
    return len(capture.received) == 1


async def test_a_first_letter_to_a_customer_who_never_wrote_by_email(
    browser: Browser,
    site: tuple[str, Any],
    pool: asyncpg.Pool,
    dovecot: Dovecot,
    smtp_sink: tuple[SmtpCapture, int],
) -> None:
    """A Telegram customer whose email the lead card learned: found by search, their
    history offers the email channel as a new letter with a subject of its own; the letter
    opens a dialog of the writer's, whose next reply threads under it."""
    from tests.e2e.test_console_day import _customer

    base, telegram = site
    capture, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    await close(writer)  # the channel's own folder; nothing is written to it here
    await email_channel(pool, dovecot, smtp_port, folder, poll_interval="3600")
    for n, (size, name) in enumerate(((DESKTOP, "Ivan"), (PHONE, "Olga"))):
        await _customer(base, n + 1, "Send me the invoice, please", 5550601 + n, name)
        address = f"{name.lower()}@example.com"
        page = await browser.new_page(viewport=size)
        await login_as(page, base, "sam")
        await page.locator(".search input").fill(name.lower())
        await page.locator(".found-lead").first.click()
        if size is PHONE:
            await page.locator(".views .view-lead").click()
        await page.locator(".lead-card textarea[name=emails]").fill(address)
        await page.locator(".lead-card button[type=submit]").click()
        await expect(page.locator("#toast")).to_have_text("Saved")
        if size is PHONE:
            await page.locator(".views .view-conversation").click()
        history = page.locator(".lead-history")
        await expect(history.locator(".write-channel option")).to_have_text(
            ["tg", "mail (new letter)"]
        )
        await history.locator(".write-channel").select_option("mail")
        await history.locator(".write-subject").fill(f"Invoice {n}")
        await expect(history.locator(".tools")).to_contain_text(f"to {address}")
        await history.locator("textarea").fill("The invoice is attached to the order page.")
        await expect(page.locator("#toast")).to_be_hidden(timeout=6000)
        await _shot(page, "operator-write-first-email")
        await history.locator("button.send").click()
        await eventually(partial(_count, capture, 2 * n + 1), timeout=15)
        letter = message_from_bytes(capture.contents[-1], policy=policy.default)
        assert letter["To"] == address and letter["Subject"] == f"Invoice {n}"
        # The letter's dialog is the writer's now: the next reply is in the same thread.
        if size is PHONE:
            await page.locator(".views .view-list").click()
        await page.locator(".search-clear").click()
        await expect(page.locator(".dialog-item")).to_have_count(n + 1)
        await page.locator(".dialog-item", has_text=name).click()
        await page.locator(".composer textarea").fill("Did it arrive?")
        await page.locator(".composer button.send").click()
        await eventually(partial(_count, capture, 2 * n + 2), timeout=15)
        assert message_from_bytes(capture.contents[-1], policy=policy.default)["To"] == address
        await page.close()
    assert telegram.calls_of("sendMessage") == []


async def _count(capture: SmtpCapture, n: int) -> bool:
    return len(capture.received) == n
