"""The aiohttp application: routes, the JSON error middleware, health endpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST

from hub import tracing
from hub.api import apikeys_admin, channels_admin, operators_admin, queues_admin
from hub.api import calls as calls_api
from hub.api import canned as canned_api
from hub.api import dialogs as dialogs_api
from hub.api import leads as leads_api
from hub.api import reports as reports_api
from hub.api import search as search_api
from hub.api import sessions as sessions_api
from hub.api import unsorted as unsorted_api
from hub.api import webhooks as webhooks_api
from hub.api.openapi import build_spec
from hub.context import HUB_KEY, Hub, hub_of
from hub.errors import ApiError, HubError, code_for_status, error_response
from hub.metrics import token_matches
from hub.outage import RETRY_AFTER_S
from hub.ports.connector import ConnectorDescriptor, InboundRoute
from hub.text import usable
from storage.database import DATABASE_DOWN, DATABASE_ONLY

log = logging.getLogger(__name__)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as error:
        return error_response(error)
    except DATABASE_DOWN as exc:
        hub = hub_of(request)
        if not isinstance(exc, DATABASE_ONLY) and await hub.outage.database_answers():
            # A plain OSError while the database answers is the disk or a socket of ours,
            # not an outage: a bug to log with its traceback.
            log.exception("unhandled error on %s %s", request.method, request.path)
            return web.json_response(
                {"error": {"code": "internal", "message": "internal error; see the hub's log"}},
                status=500,
            )
        hub.outage.failed(exc)
        return error_response(
            ApiError(
                503,
                "unavailable",
                "the hub's database is unavailable; retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = code_for_status(exc.status)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(ApiError(exc.status, code, exc.reason, headers=headers))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(
            {"error": {"code": "internal", "message": "internal error; see the hub's log"}},
            status=500,
        )


@web.middleware
async def trace_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Each request runs under a trace id (the caller's `traceparent` or `X-Request-Id` when
    well formed, else a new one), answered back in `X-Request-Id`, so a provider's or a
    CRM's support can name the request whose log lines to look for."""
    trace = tracing.trace_from_headers(
        request.headers.get("traceparent"), request.headers.get("X-Request-Id")
    )
    token = tracing.begin(trace)
    try:
        response = await handler(request)
    finally:
        tracing.end(token)
    if not response.prepared:
        response.headers["X-Request-Id"] = trace
    return response


