"""A CRM's webhook endpoint for bench/webhooks.py: answers 204, counts what it got, and how
long after its event each delivery arrived (the body's `timestamp` is the event's time).

    python bench/webhook_receiver.py PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from datetime import datetime

from aiohttp import web

received = 0
last_at = 0.0  # when the last delivery arrived (time.time())
latencies: list[float] = []


async def hook(request: web.Request) -> web.Response:
    global received, last_at
    body = json.loads(await request.read())
    received += 1
    last_at = time.time()
    stamp = body.get("timestamp")
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):  # the plain client's bodies carry no time
            latencies.append(time.time() - datetime.fromisoformat(stamp).timestamp())
    return web.Response(status=204)


async def stats(request: web.Request) -> web.Response:
    """Counts only: it is asked many times a second while deliveries arrive."""
    return web.json_response({"received": received, "last_at": last_at})


async def latency_list(request: web.Request) -> web.Response:
    return web.json_response({"latencies": latencies})


async def reset(request: web.Request) -> web.Response:
    global received
    received = 0
    latencies.clear()
    return web.json_response({})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_post("/hooks", hook)
    app.router.add_get("/stats", stats)
    app.router.add_get("/latencies", latency_list)
    app.router.add_post("/reset", reset)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main(int(sys.argv[1])))
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
