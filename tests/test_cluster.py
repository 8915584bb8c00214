"""Two `hub serve` nodes on one database with a real NATS server between them: an operator
connected to one node is offered a dialog that arrived at the other."""

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

from tests.conftest import add_operator
from tests.fixtures.processes import HubProcess, free_port, hub_command

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
    subprocess.run(
        hub_command("channel", "add", "form", "site", "--set", "rate_limit=0"),
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        hub_command(
            "channel",
            "add",
            "pbx",
            "cti",
            "--set",
            "provider=generic",
            "--set",
            "secret=cluster-token",
        ),
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
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
