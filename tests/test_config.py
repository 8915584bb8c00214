"""Settings from the environment and a TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import ConfigError, load_settings


def test_defaults_and_environment() -> None:
    s = load_settings({})
    assert (s.host, s.port, s.default_region, s.database_url) == ("127.0.0.1", 8080, "RU", None)
    assert s.base_url == "http://127.0.0.1:8080"
    s = load_settings(
        {
            "HUB_PORT": "9000",
            "HUB_PUBLIC_URL": "https://hub.example/",
            "HUB_WEBHOOK_ALLOW_PRIVATE": "1",
        }
    )
    assert s.port == 9000 and s.base_url == "https://hub.example" and s.webhook_allow_private


def test_toml_file_and_environment_precedence(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('port = 7000\ndefault_region = "KZ"\n')
    s = load_settings({"HUB_CONFIG": str(path), "HUB_DEFAULT_REGION": "BY"})
    assert s.port == 7000 and s.default_region == "BY"


@pytest.mark.parametrize(
    "env",
    [
        {"HUB_PORT": "abc"},
        {"HUB_PORT": "70000"},
        {"HUB_WEBHOOK_ALLOW_PRIVATE": "maybe"},
        {"HUB_DATABASE_URL": "postgresql://hub:changeme@db/hub"},
        {"HUB_CONFIG": "/nonexistent/hub.toml"},
    ],
)
def test_bad_settings_refuse_to_start(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(env)
