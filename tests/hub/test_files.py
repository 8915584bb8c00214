"""Customers' files on disk: readable by the hub's user alone, never left behind by a
refused request."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient

from hub.config import Settings
from hub.context import Hub
from hub.domain import Channel
from hub.runtime import database

Client = TestClient[Any, Any]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_stored_files_and_their_folders_are_private(
    client: Client, hub: Hub, form: Channel
) -> None:
    upload = aiohttp.FormData()
    upload.add_field("phone", "+79120000001")
    upload.add_field("file", b"passport scan", filename="scan.jpg", content_type="image/jpeg")
    reply = await client.post("/forms/site", data=upload, headers={"Accept": "application/json"})
    assert reply.status == 201, await reply.text()
    root = hub.settings.attachments_dir
    [stored] = _files(root)
    assert _mode(stored) == 0o600
    folder = stored.parent
    while True:
        assert _mode(folder) == 0o700, folder
        if folder == root:
            break
        folder = folder.parent


async def test_a_send_refused_for_too_many_files_leaves_none_on_disk(
    client: Client, hub: Hub, form: Channel, auth: dict[str, str]
) -> None:
    created = await client.post("/forms/site", json={"email": "ivan@example.com"})
    dialog_id = (await created.json())["dialog_id"]
    send = aiohttp.FormData()
    send.add_field("text", "documents attached")
    for n in range(hub.settings.max_form_files + 1):
        send.add_field("file", b"x" * 1000, filename=f"doc{n}.pdf", content_type="application/pdf")
    reply = await client.post(f"/api/v1/dialogs/{dialog_id}/messages", data=send, headers=auth)
    assert reply.status == 413 and (await reply.json())["error"]["code"] == "too_many_files"
    assert _files(hub.settings.attachments_dir) == []


async def test_an_existing_data_folder_is_narrowed_to_the_hubs_user(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = tmp_path / "shared"
    (data / "attachments").mkdir(parents=True)
    data.chmod(0o755)
    (data / "attachments").chmod(0o755)
    # Opening the database (as `hub serve` does) is what narrows the folders.
    async with database(Settings(database_url=settings.database_url, data_dir=data)) as opened:
        await opened[0].fetchval("SELECT 1")
    assert _mode(data) == 0o700 and _mode(data / "attachments") == 0o700
