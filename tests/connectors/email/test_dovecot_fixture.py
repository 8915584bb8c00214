"""The Dovecot fixture is a real IMAP server: a message appended by one connection is pushed
to another waiting in IDLE, and read back byte for byte."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.policy import SMTP

from aioimaplib import IMAP4

from connectors.email.imap import close
from tests.fixtures.dovecot import Dovecot


async def _client(server: Dovecot) -> IMAP4:
    client = IMAP4(host=server.host, port=server.port, timeout=10)
    await client.wait_hello_from_server()
    assert (await client.login(server.user, server.password)).result == "OK"
    return client


async def test_idle_sees_an_appended_message(dovecot: Dovecot) -> None:
    watcher = await _client(dovecot)
    writer = await _client(dovecot)
    try:
        await watcher.select("INBOX")
        idle = await watcher.idle_start(timeout=60)
        mail = EmailMessage()
        mail["From"] = "Ivan <ivan@example.com>"
        mail["To"] = dovecot.user
        mail["Subject"] = "Заказ"
        mail.set_content("Здравствуйте!")
        raw = mail.as_bytes(policy=SMTP)  # IMAP speaks CRLF
        assert (await writer.append(raw, mailbox="INBOX")).result == "OK"
        push = await watcher.wait_server_push(timeout=10)
        assert any(b"EXISTS" in line for line in push)
        watcher.idle_done()
        await asyncio.wait_for(idle, 5)
        fetched = await watcher.uid("fetch", "1:*", "(UID BODY.PEEK[])")
        assert fetched.result == "OK" and bytes(fetched.lines[1]) == raw
    finally:
        await close(watcher)
        await close(writer)
