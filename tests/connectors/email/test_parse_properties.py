"""The parser never raises on what a mailbox may hold: arbitrary bytes, and real letters
with bytes changed, cut or repeated anywhere (hypothesis)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import channel as channel_module
from connectors.email.parse import ParsedMail, parse, related_lanes
from hub.domain import Channel, ChannelId
from hub.ports import HubPorts
from tests.connectors.email.test_parse import (
    APPLE_MAIL,
    GMAIL_RU,
    HTML_ONLY,
    OUTLOOK_CP1251,
    THE_BAT_KOI8,
    THUNDERBIRD_EN,
)

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
    lanes = related_lanes({1: raw, 2: raw})
    assert sorted(uid for lane in lanes for uid in lane) == [1, 2]


async def test_a_letter_the_parser_fails_on_is_left_in_the_mailbox_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should a letter still break the parser, the connector names it in the log and returns,
    so the watcher moves on to the next one instead of failing on it forever."""

    def broken(raw: bytes) -> ParsedMail:
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(channel_module, "parse", broken)
    connector = channel_module.EmailConnector(cast(HubPorts, None))  # never reached
    channel = Channel(
        id=ChannelId(7),
        kind="email",
        name="mail",
        enabled=True,
        settings={},
        created_at=datetime.now(UTC),
    )
    await connector.take(channel, b"From: a@b.ru\r\n\r\nx", 20, 5, 42, True)
    assert any(
        "message 5:42 could not be read; left in the mailbox" in r.getMessage()
        for r in caplog.records
    )
