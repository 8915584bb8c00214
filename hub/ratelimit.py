"""Per-client token buckets for public endpoints such as site forms.

Kept in the node's memory: with several nodes behind a balancer each enforces the limit
on its own share, which bounds abuse without a round trip to the database per request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._max_keys = max_keys

    def check(self, scope: str, client: str, per_minute: int) -> float:
        """Take one token; return 0 when allowed, else the seconds to wait."""
        if per_minute <= 0:
            return 0.0
        now = time.monotonic()
        rate = per_minute / 60.0
        key = (scope, client)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._evict(now)
            bucket = self._buckets[key] = _Bucket(float(per_minute), now)
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def _evict(self, now: float) -> None:
        # Buckets idle long enough to be full again carry no state worth keeping.
        stale = [k for k, b in self._buckets.items() if now - b.updated > 120]
        for k in stale:
            del self._buckets[k]
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
