"""Property-based testing of the whole HTTP API from the hub's own `openapi.json`.

`hub serve` runs as a real process with a form, Telegram, VK and Viber channel (the two
that need a provider at start talk to the fakes), some leads and dialogs, an API key and
two operators. Schemathesis generates requests (valid and invalid ones) for every documented operation, sent once
with the API key and once with an operator's token: no answer may be a 5xx, every answer
must match its documented schema and content type, and none may contain a configured
secret. Then every line the hub logged during the run is searched for the same secrets.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.core.result import Ok

from connectors import registry
from hub.api.openapi import build_spec
from storage import apikeys, channels
from tests.conftest import OPERATOR_PASSWORD, VK_GROUP, add_operator
from tests.fakes.telegram import FakeTelegram, text_update
from tests.fakes.viber import FakeViber
from tests.fixtures.processes import HubProcess
from tests.fixtures.waiting import eventually

# Per operation and credential; CI runs every operation (84) with both credentials, up to
# 2,520 generated requests (the suite's slowest test: 25 each took 100 s of a 16-minute
# suite, 15 take 60). Set HUB_SCHEMATHESIS_EXAMPLES higher for a deeper run.
EXAMPLES = int(os.environ.get("HUB_SCHEMATHESIS_EXAMPLES", "15"))
VK_TOKEN = "vk1.a.schemathesis-community-token-0123456789"
VK_SECRET = "vkCallbackSecret0123456789"
TG_SECRET = "tg-webhook-secret-0123456789"


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, str, FakeViber, str]]:
    telegram, viber = FakeTelegram(token="7777777:AAschemathesisTELEGRAMtoken0123456"), FakeViber()
    tg_server, viber_server = TestServer(telegram.app), TestServer(viber.app)
    await tg_server.start_server()
    await viber_server.start_server()
    yield (
        telegram,
        str(tg_server.make_url("")).rstrip("/"),
        viber,
        str(viber_server.make_url("")).rstrip("/"),
    )
    await tg_server.close()
    await viber_server.close()


def _check_operations(
    base_url: str, credentials: dict[str, dict[str, str]], secrets: list[str]
) -> list[str]:
    """Every operation, every credential; the failures found, as text."""
    schema = schemathesis.openapi.from_dict(build_spec(registry.descriptors().values()))
    failures: list[str] = []
    session = requests.Session()
    results = list(schema.get_all_operations())
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) == len(results), "the hub's own openapi.json must load whole"
    sent: list[str] = []
    for operation in operations:
        for who, headers in credentials.items():
            _checker(operation, who, headers, base_url, session, secrets, failures, sent)()
    # Every operation was exercised with every credential.
    assert {s for s in sent} >= {f"{o.method.upper()} {o.path}" for o in operations}, "not run"
    assert len(sent) >= len(operations) * len(credentials)
    return failures


def _checker(
    operation: Any,
    who: str,
    headers: dict[str, str],
    base_url: str,
    session: requests.Session,
    secrets: list[str],
    failures: list[str],
    sent: list[str],
) -> Any:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy()
        | operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
    )
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=20)
        sent.append(f"{case.method.upper()} {operation.path}")
        label = f"{case.method} {case.formatted_path} as {who}"
        try:
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
            failures.append(f"{label}: {str(exc)[:600]}")
        leaked = [s[:6] + "…" for s in secrets if s in response.text]
        if leaked:
            failures.append(f"{label}: answer contains secrets {leaked}")

    return check


async def _failed_media(base_url: str, telegram: FakeTelegram, auth: dict[str, str]) -> str:
    """Sends a photo whose file download fails and returns the API's answers about it."""
    telegram.add_file("AgAC-gone", "photos/file_1.jpg", b"jpeg")
    telegram.file_status = 502
    update = text_update(7001, "")
    del update["message"]["text"]
    update["message"]["photo"] = [
        {"file_id": "AgAC-gone", "file_unique_id": "AQADg", "width": 9, "height": 9}
    ]
    reply = await asyncio.to_thread(
        requests.post,
        f"{base_url}/connectors/telegram/tg",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        timeout=10,
    )
    assert reply.status_code == 200
    lead_id = await asyncio.to_thread(
        lambda: requests.get(
            f"{base_url}/api/v1/leads",
            params={"identity": "telegram:5550001"},
            headers=auth,
            timeout=10,
        ).json()["items"][0]["id"]
    )

    def noted() -> str:
        """The lead's interactions once the failed download's note is in them, else ""."""
        text = requests.get(
            f"{base_url}/api/v1/leads/{lead_id}/interactions", headers=auth, timeout=10
        ).text
        return text if "provider_" in text else ""

    answer: str = await eventually(lambda: asyncio.to_thread(noted))
    assert "provider_unavailable" in answer
    return answer


