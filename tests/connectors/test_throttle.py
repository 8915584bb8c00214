"""Send pacing: per chat and per bot, reserved in arrival order."""

from __future__ import annotations

import asyncio

import pytest

from connectors.throttle import Throttle


async def test_slots_are_spaced_per_key_and_overall(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    now = [1000.0]
    waits: list[float] = []
    monkeypatch.setattr(loop, "time", lambda: now[0])

    async def fake_sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    throttle = Throttle(per_key=1.0, overall=0.1)
    for key in ["a", "a", "b", "a", "c"]:
        await throttle.wait(key)
    # a at 0; a again 1 s later; b after the overall gap of the second a; a at 2 s; c 0.1 s later
    assert waits == [1.0, 1.1, 2.0, 2.1]
