"""The email channel through the hub: a real Dovecot mailbox and a real SMTP server. A mail
becomes an interaction of the sender's lead in a dialog of its own thread; a reply goes out
threaded; the customer's answer lands in the same dialog, a new thread in a new one; machine
mail opens nothing; a bounce marks our reply failed."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from email import message_from_bytes, policy
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from connectors.email.imap import close
from hub.pipeline import lock_key
from storage import channels, queues
from tests.conftest import one_row
from tests.connectors.email.test_parse import (
    APPLE_MAIL,
    GMAIL_RU,
    HTML_ONLY,
    OUTLOOK_CP1251,
    THE_BAT_KOI8,
    THUNDERBIRD_EN,
)
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mailbox import SmtpCapture, email_channel, mailbox_writer
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]


def _mail(message_id: str, text: str, subject: str = "Заказ", **headers: str) -> bytes:
    lines = [
        "From: Иван <ivan@example.com>",
        "To: sales@example.test",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        *[f"{k.replace('_', '-')}: {v}" for k, v in headers.items()],
        "Content-Type: text/plain; charset=utf-8",
        "",
        text,
    ]
    return "\r\n".join(lines).encode()


async def test_mail_in_threads_out_and_back(
    client: Client,
    pool: asyncpg.Pool,
    dovecot: Dovecot,
    smtp_sink: tuple[SmtpCapture, int],
    auth: dict[str, str],
) -> None:
    capture, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    await email_channel(pool, dovecot, smtp_port, folder, poll_interval="3600")
    try:
        signed = "Где мой заказ?\r\n\r\n-- \r\nИван Петров\r\nтел. +7 912 345-67-89"
        await writer.append(_mail("<c1@example.com>", signed), mailbox=folder)
        row = await eventually(
            lambda: pool.fetchrow("SELECT id, lead_id, dialog_id, subject, text FROM interactions"),
            timeout=15,
        )
        assert row is not None and row["subject"] == "Заказ" and row["text"] == "Где мой заказ?"
        # The signature's phone is offered on the lead, not taken as the lead's.
        lead = await one_row(
            pool,
            "SELECT phone_suggestions, (SELECT count(*) FROM lead_phones) AS phones FROM leads"
            " WHERE id = $1",
            row["lead_id"],
        )
        assert lead["phone_suggestions"] == ["+79123456789"] and lead["phones"] == 0
        assert (
            await pool.fetchval("SELECT email FROM lead_emails WHERE lead_id = $1", row["lead_id"])
            == "ivan@example.com"
        )
        reply = await client.post(
            f"/api/v1/dialogs/{row['dialog_id']}/messages", json={"text": "Завтра"}, headers=auth
        )
        assert reply.status == 201, await reply.text()
        sent = await reply.json()
        assert sent["delivery_state"] == "sent"
        out = message_from_bytes(capture.contents[0], policy=policy.default)
        assert out["In-Reply-To"] == "<c1@example.com>" and out["Subject"] == "Re: Заказ"
        our_id = str(out["Message-ID"])

        await writer.append(
            _mail(
                "<c2@example.com>",
                "Спасибо!",
                "Re: Заказ",
                In_Reply_To=our_id,
                References=f"<c1@example.com> {our_id}",
            ),
            mailbox=folder,
        )
        # A client that keeps only In-Reply-To (our reply's id): the stored id finds the thread.
        await writer.append(
            _mail("<c2b@example.com>", "И ещё", "Вопрос", In_Reply_To=our_id), mailbox=folder
        )
        await writer.append(_mail("<c3@example.com>", "Другой вопрос", "Счёт"), mailbox=folder)
        await writer.append(
            _mail(
                "<auto@example.com>", "I am away", "Out of office", Auto_Submitted="auto-replied"
            ),
            mailbox=folder,
        )
        await eventually(
            lambda: pool.fetchval("SELECT count(*) = 4 FROM interactions WHERE direction = 'in'"),
            timeout=15,
        )
        dialogs = await pool.fetch(
            "SELECT dialog_id, text FROM interactions WHERE direction = 'in' ORDER BY id"
        )
        assert dialogs[1]["dialog_id"] == row["dialog_id"]  # the answer threads
        assert dialogs[2]["dialog_id"] == row["dialog_id"]  # found by our reply's id
        assert dialogs[3]["dialog_id"] != row["dialog_id"]  # a new thread, a new dialog
        assert await pool.fetchval("SELECT count(*) FROM dialogs") == 2  # machine mail: none

        bounce = (
            "From: MAILER-DAEMON@example.test\r\nTo: sales@example.test\r\nSubject: Undelivered\r\n"
            "Message-ID: <b1@example.test>\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
            "--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
            "--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: {our_id}\r\n--r--\r\n"
        ).encode()
        await writer.append(bounce, mailbox=folder)
        await eventually(
            lambda: pool.fetchval(
                "SELECT delivery_state = 'failed' FROM interactions WHERE id = $1", sent["id"]
            ),
            timeout=15,
        )
    finally:
        await close(writer)


async def test_a_form_dialog_is_answered_by_email(
    client: Client,
    pool: asyncpg.Pool,
    dovecot: Dovecot,
    smtp_sink: tuple[SmtpCapture, int],
    auth: dict[str, str],
) -> None:
    capture, smtp_port = smtp_sink
    async with pool.acquire() as conn:
        await channels.create(
            conn, "form", "site", {"rate_limit": "0", "subject": "Заявка с сайта"}
        )
    await email_channel(pool, dovecot, smtp_port, f"T{uuid.uuid4().hex[:10]}")
    with_address = await (
        await client.post("/forms/site", json={"name": "Ivan", "email": "ivan@example.com"})
    ).json()
    reply = await client.post(
        f"/api/v1/dialogs/{with_address['dialog_id']}/messages",
        json={"text": "Спасибо за заявку!"},
        headers=auth,
    )
    body = await reply.json()
    assert (body["delivery_state"], body["kind"]) == ("sent", "email"), body
    mail = message_from_bytes(capture.contents[0], policy=policy.default)
    assert mail["To"] == "ivan@example.com" and mail["Subject"] == "Re: Заявка с сайта"
    assert "Спасибо за заявку!" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    phone_only = await (
        await client.post("/forms/site", json={"name": "Olga", "phone": "+79120000002"})
    ).json()
    refused = await (
        await client.post(
            f"/api/v1/dialogs/{phone_only['dialog_id']}/messages",
            json={"text": "Перезвоним"},
            headers=auth,
        )
    ).json()
    assert refused["delivery_state"] == "undeliverable"
    assert refused["delivery_error"] == "the lead has no email address"

    # A form without a subject of its own: the customer's words title the letter.
    async with pool.acquire() as conn:
        await channels.create(conn, "form", "quick", {"rate_limit": "0", "reply_via": "mail"})
    untitled = await (
        await client.post(
            "/forms/quick",
            json={
                "email": "olga@example.com",
                "message": "Нужна доставка дивана на третий этаж без лифта, в субботу утром",
            },
        )
    ).json()
    await client.post(
        f"/api/v1/dialogs/{untitled['dialog_id']}/messages", json={"text": "Да"}, headers=auth
    )
    titled = message_from_bytes(capture.contents[-1], policy=policy.default)
    assert titled["Subject"] == "Re: Нужна доставка дивана на третий этаж без лифта, в субботу…"


async def test_a_queues_auto_reply_by_email_is_marked_automatic(
    client: Client,
    pool: asyncpg.Pool,
    dovecot: Dovecot,
    smtp_sink: tuple[SmtpCapture, int],
) -> None:
    """RFC 3834: our automatic answer says so, and the customer's own auto-responder (which
    honours it, or is itself marked) never gets a dialog going between two robots."""
    capture, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    await email_channel(pool, dovecot, smtp_port, folder)
    await queues.create(
        pool,
        name="mail",
        strategy="least_busy",
        offer_timeout_s=30,
        channels=["mail"],
        skills=[],
        hours=None,
        timezone="UTC",
        auto_reply="Мы ответим в течение часа.",
    )
    try:
        await writer.append(_mail("<night@example.com>", "Вы работаете?"), mailbox=folder)
        await eventually(lambda: _received(capture), timeout=15)
        auto = message_from_bytes(capture.contents[0], policy=policy.default)
        assert auto["Auto-Submitted"] == "auto-replied"
        assert auto["In-Reply-To"] == "<night@example.com>"
    finally:
        await close(writer)


async def _received(capture: SmtpCapture) -> bool:
    return bool(capture.contents)


async def test_a_renumbered_folder_doubles_nothing(
    client: Client, pool: asyncpg.Pool, dovecot: Dovecot, smtp_sink: tuple[SmtpCapture, int]
) -> None:
    """A UIDVALIDITY change (the server renumbered the folder) makes the hub read the whole
    folder again; the Message-IDs keep every message stored once."""
    _, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    channel = await email_channel(pool, dovecot, smtp_port, folder)
    try:
        for n in range(3):
            await writer.append(_mail(f"<r{n}@example.com>", f"письмо {n}"), mailbox=folder)
        await eventually(lambda: pool.fetchval("SELECT count(*) = 3 FROM interactions"), timeout=15)
        state = await channels.load_state(pool, channel.id)
        await channels.save_state(pool, channel.id, {**state, "uidvalidity": 1})
        await writer.append(_mail("<r3@example.com>", "письмо 3"), mailbox=folder)
        await eventually(lambda: pool.fetchval("SELECT count(*) = 4 FROM interactions"), timeout=15)
        await eventually(lambda: _state_is_back(pool, channel.id, state["uidvalidity"]), timeout=15)
        assert await pool.fetchval("SELECT count(*) FROM interactions") == 4
    finally:
        await close(writer)


async def _state_is_back(pool: asyncpg.Pool, channel_id: int, validity: int) -> bool:
    state = await channels.load_state(pool, channel_id)
    return bool(state.get("uidvalidity") == validity and state.get("last_uid") == 4)


async def test_each_mail_clients_letters_read_the_same_through_the_mailbox(
    client: Client, pool: asyncpg.Pool, dovecot: Dovecot, smtp_sink: tuple[SmtpCapture, int]
) -> None:
    """The client-shaped letters of the parser's tests, through Dovecot and the hub: the
    sender, the subject and the reply's own words (quotes and signatures cut) as stored."""
    _, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    letters = [
        (
            OUTLOOK_CP1251,
            "ivan.petrov@example.ru",
            "RE: Счёт №15",
            "Добрый день!\nОплату отправили сегодня.",
        ),
        (
            THE_BAT_KOI8,
            "olga@mail.ru",
            "Вопрос по доставке",
            "Здравствуйте.\nКогда привезёте заказ?",
        ),
        (GMAIL_RU, "anna@gmail.com", "Re: Заказ", "Да, подходит."),
        (THUNDERBIRD_EN, "john@example.com", "Re: Quote", "Thanks, we accept the quote."),
        (APPLE_MAIL, "kate@icloud.com", "Re: Invoice", "Paid today.\n\nSent from my iPhone"),
        (HTML_ONLY, "shop@site.ru", "Hello", "Привет, мир!"),
    ]
    try:
        for raw, *_ in letters:
            assert (await writer.append(raw, mailbox=folder)).result == "OK"
        await email_channel(pool, dovecot, smtp_port, folder)
        await eventually(lambda: pool.fetchval("SELECT count(*) = 6 FROM interactions"), timeout=20)
        stored = await pool.fetch(
            "SELECT e.email, i.subject, i.text FROM interactions i"
            " JOIN lead_emails e ON e.lead_id = i.lead_id ORDER BY i.id"
        )
        # Six senders: stored side by side, so compared in any order.
        assert sorted((r["email"], r["subject"], r["text"]) for r in stored) == sorted(
            tuple(letter[1:]) for letter in letters
        )
    finally:
        await close(writer)


