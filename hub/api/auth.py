"""Bearer authentication and scopes for the REST API.

A route names the scope it needs. Reading (GET) is allowed by the scope itself or its
`:read` variant, so a CRM can be given read-only access; writing needs the scope itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from hub.context import hub_of
from hub.domain import Operator
from hub.errors import ApiError
from storage import apikeys, operators
from storage.apikeys import OPERATOR_TOKEN_PREFIX, hash_key

SCOPES = ("leads", "dialogs", "unsorted", "webhooks", "reports")
# Managing operators, channels, queues and keys: held by admin operators, and by an API key
# only when it is asked for by name (never a default).
ADMIN = "admin"
ALL_SCOPES = SCOPES + tuple(f"{s}:read" for s in SCOPES) + (ADMIN, f"{ADMIN}:read")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


OPERATOR_SCOPES = frozenset({"leads", "dialogs"})


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "api_key" or "operator"
    name: str
    scopes: frozenset[str]
    operator_id: int | None = None
    role: str | None = None

    def may(self, scope: str, write: bool) -> bool:
        return scope in self.scopes or (not write and f"{scope}:read" in self.scopes)

    @property
    def sees_everything(self) -> bool:
        """API keys and supervisors see every dialog; an operator sees their own."""
        return self.kind == "api_key" or self.role in ("supervisor", "admin")

    @property
    def author(self) -> str:
        return self.name if self.kind == "operator" else f"api:{self.name}"

    @property
    def actor(self) -> str:
        """Who made a change, as the domain-event log records it."""
        return f"operator:{self.operator_id}" if self.kind == "operator" else f"api:{self.name}"


PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def validate_scopes(raw: list[str]) -> list[str]:
    unknown = [s for s in raw if s not in ALL_SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {', '.join(ALL_SCOPES)}")
    return raw


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <API key>",
            headers={"WWW-Authenticate": 'Bearer realm="hub"'},
        )
    token = token.strip()
    if token.startswith(OPERATOR_TOKEN_PREFIX):
        operator = await operators.by_token(hub_of(request).pool, hash_key(token))
        if operator is None:
            raise ApiError(
                401,
                "unauthorized",
                "the session expired or was ended; log in again",
                headers={"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'},
            )
        return operator_principal(operator)
    key = await apikeys.verify(hub_of(request).pool, token)
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "unknown or revoked API key",
            headers={"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'},
        )
    return Principal("api_key", key.name, frozenset(key.scopes))


def operator_principal(operator: Operator) -> Principal:
    if operator.role == "admin":
        scopes = frozenset((*SCOPES, ADMIN))
    elif operator.role == "supervisor":
        scopes = frozenset(SCOPES)
    else:
        scopes = OPERATOR_SCOPES
    return Principal("operator", operator.login, scopes, operator.id, operator.role)


def scoped(scope: str, *or_scopes: str) -> Callable[[Handler], Handler]:
    """Require a bearer credential holding `scope` (or `scope:read` for GET), or one of
    `or_scopes`."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = await authenticate(request)
            write = request.method not in ("GET", "HEAD")
            if not any(principal.may(s, write) for s in (scope, *or_scopes)):
                needed = scope if write else f"{scope} or {scope}:read"
                if or_scopes:
                    needed += f" (or {', '.join(or_scopes)})"
                raise ApiError(403, "forbidden", f"this credential lacks the scope {needed}")
            request[PRINCIPAL_KEY] = principal
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return wrap


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]
