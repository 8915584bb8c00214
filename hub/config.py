"""Typed settings from `HUB_*` environment variables and an optional TOML file.

The environment wins over the file (`HUB_CONFIG=path.toml`, keys without the prefix,
lower case), so a container can override one value of a mounted file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """Settings that cannot work; the hub refuses to start and says which one."""


_EXAMPLE_SECRETS = {"changeme", "change-me", "example", "secret", "password"}


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".hub")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    bus_url: str | None = None
    default_region: str = "RU"
    webhook_allow_private: bool = False
    # Seconds between webhook attempts, comma-separated (the last repeats); empty: the
    # contract's 1, 5, 30, 120, 600, 3600, 10800, 21600.
    webhook_retry_schedule: str = ""
    webhook_retry_budget_s: int = 86400
    webhook_disable_after_s: int = 3 * 86400
    trust_forwarded: bool = False
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    max_form_files: int = 5
    pool_size: int = 10
    reopen_window_s: int = 86400
    token_ttl_s: int = 12 * 3600
    log_level: str = "INFO"
    # How often a node looks for channels to run (pollers, mailboxes): those nobody runs,
    # and those another node left. A node that stops says so on the bus, and the others
    # look at once; this interval is for a node that died without a word.
    channel_check_s: int = 5
    log_format: str = "text"  # or json: one object a line, with node and trace_id
    # A bearer token `GET /metrics` asks for; empty: open (bind the port privately then).
    metrics_token: str = ""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def retry_schedule(self) -> tuple[float, ...]:
        """The webhook retry schedule, or () for the default."""
        parts = [p.strip() for p in self.webhook_retry_schedule.split(",") if p.strip()]
        schedule = tuple(float(p) for p in parts)
        if any(not (0 < s < 10**7) for s in schedule):
            raise ValueError("retry delays must be positive")
        return schedule

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"HUB_{name.upper()} must be 0 or 1, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"HUB_{name.upper()} must be a whole number, got {raw!r}") from None
    if isinstance(default, Path):
        return Path(str(raw))
    text = str(raw).strip()
    return text or None if default is None else text


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_file = env.get("HUB_CONFIG")
    if config_file:
        try:
            values.update(tomllib.loads(Path(config_file).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read HUB_CONFIG {config_file}: {exc}") from None
    defaults = Settings()
    kwargs: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(f"HUB_{f.name.upper()}", values.get(f.name))
        if raw is not None:
            kwargs[f.name] = _coerce(f.name, raw, getattr(defaults, f.name))
    settings = Settings(**kwargs)
    try:
        settings.retry_schedule()
    except ValueError:
        raise ConfigError(
            "HUB_WEBHOOK_RETRY_SCHEDULE must be seconds separated by commas, e.g. 1,5,30"
        ) from None
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"HUB_LOG_FORMAT must be text or json, got {settings.log_format!r}")
    if not 0 < settings.port < 65536:
        raise ConfigError(f"HUB_PORT out of range: {settings.port}")
    if settings.database_url and any(
        f":{word}@" in settings.database_url for word in _EXAMPLE_SECRETS
    ):
        raise ConfigError("HUB_DATABASE_URL still holds an example password; set a real one")
    return settings
