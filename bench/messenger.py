"""Telegram updates posted to the webhook at full speed: the hub (secret checked, update
parsed by aiogram, lead identified, interaction stored, one transaction, then 200) against
a bare aiogram webhook (`SimpleRequestHandler` with a handler that does nothing), in one run.

wrk sends documentation-shaped text-message Updates with unique update and message ids
from 5,000 distinct users, so leads are created early on and matched afterwards.

    python bench/messenger.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BOT_SECRET,
    BOT_TOKEN,
    HUB_CLI,
    ROOT,
    BenchDatabases,
    add_telegram_channel,
    count_rows,
    free_port,
    hub_env,
    interleaved,
    loop_name,
    start_bot_api,
    stop,
)

LUA = r"""
local counter = 0
local tid = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local run = 0
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  run = tonumber(args[1]) or 0
end
request = function()
  counter = counter + 1
  local update_id = run * 1000000000 + tid * 100000000 + counter
  local user = 700000 + (update_id % 5000)
  local body = string.format(
    '{"update_id":%d,"message":{"message_id":%d,"date":1700000000,' ..
    '"from":{"id":%d,"is_bot":false,"first_name":"Ivan","username":"ivan","language_code":"ru"},' ..
    '"chat":{"id":%d,"type":"private","first_name":"Ivan","username":"ivan"},' ..
    '"text":"Hello, I need help"}}', update_id, update_id, user, user)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["X-Telegram-Bot-Api-Secret-Token"] = "bench-secret_token"}, body)
end
"""

HUB = "hub /connectors/telegram (stored)"
BARE = "bare aiogram SimpleRequestHandler (no-op)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench does it)")
    bench = BenchDatabases("bench_tg")
    work, dsns = bench.work, bench.dsns
    script = work / "update.lua"
    script.write_text(LUA)
    bot_api, api_base = start_bot_api()
    env = hub_env(dsns[0], work)
    add_telegram_channel(env, api_base)
    bare_port, hub_port = free_port(), free_port()
    try:
        results = interleaved(
            {
                BARE: (
                    [
                        sys.executable,
                        str(ROOT / "bench" / "bare_aiogram.py"),
                        str(bare_port),
                        BOT_TOKEN,
                        BOT_SECRET,
                        api_base,
                    ],
                    dict(os.environ),
                    f"http://127.0.0.1:{bare_port}/webhook",
                    f"http://127.0.0.1:{bare_port}/webhook",
                ),
                HUB: (
                    [*HUB_CLI, "serve", "--port", str(hub_port)],
                    env,
                    f"http://127.0.0.1:{hub_port}/healthz",
                    f"http://127.0.0.1:{hub_port}/connectors/telegram/bot",
                ),
            },
            args.rounds,
            args.seconds,
            args.connections,
            script,
        )
        stored = count_rows(dsns[0], "interactions")
    finally:
        stop(bot_api)
        bench.close()

    print(
        f"telegram webhook ingest, median of {args.rounds} interleaved {args.seconds}s runs each, "
        f"wrk -t2 -c{args.connections}, "
        f"event loop: {loop_name()}, {os.cpu_count()} cores"
    )
    for name, (rate, bad, p99) in results.items():
        print(f"  {name:52s} {rate:9.0f} updates/s   p99 {p99:>8s}   non-2xx {bad}")
    print(f"  interactions stored by the hub over all runs: {stored}")
    print(f"  ratio hub / bare: {results[HUB][0] / results[BARE][0]:.2f}")


if __name__ == "__main__":
    main()
