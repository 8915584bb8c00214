"""vCard import (`hub leads import FILE.vcf`) and export (`GET /api/v1/leads/{id}.vcf`).

Import identifies each contact exactly as inbound messages are identified (phone, then
email, under the same advisory locks), so importing an address book into a live hub
neither duplicates leads that wrote in meanwhile nor races with them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import vobject

from hub.domain import Lead, Phone
from hub.identity import InvalidContact, clean_name, normalize_email, normalize_phone
from hub.pipeline import NormalContacts, lock_key, take_locks
from storage import events, leads
from storage.database import Conn
from storage.events import NewEvent


@dataclass(frozen=True, slots=True)
class Contact:
    position: int
    name: str | None
    phones: tuple[Phone, ...]
    emails: tuple[str, ...]
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    position: int
    reason: str


@dataclass
class ImportSummary:
    created: int = 0
    matched: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [f"created {self.created}, matched {self.matched}, skipped {self.skipped}"]
        out += [f"  skipped {n}: {reason}" for reason, n in self.reasons.most_common()]
        out += [f"  note {n}: {warning}" for warning, n in self.warnings.most_common()]
        return out


def _values(card: vobject.base.Component, name: str) -> list[str]:
    values = (getattr(item, "value", None) for item in card.contents.get(name.lower(), []))
    return [str(v) for v in values if v]


def parse_vcards(text: str, region: str) -> Iterator[Contact | Skipped]:
    position = 0
    try:
        cards = vobject.readComponents(text, ignoreUnreadable=True)
        for card in cards:
            position += 1
            if card.name != "VCARD":
                yield Skipped(position, "not a vCard")
                continue
            yield _contact(card, position, region)
    except Exception as exc:  # vobject raises many types on broken input
        yield Skipped(position + 1, f"unreadable from here on ({type(exc).__name__})")


def _contact(card: vobject.base.Component, position: int, region: str) -> Contact | Skipped:
    name = clean_name(next(iter(_values(card, "fn")), None))
    if not name and "n" in card.contents:
        n: Any = getattr(card.contents["n"][0], "value", None)
        name = clean_name(" ".join(p for p in (n.given, n.additional, n.family) if p))
    phones: dict[str, Phone] = {}
    emails: dict[str, None] = {}
    dropped: list[str] = []
    for raw in _values(card, "tel"):
        try:
            phone = normalize_phone(raw.removeprefix("tel:"), region)
            phones.setdefault(phone.e164, phone)
        except InvalidContact:
            dropped.append("invalid phone dropped")
    for raw in _values(card, "EMAIL"):
        try:
            emails[normalize_email(raw.removeprefix("mailto:"))] = None
        except InvalidContact:
            dropped.append("invalid email dropped")
    if not phones and not emails:
        return Skipped(position, "no valid phone or email" if dropped or name else "empty card")
    return Contact(position, name, tuple(phones.values()), tuple(emails), tuple(dropped))


async def import_contact(conn: Conn, contact: Contact) -> bool:
    """Match or create one contact; true when a lead was created."""
    contacts = NormalContacts(contact.phones, contact.emails, contact.name)
    keys = sorted(
        {lock_key(f"phone:{p.e164}") for p in contacts.phones}
        | {lock_key(f"email:{e}") for e in contacts.emails}
    )
    async with conn.transaction():
        await take_locks(conn, keys)
        lead_id = await leads.find_match(
            conn, None, [p.e164 for p in contact.phones], list(contact.emails)
        )
        created = lead_id is None
        if lead_id is None:
            lead_id = await leads.create(conn, contact.name, {"kind": "import"})
        learned = await leads.learn(
            conn, lead_id, None if created else contact.name, contact.phones, contact.emails, None
        )
        if created or learned:
            await events.append(
                conn,
                [
                    NewEvent(
                        "lead.created" if created else "lead.updated",
                        lead_id=lead_id,
                        data={"source": "vcard"},
                        actor="import:vcard",
                    )
                ],
            )
    return created


async def import_vcards(
    pool: asyncpg.Pool,
    text: str,
    region: str,
    progress: Callable[[], None] = lambda: None,
) -> ImportSummary:
    summary = ImportSummary()
    async with pool.acquire() as conn:
        for item in parse_vcards(text, region):
            if isinstance(item, Skipped):
                summary.skipped += 1
                summary.reasons[item.reason] += 1
            else:
                if await import_contact(conn, item):
                    summary.created += 1
                else:
                    summary.matched += 1
                for warning in item.dropped:
                    summary.warnings[warning] += 1
            progress()
    return summary


def count_cards(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip().upper() == "BEGIN:VCARD")


def lead_vcard(lead: Lead) -> str:
    card = vobject.vCard()
    card.add("fn").value = lead.name or (lead.phones[0].e164 if lead.phones else f"Lead {lead.id}")
    parts = (lead.name or "").rsplit(" ", 1)
    card.add("n").value = vobject.vcard.Name(
        family=parts[1] if len(parts) == 2 else "", given=parts[0]
    )
    for phone in lead.phones:
        tel = card.add("tel")
        tel.value = phone.e164 + (f" ext. {phone.extension}" if phone.extension else "")
        tel.type_param = "CELL"
    for email in lead.emails:
        item = card.add("EMAIL")
        item.value = email
        item.type_param = "INTERNET"
    for identity in lead.identities:
        card.add("x-hub-identity").value = f"{identity.kind}:{identity.external_id}"
    card.add("uid").value = f"hub-lead-{lead.id}"
    card.add("rev").value = lead.updated_at.strftime("%Y%m%dT%H%M%SZ")
    serialized: str = card.serialize()
    return serialized
