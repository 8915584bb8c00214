"""Taking every message of one IMAP folder exactly once, within seconds of its arrival.

The watcher keeps the folder's UIDVALIDITY and the last UID it handed over (through the
channel's saved state), so after a restart, a dropped connection or another node taking the
channel over, it resumes after that UID. A UIDVALIDITY change means the server renumbered the
folder: everything is read again, and the hub's idempotency on the Message-ID (the interaction's
external id) keeps what was stored from being stored twice.

Between checks it waits in IDLE (re-issued before servers' 29-minute limit) or, on a server
without IDLE, sleeps `poll_interval`. `aioimaplib` 2.x as PROTOCOLS.md §5 describes it:
keyword arguments after `port`, `wait_server_push` returning raw lines or the
`stop_wait_server_push` sentinel, `BODY.PEEK[]` so nothing is marked read. It has no
STARTTLS: `starttls` below upgrades its connection with the event loop's `start_tls`.

Once a message is handed over, the watcher can flag it (`processed_flag`, e.g. `\\Seen` or a
keyword such as `$Hub`) or move it to another folder (`processed_folder`), as help desks do,
so people reading the same mailbox see what the hub took.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aioimaplib import IMAP4, IMAP4_SSL, AioImapException, Command, quoted

from hub.backoff import backoff
from hub.ports.connector import AuthFailed, ChannelConfigError, NotReady

log = logging.getLogger(__name__)

IDLE_S = 1740.0  # 29 minutes: servers drop an IDLE after 30
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    username: str
    password: str
    security: str = "tls"  # tls | starttls | plain
    folder: str = "INBOX"
    poll_interval: float = 60.0
    timeout: float = 30.0
    processed_flag: str = ""  # set on each message taken, e.g. "\\Seen" or "$Hub"
    processed_folder: str = ""  # each message taken is moved there
    # The certificates trusted: the system's by default (tests pass their own CA's).
    tls_context: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        return self.tls_context or ssl.create_default_context()


# What the watcher hands over: the raw message (or only its headers, `whole` False, when it
# is over the size limit: the hub records that it came, and from whom), its size, the folder's
# UIDVALIDITY and its UID.
Deliver = Callable[[bytes, int, int, int, bool], Awaitable[None]]
LoadState = Callable[[], Awaitable[dict[str, Any]]]
SaveState = Callable[[dict[str, Any]], Awaitable[None]]


class MailboxWatcher:
    def __init__(
        self,
        settings: ImapSettings,
        deliver: Deliver,
        load_state: LoadState,
        save_state: SaveState,
        limit: int,
    ) -> None:
        self.settings = settings
        self.deliver = deliver
        self.load_state = load_state
        self.save_state = save_state
        self.limit = limit
        self.client: IMAP4 | None = None  # the live connection, for tests that cut it

    async def run(self) -> None:
        """Until cancelled: connect, catch up, wait for news; reconnect with backoff."""
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except AuthFailed:
                raise
            except (OSError, TimeoutError, AioImapException, NotReady) as exc:
                attempt += 1
                delay = backoff(attempt, 1.0)
                log.warning(
                    "mailbox %s: %s (%s); reconnecting in %.0f s",
                    self.settings.folder,
                    type(exc).__name__,
                    str(exc)[:200],
                    delay,
                )
                await asyncio.sleep(delay)

    async def _connect(self) -> IMAP4:
        s = self.settings
        if s.security == "tls":
            client: IMAP4 = IMAP4_SSL(
                host=s.host, port=s.port, timeout=s.timeout, ssl_context=s.context()
            )
        else:
            client = IMAP4(host=s.host, port=s.port, timeout=s.timeout)
        try:
            await client.wait_hello_from_server()
            if s.security == "starttls":
                await starttls(client, s.host, s.context(), s.timeout)
            reply = await client.login(s.username, s.password)
            if reply.result != "OK":
                raise AuthFailed("the mail server refused the login")
        except BaseException:
            await close(client)
            raise
        return client

    async def _session(self) -> None:
        client = await self._connect()
        self.client = client
        try:
            selected = await client.select(mailbox_name(self.settings.folder))
            if selected.result != "OK":
                raise NotReady(f"cannot open folder {self.settings.folder!r}")
            validity = _uidvalidity(selected.lines)
            idle = client.has_capability("IDLE")
            while True:
                await self.catch_up(client, validity)
                if idle:
                    await self._idle(client)
                else:
                    await asyncio.sleep(self.settings.poll_interval)
                    await client.noop()
        finally:
            await close(client)

    async def _idle(self, client: IMAP4) -> None:
        waiting = await client.idle_start(timeout=IDLE_S)
        try:
            await client.wait_server_push(timeout=IDLE_S + 60)
        finally:
            client.idle_done()
            await asyncio.wait_for(waiting, 10)

    async def catch_up(self, client: IMAP4, validity: int) -> int:
        """Hand over every message after the last one taken; how many were."""
        state = await self.load_state()
        last = int(state.get("last_uid", 0)) if state.get("uidvalidity") == validity else 0
        found = await client.uid_search(f"UID {last + 1}:*")
        if found.result != "OK":
            raise NotReady("the mail server refused the search")
        uids = sorted(int(u) for u in found.lines[0].split() if int(u) > last)
        for uid in uids:
            size, raw, whole = await self._fetch(client, uid)
            await self.deliver(raw, size, validity, uid, whole)
            # Saved after each message: a crash takes at most this one again, and the hub
            # recognises it by its Message-ID.
            await self.save_state({"uidvalidity": validity, "last_uid": uid})
            await self._mark(client, uid)
        return len(uids)

    async def _mark(self, client: IMAP4, uid: int) -> None:
        """Flag or move a message taken. After the state is saved: a failure here never
        takes a message twice, it only leaves it unmarked (and says so)."""
        s = self.settings
        if s.processed_flag:
            done = await client.uid("store", str(uid), "+FLAGS.SILENT", f"({s.processed_flag})")
            if done.result != "OK":
                log.warning("mailbox %s: could not flag message %d", s.folder, uid)
        if s.processed_folder:
            if client.has_capability("MOVE"):
                moved = await client.uid("move", str(uid), mailbox_name(s.processed_folder))
            else:  # RFC 3501 servers: copy, then delete the original
                moved = await client.uid("copy", str(uid), mailbox_name(s.processed_folder))
                if moved.result == "OK":
                    moved = await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
                    if moved.result == "OK" and client.has_capability("UIDPLUS"):
                        moved = await client.uid("expunge", str(uid))
            if moved.result != "OK":
                log.warning(
                    "mailbox %s: could not move message %d to %r", s.folder, uid, s.processed_folder
                )

    async def _fetch(self, client: IMAP4, uid: int) -> tuple[int, bytes, bool]:
        sized = await client.uid("fetch", str(uid), "(RFC822.SIZE)")
        match = _SIZE.search(b" ".join(bytes(line) for line in sized.lines))
        size = int(match.group(1)) if match else 0
        whole = size <= self.limit
        fetched = await client.uid(
            "fetch", str(uid), "(BODY.PEEK[])" if whole else "(BODY.PEEK[HEADER])"
        )
        if fetched.result != "OK" or len(fetched.lines) < 2:
            raise NotReady(f"the mail server did not return message {uid}")
        return size, bytes(fetched.lines[1]), whole


async def starttls(client: IMAP4, host: str, context: ssl.SSLContext, step_s: float) -> None:
    """RFC 3501 §6.2.1 on aioimaplib's connection: STARTTLS, the TLS handshake on the same
    socket, then the capabilities asked again (those said before TLS are not to be trusted).
    A server without STARTTLS is refused rather than spoken to in the clear."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ChannelConfigError(
            "the IMAP server offers no STARTTLS: use imap_security=tls (port 993)"
        )
    command = Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    answer = await asyncio.wait_for(protocol.execute(command), step_s)
    if answer.result != "OK":
        raise NotReady("the IMAP server refused STARTTLS")
    loop = asyncio.get_running_loop()
    secure = await asyncio.wait_for(
        loop.start_tls(protocol.transport, protocol, context, server_hostname=host), step_s
    )
    if secure is None:
        raise NotReady("the TLS handshake did not complete")
    protocol.transport = secure
    await asyncio.wait_for(protocol.capability(), step_s)


def mailbox_name(name: str) -> str:
    """A folder name as IMAP wants it on the wire: RFC 3501 §5.1.3's modified UTF-7 (Russian
    mailboxes name their folders in Cyrillic: "Обработано" is `&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-`),
    quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            packed = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + packed.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return str(quoted("".join(out)))


async def close(client: IMAP4) -> None:
    """A polite LOGOUT when the server is still there, then the socket closed whatever
    happened (aioimaplib's logout leaves the transport to the server's hang-up)."""
    with contextlib.suppress(OSError, TimeoutError, AioImapException):
        await asyncio.wait_for(client.logout(), 5)
    transport = getattr(getattr(client, "protocol", None), "transport", None)
    if transport is not None:
        transport.close()


def _uidvalidity(lines: list[bytes]) -> int:
    for line in lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    raise NotReady("the folder has no UIDVALIDITY")
