"""The `hub` command line, run as the console script a user would run."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from argon2 import PasswordHasher

from storage import apikeys
from tests.conftest import one_row


async def hub(dsn: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    env = {**os.environ, "HUB_DATABASE_URL": dsn}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_channel_add_and_list(db_dsn: str, pool: asyncpg.Pool) -> None:
    code, out, _ = await hub(
        db_dsn,
        "channel",
        "add",
        "form",
        "site",
        "--set",
        "on_unknown=stage",
        "--set",
        "rate_limit=10",
    )
    assert (code, out.strip()) == (0, "/forms/site")
    assert await pool.fetchval("SELECT settings FROM channels WHERE name = 'site'") == {
        "on_unknown": "stage",
        "rate_limit": "10",
    }
    code, out, _ = await hub(db_dsn, "channel", "list")
    assert out.strip().split("\t") == ["form", "site", "enabled", "/forms/site", "listening"]
    for args, message in [
        (("channel", "add", "form", "site"), "exists"),
        (("channel", "add", "form", "other", "--set", "colour=red"), "unknown form setting"),
        (("channel", "add", "form", "other", "--set", "on_unknown=maybe"), "on_unknown"),
        (("channel", "add", "form", "bad name!"), "channel names"),
        (("channel", "add", "pbx", "phone"), "need --set provider"),
        (
            ("channel", "add", "pbx", "phone", "--set", "provider=zadarma"),
            "need --set api_key=... --set secret=",
        ),
        (
            (
                "channel",
                "add",
                "pbx",
                "p",
                "--set",
                "provider=generic",
                "--set",
                "secret=t",
                "--set",
                "timezone=Mars/Olympus",
            ),
            "unknown time zone",
        ),
        (("channel", "add", "telegram", "bot"), "need --set token"),
        (("channel", "add", "telegram", "bot", "--set", "token=nope"), "token must look like"),
        (
            ("channel", "add", "vk", "club", "--set", "token=t", "--set", "group_id=1"),
            "confirmation",
        ),
        (
            ("channel", "add", "viber", "v", "--set", "auth_token=x", "--set", "mode=sometimes"),
            "unknown viber setting",
        ),
    ]:
        code, _, err = await hub(db_dsn, *args)
        assert code == 2 and message in err, (args, err)
    assert await pool.fetchval("SELECT count(*) FROM channels") == 1


async def test_apikey_is_printed_once_and_works(db_dsn: str, pool: asyncpg.Pool) -> None:
    code, out, err = await hub(db_dsn, "apikey", "create", "amo", "--scopes", "leads:read,dialogs")
    assert code == 0 and "shown once" in err
    key = out.strip()
    verified = await apikeys.verify(pool, key)
    assert verified is not None and verified.scopes == ("leads:read", "dialogs")
    assert key not in str(await pool.fetch("SELECT * FROM api_keys"))
    code, _, err = await hub(db_dsn, "apikey", "create", "x", "--scopes", "everything")
    assert code == 2 and "unknown scopes" in err


async def test_operator_add_hashes_the_password(db_dsn: str, pool: asyncpg.Pool) -> None:
    code, out, _ = await hub(
        db_dsn,
        "operator",
        "add",
        "anna",
        "--name",
        "Anna K",
        "--role",
        "supervisor",
        "--skills",
        "sales,en",
        "--max-dialogs",
        "3",
        "--extension",
        "101",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert code == 0 and "anna" in out
    row = await one_row(pool, "SELECT * FROM operators WHERE login = 'anna'")
    assert (row["name"], row["role"], row["skills"], row["max_dialogs"], row["extension"]) == (
        "Anna K",
        "supervisor",
        ["sales", "en"],
        3,
        "101",
    )
    assert "correct horse" not in row["password_hash"]
    assert PasswordHasher().verify(row["password_hash"], "correct horse battery")
    code, _, err = await hub(
        db_dsn, "operator", "add", "anna", "--name", "A", "--password-stdin", stdin="another pass\n"
    )
    assert code == 2 and "taken" in err
    code, _, err = await hub(
        db_dsn, "operator", "add", "bob", "--name", "B", "--password-stdin", stdin="short\n"
    )
    assert code == 2 and "8 characters" in err


async def test_migrate_reports_the_version(db_dsn: str) -> None:
    code, out, _ = await hub(db_dsn, "migrate")
    assert code == 0 and out.startswith("database at schema version ")


VCARDS = """BEGIN:VCARD
VERSION:3.0
FN:Ирина Соколова
N:Соколова;Ирина;;;
TEL;TYPE=CELL:8 (916) 123-45-67
EMAIL;TYPE=INTERNET:Irina@Example.com
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Known Person
TEL:+7 912 000 00 77
TEL:not a phone
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Nobody Reachable
END:VCARD
BEGIN:VCARD
VERSION:4.0
FN:Second Import Same Phone
TEL;VALUE=uri:tel:+79161234567
END:VCARD
"""


async def test_leads_import_matches_creates_and_reports_skips(
    db_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    known = await pool.fetchval("INSERT INTO leads (name) VALUES ('Known') RETURNING id")
    await pool.execute(
        "INSERT INTO lead_phones (lead_id, phone) VALUES ($1, '+79120000077')", known
    )
    path = tmp_path / "contacts.vcf"
    path.write_text(VCARDS, encoding="utf-8")
    code, out, err = await hub(db_dsn, "leads", "import", str(path))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "created 1, matched 2, skipped 1"
    assert "skipped 1: no valid phone or email" in out
    assert "note 1: invalid phone dropped" in out
    assert "4/4" in err  # the progress bar reached the end
    irina = await one_row(
        pool,
        "SELECT l.name, l.name_suggestions FROM leads l JOIN lead_phones p ON p.lead_id = l.id WHERE p.phone = '+79161234567'",
    )
    assert irina["name"] == "Ирина Соколова" and irina["name_suggestions"] == [
        "Second Import Same Phone"
    ]
    assert await pool.fetchval("SELECT count(*) FROM leads") == 2
    # The lead the import made came from it (the known one keeps its own source).
    sources = await pool.fetch("SELECT source->>'kind' AS kind FROM leads ORDER BY id")
    assert [r["kind"] for r in sources] == [None, "import"]
    code, _, err = await hub(db_dsn, "leads", "import", str(tmp_path / "missing.vcf"))
    assert code == 2 and "cannot read" in err


async def test_messenger_channels_and_their_secrets(db_dsn: str, pool: asyncpg.Pool) -> None:
    token = "123456:AAE-secret_part"
    code, out, _ = await hub(
        db_dsn,
        "channel",
        "add",
        "telegram",
        "bot",
        "--set",
        f"token={token}",
        "--set",
        "mode=polling",
    )
    assert (code, out.strip()) == (0, "/connectors/telegram/bot")
    settings = await pool.fetchval("SELECT settings FROM channels WHERE name = 'bot'")
    assert settings["token"] == token and len(settings["secret_token"]) >= 32  # generated
    code, out, _ = await hub(
        db_dsn,
        "channel",
        "add",
        "vk",
        "club",
        "--set",
        "token=vk1.a.x",
        "--set",
        "group_id=218000000",
        "--set",
        "confirmation=693d0ba9",
        "--set",
        "secret=s3cr3t",
    )
    assert (code, out.strip()) == (0, "/connectors/vk/club")
    code, out, _ = await hub(
        db_dsn, "channel", "add", "viber", "vb", "--set", "auth_token=445da6az"
    )
    assert (code, out.strip()) == (0, "/connectors/viber/vb")
    code, out, _ = await hub(db_dsn, "channel", "list")
    assert [line.split("\t")[:2] for line in out.strip().splitlines()] == [
        ["telegram", "bot"],
        ["vk", "club"],
        ["viber", "vb"],
    ]
    for secret in ("secret_part", settings["secret_token"], "vk1.a.x", "s3cr3t", "445da6az"):
        assert secret not in out


async def test_a_vk_channel_gets_a_generated_secret_and_says_where_to_paste_it(
    db_dsn: str, pool: asyncpg.Pool
) -> None:
    code, out, err = await hub(
        db_dsn,
        "channel",
        "add",
        "vk",
        "club",
        "--set",
        "token=vk1.a.x",
        "--set",
        "group_id=218000000",
        "--set",
        "confirmation=693d0ba9",
    )
    assert code == 0, err
    stored = await pool.fetchval("SELECT settings->>'secret' FROM channels WHERE name = 'club'")
    assert len(stored) == 32 and stored.isalnum()
    path, hint = out.strip().splitlines()
    assert path == "/connectors/vk/club"
    assert hint.startswith(f"secret={stored}") and "Callback API" in hint
    code, _, err = await hub(
        db_dsn,
        *("channel", "add", "vk", "club2", "--set", "token=vk1.a.x"),
        *("--set", "group_id=1", "--set", "confirmation=c", "--set", "secret=not allowed!"),
    )
    assert code == 2 and "secret takes" in err


async def test_queue_add_and_list(db_dsn: str, pool: asyncpg.Pool) -> None:
    await hub(db_dsn, "channel", "add", "form", "site")
    code, out, err = await hub(
        db_dsn,
        "queue",
        "add",
        "sales",
        "--strategy",
        "round_robin",
        "--offer-timeout",
        "20",
        "--channels",
        "site",
        "--skills",
        "sales,ru",
        "--hours",
        "mon-fri 09:00-18:00",
        "--timezone",
        "Europe/Moscow",
        "--auto-reply",
        "We answer on weekdays 9-18",
    )
    assert code == 0, err
    row = await one_row(pool, "SELECT * FROM queues WHERE name = 'sales'")
    assert (
        row["strategy"],
        row["offer_timeout_s"],
        row["channels"],
        row["skills"],
        row["timezone"],
    ) == ("round_robin", 20, ["site"], ["sales", "ru"], "Europe/Moscow")
    code, out, _ = await hub(db_dsn, "queue", "list")
    assert out.strip().split("\t")[:4] == ["sales", "round_robin", "20s", "site"]
    for args, message in [
        (("queue", "add", "x", "--hours", "someday"), "cannot read"),
        (("queue", "add", "x", "--timezone", "Mars/Olympus"), "unknown time zone"),
        (("queue", "add", "x", "--channels", "nowhere"), "no channel named"),
        (("queue", "add", "sales"), "exists"),
    ]:
        code, _, err = await hub(db_dsn, *args)
        assert code == 2 and message in err, (args, err)


def test_an_error_without_uvloop_carries_no_import_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where uvloop is missing, a failure of the hub is not reported "during handling of"
    the ImportError."""
    from hub.cli import _run_loop

    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError

    async def fails() -> None:
        raise RuntimeError("the hub's own failure")

    try:
        _run_loop(fails())
    except RuntimeError as exc:
        assert exc.__context__ is None and exc.__cause__ is None
    else:
        raise AssertionError("the failure was swallowed")


