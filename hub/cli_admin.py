"""The CLI's admin commands: operators edited, disabled, given a new password, listed; API
keys listed and revoked. The same checks and records as the REST API (`hub.admin`), made
by the actor `cli`. A running hub notices a disabled operator's or a reset password's
ended sessions within `hub.gateway.SESSION_CHECK_S` and closes their sockets."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from connectors import registry
from hub.admin import apikeys as admin_keys
from hub.admin import channels as admin_channels
from hub.admin import operators as admin_operators
from hub.admin import queues as admin_queues
from hub.cli_database import with_pool
from hub.cli_help import channel_settings_text
from hub.config import Settings
from hub.errors import ApiError
from storage import apikeys, channels, operators
from storage import queues as queue_store

ACTOR = "cli"

Command = Callable[[argparse.Namespace, Settings], int]


def _run(settings: Settings, action: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    return asyncio.run(with_pool(settings, action))


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    raise ApiError(
        422, "invalid_field", "give the password on standard input with --password-stdin"
    )


async def _operator_id(pool: asyncpg.Pool, login: str) -> int:
    found = await pool.fetchval("SELECT id FROM operators WHERE login = $1", login)
    if found is None:
        raise ApiError(404, "not_found", f"no operator {login!r}")
    return int(found)


def _change(args: argparse.Namespace, settings: Settings, values: dict[str, Any]) -> int:
    async def change(pool: asyncpg.Pool) -> int:
        changed = await admin_operators.update(
            pool, await _operator_id(pool, args.login), values, ACTOR
        )
        o = changed.operator
        state = "disabled" if o.disabled_at else "enabled"
        print(f"operator {o.id} {o.login} ({o.role}, {state})")
        if changed.ended_tokens:
            print(f"{len(changed.ended_tokens)} session(s) ended", file=sys.stderr)
        if changed.released:
            print(f"{len(changed.released)} dialog(s) back in their queues", file=sys.stderr)
        return 0

    return _run(settings, change)


def cmd_operator_edit(args: argparse.Namespace, settings: Settings) -> int:
    values: dict[str, Any] = {}
    if args.name is not None:
        values["name"] = args.name
    if args.role is not None:
        values["role"] = args.role
    if args.skills is not None:
        values["skills"] = [s.strip() for s in args.skills.split(",") if s.strip()]
    if args.max_dialogs is not None:
        values["max_dialogs"] = args.max_dialogs
    if args.no_extension:
        values["extension"] = None
    elif args.extension is not None:
        values["extension"] = args.extension
    if not values:
        raise ApiError(422, "invalid_field", "nothing to change")
    return _change(args, settings, values)


def cmd_operator_disable(args: argparse.Namespace, settings: Settings) -> int:
    return _change(args, settings, {"disabled": True})


def cmd_operator_enable(args: argparse.Namespace, settings: Settings) -> int:
    return _change(args, settings, {"disabled": False})


def cmd_operator_password(args: argparse.Namespace, settings: Settings) -> int:
    return _change(args, settings, {"password": read_password(args.password_stdin)})


def cmd_operator_list(args: argparse.Namespace, settings: Settings) -> int:
    async def show(pool: asyncpg.Pool) -> int:
        for o in await operators.list_all(pool):
            state = "disabled" if o.disabled_at else "enabled"
            skills = ",".join(o.skills) or "-"
            print(
                f"{o.id}\t{o.login}\t{o.name}\t{o.role}\t{state}\tskills={skills}"
                f"\tmax={o.max_dialogs}\text={o.extension or '-'}"
            )
        return 0

    return _run(settings, show)


def cmd_apikey_list(args: argparse.Namespace, settings: Settings) -> int:
    async def show(pool: asyncpg.Pool) -> int:
        for row in await apikeys.list_all(pool):
            key = admin_keys.key_json(row)
            state = "revoked" if key["revoked"] else "live"
            print(
                f"{key['id']}\t{key['name']}\t{key['prefix']}…\t{','.join(key['scopes'])}"
                f"\t{state}\tlast used {key['last_used_at'] or 'never'}"
            )
        return 0

    return _run(settings, show)


def cmd_apikey_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def revoke(pool: asyncpg.Pool) -> int:
        key = await admin_keys.revoke(pool, args.id, ACTOR)
        print(f"api key {key['id']} {key['name']!r} revoked")
        return 0

    return _run(settings, revoke)


def add_operator_commands(operator: Any) -> None:
    """`hub operator edit|disable|enable|password|list`."""
    edit = operator.add_parser("edit", help="change an operator (only what is given)")
    edit.add_argument("login")
    edit.add_argument("--name")
    edit.add_argument("--role", choices=list(admin_operators.ROLES))
    edit.add_argument("--skills", help="comma-separated; replaces the skills")
    edit.add_argument("--max-dialogs", type=int)
    edit.add_argument("--extension")
    edit.add_argument("--no-extension", action="store_true", help="remove the extension")
    edit.set_defaults(func=cmd_operator_edit)
    for name, func, text in (
        ("disable", cmd_operator_disable, "refuse their login, end their sessions, requeue"),
        ("enable", cmd_operator_enable, "let a disabled operator sign in again"),
    ):
        command = operator.add_parser(name, help=text)
        command.add_argument("login")
        command.set_defaults(func=func)
    password = operator.add_parser("password", help="set a new password; sessions end")
    password.add_argument("login")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(func=cmd_operator_password)
    operator.add_parser("list", help="list operators, disabled ones too").set_defaults(
        func=cmd_operator_list
    )


def add_apikey_commands(apikey: Any) -> None:
    """`hub apikey list|revoke`."""
    apikey.add_parser("list", help="list API keys (never the keys)").set_defaults(
        func=cmd_apikey_list
    )
    revoke = apikey.add_parser("revoke", help="revoke an API key at once")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(func=cmd_apikey_revoke)


async def _queue_id(pool: asyncpg.Pool, name: str) -> int:
    for queue in await queue_store.list_all(pool):
        if queue.name == name:
            return queue.id
    raise ApiError(404, "not_found", f"no queue {name!r}")


def cmd_queue_edit(args: argparse.Namespace, settings: Settings) -> int:
    values: dict[str, Any] = {}
    for option, field in (
        ("rename", "name"),
        ("strategy", "strategy"),
        ("offer_timeout", "offer_timeout_s"),
        ("hours", "hours"),
        ("timezone", "timezone"),
        ("auto_reply", "auto_reply"),
    ):
        if getattr(args, option) is not None:
            values[field] = getattr(args, option)
    for option in ("channels", "skills"):
        if getattr(args, option) is not None:
            values[option] = [v.strip() for v in getattr(args, option).split(",") if v.strip()]
    if args.always_open:
        values["hours"] = None
    if args.no_auto_reply:
        values["auto_reply"] = None
    if not values:
        raise ApiError(422, "invalid_field", "nothing to change")

    async def change(pool: asyncpg.Pool) -> int:
        queue = await admin_queues.update(pool, await _queue_id(pool, args.name), values, ACTOR)
        print(f"queue {queue.id} {queue.name}")
        return 0

    return _run(settings, change)


def cmd_queue_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def remove(pool: asyncpg.Pool) -> int:
        await admin_queues.remove(pool, await _queue_id(pool, args.name), ACTOR)
        print(f"queue {args.name} removed; its dialogs go to their channel's queue or the default")
        return 0

    return _run(settings, remove)


def add_queue_commands(queue: Any) -> None:
    """`hub queue edit|remove`."""
    edit = queue.add_parser("edit", help="change a queue (only what is given)")
    edit.add_argument("name")
    edit.add_argument("--rename")
    edit.add_argument("--strategy", choices=list(admin_queues.STRATEGIES))
    edit.add_argument("--offer-timeout", type=int)
    edit.add_argument("--channels", help="comma-separated; replaces the channels")
    edit.add_argument("--skills", help="comma-separated; replaces the skills")
    edit.add_argument(
        "--hours", help="e.g. 'mon-fri 09:00-13:00; mon-fri 14:00-18:00; closed 2026-12-31'"
    )
    edit.add_argument("--always-open", action="store_true", help="remove the hours")
    edit.add_argument("--timezone")
    edit.add_argument("--auto-reply")
    edit.add_argument("--no-auto-reply", action="store_true")
    edit.set_defaults(func=cmd_queue_edit)
    remove = queue.add_parser("remove", help="remove a queue")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_queue_remove)


async def _channel_id(pool: asyncpg.Pool, name: str) -> int:
    channel = await channels.get_by_name(pool, name)
    if channel is None:
        raise ApiError(404, "not_found", f"no channel {name!r}")
    return channel.id


def key_values(pairs: list[str] | None) -> dict[str, str | None]:
    """`--set key=value` pairs (the CLI's way of giving a channel's settings)."""
    values: dict[str, str | None] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ApiError(422, "invalid_field", f"--set takes key=value, got {pair!r}")
        values[key.strip()] = value
    return values


def _channel_change(args: argparse.Namespace, settings: Settings, body: dict[str, Any]) -> int:
    async def change(pool: asyncpg.Pool) -> int:
        channel = await admin_channels.update(
            pool, registry.descriptors(), await _channel_id(pool, args.name), body, ACTOR
        )
        state = "enabled" if channel.enabled else "disabled"
        print(f"channel {channel.id} {channel.name} ({channel.kind}, {state})")
        return 0

    return _run(settings, change)


def cmd_channel_edit(args: argparse.Namespace, settings: Settings) -> int:
    values = key_values(args.set)
    for key in args.unset or []:
        values[key] = None
    body: dict[str, Any] = {}
    if values:
        body["settings"] = values
    if args.rename:
        body["name"] = args.rename
    if not body:
        raise ApiError(422, "invalid_field", "nothing to change")
    return _channel_change(args, settings, body)


def cmd_channel_disable(args: argparse.Namespace, settings: Settings) -> int:
    return _channel_change(args, settings, {"enabled": False})


def cmd_channel_enable(args: argparse.Namespace, settings: Settings) -> int:
    return _channel_change(args, settings, {"enabled": True})


def cmd_channel_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def remove(pool: asyncpg.Pool) -> int:
        deleted = await admin_channels.remove(pool, await _channel_id(pool, args.name), ACTOR)
        print(
            f"channel {args.name} "
            + ("deleted" if deleted else "disabled: its dialogs keep naming it")
        )
        return 0

    return _run(settings, remove)


def add_channel_commands(channel: Any) -> None:
    """`hub channel edit|disable|enable|remove`."""
    edit = channel.add_parser(
        "edit",
        help="change a channel's settings (given ones replace, the rest are kept)",
        description="A running channel restarts with its new settings within seconds.",
        epilog=channel_settings_text(),
    )
    edit.add_argument("name")
    edit.add_argument("--set", action="append", metavar="KEY=VALUE")
    edit.add_argument("--unset", action="append", metavar="KEY")
    edit.add_argument("--rename")
    edit.set_defaults(func=cmd_channel_edit)
    for name, func, text in (
        ("disable", cmd_channel_disable, "stop a channel (its provider requests are refused)"),
        ("enable", cmd_channel_enable, "start a disabled channel again"),
        ("remove", cmd_channel_remove, "delete a channel; one with history is disabled"),
    ):
        command = channel.add_parser(name, help=text)
        command.add_argument("name")
        command.set_defaults(func=func)
