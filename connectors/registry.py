"""The channel kinds this hub serves: one line a kind.

Each module exports `DESCRIPTOR` (`hub.ports.connector.ConnectorDescriptor`). Modules are
imported when first asked for, and stay cheap to import: a kind whose provider library is
slow to load (aiogram takes two seconds) imports it in its factory, so `hub channel add`
does not pay for it.
"""

from __future__ import annotations

import importlib

from hub.ports.connector import ConnectorDescriptor

MODULES = (
    "connectors.forms",
    "connectors.telegram",
    "connectors.vk",
    "connectors.viber",
    "connectors.email",
    "connectors.pbx",
)

_DESCRIPTORS: dict[str, ConnectorDescriptor] = {}
_loaded = False


def register(descriptor: ConnectorDescriptor) -> ConnectorDescriptor:
    """Make a kind part of the hub (the modules above, or a test's own connector)."""
    _DESCRIPTORS[descriptor.kind] = descriptor
    return descriptor


def unregister(kind: str) -> None:
    _DESCRIPTORS.pop(kind, None)


def descriptors() -> dict[str, ConnectorDescriptor]:
    global _loaded
    if not _loaded:
        for name in MODULES:
            register(importlib.import_module(name).DESCRIPTOR)
        _loaded = True
    return dict(sorted(_DESCRIPTORS.items()))


def get(kind: str) -> ConnectorDescriptor | None:
    return descriptors().get(kind)
