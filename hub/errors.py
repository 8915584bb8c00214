"""The hub's one error model: a domain error with a stable code, and one table that says
what each code is over HTTP; over the operator websocket every error is an `error` frame
carrying the same code.

Every 4xx the hub sends has the contract's shape `{"error": {"code", "message"}}`, whoever
raised it: a repository (a merge refused), the router (an offer gone), the API (a missing
field). A client branches on the code; the message is for people.

This module imports nothing of the project, so connectors, routing, storage and webhooks
can all raise these errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

# The HTTP status of each code; a code not listed is a 400. Websocket `error` frames carry
# the code itself.
HTTP_STATUS: dict[str, int] = {
    "bad_request": 400,
    "bad_query": 400,
    "malformed_json": 400,
    "malformed_frame": 400,
    "unknown_type": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_yours": 403,
    "not_found": 404,
    "unknown_channel": 404,
    "no_operator": 404,
    "no_queue": 404,
    "method_not_allowed": 405,
    "offer_gone": 409,
    "not_stored": 409,
    "at_capacity": 409,
    "operator_full": 409,
    "operator_unavailable": 409,
    "not_open": 409,
    "cannot_send_text": 409,
    "no_conversation": 409,
    "already_decided": 409,
    "already_merged": 409,
    "not_merged": 409,
    "lead_merged": 409,
    "gone": 410,
    "body_too_large": 413,
    "file_too_large": 413,
    "too_many_files": 413,
    "unsupported_media_type": 415,
    "invalid_text": 400,
    "invalid_field": 422,
    "invalid_contact": 422,
    "invalid_phone": 422,
    "invalid_email": 422,
    "empty_message": 422,
    "text_too_long": 422,
    "same_lead": 422,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}


def code_for_status(status: int) -> str:
    """The code of an error aiohttp raised itself (a 405, a 413): the table's first code
    with that status."""
    return next((code for code, value in HTTP_STATUS.items() if value == status), "http_error")


class HubError(Exception):
    """Base of every error reported to a client: a stable `code`, a message for people,
    optional `details` and HTTP headers (`Retry-After`, CORS)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def frame(self, ref: Any = None) -> dict[str, Any]:
        """The websocket `error` frame for this error."""
        frame: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if ref is not None:
            frame["ref"] = ref
        return frame


class ApiError(HubError):
    """An error of the HTTP layer whose status is not the code's usual one (a provider's
    signature refused with 401 or 403, a 409 for a channel not set up yet)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code, message, details=details, headers=headers)
        self._status = status

    @property
    def status(self) -> int:
        return self._status


def not_found(message: str = "not found", code: str = "not_found") -> HubError:
    return HubError(code, message)


def unprocessable(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(422, code, message, details=details)


def error_response(error: HubError) -> web.Response:
    """The JSON response for an error, for handlers that must add headers (CORS) to it."""
    return web.json_response(error.body(), status=error.status, headers=error.headers)
