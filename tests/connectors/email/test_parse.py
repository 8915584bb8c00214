"""Reading mail as real clients write it: charsets, encoded-words, HTML-only mail, quoted
history in Russian and English, signatures, attachments, machine mail and bounces."""

from __future__ import annotations

import base64
from email.header import Header

from connectors.email.parse import parse, split_reply


def _b64(text: str, charset: str) -> str:
    return base64.b64encode(text.encode(charset)).decode()


OUTLOOK_CP1251 = (
    "From: =?windows-1251?B?" + _b64("Иван Петров", "cp1251") + "?= <Ivan.Petrov@Example.RU>\r\n"
    "To: sales@romashka.ru\r\n"
    "Subject: =?windows-1251?B?" + _b64("RE: Счёт №15", "cp1251") + "?=\r\n"
    "Date: Mon, 16 Nov 2026 10:15:00 +0300\r\n"
    "Message-ID: <AM0PR01MB1234@outlook.com>\r\n"
    "In-Reply-To: <reply-1@hub.romashka.ru>\r\n"
    "References: <first@romashka.ru> <reply-1@hub.romashka.ru>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: text/plain; charset="windows-1251"\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\n"
    + _b64(
        "Добрый день!\r\nОплату отправили сегодня.\r\n\r\nС уважением,\r\nИван Петров\r\n"
        "тел. +7 912 345-67-89\r\n\r\n"
        "________________________________\r\n"
        "От: Ромашка <sales@romashka.ru>\r\nОтправлено: 15 ноября 2026 г. 18:00\r\n"
        "Кому: Иван Петров\r\nТема: Счёт №15\r\n\r\nЗдравствуйте! Счёт во вложении.\r\n",
        "cp1251",
    )
).encode()

THE_BAT_KOI8 = (
    "From: =?koi8-r?Q?=EF=CC=D8=C7=C1?= <olga@mail.ru>\r\n"
    "To: sales@romashka.ru\r\n"
    "Subject: =?koi8-r?B?" + _b64("Вопрос по доставке", "koi8-r") + "?=\r\n"
    "Message-ID: <1234567.20261116@mail.ru>\r\n"
    "Content-Type: text/plain; charset=koi8-r\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n"
).encode() + (
    "Здравствуйте.\r\nКогда привезёте заказ?\r\n\r\n"
    "Вы писали 15 ноября 2026 г., 18:00:\r\n\r\n> Заказ собран.\r\n"
).encode("koi8-r")

GMAIL_RU = (
    "From: Anna <anna@gmail.com>\r\nTo: sales@romashka.ru\r\nSubject: Re: Заказ\r\n"
    "Message-ID: <CAF=abc@mail.gmail.com>\r\n"
    'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
    '--b1\r\nContent-Type: text/plain; charset="UTF-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    "Да, подходит.\r\n\r\n"
    "пн, 16 нояб. 2026 г. в 10:00, Ромашка <sales@romashka.ru>:\r\n\r\n"
    "> Доставка завтра с 10 до 14?\r\n\r\n"
    '--b1\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n'
    "<div>Да, подходит.</div><blockquote>Доставка завтра?</blockquote>\r\n"
    "--b1--\r\n"
).encode()

THUNDERBIRD_EN = (
    b"From: John Smith <john@example.com>\r\nTo: sales@romashka.ru\r\nSubject: Re: Quote\r\n"
    b"Message-ID: <a1b2@example.com>\r\n"
    b"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n\r\n"
    b"Thanks, we accept the quote.\r\n\r\n-- \r\nJohn Smith\r\n+1 650 253 0000\r\n\r\n"
    b"On 11/16/26 10:00, Romashka wrote:\r\n> Here is our quote.\r\n"
)

APPLE_MAIL = (
    b"From: Kate <kate@icloud.com>\r\nTo: sales@romashka.ru\r\nSubject: Re: Invoice\r\n"
    b"Message-ID: <5F3E@icloud.com>\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    b"Paid today.\r\n\r\nSent from my iPhone\r\n\r\n"
    b"> On 16 Nov 2026, at 10:00, Romashka <sales@romashka.ru> wrote:\r\n>\r\n> Invoice attached.\r\n"
)

