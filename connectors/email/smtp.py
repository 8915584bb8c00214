"""Replies by email that thread in the customer's mail client, sent with `aiosmtplib`.

A reply carries `In-Reply-To` (the customer's latest Message-ID), `References` (that mail's
References plus its id, RFC 5322 §3.6.4), a `Re:` subject and a Message-ID of our domain made
from the outbound interaction's id, so a retry of the same reply reuses it and the customer's
answer finds its thread. Text and HTML parts, attachments. Automatic replies carry
`Auto-Submitted: auto-replied` (RFC 3834) so that no two robots answer each other forever.
Header values never carry CR/LF: whatever an operator or a customer typed cannot add a header.
"""

from __future__ import annotations

import base64
import contextlib
import html
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formataddr, formatdate

import aiosmtplib

from hub.ports.connector import AuthFailed, ChannelConfigError, NotReady

_RE = re.compile(r"^\s*(re|ответ|отв|aw|sv)\s*(\[\d+\])?\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    from_address: str
    from_name: str = ""
    username: str = ""
    password: str = ""
    security: str = "tls"  # tls | starttls | plain
    timeout: float = 30.0
    # The certificates trusted: the system's by default (tests pass their own CA's).
    tls_context: ssl.SSLContext | None = None


@dataclass(frozen=True)
class MailFileOut:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Reply:
    interaction_id: int
    to: str
    text: str
    subject: str | None = None  # the thread's subject, as the customer wrote it
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    files: Sequence[MailFileOut] = field(default_factory=tuple)
    automatic: bool = False
    # The business's first letter where the customer never wrote: its own subject, no `Re:`.
    first: bool = False


def single_line(value: str) -> str:
    """A header value: CR, LF and other control characters become spaces."""
    return " ".join("".join(c if c >= " " else " " for c in value).split())


def reply_subject(subject: str | None) -> str:
    """`Re: ` once before the thread's subject, however many prefixes clients stacked."""
    base = single_line(subject or "")
    while (shorter := _RE.sub("", base, count=1)) != base:
        base = shorter
    return f"Re: {base.strip()}" if base.strip() else "Re:"


def message_id(interaction_id: int, from_address: str) -> str:
    domain = from_address.rsplit("@", 1)[-1] if "@" in from_address else "hub.invalid"
    return f"<reply-{interaction_id}@{single_line(domain)}>"


class _ReplyPolicy(EmailPolicy):
    """The standard policy, except that a non-ASCII Subject is encoded here: CPython's folder
    can end an encoded-word right before a space and leave that space between two
    encoded-words, where RFC 2047 says to ignore it ("без лифта, в субботу" arrived as
    "без лифта,в субботу"). Each encoded-word here carries its spaces inside it and stays
    within RFC 2047's 75 characters."""

    def fold(self, name: str, value: str) -> str:
        if name.lower() == "subject" and not str(value).isascii():
            return encoded_header(name, str(value), self.linesep)
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() == "subject" and not str(value).isascii():
            return encoded_header(name, str(value), self.linesep).encode("ascii")
        return super().fold_binary(name, value)


REPLY_POLICY = _ReplyPolicy()


def encoded_header(name: str, text: str, linesep: str) -> str:
    """`Name: =?utf-8?b?…?=` words of at most 42 bytes of text each (a character is never
    split), folded one to a line."""
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > 42:
            words.append(chunk.decode("utf-8"))
            chunk = b""
        chunk += data
    if chunk:
        words.append(chunk.decode("utf-8"))
    encoded = [
        "=?utf-8?b?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?=" for w in words
    ]
    return f"{name}: " + f"{linesep} ".join(encoded) + linesep


def build(reply: Reply, settings: SmtpSettings) -> EmailMessage:
    mail = EmailMessage(policy=REPLY_POLICY)
    mail["From"] = formataddr((single_line(settings.from_name), single_line(settings.from_address)))
    mail["To"] = single_line(reply.to)
    mail["Subject"] = (
        single_line(reply.subject or "") if reply.first and not reply.in_reply_to
        else reply_subject(reply.subject)
    )  # fmt: skip
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = message_id(reply.interaction_id, settings.from_address)
    if reply.in_reply_to:
        mail["In-Reply-To"] = single_line(reply.in_reply_to)
        refs = [single_line(r) for r in reply.references if r]
        if reply.in_reply_to not in refs:
            refs.append(single_line(reply.in_reply_to))
        mail["References"] = " ".join(refs[-20:])  # the newest, as RFC 5322 allows trimming
    if reply.automatic:
        mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(reply.text)
    escaped = html.escape(reply.text).replace("\n", "<br>\n")
    mail.add_alternative(
        f"<!doctype html><html><body><p>{escaped}</p></body></html>", subtype="html"
    )
    for f in reply.files:
        maintype, _, subtype = f.content_type.partition("/")
        mail.add_attachment(
            f.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=single_line(f.name),
        )
    return mail


async def send(mail: EmailMessage, settings: SmtpSettings) -> str:
    """Hand the mail to the SMTP server; its Message-ID. Connector errors only."""
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.security == "tls",
        start_tls=settings.security == "starttls",
        tls_context=(settings.tls_context or ssl.create_default_context())
        if settings.security != "plain"
        else None,
        timeout=settings.timeout,
    )
    try:
        await client.connect()
        try:
            # After STARTTLS the server's extensions are forgotten until the next EHLO: ask
            # again, or a server offering AUTH only over TLS would be written to unlogged.
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            # A server that offers no AUTH (a relay on the local network) takes mail without.
            if settings.username and client.supports_extension("auth"):
                await client.login(settings.username, settings.password)
            # Written by our policy (aiosmtplib's `send_message` would write it with the
            # standard one, whose folding loses spaces in long Russian subjects).
            data = mail.as_bytes(policy=REPLY_POLICY.clone(linesep="\r\n"))
            await client.sendmail(settings.from_address, [str(mail["To"])], data)
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise AuthFailed(f"the SMTP server refused the login ({exc.code})") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise ChannelConfigError(f"the SMTP server refused the recipient: {exc}") from None
    except aiosmtplib.SMTPResponseException as exc:
        if 400 <= exc.code < 500:
            raise NotReady(f"the SMTP server asked to retry ({exc.code})") from None
        raise ChannelConfigError(f"the SMTP server refused the mail ({exc.code})") from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise NotReady(f"the SMTP server could not be reached: {type(exc).__name__}") from None
    return str(mail["Message-ID"])
