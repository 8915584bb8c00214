"""Hostile and broken mail through a real Dovecot and the hub's channel: malformed MIME, a
message with no sender, a 30 MB attachment and a 5,000-part multipart. None stalls the
poller or crashes it, nothing after them is lost, and each problem is written on the
interaction or in the log."""

from __future__ import annotations

import base64
import os
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from connectors.email.channel import MAX_FILES
from connectors.email.imap import close
from hub.context import HUB_KEY
from storage import channels
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mailbox import SmtpCapture, email_channel, mailbox_writer
from tests.fixtures.waiting import eventually

Client = TestClient[Any, Any]

MALFORMED = (
    b"From: Olga <olga@example.com>\r\n"
    b"Subject: =?utf-8?B?not-base64?=\r\n"
    b"Message-ID: <bad-mime@example.com>\r\n"
    b"Date: yesterday, probably\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"!!! this is not base64 !!!\r\n"
    b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAA\r\n"  # no closing boundary
)

NO_SENDER = (
    b"To: sales@example.test\r\nSubject: ghost\r\nMessage-ID: <ghost@example.com>\r\n\r\nwho?\r\n"
)


def _huge() -> bytes:
    data = base64.encodebytes(os.urandom(30 * 1024 * 1024)).decode()
    return (
        "From: Boris <boris@example.com>\r\nSubject: big\r\nMessage-ID: <huge@example.com>\r\n"
        'Content-Type: multipart/mixed; boundary="h"\r\n\r\n'
        "--h\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nВот видео\r\n"
        "--h\r\nContent-Type: video/mp4\r\nContent-Disposition: attachment; filename=v.mp4\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{data}--h--\r\n"
    ).encode()


def _many_parts(n: int = 5000) -> bytes:
    parts = "".join(
        f"--p\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=f{i}.txt"
        f"\r\n\r\n{i}\r\n"
        for i in range(n)
    )
    return (
        "From: Gleb <gleb@example.com>\r\nSubject: parts\r\nMessage-ID: <parts@example.com>\r\n"
        'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
        "--p\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nмного файлов\r\n"
        f"{parts}--p--\r\n"
    ).encode()


FINE = (
    "From: Ivan <ivan@example.com>\r\nSubject: ok\r\nMessage-ID: <fine@example.com>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nОбычное письмо\r\n"
).encode()


@pytest.mark.timeout(180)
async def test_broken_and_hostile_mail_neither_stalls_nor_loses_anything(
    client: Client,
    pool: asyncpg.Pool,
    dovecot: Dovecot,
    smtp_sink: tuple[SmtpCapture, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, smtp_port = smtp_sink
    writer, folder = await mailbox_writer(dovecot)
    try:
        for raw in (MALFORMED, NO_SENDER, _huge(), _many_parts(), FINE):
            assert (await writer.append(raw, mailbox=folder)).result == "OK"
        channel = await email_channel(pool, dovecot, smtp_port, folder)
        # Every message handled (unrelated senders are stored side by side, so in any order).
        await eventually(lambda: _all_taken(pool, channel.id), timeout=120)
        rows = {
            r["external_id"]: r
            for r in await pool.fetch(
                "SELECT i.external_id, i.text, i.id, e.email FROM interactions i"
                " JOIN lead_emails e ON e.lead_id = i.lead_id"
            )
        }
        assert sorted(rows) == [
            "<bad-mime@example.com>",
            "<fine@example.com>",
            "<huge@example.com>",
            "<parts@example.com>",
        ]
        assert rows["<bad-mime@example.com>"]["email"] == "olga@example.com"
        # The sender-less message is left in the mailbox and said so in the log.
        assert any("has no sender address" in r.getMessage() for r in caplog.records)

        big = await pool.fetch(
            "SELECT name, state, note FROM attachments WHERE interaction_id = $1",
            rows["<huge@example.com>"]["id"],
        )
        assert [(a["name"], a["state"]) for a in big] == [("v.mp4", "refused")]
        assert "over the" in big[0]["note"]

        parts = await pool.fetch(
            "SELECT name, state, note FROM attachments WHERE interaction_id = $1 ORDER BY id",
            rows["<parts@example.com>"]["id"],
        )
        assert len(parts) == MAX_FILES + 1
        assert parts[-1]["state"] == "refused" and "5000 files" in parts[-1]["note"]
        assert rows["<parts@example.com>"]["text"] == "много файлов"
        stored = client.app[HUB_KEY].settings.attachments_dir
        files_on_disk = sum(1 for f in stored.rglob("*") if f.is_file())
        assert files_on_disk <= MAX_FILES + 2  # the malformed PDF and the 20 kept
    finally:
        await close(writer)


async def _all_taken(pool: asyncpg.Pool, channel_id: int) -> bool:
    return (await channels.load_state(pool, channel_id)).get("last_uid") == 5
