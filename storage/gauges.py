"""The levels `GET /metrics` reports from the database: dialogs waiting per queue and the
oldest wait (every queue, at 0 when none waits, so a dashboard's line never breaks), operators by presence, the webhook backlog. One statement, every part of it
on an index, so a scrape every few seconds costs the database next to nothing."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from storage.desk import OPEN_DIALOG
from storage.operators import FRESH

# The queue a waiting dialog is in, as the router picks it: the one it was sent to, else
# the queue naming its channel, else the first naming none (removed ones left out), else the built-in `default`.
QUEUE_OF = """COALESCE(
    (SELECT q.name FROM queues q WHERE q.id = d.queue_id AND q.disabled_at IS NULL),
    (SELECT q.name FROM queues q WHERE c.name = ANY(q.channels) AND q.disabled_at IS NULL
      ORDER BY q.id LIMIT 1),
    (SELECT q.name FROM queues q WHERE cardinality(q.channels) = 0 AND q.disabled_at IS NULL
      ORDER BY q.id LIMIT 1),
    'default')"""


@dataclass(frozen=True, slots=True)
class Levels:
    queues: list[tuple[str, int, float]]  # queue name, dialogs waiting, oldest wait (s)
    operators: dict[str, int]  # presence -> operators
    webhooks_pending: int
    webhooks_dead: int


async def read(pool: asyncpg.Pool) -> Levels:
    row = await pool.fetchrow(
        f"""SELECT
              (SELECT COALESCE(jsonb_agg(jsonb_build_array(name, COALESCE(w.waiting, 0),
                                                           COALESCE(w.oldest_s, 0))), '[]')
                 FROM (SELECT q.name FROM queues q WHERE q.disabled_at IS NULL
                       UNION
                       SELECT 'default' WHERE NOT EXISTS (
                           SELECT 1 FROM queues q
                            WHERE q.disabled_at IS NULL AND cardinality(q.channels) = 0)) n
                 FULL JOIN (
                       SELECT {QUEUE_OF} AS name, count(*) AS waiting,
                              extract(epoch FROM now() - min(d.queued_at))::float8 AS oldest_s
                         FROM dialogs d JOIN channels c ON c.id = d.channel_id
                        WHERE {OPEN_DIALOG} AND d.status <> 'assigned'
                        GROUP BY 1) w USING (name)) AS queues,
              (SELECT COALESCE(jsonb_object_agg(s.status, s.n), '{{}}')
                 FROM (SELECT p.status, count(*) AS n FROM operator_presence p
                        WHERE {FRESH} AND p.status <> 'offline' GROUP BY 1) s) AS operators,
              (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS pending,
              (SELECT count(*) FROM webhook_deliveries WHERE status = 'dead') AS dead"""
    )
    assert row is not None
    return Levels(
        queues=[(str(n), int(w), float(o)) for n, w, o in row["queues"]],
        operators={str(k): int(v) for k, v in row["operators"].items()},
        webhooks_pending=int(row["pending"]),
        webhooks_dead=int(row["dead"]),
    )
