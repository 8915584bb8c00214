"""The console as an operator uses it all day, in headless Chromium: what a live update
must not disturb, drafts, long histories, phone size, stale sessions, live presence and
previews, live state, keyboard use, dark mode and accessibility. Each view is saved as a
screenshot at 1440×900 and 390×844 under tests/e2e/screenshots/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, ViewportSize, WebSocketRoute, expect

from storage import channels, operators
from tests.conftest import add_operator
from tests.e2e.console import login_as, post_update, sent_messages
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.waiting import eventually

SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    size = page.viewport_size or DESKTOP
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{size['width']}x{size['height']}.png"))


async def _online(page: Page) -> None:
    await page.select_option("select.presence", "online")
    await expect(page.locator("select.presence")).to_have_value("online")


async def _customer(base: str, update_id: int, text: str, user: int, name: str = "Ivan") -> None:
    update = text_update(update_id, text, user_id=user)
    update["message"]["from"]["first_name"] = name
    update["message"]["chat"]["first_name"] = name
    await post_update(base, update)


async def _accept(page: Page) -> None:
    await page.locator(".offer button.accept").first.click()


async def test_a_pending_offer_disturbs_neither_edits_nor_choices(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    boris = await add_operator(pool, "boris")
    await operators.set_presence(pool, boris, "away")  # a transfer target who gets no offers
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 1, "first customer", 5550001, "Ivan")
    await _accept(page)
    await expect(page.locator(".message.in .text")).to_have_text("first customer")
    await page.fill(".lead-card input[name=name]", "Ivan Edited")
    await page.select_option("select.transfer-target", label="Boris (Away)")
    await _customer(base, 2, "second customer", 5550002, "Olga")
    await expect(page.locator(".offer .countdown")).to_be_visible()
    countdown = await page.locator(".offer .countdown").inner_text()
    await expect(page.locator(".offer .countdown")).not_to_have_text(countdown, timeout=5000)
    await page.wait_for_timeout(1200)  # a few more ticks of the countdown
    await expect(page.locator(".lead-card input[name=name]")).to_have_value("Ivan Edited")
    assert await page.locator("select.transfer-target").input_value() != ""
    await _shot(page, "operator-offer-pending")
    await page.click(".lead-card button[type=submit]")
    await expect(page.locator("#toast")).to_have_text("Saved")
    assert await pool.fetchval("SELECT name FROM leads WHERE name LIKE 'Ivan%'") == "Ivan Edited"


async def test_drafts_belong_to_their_dialog_and_survive_a_reload(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    for n, (user, name) in enumerate(((5550001, "Ivan"), (5550002, "Olga"))):
        await _customer(base, n + 1, f"hello from {name}", user, name)
        await _accept(page)
        await expect(page.locator(".dialog-item")).to_have_count(n + 1)
    ivan = page.locator(".dialog-item", has_text="Ivan")
    olga = page.locator(".dialog-item", has_text="Olga")
    await ivan.click()
    await page.fill(".composer textarea", "draft for Ivan")
    await olga.click()
    await expect(page.locator(".composer textarea")).to_have_value("")
    await page.fill(".composer textarea", "draft for Olga")
    await ivan.click()
    await expect(page.locator(".composer textarea")).to_have_value("draft for Ivan")
    await page.reload()
    await page.locator(".dialog-item", has_text="Olga").click()
    await expect(page.locator(".composer textarea")).to_have_value("draft for Olga")


async def test_history_opens_at_the_newest_and_pages_back_on_scroll(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 1, "message 0", 5550001)
    await _accept(page)
    await expect(page.locator(".message.in")).to_have_count(1)
    for n in range(1, 130):
        await _customer(base, n + 1, f"message {n}", 5550001)
    await expect(page.locator(".message.in .text").last).to_have_text("message 129")
    await page.reload()
    await page.locator(".dialog-item").click()
    await expect(page.locator(".message.in .text").last).to_have_text("message 129")
    assert await page.locator(".message").count() == 50
    for _ in range(5):
        if await page.locator(".message.in .text", has_text="message 0").count():
            break
        await page.locator(".messages").evaluate("node => { node.scrollTop = 0; }")
        await page.wait_for_timeout(400)
    await expect(page.locator(".message.in .text").first).to_have_text("message 0")
    await expect(page.locator(".message")).to_have_count(130)
    await _shot(page, "operator-history")


async def test_at_phone_size_list_conversation_and_lead_are_views(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=PHONE)
    await page.goto(base + "/")
    await _shot(page, "login")
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 1, "hello from my phone", 5550001)
    await _shot(page, "operator-offer")
    await _accept(page)
    conversation = page.locator(".conversation")
    await expect(page.locator(".message.in .text")).to_have_text("hello from my phone")
    box = await conversation.bounding_box()
    assert box is not None and box["width"] >= 380 and box["height"] > 400
    await expect(page.locator(".composer textarea")).to_be_in_viewport()
    await _shot(page, "operator-conversation")
    await page.locator(".views .view-lead").click()
    await expect(page.locator(".lead-card input[name=name]")).to_be_visible()
    await expect(conversation).to_be_hidden()
    await _shot(page, "operator-lead")
    await page.locator(".views .view-list").click()
    await expect(page.locator(".dialog-item")).to_be_visible()
    await _shot(page, "operator-list")


async def test_a_stale_token_shows_the_login_form(browser: Browser, site: tuple[str, Any]) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    await page.add_init_script("sessionStorage.setItem('hub.token', 'op_revoked-long-ago')")
    await page.goto(base + "/")
    await expect(page.locator("form.login input[name=login]")).to_be_visible(timeout=5000)
    await _shot(page, "login")


async def test_colleagues_presence_is_live_and_offline_ones_are_not_targets(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    await add_operator(pool, "boris")
    anna = await browser.new_page(viewport=DESKTOP)
    await login_as(anna, base, "anna")
    await _online(anna)
    await _customer(base, 1, "transfer me", 5550001)
    await _accept(anna)
    targets = anna.locator("select.transfer-target option")
    await expect(anna.locator(".message.in")).to_have_count(1)
    assert "Boris" not in " ".join(await targets.all_inner_texts())
    boris = await anna.context.browser.new_page(viewport=DESKTOP)  # type: ignore[union-attr]
    await login_as(boris, base, "boris")
    await _online(boris)
    await expect(anna.locator("select.transfer-target option", has_text="Boris")).to_have_text(
        "Boris (Online)"
    )
    await boris.select_option("select.presence", "away")
    await expect(anna.locator("select.transfer-target option", has_text="Boris")).to_have_text(
        "Boris (Away)"
    )


async def test_previews_show_the_customers_latest_words_and_waiting_time(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    for n in range(3):
        await _customer(base, n + 1, f"question {n}", 5550001)
    await _online(page)
    offer = page.locator(".offer")
    await expect(offer.locator(".preview")).to_have_text("question 2")
    await expect(offer.locator(".waited")).to_be_visible()
    await expect(offer.locator(".channel")).to_contain_text("Telegram")
    await _accept(page)
    await page.fill(".composer textarea", "our answer")
    await page.click("button.send")
    await expect(page.locator(".message.out .text")).to_have_text("our answer")
    item = page.locator(".dialog-item")
    await expect(item.locator(".dialog-last")).to_have_text("question 2")
    await expect(item.locator(".dialog-waiting")).to_have_count(0)


async def test_live_state_reaches_the_open_conversation(
    browser: Browser, site: tuple[str, FakeTelegram], pool: asyncpg.Pool
) -> None:
    """A file first refused by the provider then fetched, a form message of the same lead,
    a phone the customer shared: all appear without a reload."""
    base, telegram = site
    async with pool.acquire() as conn:
        await channels.create(conn, "form", "site", {"rate_limit": "0"})
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 1, "hello", 5550001)
    await _accept(page)
    await expect(page.locator(".message.in .text")).to_have_text("hello")

    telegram.add_file("AgAC-photo", "photos/file_1.jpg", b"\xff\xd8\xff jpeg")
    telegram.file_status = 503
    update = text_update(2, "", user_id=5550001)
    del update["message"]["text"]
    update["message"]["photo"] = [
        {"file_id": "AgAC-photo", "file_unique_id": "AQADp", "width": 9, "height": 9}
    ]
    await post_update(base, update)
    await expect(
        page.locator(".message.in .empty", has_text="provider_unavailable")
    ).to_be_visible()
    telegram.file_status = None
    # A photo is shown in place (its link titled with the file's name).
    await expect(page.locator(".message.in a.picture[title^=photo] img")).to_be_visible(
        timeout=15000
    )
    # A voice message plays in place; a document is a card with its type and size.
    telegram.add_file("AwAC-voice", "voice/file_2.oga", b"OggS voice")
    telegram.add_file("BQAC-doc", "documents/file_3.pdf", b"%PDF-1.4 " + b"x" * 2048)
    for n, media in enumerate(
        (
            {
                "voice": {
                    "file_id": "AwAC-voice",
                    "file_unique_id": "AgADv",
                    "duration": 3,
                    "mime_type": "audio/ogg",
                    "file_size": 10,
                }
            },
            {
                "document": {
                    "file_id": "BQAC-doc",
                    "file_unique_id": "AgADd",
                    "file_name": "invoice.pdf",
                    "mime_type": "application/pdf",
                    "file_size": 2057,
                }
            },
        )
    ):
        update = text_update(10 + n, "", user_id=5550001)
        del update["message"]["text"]
        update["message"].update(media)
        await post_update(base, update)
    await expect(page.locator(".message.in .voice audio.recording")).to_have_count(1, timeout=15000)
    card = page.locator(".message.in .file-card", has_text="invoice.pdf")
    await expect(card.locator(".file-meta")).to_have_text("PDF · 2 KB", timeout=15000)

    contact = text_update(3, "", user_id=5550001)
    del contact["message"]["text"]
    contact["message"]["contact"] = {
        "phone_number": "+79161234567",
        "first_name": "Ivan",
        "user_id": 5550001,
    }
    await post_update(base, contact)
    await expect(page.locator(".lead-card textarea[name=phones]")).to_have_value("+79161234567")

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/forms/site", json={"phone": "89161234567", "message": "sent from the site"}
        ) as reply,
    ):
        assert reply.status == 201
    await expect(page.locator(".message.in .text", has_text="sent from the site")).to_be_visible()
    await _shot(page, "operator-live")


async def test_the_basic_loop_works_from_the_keyboard(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, telegram = site
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 1, "keyboard please", 5550001)
    await expect(page.locator(".offer")).to_be_visible()
    await page.locator("body").click(position={"x": 700, "y": 400})
    await page.keyboard.press("?")
    await expect(page.locator(".help")).to_be_visible()
    await _shot(page, "operator-help")
    await page.keyboard.press("Escape")
    await expect(page.locator(".help")).to_have_count(0)
    await page.keyboard.press("a")
    await expect(page.locator(".message.in .text")).to_have_text("keyboard please")
    await page.keyboard.press("r")
    await expect(page.locator(".composer textarea")).to_be_focused()
    await page.keyboard.type("typed without a mouse")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".message.out .text")).to_have_text("typed without a mouse")
    await eventually(lambda: sent_messages(telegram))


async def test_dark_mode_follows_the_system(browser: Browser, site: tuple[str, Any]) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP, color_scheme="dark")
    await login_as(page, base, "anna")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 22, 29)"
    await _shot(page, "operator-dark")


async def test_views_have_no_serious_accessibility_violations(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    axe = Axe()
    views: dict[str, Page] = {}
    sizes: tuple[tuple[str, ViewportSize], ...] = (("desktop", DESKTOP), ("phone", PHONE))
    for size_name, size in sizes:
        login = await browser.new_page(viewport=size)
        await login.goto(base + "/")
        await expect(login.locator("form.login")).to_be_visible()
        views[f"login {size_name}"] = login
        operator = await browser.new_page(viewport=size)
        await login_as(operator, base, "anna")
        views[f"operator {size_name}"] = operator
        supervisor = await browser.new_page(viewport=size)
        await login_as(supervisor, base, "sam")
        await supervisor.locator("header .page-switch").click()  # the desk
        await expect(supervisor.locator("table.operators")).to_be_in_viewport()
        await _shot(supervisor, "supervisor")
        views[f"supervisor {size_name}"] = supervisor
    await _customer(base, 1, "accessible?", 5550001)
    for name, page in views.items():
        results = await axe.run(page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{name}: {bad}"


async def test_the_reconnect_banner_leaves_the_composer_usable(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    sockets: list[WebSocketRoute] = []
    broken = [False]

    async def through(ws: WebSocketRoute) -> None:
        """The console's socket, passed to the hub, until the test breaks the network."""
        if broken[0]:
            await ws.close(code=1011)
            return
        ws.connect_to_server()
        sockets.append(ws)

    await page.route_web_socket("**/ws/operator*", through)
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 1, "still there?", 5550001)
    await _accept(page)
    await expect(page.locator(".message.in .text")).to_have_text("still there?")
    broken[0] = True
    for ws in sockets:
        await ws.close(code=1011)
    await expect(page.locator(".banner")).to_be_visible(timeout=10000)
    await expect(page.locator(".composer textarea")).to_be_in_viewport(ratio=1)
    await expect(page.locator("button.send")).to_be_in_viewport(ratio=1)
    await _shot(page, "operator-reconnecting")
    broken[0] = False
    await expect(page.locator(".banner")).to_have_count(0, timeout=20000)
    async with aiohttp.ClientSession() as session, session.get(f"{base}/favicon.ico") as icon:
        assert icon.status == 200 and icon.content_type == "image/svg+xml"