HTML_ONLY = (
    "From: shop@site.ru\r\nTo: sales@romashka.ru\r\nSubject: Hello\r\n"
    "Content-Type: text/html; charset=utf-8\r\n\r\n"
    "<p>Привет, <b>мир</b>!</p><script>alert(1)</script><img src=x onerror=alert(2)>"
).encode()


def test_outlook_cp1251_with_encoded_words_and_an_outlook_header_block() -> None:
    mail = parse(OUTLOOK_CP1251)
    assert mail.from_name == "Иван Петров" and mail.from_address == "ivan.petrov@example.ru"
    assert mail.subject == "RE: Счёт №15"
    assert mail.message_id == "<AM0PR01MB1234@outlook.com>"
    assert mail.in_reply_to == "<reply-1@hub.romashka.ru>"
    assert mail.references == ("<first@romashka.ru>", "<reply-1@hub.romashka.ru>")
    assert mail.text == "Добрый день!\nОплату отправили сегодня."
    assert "Счёт во вложении" in mail.full_text
    assert mail.signature_phones == ("+7 912 345-67-89",)
    assert mail.automated is None


def test_the_bat_koi8_r() -> None:
    mail = parse(THE_BAT_KOI8)
    assert mail.from_name == "Ольга" and mail.subject == "Вопрос по доставке"
    assert mail.text == "Здравствуйте.\nКогда привезёте заказ?"


def test_gmail_russian_quote_header_and_alternative_parts() -> None:
    mail = parse(GMAIL_RU)
    assert mail.text == "Да, подходит."
    assert mail.html is not None and "<blockquote>" in mail.html


def test_thunderbird_and_apple_mail_in_english() -> None:
    thunderbird = parse(THUNDERBIRD_EN)
    assert thunderbird.text == "Thanks, we accept the quote."
    assert thunderbird.signature_phones == ("+1 650 253 0000",)
    assert parse(APPLE_MAIL).text == "Paid today.\n\nSent from my iPhone"


def test_html_only_mail_becomes_text_and_its_html_is_sanitised() -> None:
    mail = parse(HTML_ONLY)
    assert mail.text == "Привет, мир!"
    assert mail.html is not None and "<script" not in mail.html and "onerror" not in mail.html


def test_a_broken_declared_charset_is_still_read() -> None:
    raw = (
        b"From: x@y.ru\r\nSubject: t\r\nContent-Type: text/plain; charset=x-unknown-1251\r\n\r\n"
        + "Привет".encode("cp1251")
    )
    assert parse(raw).text == "Привет"


def test_attachments_and_a_vcard_are_files() -> None:
    raw = (
        "From: Ivan <ivan@example.com>\r\nSubject: card\r\n"
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        "--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nМоя визитка\r\n"
        '--m\r\nContent-Type: text/vcard; name="ivan.vcf"\r\n'
        'Content-Disposition: attachment; filename="ivan.vcf"\r\n\r\n'
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ivan\r\nTEL:+79123456789\r\nEND:VCARD\r\n"
        "--m\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="=?utf-8?B?'
        + _b64("счёт.pdf", "utf-8")
        + '?="\r\n\r\n'
        + base64.b64encode(b"%PDF-1.4").decode()
        + "\r\n--m--\r\n"
    ).encode()
    mail = parse(raw)
    assert [(f.name, f.content_type) for f in mail.files] == [
        ("ivan.vcf", "text/vcard"),
        ("счёт.pdf", "application/pdf"),
    ]
    assert mail.files[1].data == b"%PDF-1.4" and b"TEL:+79123456789" in mail.files[0].data


