"""Operators: the people answering dialogs in the console."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from hub.domain import Operator, OperatorId
from storage import events
from storage.database import Conn, connection, update_columns
from storage.events import NewEvent

# Presence is refreshed by the node holding the operator's socket; older than this, the node
# is gone and the operator counts as offline.
FRESH_S = 90
FRESH = f"p.updated_at > now() - interval '{FRESH_S} seconds'"


def _operator(row: asyncpg.Record) -> Operator:
    return Operator(
        id=OperatorId(row["id"]),
        login=row["login"],
        name=row["name"],
        role=row["role"],
        skills=tuple(row["skills"]),
        max_dialogs=row["max_dialogs"],
        extension=row["extension"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


async def create(
    conn: Conn | asyncpg.Pool,
    *,
    login: str,
    name: str,
    role: str,
    skills: Sequence[str],
    max_dialogs: int,
    extension: str | None,
    password_hash: str,
) -> Operator:
    row = await conn.fetchrow(
        """INSERT INTO operators (login, name, role, skills, max_dialogs, extension, password_hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        login,
        name,
        role,
        list(skills),
        max_dialogs,
        extension,
        password_hash,
    )
    assert row is not None
    return _operator(row)


async def get(conn: Conn | asyncpg.Pool, operator_id: int) -> Operator | None:
    row = await conn.fetchrow("SELECT * FROM operators WHERE id = $1", operator_id)
    return _operator(row) if row else None


async def by_login(conn: Conn | asyncpg.Pool, login: str) -> asyncpg.Record | None:
    """The operator who may sign in with this login (a disabled one may not)."""
    return await conn.fetchrow(
        "SELECT * FROM operators WHERE login = $1 AND disabled_at IS NULL", login
    )


async def list_all(conn: Conn | asyncpg.Pool) -> list[Operator]:
    return [_operator(r) for r in await conn.fetch("SELECT * FROM operators ORDER BY id")]


