"""Keeping credentials out of everything the hub says: API answers, websocket frames, stored
notes and log lines.

Providers put credentials where errors repeat them: the Telegram Bot API puts the bot token
in every URL path, Viber and VK echo request URLs, libraries format those URLs into their
exception text. So nothing a provider, library or exception says is shown as is: it is
`clean`ed of URLs (only scheme and host stay), of token-shaped strings and of
`key=value` credentials, and the log filter also removes every secret a channel was
configured with, in case one turns up in a shape no pattern knows.

A leaf module: connectors, webhooks and storage callers may all use it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

# A URL's path and query may carry a token (Telegram's `/bot<token>/`, `/file/bot<token>/`,
# `?access_token=`); its scheme and host are what a person needs to know where it failed.
_URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://([^/\s?#'\"<>]+)[^\s'\"<>]*", re.IGNORECASE)
# user:password@ in what remains of a host.
_USERINFO = re.compile(r"^[^@/]*@")
# A Telegram bot token anywhere: <bot id>:<35 characters>.
_BOT_TOKEN = re.compile(r"\b(?:bot)?\d{5,}:[A-Za-z0-9_-]{30,}")
# key=value and "key": "value" pairs whose key names a credential.
_CREDENTIAL_PAIR = re.compile(
    r"""(?ix)
    (\b[\w-]*(?:token|secret|password|passwd|api[_-]?key|auth|signature|sig|salt)[\w-]*
     ["']?\s*[:=]\s*["']?)
    ([^\s"'&,;}]+)
    """
)
MASK = "***"
# Shorter values are too likely to appear by chance in a message to be masked everywhere.
MIN_SECRET_LENGTH = 6


def clean(text: object, secrets: Iterable[str] = ()) -> str:
    """`text` with URLs cut to their host, token-shaped strings and credential pairs masked,
    and each of `secrets` replaced."""
    out = str(text)
    for secret in sorted(
        {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
    ):
        out = out.replace(secret, MASK)
    out = _URL.sub(_url_host, out)
    out = _BOT_TOKEN.sub(MASK, out)
    return _CREDENTIAL_PAIR.sub(lambda m: m.group(1) + MASK, out)


def _url_host(match: re.Match[str]) -> str:
    host = _USERINFO.sub("", match.group(2))
    rest = match.group(0)[len(match.group(1)) + 3 + len(match.group(2)) :]
    return f"{match.group(1)}://{host}" + ("/…" if rest.strip("/") else "")


class SecretFilter(logging.Filter):
    """A logging filter for the handlers of `hub serve`: each record's message and traceback
    are cleaned before any handler formats them. Channel secrets are added as channels are
    loaded (`remember`); the patterns of `clean` apply to every record."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def remember(self, values: Iterable[str]) -> None:
        fresh = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
        if fresh - self._secrets:
            with self._lock:
                self._secrets = self._secrets | fresh

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: say so, cleaned
            message = f"{record.msg!r} {record.args!r}"
        record.msg = clean(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters print `exc_text` when it is set, so the cleaned text is what is
            # written; `exc_info` stays for handlers that want the exception itself.
            record.exc_text = clean(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = clean(record.stack_info, secrets)
        return True


SECRETS = SecretFilter()


def install(handlers: Iterable[logging.Handler]) -> None:
    """Put the one process-wide filter on each handler (idempotent)."""
    for handler in handlers:
        if SECRETS not in handler.filters:
            handler.addFilter(SECRETS)


def remember(values: Iterable[str]) -> None:
    """Secrets that must never appear in a log line of this process."""
    SECRETS.remember(values)
