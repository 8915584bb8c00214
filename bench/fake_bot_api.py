"""A minimal Bot API stand-in for benchmarks: answers every method with ok, so the hub's
webhook registration succeeds without reaching the internet; `sendMessage` answers with a
Message shaped as the Bot API documents it, so replies sent through it count as sent."""

from __future__ import annotations

import itertools
import sys
import time

from aiohttp import web

_message_ids = itertools.count(1)


async def method(request: web.Request) -> web.Response:
    if request.match_info["method"].lower() != "sendmessage":
        return web.json_response({"ok": True, "result": True})
    sent = (
        dict(await request.post())
        if request.content_type != "application/json"
        else await request.json()
    )
    chat_id = int(str(sent.get("chat_id", 0)))
    message = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private"},
        "text": str(sent.get("text", "")),
    }
    return web.json_response({"ok": True, "result": message})


if __name__ == "__main__":
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", method)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
