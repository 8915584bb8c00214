"""What providers and libraries say is cleaned before it is stored, answered or logged."""

from __future__ import annotations

import logging

import pytest

from hub.ports.connector import NotReady
from hub.redact import SecretFilter, clean

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.mark.parametrize(
    "text",
    [
        f"502, message='Bad Gateway', url='https://api.telegram.org/file/bot{TOKEN}/photos/1.jpg'",
        f"token {TOKEN} refused",
        "https://api.vk.com/method/messages.send?access_token=vk1.a.QWERTYUIOPASDFGH&v=5.199",
        "connect to postgresql://hub:QWERTYUIOPASDFGH@db:5432/hub failed",
        '{"auth_token": "QWERTYUIOPASDFGH", "x": 1}',
        "password=QWERTYUIOPASDFGH",
    ],
)
def test_credentials_are_cut_from_messages(text: str) -> None:
    cleaned = clean(text)
    assert "QWERTYUIOPASDFGH" not in cleaned and TOKEN.split(":")[1] not in cleaned
    # What a person needs stays: where it failed.
    assert "://" not in text or "://" in cleaned


def test_a_connector_error_is_clean_when_made() -> None:
    error = NotReady(f"file download failed: https://api.telegram.org/file/bot{TOKEN}/x.jpg")
    assert TOKEN not in str(error) and "api.telegram.org" in error.message


def test_the_log_filter_removes_configured_secrets_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = SecretFilter()
    secrets.remember(["viber-auth-token-4453b6ac1b3", "short"])
    caplog.handler.addFilter(secrets)
    log = logging.getLogger("test.redact")
    try:
        raise RuntimeError("auth viber-auth-token-4453b6ac1b3 refused")
    except RuntimeError:
        log.exception("sending with %s failed", "viber-auth-token-4453b6ac1b3")
    text = caplog.text
    assert "viber-auth-token-4453b6ac1b3" not in text
    assert "sending with *** failed" in text and "RuntimeError" in text
