"""The email channel's settings refuse what would break the mailbox session, with a message
that says what to write instead."""

from __future__ import annotations

import pytest

from connectors.email import EmailSettings
from hub.ports.settings import SettingsInvalid

BASE = {
    "imap_host": "imap.yandex.ru",
    "smtp_host": "smtp.yandex.ru",
    "username": "sales@example.ru",
    "password": "app-password",
}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"processed_flag": "Seen) (\\Deleted"}, "processed_flag is"),
        ({"processed_flag": "\\Deleted"}, "processed_flag is"),
        ({"processed_folder": "INBOX"}, "must differ"),
        ({"processed_folder": "Done\r\nA1 DELETE INBOX"}, "control characters"),
        ({"username": "sales"}, "email address"),
        ({"poll_interval": "1"}, "at least 5"),
        ({"imap_security": "ssl"}, "imap_security"),
    ],
)
def test_settings_that_would_break_the_session_are_refused(
    extra: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsInvalid, match=message.replace("\\", "\\\\")):
        EmailSettings.check("email", {**BASE, **extra})


def test_starttls_flags_and_folders_are_accepted() -> None:
    stored = EmailSettings.check(
        "email",
        {
            **BASE,
            "imap_security": "starttls",
            "imap_port": "143",
            "processed_flag": "$Hub",
            "processed_folder": "Обработано",
        },
    )
    assert stored["imap_security"] == "starttls" and stored["processed_folder"] == "Обработано"
    assert EmailSettings.check("email", {**BASE, "processed_flag": "\\Seen"})