async def test_every_operation_with_generated_input(
    db_dsn: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
    fakes: tuple[FakeTelegram, str, FakeViber, str],
) -> None:
    telegram, tg_base, viber, viber_base = fakes
    async with pool.acquire() as conn:
        await channels.create(conn, "form", "site", {"rate_limit": "0"})
        await channels.create(
            conn,
            "telegram",
            "tg",
            {"token": telegram.token, "secret_token": TG_SECRET, "api_base": tg_base},
        )
        await channels.create(
            conn,
            "vk",
            "club",
            {
                "token": VK_TOKEN,
                "group_id": str(VK_GROUP),
                "confirmation": "c0nf1rm",
                "secret": VK_SECRET,
                "api_base": "http://127.0.0.1:9",
            },
        )
        await channels.create(
            conn, "viber", "vb", {"auth_token": viber.token, "api_base": viber_base}
        )
    await add_operator(pool, "anna", online=True)
    await add_operator(pool, "sveta", role="supervisor")
    _, api_key = await apikeys.create(
        pool, "crm", ["leads", "dialogs", "unsorted", "webhooks", "reports", "admin"]
    )
    hub = HubProcess(
        {
            "HUB_DATABASE_URL": db_dsn,
            "HUB_DATA_DIR": str(tmp_path / "data"),
            "HUB_LOG_LEVEL": "DEBUG",
        },
        tmp_path,
        tmp_path / "hub.log",
    )
    hub.start()
    try:
        for n in range(3):
            payload = {"name": f"Lead {n}", "phone": f"+7912000000{n}", "message": "hello"}
            await asyncio.to_thread(
                requests.post, f"{hub.url}/forms/site", json=payload, timeout=10
            )
        login = await asyncio.to_thread(
            requests.post,
            f"{hub.url}/api/v1/auth/login",
            json={"login": "anna", "password": OPERATOR_PASSWORD},
            timeout=10,
        )
        operator_token = login.json()["token"]
        secrets = [
            telegram.token,
            telegram.token.split(":")[1],
            TG_SECRET,
            VK_TOKEN,
            VK_SECRET,
            viber.token,
            api_key,
            operator_token,
            OPERATOR_PASSWORD,
        ]
        credentials = {
            "api key": {"Authorization": f"Bearer {api_key}"},
            "operator": {"Authorization": f"Bearer {operator_token}"},
        }
        # A photo whose download fails: aiohttp's error quotes the file URL with the token.
        answers = await _failed_media(hub.url, telegram, credentials["api key"])
        failures = [
            f"an answer about a failed download contains {s[:6]}…" for s in secrets if s in answers
        ]
        failures += await asyncio.to_thread(_check_operations, hub.url, credentials, secrets)
    finally:
        hub.stop()
    assert not failures, "\n".join(failures[:20])
    log = (tmp_path / "hub.log").read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:3000]
    leaked = [s[:6] + "…" for s in secrets if s in log]
    assert not leaked, f"the hub's log contains secrets {leaked}"
