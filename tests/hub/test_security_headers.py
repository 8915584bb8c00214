"""Every console path carries the console's security headers; a customer's file is
served sandboxed; every answer refuses sniffing and framing."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


@pytest.mark.parametrize(
    "path", ["/", "/console/index.html", "/console/app.js", "/console/style.css"]
)
async def test_every_console_path_has_the_security_headers(client: Client, path: str) -> None:
    reply = await client.get(path)
    assert reply.status == 200
    policy = reply.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "no-referrer"


async def test_api_answers_and_errors_refuse_sniffing_and_framing(client: Client) -> None:
    for path in ("/healthz", "/api/v1/leads", "/no/such/page"):
        reply = await client.get(path)
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["X-Frame-Options"] == "DENY"
