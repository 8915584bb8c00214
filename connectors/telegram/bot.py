"""Telegram bots through aiogram 3.

Checklist
- signature: webhook POSTs must carry `X-Telegram-Bot-Api-Secret-Token` equal to the
  channel's `secret_token` (compared in constant time), else 401 and nothing stored;
- idempotent: a message is keyed `(chat id, message_id)`, so a redelivered update (same
  `update_id`) finds the stored interaction; edits replace the text and keep the old one;
  in polling mode the `getUpdates` offset is saved after each update, so a restart neither
  skips (unconfirmed updates come again) nor repeats (a repeat is recognised by its key);
- rate limits: sends are paced per chat (1/s) and per bot (30/s); a 429 `retry_after` is
  honoured by the outbound dispatcher, a bounded number of attempts ends `failed`;
- media: photos, documents, voice, video and audio are recorded at once and fetched
  afterwards (`getFile` then the file URL), refused with a note over the size limit;
- contacts: a contact the user shares of themselves (`contact.user_id` is the sender) and
  its vCard feed the lead's phones and emails; someone else's contact card is kept as data;
- `api_base` points aiogram at any Bot API server (self-hosted, or tests/fakes/telegram.py);
- clean stop: the channel runner is a cancellable task; sessions close with the hub;
- tests: tests/connectors/test_telegram.py.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, Message, Update
from aiohttp import ClientError, web
from pydantic import ValidationError

from connectors.remote_media import remote_attachment
from connectors.throttle import Throttle
from connectors.unusable import acknowledged_if_unusable
from connectors.vcard_contacts import contacts_from_vcard
from hub.backoff import backoff
from hub.domain import (
    Attachment,
    Channel,
    DeliveryResult,
    Identity,
    InboundMessage,
    OutboundMessage,
)
from hub.errors import ApiError
from hub.httputil import parse_json, read_body
from hub.ports import HubPorts, TooLarge
from hub.ports.connector import AuthFailed, ChannelConfigError, NotReady

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.telegram.org"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
POLL_TIMEOUT = 25


KIND = "telegram"


class TelegramConnector:
    def __init__(self, ports: HubPorts) -> None:
        self.ports = ports
        self._bots: dict[tuple[int, str, str], Bot] = {}
        self._throttles: dict[int, Throttle] = {}

    # -- the bot and its session ------------------------------------------------------

    def bot(self, channel: Channel) -> Bot:
        token = channel.setting("token")
        base = channel.setting("api_base") or DEFAULT_API_BASE
        key = (channel.id, token, base)
        bot = self._bots.get(key)
        if bot is None:
            session = AiohttpSession(api=TelegramAPIServer.from_base(base.rstrip("/")))
            try:
                bot = Bot(token=token, session=session)
            except Exception as exc:  # aiogram validates the token's shape
                raise ChannelConfigError("the bot token is malformed") from exc
            self._bots[key] = bot
        return bot

    async def close(self) -> None:
        bots, self._bots = list(self._bots.values()), {}
        for bot in bots:
            await bot.session.close()

    # -- inbound ----------------------------------------------------------------------

    async def handle_inbound(self, request: web.Request, channel: Channel) -> web.StreamResponse:
        expected = channel.setting("secret_token")
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(401, "bad_secret", "missing or wrong X-Telegram-Bot-Api-Secret-Token")
        body = parse_json(await read_body(request, self.ports.max_body_bytes))
        try:
            update = Update.model_validate(body)
        except ValidationError:
            log.warning("telegram channel %s: malformed update refused", channel.name)
            raise ApiError(400, "malformed_update", "the body is not a Telegram Update") from None
        with acknowledged_if_unusable(KIND, channel.name, update.update_id):
            await self.process(channel, update)
        return web.Response(status=200)

    async def process(self, channel: Channel, update: Update) -> None:
        if update.message is not None:
            await self._message(channel, update.message)
        elif update.edited_message is not None:
            await self._edit(channel, update.edited_message)
        elif update.my_chat_member is not None:
            member = update.my_chat_member
            if member.chat.type == "private":
                blocked = member.new_chat_member.status in ("kicked", "left")
                await self.ports.events.subscription(channel.id, str(member.chat.id), not blocked)
        elif update.callback_query is not None:
            await self._callback(channel, update)
        else:
            log.debug(
                "telegram channel %s: update %s of an unhandled type ignored",
                channel.name,
                update.update_id,
            )

    async def _message(self, channel: Channel, m: Message) -> None:
        inbound = self.normalize(channel, m)
        if inbound is not None:
            await self.ports.ingest.ingest(inbound, KIND)

    async def _edit(self, channel: Channel, m: Message) -> None:
        edited_at = m.edit_date or m.date
        if isinstance(edited_at, int):
            edited_at = datetime.fromtimestamp(edited_at, UTC)
        outcome = await self.ports.events.edit(
            channel.id, _external_id(m), m.text or m.caption, edited_at
        )
        if outcome == "missing":  # the original never reached us: keep the edited text
            await self._message(channel, m)

    async def _callback(self, channel: Channel, update: Update) -> None:
        query = update.callback_query
        assert query is not None
        try:
            await self.bot(channel).answer_callback_query(query.id)
        except TelegramAPIError:
            log.info("telegram channel %s: could not answer a callback query", channel.name)
        chat_id = query.message.chat.id if query.message else query.from_user.id
        inbound = InboundMessage(
            channel_id=channel.id,
            external_id=f"callback:{query.id}",
            occurred_at=datetime.now(UTC),
            text=f"[button] {query.data or ''}".strip(),
            name=query.from_user.full_name,
            identity=Identity("telegram", str(query.from_user.id)),
            peer=str(chat_id),
            extra={"telegram": {"callback_data": query.data}},
        )
        await self.ports.ingest.ingest(inbound, KIND)

    def normalize(self, channel: Channel, m: Message) -> InboundMessage | None:
        user = m.from_user
        if user is None:  # channel posts have no sender; they are not customer messages
            return None
        text = m.text or m.caption
        phones: list[str] = []
        emails: list[str] = []
        extra: dict[str, Any] = {"telegram": {"chat_id": m.chat.id, "message_id": m.message_id}}
        if user.username:
            extra["telegram"]["username"] = user.username
        files: list[Attachment] = []
        limit = self.ports.max_upload_bytes
        if m.photo:
            largest = m.photo[-1]
            files.append(
                remote_attachment(
                    f"photo_{largest.file_unique_id}.jpg",
                    "image/jpeg",
                    largest.file_size,
                    largest.file_id,
                    limit,
                )
            )
        for item, default_name, default_type in (
            (m.document, "document", "application/octet-stream"),
            (m.voice, "voice.ogg", "audio/ogg"),
            (m.audio, "audio.mp3", "audio/mpeg"),
            (m.video, "video.mp4", "video/mp4"),
            (m.video_note, "video_note.mp4", "video/mp4"),
        ):
            if item is not None:
                name = getattr(item, "file_name", None) or default_name
                content_type = getattr(item, "mime_type", None) or default_type
                files.append(
                    remote_attachment(name, content_type, item.file_size, item.file_id, limit)
                )
        if m.sticker is not None:
            text = text or f"[sticker {m.sticker.emoji or ''}]".replace(" ]", "]")
        if m.location is not None:
            lat, lon = m.location.latitude, m.location.longitude
            extra["location"] = {"lat": lat, "lon": lon}
            text = text or f"Location: {lat}, {lon}"
        if m.contact is not None:
            contact = m.contact
            card = {
                "phone": contact.phone_number,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "user_id": contact.user_id,
            }
            if contact.user_id == user.id:  # the customer shared their own number
                phones.append(contact.phone_number)
                vcard_phones, vcard_emails = contacts_from_vcard(contact.vcard)
                phones += vcard_phones
                emails += vcard_emails
            else:
                extra["shared_contact"] = card
            text = (
                text
                or f"Contact: {' '.join(filter(None, [contact.first_name, contact.last_name]))} {contact.phone_number}"
            )
        occurred = m.date if isinstance(m.date, datetime) else datetime.fromtimestamp(m.date, UTC)
        return InboundMessage(
            channel_id=channel.id,
            external_id=_external_id(m),
            occurred_at=occurred,
            text=text,
            name=user.full_name,
            phones=tuple(phones),
            emails=tuple(emails),
            identity=Identity("telegram", str(user.id)),
            attachments=tuple(files),
            extra=extra,
            peer=str(m.chat.id),
        )

    # -- the runner: webhook registration or long polling ------------------------------

    async def run(self, channel: Channel) -> None:
        bot = self.bot(channel)
        try:
            if channel.setting("mode", "webhook") == "polling":
                await self._poll(channel, bot)
            else:
                url = f"{self.ports.public_url}/connectors/{KIND}/{channel.name}"
                await bot.set_webhook(
                    url=url,
                    secret_token=channel.setting("secret_token") or None,
                    allowed_updates=ALLOWED_UPDATES,
                )
                log.info("telegram channel %s: webhook set to %s", channel.name, url)
                await asyncio.Event().wait()  # nothing else to do until cancelled
        except TelegramUnauthorizedError as exc:
            raise AuthFailed(exc.message) from exc
        except TelegramConflictError as exc:
            raise NotReady(exc.message) from exc
        except TelegramBadRequest as exc:
            raise ChannelConfigError(exc.message) from exc
        except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as exc:
            raise NotReady(str(exc)) from exc

    async def _poll(self, channel: Channel, bot: Bot) -> None:
        await bot.delete_webhook(drop_pending_updates=False)
        state = await self.ports.events.load_state(channel.id)
        offset: int | None = state.get("offset")
        timeout = int(channel.setting("poll_timeout") or POLL_TIMEOUT)
        failures = 0
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES
                )
                failures = 0
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
                continue
            except (TelegramNetworkError, TelegramServerError):
                failures += 1
                await asyncio.sleep(backoff(failures, 0.5, 30.0))
                continue
            for update in updates:
                await self.process(channel, update)
                offset = update.update_id + 1
                state["offset"] = offset
                await self.ports.events.save_state(channel.id, state)

    # -- outbound ---------------------------------------------------------------------

    async def send(self, channel: Channel, message: OutboundMessage) -> DeliveryResult:
        bot = self.bot(channel)
        throttle = self._throttles.setdefault(channel.id, Throttle(per_key=1.0, overall=1 / 30))
        chat_id: int | str = (
            int(message.peer) if message.peer.lstrip("-").isdigit() else message.peer
        )
        try:
            last: int | None = None
            if message.text:
                await throttle.wait(message.peer)
                sent = await bot.send_message(chat_id=chat_id, text=message.text)
                last = sent.message_id
            for attachment in message.attachments:
                if not attachment.storage_path:
                    continue
                data = await self.ports.attachments.read(attachment.storage_path)
                await throttle.wait(message.peer)
                sent = await bot.send_document(
                    chat_id=chat_id, document=BufferedInputFile(data, filename=attachment.name)
                )
                last = sent.message_id
            return DeliveryResult.sent(str(last) if last is not None else None)
        except TelegramRetryAfter as exc:
            return DeliveryResult.retry(exc.message, after=float(exc.retry_after))
        except TelegramForbiddenError as exc:
            await self.ports.events.subscription(channel.id, message.peer, False)
            return DeliveryResult.failed(exc.message)
        except (TelegramBadRequest, TelegramNotFound, TelegramUnauthorizedError) as exc:
            return DeliveryResult.failed(exc.message)
        except (TelegramNetworkError, TelegramServerError) as exc:
            return DeliveryResult.retry(str(exc))
        except TelegramAPIError as exc:
            return DeliveryResult.failed(exc.message)
        except (AiogramError, ClientError) as exc:  # an answer that was not the Bot API's
            return DeliveryResult.retry(f"{type(exc).__name__}: {exc}"[:300])

    async def typing(self, channel: Channel, peer: str) -> None:
        """ "Typing…" in the customer's chat (Telegram shows it 5 s, or until our message)."""
        chat_id: int | str = int(peer) if peer.lstrip("-").isdigit() else peer
        try:
            await self.bot(channel).send_chat_action(chat_id=chat_id, action="typing")
        except (AiogramError, ClientError) as exc:
            raise NotReady(f"sendChatAction failed: {type(exc).__name__}") from exc

    async def download(
        self, channel: Channel, remote_ref: str, limit: int
    ) -> tuple[bytes, str | None]:
        bot = self.bot(channel)
        try:
            file = await bot.get_file(remote_ref)
            if file.file_size and file.file_size > limit:
                raise TooLarge(f"{file.file_size} bytes")
            if not file.file_path:
                raise ChannelConfigError("Telegram gave no path for the file")
            url = bot.session.api.file_url(bot.token, file.file_path)
            data = bytearray()
            async for chunk in bot.session.stream_content(url, timeout=120):
                data.extend(chunk)
                if len(data) > limit:
                    raise TooLarge(f"over {limit} bytes")
            return bytes(data), None
        except (TelegramBadRequest, TelegramNotFound) as exc:
            raise ChannelConfigError(f"the file is no longer available: {exc.message}") from exc
        except TelegramUnauthorizedError as exc:
            raise AuthFailed(exc.message) from exc
        except (AiogramError, ClientError, TimeoutError) as exc:
            raise NotReady(f"file download failed: {exc}") from exc


def _external_id(m: Message) -> str:
    return f"{m.chat.id}:{m.message_id}"