def test_inline_pictures_of_a_related_body_and_a_forwarded_mail_are_files() -> None:
    """Outlook and Apple Mail nest the body: mixed → alternative → related (HTML + the
    pictures it shows by Content-ID). Every picture is a file, the text parts are not."""
    raw = (
        "From: Ivan <ivan@example.com>\r\nSubject: pics\r\n"
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        '--m\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
        "--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nСмотрите фото\r\n"
        '--a\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Смотрите фото</p><img src="cid:img1@x">\r\n'
        "--r\r\nContent-Type: image/png\r\nContent-ID: <img1@x>\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"\x89PNG fake").decode()
        + "\r\n--r--\r\n--a--\r\n"
        "--m\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: boss@example.com\r\nSubject: fwd\r\n\r\nforwarded body\r\n"
        "--m--\r\n"
    ).encode()
    mail = parse(raw)
    assert mail.text == "Смотрите фото"
    assert [(f.name, f.content_type, f.inline) for f in mail.files] == [
        ("part.png", "image/png", True),
        ("forwarded.eml", "message/rfc822", True),
    ]
    assert mail.files[0].data == b"\x89PNG fake" and b"forwarded body" in mail.files[1].data


def test_machine_mail_is_recognised() -> None:
    base = "From: robot@shop.ru\r\nSubject: s\r\nContent-Type: text/plain\r\n"
    for header, reason in (
        ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted: auto-replied"),
        ("Precedence: bulk\r\n", "Precedence: bulk"),
        ("X-Autoreply: yes\r\n", "X-Autoreply"),
        ("List-Id: <news.shop.ru>\r\n", "List-Id"),
        ("Return-Path: <>\r\n", "Return-Path: <>"),
    ):
        assert parse((base + header + "\r\nbody").encode()).automated == reason
    assert parse((base + "Auto-Submitted: no\r\n\r\nbody").encode()).automated is None


def test_a_bounce_names_the_reply_it_returns() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.romashka.ru\r\nTo: sales@romashka.ru\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.romashka.ru\r\n\r\nFinal-Recipient: rfc822; gone@example.com\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n"
        b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: sales@romashka.ru\r\nTo: gone@example.com\r\nMessage-ID: <reply-9@hub.romashka.ru>\r\n"
        b"--r--\r\n"
    )
    mail = parse(raw)
    assert mail.automated == "delivery report"
    assert mail.bounced_ids == ("<reply-9@hub.romashka.ru>",)


def test_header_values_lose_their_line_breaks() -> None:
    subject = Header("Re: заказ", "utf-8").encode()
    raw = f"From: a@b.ru\r\nSubject: {subject}\r\n  continued\r\n\r\nx".encode()
    assert "\n" not in (parse(raw).subject or "") and "\r" not in (parse(raw).subject or "")


def test_a_reply_without_history_is_kept_whole() -> None:
    assert split_reply("Just one line.") == ("Just one line.", "")


async def test_an_email_over_the_limit_still_reaches_its_lead_as_a_note() -> None:
    """Only the headers were fetched: the lead is found by the sender and the interaction
    says where the message is, instead of the message being silently skipped."""
    from datetime import UTC, datetime

    from connectors.email.channel import EmailConnector
    from connectors.email.imap import Fetched
    from hub.domain import Channel, ChannelId
    from tests.connectors.test_inbound_properties import _Ingest, _ports

    ports = _ports()
    connector = EmailConnector(ports)
    channel = Channel(ChannelId(1), "email", "mail", True, {}, datetime.now(UTC))
    headers = (
        b"From: Ivan <ivan@example.com>\r\nSubject: Big scan\r\nMessage-ID: <big@example.com>\r\n"
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
    )
    batch = [Fetched(headers, 50 * 1024 * 1024, 7, 3, False)]
    await connector.store(channel, await connector.prepare(channel, batch), None)
    ingest = ports.ingest
    assert isinstance(ingest, _Ingest)
    [message] = ingest.messages
    assert message.emails == ("ivan@example.com",) and message.subject == "Big scan"
    assert message.text is not None and "51200 KB" in message.text and not message.attachments


def test_raw_8bit_headers_and_a_comma_inside_an_encoded_name() -> None:
    """Some clients put cp1251 bytes straight into headers; an encoded display name may hold
    a comma that must not split the address list."""
    raw = (
        b"From: =?utf-8?B?" + _b64("Петров, Иван", "utf-8").encode() + b"?= <ivan@example.ru>\r\n"
        b"Subject: " + "Счёт за ноябрь".encode("cp1251") + b"\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nok\r\n"
    )
    mail = parse(raw)
    assert (mail.from_name, mail.from_address) == ("Петров, Иван", "ivan@example.ru")
    assert mail.subject == "Счёт за ноябрь"
