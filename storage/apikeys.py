"""API keys for CRMs and scripts.

A key is 32 random bytes shown once; only its SHA-256 is stored. A fast hash is right
here (unlike for passwords): the key has full entropy, so there is nothing to brute-force,
and every API request must verify one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from storage.database import Conn

KEY_PREFIX = "hub_"
OPERATOR_TOKEN_PREFIX = "op_"  # noqa: S105 - operator session tokens, hashed the same way


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    scopes: tuple[str, ...]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create(conn: Conn | asyncpg.Pool, name: str, scopes: Sequence[str]) -> tuple[ApiKey, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await conn.fetchrow(
        "INSERT INTO api_keys (name, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        name,
        key[:10],
        hash_key(key),
        list(scopes),
    )
    assert row is not None
    return ApiKey(row["id"], name, tuple(scopes)), key


async def verify(conn: Conn | asyncpg.Pool, key: str) -> ApiKey | None:
    # last_used_at is written at most once a minute per key, not on every request.
    row = await conn.fetchrow(
        """WITH k AS (SELECT id, name, scopes, last_used_at FROM api_keys
                      WHERE key_hash = $1 AND revoked_at IS NULL),
                u AS (UPDATE api_keys SET last_used_at = now() WHERE id IN (
                      SELECT id FROM k WHERE last_used_at IS NULL
                      OR last_used_at < now() - interval '1 minute'))
           SELECT id, name, scopes FROM k""",
        hash_key(key),
    )
    return ApiKey(row["id"], row["name"], tuple(row["scopes"])) if row else None


async def list_all(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    """Every key, revoked ones too, newest first: never its hash."""
    return await conn.fetch(
        """SELECT id, name, prefix, scopes, created_at, last_used_at, revoked_at
           FROM api_keys ORDER BY id DESC"""
    )


async def get(conn: Conn | asyncpg.Pool, key_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, name, prefix, scopes, created_at, last_used_at, revoked_at
           FROM api_keys WHERE id = $1""",
        key_id,
    )


async def revoke(conn: Conn | asyncpg.Pool, key_id: int) -> bool:
    """Revoke a key: refused from its next request on. False when unknown or revoked."""
    value = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id",
        key_id,
    )
    return value is not None


async def update(
    conn: Conn | asyncpg.Pool, key_id: int, name: str | None, scopes: Sequence[str] | None
) -> bool:
    """Rename a live key or change its scopes (a revoked key stays as it was revoked)."""
    value = await conn.fetchval(
        """UPDATE api_keys SET name = COALESCE($2, name), scopes = COALESCE($3, scopes)
           WHERE id = $1 AND revoked_at IS NULL RETURNING id""",
        key_id,
        name,
        list(scopes) if scopes is not None else None,
    )
    return value is not None
