"""Standard Webhooks signatures as the reference library verifies them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks.signing import headers, new_secret, sign

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_the_specs_test_vector() -> None:
    got = sign(VECTOR_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_reference_library_verifies_each_secret_of_a_rotation() -> None:
    old, new = new_secret(), new_secret()
    body = json.dumps({"type": "lead.created", "data": {"lead_id": 1}}).encode()
    now = int(datetime.now(UTC).timestamp())
    sent = headers([new, old], "evt_1", now, body)
    for secret in (old, new):
        assert Webhook(secret).verify(body.decode(), sent)["type"] == "lead.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body.decode(), sent)
