"""The one error type that handlers raise and the middleware turns into JSON.

Every 4xx the hub sends has the contract's shape
`{"error": {"code": "...", "message": "..."}}`, whoever raised it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = dict(details or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def not_found(message: str = "not found", code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)


def unprocessable(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(422, code, message, details=details)


def error_response(error: ApiError) -> web.Response:
    """The JSON response for an error, for handlers that must add headers (CORS) to it."""
    return web.json_response(error.body(), status=error.status, headers=error.headers)
