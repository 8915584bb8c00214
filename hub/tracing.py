"""One `trace_id` per inbound event, and the log lines that carry it.

The id is born where the event enters (a provider's or a site's request: its
`X-Request-Id` or W3C `traceparent` when it brings one, else a new one) and rides a context
variable, so everything the request's task awaits or starts (the pipeline, the router's
task for a new dialog) logs it. Where work crosses to another task or node it travels
with the work: on the bus with each notice, in the database with each domain event (the
`hub.trace_id` setting of the transaction that wrote it), and so on to the webhook
dispatcher. `HUB_LOG_FORMAT=json` writes one JSON object a line with it.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar, Token
from datetime import UTC, datetime

TRACE_ID: ContextVar[str | None] = ContextVar("trace_id", default=None)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_trace_id() -> str:
    return uuid.uuid4().hex


def trace_from_headers(traceparent: str | None, request_id: str | None) -> str:
    """The caller's trace when it sends a well-formed one, else a new id: a malformed or
    oversized header never reaches a log line."""
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match and match.group(1) != "0" * 32:
            return match.group(1)
    if request_id and _GIVEN_ID.match(request_id.strip()):
        return request_id.strip()
    return new_trace_id()


def current() -> str | None:
    return TRACE_ID.get()


def begin(trace_id: str | None) -> Token[str | None]:
    """Make `trace_id` the current one (None: none); undo with `end`."""
    return TRACE_ID.set(trace_id)


def end(token: Token[str | None]) -> None:
    TRACE_ID.reset(token)


class TraceField(logging.Filter):
    """Puts the current trace id on every record (`record.trace_id`), for any format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            record.trace_id = TRACE_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, node, trace_id,
    and the exception's text when there is one (already cleaned of secrets by the
    handler's filter, which runs before formatting)."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": self.node,
            "trace_id": getattr(record, "trace_id", None),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def configure(handlers: list[logging.Handler], log_format: str, node: str) -> None:
    """Every handler gets the trace field; with `json`, the JSON formatter too."""
    for handler in handlers:
        if not any(isinstance(f, TraceField) for f in handler.filters):
            handler.addFilter(TraceField())
        if log_format == "json":
            handler.setFormatter(JsonFormatter(node))
