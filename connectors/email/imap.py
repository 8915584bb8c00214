"""Taking every message of one IMAP folder exactly once, within seconds of its arrival.

The watcher keeps the folder's UIDVALIDITY and the last UID it handed over (through the
channel's saved state), so after a restart, a dropped connection or another node taking the
channel over, it resumes after that UID. A UIDVALIDITY change means the server renumbered the
folder: everything is read again, and the hub's idempotency on the Message-ID (the interaction's
external id) keeps what was stored from being stored twice.

Between checks it waits in IDLE (re-issued before servers' 29-minute limit) or, on a server
without IDLE, sleeps `poll_interval`. `aioimaplib` 2.x as PROTOCOLS.md §5 describes it:
keyword arguments after `port`, `wait_server_push` returning raw lines or the
`stop_wait_server_push` sentinel, `BODY.PEEK[]` so nothing is marked read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aioimaplib import IMAP4, IMAP4_SSL, AioImapException

from hub.backoff import backoff
from hub.ports.connector import AuthFailed, NotReady

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
    security: str = "tls"  # tls | plain (STARTTLS is not offered by aioimaplib 2.x)
    folder: str = "INBOX"
    poll_interval: float = 60.0
    timeout: float = 30.0


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
                    "mailbox %s: %s; reconnecting in %.0f s",
                    self.settings.folder,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _connect(self) -> IMAP4:
        s = self.settings
        if s.security == "plain":
            client = IMAP4(host=s.host, port=s.port, timeout=s.timeout)
        else:
            client = IMAP4_SSL(
                host=s.host,
                port=s.port,
                timeout=s.timeout,
                ssl_context=ssl.create_default_context(),
            )
        try:
            await client.wait_hello_from_server()
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
            selected = await client.select(self.settings.folder)
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
        return len(uids)

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
