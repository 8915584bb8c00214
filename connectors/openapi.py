"""OpenAPI operation objects shared by the connectors' inbound routes."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/responses/Error"}
CHANNEL_PARAM = {"name": "channel", "in": "path", "required": True, "schema": {"type": "string"}}


def provider_post(summary: str, auth: str, answer: str) -> dict[str, Any]:
    """A provider's webhook: a JSON event in, a short answer out."""
    return {
        "summary": f"{summary} ({auth})",
        "tags": ["connectors"],
        "security": [],
        "parameters": [CHANNEL_PARAM],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "responses": {
            "200": {"description": answer},
            **{str(c): ERROR for c in (400, 401, 403, 404, 409, 413, 415)},
        },
    }