async def test_a_batch_is_stored_exactly_once_across_a_kicked_connection_and_a_restart(
    client: Client, pool: asyncpg.Pool, dovecot: Dovecot, smtp_sink: tuple[SmtpCapture, int]
) -> None:
    """500 messages, the 176th from a sender whose address the test keeps locked (as a
    concurrent ingest would): the three batches before it are stored with the state past
    them, its batch waits (at least the part of it in that message's transaction). Dovecot drops the hub's connection (`doveadm kick`) and the
    channel is stopped and started again in the middle of that batch: nothing of it was
    kept, the hub reads it again from the saved state, and once the address is free every
    message is stored exactly once."""
    _, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    holder = await pool.acquire()
    try:
        for n in range(500):
            sender = "c0" if n == 175 else f"c{1 + n % 49}"
            raw = _mail(f"<batch-{n}@example.com>", f"письмо {n}").replace(
                b"ivan@example.com", f"{sender}@example.com".encode()
            )
            await writer.append(raw, mailbox=folder)
        await holder.execute("SELECT pg_advisory_lock($1)", lock_key("email:c0@example.com"))
        channel = await email_channel(pool, dovecot, smtp_port, folder)
        await eventually(lambda: _stored(pool, 150), timeout=30)
        kicked = subprocess.run(
            ["doveadm", "-c", str(dovecot.root / "dovecot.conf"), "kick", dovecot.user],
            capture_output=True,
            timeout=10,
        )
        assert kicked.returncode == 0, kicked.stderr
        await pool.execute("UPDATE channels SET enabled = false WHERE id = $1", channel.id)
        await asyncio.sleep(6)  # the runner stops it within its interval
        assert (await channels.load_state(pool, channel.id)).get("last_uid") == 150
        # The batch's transaction without that address may have committed: the position
        # past the batch was not, so all of it is read again and those are recognised.
        held = await pool.fetchval("SELECT count(*) FROM interactions")
        assert 150 <= held < 200
        await pool.execute("UPDATE channels SET enabled = true WHERE id = $1", channel.id)
        await asyncio.sleep(6)  # started again, and held at the same batch
        assert await pool.fetchval("SELECT count(*) FROM interactions") == held
        assert (await channels.load_state(pool, channel.id)).get("last_uid") == 150
        await holder.execute("SELECT pg_advisory_unlock_all()")
        await eventually(lambda: _stored(pool, 500), timeout=90)
        await eventually(lambda: _last_uid(pool, channel.id, 500), timeout=30)
        assert await pool.fetchval("SELECT count(*) FROM interactions") == 500
        assert await pool.fetchval("SELECT count(DISTINCT external_id) FROM interactions") == 500
    finally:
        await pool.release(holder)
        await close(writer)


