"""Which database a CLI command works on, said on every command (stderr), and a warning when
a running hub serves another one: a command run from another folder, or without the
serving hub's `HUB_DATA_DIR`, would otherwise start an embedded server of its own and edit
a database nobody serves."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import psutil

from hub.config import Settings
from hub.runtime import database


def where(database_url: str | None, data_dir: Path) -> str:
    """A database as a person reads it, never with its password."""
    if database_url:
        parts = urlsplit(database_url)
        socket = parse_qs(parts.query).get("host", [""])[0]
        host = parts.hostname or (f"the socket in {socket}" if socket else "localhost")
        port = f":{parts.port}" if parts.port else ""
        return f"PostgreSQL at {host}{port}{parts.path or ''}"
    return f"the embedded PostgreSQL in {(data_dir / 'pgdata').resolve()}"


def serving_hubs() -> list[tuple[int, str]]:
    """`hub serve` processes of this user, other than this one, and the database each uses
    (from its environment and working folder)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "environ"]):
        try:
            cmd = proc.info["cmdline"] or []
            if proc.pid == os.getpid() or "serve" not in cmd:
                continue
            if not any(Path(part).name == "hub" or part == "hub.cli" for part in cmd[:4]):
                continue
            env = proc.info["environ"] or {}
            folder = Path(proc.info["cwd"] or "/") / env.get("HUB_DATA_DIR", ".hub")
            found.append((proc.pid, where(env.get("HUB_DATABASE_URL"), folder)))
        except (psutil.Error, OSError):
            continue
    return found


async def with_pool(settings: Settings, action: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    """Run a command on the settings' database, saying which it is first."""
    ours = where(settings.database_url, settings.data_dir)
    print(f"hub: using {ours}", file=sys.stderr)
    for pid, theirs in serving_hubs():
        if theirs != ours:
            print(
                f"hub: warning: a hub (pid {pid}) is serving {theirs}, not this one; set"
                " HUB_DATA_DIR or HUB_DATABASE_URL as it has them to work on its database",
                file=sys.stderr,
            )
    async with database(settings) as (pool, _):
        return await action(pool)
