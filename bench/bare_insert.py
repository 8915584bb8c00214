"""The bare baseline: a plain aiohttp handler doing one asyncpg INSERT per request.

Run by bench/ingest.py as its own process, on the same PostgreSQL and the same event loop
choice as the hub, so the ratio measures only what the hub adds.
"""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg
from aiohttp import web


async def main(dsn: str, port: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS submissions (id bigserial PRIMARY KEY, name text, phone text,"
        " message text, created_at timestamptz NOT NULL DEFAULT now())"
    )

    async def handle(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        new_id = await pool.fetchval(
            "INSERT INTO submissions (name, phone, message) VALUES ($1, $2, $3) RETURNING id",
            body.get("name"),
            body.get("phone"),
            body.get("message"),
        )
        return web.json_response({"id": new_id}, status=201)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/forms/site", handle)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main(sys.argv[1], int(sys.argv[2])))
    except ImportError:
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
