"""Reading one email as the hub needs it: who wrote, which thread it belongs to, the words of
the reply (without the quoted history and the signature, the full body kept), its files, and
whether a machine sent it.

The standard `email` package reads the MIME structure. It is run with its `compat32` policy and
only the headers the hub uses are decoded (encoded-words with `email.header`, raw 8-bit
headers and parts whose declared charset is unknown or wrong by trying the charsets a Russian
mailbox meets): the `default` policy parses every header into objects on each access, which
cost three quarters of the time of reading a letter (measured with bench/email_ingest.py). HTML is turned into text with `html2text` and kept only sanitised by `nh3`.
Quoted history is cut with `mail-parser-reply` for the languages it knows, and with the Russian
and Outlook header shapes it does not ("… пишет:", "От: …" blocks, "-----Original Message-----").
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

import html2text
import nh3
from mailparser_reply import EmailReplyParser

# Tried in order for a part whose declared charset cannot decode it.
FALLBACK_CHARSETS = ("utf-8", "cp1251", "koi8-r")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")

# Lines where the quoted history of a reply starts, in the shapes mail clients write them.
# Where quoted history starts. An attribution line ends with a colon, a separator starts
# with "-" or "_": each line is matched only against the patterns it could fit.
_ATTRIBUTION = re.compile(
    r"^.{0,200}\b(пишет|написал|написала|написал\(а\))\s*:\s*$"  # Gmail, Mail.ru, Yandex, Thunderbird (ru)
    r"|^.{0,200}\bwrote\s*:\s*$",  # Thunderbird, Apple Mail, Gmail (en)
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^-{2,}\s*(original message|исходное сообщение|пересылаемое сообщение|forwarded message)\s*-{2,}\s*$"
    r"|^_{10,}\s*$",  # Outlook's separator line above its header block
    re.IGNORECASE,
)
# The first line of an Outlook / The Bat! header block (checked against the lines below it).
_HEADER_START = re.compile(r"^(от|from)\s*:\s.+$", re.IGNORECASE)
# Words of the quote headers and signatures mail-parser-reply knows in German, French and
# Spanish (and English disclaimers), e.g. "Am … schrieb …:", "Le … a écrit :", "El … escribió:".
_OTHER_LANGUAGES = re.compile(
    r"schrieb|gesendet|von:|betreff|écrit|envoyé|objet|de :|escribió|enviado|asunto|"
    r"confidential|disclaimer|sent from my",
    re.IGNORECASE,
)
_HEADER_BLOCK = re.compile(r"^(отправлено|sent|дата|date|кому|to|тема|subject)\s*:", re.IGNORECASE)
_SIGNATURE = re.compile(r"^(-- ?|—+|__+)$")
_PHONE_IN_TEXT = re.compile(
    r"(?:\+7|8|\+\d{1,3})[\s\-(]*\d{3}[\s\-)]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}"
)


@dataclass(frozen=True)
class MailFile:
    name: str
    content_type: str
    data: bytes
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    from_address: str | None
    from_name: str | None
    reply_to: str | None
    subject: str | None
    date: datetime | None
    text: str  # the reply's own words
    full_text: str  # the whole text body, quotes and signature included
    html: str | None  # sanitised HTML, when the mail had an HTML part
    files: tuple[MailFile, ...] = ()
    automated: str | None = None  # why it is machine mail (never opens a dialog)
    bounced_ids: tuple[str, ...] = ()  # our Message-IDs a delivery report says failed
    signature_phones: tuple[str, ...] = ()  # phone numbers seen in the signature
    fingerprint: str = ""  # a hash of the headers: the key of mail without a Message-ID (only)
    headers: dict[str, str] = field(default_factory=dict)


def parse(raw: bytes) -> ParsedMail:
    mail = message_from_bytes(raw)
    headers = _raw_headers(mail)
    html_part = _first(mail, "text/html")
    plain_part = _first(mail, "text/plain")
    html = _decode(html_part) if html_part is not None else None
    if plain_part is not None:
        full_text = _decode(plain_part)
    elif html is not None:
        full_text = _html_to_text(html)
    else:
        full_text = ""
    full_text = full_text.replace("\r\n", "\n").strip()
    reply, signature = split_reply(full_text)
    from_name, from_address = _address(headers.get("from"))
    _, reply_to = _address(headers.get("reply-to"))
    message_id = _one_id(headers.get("message-id"))
    return ParsedMail(
        message_id=message_id,
        in_reply_to=_one_id(headers.get("in-reply-to")),
        references=tuple(_MESSAGE_ID.findall(headers.get("references", ""))),
        from_address=from_address,
        from_name=from_name,
        reply_to=reply_to,
        subject=_decoded(headers["subject"]) if "subject" in headers else None,
        date=_date(headers.get("date")),
        text=reply,
        full_text=full_text,
        html=nh3.clean(html) if html is not None else None,
        files=tuple(_files(mail, body=(plain_part, html_part))),
        automated=automated_reason(mail, headers),
        bounced_ids=tuple(_bounced(mail)),
        signature_phones=tuple(dict.fromkeys(_PHONE_IN_TEXT.findall(signature))),
        fingerprint="" if message_id else _fingerprint(headers),
        # As written (encoded-words left alone): only logs read them, and decoding every
        # header cost a quarter of reading a letter.
        headers={k: " ".join(str(v).split())[:500] for k, v in list(mail.raw_items())[:40]},
    )


def split_reply(text: str) -> tuple[str, str]:
    """(the reply's own words, the signature), the quoted history dropped."""
    lines = text.split("\n")
    end = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">") and all(
            not rest.strip() or rest.lstrip().startswith(">") for rest in lines[index:]
        ):
            end = index
            break
        if stripped.endswith(":") and (
            _ATTRIBUTION.match(stripped)
            # "Вы писали 15 ноября…:" (The Bat!), "пн, 16 нояб. 2026 г. в 10:00, … <…>:"
            # (Gmail in Russian): any attribution line right above quoted lines.
            or _quote_follows(lines, index + 1)
        ):
            end = index
            break
        if stripped[:1] in ("-", "_") and _SEPARATOR.match(stripped):
            end = index
            break
        if _HEADER_START.match(stripped) and any(
            _HEADER_BLOCK.match(following.strip()) for following in lines[index + 1 : index + 5]
        ):
            end = index
            break
    own = "\n".join(lines[:end]).rstrip()
    # mail-parser-reply knows more languages' headers than the Russian and English ones
    # above; it is asked only when one of its languages' words is there (it costs a tenth of
    # reading a letter).
    if _OTHER_LANGUAGES.search(own):
        own = EmailReplyParser(languages=["en", "de", "fr", "es"]).parse_reply(text=own) or own
    signature = ""
    own_lines = own.split("\n")
    for index, line in enumerate(own_lines):
        if _SIGNATURE.match(line.strip()) or line.strip().lower() in (
            "с уважением,",
            "с уважением",
            "best regards,",
            "regards,",
            "kind regards,",
        ):
            signature = "\n".join(own_lines[index:])
            own = "\n".join(own_lines[:index]).rstrip()
            break
    return own.strip(), signature


