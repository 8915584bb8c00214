"""Bearer authentication and scopes for the REST API.

A route names the scope it needs. Reading (GET) is allowed by the scope itself or its
`:read` variant, so a CRM can be given read-only access; writing needs the scope itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from hub.context import hub_of
from hub.errors import ApiError
from storage import apikeys

SCOPES = ("leads", "dialogs", "unsorted", "webhooks")
ALL_SCOPES = SCOPES + tuple(f"{s}:read" for s in SCOPES)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str
    name: str
    scopes: frozenset[str]

    def may(self, scope: str, write: bool) -> bool:
        return scope in self.scopes or (not write and f"{scope}:read" in self.scopes)


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
    key = await apikeys.verify(hub_of(request).pool, token.strip())
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "unknown or revoked API key",
            headers={"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'},
        )
    return Principal("api_key", key.name, frozenset(key.scopes))


def scoped(scope: str) -> Callable[[Handler], Handler]:
    """Require a bearer credential holding `scope` (or `scope:read` for GET)."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = await authenticate(request)
            write = request.method not in ("GET", "HEAD")
            if not principal.may(scope, write):
                needed = scope if write else f"{scope} or {scope}:read"
                raise ApiError(403, "forbidden", f"this credential lacks the scope {needed}")
            request[PRINCIPAL_KEY] = principal
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return wrap


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]
