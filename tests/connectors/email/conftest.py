"""An SMTP server for the email tests: `aiosmtpd` on a free loopback port, keeping what it
was given."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.fixtures.processes import free_port


class SmtpCapture:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []  # (MAIL FROM, RCPT TO, data)

    @property
    def contents(self) -> list[bytes]:
        return [content for _, _, content in self.received]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpCapture, int]]:
    capture = SmtpCapture()
    port = free_port()
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield capture, port
    finally:
        controller.stop()
