"""What `hub --help` and each subcommand's help show beyond argparse's own: every option's
default, and the settings each channel kind takes (read from the connector descriptors, so
a new kind documents itself)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from connectors import registry


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs keep their lines; an option with a default says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and "%(default)" not in text
        ):
            text = f"{text} (default: %(default)s)".strip()
        return text


class HubParser(argparse.ArgumentParser):
    """Every parser of the CLI, subcommands' too (argparse makes them of the parent's class):
    defaults shown, options without help still listed with theirs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        if kwargs.get("default") not in (None, False) and not kwargs.get("help"):
            kwargs["help"] = "(default: %(default)s)"
        return super().add_argument(*args, **kwargs)


def channel_settings_text() -> str:
    """Each channel kind with its settings: required, secret, generated, choices, default."""
    lines = ["channel kinds and their settings (--set KEY=VALUE):"]
    for kind, descriptor in sorted(registry.descriptors().items()):
        lines.append(f"  {kind} ({descriptor.title}):")
        for f in dataclasses.fields(descriptor.settings):
            meta = f.metadata
            marks = [
                word
                for word, on in (
                    ("required", meta.get("required")),
                    ("secret", meta.get("secret")),
                    ("generated if empty", meta.get("generate") is not None),
                )
                if on
            ]
            if meta.get("choices"):
                marks.append("|".join(meta["choices"]))
            if f.default not in ("", None):
                marks.append(f"default {f.default}")
            about = f" — {meta['help']}" if meta.get("help") else ""
            flags = f" [{', '.join(marks)}]" if marks else ""
            lines.append(f"    {f.name}{flags}{about}")
    return "\n".join(lines)