async def test_canned_responses_speak_the_customers_language(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP, locale="en-US")
    await login_as(page, base, "anna")
    await _online(page)
    await _customer(base, 1, "Здравствуйте, где мой заказ?", 5550001, "Иван")
    await _accept(page)
    # The choice follows the conversation: chosen once it (and the lead) are loaded.
    await expect(page.locator(".message.in .text")).to_have_text("Здравствуйте, где мой заказ?")
    await expect(page.locator(".lead-card input[name=name]")).to_have_value("Иван")
    await page.select_option("select.canned", index=1)
    await expect(page.locator(".composer textarea")).to_have_value(
        "Здравствуйте, Иван! Чем могу помочь?"
    )
    await expect(page.locator("header button").last).to_have_text("Sign out")


async def test_the_list_sorts_by_activity_or_by_waiting_time(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool
) -> None:
    base, _ = site
    page = await browser.new_page(viewport=DESKTOP)
    await login_as(page, base, "anna")
    await _online(page)
    for n, (user, name) in enumerate(((5550001, "Ivan"), (5550002, "Olga"))):
        await _customer(base, n + 1, f"hello from {name}", user, name)
        await _accept(page)
        await expect(page.locator(".dialog-item")).to_have_count(n + 1)
    # Ivan has waited longest; Olga wrote last.
    await pool.execute(
        "UPDATE interactions SET created_at = created_at - interval '10 minutes'"
        " WHERE text = 'hello from Ivan'"
    )
    await page.locator(".dialog-item", has_text="Ivan").click()
    await page.fill(".composer textarea", "answered")
    await page.click("button.send")
    await expect(page.locator(".message.out .text")).to_have_text("answered")
    await _customer(base, 3, "Ivan again", 5550001, "Ivan")
    names = page.locator(".dialog-item .dialog-name")
    await expect(names).to_have_text(["Ivan", "Olga"])  # latest activity first
    await page.select_option(".sort select", "waiting")
    await expect(names).to_have_text(["Olga", "Ivan"])  # Olga waits since before Ivan's new one
    await page.reload()
    await expect(page.locator(".sort select")).to_have_value("waiting")


async def test_server_errors_are_worded_in_the_operators_language(
    browser: Browser, site: tuple[str, Any], pool: asyncpg.Pool, tmp_path: Path
) -> None:
    base, _ = site
    async with pool.acquire() as conn:
        await channels.create(conn, "form", "site", {"rate_limit": "0"})
    page = await browser.new_page(viewport=PHONE)
    await login_as(page, base, "anna")
    await page.select_option("header select[aria-label=Language]", "ru")
    await page.select_option("select.presence", "online")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/forms/site",
            json={"name": "Ivan", "email": "ivan@example.com", "message": "hi"},
        ) as reply,
    ):
        assert reply.status == 201
    await _accept(page)
    upload = tmp_path / "price.pdf"
    upload.write_bytes(b"%PDF-1.4")
    await page.set_input_files(".composer input[type=file]", str(upload))
    await page.click("button.send")
    await expect(page.locator("#toast")).to_have_text("Этот канал принимает только текст")