@web.middleware
async def refuse_unusable_urls(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A NUL or a lone surrogate in the path or the query is a 400 before any handler
    passes it to PostgreSQL, which cannot store either."""
    if not usable(request.path) or not all(
        usable(k) and usable(v) for k, v in request.query.items()
    ):
        raise ApiError(400, "invalid_text", "the URL contains a NUL character or a lone surrogate")
    return await handler(request)


STATIC = Path(__file__).parent / "static"


# Customer text is never markup: no inline script, nothing from elsewhere, never framed.
CONSOLE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob: data:; connect-src 'self'; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer says not to sniff types, leak the URL or be framed; every console
    path (`/`, `/console/index.html`, its scripts) carries the console's policy."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path == "/" or request.path.startswith("/console/"):
        headers["Content-Security-Policy"] = CONSOLE_POLICY
        headers.setdefault("Cache-Control", "no-cache")
    elif request.path.startswith("/api/v1/attachments/"):
        # A customer's file (an HTML page, an SVG) never runs as part of the hub's origin.
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"


async def console_index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


# The console's files, read once: a path not in this list is a JSON 404 (aiohttp's static
# route answers a missing file with an empty body after every middleware has run).
CONSOLE_FILES = frozenset(
    p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()
)


async def console_file(request: web.Request) -> web.FileResponse:
    name = request.match_info["filename"]
    if name not in CONSOLE_FILES:
        raise ApiError(404, "not_found", "no such console file")
    return web.FileResponse(STATIC / name)


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(2):
            await hub_of(request).pool.fetchval("SELECT 1")
    except Exception:  # any failure to answer means not ready
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)
    return web.json_response({"status": "ok", "database": "up"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus' text exposition of this node; with `HUB_METRICS_TOKEN` set, only for a
    scraper that presents it as a bearer token."""
    hub = hub_of(request)
    token = hub.settings.metrics_token
    if token and not token_matches(token, request.headers.get("Authorization")):
        raise ApiError(
            401,
            "unauthorized",
            "GET /metrics needs Authorization: Bearer <HUB_METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = await hub.metrics.render(
        hub.pool,
        sockets=sum(len(s) for s in hub.gateway.sockets.values()),
        runners=len(hub.channel_runner.running),
    )
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


SCHEMAS = Path(__file__).parent / "schemas"


async def domain_event_schema(request: web.Request) -> web.FileResponse:
    """The JSON Schema of the domain-event log's rows, which webhooks and reports follow."""
    return web.FileResponse(
        SCHEMAS / "domain-events.json",
        headers={"Content-Type": "application/schema+json", "Cache-Control": "no-cache"},
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec(hub_of(request).kinds.values()))


def inbound_handler(descriptor: ConnectorDescriptor, route: InboundRoute) -> Handler:
    """An aiohttp handler for one of a connector's routes: the `{channel}` in the path must
    name an enabled channel of the descriptor's kind."""
    kind = descriptor.kind
    interaction_kind = descriptor.capabilities.interaction_kind

    async def handle(request: web.Request) -> web.StreamResponse:
        hub = hub_of(request)
        try:
            name = request.match_info["channel"]
            channel = await hub.channels.get(name)
            if channel is None or channel.kind != kind or not channel.enabled:
                raise ApiError(
                    404, "unknown_channel", f"no enabled {kind} channel named {name[:64]!r}"
                )
            response = await route.handle(hub.connectors[kind], request, channel)
        except (HubError, web.HTTPException) as exc:
            if 400 <= exc.status < 500:
                hub.metrics.rejected(interaction_kind)
            raise
        if 400 <= response.status < 500:
            hub.metrics.rejected(interaction_kind)
        return response

    handle.__name__ = f"{kind}_{route.method.lower()}"
    return handle


async def background_work(app: web.Application) -> AsyncIterator[None]:
    """The node's workers live as long as the app: channel runners, the outbound
    dispatcher and the media fetcher; connectors' sessions are closed after them."""
    hub = app[HUB_KEY]
    await hub.bus.start()
    tasks = [
        asyncio.create_task(hub.channel_runner.run(), name="channel-runner"),
        asyncio.create_task(hub.outbound.run(), name="outbound-dispatcher"),
        asyncio.create_task(hub.media.run(), name="media-fetcher"),
        asyncio.create_task(hub.router.run(), name="router"),
        asyncio.create_task(hub.gateway.run(), name="operator-gateway"),
        asyncio.create_task(hub.webhooks.run(), name="webhook-dispatcher"),
        asyncio.create_task(hub.facts.run(), name="report-facts"),
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    await hub.bus.close()
    await hub.outage.close()
    await hub.outbound.typing_relay.close()
    for connector in hub.connectors.values():
        await connector.close()


async def release_channels(app: web.Application) -> None:
    """At once on SIGTERM (before the requests in flight are waited for): this node's
    channels go to the other nodes, which hear of it on the bus."""
    await app[HUB_KEY].channel_runner.release()


def build_app(hub: Hub, *, background: bool = True) -> web.Application:
    # The per-endpoint limits in hub.httputil are the real ones; this ceiling only stops
    # aiohttp's own readers from buffering anything larger.
    ceiling = (
        hub.settings.max_body_bytes + hub.settings.max_form_files * hub.settings.max_upload_bytes
    )
    app = web.Application(
        middlewares=[trace_requests, errors_as_json, refuse_unusable_urls], client_max_size=ceiling
    )
    app[HUB_KEY] = hub
    if background:
        app.cleanup_ctx.append(background_work)
    app.on_shutdown.append(release_channels)
    app.on_shutdown.append(hub.gateway.shutdown)
    app.on_response_prepare.append(security_headers)
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    r.add_get("/api/v1/openapi.json", openapi)
    r.add_get("/api/v1/schemas/domain-events.json", domain_event_schema)
    for descriptor in hub.kinds.values():
        for route in descriptor.routes:
            r.add_route(route.method, route.path, inbound_handler(descriptor, route))
    r.add_post("/api/v1/auth/login", sessions_api.login)
    r.add_post("/api/v1/auth/logout", sessions_api.logout)
    r.add_get("/api/v1/me", sessions_api.me)
    r.add_get("/api/v1/operators", sessions_api.list_operators)
    r.add_post("/api/v1/operators", operators_admin.create_operator)
    r.add_get("/api/v1/channel-kinds", channels_admin.list_kinds)
    r.add_get("/api/v1/channels", channels_admin.list_channels)
    r.add_post("/api/v1/channels", channels_admin.create_channel)
    r.add_get(r"/api/v1/channels/{id:[0-9]+}", channels_admin.get_channel)
    r.add_patch(r"/api/v1/channels/{id:[0-9]+}", channels_admin.update_channel)
    r.add_delete(r"/api/v1/channels/{id:[0-9]+}", channels_admin.remove_channel)
    r.add_get("/api/v1/queues", queues_admin.list_queues)
    r.add_post("/api/v1/queues", queues_admin.create_queue)
    r.add_get(r"/api/v1/queues/{id:[0-9]+}", queues_admin.get_queue)
    r.add_patch(r"/api/v1/queues/{id:[0-9]+}", queues_admin.update_queue)
    r.add_delete(r"/api/v1/queues/{id:[0-9]+}", queues_admin.remove_queue)
    r.add_get("/api/v1/apikeys", apikeys_admin.list_keys)
    r.add_post("/api/v1/apikeys", apikeys_admin.create_key)
    r.add_get(r"/api/v1/apikeys/{id:[0-9]+}", apikeys_admin.get_key)
    r.add_patch(r"/api/v1/apikeys/{id:[0-9]+}", apikeys_admin.update_key)
    r.add_delete(r"/api/v1/apikeys/{id:[0-9]+}", apikeys_admin.revoke_key)
    r.add_get(r"/api/v1/operators/{id:[0-9]+}", operators_admin.get_operator)
    r.add_patch(r"/api/v1/operators/{id:[0-9]+}", operators_admin.update_operator)
    r.add_delete(r"/api/v1/operators/{id:[0-9]+}", operators_admin.disable_operator)
    r.add_get("/ws/operator", hub.gateway.handle)
    r.add_get("/", console_index)
    r.add_get("/console/{filename:.+}", console_file)
    r.add_get("/favicon.ico", favicon)
    r.add_get("/api/v1/search", search_api.search)
    r.add_get("/api/v1/canned-responses", canned_api.list_canned)
    r.add_get("/api/v1/reports/metrics", reports_api.metric_definitions)
    r.add_get("/api/v1/reports/summary", reports_api.summary)
    r.add_get("/api/v1/reports/series", reports_api.series)
    r.add_get("/api/v1/reports/heatmap", reports_api.heatmap)
    r.add_get("/api/v1/reports/dialogs", reports_api.dialogs)
    r.add_post("/api/v1/canned-responses", canned_api.create_canned)
    r.add_get(r"/api/v1/canned-responses/{id:[0-9]+}", canned_api.get_canned)
    r.add_patch(r"/api/v1/canned-responses/{id:[0-9]+}", canned_api.update_canned)
    r.add_delete(r"/api/v1/canned-responses/{id:[0-9]+}", canned_api.delete_canned)
    r.add_get("/api/v1/leads", leads_api.list_leads)
    r.add_post("/api/v1/leads", leads_api.upsert_lead)
    r.add_get(r"/api/v1/leads/{id:[0-9]+}", leads_api.get_lead)
    r.add_patch(r"/api/v1/leads/{id:[0-9]+}", leads_api.patch_lead)
    r.add_get(r"/api/v1/leads/{id:[0-9]+}.vcf", leads_api.lead_as_vcard)
    r.add_post(r"/api/v1/leads/{id:[0-9]+}/merge", leads_api.merge_lead)
    r.add_post(r"/api/v1/leads/{id:[0-9]+}/unmerge", leads_api.unmerge_lead)
    r.add_get(r"/api/v1/leads/{id:[0-9]+}/duplicates", leads_api.lead_duplicates)
    r.add_get(r"/api/v1/leads/{id:[0-9]+}/interactions", leads_api.lead_interactions)
    r.add_get(r"/api/v1/leads/{id:[0-9]+}/timeline", leads_api.lead_timeline)
    r.add_post(r"/api/v1/leads/{id:[0-9]+}/messages", leads_api.send_to_lead)
    r.add_get("/api/v1/dialogs", dialogs_api.list_dialogs)
    r.add_get(r"/api/v1/dialogs/{id:[0-9]+}", dialogs_api.get_dialog)
    r.add_post(r"/api/v1/dialogs/{id:[0-9]+}/messages", dialogs_api.send_message)
    r.add_post(r"/api/v1/dialogs/{id:[0-9]+}/notes", dialogs_api.add_note)
    r.add_post(r"/api/v1/dialogs/{id:[0-9]+}/transfer", dialogs_api.transfer_dialog)
    r.add_post(r"/api/v1/dialogs/{id:[0-9]+}/close", dialogs_api.close_dialog)
    r.add_get(r"/api/v1/attachments/{id:[0-9]+}", dialogs_api.get_attachment)
    r.add_get("/api/v1/calls", calls_api.list_calls)
    r.add_get("/api/v1/webhooks", webhooks_api.list_webhooks)
    r.add_post("/api/v1/webhooks", webhooks_api.create_webhook)
    r.add_delete(r"/api/v1/webhooks/{id:[0-9]+}", webhooks_api.delete_webhook)
    r.add_patch(r"/api/v1/webhooks/{id:[0-9]+}", webhooks_api.enable_webhook)
    r.add_get(r"/api/v1/webhooks/{id:[0-9]+}/deliveries", webhooks_api.webhook_deliveries)
    r.add_post(r"/api/v1/webhooks/{id:[0-9]+}/replay", webhooks_api.replay_webhook)
    r.add_get("/api/v1/unsorted", unsorted_api.list_unsorted)
    r.add_post(r"/api/v1/unsorted/{id:[0-9]+}/accept", unsorted_api.accept_unsorted)
    r.add_post(r"/api/v1/unsorted/{id:[0-9]+}/link", unsorted_api.link_unsorted)
    r.add_post(r"/api/v1/unsorted/{id:[0-9]+}/decline", unsorted_api.decline_unsorted)
    return app
