"""One error model: a code, one table of HTTP statuses, the same code in websocket frames."""

from __future__ import annotations

from hub.errors import HTTP_STATUS, ApiError, HubError, code_for_status
from hub.identity import InvalidEmail, InvalidPhone
from hub.outbound import DialogNotFound
from hub.unsorted_decisions import DecisionError
from routing.router import RoutingError
from storage.merges import MergeError


def test_domain_errors_take_their_status_from_the_table() -> None:
    cases: list[tuple[HubError, int]] = [
        (RoutingError("offer_gone", "gone"), 409),
        (RoutingError("not_yours", "no"), 403),
        (MergeError("same_lead", "no"), 422),
        (MergeError("already_merged", "no"), 409),
        (DecisionError("already_decided", "no"), 409),
        (DialogNotFound(7), 404),
        (InvalidPhone("not a phone"), 422),
        (InvalidEmail("not an email"), 422),
        (HubError("something_new", "unlisted codes are bad requests"), 400),
    ]
    for error, status in cases:
        assert error.status == status, error.code
        assert error.body() == {"error": {"code": error.code, "message": error.message}}
        assert error.frame("r1") == {
            "type": "error",
            "code": error.code,
            "message": error.message,
            "ref": "r1",
        }


def test_http_only_errors_keep_their_status_and_aiohttp_statuses_get_codes() -> None:
    assert ApiError(401, "bad_secret", "wrong secret").status == 401
    assert [code_for_status(s) for s in (400, 404, 405, 413, 415, 429, 418)] == [
        "bad_request",
        "not_found",
        "method_not_allowed",
        "body_too_large",
        "unsupported_media_type",
        "rate_limited",
        "http_error",
    ]
    assert all(400 <= status < 600 for status in HTTP_STATUS.values())
