"""The email channel: a shared mailbox read over IMAP (IDLE, or polling), replies by SMTP.

`parse` reads one message as the hub needs it, `imap.MailboxWatcher` takes every message of
a folder exactly once, `smtp` builds and sends replies that thread, `channel.EmailConnector`
joins them to the hub (lead by sender, dialog by thread, bounces, vCards).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.ports import HubPorts
from hub.ports.connector import Capabilities, Connector, ConnectorDescriptor, always
from hub.ports.settings import ChannelSettings, SettingsInvalid, setting

KIND = "email"
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# RFC 3501's system flags a client may set, or a keyword (an atom; kept to a safe alphabet).
_FLAG = re.compile(r"^(\\(Seen|Flagged|Answered)|[A-Za-z0-9$_.-]{1,64})$")


@dataclass(frozen=True, kw_only=True)
class EmailSettings(ChannelSettings):
    imap_host: str = setting(required=True, help="the IMAP server, e.g. imap.yandex.ru")
    imap_port: int = setting(default=993, help="993 with tls, 143 with starttls or plain")
    imap_security: str = setting(
        default="tls", choices=("tls", "starttls", "plain"), help="plain only for local servers"
    )
    smtp_host: str = setting(required=True, help="the SMTP server, e.g. smtp.yandex.ru")
    smtp_port: int = setting(default=465, help="465 with tls, 587 with starttls")
    smtp_security: str = setting(default="tls", choices=("tls", "starttls", "plain"))
    username: str = setting(required=True, help="the mailbox login (usually the address)")
    password: str = setting(required=True, secret=True, help="an app password where required")
    smtp_username: str = setting(help="when SMTP takes another login than IMAP")
    smtp_password: str = setting(secret=True, help="when SMTP takes another password")
    folder: str = setting(default="INBOX")
    from_address: str = setting(help="the address replies are sent from (the login by default)")
    from_name: str = setting(help="the name shown with replies")
    poll_interval: int = setting(default=60, help="seconds between checks without IDLE")
    processed_flag: str = setting(
        help="a flag set on each message taken: \\Seen (read), \\Flagged or a keyword like $Hub"
    )
    processed_folder: str = setting(help="a folder each message taken is moved to")
    history_days: int = setting(
        default=1,
        help="how many days of mail already in the folder the first connection takes"
        " (-1: all of it)",
    )

    def validate(self) -> None:
        if self.processed_flag and not _FLAG.match(self.processed_flag):
            raise SettingsInvalid(
                "processed_flag is \\Seen, \\Flagged, \\Answered or a keyword of letters,"
                " digits and $_-."
            )
        if self.processed_folder and self.processed_folder == self.folder:
            raise SettingsInvalid("processed_folder must differ from folder")
        if any(ord(c) < 0x20 for c in self.folder + self.processed_folder):
            raise SettingsInvalid("folder names cannot hold control characters")
        sender = self.from_address or self.username
        if not _ADDRESS.match(sender):
            raise SettingsInvalid("from_address (or the username) must be an email address")
        if self.history_days < -1:
            raise SettingsInvalid("history_days is -1 (all) or a number of days")
        if self.poll_interval < 5:
            raise SettingsInvalid("poll_interval is at least 5 seconds")


def _make(ports: HubPorts) -> Connector:
    from connectors.email.channel import EmailConnector

    return EmailConnector(ports)


DESCRIPTOR = ConnectorDescriptor(
    kind=KIND,
    title="Email",
    settings=EmailSettings,
    capabilities=Capabilities(
        interaction_kind=KIND, sends_files=True, needs_runner=always, writes_first="email"
    ),
    factory=_make,
    routes=(),
)
