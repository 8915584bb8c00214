"""Standard Webhooks signatures (spec v1): `v1,` + base64 HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded bytes of the
`whsec_…` secret. During a rotation a subscription has several secrets and every delivery
carries one signature per secret, space-separated, so the receiver may verify with either."""

from __future__ import annotations

import base64
import functools
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh `whsec_` secret: 32 random bytes, base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=256)
def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(_key(secret), content, "sha256")
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets_),
        "content-type": "application/json",
    }
