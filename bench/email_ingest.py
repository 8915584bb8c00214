"""Email ingest end to end: N messages waiting in a real Dovecot folder, a `hub serve` with
an email channel on it, timed from the first stored interaction to the Nth (each message:
size checked, fetched, parsed, lead matched or created, threaded, stored; each batch of 50
committed with the folder's state). In the same run, the bare rate: a plain `aioimaplib`
loop doing `UID FETCH BODY.PEEK[]` over the same folder, one message at a time, doing
nothing with them.

    python bench/email_ingest.py [--messages 5000] [--rounds 5]

(Not `bench/email.py`: run as a script, a file of that name in this folder hides the
standard `email` package from every benchmark here.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import asyncpg
from aioimaplib import IMAP4

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HUB_CLI,
    ROOT,
    BenchDatabases,
    free_port,
    hub_env,
    loop_name,
    stop,
)
from tests.fixtures.dovecot import Dovecot, dovecot_server


def _mail(n: int) -> bytes:
    """A customer's letter as mail clients send it: 1,000 distinct senders, a quoted reply
    and a signature to cut."""
    mail = EmailMessage()
    mail["From"] = f"Customer {n % 1000} <c{n % 1000}@example.com>"
    mail["To"] = "sales@example.test"
    mail["Subject"] = f"Заявка {n}"
    mail["Message-ID"] = f"<m{n}.{uuid.uuid4().hex}@example.com>"
    mail.set_content(
        f"Здравствуйте! Нужна доставка заказа {n} на завтра.\n\n-- \nКлиент {n % 1000}\n"
        "+7 912 345-67-89\n\nпн, 16 нояб. 2026 г. в 10:00, Ромашка <sales@example.test>:\n"
        "> Ваш заказ собран.\n"
    )
    return mail.as_bytes(policy=SMTP)


async def _connect(server: Dovecot) -> IMAP4:
    client = IMAP4(host=server.host, port=server.port, timeout=30)
    await client.wait_hello_from_server()
    await client.login(server.user, server.password)
    return client


async def _fill(server: Dovecot, messages: int) -> str:
    writer = await _connect(server)
    folder = f"B{uuid.uuid4().hex[:10]}"
    await writer.create(folder)
    for n in range(messages):
        await writer.append(_mail(n), mailbox=folder)
    await writer.logout()
    return folder


async def _bare(server: Dovecot, folder: str) -> float:
    """Messages/s of a plain UID FETCH loop over the folder."""
    client = await _connect(server)
    await client.select(folder)
    found = await client.uid_search("ALL")
    uids = found.lines[0].split()
    started = time.perf_counter()
    for uid in uids:
        fetched = await client.uid("fetch", uid.decode(), "(BODY.PEEK[])")
        assert fetched.result == "OK" and len(fetched.lines) >= 2
    elapsed = time.perf_counter() - started
    await client.logout()
    return len(uids) / elapsed


COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


async def _hub(
    server: Dovecot, folder: str, dsn: str, work: Path, messages: int
) -> tuple[float, float]:
    """Messages/s through `hub serve` (first stored interaction to the last), and the
    database transactions committed per message meanwhile (routing's included)."""
    env = hub_env(dsn, work)
    subprocess.run(
        [
            *HUB_CLI,
            *("channel", "add", "email", f"mail-{folder}"),
            *("--set", f"imap_host={server.host}", "--set", f"imap_port={server.port}"),
            *("--set", "imap_security=plain", "--set", "smtp_host=127.0.0.1"),
            *("--set", f"username={server.user}", "--set", f"password={server.password}"),
            *("--set", "from_address=sales@example.test", "--set", f"folder={folder}"),
        ],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    conn = await asyncpg.connect(dsn)
    base = await conn.fetchval("SELECT count(*) FROM interactions")
    commits = await conn.fetchval(COMMITS)
    proc = subprocess.Popen([*HUB_CLI, "serve", "--port", str(free_port())], env=env, cwd=ROOT)
    try:
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = await conn.fetchval("SELECT count(*) FROM interactions") - base
            if done and first is None:
                first = (time.perf_counter(), done)
            if done >= messages:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the hub did not take every message in time")
        assert first is not None
        finished = time.perf_counter()
        await asyncio.sleep(1.0)  # the statistics collector catches up
        per_message = (await conn.fetchval(COMMITS) - commits) / messages
        return float(messages - first[1]) / (finished - first[0]), per_message
    finally:
        stop(proc)
        await conn.execute("UPDATE channels SET enabled = false WHERE name = $1", f"mail-{folder}")
        await conn.close()


async def _rounds(
    server: Dovecot, dsn: str, work: Path, messages: int, rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """(hub rates, bare rates, transactions per message) of each round."""
    hub_rates: list[float] = []
    bare_rates: list[float] = []
    commits: list[float] = []
    for _ in range(rounds):
        folder = await _fill(server, messages)
        bare_rates.append(await _bare(server, folder))
        rate, per_message = await _hub(server, folder, dsn, work, messages)
        hub_rates.append(rate)
        commits.append(per_message)
    return hub_rates, bare_rates, commits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bench = BenchDatabases("bench_mail")
    servers = dovecot_server()
    server = next(servers)
    try:
        hub_rates, bare_rates, commits = asyncio.run(
            _rounds(server, bench.dsns[0], bench.work, args.messages, args.rounds)
        )
    finally:
        servers.close()
        bench.close()
    hub, bare = statistics.median(hub_rates), statistics.median(bare_rates)
    # Each round's pair is measured back to back, under the same conditions: on a shared
    # virtual machine the bare loop (a round trip per message) swings by half from one
    # minute to the next, so the ratio is the median of the rounds' ratios.
    ratios = [h / b for h, b in zip(hub_rates, bare_rates, strict=True)]
    print(
        f"email ingest from Dovecot, {args.messages} messages, median of {args.rounds} rounds, "
        f"event loop: {loop_name()}, {os.cpu_count()} cores"
    )
    print(f"  {'hub serve, email channel (stored)':52s} {hub:9.0f} messages/s")
    print(f"  {'bare aioimaplib UID FETCH loop (no-op)':52s} {bare:9.0f} messages/s")
    print(
        "  rounds (hub / bare): "
        + ", ".join(f"{h:.0f}/{b:.0f}" for h, b in zip(hub_rates, bare_rates, strict=True))
    )
    print(f"  ratio hub / bare (median of the rounds'): {statistics.median(ratios):.2f}")
    print(
        "  database transactions per message (all of the hub's, routing included): "
        f"{statistics.median(commits):.1f}"
    )


if __name__ == "__main__":
    main()
