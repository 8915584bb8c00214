"""Operator sessions: login with argon2-checked passwords, expiring revocable tokens."""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.api.auth import authenticate, principal_of, scoped
from hub.api.shapes import operator_json
from hub.context import hub_of
from hub.domain import Notice
from hub.errors import ApiError, unprocessable
from hub.httputil import client_address, read_json_object
from hub.ratelimit import retry_after_header
from storage import operators
from storage.apikeys import OPERATOR_TOKEN_PREFIX, hash_key

_hasher = PasswordHasher()
ATTEMPTS_A_MINUTE = 10
# Verified when the login is unknown, so a wrong login costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def login(request: web.Request) -> web.Response:
    hub = hub_of(request)
    body = await read_json_object(request, 16 * 1024)
    login_name, password = body.get("login"), body.get("password")
    if not isinstance(login_name, str) or not isinstance(password, str) or not login_name:
        raise unprocessable("invalid_field", 'send {"login": ..., "password": ...}')
    client = client_address(request, hub.settings.trust_forwarded)
    wait = max(
        hub.login_limiter.check("login-ip", client, ATTEMPTS_A_MINUTE * 3),
        hub.login_limiter.check("login", login_name.lower(), ATTEMPTS_A_MINUTE),
    )
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "too many login attempts; wait a little",
            headers={"Retry-After": retry_after_header(wait)},
        )
    row = await operators.by_login(hub.pool, login_name)
    ok = await asyncio.to_thread(_verify, row["password_hash"] if row else _DUMMY_HASH, password)
    if row is None or not ok:
        raise ApiError(401, "invalid_credentials", "wrong login or password")
    token = OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = await operators.create_token(
        hub.pool, row["id"], hash_key(token), hub.settings.token_ttl_s
    )
    operator = await operators.get(hub.pool, row["id"])
    assert operator is not None
    return web.json_response(
        {
            "token": token,
            "expires_at": created["expires_at"].isoformat(),
            "operator": operator_json(operator),
        }
    )


@scoped("dialogs")
async def logout(request: web.Request) -> web.Response:
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if token.startswith(OPERATOR_TOKEN_PREFIX):
        hub = hub_of(request)
        token_id = await operators.revoke_token(hub.pool, hash_key(token))
        if token_id is not None:
            # Sockets opened with this token close on whichever node holds them.
            await hub.bus.publish(Notice("session_ended", None, data={"token_id": token_id}))
    return web.json_response({"status": "logged_out"})


@scoped("dialogs")
async def me(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if principal.operator_id is None:
        raise ApiError(403, "forbidden", "this is an API key, not an operator session")
    operator = await operators.get(hub_of(request).pool, principal.operator_id)
    assert operator is not None
    return web.json_response(operator_json(operator))


async def list_operators(request: web.Request) -> web.Response:
    """Operators with their presence: transfer targets for operators, load for supervisors;
    for admins (`?include_disabled=true`) every operator with everything an admin edits."""
    principal = await authenticate(request)
    pool = hub_of(request).pool
    if principal.may("admin", write=False):
        everyone = request.query.get("include_disabled") == "true"
        live = {r["id"]: r for r in await operators.roster(pool)}
        items = []
        for operator in await operators.list_all(pool):
            if operator.disabled_at is not None and not everyone:
                continue
            row = live.get(operator.id)
            presence = (
                {"presence": row["presence"], "load": row["load"]}
                if row
                else {
                    "presence": "offline",
                    "load": 0,
                }
            )
            items.append({**operator_json(operator), **presence})
        return web.json_response({"items": items})
    if not principal.may("dialogs", write=False):
        raise ApiError(403, "forbidden", "this credential lacks the scope dialogs or admin")
    rows = await operators.roster(pool)
    return web.json_response({"items": [dict(r) for r in rows]})
