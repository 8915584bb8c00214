"""The parser never raises on what a mailbox may hold: arbitrary bytes, and real letters
with bytes changed, cut or repeated anywhere (hypothesis)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import channel as channel_module
from connectors.email.imap import Fetched
from connectors.email.parse import ParsedMail, parse
from hub.domain import Channel, ChannelId
from hub.ports import ChannelPosition
from tests.connectors.email.test_parse import (
    APPLE_MAIL,
    GMAIL_RU,
    HTML_ONLY,
    OUTLOOK_CP1251,
    THE_BAT_KOI8,
    THUNDERBIRD_EN,
)
from tests.connectors.test_inbound_properties import _Ingest, _ports

LETTERS = [OUTLOOK_CP1251, THE_BAT_KOI8, GMAIL_RU, THUNDERBIRD_EN, APPLE_MAIL, HTML_ONLY]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    letter = bytearray(draw(st.sampled_from(LETTERS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(letter)))
        action = draw(st.sampled_from(["insert", "delete", "repeat"]))
        piece = draw(
            st.sampled_from(
                [
                    b"\r\n",
                    b"=?",
                    b"?=",
                    b"=?utf-8?B?",
                    b"--b1",
                    b'boundary="',
                    b"\x00",
                    b"\xff\xfe",
                    b"Content-Type: multipart/mixed; boundary=",
                    b"charset=",
                    b"<",
                    b">",
                    b",",
                    b'"',
                    b"\r\n\r\n",
                ]
            )
            | st.binary(max_size=20)
        )
        if action == "insert":
            letter[at:at] = piece
        elif action == "delete":
            del letter[at : at + draw(st.integers(1, 40))]
        else:
            letter[at:at] = letter[at : at + draw(st.integers(1, 80))] * 3
    return bytes(letter)


@settings(
    max_examples=int(os.environ.get("HUB_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.one_of(damaged(), st.binary(max_size=2000)))
def test_the_parser_reads_anything_without_raising(raw: bytes) -> None:
    mail = parse(raw)
    assert isinstance(mail.text, str) and isinstance(mail.files, tuple)


async def test_a_letter_the_parser_fails_on_is_left_in_the_mailbox_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should a letter still break the parser, the connector names it in the log and goes
    on: the rest of its batch is stored, and the watcher moves past it instead of failing
    on it forever."""
    poisoned = b"From: a@b.ru\r\n\r\npoison"

    def broken(raw: bytes) -> ParsedMail:
        if raw == poisoned:
            raise RuntimeError("a parser bug")
        return parse(raw)

    monkeypatch.setattr(channel_module, "parse", broken)
    ports = _ports()
    connector = channel_module.EmailConnector(ports)
    channel = Channel(
        id=ChannelId(7),
        kind="email",
        name="mail",
        enabled=True,
        settings={},
        created_at=datetime.now(UTC),
    )
    fine = b"From: c@d.ru\r\nMessage-ID: <fine@d.ru>\r\n\r\nhello"
    state = {"uidvalidity": 5, "last_uid": 43}
    batch = [Fetched(poisoned, 20, 5, 42, True), Fetched(fine, 40, 5, 43, True)]
    await connector.store(channel, await connector.prepare(channel, batch), state)
    assert any(
        "message 5:42 could not be read; left in the mailbox" in r.getMessage()
        for r in caplog.records
    )
    ingest = ports.ingest
    assert isinstance(ingest, _Ingest)
    assert [m.external_id for m in ingest.messages] == ["<fine@d.ru>"]
    assert ingest.positions == [ChannelPosition(ChannelId(7), state)]
