"""Normal forms of contact details, decided once so that every lookup agrees.

Phones go through libphonenumber: a person types `8 (912) 345-67-89`, a CRM stores
`79123456789` and a messenger hands `+7 912 345 67 89`; all three must meet at one index
key. Extensions (`доб. 123`, `ext. 55`, `#12`) stay beside the number.
"""

from __future__ import annotations

import re

import phonenumbers

from hub.domain import Phone
from hub.errors import HubError

_EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\]]+$")


class InvalidContact(HubError, ValueError):
    """A phone or email that cannot be understood; the caller answers 422."""

    code = "invalid_contact"

    def __init__(self, message: str) -> None:
        super().__init__(type(self).code, message)


class InvalidPhone(InvalidContact):
    code = "invalid_phone"


class InvalidEmail(InvalidContact):
    code = "invalid_email"


# An extension written after the number; the letters in it are not part of the number.
_EXTENSION = re.compile(
    r"(?:,|;|#|\b(?:ext|extension|доб|добавочный|x)\b\.?)\s*\d+\s*$", re.IGNORECASE
)


def normalize_phone(raw: str, default_region: str = "RU") -> Phone:
    text = raw.strip()
    if not text:
        raise InvalidPhone("empty phone")
    if any(c.isalpha() for c in _EXTENSION.sub("", text)):
        # libphonenumber reads letters as keypad digits (8-800-FLOWERS); a typed letter is
        # far more often a typo than a vanity number, so the value is not a phone.
        raise InvalidPhone(f"letters in a phone number: {raw[:40]!r}")
    candidates = [text]
    digits = re.sub(r"\D", "", text.split("#")[0])
    if not text.startswith("+") and digits:
        # `79123456789` written without the plus is international in practice.
        candidates.append("+" + text)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_region.upper())
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return Phone(e164=e164, extension=number.extension or None)
    raise InvalidPhone(f"not a valid phone number: {raw[:40]!r}")


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise InvalidEmail(f"not a valid email address: {raw[:60]!r}")
    return email


def clean_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = " ".join(raw.split())
    return name[:200] or None
