"""Operators: the people answering dialogs in the console."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from hub.domain import Operator, OperatorId
from storage.database import Conn


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
