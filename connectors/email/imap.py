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
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from aioimaplib import IMAP4, IMAP4_SSL, AioImapException, Command, quoted

from hub.backoff import backoff
from hub.ports.connector import AuthFailed, ChannelConfigError, NotReady

log = logging.getLogger(__name__)

IDLE_S = 1740.0  # 29 minutes: servers drop an IDLE after 30
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")
_LITERAL = re.compile(rb"\{\d+\}$")
BATCH = 50  # messages fetched in one command
LISTING = 100  # sizes asked in one command
BATCH_BYTES = 8 * 1024 * 1024  # and at most this much of them


def _batches(uids: list[int], sizes: dict[int, int], limit: int) -> list[list[int]]:
    """Consecutive runs of at most BATCH messages and BATCH_BYTES (a message over the
    limit counts as its headers only)."""
    batches: list[list[int]] = []
    current: list[int] = []
    weight = 0
    for uid in uids:
        size = sizes[uid] if sizes[uid] <= limit else 0
        if current and (len(current) >= BATCH or weight + size > BATCH_BYTES):
            batches.append(current)
            current, weight = [], 0
        current.append(uid)
        weight += size
    if current:
        batches.append(current)
    return batches


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
    # How far back a folder seen for the first time is read (-1: all of it).
    history_days: int = 1
    # The certificates trusted: the system's by default (tests pass their own CA's).
    tls_context: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        return self.tls_context or ssl.create_default_context()


@dataclass(frozen=True, slots=True)
class Fetched:
    """A message as the watcher hands it over: whole, or only its headers (`whole` False)
    when it is over the size limit (the hub records that it came, and from whom)."""

    raw: bytes
    size: int
    uidvalidity: int
    uid: int
    whole: bool


P = TypeVar("P")
# What the watcher hands a batch to, in two steps so that reading one batch overlaps storing
# the one before (the parser's CPU beside the database's): `prepare` turns the batch into
# what is to be stored; `store` stores that and the folder state that marks the batch taken,
# together (one transaction), so a crash takes again at most that batch, which the hub
# recognises by its Message-IDs. Batches are stored one after another, in the folder's order.
Prepare = Callable[[list[Fetched]], Awaitable[P]]
Store = Callable[[P, dict[str, Any]], Awaitable[None]]
LoadState = Callable[[], Awaitable[dict[str, Any]]]
SaveState = Callable[[dict[str, Any]], Awaitable[None]]


