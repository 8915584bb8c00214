"""Every provider's word for how a call ended, mapped to the hub's call status: the one
table the README repeats. `None` means "it depends on whether the call was answered": the
hub then says `answered` if an answer was seen, else `missed` (`hub/calls.py`).

| provider | their value | hub status |
|---|---|---|
| Zadarma `disposition` | `answered` | answered |
| | `busy` | busy |
| | `cancel`, `no answer` | missed |
| | `failed`, `no money`, `unallocated number`, `no limit`, `no day limit`, `line limit`, `no money, no limit` | failed |
| Zammad-style `cause` | `normalClearing` | answered if answered, else missed |
| | `busy` | busy |
| | `cancel`, `noAnswer` | missed |
| | `congestion`, `notFound` | failed |
| | `forwarded` | answered (taken elsewhere; no callback) |
| | answered by the user `voicemail` | missed |
| Mango `entry_result` (events/summary) | `1` | answered |
| | `0` | missed (`disconnect_reason` kept as the cause) |

An unknown value is kept as the cause and decided by whether the call was answered.
"""

from __future__ import annotations

from hub.domain import CallStatus

ZADARMA: dict[str, CallStatus | None] = {
    "answered": CallStatus.ANSWERED,
    "busy": CallStatus.BUSY,
    "cancel": CallStatus.MISSED,
    "no answer": CallStatus.MISSED,
    "failed": CallStatus.FAILED,
    "no money": CallStatus.FAILED,
    "unallocated number": CallStatus.FAILED,
    "no limit": CallStatus.FAILED,
    "no day limit": CallStatus.FAILED,
    "line limit": CallStatus.FAILED,
    "no money, no limit": CallStatus.FAILED,
}

ZAMMAD: dict[str, CallStatus | None] = {
    "normalClearing": None,
    "busy": CallStatus.BUSY,
    "cancel": CallStatus.MISSED,
    "noAnswer": CallStatus.MISSED,
    "congestion": CallStatus.FAILED,
    "notFound": CallStatus.FAILED,
    "forwarded": CallStatus.ANSWERED,
}

# Zammad's convention: a call "answered" by the voicemail box was missed by people.
VOICEMAIL = "voicemail"

MANGO_ENTRY_RESULT: dict[int, CallStatus] = {
    1: CallStatus.ANSWERED,
    0: CallStatus.MISSED,
}


def mapped(table: dict[str, CallStatus | None], value: str | None) -> CallStatus | None:
    return table.get(value) if value else None
