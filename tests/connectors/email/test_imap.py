"""The mailbox watcher against a real Dovecot: a message pushed through IDLE is taken within
seconds (polling set to an hour, so only IDLE can deliver it), and a batch survives a
forced disconnect and a restart with every message taken exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from aioimaplib import IMAP4

from connectors.email.imap import Fetched, ImapSettings, MailboxWatcher, close, mailbox_name
from tests.fixtures.dovecot import Dovecot, dovecot_server
from tests.fixtures.waiting import eventually


class _Taken:
    def __init__(self, pace: float = 0.0) -> None:
        self.messages: list[tuple[int, int, bytes]] = []
        self.whole: list[bool] = []
        self.state: dict[str, Any] = {}
        self.pace = pace  # seconds each message takes to store, as the hub's would

    async def prepare(self, batch: list[Fetched]) -> list[Fetched]:
        return batch

    async def store(self, batch: list[Fetched], state: dict[str, Any]) -> None:
        """The batch and its state stored at once, as the hub's one transaction does: a
        stop while storing keeps neither."""
        await asyncio.sleep(self.pace * len(batch))
        self.messages += [(m.uidvalidity, m.uid, m.raw) for m in batch]
        self.whole += [m.whole for m in batch]
        self.state = dict(state)

    async def load(self) -> dict[str, Any]:
        return dict(self.state)

    async def save(self, state: dict[str, Any]) -> None:
        self.state = dict(state)


async def _writer(server: Dovecot) -> IMAP4:
    client = IMAP4(host=server.host, port=server.port, timeout=10)
    await client.wait_hello_from_server()
    await client.login(server.user, server.password)
    return client


def _mail(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Customer {n} <c{n}@example.com>"
    mail["To"] = "sales@example.test"
    mail["Subject"] = f"Заявка {n}"
    mail["Message-ID"] = f"<m{n}.{uuid.uuid4().hex}@example.com>"
    mail.set_content(f"Текст {n}")
    return mail.as_bytes(policy=SMTP)


async def _folder(server: Dovecot) -> tuple[IMAP4, str]:
    writer = await _writer(server)
    folder = f"T{uuid.uuid4().hex[:10]}"
    assert (await writer.create(folder)).result == "OK"
    return writer, folder


def _watcher(
    server: Dovecot, folder: str, taken: _Taken, limit: int = 10_000_000, **settings: Any
) -> MailboxWatcher[list[Fetched]]:
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "username": server.user,
        "password": server.password,
        "security": "plain",
        "folder": folder,
        "poll_interval": 3600,
        "timeout": 5,  # a command on a dropped connection gives up after this
        **settings,
    }
    return MailboxWatcher(
        ImapSettings(**options), taken.prepare, taken.store, taken.load, taken.save, limit
    )


async def test_a_message_arrives_through_idle(dovecot: Dovecot) -> None:
    writer, folder = await _folder(dovecot)
    taken = _Taken()
    task = asyncio.create_task(_watcher(dovecot, folder, taken).run())
    try:
        await asyncio.sleep(1.0)  # connected and idling
        raw = _mail(1)
        assert (await writer.append(raw, mailbox=folder)).result == "OK"
        await eventually(lambda: _count(taken, 1), timeout=10)
        assert taken.messages[0][2] == raw and taken.state["last_uid"] == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)


async def test_a_batch_is_taken_exactly_once_across_a_disconnect_and_a_restart(
    dovecot: Dovecot,
) -> None:
    writer, folder = await _folder(dovecot)
    for n in range(500):
        await writer.append(_mail(n), mailbox=folder)
    taken = _Taken(pace=0.02)
    watcher = _watcher(dovecot, folder, taken)
    first = asyncio.create_task(watcher.run())
    await eventually(lambda: _count(taken, 100), timeout=30)
    assert watcher.client is not None and len(taken.messages) < 500
    watcher.client.protocol.transport.abort()  # the connection drops mid-batch
    await eventually(lambda: _count(taken, 300), timeout=60)
    first.cancel()  # the hub stops in the middle of the batch
    await asyncio.gather(first, return_exceptions=True)
    for n in range(500, 520):
        await writer.append(_mail(n), mailbox=folder)
    second = asyncio.create_task(_watcher(dovecot, folder, taken).run())
    try:
        await eventually(lambda: _count(taken, 520), timeout=60)
        await asyncio.sleep(0.5)
        uids = [uid for _, uid, _ in taken.messages]
        # Every one, once: a batch and the state past it are stored together, so a stop
        # in the middle of one hands it over again whole, and nothing of it was kept.
        assert uids == list(range(1, 521))
    finally:
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        await close(writer)


async def test_a_connection_dropped_while_idling_is_noticed_at_once(dovecot: Dovecot) -> None:
    """aioimaplib tells nobody when the socket closes: without the watcher's own hook, an
    IDLE on a dead connection waited for its 29-minute timer and mail meanwhile waited too."""
    writer, folder = await _folder(dovecot)
    taken = _Taken()
    watcher = _watcher(dovecot, folder, taken)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(1.0)  # connected and idling
        first = watcher.client
        assert first is not None
        first.protocol.transport.abort()
        await eventually(lambda: _reconnected(watcher, first), timeout=10)
        await writer.append(_mail(1), mailbox=folder)
        await eventually(lambda: _count(taken, 1), timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)


async def _reconnected(watcher: MailboxWatcher[list[Fetched]], before: IMAP4) -> bool:
    return watcher.client is not None and watcher.client is not before


async def test_a_message_over_the_limit_is_announced_with_its_headers_only(
    dovecot: Dovecot,
) -> None:
    writer, folder = await _folder(dovecot)
    await writer.append(_mail(1), mailbox=folder)
    taken = _Taken()
    task = asyncio.create_task(_watcher(dovecot, folder, taken, limit=50).run())
    try:
        await eventually(lambda: _count(taken, 1), timeout=10)
        raw = taken.messages[0][2]
        assert taken.whole == [False] and b"Subject:" in raw and "Текст 1".encode() not in raw
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)


async def _count(taken: _Taken, n: int) -> bool:
    return len(taken.messages) >= n


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_the_mailbox_is_read_over_tls_and_starttls(dovecot: Dovecot, security: str) -> None:
    writer, folder = await _folder(dovecot)
    await writer.append(_mail(1), mailbox=folder)
    taken = _Taken()
    port = dovecot.port if security == "starttls" else dovecot.tls_port
    watcher = _watcher(
        dovecot, folder, taken, security=security, port=port, tls_context=dovecot.tls_context()
    )
    task = asyncio.create_task(watcher.run())
    try:
        await eventually(lambda: _count(taken, 1), timeout=10)
        assert watcher.client is not None
        transport = watcher.client.protocol.transport
        assert transport.get_extra_info("ssl_object") is not None  # the session is encrypted
        # The capabilities were asked again after TLS: Dovecot offers STARTTLS only before.
        assert not watcher.client.has_capability("STARTTLS")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)


async def test_a_certificate_the_hub_does_not_trust_is_never_logged_in_to(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    writer, folder = await _folder(dovecot)
    await writer.append(_mail(1), mailbox=folder)
    taken = _Taken()
    # The system's CAs: the test CA's certificate is refused, in either form of TLS.
    task = asyncio.create_task(_watcher(dovecot, folder, taken, security="starttls").run())
    try:
        await eventually(lambda: _logged(caplog, "certificate verify failed"), timeout=10)
        assert taken.messages == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)


async def test_messages_taken_are_flagged_or_moved_when_asked(dovecot: Dovecot) -> None:
    writer, folder = await _folder(dovecot)
    done = f"Обработано {folder}"
    assert (await writer.create(mailbox_name(done))).result == "OK"
    for n in range(3):
        await writer.append(_mail(n), mailbox=folder)
    taken = _Taken()
    task = asyncio.create_task(
        _watcher(dovecot, folder, taken, processed_flag="$Hub", processed_folder=done).run()
    )
    try:
        await eventually(lambda: _count(taken, 3), timeout=10)
        await writer.append(_mail(3), mailbox=folder)  # one more, through IDLE
        await eventually(lambda: _count(taken, 4), timeout=10)

        async def moved() -> bool:
            box = await writer.select(mailbox_name(done))
            return box.result == "OK" and any(b"4 EXISTS" in bytes(x) for x in box.lines)

        await eventually(moved, timeout=10)
        flagged = await writer.uid_search("KEYWORD $Hub")
        assert flagged.lines[0].split() == [b"1", b"2", b"3", b"4"]
        left = await writer.select(mailbox_name(folder))
        assert any(b"0 EXISTS" in bytes(x) for x in left.lines)
        # Nothing was handed over twice because messages left the folder.
        assert [uid for _, uid, _ in taken.messages] == [1, 2, 3, 4]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("history_days", "expected"), [(1, [2]), (-1, [1, 2]), (0, [])])
async def test_a_folder_seen_for_the_first_time_is_read_back_history_days(
    dovecot: Dovecot, history_days: int, expected: list[int]
) -> None:
    """A shared mailbox holds years of mail: a new channel takes the last day's (by
    default), not all of it; later mail is taken whatever its date."""
    writer, folder = await _folder(dovecot)
    old = datetime.now(UTC) - timedelta(days=3)
    assert (await writer.append(_mail(1), mailbox=folder, date=old)).result == "OK"
    assert (await writer.append(_mail(2), mailbox=folder)).result == "OK"
    taken = _Taken()
    watcher = _watcher(dovecot, folder, taken, history_days=history_days)
    task = asyncio.create_task(watcher.run())
    try:
        await eventually(lambda: _saved(taken), timeout=10)
        await asyncio.sleep(0.3)
        assert [uid for _, uid, _ in taken.messages] == expected
        await writer.append(_mail(3), mailbox=folder, date=old)  # new, though dated back
        await eventually(lambda: _count(taken, len(expected) + 1), timeout=10)
        assert taken.messages[-1][1] == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)


async def _saved(taken: _Taken) -> bool:
    return bool(taken.state) or bool(taken.messages)


@pytest.fixture
def dovecot_without_idle() -> Iterator[Dovecot]:
    """A second Dovecot that does not offer IDLE (as some hosted servers do not)."""
    yield from dovecot_server(
        "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS"
        " MOVE\n}\n"
    )


async def test_a_server_without_idle_is_polled_every_poll_interval(
    dovecot_without_idle: Dovecot,
) -> None:
    server = dovecot_without_idle
    writer, folder = await _folder(server)
    taken = _Taken()
    watcher = _watcher(server, folder, taken, poll_interval=1)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(0.5)
        assert watcher.client is not None and not watcher.client.has_capability("IDLE")
        await writer.append(_mail(1), mailbox=folder)
        await eventually(lambda: _count(taken, 1), timeout=10)  # found by the next check
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(writer)
