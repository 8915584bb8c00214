"""Provider events that passed the signature check but cannot be used.

A provider retries anything but a 2xx, for hours or days, so an event the hub will never
be able to use (a field of an unexpected type, a shape newer than the connector) is
acknowledged with the provider's usual answer and logged as a warning instead; nothing of
it is stored. Errors of the hub itself (the database, a bug elsewhere) are not caught here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from hub.ports import UnusableMessage

log = logging.getLogger(__name__)

# What reading an event of an unexpected shape raises: a str where a dict was expected
# (AttributeError, TypeError), int("abc") (ValueError), a missing key, a number too large.
SHAPE_ERRORS: tuple[type[Exception], ...] = (
    UnusableMessage,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
)


@contextmanager
def acknowledged_if_unusable(kind: str, channel: str, event: object) -> Iterator[None]:
    try:
        yield
    except SHAPE_ERRORS as exc:
        log.warning(
            "%s channel %s: event %s has an unexpected shape and was acknowledged unused (%s: %s)",
            kind,
            channel,
            str(event)[:80],
            type(exc).__name__,
            str(exc)[:200],
        )
