"""Operators as an admin manages them: created, edited, their password reset, disabled.

A person who leaves is disabled, never deleted: their dialogs' history names them. Disabling
refuses their login, ends every session (the caller closes the sockets: `Disabled.tokens`)
and puts the dialogs they held back in the queue, in one transaction with its event.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from argon2 import PasswordHasher

from hub.admin.checks import invalid, names, refuse_unknown
from hub.domain import Operator
from hub.errors import ApiError
from storage import operators
from storage import routing as routing_store
from storage.events import NewEvent, append, set_actor

ROLES = ("operator", "supervisor", "admin")
MIN_PASSWORD = 8
_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_SKILL = re.compile(r"^[\w.-]{1,40}$")
_EXTENSION = re.compile(r"^[0-9*#]{1,16}$")
_hasher = PasswordHasher()


def check(values: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The changes asked for, checked: a 422 `invalid_field` names the first wrong one. A
    password comes back as its argon2 hash's input (`password`), hashed by the caller."""
    known = {"login", "name", "role", "skills", "max_dialogs", "extension", "password", "disabled"}
    refuse_unknown(values, known)
    out: dict[str, Any] = {}
    if creating:
        for field in ("login", "name", "password"):
            if values.get(field) is None:
                raise invalid(f"{field} is required")
        login = values["login"]
        if not isinstance(login, str) or not _LOGIN.match(login):
            raise invalid("login: letters, digits and _ . @ -, at most 64")
        out["login"] = login
    elif "login" in values:
        raise invalid("a login cannot change; disable the operator and add another")
    if "name" in values:
        name = values["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise invalid("name: 1 to 100 characters")
        out["name"] = name.strip()
    if "role" in values:
        if values["role"] not in ROLES:
            raise invalid(f"role is one of {', '.join(ROLES)}")
        out["role"] = values["role"]
    if "skills" in values:
        out["skills"] = sorted(names(values["skills"], _SKILL, "skills"))
    if "max_dialogs" in values:
        value = values["max_dialogs"]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
            raise invalid("max_dialogs: a whole number from 1 to 100")
        out["max_dialogs"] = value
    if "extension" in values:
        extension = values["extension"]
        if extension is not None and (
            not isinstance(extension, str) or not _EXTENSION.match(extension)
        ):
            raise invalid("extension: the PBX extension's digits, or null")
        out["extension"] = extension
    if "password" in values:
        password = values["password"]
        if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 200:
            raise invalid(f"password: {MIN_PASSWORD} to 200 characters")
        out["password"] = password
    if "disabled" in values:
        if not isinstance(values["disabled"], bool):
            raise invalid("disabled is true or false")
        if creating:
            raise invalid("a new operator is enabled")
        out["disabled"] = values["disabled"]
    return out


@dataclass(frozen=True, slots=True)
class Changed:
    operator: Operator
    ended_tokens: list[int]  # sessions ended by disabling: close their sockets
    released: list[int]  # dialogs put back in the queue


async def hash_password(password: str) -> str:
    """argon2 is slow on purpose: off the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)


async def create(pool: asyncpg.Pool, values: Mapping[str, Any], actor: str) -> Operator:
    fields = check(values, creating=True)
    password_hash = await hash_password(fields.pop("password"))
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        try:
            operator = await operators.create(
                conn,
                login=fields["login"],
                name=fields["name"],
                role=fields.get("role", "operator"),
                skills=fields.get("skills", []),
                max_dialogs=fields.get("max_dialogs", 5),
                extension=fields.get("extension"),
                password_hash=password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", "that login or extension is taken") from None
        await append(conn, [_event("operator.created", operator, sorted(fields))])
    return operator


async def update(
    pool: asyncpg.Pool, operator_id: int, values: Mapping[str, Any], actor: str
) -> Changed:
    fields = check(values, creating=False)
    changes: dict[str, Any] = {k: v for k, v in fields.items() if k in operators.EDITABLE}
    if "password" in fields:
        changes["password_hash"] = await hash_password(fields["password"])
    async with pool.acquire() as conn, conn.transaction():
        await set_actor(conn, actor)
        if await operators.get(conn, operator_id) is None:
            raise ApiError(404, "not_found", f"operator {operator_id} not found")
        try:
            operator = await operators.update(conn, operator_id, changes)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", "that extension is taken") from None
        assert operator is not None
        events = []
        edited = sorted(k for k in fields if k not in ("password", "disabled"))
        if edited:
            events.append(_event("operator.updated", operator, edited))
        if "password" in fields:
            # Every session signed in with the old password ends.
            events.append(_event("operator.password_reset", operator, []))
        ended: list[int] = []
        released: list[int] = []
        disabled = fields.get("disabled")
        if disabled is not None and disabled != (operator.disabled_at is not None):
            ended = await operators.set_disabled(conn, operator_id, disabled)
            if disabled:
                released = await routing_store.release_held(conn, operator_id)
            events.append(
                _event("operator.disabled" if disabled else "operator.enabled", operator, [])
            )
            operator = await operators.get(conn, operator_id) or operator
        if "password" in fields and not disabled:
            ended += await operators.end_sessions(conn, operator_id)
        await append(conn, events)
    return Changed(operator, ended, released)


def _event(kind: str, operator: Operator, fields: list[str]) -> NewEvent:
    data: dict[str, Any] = {"login": operator.login}
    if fields:
        data["fields"] = fields
    return NewEvent(kind, operator_id=operator.id, data=data)
