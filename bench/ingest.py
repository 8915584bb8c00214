"""Site-form ingest at full speed, end to end, against a bare aiohttp + asyncpg baseline.

Both servers run as their own processes on one PostgreSQL (the embedded one unless
HUB_DATABASE_URL is set), and are loaded in turn by wrk (2 threads, 32 connections) with a
distinct new phone per request, so every hub submission is a first contact: a new lead, a
new dialog and an interaction in one transaction. Prints submissions/s for each and the
ratio, measured in the same run.

    python bench/ingest.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    HUB_CLI,
    ROOT,
    BenchDatabases,
    Steal,
    count_rows,
    free_port,
    hub_env,
    interleaved,
    loop_name,
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
  local phone = string.format("+79%02d%d%06d", run, tid, counter)
  local body = string.format('{"name":"Bench %d","phone":"%s","message":"benchmark submission"}', counter, phone)
  return wrk.format("POST", "/forms/site", {["Content-Type"] = "application/json"}, body)
end
"""

HUB = "hub POST /forms/site (lead + dialog + interaction)"
BARE = "bare aiohttp + asyncpg INSERT"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench does it)")
    bench = BenchDatabases("bench_hub", "bench_bare")
    work, dsns = bench.work, bench.dsns
    hub_dsn, bare_dsn = dsns
    script = work / "submit.lua"
    script.write_text(LUA)
    env = hub_env(hub_dsn, work)
    subprocess.run(
        [*HUB_CLI, "channel", "add", "form", "site", "--set", "rate_limit=0"],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    bare_port, hub_port = free_port(), free_port()
    steal = Steal()
    try:
        results = interleaved(
            {
                BARE: (
                    [
                        sys.executable,
                        str(ROOT / "bench" / "bare_insert.py"),
                        bare_dsn,
                        str(bare_port),
                    ],
                    dict(os.environ),
                    f"http://127.0.0.1:{bare_port}/",
                    f"http://127.0.0.1:{bare_port}/forms/site",
                ),
                HUB: (
                    [*HUB_CLI, "serve", "--port", str(hub_port)],
                    env,
                    f"http://127.0.0.1:{hub_port}/healthz",
                    f"http://127.0.0.1:{hub_port}/forms/site",
                ),
            },
            args.rounds,
            args.seconds,
            args.connections,
            script,
        )
        stolen = steal.share()
        stored = count_rows(hub_dsn, "interactions")
    finally:
        bench.close()

    print(
        f"site-form ingest, median of {args.rounds} interleaved {args.seconds}s runs each, "
        f"wrk -t2 -c{args.connections}, "
        f"event loop: {loop_name()}, {os.cpu_count()} cores;"
        f" the hypervisor took {stolen:.0%} of the CPU meanwhile"
    )
    for name, (rate, bad, p99) in results.items():
        print(f"  {name:52s} {rate:9.0f} req/s   p99 {p99:>8s}   non-2xx {bad}")
    print(f"  interactions stored by the hub over all runs: {stored}")
    print(f"  ratio hub / bare: {results[HUB][0] / results[BARE][0]:.2f}")


if __name__ == "__main__":
    main()
