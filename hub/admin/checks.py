"""The checks every admin form shares: a 422 `invalid_field` naming what is wrong, fields
nobody knows refused (a typo must not pass as "nothing changed"), lists of names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from hub.errors import ApiError


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_field", message)


def refuse_unknown(values: Mapping[str, Any], known: Iterable[str], hint: str = "") -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise invalid(f"unknown fields {unknown}{hint or f'; known: {sorted(known)}'}")


def names(value: Any, pattern: re.Pattern[str], field: str) -> list[str]:
    """A list of names each matching `pattern`, once each, in the order given."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and pattern.match(v) for v in value
    ):
        raise invalid(f"{field}: a list of names (letters, digits, _ . -)")
    return list(dict.fromkeys(value))
