"""`hub serve`: HTTP on one port until SIGTERM or SIGINT.

The hub handles both signals itself and shuts down in order (stop accepting, finish
requests in flight, close the pool, release the embedded database), because the embedded
server is stopped only from `atexit`, which a bare SIGTERM would skip.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web

from hub.app import build_app
from hub.config import Settings
from hub.protocol_errors import JsonErrorAppRunner
from hub.runtime import build_hub, database

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with database(settings) as (pool, dsn):
        hub = build_hub(settings, pool, dsn)
        app = build_app(hub)
        runner = JsonErrorAppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
        await site.start()
        # Everything allocated so far (modules, aiogram's pydantic models, the app) lives as
        # long as the process: keep it out of the garbage collector's full passes.
        gc.freeze()
        # A request allocates many short-lived objects and few cycles: collect the young
        # generation less often (CPython's default of 700 runs it every few requests).
        gc.set_threshold(50_000, 20, 20)
        where = f"http://{settings.host}:{settings.port}"
        if settings.log_format == "json":
            log.info("serving on %s", where)  # every line a JSON object: no bare print
        else:
            print(f"hub: serving on {where}", flush=True)
        try:
            await stop.wait()
            log.info("stopping: finishing requests in flight")
        finally:
            await runner.cleanup()
    log.info("stopped")