def _quote_follows(lines: list[str], start: int) -> bool:
    for line in lines[start : start + 3]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False


def automated_reason(mail: Message, headers: dict[str, str]) -> str | None:
    """Why this is machine mail, per RFC 3834 and common practice; None for a person's."""
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    # (X-Auto-Response-Suppress is a sender's request to us, not a sign of machine mail.)
    for header in ("X-Autoreply", "X-Autorespond", "List-Id", "List-Unsubscribe"):
        if header.lower() in headers:
            return header
    if headers.get("return-path", "").strip() == "<>":
        return "Return-Path: <>"
    if mail.get_content_type() == "multipart/report":
        return "delivery report"
    sender = headers.get("from", "").lower()
    if "mailer-daemon@" in sender or "postmaster@" in sender:
        return "mailer daemon"
    return None


def _first(mail: Message, content_type: str) -> Message | None:
    for part in mail.walk():
        if (
            part.get_content_type() == content_type
            and part.get_content_disposition() != "attachment"
        ):
            return part
    return None


def _decode(part: Message) -> str:
    """A text part's words: its declared charset first, an unknown or wrong one falling
    through to the charsets a Russian mailbox meets."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return _text_of(data, part.get_content_charset())


def _text_of(data: bytes, declared: str | None) -> str:
    for charset in (declared, *FALLBACK_CHARSETS):
        if not charset:
            continue
        try:
            return data.decode(charset)
        except (LookupError, ValueError):  # unknown, wrong, or a name with a NUL in it
            continue
    return data.decode("utf-8", "replace")


def _html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    return str(converter.handle(html)).strip()


def _files(mail: Message, body: tuple[Message | None, ...]) -> list[MailFile]:
    """Every part that is not the body: attachments, and the pictures of a
    multipart/related body (inline images, referenced by Content-ID), however deep. A
    forwarded message (message/rfc822) is one file, not opened."""
    files: list[MailFile] = []
    for part in _leaves(mail):
        if any(part is b for b in body) or part.get_content_type() in _NOT_FILES:
            continue
        raw_name = part.get_filename()
        name = _decoded(raw_name) if raw_name else None
        if (
            part.get_content_maintype() == "text"
            and not name
            and part.get_content_disposition() != "attachment"
        ):
            continue  # another text part of the body (an alternative we did not pick)
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            data = first.as_bytes() if isinstance(first, Message) else b""
            name = name or "forwarded.eml"
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        files.append(
            MailFile(
                name=name or f"part.{part.get_content_subtype()}",
                content_type=part.get_content_type(),
                data=data,
                inline=part.get_content_disposition() != "attachment",
            )
        )
    return files


# Parts of a delivery report that are its machinery, not files a person sent.
_NOT_FILES = {"message/delivery-status", "text/rfc822-headers"}


def _leaves(part: Message) -> list[Message]:
    """The parts that hold content, in order; a message/rfc822 part counts as one."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        return [part]
    children = part.get_payload()
    if not isinstance(children, list):
        return []
    return [leaf for child in children if isinstance(child, Message) for leaf in _leaves(child)]


