"""Requests aiohttp cannot parse are answered by `hub serve` in the contract's JSON shape,
not aiohttp's plain text."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg

from tests.fixtures.processes import HubProcess


async def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


async def test_unparsable_requests_get_json_errors(
    db_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    hub = HubProcess(
        {"HUB_DATABASE_URL": db_dsn, "HUB_DATA_DIR": str(tmp_path / "data")},
        tmp_path,
        tmp_path / "hub.log",
    )
    hub.start()
    try:
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
        status, headers, body = await _raw(hub.port, big)
        assert status == 431 and headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "headers_too_large"

        status, headers, body = await _raw(hub.port, b"NOT-HTTP \x01\x02\r\n\r\n")
        assert status == 400 and headers["Content-Type"].startswith("application/json")
        assert set(json.loads(body)["error"]) == {"code", "message"}
    finally:
        hub.stop()