async def test_operator_edit_password_disable_and_keys_from_the_cli(
    db_dsn: str, pool: asyncpg.Pool
) -> None:
    code, _, err = await hub(
        db_dsn, "operator", "add", "olga", "--name", "Olga", "--password-stdin",
        stdin="first password\n",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await hub(
        db_dsn, "operator", "edit", "olga", "--role", "supervisor", "--skills", "ru,sales",
        "--max-dialogs", "7", "--extension", "105",
    )  # fmt: skip
    assert code == 0, err
    row = await one_row(pool, "SELECT * FROM operators WHERE login = 'olga'")
    assert (row["role"], row["skills"], row["max_dialogs"], row["extension"]) == (
        "supervisor",
        ["ru", "sales"],
        7,
        "105",
    )
    bad = await hub(db_dsn, "operator", "edit", "olga", "--max-dialogs", "0")
    assert bad[0] == 2 and "max_dialogs" in bad[2]
    assert (await hub(db_dsn, "operator", "edit", "nobody", "--name", "X"))[0] == 2
    code, _, err = await hub(
        db_dsn, "operator", "password", "olga", "--password-stdin", stdin="second password\n"
    )
    assert code == 0, err
    new_hash = await pool.fetchval("SELECT password_hash FROM operators WHERE login = 'olga'")
    assert PasswordHasher().verify(new_hash, "second password")
    code, out, err = await hub(db_dsn, "operator", "disable", "olga")
    assert code == 0 and "disabled" in out, err
    code, out, _ = await hub(db_dsn, "operator", "list")
    assert "olga\tOlga\tsupervisor\tdisabled" in out
    assert (await hub(db_dsn, "operator", "enable", "olga"))[0] == 0
    assert await pool.fetchval("SELECT disabled_at FROM operators WHERE login = 'olga'") is None

    code, key, _ = await hub(db_dsn, "apikey", "create", "crm")
    key_id = await pool.fetchval("SELECT id FROM api_keys WHERE name = 'crm'")
    code, out, _ = await hub(db_dsn, "apikey", "list")
    assert f"{key_id}\tcrm\t{key.strip()[:10]}…" in out and "live" in out
    assert key.strip() not in out
    assert (await hub(db_dsn, "apikey", "revoke", str(key_id)))[0] == 0
    assert await apikeys.verify(pool, key.strip()) is None
    assert "revoked" in (await hub(db_dsn, "apikey", "list"))[1]
    assert (await hub(db_dsn, "apikey", "revoke", "999"))[0] == 2
    actors = await pool.fetch("SELECT type FROM domain_events WHERE actor = 'cli' ORDER BY id")
    assert [r["type"] for r in actors] == [
        "operator.updated",
        "operator.password_reset",
        "operator.disabled",
        "operator.enabled",
        "apikey.revoked",
    ]


async def test_queue_edit_and_remove_from_the_cli(db_dsn: str, pool: asyncpg.Pool) -> None:
    await hub(db_dsn, "channel", "add", "form", "site")
    assert (await hub(db_dsn, "queue", "add", "sales", "--channels", "site"))[0] == 0
    code, _, err = await hub(
        db_dsn, "queue", "edit", "sales", "--strategy", "sticky", "--skills", "ru",
        "--hours", "mon-fri 09:00-13:00; mon-fri 14:00-18:00; closed 2026-12-31",
        "--timezone", "Europe/Moscow", "--auto-reply", "Back after lunch",
    )  # fmt: skip
    assert code == 0, err
    row = await one_row(pool, "SELECT * FROM queues WHERE name = 'sales'")
    assert (row["strategy"], row["skills"], row["timezone"], row["auto_reply"]) == (
        "sticky",
        ["ru"],
        "Europe/Moscow",
        "Back after lunch",
    )
    assert "closed 2026-12-31" in row["hours"]
    code, _, err = await hub(db_dsn, "queue", "edit", "sales", "--hours", "mon 25:00-26:00")
    assert code == 2 and "hours" in err
    code, _, _ = await hub(db_dsn, "queue", "edit", "sales", "--always-open", "--no-auto-reply")
    assert code == 0
    row = await one_row(pool, "SELECT hours, auto_reply FROM queues WHERE name = 'sales'")
    assert (row["hours"], row["auto_reply"]) == (None, None)
    assert (await hub(db_dsn, "queue", "remove", "sales"))[0] == 0
    assert await pool.fetchval("SELECT count(*) FROM queues") == 0
    assert (await hub(db_dsn, "queue", "remove", "sales"))[0] == 2


async def test_channel_edit_disable_enable_and_remove_from_the_cli(
    db_dsn: str, pool: asyncpg.Pool
) -> None:
    code, _, err = await hub(
        db_dsn, "channel", "add", "telegram", "bot", "--set", "token=123456:OLD-token_abc",
        "--set", "mode=polling",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await hub(
        db_dsn, "channel", "edit", "bot", "--set", "token=123456:NEW-token_abc",
        "--set", "poll_timeout=5", "--rename", "support-bot",
    )  # fmt: skip
    assert code == 0, err
    stored = await pool.fetchval("SELECT settings FROM channels WHERE name = 'support-bot'")
    assert stored["token"] == "123456:NEW-token_abc" and stored["mode"] == "polling"
    assert stored["secret_token"]  # generated at first, kept
    assert "NEW-token" not in out
    bad = await hub(db_dsn, "channel", "edit", "support-bot", "--set", "token=nonsense")
    assert bad[0] == 2 and "token" in bad[2]
    assert (await hub(db_dsn, "channel", "edit", "support-bot", "--unset", "poll_timeout"))[0] == 0
    assert "poll_timeout" not in await pool.fetchval("SELECT settings FROM channels")
    assert (await hub(db_dsn, "channel", "disable", "support-bot"))[0] == 0
    code, out, _ = await hub(db_dsn, "channel", "list")
    assert out.split("\t")[:3] == ["telegram", "support-bot", "disabled"]
    assert (await hub(db_dsn, "channel", "enable", "support-bot"))[0] == 0
    # What the node running it last said: refused credentials, and when it retries.
    await pool.execute(
        """INSERT INTO channel_status (channel_id, state, node, error)
           SELECT id, 'failed', 'node-a:41', 'provider_auth_failed: Unauthorized (retried in 300 s)'
           FROM channels"""
    )
    code, out, _ = await hub(db_dsn, "channel", "list")
    assert out.strip().split("\t")[-2:] == [
        "failed on node-a:41",
        "provider_auth_failed: Unauthorized (retried in 300 s)",
    ]
    code, out, _ = await hub(db_dsn, "channel", "remove", "support-bot")
    assert code == 0 and "deleted" in out
    assert await pool.fetchval("SELECT count(*) FROM channels") == 0
    assert (await hub(db_dsn, "channel", "remove", "support-bot"))[0] == 2


async def test_the_cli_says_its_database_and_warns_of_a_hub_serving_another(
    db_dsn: str, tmp_path: Path
) -> None:
    code, _, err = await hub(db_dsn, "operator", "list")
    assert code == 0
    said = [line for line in err.splitlines() if line.startswith("hub: using ")]
    assert said and said[0].startswith("hub: using PostgreSQL at ")
    password = urlsplit(db_dsn).password
    assert not password or password not in err
    # A process that is `hub serve` on another data folder, as far as its command line and
    # environment say (it only sleeps).
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", "hub", "serve",
        env={**os.environ, "HUB_DATA_DIR": str(tmp_path / "elsewhere")},
    )  # fmt: skip
    try:
        code, _, err = await hub(db_dsn, "operator", "list")
        assert code == 0
        assert f"a hub (pid {other.pid}) is serving the embedded PostgreSQL in" in err
        assert str(tmp_path / "elsewhere") in err
    finally:
        other.kill()
        await other.wait()
