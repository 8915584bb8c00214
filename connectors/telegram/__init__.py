"""Telegram bots: the kind's descriptor and settings. The aiogram connector itself is in
`connectors.telegram.bot`, imported only when a hub is built (aiogram takes two seconds
to import, which `hub channel add` should not pay). Its checklist is in that module."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from connectors.openapi import provider_post
from hub.ports import HubPorts
from hub.ports.connector import (
    Capabilities,
    Connector,
    ConnectorDescriptor,
    InboundRoute,
    always,
    handle_inbound,
)
from hub.ports.settings import ChannelSettings, SettingsInvalid, setting

KIND = "telegram"
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _new_secret() -> str:
    # Telegram echoes this secret on every webhook call; one is made when none is given.
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, kw_only=True)
class TelegramSettings(ChannelSettings):
    token: str = setting(required=True, secret=True, help="the bot token from @BotFather")
    secret_token: str = setting(
        secret=True, generate=_new_secret, help="echoed by Telegram on every webhook call"
    )
    mode: str = setting(default="webhook", choices=("webhook", "polling"))
    api_base: str = setting(url=True, help="a Bot API server; https://api.telegram.org")
    poll_timeout: int = setting(default=25, help="getUpdates long-poll seconds (polling mode)")

    def validate(self) -> None:
        if not _TOKEN.match(self.token):
            raise SettingsInvalid("token must look like 123456:ABC-DEF... (from @BotFather)")
        if not _SECRET.match(self.secret_token):
            raise SettingsInvalid("secret_token takes 1-256 characters A-Z, a-z, 0-9, _ and -")


def _make(ports: HubPorts) -> Connector:
    from connectors.telegram.bot import TelegramConnector

    return TelegramConnector(ports)


DESCRIPTOR = ConnectorDescriptor(
    kind=KIND,
    title="Telegram",
    settings=TelegramSettings,
    capabilities=Capabilities(
        interaction_kind=KIND,
        sends_files=True,
        shows_typing=True,  # sendChatAction
        # The runner sets the webhook, or polls getUpdates.
        needs_runner=always,
    ),
    factory=_make,
    routes=(
        InboundRoute(
            "POST",
            "/connectors/telegram/{channel}",
            handle_inbound,
            provider_post("Telegram updates", "X-Telegram-Bot-Api-Secret-Token", "accepted"),
        ),
    ),
)
