"""Files customers send, kept under `HUB_DATA_DIR/attachments`.

A file is read up to its limit into memory and written from a worker thread, so the event
loop never blocks on disk. Stored names are random; the customer's file name is only
metadata, never a path.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from hub.domain import Attachment
from hub.ports import TooLarge

_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def safe_display_name(name: str) -> str:
    base = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    return cleaned[:150] or "file"


def private_folders(root: Path, relative: Path = Path()) -> None:
    """`root` and each folder of `relative` under it, created (or narrowed) to 0700."""
    folder = root
    for part in ("", *relative.parts):
        folder = folder / part if part else folder
        if not folder.is_dir():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)


class DiskAttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def save(
        self, chunks: AsyncIterator[bytes], name: str, content_type: str, limit: int
    ) -> Attachment:
        buffer = bytearray()
        async for chunk in chunks:
            buffer.extend(chunk)
            if len(buffer) > limit:
                raise TooLarge(f"file {safe_display_name(name)!r} is over {limit} bytes")
        return await self.save_bytes(bytes(buffer), name, content_type)

    async def save_bytes(self, data: bytes, name: str, content_type: str) -> Attachment:
        digest = hashlib.sha256(data).hexdigest()
        relative = Path(datetime.now(UTC).strftime("%Y/%m")) / secrets.token_hex(16)
        await asyncio.to_thread(self._write, relative, data)
        display = safe_display_name(name)
        guessed = content_type or mimetypes.guess_type(display)[0] or "application/octet-stream"
        return Attachment(
            name=display,
            content_type=guessed[:100],
            size=len(data),
            storage_path=str(relative),
            sha256=digest,
        )

    def _write(self, relative: Path, data: bytes) -> None:
        # Customers' files are for the hub's user alone: folders 0700, files 0600,
        # whatever the umask of the process that started the hub.
        path = self.root / relative
        private_folders(self.root, relative.parent)
        tmp = path.with_suffix(".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.replace(path)

    async def read(self, storage_path: str) -> bytes:
        return await asyncio.to_thread(self.path_of(storage_path).read_bytes)

    async def discard(self, attachments: tuple[Attachment, ...]) -> None:
        paths = [self.root / a.storage_path for a in attachments if a.storage_path]

        def remove() -> None:
            for path in paths:
                path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    def path_of(self, storage_path: str) -> Path:
        path = (self.root / storage_path).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("attachment path escapes the attachment folder")
        return path