class MailboxWatcher(Generic[P]):
    def __init__(
        self,
        settings: ImapSettings,
        prepare: Prepare[P],
        store: Store[P],
        load_state: LoadState,
        save_state: SaveState,
        limit: int,
    ) -> None:
        self.settings = settings
        self.prepare = prepare
        self.store = store
        self.load_state = load_state
        self.save_state = save_state
        self.limit = limit
        self.client: IMAP4 | None = None  # the live connection, for tests that cut it
        self.lost = asyncio.Event()  # set when that connection closes

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
        # aioimaplib tells nobody when the socket closes (IMAP4_SSL takes no callback): the
        # protocol's own hook is set, so an IDLE on a dropped connection ends at once.
        self.lost = asyncio.Event()
        client.protocol.conn_lost_cb = lambda exc: self.lost.set()
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
        push = asyncio.ensure_future(client.wait_server_push(timeout=IDLE_S + 60))
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait((push, lost), return_when=asyncio.FIRST_COMPLETED)
            if lost.done():
                raise ConnectionResetError("the mail server closed the connection")
        finally:
            push.cancel()
            lost.cancel()
            if not self.lost.is_set():
                client.idle_done()
                await asyncio.wait_for(waiting, 10)
            else:
                waiting.cancel()

    async def catch_up(self, client: IMAP4, validity: int) -> int:
        """Hand over every message after the last one taken; how many were. Sizes come in
        one command, bodies in batches (one round trip for up to BATCH messages)."""
        state = await self.load_state()
        if state.get("uidvalidity") == validity:
            last = int(state.get("last_uid", 0))
            sizes = await self._sizes(client, await self._search(client, f"UID {last + 1}:*"))
            sizes = {u: n for u, n in sizes.items() if u > last}
        elif self.settings.history_days == 0:
            # Only what arrives from now on: start after the newest message there is.
            uids = await self._search(client, "ALL")
            await self.save_state({"uidvalidity": validity, "last_uid": max(uids, default=0)})
            return 0
        else:
            sizes = await self._first_sizes(client)
        uids = sorted(sizes)
        batches = _batches(uids, sizes, self.limit)
        # The next batch is fetched, and prepared, while this one is stored, unless messages
        # are to be flagged or moved (those commands share the connection with the fetch,
        # and wait for the batch to be stored).
        marking = bool(self.settings.processed_flag or self.settings.processed_folder)
        upcoming = (
            asyncio.ensure_future(self._batch(client, batches[0], sizes)) if batches else None
        )
        storing: asyncio.Future[None] | None = None
        try:
            for index, batch in enumerate(batches):
                assert upcoming is not None
                messages = await upcoming
                upcoming = None
                following = batches[index + 1] if index + 1 < len(batches) else None
                if following and not marking:
                    upcoming = asyncio.ensure_future(self._batch(client, following, sizes))
                prepared = await self.prepare(
                    [
                        Fetched(raw, sizes[uid], validity, uid, whole)
                        for uid, (raw, whole) in sorted(messages.items())
                    ]
                )
                if storing is not None:
                    await storing  # the batch before, first: the folder's order is kept
                state = {"uidvalidity": validity, "last_uid": batch[-1]}
                storing = asyncio.ensure_future(self.store(prepared, state))
                await asyncio.sleep(0)  # it sends its work to the database before we go on
                if marking:
                    await storing
                    for uid in batch:
                        await self._mark(client, uid)
                    if following:
                        upcoming = asyncio.ensure_future(self._batch(client, following, sizes))
            if storing is not None:
                await storing
        finally:
            for task in (upcoming, storing):
                if task is not None:
                    # A batch half stored is rolled back and read again next time; a task
                    # that ended in an error while another one raised is read all the same.
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
        return len(uids)

    async def _batch(
        self, client: IMAP4, batch: list[int], sizes: dict[int, int]
    ) -> dict[int, tuple[bytes, bool]]:
        """A batch's messages: whole, or only their headers when over the limit (who wrote
        is recorded; the rest stays in the mailbox)."""
        whole = [u for u in batch if sizes[u] <= self.limit]
        bodies = await self._bodies(client, whole, "BODY.PEEK[]") if whole else {}
        messages: dict[int, tuple[bytes, bool]] = {}
        for uid in batch:
            if uid in bodies:
                messages[uid] = (bodies[uid], True)
            else:
                head = await self._bodies(client, [uid], "BODY.PEEK[HEADER]")
                messages[uid] = (head.get(uid, b""), False)
        return messages

    async def _first_sizes(self, client: IMAP4) -> dict[int, int]:
        """A folder seen for the first time (or renumbered): the messages of the last
        `history_days` days, not years of a shared mailbox's past."""
        if self.settings.history_days < 0:
            return await self._sizes(client, await self._search(client, "ALL"))
        since = (datetime.now(UTC) - timedelta(days=self.settings.history_days)).strftime(
            "%d-%b-%Y"
        )
        return await self._sizes(client, await self._search(client, f"SINCE {since}"))

    async def _search(self, client: IMAP4, criteria: str) -> list[int]:
        found = await client.uid_search(criteria, charset=None)
        if found.result != "OK":
            raise NotReady("the mail server refused the search")
        return sorted(int(u) for u in (found.lines[0].split() if found.lines else []))

    async def _sizes(self, client: IMAP4, uids: list[int]) -> dict[int, int]:
        """Each message's size, asked LISTING messages at a time: aioimaplib reads an
        answer's lines recursively, and a few hundred in one go exceed Python's stack."""
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), LISTING):
            chunk = ",".join(map(str, uids[start : start + LISTING]))
            answer = await client.uid("fetch", chunk, "(RFC822.SIZE)")
            if answer.result != "OK":
                raise NotReady("the mail server refused to list the folder")
            for line in answer.lines:
                text = bytes(line)
                uid, size = _UID.search(text), _SIZE.search(text)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def _bodies(self, client: IMAP4, uids: list[int], part: str) -> dict[int, bytes]:
        """`UID FETCH` of several messages: each answer is a line naming the message, its
        literal, and a closing line (where some servers put the UID)."""
        answer = await client.uid("fetch", ",".join(map(str, uids)), f"(UID {part})")
        if answer.result != "OK":
            raise NotReady("the mail server did not return the messages")
        found: dict[int, bytes] = {}
        lines = answer.lines
        for index, line in enumerate(lines[:-1]):
            if isinstance(line, bytearray) or not _LITERAL.search(line):
                continue
            literal = lines[index + 1]
            closing = bytes(lines[index + 2]) if index + 2 < len(lines) else b""
            uid = _UID.search(line) or _UID.search(closing)
            if uid and isinstance(literal, bytearray):
                found[int(uid.group(1))] = bytes(literal)
        missing = set(uids) - set(found)
        if missing:
            raise NotReady(f"the mail server did not return message {min(missing)}")
        return found

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
