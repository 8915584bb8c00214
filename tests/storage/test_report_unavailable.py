"""Background loops retrying while the database is away say so once a minute, in one line."""

from __future__ import annotations

import logging

import pytest

from storage import database


def test_a_retrying_loop_warns_once_a_minute_without_traceback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("storage.database.time.monotonic", lambda: now[0])
    monkeypatch.setattr(database, "_reported", {})
    log = logging.getLogger("test.outage")
    caplog.set_level(logging.DEBUG)
    for _ in range(10):  # a loop retrying every 5 s for 50 s
        database.report_unavailable(log, "media fetcher", ConnectionRefusedError())
        now[0] += 5
    database.report_unavailable(log, "router", OSError())
    now[0] += 60
    database.report_unavailable(log, "media fetcher", ConnectionRefusedError())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "media fetcher: database unavailable (ConnectionRefusedError); retrying",
        "router: database unavailable (OSError); retrying",
        "media fetcher: database unavailable (ConnectionRefusedError); retrying",
    ]
    assert all(r.exc_info is None for r in warnings)
