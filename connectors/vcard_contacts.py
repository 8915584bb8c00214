"""The phones and emails of a vCard a customer shared (a Telegram contact, an email's .vcf)."""

from __future__ import annotations

import vobject


def contacts_from_vcard(text: str | None) -> tuple[list[str], list[str]]:
    """(phones, emails) as written in the card; nothing for a missing or broken one, which
    must not lose the message that carried it."""
    if not text:
        return [], []
    try:
        card = vobject.readOne(text)
    except Exception:  # vobject raises several unrelated types for broken input
        return [], []
    phones = [str(getattr(t, "value", "")) for t in card.contents.get("tel", [])]
    emails = [str(getattr(e, "value", "")) for e in card.contents.get("email", [])]
    return [p for p in phones if p], [e for e in emails if e]
