"""A channel's settings as one typed class: which keys exist, which are required or secret,
their defaults and checks, written once beside the connector and read by the CLI, the
HTTP app and (later) the admin pages.

Settings are stored as a JSON object of strings (what `--set key=value` gives and what an
admin form posts); a subclass declares them as dataclass fields made with `setting()`:

    @dataclass(frozen=True, kw_only=True)
    class TelegramSettings(ChannelSettings):
        token: str = setting(required=True, secret=True, help="from @BotFather")
        mode: str = setting(default="webhook", choices=("webhook", "polling"))

        def validate(self) -> None:
            if not TOKEN.match(self.token):
                raise SettingsInvalid("token must look like 123456:ABC-DEF...")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, get_type_hints


class SettingsInvalid(ValueError):
    """Settings that cannot work, with a message an admin can act on; `missing` names the
    required keys that were not given."""

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


def setting(
    *,
    default: str | int = "",
    required: bool = False,
    secret: bool = False,
    choices: tuple[str, ...] = (),
    url: bool = False,
    generate: Callable[[], str] | None = None,
    paste_at: str = "",
    help: str = "",
) -> Any:
    """One setting: `secret` ones are never shown back, `generate` makes a value when none
    is given (a webhook secret), `paste_at` says where in the provider's settings a
    generated value must be pasted (shown once, when it is made), `url` must be http(s)."""
    return dataclasses.field(
        default=default,
        metadata={
            "required": required,
            "secret": secret,
            "choices": choices,
            "url": url,
            "generate": generate,
            "paste_at": paste_at,
            "help": help,
        },
    )


@dataclass(frozen=True, kw_only=True)
class ChannelSettings:
    """Base of every connector's settings class (no settings of its own). Which keys are
    secret, required or generated is in each field's metadata (`setting()`)."""

    @classmethod
    def check(cls, kind: str, values: Mapping[str, str]) -> dict[str, str]:
        """Validate what an admin gave and return what to store: the given values trimmed,
        plus generated ones. Raises `SettingsInvalid` with the first problem found."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise SettingsInvalid(
                f"unknown {kind} setting {unknown[0]!r}; known: {', '.join(sorted(fields))}"
            )
        stored = {k: v.strip() for k, v in values.items()}
        for name, f in fields.items():
            make = f.metadata.get("generate")
            if make is not None and not stored.get(name):
                stored[name] = make()
        missing = tuple(
            n for n, f in fields.items() if f.metadata.get("required") and not stored.get(n)
        )
        if missing:
            raise SettingsInvalid(f"{kind} channels need {', '.join(missing)}", missing=missing)
        cls.load(stored).validate()
        return stored

    @classmethod
    def load(cls, stored: Mapping[str, str]) -> Self:
        """The typed settings of a stored channel; raises `SettingsInvalid` for a value of
        the wrong type or outside its choices."""
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = stored.get(f.name)
            if raw is None or raw == "":
                continue
            choices = f.metadata.get("choices") or ()
            if choices and raw not in choices:
                raise SettingsInvalid(f"{f.name} must be {' or '.join(choices)}")
            if f.metadata.get("url") and not raw.startswith(("http://", "https://")):
                raise SettingsInvalid(f"{f.name} must be an http(s) URL")
            if hints[f.name] is int:
                if not raw.isdigit():
                    raise SettingsInvalid(f"{f.name} must be a whole number")
                values[f.name] = int(raw)
            else:
                values[f.name] = raw
        return cls(**values)

    @classmethod
    def to_paste(
        cls, given: Mapping[str, str], stored: Mapping[str, str]
    ) -> list[tuple[str, str, str]]:
        """(key, value, where) of each value the hub generated that the admin must paste
        into the provider's settings."""
        return [
            (f.name, stored[f.name], f.metadata["paste_at"])
            for f in dataclasses.fields(cls)
            if f.metadata.get("paste_at") and stored.get(f.name) and not given.get(f.name)
        ]

    @classmethod
    def secret_values(cls, stored: Mapping[str, str]) -> list[str]:
        """The stored values of the secret settings: what no log line may repeat."""
        return [
            stored[f.name]
            for f in dataclasses.fields(cls)
            if f.metadata.get("secret") and stored.get(f.name)
        ]

    def validate(self) -> None:
        """Checks across keys or of a value's shape; raise `SettingsInvalid`."""
