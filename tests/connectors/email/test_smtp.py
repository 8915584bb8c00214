"""Replies by email through a real SMTP server (aiosmtpd): threading headers, our Message-ID
reused on retry, text and HTML parts, attachments, RFC 3834 marking of automatic replies, no
header injection, and the customer's answer threads back (parsed by our own parser)."""

from __future__ import annotations

import re
import ssl
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from connectors.email.parse import parse
from connectors.email.smtp import MailFileOut, Reply, SmtpSettings, build, send
from hub.ports.connector import AuthFailed, NotReady
from tests.fixtures.mailbox import SmtpCapture
from tests.fixtures.processes import free_port


def _settings(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        from_address="sales@romashka.ru",
        from_name="Ромашка",
        security="plain",
    )


async def test_a_reply_threads_and_the_answer_finds_it(smtp_sink: tuple[SmtpCapture, int]) -> None:
    capture, port = smtp_sink
    reply = Reply(
        interaction_id=42,
        to="ivan@example.com",
        text="Здравствуйте!\nСчёт во вложении.",
        subject="RE: Re: Заказ №15",
        in_reply_to="<c2@example.com>",
        references=("<c1@example.com>",),
        files=(MailFileOut("счёт.pdf", "application/pdf", b"%PDF-1.4"),),
    )
    sent_id = await send(build(reply, _settings(port)), _settings(port))
    assert sent_id == "<reply-42@romashka.ru>"
    # A retry of the same reply keeps its Message-ID.
    assert build(reply, _settings(port))["Message-ID"] == sent_id
    mail_from, rcpts, raw = capture.received[0]
    assert (mail_from, rcpts) == ("sales@romashka.ru", ["ivan@example.com"])
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == "Re: Заказ №15"
    assert mail["In-Reply-To"] == "<c2@example.com>"
    assert mail["References"] == "<c1@example.com> <c2@example.com>"
    assert mail["Auto-Submitted"] is None
    parsed = parse(raw)
    assert parsed.text == "Здравствуйте!\nСчёт во вложении."
    assert [f.name for f in parsed.files] == ["счёт.pdf"]
    assert parsed.html is not None and "<br>" in parsed.html

    answer = (
        "From: Ivan <ivan@example.com>\r\nTo: sales@romashka.ru\r\nSubject: Re: Заказ №15\r\n"
        f"Message-ID: <c3@example.com>\r\nIn-Reply-To: {sent_id}\r\n"
        f"References: <c1@example.com> <c2@example.com> {sent_id}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nСпасибо!\r\n"
    ).encode()
    threaded = parse(answer)
    assert threaded.references[0] == "<c1@example.com>" and threaded.in_reply_to == sent_id


async def test_automatic_replies_are_marked_and_headers_cannot_be_injected(
    smtp_sink: tuple[SmtpCapture, int],
) -> None:
    capture, port = smtp_sink
    evil = Reply(
        interaction_id=7,
        to="ivan@example.com\r\nBcc: everyone@example.com",
        text="We will answer within the hour.",
        subject="Hi\r\nBcc: everyone@example.com",
        automatic=True,
    )
    await send(build(evil, _settings(port)), _settings(port))
    _, rcpts, raw = capture.received[0]
    assert "everyone@example.com" not in rcpts
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["Bcc"] is None and "\n" not in str(mail["Subject"])


async def test_an_unreachable_server_is_a_retry() -> None:
    settings = SmtpSettings(
        host="127.0.0.1", port=free_port(), from_address="a@b.ru", security="plain", timeout=3
    )
    with pytest.raises(NotReady):
        await send(build(Reply(1, "c@d.ru", "x"), settings), settings)


# aiosmtpd warns that AUTH is required without requiring STARTTLS: on port 465 the whole
# session is TLS, which it does not see.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_replies_go_over_tls_or_starttls_with_a_login(security: str) -> None:
    """The server takes mail only after AUTH, and AUTH only over TLS (as providers do): the
    login and the mail both went through the encrypted session."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    capture = SmtpCapture()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"app-password-1", handled=False)

    port = free_port()
    tls = (
        {"ssl_context": server_context}
        if security == "tls"
        else {
            "tls_context": server_context,
            "require_starttls": True,
        }
    )
    controller = Controller(
        capture,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        # aiosmtpd offers AUTH before TLS only if told; on port 465 the session is TLS.
        auth_require_tls=security == "starttls",
        **tls,
    )
    controller.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=port,
            from_address="sales@romashka.ru",
            username="sales@romashka.ru",
            password="app-password-1",
            security=security,
            tls_context=client_context,
            timeout=5,
        )
        await send(build(Reply(1, "ivan@example.com", "Добрый день"), settings), settings)
        assert logins == [(b"sales@romashka.ru", b"app-password-1")]
        assert len(capture.received) == 1
        wrong = replace(settings, password="wrong")
        with pytest.raises(AuthFailed):
            await send(build(Reply(2, "ivan@example.com", "x"), wrong), wrong)
        untrusted = replace(settings, tls_context=None)  # the system's CAs only
        with pytest.raises(NotReady):
            await send(build(Reply(3, "ivan@example.com", "x"), untrusted), untrusted)
        assert len(capture.received) == 1
    finally:
        controller.stop()


async def test_a_long_russian_subject_keeps_every_space(smtp_sink: tuple[SmtpCapture, int]) -> None:
    """CPython's own folding lost the space after "лифта," (it fell between two
    encoded-words, where RFC 2047 ignores whitespace)."""
    capture, port = smtp_sink
    subject = "Нужна доставка дивана на третий этаж без лифта, в субботу утром, к 10:00 — Ромашка"
    reply = Reply(interaction_id=9, to="ivan@example.com", text="Да", subject=subject)
    await send(build(reply, _settings(port)), _settings(port))
    raw = capture.contents[0]
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == f"Re: {subject}"
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    words = re.findall(r"=\?utf-8\?b\?[^?]*\?=", head)
    assert words and all(len(w) <= 75 for w in words)
    assert all(len(line) <= 78 for line in head.split("\r\n"))
