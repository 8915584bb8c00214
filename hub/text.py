"""Text PostgreSQL cannot store: a NUL character (`text` and `jsonb` refuse it) and lone
UTF-16 surrogates (JSON's `"\\ud800"` decodes to one; it has no UTF-8 form).

HTTP clients of the API and forms are told (`unusable_in` → a 400); what a provider sent
behind a valid signature is kept, cleaned (`scrub`), since a customer's message must not
be lost over one bad character.

A leaf module: connectors and the pipeline both use it.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"


def usable(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unusable_in(value: Any) -> bool:
    """True when any string in `value` (nested dicts, lists and tuples, keys included) is
    not `usable`. Iterative: JSON nested to the parser's limit cannot exhaust the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not usable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


# In a Python string a valid surrogate pair is already one code point: any surrogate left
# is a lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_text(text: str) -> str:
    if usable(text):
        return text
    return _SURROGATE.sub(REPLACEMENT, text.replace("\x00", ""))


def scrub(value: Any) -> Any:
    """`value` with every string made usable (NULs dropped, lone surrogates replaced by
    U+FFFD); returned as is when nothing needed cleaning."""
    if not unusable_in(value):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    return value
