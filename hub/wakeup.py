"""The sleep of the hub's background workers: until woken, or for at most a while."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_until_woken(event: asyncio.Event, at_most: float) -> bool:
    """Wait for `event` or `at_most` seconds; True when woken.

    The event is not cleared here: clearing after the wait would lose a wake-up that came
    while the worker was busy, so callers clear it before their work instead.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(at_most):
            await event.wait()
            return True
    return False
