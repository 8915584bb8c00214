"""The floor for routing latency: a webhook handler that hands each message straight to one
of the connected websockets, round robin, with no database and no routing.

Plain aiohttp takes the webhook; the `websockets` library serves the operators' sockets on
the next port. It speaks just enough of the hub's frames (`hello`, `dialog.offered`,
`call.ringing`) for bench/routing.py and bench/calls.py to drive it exactly as they drive
the hub.

    python bench/bare_fanout.py PORT     (websockets on PORT + 1)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys

from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

clients: list[ServerConnection] = []
_turn = itertools.count()
_dialog = itertools.count(1)


async def operator(ws: ServerConnection) -> None:
    clients.append(ws)
    try:
        await ws.send(json.dumps({"type": "hello", "dialogs": [], "offers": []}))
        async for _frame in ws:
            continue  # presence and accept frames need no answer here; reading keeps them flowing
    finally:
        clients.remove(ws)


async def webhook(request: web.Request) -> web.Response:
    update = await request.json()
    user = str(update["message"]["from"]["id"])
    if clients:
        ws = clients[next(_turn) % len(clients)]
        frame = {
            "type": "dialog.offered",
            "dialog": {"id": next(_dialog)},
            "lead": {"identities": [{"kind": "telegram", "external_id": user}]},
        }
        await ws.send(json.dumps(frame))
    return web.Response()


async def call_event(request: web.Request) -> web.Response:
    """A Zammad-style call event: a newCall pops a card at one socket, as the hub's
    `call.ringing` does for the ringing extension's operator."""
    event = await request.json()
    if event.get("event") == "newCall" and clients:
        ws = clients[next(_turn) % len(clients)]
        frame = {"type": "call.ringing", "call": {"from": event["from"]}, "lead": None}
        await ws.send(json.dumps(frame))
    return web.json_response({})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_post("/connectors/telegram/bot", webhook)
    app.router.add_post("/connectors/pbx/cti", call_event)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with serve(operator, "127.0.0.1", port + 1):
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main(int(sys.argv[1])))
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
