"""Subscribing a CRM: which events exist, and which URLs may receive them.

A webhook URL is somebody else's word: it must be http(s), and unless
`HUB_WEBHOOK_ALLOW_PRIVATE=1` its host must resolve only to public addresses (no loopback,
private, link-local or cloud-metadata address). The dispatcher checks the address again at
every delivery (hub.netguard), since a name's answer may change after it was accepted.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from yarl import URL

from hub.netguard import is_public

# What a subscription may ask for (storage/functions/40_webhooks.sql makes deliveries of
# these types only).
EVENTS = (
    "lead.created",
    "lead.updated",
    "lead.merged",
    "lead.unmerged",
    "interaction.created",
    "interaction.delivery_updated",
    "dialog.created",
    "dialog.assigned",
    "dialog.transferred",
    "dialog.closed",
    "call.missed",
)


class Refused(ValueError):
    """A subscription that cannot be made, with the reason for the person making it."""


def check_events(events: Sequence[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise Refused(f"unknown event types {unknown}; known: {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))


async def check_url(url: str, *, allow_private: bool) -> str:
    """The URL as stored, or `Refused` with why not."""
    try:
        parsed = URL(url.strip())
    except (ValueError, TypeError):
        raise Refused("not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or len(url) > 2000:
        raise Refused("a webhook URL must be an http:// or https:// URL with a host")
    if parsed.user or parsed.password:
        raise Refused("put no credentials in the URL; the hub signs every delivery")
    if allow_private:
        return str(parsed)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parsed.host, parsed.port, type=socket.SOCK_STREAM
        )
    except OSError:
        raise Refused(f"{parsed.host} does not resolve") from None
    private = sorted({str(info[4][0]) for info in found if not is_public(str(info[4][0]))})
    if private:
        raise Refused(
            f"{parsed.host} resolves to {', '.join(private)}, a loopback, private or link-local"
            " address; set HUB_WEBHOOK_ALLOW_PRIVATE=1 to allow such receivers"
        )
    return str(parsed)
