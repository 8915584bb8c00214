"""The bare baseline for the messenger benchmark: aiogram's own webhook handler
(`SimpleRequestHandler`, secret token checked) with a dispatcher whose only handler does
nothing. Run by bench/messenger.py as its own process."""

from __future__ import annotations

import asyncio
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web


async def main(port: int, token: str, secret: str, api_base: str) -> None:
    bot = Bot(token=token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def nothing(message: Message) -> None:
        return None

    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, secret_token=secret).register(app, path="/webhook")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    args = (int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
    try:
        import uvloop

        uvloop.run(main(*args))
    except ImportError:
        asyncio.run(main(*args))
