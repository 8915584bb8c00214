"""The bare baseline of the fan-out benchmark: a `websockets` server that greets each
connection with a `hello` and, when any connection sends a `presence` frame, sends every
connection an `operator.presence` frame with `websockets.broadcast`, as the hub's gateway
does for a presence change. No database, no sessions, nothing else.

    python bench/bare_broadcast.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

clients: set[ServerConnection] = set()


async def operator(ws: ServerConnection) -> None:
    clients.add(ws)
    try:
        await ws.send(json.dumps({"type": "hello", "dialogs": [], "offers": []}))
        async for message in ws:
            frame = json.loads(message)
            if frame.get("type") == "presence":
                change = {
                    "type": "operator.presence",
                    "operator_id": 1,
                    "presence": frame["status"],
                }
                broadcast(clients, json.dumps(change))
    finally:
        clients.discard(ws)


async def main(port: int) -> None:
    async with serve(operator, "127.0.0.1", port, max_size=256 * 1024):
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
    else:
        uvloop.run(main(int(sys.argv[1])))