async def create_token(
    conn: Conn | asyncpg.Pool, operator_id: int, token_hash: str, ttl_seconds: int
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO operator_tokens (operator_id, token_hash, expires_at)
           VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING id, expires_at""",
        operator_id,
        token_hash,
        float(ttl_seconds),
    )
    assert row is not None
    return row


async def by_token(conn: Conn | asyncpg.Pool, token_hash: str) -> Operator | None:
    row = await conn.fetchrow(
        """SELECT o.* FROM operator_tokens t JOIN operators o ON o.id = t.operator_id
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()""",
        token_hash,
    )
    return _operator(row) if row else None


async def session_by_token(
    conn: Conn | asyncpg.Pool, token_hash: str
) -> tuple[Operator, int, float] | None:
    """The operator of a live token, the token's id and the seconds it has left."""
    row = await conn.fetchrow(
        """SELECT o.*, t.id AS token_id,
                  EXTRACT(EPOCH FROM t.expires_at - now())::float8 AS expires_in
           FROM operator_tokens t JOIN operators o ON o.id = t.operator_id
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()""",
        token_hash,
    )
    return (_operator(row), row["token_id"], row["expires_in"]) if row else None


async def revoke_token(conn: Conn | asyncpg.Pool, token_hash: str) -> int | None:
    """Revoke a token; its id, or None when it was unknown or revoked already."""
    token_id: int | None = await conn.fetchval(
        """UPDATE operator_tokens SET revoked_at = now()
           WHERE token_hash = $1 AND revoked_at IS NULL RETURNING id""",
        token_hash,
    )
    return token_id


async def ended_sessions(conn: Conn | asyncpg.Pool, token_ids: list[int]) -> list[int]:
    """Which of these tokens were revoked or have expired."""
    rows = await conn.fetch(
        """SELECT id FROM operator_tokens WHERE id = ANY($1::bigint[])
                  AND (revoked_at IS NOT NULL OR expires_at <= now())""",
        token_ids,
    )
    return [r["id"] for r in rows]


async def set_presence(db: Conn | asyncpg.Pool, operator_id: int, status: str) -> None:
    """Store an operator's presence; a change is recorded as `operator.presence_changed`."""
    async with connection(db) as conn, conn.transaction():
        previous = await conn.fetchval(
            f"""SELECT CASE WHEN {FRESH} THEN p.status ELSE 'offline' END
                FROM operator_presence p WHERE p.operator_id = $1 FOR UPDATE""",
            operator_id,
        )
        await conn.execute(
            """INSERT INTO operator_presence (operator_id, status) VALUES ($1, $2)
               ON CONFLICT (operator_id) DO UPDATE SET status = EXCLUDED.status,
                                                       updated_at = now()""",
            operator_id,
            status,
        )
        if (previous or "offline") != status:
            await _presence_changed(
                conn, operator_id, status, previous or "offline", f"operator:{operator_id}"
            )


async def touch_presence(conn: Conn | asyncpg.Pool, operator_ids: Sequence[int]) -> None:
    """Keep connected operators' presence fresh; a stale one counts as offline."""
    await conn.execute(
        "UPDATE operator_presence SET updated_at = now() WHERE operator_id = ANY($1::bigint[])",
        list(operator_ids),
    )


async def presence(conn: Conn | asyncpg.Pool, operator_id: int) -> str:
    value = await conn.fetchval(
        """SELECT CASE WHEN updated_at > now() - interval '90 seconds' THEN status
                       ELSE 'offline' END
           FROM operator_presence WHERE operator_id = $1""",
        operator_id,
    )
    return str(value or "offline")


async def mark_offline_unless_seen(
    db: Conn | asyncpg.Pool, operator_id: int, since: datetime
) -> bool:
    """Offline, unless a connection refreshed the presence after `since` (on any node);
    recorded as `operator.presence_changed` like any other change."""
    async with connection(db) as conn, conn.transaction():
        return await _go_offline(conn, operator_id, "system", since)


async def _go_offline(
    conn: Conn, operator_id: int, actor: str | None, unseen_since: datetime | None = None
) -> bool:
    """Set an operator offline (unless refreshed after `unseen_since`) and record the
    change in the domain-event log, in the caller's transaction; False if already
    offline. The reports' online time ends here."""
    previous = await conn.fetchval(
        """WITH old AS (SELECT p.operator_id, p.status
                           FROM operator_presence p
                          WHERE p.operator_id = $1 AND p.status <> 'offline'
                            AND ($2::timestamptz IS NULL OR p.updated_at <= $2)
                            FOR UPDATE)
            UPDATE operator_presence p SET status = 'offline', updated_at = now()
              FROM old WHERE p.operator_id = old.operator_id
            RETURNING old.status""",
        operator_id,
        unseen_since,
    )
    if previous is None:
        return False
    await _presence_changed(conn, operator_id, "offline", previous, actor)
    return True


async def _presence_changed(
    conn: Conn, operator_id: int, status: str, previous: str, actor: str | None
) -> None:
    await events.append(
        conn,
        [
            NewEvent(
                "operator.presence_changed",
                operator_id=operator_id,
                data={"status": status, "previous_status": previous},
                actor=actor,
            )
        ],
    )


async def roster(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    """Every operator at work (not disabled) with their presence and how many dialogs they
    hold."""
    return await conn.fetch(
        """SELECT o.id, o.login, o.name, o.role, o.max_dialogs,
                  CASE WHEN p.updated_at > now() - interval '90 seconds' THEN p.status
                       ELSE 'offline' END AS presence,
                  (SELECT count(*) FROM dialogs d WHERE d.operator_id = o.id
                     AND d.status = 'assigned') AS load
           FROM operators o LEFT JOIN operator_presence p ON p.operator_id = o.id
           WHERE o.disabled_at IS NULL
           ORDER BY o.name, o.id"""
    )


# What an admin may change of an operator, and the column each is kept in.
EDITABLE = ("name", "role", "skills", "max_dialogs", "extension")


async def update(conn: Conn, operator_id: int, changes: dict[str, Any]) -> Operator | None:
    """Change the named fields (of `EDITABLE`, and `password_hash`); the operator after."""
    row = await update_columns(
        conn, "operators", operator_id, changes, (*EDITABLE, "password_hash")
    )
    return _operator(row) if row else None


async def set_disabled(conn: Conn, operator_id: int, disabled: bool) -> list[int]:
    """Disable (or enable again) an operator; disabling ends their sessions: the ids of the
    tokens it revoked, so their sockets can be closed."""
    await conn.execute(
        "UPDATE operators SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, now()) END"
        " WHERE id = $1",
        operator_id,
        disabled,
    )
    if not disabled:
        return []
    await _go_offline(conn, operator_id, None)  # by whoever disabled them
    return await end_sessions(conn, operator_id)


async def end_sessions(conn: Conn, operator_id: int) -> list[int]:
    """Revoke every live token of the operator; their ids."""
    rows = await conn.fetch(
        """UPDATE operator_tokens SET revoked_at = now()
           WHERE operator_id = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING id""",
        operator_id,
    )
    return [r["id"] for r in rows]
