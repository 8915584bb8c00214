"""`/ws/operator`: each operator's live channel.

The socket is a view of PostgreSQL, not a store: `hello` carries the operator's whole
current state (own open dialogs with unread counts, pending offers), so a dropped and
re-established connection loses nothing. Frames are flat JSON objects with a `type`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

import asyncpg
from aiohttp import WSCloseCode, WSMsgType, web

from hub.api.shapes import dialog_json, interaction_json, lead_json, operator_json
from hub.desk import Desk
from hub.domain import Notice, Operator
from hub.errors import HubError
from hub.httputil import handover_comment, is_id
from hub.notify import Publish
from hub.outbound import OutboundService
from hub.socket_outbox import SocketOutbox
from hub.text import usable
from hub.wakeup import sleep_until_woken
from routing.router import Router
from storage import calls as calls_store
from storage import channels, dialogs, interactions, leads, operators
from storage import routing as routing_store
from storage.apikeys import OPERATOR_TOKEN_PREFIX, hash_key
from storage.database import DATABASE_UNAVAILABLE, report_unavailable

log = logging.getLogger(__name__)

PRESENCE = {"online", "away", "offline"}
Frame = dict[str, Any]
FrameType = Literal[
    "presence",
    "accept",
    "decline",
    "send",
    "transfer",
    "take_over",
    "close",
    "read",
    "watch",
    "typing",
    "ping",
]
FrameHandler = Callable[[web.WebSocketResponse, Operator, Frame], Awaitable[None]]
MAX_TEXT = 4096
# The console shows its login form on this close code (a revoked or expired token).
SESSION_ENDED = 4401
# How often the tokens of open sockets are checked again, in case a revocation's notice
# was lost between nodes.
SESSION_CHECK_S = 30.0
# Presence changes within this window reach each console as one frame: a node restarting
# brings back hundreds of operators at once, and one frame per change to every console
# would be their count squared.
PRESENCE_FOLD_S = 0.1
# The supervisors' desk is pushed on changes, at most this often.
DESK_EVERY_S = 0.5


class OperatorGateway:
    def __init__(
        self,
        pool: asyncpg.Pool,
        router: Router,
        outbound: OutboundService,
        grace: float = 15.0,
        publish: Publish | None = None,
    ) -> None:
        self.pool = pool
        self.publish = publish
        self.grace = grace
        self.router = router
        self.outbound = outbound
        self.sockets: dict[int, set[web.WebSocketResponse]] = {}
        # Supervisors' sockets, each with the time zone its "today" is counted in.
        self.supervisors: dict[web.WebSocketResponse, str] = {}
        # Sockets monitoring a dialog they do not hold (a supervisor's desk): socket ->
        # (its operator, the dialog).
        self._watching: dict[web.WebSocketResponse, tuple[int, int]] = {}
        self.desk = Desk(pool, router, self.dialog_summaries)
        self._leaving: set[asyncio.Task[None]] = set()
        self._leaving_sockets: set[asyncio.Task[bool]] = set()
        self._state_dirty = asyncio.Event()
        self._outboxes: dict[web.WebSocketResponse, SocketOutbox] = {}
        self._tokens: dict[web.WebSocketResponse, int] = {}
        self._presence: dict[int, str] = {}  # changes waiting for the fold window to end
        self._presence_flush: asyncio.TimerHandle | None = None
        self._handlers: dict[str, FrameHandler] = {
            kind: getattr(self, f"_on_{kind}") for kind in get_args(FrameType)
        }

    # -- frames built from the database ------------------------------------------------

    async def dialog_summaries(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Dialogs as the console lists them (with the lead, unread count and last text),
        in three queries however many there are."""
        if not ids:
            return {}
        async with self.pool.acquire() as conn:
            found = await dialogs.get_many(conn, ids)
            people = await leads.get_many(conn, [d.lead_id for d in found])
            reading = await dialogs.reading_state(conn, ids)
            calls = [d.id for d in found if d.channel_kind == "pbx"]
            callbacks = await calls_store.callbacks_of_dialogs(conn, calls) if calls else {}
        summaries: dict[int, dict[str, Any]] = {}
        for dialog in found:
            body = dialog_json(dialog)
            lead = people.get(dialog.lead_id)
            body["lead"] = lead_json(lead) if lead else None
            body.update(
                reading.get(
                    dialog.id,
                    {"unread": 0, "last_text": None, "last_at": None, "waiting_since": None},
                )
            )
            # A missed call's dialog is a task: call the customer back.
            body["callback"] = callbacks.get(dialog.id)
            summaries[dialog.id] = body
        return summaries

    async def dialog_summary(self, dialog_id: int) -> dict[str, Any] | None:
        return (await self.dialog_summaries([dialog_id])).get(dialog_id)

    async def hello(self, operator: Operator) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            own = await routing_store.open_dialogs_of(conn, operator.id)
            offers = await routing_store.offers_to(conn, operator.id)
            presence = await operators.presence(conn, operator.id)
            every_channel = await channels.list_all(conn)
        summaries = await self.dialog_summaries(own + [o["id"] for o in offers])
        offered = [
            {
                "dialog": summaries[o["id"]],
                "lead": summaries[o["id"]]["lead"],
                "expires_in_s": round(o["expires_in"], 1),
            }
            for o in offers
            if o["id"] in summaries
        ]
        return {
            "type": "hello",
            "operator": operator_json(operator),
            "presence": presence,
            "dialogs": [summaries[d] for d in own if d in summaries],
            "offers": offered,
            "queues": sorted(q.name for q in await self.router.queues()),
            # Where the console can write to a lead first (to one of its email addresses).
            "write_first": [
                c.name for c in every_channel if c.enabled and self._writes_first(c.kind)
            ],
        }

    def _writes_first(self, kind: str) -> bool:
        descriptor = self.outbound.kinds.get(kind)
        return descriptor is not None and descriptor.capabilities.writes_first is not None

    async def push_desk(self) -> None:
        """The desk to every supervisor's socket on this node, in each one's time zone."""
        if not self.supervisors:
            return
        frames = await self.desk.state(self.supervisors.values())
        texts = {
            zone: json.dumps(frame, ensure_ascii=False, default=str)
            for zone, frame in frames.items()
        }
        for ws, zone in list(self.supervisors.items()):
            if zone in texts:  # else it connected meanwhile, with its own first push
                self._send(ws, texts[zone])

    # -- delivery of notices -------------------------------------------------------------

    async def send_to(self, operator_id: int, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, ensure_ascii=False, default=str)
        for ws in list(self.sockets.get(operator_id, ())):
            self._send(ws, text)

    def _send(self, ws: web.WebSocketResponse, text: str) -> None:
        """Queue a frame for the socket's own writer: never wait for a slow reader."""
        outbox = self._outboxes.get(ws)
        if outbox is not None:
            outbox.put(text)

    def end_sessions(self, token_ids: set[int] | list[int]) -> None:
        """Close the sockets opened with these tokens (revoked or expired) with 4401."""
        for ws, token_id in list(self._tokens.items()):
            if token_id in token_ids:
                self._end_session(ws)

    async def check_sessions(self) -> None:
        """Close sockets whose tokens ended without this node hearing of it."""
        if self._tokens:
            ids = list(set(self._tokens.values()))
            self.end_sessions(await operators.ended_sessions(self.pool, ids))

    def _end_session(self, ws: web.WebSocketResponse) -> None:
        self._tokens.pop(ws, None)
        if not ws.closed:
            task = asyncio.create_task(
                ws.close(code=SESSION_ENDED, message=b"session ended; sign in again")
            )
            self._leaving_sockets.add(task)
            task.add_done_callback(self._leaving_sockets.discard)

    async def on_notice(self, notice: Notice) -> None:
        if notice.kind == "state":
            self._state_dirty.set()
            if notice.dialog_id is not None:
                self._tell_watchers(
                    notice.dialog_id, {"type": "dialog.changed", "dialog_id": notice.dialog_id}
                )
            return
        if notice.kind == "session_ended":
            self.end_sessions({int(notice.data["token_id"])})
            return
        if notice.kind == "webhook.disabled":
            text = json.dumps({"type": "webhook.disabled", **notice.data})
            for ws in list(self.supervisors):
                self._send(ws, text)
            return
        if notice.kind == "presence":
            self._presence[int(notice.data["operator_id"])] = str(notice.data["presence"])
            if self._presence_flush is None:
                loop = asyncio.get_running_loop()
                self._presence_flush = loop.call_later(PRESENCE_FOLD_S, self._flush_presence)
            return
        local = [o for o in notice.operators if o in self.sockets]
        watched = notice.kind in ("interaction", "interaction.updated") and any(
            d == notice.dialog_id for _, d in self._watching.values()
        )
        if not local and not watched:
            return
        if notice.kind == "offered" and notice.dialog_id is not None:
            summary = await self.dialog_summary(notice.dialog_id)
            frame = {
                "type": "dialog.offered",
                "dialog": summary,
                "lead": summary["lead"] if summary else None,
                "expires_in_s": notice.data.get("expires_in_s"),
            }
        elif notice.kind == "assigned" and notice.dialog_id is not None:
            frame = {
                "type": "dialog.assigned",
                "dialog": await self.dialog_summary(notice.dialog_id),
                **notice.data,
            }
        elif notice.kind in ("withdrawn", "unassigned", "closed"):
            frame = {"type": f"dialog.{notice.kind}", "dialog_id": notice.dialog_id, **notice.data}
        elif notice.kind in (
            "lead.merged",
            "lead.unmerged",
            "lead.updated",
            "call.ringing",
            "call.answered",
            "call.ended",
        ):
            frame = {"type": notice.kind, **notice.data}
        elif notice.kind in ("interaction", "interaction.updated"):
            async with self.pool.acquire() as conn:
                item = await interactions.get(conn, int(notice.data["interaction_id"]))
            if item is None:
                return
            frame = {"type": notice.kind, "interaction": interaction_json(item)}
            if notice.dialog_id is not None:
                self._tell_watchers(notice.dialog_id, frame, skip=set(local))
        else:
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "frame %s of dialog %s to operators %s", frame["type"], notice.dialog_id, local
            )
        for operator_id in local:
            await self.send_to(operator_id, frame)

    def _tell_watchers(
        self, dialog_id: int, frame: dict[str, Any], skip: set[int] | None = None
    ) -> None:
        """A frame for the sockets monitoring the dialog (but not for operators who hear of
        it as its holders)."""
        sockets = [
            ws
            for ws, (operator_id, watched) in self._watching.items()
            if watched == dialog_id and not (skip and operator_id in skip)
        ]
        if sockets:
            text = json.dumps(frame, ensure_ascii=False, default=str)
            for ws in sockets:
                self._send(ws, text)

    def _flush_presence(self) -> None:
        """The window's presence changes: `operator.presence` for one, else one
        `operators.presence` frame listing each operator's latest."""
        changes, self._presence, self._presence_flush = self._presence, {}, None
        if len(changes) == 1:
            ((operator_id, presence),) = changes.items()
            frame: dict[str, Any] = {
                "type": "operator.presence",
                "operator_id": operator_id,
                "presence": presence,
            }
        else:
            frame = {
                "type": "operators.presence",
                "changes": [{"operator_id": o, "presence": p} for o, p in changes.items()],
            }
        text = json.dumps(frame)
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                self._send(ws, text)

    async def run(self) -> None:
        """Keeps connected operators' presence fresh and pushes the supervisors' view."""
        last_touch = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._state_dirty.clear()  # before the push: a change during it brings another
            started = loop.time()
            try:
                if loop.time() - last_touch > SESSION_CHECK_S and self.sockets:
                    await operators.touch_presence(self.pool, list(self.sockets))
                    if self._tokens:
                        self.end_sessions(
                            await operators.ended_sessions(
                                self.pool, list(set(self._tokens.values()))
                            )
                        )
                    last_touch = loop.time()
                await self.push_desk()
            except DATABASE_UNAVAILABLE as exc:  # a closed socket's ConnectionError too
                report_unavailable(log, "operator gateway refresh", exc)
            if await sleep_until_woken(self._state_dirty, 2.0):
                # A burst of changes is one push, and a busy hub pushes the desk (hundreds of
                # dialogs) at most every DESK_EVERY_S.
                await asyncio.sleep(max(0.05, DESK_EVERY_S - (loop.time() - started)))

    async def shutdown(self, app: web.Application) -> None:
        """Close operators' sockets when the node stops, so the shutdown does not wait on
        them: 1012 (service restart) tells their consoles to reconnect at once, to another
        node if there is one, and resync from its `hello`."""
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"hub restarting")

    # -- the socket ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")
        session = (
            await operators.session_by_token(self.pool, hash_key(token))
            if token.startswith(OPERATOR_TOKEN_PREFIX)
            else None
        )
        if session is None:
            return web.json_response(
                {"error": {"code": "unauthorized", "message": "log in and pass ?token="}},
                status=401,
            )
        operator, token_id, expires_in = session
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=256 * 1024)
        await ws.prepare(request)
        self._outboxes[ws] = SocketOutbox(ws)
        self._tokens[ws] = token_id
        expiry = asyncio.get_running_loop().call_later(expires_in, self._end_session, ws)
        # A fresh connection (perhaps on another node) keeps a leaving tab's presence alive.
        await operators.touch_presence(self.pool, [operator.id])
        self.sockets.setdefault(operator.id, set()).add(ws)
        supervisor = operator.role in ("supervisor", "admin")
        try:
            # Passed on, not kept: this frame lives as long as the socket, and a busy
            # operator's hello (or a supervisor's first desk) can be large.
            self._outboxes[ws].start(  # ahead of any change heard meanwhile
                json.dumps(await self.hello(operator), ensure_ascii=False, default=str)
            )
            if supervisor:
                zone = await self._zone(request.query.get("tz", ""))
                self.supervisors[ws] = zone
                self._send(
                    ws,
                    json.dumps(
                        (await self.desk.state([zone]))[zone], ensure_ascii=False, default=str
                    ),
                )
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._frame(ws, operator, message.data)
        finally:
            expiry.cancel()
            self._tokens.pop(ws, None)
            outbox = self._outboxes.pop(ws, None)
            if outbox is not None:
                await outbox.close()
            sockets = self.sockets.get(operator.id, set())
            sockets.discard(ws)
            self.supervisors.pop(ws, None)
            self._watching.pop(ws, None)
            if not sockets:
                self.sockets.pop(operator.id, None)
                task = asyncio.create_task(self._left(operator))
                self._leaving.add(task)
                task.add_done_callback(self._leaving.discard)
        return ws

    async def _zone(self, name: str) -> str:
        """The console's time zone if the database knows it (its "today" is read there),
        else UTC."""
        if not name or len(name) > 64:
            return "UTC"
        try:
            await self.pool.fetchval("SELECT now() AT TIME ZONE $1", name)
        except asyncpg.PostgresError:
            return "UTC"
        return name

    async def _left(self, operator: Operator) -> None:
        """The operator's last tab closed: after a grace period (a reload, a network blip)
        with no new connection here or on another node, offline, and their offers go to
        others."""
        left_at = await self.pool.fetchval("SELECT now()")
        await asyncio.sleep(self.grace)
        if operator.id in self.sockets:
            return
        try:
            if await operators.mark_offline_unless_seen(self.pool, operator.id, left_at):
                await self._announce_presence(operator.id, "offline")
                await self.router.presence_changed(operator.id, "offline")
        except DATABASE_UNAVAILABLE:
            log.warning("could not record operator %s leaving", operator.id)

    async def _announce_presence(self, operator_id: int, status: str) -> None:
        """Every console (colleagues' transfer lists, the operator's other tabs) on every
        node hears of a presence change."""
        if self.publish is not None:
            await self.publish(
                Notice("presence", None, data={"operator_id": operator_id, "presence": status})
            )

    async def _error(self, ws: web.WebSocketResponse, error: HubError, ref: Any = None) -> None:
        self._send(ws, json.dumps(error.frame(ref)))

    async def _frame(self, ws: web.WebSocketResponse, operator: Operator, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            await self._error(ws, HubError("malformed_json", "a frame is one JSON object"))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._error(ws, HubError("malformed_frame", "a frame is an object with a type"))
            return
        kind, ref = frame["type"], frame.get("ref")
        handler = self._handlers.get(kind)
        try:
            if handler is None:
                raise HubError("unknown_type", f"unknown frame type {kind[:40]!r}")
            await handler(ws, operator, frame)
        except HubError as error:
            await self._error(ws, error, ref)
        except DATABASE_UNAVAILABLE:
            log.warning("frame %s from operator %s failed", kind, operator.id, exc_info=True)
            await self._error(
                ws, HubError("unavailable", "the hub could not do that now; try again"), ref
            )
        except Exception:
            # A bug must cost one frame, not the operator's socket (an exception escaping the
            # handler would be written into the upgraded stream as an HTTP 500).
            log.exception("frame %s from operator %s failed unexpectedly", kind, operator.id)
            await self._error(ws, HubError("internal", "the hub failed on that frame"), ref)

    @staticmethod
    def _dialog_id(frame: Frame) -> int:
        value = frame.get("dialog_id")
        if not is_id(value):
            raise HubError("invalid_field", "dialog_id must be a dialog's id")
        return value

    async def _held(self, operator: Operator, frame: Frame, verb: str) -> int:
        """The frame's dialog, which the operator must hold (supervisors hold every one)."""
        dialog_id = self._dialog_id(frame)
        if operator.role not in ("supervisor", "admin") and (
            await dialogs.holder(self.pool, dialog_id) != operator.id
        ):
            raise HubError("not_yours", f"you can {verb} only your own dialogs")
        return dialog_id

    # -- one handler per frame type -------------------------------------------------------

    async def _on_presence(
        self, ws: web.WebSocketResponse, operator: Operator, frame: Frame
    ) -> None:
        status = frame.get("status")
        if not isinstance(status, str) or status not in PRESENCE:
            raise HubError("invalid_field", "status is online, away or offline")
        await operators.set_presence(self.pool, operator.id, status)
        # The router counts them first: once the console is told "online", a customer
        # writing that moment is offered to them by the arrival's own route.
        await self.router.presence_changed(operator.id, status)
        self._send(ws, json.dumps({"type": "presence", "status": status}))
        await self._announce_presence(operator.id, status)

    async def _on_accept(self, ws: web.WebSocketResponse, operator: Operator, frame: Frame) -> None:
        await self.router.accept(operator.id, self._dialog_id(frame))

    async def _on_decline(
        self, ws: web.WebSocketResponse, operator: Operator, frame: Frame
    ) -> None:
        await self.router.decline(operator.id, self._dialog_id(frame))

    async def _on_send(self, ws: web.WebSocketResponse, operator: Operator, frame: Frame) -> None:
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip():
            raise HubError("empty_message", "send some text")
        if len(text) > MAX_TEXT:
            raise HubError("text_too_long", f"a message holds at most {MAX_TEXT} characters")
        if not usable(text):
            raise HubError("invalid_text", "the text contains a NUL character or a lone surrogate")
        dialog_id = await self._held(operator, frame, "answer")
        interaction_id = await self.outbound.send(
            dialog_id, text.strip(), [], operator.login, operator_id=operator.id
        )
        ack: dict[str, Any] = {
            "type": "sent",
            "interaction_id": interaction_id,
            "dialog_id": dialog_id,
        }
        if "ref" in frame:
            ack["ref"] = frame["ref"]
        self._send(ws, json.dumps(ack))

    async def _on_transfer(
        self, ws: web.WebSocketResponse, operator: Operator, frame: Frame
    ) -> None:
        dialog_id = await self._held(operator, frame, "transfer")
        target, queue = frame.get("operator_id"), frame.get("queue")
        actor = f"operator:{operator.id}"
        handover = (handover_comment(frame.get("comment")), operator.id)
        if is_id(target):
            await self.router.transfer_to_operator(dialog_id, target, actor, handover)
        elif isinstance(queue, str) and 0 < len(queue) <= 100 and usable(queue):
            await self.router.transfer_to_queue(dialog_id, queue, actor, handover)
        else:
            raise HubError("invalid_field", "name an operator_id or a queue")

    async def _on_take_over(
        self, ws: web.WebSocketResponse, operator: Operator, frame: Frame
    ) -> None:
        """A supervisor takes a dialog from the desk, from whoever held or was offered it."""
        if operator.role not in ("supervisor", "admin"):
            raise HubError("forbidden", "only supervisors take dialogs over")
        await self.router.take_over(self._dialog_id(frame), operator.id)

    async def _on_watch(self, ws: web.WebSocketResponse, operator: Operator, frame: Frame) -> None:
        """A supervisor monitoring a dialog (`dialog_id`; null to stop) hears its new
        messages and changes of hands as they happen, holding it or not."""
        if frame.get("dialog_id") is None:
            self._watching.pop(ws, None)
            return
        if operator.role not in ("supervisor", "admin"):
            raise HubError("forbidden", "only supervisors monitor dialogs")
        self._watching[ws] = (operator.id, self._dialog_id(frame))

    async def _on_typing(self, ws: web.WebSocketResponse, operator: Operator, frame: Frame) -> None:
        """The operator is writing a reply: the customer sees it where the channel can show
        it (at most once in a few seconds per dialog, whatever the console sends)."""
        self.outbound.typing(await self._held(operator, frame, "type in"))

    async def _on_close(self, ws: web.WebSocketResponse, operator: Operator, frame: Frame) -> None:
        await self.router.close(await self._held(operator, frame, "close"), operator.id)

    async def _on_read(self, ws: web.WebSocketResponse, operator: Operator, frame: Frame) -> None:
        await dialogs.mark_read(self.pool, self._dialog_id(frame), operator.id)

    async def _on_ping(self, ws: web.WebSocketResponse, operator: Operator, frame: Frame) -> None:
        self._send(ws, json.dumps({"type": "pong"}))
