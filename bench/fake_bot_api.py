"""A minimal Bot API stand-in for benchmarks: answers every method with ok, so the hub's
webhook registration succeeds without reaching the internet."""

from __future__ import annotations

import sys

from aiohttp import web


async def method(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "result": True})


if __name__ == "__main__":
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", method)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
