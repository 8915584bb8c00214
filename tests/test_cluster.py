"""Two `hub serve` nodes on one database with a real NATS server between them: an operator
connected to one node is offered a dialog that arrived at the other; a node that stops hands
its poller to the other at once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import add_operator, add_telegram
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fixtures.processes import HubProcess, free_port, hub_cli
from tests.fixtures.waiting import eventually

NATS_SERVER = Path(sys.executable).parent / "nats-server"


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "nats.log").open("wb")
    proc = subprocess.Popen(
        [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)
        log.close()


async def test_an_offer_crosses_nodes(
    db_dsn: str, pool: asyncpg.Pool, tmp_path: Path, nats_url: str
) -> None:
    env = {
        "HUB_DATABASE_URL": db_dsn,
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_BUS_URL": nats_url,
    }
    hub_cli(env, "channel", "add", "form", "site", "--set", "rate_limit=0")
    hub_cli(
        env,
        "channel",
        "add",
        "pbx",
        "cti",
        "--set",
        "provider=generic",
        "--set",
        "secret=cluster-token",
    )
    await add_operator(pool, "anna", extension="101")
    node_a = HubProcess(env, tmp_path, tmp_path / "a.log")
    node_b = HubProcess(env, tmp_path, tmp_path / "b.log")
    node_a.start()
    node_b.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{node_b.url}/api/v1/auth/login",
                json={"login": "anna", "password": "correct horse battery"},
            ) as reply:
                token = (await reply.json())["token"]
            async with session.ws_connect(
                f"{node_b.url.replace('http', 'ws')}/ws/operator?token={token}"
            ) as ws:
                assert json.loads(await ws.receive_str())["type"] == "hello"
                await ws.send_str(json.dumps({"type": "presence", "status": "online"}))
                assert json.loads(await ws.receive_str())["type"] == "presence"
                async with session.post(
                    f"{node_a.url}/forms/site", json={"name": "Ivan", "phone": "+79161230000"}
                ) as r:
                    dialog_id = (await r.json())["dialog_id"]
                frame = await _until(ws, "dialog.offered")
                assert frame["dialog"]["id"] == dialog_id and frame["lead"]["name"] == "Ivan"
                await ws.send_str(json.dumps({"type": "accept", "dialog_id": dialog_id}))
                await _until(ws, "dialog.assigned")
                # A message arriving at node A reaches the operator on node B.
                async with session.post(
                    f"{node_a.url}/forms/site", json={"phone": "89161230000", "message": "hello?"}
                ) as posted:
                    assert posted.status == 201
                frame = await _until(ws, "interaction")
                assert frame["interaction"]["text"] == "hello?"
                # A call to anna's extension, told to node A, pops her card on node B.
                async with session.post(
                    f"{node_a.url}/connectors/pbx/cti?token=cluster-token",
                    json={
                        "event": "newCall",
                        "from": "89161230000",
                        "to": "74951234567",
                        "direction": "in",
                        "callId": "x-1",
                        "user": "101",
                    },
                ) as rang:
                    assert rang.status == 200
                frame = await _until(ws, "call.ringing")
                assert frame["lead"]["name"] == "Ivan" and frame["call"]["from"] == "+79161230000"
                assert [i["text"] for i in frame["recent"]][:1] == ["hello?"]
                # Signing out on node A ends the socket held by node B: 4401, sign in again.
                async with session.post(
                    f"{node_a.url}/api/v1/auth/logout",
                    headers={"Authorization": f"Bearer {token}"},
                ) as out:
                    assert out.status == 200
                async with asyncio.timeout(10):
                    while (await ws.receive()).type not in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSED,
                    ):
                        continue
                assert ws.close_code == 4401
    finally:
        node_a.stop()
        node_b.stop()


async def _until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next frame of this type, skipping others, within ten seconds."""
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await ws.receive_str())
            if frame["type"] == kind:
                return frame


async def test_a_stopping_node_hands_its_poller_over_at_once(
    db_dsn: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
    nats_url: str,
    fake_telegram: tuple[FakeTelegram, str],
) -> None:
    """SIGTERM of the node polling Telegram: it releases the channel and says so on the bus,
    and the other node takes the poller over on that notice. Both nodes look for channels
    every two minutes on their own, far beyond this test's bounded waits, so only the notice
    can make the other node look. No update is skipped or stored twice."""
    telegram, base = fake_telegram
    await add_telegram(pool, telegram, base, "handover-secret", mode="polling", poll_timeout="2")
    env = {
        "HUB_DATABASE_URL": db_dsn,
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_BUS_URL": nats_url,
        "HUB_CHANNEL_CHECK_S": "120",
    }
    node_a = HubProcess(env, tmp_path, tmp_path / "a.log")
    node_b = HubProcess(env, tmp_path, tmp_path / "b.log")
    node_a.start()
    try:
        await eventually(lambda: _runs_on(pool, node_a), timeout=15)
        node_b.start()  # its first look finds the channel taken; the next is minutes away
        for n in range(1, 4):
            telegram.push_update(text_update(n, f"before {n}", message_id=n))
        await eventually(lambda: _stored(pool, 3), timeout=15)
        telegram.push_update(text_update(4, "while stopping", message_id=4))
        node_a.signal(signal.SIGTERM)
        assert node_a.wait(30) == 0
        await eventually(lambda: _runs_on(pool, node_b), timeout=15)
        for n in range(5, 7):
            telegram.push_update(text_update(n, f"after {n}", message_id=n))
        await eventually(lambda: _stored(pool, 6), timeout=15)
        assert "released channels" in (tmp_path / "a.log").read_text()
    finally:
        node_a.stop()
        node_b.stop()
    texts = [r["text"] for r in await pool.fetch("SELECT text FROM interactions ORDER BY id")]
    assert sorted(texts) == sorted(
        ["before 1", "before 2", "before 3", "while stopping", "after 5", "after 6"]
    )


async def _runs_on(pool: asyncpg.Pool, node: HubProcess) -> bool:
    assert node.proc is not None
    where = await pool.fetchval("SELECT node FROM channel_status WHERE state = 'running'")
    return isinstance(where, str) and where.endswith(f":{node.proc.pid}")


async def _stored(pool: asyncpg.Pool, n: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM interactions")) >= n
