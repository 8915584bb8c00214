"""The OpenAPI 3.1 description of the HTTP interface.

Written by hand, next to the router rather than generated from it, so that a test can
compare the two and catch a route added without documentation (or the reverse).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub import __version__
from hub.api.leads import LeadLookup
from hub.api.openapi_parts import ERROR as _ERROR
from hub.api.openapi_parts import op as _op
from hub.api.openapi_parts import path as _path
from hub.api.openapi_parts import q as _q
from hub.api.openapi_parts import ref as _ref
from hub.api.openapi_reports import report_paths
from hub.ports.connector import ConnectorDescriptor

_OPERATOR_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "login": {"type": "string", "maxLength": 64},
        "name": {"type": "string", "maxLength": 100},
        "role": {"enum": ["operator", "supervisor", "admin"]},
        "skills": {"type": "array", "items": {"type": "string"}},
        "max_dialogs": {"type": "integer", "minimum": 1, "maximum": 100},
        "extension": {"type": ["string", "null"]},
        "password": {"type": "string", "minLength": 8, "writeOnly": True},
        "disabled": {"type": "boolean"},
    },
}


_CHANNEL_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string"},
        "name": {"type": "string", "maxLength": 63},
        "settings": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "enabled": {"type": "boolean"},
    },
}

_QUEUE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 64},
        "strategy": {"enum": ["least_busy", "round_robin", "sticky", "all"]},
        "offer_timeout_s": {"type": "integer", "minimum": 1, "maximum": 3600},
        "channels": {"type": "array", "items": {"type": "string"}},
        "skills": {"type": "array", "items": {"type": "string"}},
        "hours": {
            "type": ["string", "null"],
            "description": "e.g. 'mon-fri 09:00-13:00; mon-fri 14:00-18:00; closed"
            " 2026-12-31..2027-01-08'; null: always open",
        },
        "timezone": {"type": "string"},
        "auto_reply": {"type": ["string", "null"], "maxLength": 1000},
    },
}


_CANNED_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "language": {"type": "string", "pattern": "^[a-z]{2}$"},
        "title": {"type": "string", "minLength": 1, "maxLength": 100},
        "text": {"type": "string", "minLength": 1, "maxLength": 4096},
    },
}
_CANNED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        **_CANNED_BODY["properties"],
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_PAGING = [
    _q("limit", "page size, 1-200", "integer"),
    _q("cursor", "next_cursor of the previous page"),
]


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


def build_spec(kinds: Iterable[ConnectorDescriptor] = ()) -> dict[str, Any]:
    """The hub's own paths, and each served channel kind's inbound routes."""
    kinds = list(kinds)
    lead_path = [_path()]
    other = {
        "type": "object",
        "required": ["other_id"],
        "properties": {"other_id": {"type": "integer"}},
    }
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Contact hub",
            "version": __version__,
            "description": "Omnichannel contact-center integration hub",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {
                "get": _op(
                    "Liveness", tag="health", auth=False, errors=(), schema={"type": "object"}
                )
            },
            "/readyz": {
                "get": _op(
                    "Readiness: the database answers",
                    tag="health",
                    auth=False,
                    errors=(503,),
                    schema={"type": "object"},
                )
            },
            "/metrics": {
                "get": _op(
                    "Prometheus metrics of the node answering",
                    description="Prometheus' text format. With HUB_METRICS_TOKEN set, only for"
                    " `Authorization: Bearer <token>`; otherwise open.",
                    tag="health",
                    auth=False,
                    errors=(401,),
                    schema={"type": "string"},
                    content_type="text/plain",
                )
            },
            "/api/v1/schemas/domain-events.json": {
                "get": _op(
                    "JSON Schema of the domain events (what webhooks and reports are built on)",
                    tag="meta",
                    auth=False,
                    errors=(),
                    schema={"type": "object"},
                    content_type="application/schema+json",
                )
            },
            "/api/v1/openapi.json": {
                "get": _op(
                    "This document", tag="meta", auth=False, errors=(), schema={"type": "object"}
                )
            },
            "/api/v1/dialogs/{id}/messages": {
                "post": {
                    "summary": "Reply on the dialog's channel (JSON text, or multipart with files)",
                    "tags": ["dialogs"],
                    "parameters": [_path()],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"text": {"type": "string", "maxLength": 4096}},
                                }
                            },
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "text": {"type": "string"},
                                        "file": {"type": "string", "format": "binary"},
                                    },
                                }
                            },
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "the outbound interaction with its delivery state",
                            "content": {"application/json": {"schema": _ref("Interaction")}},
                        },
                        **{str(c): _ERROR for c in (400, 401, 403, 404, 413, 415, 422)},
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The operator console",
                    "tags": ["console"],
                    "security": [],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
            "/favicon.ico": {
                "get": {
                    "summary": "The console's icon (SVG)",
                    "tags": ["console"],
                    "security": [],
                    "responses": {"200": {"description": "SVG", "content": {"image/svg+xml": {}}}},
                }
            },
            "/console/{filename}": {
                "get": {
                    "summary": "The console's scripts and styles",
                    "tags": ["console"],
                    "security": [],
                    "parameters": [
                        {
                            "name": "filename",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": {"description": "a static file"}, "404": _ERROR},
                }
            },
            "/ws/operator": {
                "get": {
                    "summary": "The operator's websocket (frames: hello, dialog.offered, dialog.assigned,"
                    " dialog.withdrawn, dialog.unassigned, dialog.closed, interaction,"
                    " interaction.updated, supervisor.state, error; from the operator:"
                    " presence, accept, decline, send, transfer, close, read, ping)",
                    "tags": ["operators"],
                    "security": [],
                    "parameters": [
                        {
                            "name": "token",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"101": {"description": "switching protocols"}, "401": _ERROR},
                }
            },
            "/api/v1/auth/login": {
                "post": {
                    "summary": "Operator login: an expiring, revocable session token",
                    "tags": ["operators"],
                    "security": [],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["login", "password"],
                                    "properties": {
                                        "login": {"type": "string"},
                                        "password": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "token, expires_at, operator"},
                        **{str(c): _ERROR for c in (400, 401, 415, 422, 429)},
                    },
                }
            },
            "/api/v1/auth/logout": {
                "post": _op(
                    "End this session", tag="operators", schema={"type": "object"}, errors=(401,)
                )
            },
            "/api/v1/me": {
                "get": _op(
                    "The operator of this session",
                    tag="operators",
                    schema={"type": "object"},
                    errors=(401, 403),
                )
            },
            "/api/v1/operators": {
                "get": _op(
                    "Operators at work with presence and load; for admins every field they"
                    " edit, and disabled operators with ?include_disabled=true",
                    tag="operators",
                    schema={"type": "object"},
                    params=[_q("include_disabled", "true: disabled operators too (admins)")],
                    errors=(401, 403),
                ),
                "post": _op(
                    "Add an operator (admin)",
                    tag="admin",
                    ok=201,
                    schema=_ref("Operator"),
                    body=_OPERATOR_BODY | {"required": ["login", "name", "password"]},
                    errors=(400, 401, 403, 409, 415, 422),
                ),
            },
            "/api/v1/operators/{id}": {
                "get": _op(
                    "One operator (admin)", tag="admin", params=[_path()], schema=_ref("Operator")
                ),
                "patch": _op(
                    "Change an operator (admin): name, role, skills, capacity, extension; a new"
                    " password ends their sessions; disabled true ends them, refuses their"
                    " login and puts the dialogs they held back in their queues",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("Operator"),
                    body=_OPERATOR_BODY,
                    errors=(400, 401, 403, 404, 409, 415, 422),
                ),
                "delete": _op(
                    "Remove an operator: they are disabled, their history kept (admin)",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("Operator"),
                    errors=(401, 403, 404, 409),
                ),
            },
            "/api/v1/channel-kinds": {
                "get": _op(
                    "Each channel kind with the settings it takes (required, secret, choices,"
                    " generated, help): what admin forms are built from (admin)",
                    tag="admin",
                    schema={"type": "object"},
                ),
            },
            "/api/v1/channels": {
                "get": _op(
                    "Channels with their state (running on which node, failed with the"
                    " provider's refusal, listening, disabled); secrets as set or not, never"
                    " their values (admin)",
                    tag="admin",
                    schema={"type": "object"},
                ),
                "post": _op(
                    "Add a channel; `paste` lists generated values to paste at the provider,"
                    " shown this once (admin)",
                    tag="admin",
                    ok=201,
                    schema=_ref("AdminChannel"),
                    body=_CHANNEL_BODY | {"required": ["kind", "name"]},
                    errors=(400, 401, 403, 409, 415, 422),
                ),
            },
            "/api/v1/channels/{id}": {
                "get": _op(
                    "One channel (admin)",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("AdminChannel"),
                ),
                "patch": _op(
                    "Rename, change settings (null removes one; a secret left out is kept), or"
                    " enable/disable; the channel restarts with new settings (admin)",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("AdminChannel"),
                    body=_CHANNEL_BODY,
                    errors=(400, 401, 403, 404, 409, 415, 422),
                ),
                "delete": _op(
                    "Remove a channel: deleted when nothing refers to it, else disabled (admin)",
                    tag="admin",
                    params=[_path()],
                    schema={"type": "object", "properties": {"deleted": {"type": "boolean"}}},
                    errors=(401, 403, 404),
                ),
            },
            "/api/v1/queues": {
                "get": _op("Routing queues (admin)", tag="admin", schema={"type": "object"}),
                "post": _op(
                    "Add a routing queue (admin)",
                    tag="admin",
                    ok=201,
                    schema=_ref("Queue"),
                    body=_QUEUE_BODY | {"required": ["name"]},
                    errors=(400, 401, 403, 409, 415, 422),
                ),
            },
            "/api/v1/queues/{id}": {
                "get": _op(
                    "One routing queue (admin)", tag="admin", params=[_path()], schema=_ref("Queue")
                ),
                "patch": _op(
                    "Change a routing queue (admin); the router reads it again at once",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("Queue"),
                    body=_QUEUE_BODY,
                    errors=(400, 401, 403, 404, 409, 415, 422),
                ),
                "delete": _op(
                    "Remove a routing queue (a queue dialogs went through is disabled, kept for"
                    " the record); its dialogs go to their channel's queue, else the default (admin)",
                    tag="admin",
                    ok=204,
                    params=[_path()],
                    errors=(401, 403, 404),
                ),
            },
            "/api/v1/apikeys": {
                "get": _op(
                    "API keys with their scopes and last use, revoked ones too; never a key"
                    " (admin)",
                    tag="admin",
                    schema={
                        "type": "object",
                        "properties": {"items": {"type": "array", "items": _ref("ApiKey")}},
                    },
                ),
                "post": _op(
                    "Make an API key: the answer's `key` is shown this once (admin). scopes"
                    " default to every scope but admin",
                    tag="admin",
                    ok=201,
                    schema=_ref("ApiKey"),
                    body={
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "maxLength": 100},
                            "scopes": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    errors=(400, 401, 403, 415, 422),
                ),
            },
            "/api/v1/apikeys/{id}": {
                "get": _op(
                    "One API key, never the key (admin)",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("ApiKey"),
                ),
                "patch": _op(
                    "Rename a key or change its scopes (admin); a revoked key cannot change",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("ApiKey"),
                    body={
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "maxLength": 100},
                            "scopes": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    errors=(400, 401, 403, 404, 409, 415, 422),
                ),
                "delete": _op(
                    "Revoke an API key: refused from its next request on (admin)",
                    tag="admin",
                    params=[_path()],
                    schema=_ref("ApiKey"),
                    errors=(401, 403, 404),
                ),
            },
            "/api/v1/search": {
                "get": _op(
                    "Search leads by name, phone (any format, or some of its digits) or email"
                    " (or part of one), and messages by their words (the last word also as"
                    " the beginning of a longer one), newest first; operators find their own"
                    " dialogs' leads only",
                    tag="leads",
                    schema={
                        "type": "object",
                        "properties": {
                            "query": {"type": "string"},
                            "kind": {"enum": ["text", "phone", "email"]},
                            "leads": {"type": "array", "items": _ref("Lead")},
                            "messages": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "id": {"type": "integer"},
                                        "lead_id": {"type": "integer"},
                                        "lead_name": {"type": ["string", "null"]},
                                        "dialog_id": {"type": "integer"},
                                        "channel": {"type": "string"},
                                        "kind": {"type": "string"},
                                        "direction": {"enum": ["in", "out"]},
                                        "subject": {"type": ["string", "null"]},
                                        "snippet": {"type": "string"},
                                        "occurred_at": {"type": "string", "format": "date-time"},
                                    },
                                },
                            },
                        },
                    },
                    params=[
                        _q("q", "a name, phone, email, or words of a message (≤ 200 characters)"),
                        _q("limit", "at most this many leads and messages (1–50, 20)", "integer"),
                    ],
                    errors=(400, 401, 403, 422),
                )
            },
            "/api/v1/leads": {
                "post": _op(
                    "Create or update a lead by a CRM's own id (201 made, 200 updated)",
                    tag="leads",
                    schema=_ref("Lead"),
                    errors=(400, 401, 403, 415, 422),
                    body={
                        "type": "object",
                        "required": ["external_ids"],
                        "properties": {
                            "external_ids": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "description": '{"bitrix24": "123"}',
                            },
                            "name": {"type": ["string", "null"]},
                            "phones": {"type": "array", "items": {"type": "string"}},
                            "emails": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                "get": _op(
                    "Find leads",
                    tag="leads",
                    schema=_page_of("Lead"),
                    params=[
                        *(_q(name, doc) for name, doc in LeadLookup.parameters()),
                        *_PAGING,
                    ],
                ),
            },
            "/api/v1/leads/{id}": {
                "get": _op("One lead", tag="leads", schema=_ref("Lead"), params=lead_path),
                "patch": _op(
                    "Edit a lead (name, phones, emails, phone suggestions; omitted parts stay)",
                    tag="leads",
                    schema=_ref("Lead"),
                    params=lead_path,
                    errors=(400, 401, 403, 404, 409, 415, 422),
                    body={
                        "type": "object",
                        "properties": {
                            "name": {"type": ["string", "null"]},
                            "phones": {"type": "array", "items": {"type": "string"}},
                            "emails": {"type": "array", "items": {"type": "string"}},
                            "phone_suggestions": {"type": "array", "items": {"type": "string"}},
                            "blocked": {
                                "type": "boolean",
                                "description": "take no calls from this lead (a PBX is told busy)",
                            },
                        },
                    },
                ),
            },
            "/api/v1/leads/{id}/messages": {
                "post": _op(
                    "Write to the lead on the channel named, else on the one it last wrote on",
                    tag="leads",
                    ok=201,
                    params=lead_path,
                    schema=_ref("Interaction"),
                    errors=(400, 401, 403, 404, 409, 415, 422),
                    body={
                        "type": "object",
                        "required": ["text"],
                        "properties": {
                            "text": {"type": "string"},
                            "channel": {"type": "string", "description": "a channel's name"},
                        },
                    },
                ),
            },
            "/api/v1/leads/{id}.vcf": {
                "get": _op(
                    "The lead as a vCard",
                    tag="leads",
                    params=lead_path,
                    schema={"type": "string"},
                    content_type="text/vcard",
                )
            },
            "/api/v1/leads/{id}/merge": {
                "post": _op(
                    "Merge another lead into this one",
                    tag="leads",
                    params=lead_path,
                    body=other,
                    errors=(400, 401, 403, 404, 409, 415, 422),
                    schema={"type": "object"},
                )
            },
            "/api/v1/leads/{id}/unmerge": {
                "post": _op(
                    "Undo a merge, restoring the other lead with what was its own",
                    tag="leads",
                    params=lead_path,
                    body=other,
                    errors=(400, 401, 403, 404, 409, 415, 422),
                    schema={"type": "object"},
                )
            },
            "/api/v1/leads/{id}/timeline": {
                "get": _op(
                    "How the lead's dialogs changed hands (offered, assigned, transferred,"
                    " queued, closed, reopened), oldest first, from the domain-event log",
                    tag="leads",
                    params=lead_path,
                    schema={"type": "object", "properties": {"items": {"type": "array"}}},
                ),
            },
            "/api/v1/leads/{id}/duplicates": {
                "get": _op(
                    "Likely duplicates: same phone or email, similar name",
                    tag="leads",
                    params=lead_path,
                    schema={"type": "object"},
                )
            },
            "/api/v1/leads/{id}/interactions": {
                "get": _op(
                    "Every interaction of the lead across channels, oldest first;"
                    " `order=desc` pages newest first, `before` the previous page's last id",
                    tag="leads",
                    params=[
                        *lead_path,
                        *_PAGING,
                        _q("order", "asc (default) or desc"),
                        _q(
                            "before", "with order=desc: the last id of the previous page", "integer"
                        ),
                    ],
                    schema=_page_of("Interaction"),
                )
            },
            "/api/v1/dialogs": {
                "get": _op(
                    "Dialogs",
                    tag="dialogs",
                    schema=_page_of("Dialog"),
                    params=[
                        _q("status", "queued|offered|assigned|closed"),
                        _q("operator", "operator id", "integer"),
                        _q("lead_id", "lead id", "integer"),
                        _q("channel", "channel name"),
                        _q("order", "asc (oldest first, the default) or desc (newest first)"),
                        _q(
                            "before", "with order=desc: the last id of the previous page", "integer"
                        ),
                        *_PAGING,
                    ],
                )
            },
            "/api/v1/dialogs/{id}": {
                "get": _op(
                    "One dialog with its interactions",
                    tag="dialogs",
                    params=[_path()],
                    schema=_ref("Dialog"),
                )
            },
            "/api/v1/dialogs/{id}/notes": {
                "post": _op(
                    "Add an internal note: colleagues and CRMs see it (kind note), the customer"
                    " never",
                    tag="dialogs",
                    params=[_path()],
                    schema=_ref("Interaction"),
                    errors=(400, 401, 403, 404, 415, 422),
                    body={
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string", "maxLength": 4096}},
                    },
                ),
            },
            "/api/v1/dialogs/{id}/transfer": {
                "post": _op(
                    "Give the dialog to an operator (at once) or to a queue (offered)",
                    tag="dialogs",
                    params=[_path()],
                    schema=_ref("Dialog"),
                    errors=(400, 401, 403, 404, 409, 415, 422),
                    body={
                        "type": "object",
                        "properties": {
                            "operator_id": {"type": "integer"},
                            "queue": {"type": "string"},
                            "comment": {
                                "type": "string",
                                "maxLength": 1000,
                                "description": "a note for the receiver, shown with the offer"
                                " and in the dialog's timeline",
                            },
                        },
                    },
                ),
            },
            "/api/v1/dialogs/{id}/close": {
                "post": _op(
                    "Close the dialog",
                    tag="dialogs",
                    params=[_path()],
                    schema=_ref("Dialog"),
                    errors=(401, 403, 404, 409),
                ),
            },
            "/api/v1/calls": {
                "get": _op(
                    "Calls, newest first, those without a lead included",
                    tag="dialogs",
                    schema={
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": _ref("Call")},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    params=[
                        _q("status", "ringing|in_progress|answered|missed|busy|failed"),
                        _q("lead_id", "lead id", "integer"),
                        _q("before", "the last id of the previous page", "integer"),
                        _q("limit", "1 to 200 (50)", "integer"),
                    ],
                )
            },
            "/api/v1/webhooks": {
                "get": _op(
                    "Webhook subscriptions",
                    tag="webhooks",
                    schema={
                        "type": "object",
                        "properties": {"items": {"type": "array", "items": _ref("Webhook")}},
                    },
                ),
                "post": _op(
                    "Subscribe a URL; the answer holds its signing secret, shown this once",
                    tag="webhooks",
                    ok=201,
                    schema=_ref("Webhook"),
                    errors=(400, 401, 403, 415, 422),
                    body={
                        "type": "object",
                        "required": ["url"],
                        "properties": {
                            "url": {"type": "string"},
                            "events": {"type": "array", "items": {"type": "string"}},
                            "channels": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
            },
            "/api/v1/canned-responses": {
                "get": _op(
                    "Canned responses ({name} and {operator} are filled in by the console)",
                    tag="dialogs",
                    params=[_q("language", "two-letter code, e.g. ru")],
                    schema={"type": "object", "properties": {"items": {"type": "array"}}},
                    errors=(400, 401, 403),
                ),
                "post": _op(
                    "Add a canned response (admins; a title once per language: 409 again)",
                    tag="dialogs",
                    ok=201,
                    schema=_CANNED,
                    errors=(400, 401, 403, 409, 415, 422),
                    body={**_CANNED_BODY, "required": ["language", "title", "text"]},
                ),
            },
            "/api/v1/canned-responses/{id}": {
                "get": _op(
                    "One canned response",
                    tag="dialogs",
                    params=[_path()],
                    schema={"type": "object"},
                ),
                "patch": _op(
                    "Change a canned response (admins)",
                    tag="dialogs",
                    params=[_path()],
                    schema=_CANNED,
                    errors=(400, 401, 403, 404, 409, 415, 422),
                    body=_CANNED_BODY,
                ),
                "delete": _op(
                    "Remove a canned response (admins)",
                    tag="dialogs",
                    ok=204,
                    params=[_path()],
                    errors=(401, 403, 404),
                ),
            },
            "/api/v1/webhooks/{id}": {
                "delete": _op("Remove a subscription", tag="webhooks", ok=204, params=[_path()]),
                "patch": _op(
                    'Turn a disabled subscription back on ({"enabled": true})',
                    tag="webhooks",
                    params=[_path()],
                    schema=_ref("Webhook"),
                    errors=(400, 401, 403, 404, 415, 422),
                    body={"type": "object", "properties": {"enabled": {"const": True}}},
                ),
            },
            "/api/v1/webhooks/{id}/deliveries": {
                "get": _op(
                    "Deliveries, newest first, each with its attempts",
                    tag="webhooks",
                    params=[_path()],
                    schema={"type": "object", "properties": {"items": {"type": "array"}}},
                ),
            },
            "/api/v1/webhooks/{id}/replay": {
                "post": _op(
                    "Send events again (the ids named, or every dead one) with their own ids",
                    tag="webhooks",
                    ok=202,
                    params=[_path()],
                    errors=(400, 401, 403, 404, 415, 422),
                    schema={"type": "object", "properties": {"queued": {"type": "integer"}}},
                    body={
                        "type": "object",
                        "properties": {"event_ids": {"type": "array", "items": {"type": "string"}}},
                    },
                ),
            },
            "/api/v1/attachments/{id}": {
                "get": _op(
                    "Download an attachment",
                    tag="leads",
                    params=[_path()],
                    schema={"type": "string", "format": "binary"},
                    content_type="application/octet-stream",
                    errors=(401, 403, 404, 410),
                )
            },
            "/api/v1/unsorted": {
                "get": _op(
                    "First contacts held for review",
                    tag="unsorted",
                    schema={"type": "object"},
                    params=[
                        _q("status", "pending (default), accepted, linked, declined or all"),
                        *_PAGING,
                    ],
                )
            },
            "/api/v1/unsorted/{id}/accept": {
                "post": _op(
                    "Accept: create (or find) the lead and store the interaction",
                    tag="unsorted",
                    params=[_path()],
                    schema={"type": "object"},
                    errors=(401, 403, 404, 409),
                )
            },
            "/api/v1/unsorted/{id}/link": {
                "post": _op(
                    "Link to an existing lead",
                    tag="unsorted",
                    params=[_path()],
                    body={
                        "type": "object",
                        "required": ["lead_id"],
                        "properties": {"lead_id": {"type": "integer"}},
                    },
                    schema={"type": "object"},
                    errors=(400, 401, 403, 404, 409, 415, 422),
                )
            },
            "/api/v1/unsorted/{id}/decline": {
                "post": _op(
                    "Decline as spam",
                    tag="unsorted",
                    params=[_path()],
                    schema={"type": "object"},
                    errors=(401, 403, 404, 409),
                )
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key from `hub apikey create`",
                }
            },
            "responses": {
                "Error": {
                    "description": "error",
                    "content": {"application/json": {"schema": _ref("Error")}},
                }
            },
            "schemas": _schemas(
                sorted({k.capabilities.interaction_kind for k in kinds} | {"note"})
            ),
        },
    }
    spec["paths"].update(report_paths())
    for kind in kinds:
        spec["paths"].update(kind.openapi_paths())
    return spec


def _schemas(interaction_kinds: list[str]) -> dict[str, Any]:
    s = {"type": "string"}
    ns = {"type": ["string", "null"]}
    i = {"type": "integer"}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": s, "message": s, "details": {"type": "object"}},
                }
            },
        },
        "Lead": {
            "type": "object",
            "properties": {
                "id": i,
                "name": ns,
                "phones": {"type": "array", "items": s},
                "phone_extensions": {"type": "object", "additionalProperties": s},
                "emails": {"type": "array", "items": s},
                "identities": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"kind": s, "external_id": s}},
                },
                "source": {
                    "type": ["object", "null"],
                    "description": "the lead's first touch: kind (a channel kind, call, api,"
                    " import), channel and channel_id, at; for forms page, referrer and utm"
                    " (utm_source, utm_medium, utm_campaign, utm_term, utm_content);"
                    " backfilled: true for leads older than the field",
                },
                "name_suggestions": {"type": "array", "items": s},
                "phone_suggestions": {
                    "type": "array",
                    "items": s,
                    "description": "phones seen near the customer's words (an email signature),"
                    " not the lead's: PATCH `phones` with one to add it, PATCH"
                    " `phone_suggestions` without one to dismiss it for good",
                },
                "created_at": s,
                "updated_at": s,
                "merged_into": {"type": ["integer", "null"]},
                "blocked": {"type": "boolean"},
                "external_ids": {"type": "object", "additionalProperties": s},
            },
        },
        "Webhook": {
            "type": "object",
            "properties": {
                "id": i,
                "url": s,
                "events": {"type": "array", "items": s},
                "channels": {"type": "array", "items": s},
                "enabled": {"type": "boolean"},
                "disabled_reason": ns,
                "created_at": s,
                "secret": {"type": "string", "description": "only in the answer to POST"},
            },
        },
        "Call": {
            "type": "object",
            "properties": {
                "id": i,
                "from": s,
                "to": s,
                "direction": {"enum": ["in", "out", None]},
                "status": {
                    "enum": ["ringing", "in_progress", "answered", "missed", "busy", "failed"]
                },
                "duration_s": i,
                "recording_url": ns,
                "extension": ns,
                "operator_id": {"type": ["integer", "null"]},
                "started_at": ns,
                "answered_at": ns,
                "ended_at": ns,
                "cause": ns,
                "lead_id": {"type": ["integer", "null"]},
                "dialog_id": {"type": ["integer", "null"]},
                "interaction_id": {"type": ["integer", "null"]},
            },
        },
        "Interaction": {
            "type": "object",
            "properties": {
                "id": i,
                "lead_id": i,
                "dialog_id": i,
                "channel": s,
                "kind": {"enum": interaction_kinds},
                "direction": {"enum": ["in", "out"]},
                "text": ns,
                "subject": ns,
                "occurred_at": s,
                "external_id": s,
                "attachments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": s, "content_type": s, "size": i, "url": s},
                    },
                },
                "call": {"oneOf": [{"type": "null"}, _ref("Call")]},
                "fields": {"type": "object"},
                "delivery_state": {
                    "enum": [
                        None,
                        "pending",
                        "sent",
                        "delivered",
                        "seen",
                        "failed",
                        "undeliverable",
                    ]
                },
                "delivery_error": ns,
                "author": ns,
                "edited_at": ns,
            },
        },
        "Dialog": {
            "type": "object",
            "properties": {
                "id": i,
                "lead_id": i,
                "channel": s,
                "channel_kind": s,
                "status": {"enum": ["queued", "offered", "assigned", "closed"]},
                "operator_id": {"type": ["integer", "null"]},
                "created_at": s,
                "closed_at": ns,
                "lead": {
                    "type": ["object", "null"],
                    "description": "the dialog's lead, in lists (GET /api/v1/dialogs)",
                },
                "handover": {
                    "type": ["object", "null"],
                    "description": "the latest hand-over: the note written for the receiver"
                    " (a transfer's comment) and the operator who handed it over (a supervisor"
                    " taking it over leaves no comment); null before any",
                    "properties": {
                        "comment": {"type": ["string", "null"]},
                        "by_operator_id": {"type": ["integer", "null"]},
                    },
                },
            },
        },
        "Operator": {
            "type": "object",
            "properties": {
                "id": i,
                "login": s,
                "name": s,
                "role": {"enum": ["operator", "supervisor", "admin"]},
                "skills": {"type": "array", "items": s},
                "max_dialogs": i,
                "extension": {"type": ["string", "null"]},
                "disabled": {"type": "boolean"},
                "created_at": s,
            },
        },
        "AdminChannel": {
            "type": "object",
            "properties": {
                "id": i,
                "kind": s,
                "name": s,
                "enabled": {"type": "boolean"},
                "settings": {"type": "object", "description": "the settings that are not secret"},
                "secrets": {"type": "object", "description": "each secret setting: set or not"},
                "inbound_path": ns,
                "inbound_url": ns,
                "status": {"type": "object"},
                "created_at": s,
            },
        },
        "Queue": {
            "type": "object",
            "properties": {
                "id": i,
                "name": s,
                "strategy": s,
                "offer_timeout_s": i,
                "channels": {"type": "array", "items": s},
                "skills": {"type": "array", "items": s},
                "hours": ns,
                "timezone": s,
                "auto_reply": ns,
                "disabled": {"type": "boolean"},
            },
        },
        "ApiKey": {
            "type": "object",
            "properties": {
                "id": i,
                "name": s,
                "prefix": s,
                "scopes": {"type": "array", "items": s},
                "created_at": s,
                "last_used_at": ns,
                "revoked": {"type": "boolean"},
                "revoked_at": ns,
                "key": {"type": "string", "description": "in the creation's answer only"},
            },
        },
        "FormResult": {
            "type": "object",
            "properties": {"interaction_id": i, "lead_id": i, "dialog_id": i},
        },
    }
