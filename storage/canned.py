"""Canned responses in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.database import Conn


@dataclass(frozen=True, slots=True)
class Canned:
    id: int
    language: str
    title: str
    text: str
    updated_at: datetime


class DuplicateTitle(ValueError):
    """A language has one response of each title."""


def _canned(r: asyncpg.Record) -> Canned:
    return Canned(r["id"], r["language"], r["title"], r["text"], r["updated_at"])


async def list_all(conn: Conn | asyncpg.Pool, language: str | None = None) -> list[Canned]:
    rows = await conn.fetch(
        """SELECT * FROM canned_responses WHERE $1::text IS NULL OR language = $1
           ORDER BY language, id""",
        language,
    )
    return [_canned(r) for r in rows]


async def get(conn: Conn | asyncpg.Pool, canned_id: int) -> Canned | None:
    row = await conn.fetchrow("SELECT * FROM canned_responses WHERE id = $1", canned_id)
    return _canned(row) if row else None


async def create(conn: Conn | asyncpg.Pool, language: str, title: str, text: str) -> Canned:
    try:
        row = await conn.fetchrow(
            "INSERT INTO canned_responses (language, title, text) VALUES ($1, $2, $3) RETURNING *",
            language,
            title,
            text,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateTitle(f"{language} already has a response titled {title!r}") from None
    assert row is not None
    return _canned(row)


async def update(
    conn: Conn | asyncpg.Pool,
    canned_id: int,
    *,
    language: str | None = None,
    title: str | None = None,
    text: str | None = None,
) -> Canned | None:
    """Change what is given; None when there is no such response."""
    try:
        row = await conn.fetchrow(
            """UPDATE canned_responses SET language = COALESCE($2, language),
                      title = COALESCE($3, title), text = COALESCE($4, text), updated_at = now()
               WHERE id = $1 RETURNING *""",
            canned_id,
            language,
            title,
            text,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateTitle(f"that language already has a response titled {title!r}") from None
    return _canned(row) if row else None


async def remove(conn: Conn | asyncpg.Pool, canned_id: int) -> bool:
    gone = await conn.fetchval("DELETE FROM canned_responses WHERE id = $1 RETURNING id", canned_id)
    return gone is not None