async def _last_uid(pool: asyncpg.Pool, channel_id: int, uid: int) -> bool:
    return (await channels.load_state(pool, channel_id)).get("last_uid") == uid


async def _stored(pool: asyncpg.Pool, n: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) >= $1 FROM interactions", n))


async def test_writing_first_by_email_to_a_lead_who_never_wrote_there(
    client: Client,
    pool: asyncpg.Pool,
    dovecot: Dovecot,
    smtp_sink: tuple[SmtpCapture, int],
    auth: dict[str, str],
) -> None:
    """Leads a CRM knows (from a call, a form with a phone) with an email address: a
    supervisor's first letter opens a dialog of their own; a CRM's first letter leaves a
    closed dialog that the customer's answer reopens, threaded. Where no first letter can
    go, nothing is stored."""
    from tests.conftest import add_operator, operator_token

    capture, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    await email_channel(pool, dovecot, smtp_port, folder, poll_interval="3600")
    async with pool.acquire() as conn:
        await channels.create(conn, "form", "site", {"rate_limit": "0"})
    sam = await add_operator(pool, "sam", role="supervisor")
    as_sam = await operator_token(client, "sam")
    ids = []
    for n, (name, email) in enumerate((("Ivan", "Ivan@Example.com"), ("Olga", "olga@example.com"))):
        made = await client.post(
            "/api/v1/leads",
            json={"name": name, "emails": [email], "external_ids": {"crm": str(n)}},
            headers=auth,
        )
        ids.append((await made.json())["id"])
    ivan, olga = ids
    phone_only = (
        await (
            await client.post(
                "/api/v1/leads",
                json={"phones": ["+79120000031"], "external_ids": {"crm": "9"}},
                headers=auth,
            )
        ).json()
    )["id"]
    try:
        for lead, body, status, code in (
            (
                olga,
                {"text": "x", "channel": "mail", "to": "ivan@example.com"},
                422,
                "invalid_field",
            ),
            (olga, {"text": "x", "channel": "mail", "subject": 5}, 422, "invalid_field"),
            (olga, {"text": "x", "channel": "site"}, 409, "no_conversation"),  # a form cannot
            (phone_only, {"text": "x", "channel": "mail"}, 409, "no_conversation"),
        ):
            refused = await client.post(f"/api/v1/leads/{lead}/messages", json=body, headers=as_sam)
            assert refused.status == status and (await refused.json())["error"]["code"] == code
        assert await pool.fetchval("SELECT count(*) FROM dialogs") == 0

        first = await client.post(
            f"/api/v1/leads/{olga}/messages",
            json={"text": "Ваш заказ готов", "channel": "mail", "subject": "Заказ 7781"},
            headers=as_sam,
        )
        assert first.status == 201, await first.text()
        sent = await first.json()
        assert (sent["kind"], sent["delivery_state"], sent["author"]) == ("email", "sent", "sam")
        dialog = await one_row(
            pool, "SELECT status, operator_id FROM dialogs WHERE id = $1", sent["dialog_id"]
        )
        assert (dialog["status"], dialog["operator_id"]) == ("assigned", sam)
        mail = message_from_bytes(capture.contents[-1], policy=policy.default)
        assert mail["To"] == "olga@example.com" and mail["Subject"] == "Заказ 7781"
        assert mail["In-Reply-To"] is None
        created = await one_row(
            pool,
            "SELECT actor, data FROM domain_events WHERE type = 'dialog.created'"
            " AND dialog_id = $1",
            sent["dialog_id"],
        )
        assert created["data"]["via"] == "outbound" and created["actor"] == f"operator:{sam}"

        # A CRM's first letter: on record, closed until the customer answers.
        by_crm = await client.post(
            f"/api/v1/leads/{ivan}/messages",
            json={"text": "Счёт во вложении", "channel": "mail", "to": "ivan@example.com"},
            headers=auth,
        )
        assert by_crm.status == 201, await by_crm.text()
        crm_dialog = (await by_crm.json())["dialog_id"]
        assert await pool.fetchval("SELECT status FROM dialogs WHERE id = $1", crm_dialog) == (
            "closed"
        )
        crm_id = str(message_from_bytes(capture.contents[-1], policy=policy.default)["Message-ID"])
        await writer.append(
            _mail("<a1@example.com>", "Спасибо, получил", "Re: Счёт", In_Reply_To=crm_id),
            mailbox=folder,
        )
        answer = await eventually(
            lambda: pool.fetchrow(
                "SELECT dialog_id, lead_id FROM interactions WHERE direction = 'in'"
            ),
            timeout=15,
        )
        assert answer is not None and answer["dialog_id"] == crm_dialog
        assert answer["lead_id"] == ivan
        assert await pool.fetchval("SELECT status FROM dialogs WHERE id = $1", crm_dialog) != (
            "closed"
        )
    finally:
        await close(writer)
