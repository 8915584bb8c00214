"""The email connector: a mailbox's messages become interactions of the sender's lead, one
dialog a thread; replies go out by SMTP and thread in the customer's mail client.

A message's external id is its Message-ID (a hash of its headers when it has none), so a
message read twice (after a restart, a UIDVALIDITY change) is stored once. Its thread key is
the root of its `References` (else `In-Reply-To`, else its own id): a customer's answer to
our reply carries the root of the thread it answers. The dialog's peer keeps what the next
reply needs (address, Message-ID to answer, References, subject) as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from connectors.email import imap, smtp
from connectors.email.parse import MailFile, ParsedMail, parse
from connectors.vcard_contacts import contacts_from_vcard
from hub.domain import (
    Attachment,
    AttachmentState,
    Channel,
    DeliveryResult,
    InboundMessage,
    OutboundMessage,
)
from hub.ports import ChannelPosition, HubPorts, UnusableMessage
from hub.ports.connector import AuthFailed, ChannelConfigError, NotReady

log = logging.getLogger(__name__)

KIND = "email"
MAX_FULL_TEXT = 100_000
# Files kept of one email: enough for any letter a person writes; a message of thousands of
# parts (a hostile one) costs no more than this.
MAX_FILES = 20


class EmailConnector:
    def __init__(self, ports: HubPorts) -> None:
        self.ports = ports

    async def close(self) -> None:
        return None

    # -- inbound --------------------------------------------------------------------------

    async def run(self, channel: Channel) -> None:
        settings = imap.ImapSettings(
            host=channel.setting("imap_host"),
            port=int(channel.setting("imap_port", "993")),
            username=channel.setting("username"),
            password=channel.setting("password"),
            security=channel.setting("imap_security", "tls"),
            folder=channel.setting("folder", "INBOX"),
            poll_interval=float(channel.setting("poll_interval", "60")),
            processed_flag=channel.setting("processed_flag"),
            processed_folder=channel.setting("processed_folder"),
            history_days=int(channel.setting("history_days", "1")),
        )
        events = self.ports.events
        limit = self.ports.max_body_bytes + self.ports.max_files * self.ports.max_upload_bytes

        async def load() -> dict[str, Any]:
            return await events.load_state(channel.id)

        async def save(state: dict[str, Any]) -> None:
            await events.save_state(channel.id, state)

        watcher = imap.MailboxWatcher(
            settings,
            partial(self.prepare, channel),
            partial(self.store, channel),
            load,
            save,
            limit,
        )
        await watcher.run()

    async def prepare(self, channel: Channel, batch: list[imap.Fetched]) -> list[InboundMessage]:
        """A batch of the mailbox as inbound messages, its files stored (the letters that
        open no dialog left out)."""
        messages = []
        for fetched in batch:
            if message := await self._message(channel, fetched):
                messages.append(message)
            # The batch before is being stored meanwhile: its answers are read as they come.
            await asyncio.sleep(0)
        return messages

    async def store(
        self, channel: Channel, messages: list[InboundMessage], state: dict[str, Any] | None
    ) -> None:
        """The batch's letters stored in one transaction with the folder state that marks
        the batch taken."""
        position = ChannelPosition(channel.id, state) if state is not None else None
        results = await self.ports.ingest.ingest_many(messages, KIND, position=position)
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, UnusableMessage):
                log.error(
                    "email channel %s: %s not stored: %s", channel.name, message.external_id, result
                )
            if (isinstance(result, UnusableMessage) or result.status != "created") and (
                message.attachments
            ):
                # Stored the first time (or never): these copies are not referenced.
                await self.ports.attachments.discard(message.attachments)

    async def _message(self, channel: Channel, fetched: imap.Fetched) -> InboundMessage | None:
        """The letter as an inbound message; None for one that opens no dialog (machine mail,
        a bounce, no sender, one the parser cannot read: one poisoned letter never stalls the
        ones after it)."""
        where = f"{fetched.uidvalidity}:{fetched.uid}"
        try:
            mail = parse(fetched.raw)
        except Exception:
            log.exception(
                "email channel %s: message %s could not be read; left in the mailbox",
                channel.name,
                where,
            )
            return None
        if not fetched.whole:
            log.warning(
                "email channel %s: message %s (%d bytes) is over the size limit; it stays"
                " in the mailbox",
                channel.name,
                where,
                fetched.size,
            )
            mail = replace(
                mail,
                text=f"[an email of {fetched.size // 1024} KB, over the size limit: read it in"
                " the mailbox]",
                full_text="",
                html=None,
                files=(),
            )
        if mail.bounced_ids:
            for message_id in mail.bounced_ids:
                await self.ports.events.delivery(
                    channel.id, message_id, "failed", "the mail bounced: the address refused it"
                )
            return None
        if mail.automated is not None:
            log.info("email channel %s: machine mail ignored (%s)", channel.name, mail.automated)
            return None
        if mail.from_address is None and mail.reply_to is None:
            # Nobody to link it to or to answer: it stays in the mailbox for a person.
            log.warning(
                "email channel %s: message %s has no sender address (From: %r); left in"
                " the mailbox",
                channel.name,
                where,
                mail.headers.get("From", "")[:100],
            )
            return None
        return await self.inbound(channel, mail)

    async def inbound(self, channel: Channel, mail: ParsedMail) -> InboundMessage:
        external_id = mail.message_id or f"fp:{mail.fingerprint}"
        root = mail.references[0] if mail.references else mail.in_reply_to
        phones: list[str] = []
        emails = [mail.from_address] if mail.from_address else []
        if mail.reply_to and mail.reply_to not in emails:
            emails.append(mail.reply_to)
        files: list[Attachment] = []
        for f in mail.files[:MAX_FILES]:
            files.append(await self._store(f))
            if f.content_type in ("text/vcard", "text/x-vcard") or f.name.lower().endswith(".vcf"):
                card_phones, card_emails = contacts_from_vcard(f.data.decode("utf-8", "replace"))
                phones += card_phones
                emails += [e for e in card_emails if e not in emails]
        if len(mail.files) > MAX_FILES:
            extra_files = len(mail.files) - MAX_FILES
            files.append(
                Attachment(
                    name=f"({extra_files} more files)",
                    content_type="application/octet-stream",
                    size=sum(len(f.data) for f in mail.files[MAX_FILES:]),
                    state=AttachmentState.REFUSED,
                    note=f"the email had {len(mail.files)} files; the first {MAX_FILES} are kept,"
                    " the rest are in the mailbox",
                )
            )
        references = [*mail.references, *([external_id] if mail.message_id else [])]
        peer = {
            "to": mail.reply_to or mail.from_address,
            "in_reply_to": mail.message_id,
            "references": references[-20:],
            "subject": mail.subject,
        }
        return InboundMessage(
            channel_id=channel.id,
            external_id=external_id,
            occurred_at=mail.date or datetime.now(UTC),
            text=mail.text or None,
            subject=mail.subject,
            name=mail.from_name,
            phones=tuple(phones),
            emails=tuple(emails),
            attachments=tuple(files),
            extra={
                "email": {
                    "message_id": mail.message_id,
                    "in_reply_to": mail.in_reply_to,
                    "references": list(mail.references),
                    "full_text": mail.full_text[:MAX_FULL_TEXT],
                    # Sanitised by nh3: safe to show, never as the hub's own markup.
                    "html": mail.html[:MAX_FULL_TEXT] if mail.html else None,
                    "signature_phones": list(mail.signature_phones),
                }
            },
            peer=json.dumps(peer, ensure_ascii=False),
            thread_key=root or external_id,
            # A phone under the customer's name is probably theirs, maybe their company's
            # switchboard: an operator decides.
            suggested_phones=mail.signature_phones,
            # Any message of the thread we know (ours included) puts this one in it, even
            # when the client dropped the References' root.
            thread_refs=tuple(dict.fromkeys([*mail.references, *filter(None, [mail.in_reply_to])]))[
                -20:
            ],
        )

    async def _store(self, f: MailFile) -> Attachment:
        limit = self.ports.max_upload_bytes
        if len(f.data) > limit:
            return Attachment(
                name=f.name,
                content_type=f.content_type,
                size=len(f.data),
                state=AttachmentState.REFUSED,
                note=f"the file ({len(f.data)} bytes) is over the {limit} byte limit and was not kept",
            )
        return await self.ports.attachments.save_bytes(f.data, f.name, f.content_type)

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        raise ChannelConfigError("email files are stored with their message")

    # -- outbound -------------------------------------------------------------------------

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        try:
            thread = json.loads(message.peer)
        except ValueError:
            thread = {"to": message.peer}
        if not isinstance(thread, dict) or not thread.get("to"):
            return DeliveryResult.failed("the customer's address is not known")
        files = [
            smtp.MailFileOut(
                a.name, a.content_type, await self.ports.attachments.read(a.storage_path)
            )
            for a in message.attachments
            if a.storage_path
        ]
        reply = smtp.Reply(
            interaction_id=message.interaction_id,
            to=str(thread["to"]),
            text=message.text or "",
            subject=thread.get("subject"),
            in_reply_to=thread.get("in_reply_to"),
            references=tuple(str(r) for r in thread.get("references") or ()),
            files=tuple(files),
            automatic=message.author == "auto-reply",
            first=bool(thread.get("first")),
        )
        settings = _smtp_settings(channel)
        try:
            sent_id = await smtp.send(smtp.build(reply, settings), settings)
        except NotReady as exc:
            return DeliveryResult.retry(exc.message)
        except (ChannelConfigError, AuthFailed) as exc:
            return DeliveryResult.failed(exc.message)
        return DeliveryResult.sent(sent_id)


def _smtp_settings(channel: Channel) -> smtp.SmtpSettings:
    username = channel.setting("smtp_username") or channel.setting("username")
    return smtp.SmtpSettings(
        host=channel.setting("smtp_host"),
        port=int(channel.setting("smtp_port", "465")),
        from_address=channel.setting("from_address") or channel.setting("username"),
        from_name=channel.setting("from_name"),
        username=username,
        password=channel.setting("smtp_password") or channel.setting("password"),
        security=channel.setting("smtp_security", "tls"),
    )
