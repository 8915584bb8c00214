"""Retry delays shared by the background workers."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to `base`, doubling to `cap`."""
    ceiling: float = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