def _bounced(mail: Message) -> list[str]:
    """The Message-IDs of the original mail a delivery report (RFC 3464) returns."""
    if mail.get_content_type() != "multipart/report":
        return []
    ids: list[str] = []
    for part in mail.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            if part.get_content_type() == "message/rfc822":
                text = part.as_string()
            else:
                text = _decode(part)
            match = re.search(r"^Message-ID:\s*(<[^>]+>)", text, re.IGNORECASE | re.MULTILINE)
            if match:
                ids.append(match.group(1))
    return ids


def _raw_headers(mail: Message) -> dict[str, str]:
    """The first value of each header, as written (lower-cased names)."""
    found: dict[str, str] = {}
    for name, value in mail.raw_items():
        found.setdefault(name.lower(), str(value))
    return found


def _decoded(value: str) -> str:
    """A header's text on one line: encoded-words decoded, raw 8-bit bytes (a client that
    did not encode its header; the parser keeps them surrogate-escaped) read in the charsets
    a Russian mailbox meets. CR/LF never survive (no header injection when it is reused)."""
    if _SURROGATES.search(value):
        value = _text_of(value.encode("ascii", "surrogateescape"), None)
    try:
        text = str(make_header(decode_header(value)))
    except (MessageError, LookupError, ValueError):  # an unknown charset, a NUL, bad bytes
        pieces = []
        with contextlib.suppress(MessageError, LookupError, ValueError):
            for chunk, charset in decode_header(value):
                pieces.append(chunk if isinstance(chunk, str) else _text_of(chunk, charset))
        text = "".join(pieces) or value
    return " ".join(text.split())


_SURROGATES = re.compile("[\udc80-\udcff]")


def _address(value: str | None) -> tuple[str | None, str | None]:
    """(name, address) of the first mailbox of an address header. Split before decoding,
    so a comma or bracket inside an encoded name never cuts it."""
    if value is None:
        return None, None
    pairs = getaddresses([" ".join(value.split())])
    if not pairs or "@" not in pairs[0][1]:
        return None, None
    name, address = pairs[0]
    return (_decoded(name) or None), _decoded(address).strip().lower()


def _one_id(value: str | None) -> str | None:
    found = _MESSAGE_ID.findall(str(value or ""))
    return found[0] if found else None


def _date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _fingerprint(headers: dict[str, str]) -> str:
    parts = [headers.get(h, "") for h in ("from", "to", "date", "subject")]
    return hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()
