"""Report metrics over the fact tables: each defined once, here, in words and in SQL.

Every duration is reported as `{"n", "mean", "p50", "p90"}` over the raw rows of the period
(`percentile_cont`'s, taken in the hub from the rows' values: `_durations`), never as an
average of averages; counts as `{"value"}`. A care cycle, a call, an offer and a lead each
count in the period in which it started (was offered, was made), whatever the zone: periods
are bounds in time computed from local dates by the caller, so a day in `Europe/Moscow` and
a day in UTC are different stretches of time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from storage.database import Conn

COUNT, DURATION, SECONDS, SHARE = "count", "duration", "seconds", "share"
GROUPS = ("operator", "channel", "queue", "source")
INTERVALS = ("hour", "day", "week")


@dataclass(frozen=True, slots=True)
class Source:
    """A fact table as the metrics read it: where each group and filter comes from."""

    name: str
    table: str
    at: str  # the moment that puts a row in a period
    keys: dict[str, str]  # group -> SQL expression (absent: the group does not apply)
    # (the aliases that need it, the join), in order: a join is made only when read.
    joins: tuple[tuple[tuple[str, ...], str], ...] = ()
    # The columns an index holds beside `at` (migrations 0028-0033): a statement that
    # reads no other column of the table is read through that index alone, any other by a
    # bitmap scan of the table (see `_settings`).
    covers: frozenset[str] = frozenset()

    def from_clause(self, sql: str) -> str:
        """The table with the joins that `sql` (the key and the filters) reads from."""
        used = {a for aliases, _ in self.joins for a in aliases if re.search(rf"\b{a}\.", sql)}
        needed = [join for aliases, join in self.joins if used & set(aliases)]
        return " ".join((self.table, *needed))

    def covered(self, sql: str) -> bool:
        """Whether the covering index holds every column of this table that `sql` reads."""
        alias = self.table.split()[1]
        read = set(re.findall(rf"\b{alias}\.(\w+)", sql))
        return bool(self.covers) and read <= self.covers | {self.at.split(".")[1]}


CYCLES = Source(
    "cycles",
    "report_cycles c",
    "c.started_at",
    {
        "operator": "c.operator_id",
        "channel": "c.channel_id",
        "queue": "c.queue_id",
        "source": "c.source",  # the lead's first touch, kept with the fact (0032)
    },
    covers=frozenset(("operator_id", "channel_id", "queue_id", "lead_id", "source", "figures")),
)
RESPONSES = Source(
    "responses",
    "report_responses r",
    "r.started_at",
    {
        "operator": "r.operator_id",
        "channel": "r.channel_id",
        "queue": "r.queue_id",
        "source": "r.source",
    },
    covers=frozenset(("operator_id", "channel_id", "queue_id", "lead_id", "source", "seconds")),
)
CALLS = Source(
    "calls",
    "report_calls k",
    "k.started_at",
    {
        "operator": "k.operator_id",
        "channel": "k.channel_id",
        "queue": "kc.queue_id",
        "source": "k.source",
    },
    ((("kc",), "LEFT JOIN report_cycles kc ON kc.dialog_id = k.dialog_id AND kc.cycle = 1"),),
)
OFFERS = Source(
    "offers",
    "report_offers o",
    "o.offered_at",
    {
        "operator": "o.operator_id",
        # The offer's cycle's, kept with the offer (0033).
        "channel": "o.channel_id",
        "queue": "o.queue_id",
        "source": "o.source",
    },
    covers=frozenset(("operator_id", "channel_id", "queue_id", "source", "outcome")),
)
LEADS = Source(
    "leads",
    "leads l",
    "l.created_at",
    {
        "operator": "lc.operator_id",
        "channel": "(l.source->>'channel_id')::bigint",
        "queue": "lc.queue_id",
        "source": "l.source->>'kind'",
    },
    (
        (
            ("lc",),
            "LEFT JOIN LATERAL (SELECT fc.operator_id, fc.queue_id FROM report_cycles fc"
            " WHERE fc.lead_id = l.id ORDER BY fc.started_at LIMIT 1) lc ON true",
        ),
    ),
    covers=frozenset(("merged_into",)),
)
# Presence is not an event in a period but a stretch across it: the overlap is summed.
PRESENCE = Source(
    "presence",
    "report_presence p",
    "p.started_at",
    {"operator": "p.operator_id"},
)

_ANSWERED = "c.first_response_at IS NOT NULL"
_UNANSWERED = "c.closed_at IS NOT NULL AND c.first_response_at IS NULL"
_MISSED = "k.direction = 'in' AND k.status IN ('missed', 'busy', 'failed')"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    source: Source
    kind: str
    sql: str  # a count's condition, a duration's value, or a share's (numerator, denominator)
    definition: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "leads_new",
            LEADS,
            COUNT,
            "l.merged_into IS NULL",
            "Leads made in the period (a duplicate merged into another lead is not counted). "
            "By channel and source through the lead's first touch. By operator and queue "
            "(and with those filters): leads whose first care cycle started in the period, "
            "by that cycle's operator and queue (a lead made by a CRM or an import counts "
            "there once it first writes).",
        ),
        Metric(
            "dialogs_new",
            CYCLES,
            COUNT,
            "c.cycle = 1",
            "Dialogs created in the period (the first care cycle of each).",
        ),
        Metric(
            "cycles",
            CYCLES,
            COUNT,
            "true",
            "Care cycles started in the period: a dialog's creation or reopening up to its close.",
        ),
        Metric(
            "reopened", CYCLES, COUNT, "c.cycle > 1", "Cycles that began by reopening a dialog."
        ),
        Metric(
            "first_response_s",
            CYCLES,
            DURATION,
            "c.first_response_s",
            "From the start of the cycle to the first public reply written by a human "
            "operator, or the answer of a call. Auto-replies, messages sent through the API "
            "and internal notes never count. Credited to the operator who answered.",
        ),
        Metric(
            "first_response_business_s",
            CYCLES,
            DURATION,
            "c.first_response_bh_s",
            "first_response_s counting only the seconds inside the queue's business hours "
            "(all of them for a queue without hours).",
        ),
        Metric(
            "next_response_s",
            RESPONSES,
            DURATION,
            "r.seconds",
            "After the first response: from each customer message that follows a reply to "
            "the next human reply (or answered call), one value per such wait.",
        ),
        Metric(
            "queue_wait_s",
            CYCLES,
            DURATION,
            "c.queue_wait_s",
            "From the start of the cycle to its first assignment to an operator.",
        ),
        Metric(
            "queue_wait_business_s",
            CYCLES,
            DURATION,
            "c.queue_wait_bh_s",
            "queue_wait_s inside the queue's business hours.",
        ),
        Metric(
            "resolution_s",
            CYCLES,
            DURATION,
            "c.resolution_s",
            "From the start of the cycle to its close (closed cycles only).",
        ),
        Metric(
            "resolution_business_s",
            CYCLES,
            DURATION,
            "c.resolution_bh_s",
            "resolution_s inside the queue's business hours.",
        ),
        Metric(
            "handled",
            CYCLES,
            COUNT,
            _ANSWERED,
            "Cycles a human answered (for an operator: those they answered first).",
        ),
        Metric(
            "unanswered",
            CYCLES,
            COUNT,
            _UNANSWERED,
            "Closed cycles no human ever answered: abandoned in the queue, or assigned and "
            "never answered.",
        ),
        Metric(
            "unanswered_abandoned",
            CYCLES,
            COUNT,
            f"{_UNANSWERED} AND c.first_assigned_at IS NULL",
            "Unanswered cycles closed while still waiting in the queue.",
        ),
        Metric(
            "unanswered_assigned",
            CYCLES,
            COUNT,
            f"{_UNANSWERED} AND c.first_assigned_at IS NOT NULL",
            "Unanswered cycles that an operator held but never answered.",
        ),
        Metric(
            "customer_silent",
            CYCLES,
            COUNT,
            f"c.closed_at IS NOT NULL AND {_ANSWERED}"
            " AND (c.last_customer_at IS NULL OR c.last_customer_at <= c.last_reply_at)",
            "Closed cycles in which the customer wrote nothing after our last reply (counted "
            "apart from unanswered ones).",
        ),
        Metric(
            "transfers",
            CYCLES,
            COUNT,
            "c.transfers > 0",
            "Cycles handed over at least once to another operator or queue.",
        ),
        Metric(
            "calls_answered",
            CALLS,
            COUNT,
            "k.direction = 'in' AND k.answered_at IS NOT NULL",
            "Inbound calls someone answered.",
        ),
        Metric(
            "calls_missed",
            CALLS,
            COUNT,
            _MISSED,
            "Inbound calls that ended unanswered (missed, busy or failed).",
        ),
        Metric(
            "calls_recovered",
            CALLS,
            COUNT,
            # followed_at: the start of the next answered call with the number (0030).
            f"{_MISSED} AND k.followed_at <= k.started_at + make_interval(secs => $recovered)",
            "Missed calls followed by an answered call with the same number, either way "
            "(called back, or the customer called again and got through), within "
            "recovered_within_s seconds (86,400 by default).",
        ),
        Metric(
            "calls_outbound",
            CALLS,
            COUNT,
            "k.direction = 'out'",
            "Calls placed to customers.",
        ),
        Metric(
            "talk_s",
            CALLS,
            DURATION,
            "k.talk_s",
            "Talk time of answered calls, either way, in seconds.",
        ),
        Metric("offers", OFFERS, COUNT, "true", "Offers of a dialog to an operator."),
        Metric(
            "offers_declined",
            OFFERS,
            COUNT,
            "o.outcome = 'declined'",
            "Offers the operator declined.",
        ),
        Metric(
            "offers_expired",
            OFFERS,
            COUNT,
            "o.outcome = 'expired'",
            "Offers that ran out of time unanswered.",
        ),
        Metric(
            "offers_missed_share",
            OFFERS,
            SHARE,
            "o.outcome IN ('declined', 'expired')|o.outcome IS NOT NULL",
            "Of the offers that ended, the share declined or timed out (0 to 1).",
        ),
        Metric(
            "online_s",
            PRESENCE,
            SECONDS,
            "online",
            "Seconds operators were online within the period (from their presence changes); "
            "split by operator only.",
        ),
        Metric(
            "away_s",
            PRESENCE,
            SECONDS,
            "away",
            "Seconds operators were away within the period; split by operator only.",
        ),
    )
}


# The figures of a care cycle as report_cycles.figures packs them (migration 0028): the
# values of these durations, in this order (NaN for none), then the flags, bit k set when
# the k-th condition holds; seven float8 in network order. A statement over cycles whose metrics are all among them
# gathers that one column instead of one aggregate per metric; the conditions are the
# metrics' own SQL, and a test holds both ways of measuring equal.
PACKED_DURATIONS = (
    "c.first_response_s",
    "c.first_response_bh_s",
    "c.queue_wait_s",
    "c.queue_wait_bh_s",
    "c.resolution_s",
    "c.resolution_bh_s",
)
PACKED_FLAGS = (
    "c.cycle = 1",
    "c.cycle > 1",
    _ANSWERED,
    _UNANSWERED,
    f"{_UNANSWERED} AND c.first_assigned_at IS NULL",
    f"{_UNANSWERED} AND c.first_assigned_at IS NOT NULL",
    f"c.closed_at IS NOT NULL AND {_ANSWERED}"
    " AND (c.last_customer_at IS NULL OR c.last_customer_at <= c.last_reply_at)",
    "c.transfers > 0",
    "c.lead_first",
)
_PACKED_WIDTH = len(PACKED_DURATIONS) + 1  # float8 values a cycle: durations, then flags


def _packable(metric: Metric) -> bool:
    if metric.source is not CYCLES:
        return False
    if metric.kind == DURATION:
        return metric.sql in PACKED_DURATIONS
    return metric.kind == COUNT and (metric.sql == "true" or metric.sql in PACKED_FLAGS)


def _unpack(metrics: Sequence[Metric], packed: Sequence[bytes]) -> list[list[Any]]:
    """Each group's raw values (as `_raw` reads them from a statement's own aggregates)
    from the packed figures of its cycles: every group and figure at once, each group a
    run of rows of one array."""
    if not packed:
        return []
    figures = np.frombuffer(b"".join(packed), dtype=">f8").reshape(-1, _PACKED_WIDTH)
    sizes = np.array([len(p) // (8 * _PACKED_WIDTH) for p in packed], dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    # How many cycles of each group have each word of flags, then each bit's count: the
    # words that have it, summed.
    words = 1 << len(PACKED_FLAGS)
    group = np.repeat(np.arange(len(packed)), sizes)
    flags = figures[:, -1].astype(np.int64)
    per_word = np.bincount(group * words + flags, minlength=len(packed) * words)
    has_bit = (np.arange(words)[:, None] >> np.arange(len(PACKED_FLAGS))) & 1
    held_flags = (per_word.reshape(len(packed), words) @ has_bit).T.tolist()
    durations = figures[:, :-1].T.astype(np.float64, order="C")  # a row per duration
    held = ~np.isnan(durations)
    held_counts = np.add.reduceat(held, starts, axis=1, dtype=np.int64)
    columns: list[list[Any]] = []
    for m in metrics:
        if m.kind == COUNT:
            sql = m.sql
            columns.append(sizes.tolist() if sql == "true" else held_flags[PACKED_FLAGS.index(sql)])
            continue
        j = PACKED_DURATIONS.index(m.sql)
        values = durations[j][held[j]]
        ends = np.cumsum(held_counts[j])
        columns.append(
            [
                values[a:b] if b > a else None
                for a, b in zip((ends - held_counts[j]).tolist(), ends.tolist(), strict=True)
            ]
        )
    return [list(raw) for raw in zip(*columns, strict=True)]


@dataclass(frozen=True, slots=True)
class Query:
    """What a report asks for: a stretch of time, filters, and how to split it."""

    since: datetime
    until: datetime
    tz: str = "UTC"
    channel: int | None = None
    queue: int | None = None
    operator: int | None = None
    source: str | None = None
    recovered_within_s: int = 86_400


def _where(source: Source, q: Query, args: list[Any]) -> str:
    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if source is PRESENCE:
        since = arg(q.since)
        parts = [
            f"p.started_at < {arg(q.until)}",
            # The first through the index report_presence_ends; the second leaves out a
            # stretch still open in a period yet to come.
            f"COALESCE(p.ended_at, 'infinity'::timestamptz) > {since}",
            f"COALESCE(p.ended_at, now()) > {since}",
        ]
    else:
        parts = [f"{source.at} >= {arg(q.since)}", f"{source.at} < {arg(q.until)}"]
    for name, value in (
        ("channel", q.channel),
        ("queue", q.queue),
        ("operator", q.operator),
        ("source", q.source),
    ):
        if value is None:
            continue
        key = source.keys.get(name)
        parts.append(f"{key} = {arg(value)}" if key else "false")
    return " AND ".join(parts)


def _aggregates(metrics: Sequence[Metric], q: Query, args: list[Any]) -> list[str]:
    out = []
    for m in metrics:
        if m.kind == COUNT:
            sql = m.sql
            if "$recovered" in sql:
                args.append(q.recovered_within_s)
                sql = sql.replace("$recovered", f"${len(args)}")
            out.append("count(*)" if sql == "true" else f"count(*) FILTER (WHERE {sql})")
        elif m.kind == DURATION:
            # The raw values, 8 bytes each in network order, for `_durations` (NULLs skipped).
            out.append(f"string_agg(float8send(({m.sql})::float8), NULL)")
        elif m.kind == SHARE:  # its two counts, so that groups add up to the whole
            top, bottom = m.sql.split("|")
            out += [f"count(*) FILTER (WHERE {top})", f"count(*) FILTER (WHERE {bottom})"]
        else:  # seconds of presence stretches overlapping the period
            since, until = f"${len(args) + 1}", f"${len(args) + 2}"
            args += [q.since, q.until]
            out.append(
                f"COALESCE(sum(extract(epoch FROM least(COALESCE(p.ended_at, now()), {until})"
                f" - greatest(p.started_at, {since}))) FILTER (WHERE p.status = '{m.sql}'), 0)"
            )
    return out


def _raw(metrics: Sequence[Metric], row: asyncpg.Record) -> list[Any]:
    """Each metric's raw value in a row: a count, a sum of seconds, a share's two counts,
    a duration's values. Raw values of groups add up to the whole period's (`_add`)."""
    found: list[Any] = []
    i = 1  # after the key
    for m in metrics:
        if m.kind == SHARE:
            found.append((row[i], row[i + 1]))
            i += 2
        elif m.kind == DURATION:  # sent as 8 bytes a value, network order
            found.append(np.frombuffer(row[i], dtype=">f8") if row[i] else None)
            i += 1
        else:
            found.append(row[i])
            i += 1
    return found


def _add(metrics: Sequence[Metric], groups: Sequence[list[Any]]) -> list[Any]:
    total: list[Any] = []
    for i, m in enumerate(metrics):
        values = [g[i] for g in groups]
        if m.kind == DURATION:
            held = [v for v in values if v is not None]
            total.append(np.concatenate(held) if held else None)
        elif m.kind == SHARE:
            total.append((sum(v[0] for v in values), sum(v[1] for v in values)))
        else:
            total.append(sum(values))
    return total


def _figures(metrics: Sequence[Metric], raws: Sequence[list[Any]]) -> list[dict[str, Any]]:
    """Each row's figures from its raw values, metric by metric: a duration's for every row
    at once (`_durations`)."""
    found: list[dict[str, Any]] = [{} for _ in raws]
    for i, m in enumerate(metrics):
        column = [raw[i] for raw in raws]
        if m.kind == DURATION:
            cells = _durations(column)
        elif m.kind == COUNT:
            cells = [{"value": int(v)} for v in column]
        elif m.kind == SHARE:
            cells = [{"value": _round(top / bottom) if bottom else None} for top, bottom in column]
        else:
            cells = [{"value": _round(v)} for v in column]
        for figures, cell in zip(found, cells, strict=True):
            figures[m.name] = cell
    return found


def _durations(sent: Sequence[np.ndarray[Any, Any] | None]) -> list[dict[str, Any]]:
    """Count, mean, p50 and p90 of each group's values.

    The percentiles are `percentile_cont`'s: at rank (n - 1) * f of the sorted values,
    interpolated between the two nearest. The database's ordered-set aggregate sorted every
    column of each group and period (some 17 ms each for a month's 80,000 values, most of
    a summary's time); numpy sorts them in under a millisecond (`ndarray.partition` around
    the four ranks read was twice as slow). The groups are worked on together, one array,
    each a slice of it.
    """
    found: list[dict[str, Any]] = [{"n": 0, "mean": None, "p50": None, "p90": None} for _ in sent]
    counts = np.array([0 if s is None else len(s) for s in sent], dtype=np.int64)
    held = np.flatnonzero(counts)
    if not len(held):
        return found
    values = np.concatenate([s for s in sent if s is not None and len(s)], dtype=np.float64)
    ends = np.cumsum(counts)
    starts = ends - counts
    for start, end in zip(starts[held].tolist(), ends[held].tolist(), strict=True):
        values[start:end].sort()
    n, first = counts[held], starts[held]
    figures = {"mean": np.add.reduceat(values, first) / n}
    for name, f in (("p50", 0.5), ("p90", 0.9)):
        rank = (n - 1) * f
        below = rank.astype(np.int64)
        low, high = values[first + below], values[first + np.minimum(below + 1, n - 1)]
        figures[name] = low + (rank - below) * (high - low)
    columns = {name: column.tolist() for name, column in figures.items()}
    for j, (i, count) in enumerate(zip(held.tolist(), n.tolist(), strict=True)):
        found[i] = {"n": count} | {name: round(column[j], 3) for name, column in columns.items()}
    return found


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


# Leads by operator or queue are counted through their first care cycle (see leads_new).
_LEADS_BY_CYCLE = Metric("leads_new", CYCLES, COUNT, "c.lead_first", "")
# How many statements one report runs at once: the fact tables are scanned side by side (a
# summary is several) without taking the pool from the live traffic.
PARALLEL = 3
# A report reads a stretch of each fact table: a bitmap scan reads each page of it once, in
# order, where an index scan (which the planner prefers on tables filled in time order)
# goes from the index to the table row by row, 20-40 % slower over a month of 80,000
# cycles; a statement whose columns a covering index holds (`Source.covered`) is left its
# index-only scan, faster still.
# Statements already run side by side, so parallel workers would only add their start and
# their merge; the durations' groups are built in memory (`work_mem`).
_SETTINGS = """SET LOCAL max_parallel_workers_per_gather = 0;
               SET LOCAL work_mem = '32MB'"""


def _settings(source: Source, sql: str) -> str:
    if source.covered(sql):
        return _SETTINGS
    return f"SET LOCAL enable_indexscan = off; {_SETTINGS}"


class _Total:
    def __repr__(self) -> str:
        return "TOTAL"


TOTAL: Any = _Total()  # the key of the whole period's values, beside its groups


@dataclass(frozen=True, slots=True)
class Ask:
    """One measurement of a report: metrics over a period, split by a group or a bucket."""

    q: Query
    metrics: Sequence[Metric]
    by: str | None = None
    total: bool = False  # the whole period too, under TOTAL, from the same scan


# The rough cost of a fact table's statement, heaviest first: started first, the heavy
# ones run side by side instead of one after the other at the end.
_WEIGHT = {"cycles": 0, "responses": 1, "offers": 2, "leads": 3, "calls": 4, "presence": 5}


@dataclass(frozen=True, slots=True)
class Statement:
    """One fact table's statement of an ask: its metrics, all in one scan."""

    ask: int  # which ask it measures
    metrics: Sequence[Metric]
    sql: str
    args: Sequence[Any]
    key: str  # the SQL of the split ("NULL": none)
    packed: bool  # reads report_cycles.figures (`_unpack`)

    @property
    def source(self) -> Source:
        return self.metrics[0].source


def statements(asks: Sequence[Ask], packing: bool = True) -> list[Statement]:
    """The statements that measure the asks, the heaviest first: one per fact table and
    ask. `packing`: cycles' figures read packed where they can be (`PACKED_FLAGS`); off,
    every metric is its own aggregate (the tests compare the two)."""
    work = []
    for i, ask in enumerate(asks):
        through_cycles = (
            ask.by in ("operator", "queue") or ask.q.operator is not None or ask.q.queue is not None
        )
        sources: dict[str, list[Metric]] = {}
        for m in ask.metrics:
            if m.name == "leads_new" and through_cycles:
                m = _LEADS_BY_CYCLE
            sources.setdefault(m.source.name, []).append(m)
        work += [(_WEIGHT[name], i, group) for name, group in sources.items()]
    work.sort(key=lambda w: (w[0], w[1]))
    return [_statement(i, asks[i], group, packing) for _, i, group in work]


def _statement(i: int, ask: Ask, group: Sequence[Metric], packing: bool) -> Statement:
    source, q, by = group[0].source, ask.q, ask.by
    args: list[Any] = []
    if by is None:
        key = "NULL"
    elif by in GROUPS:
        key = source.keys.get(by, "NULL")
    else:
        key = by.replace("{at}", source.at)
        if "{tz}" in key:
            args.append(q.tz)
            key = key.replace("{tz}", f"${len(args)}")
    packed = packing and all(_packable(m) for m in group)
    aggregates = ["string_agg(c.figures, NULL)"] if packed else _aggregates(group, q, args)
    where = _where(source, q, args)
    sql = (
        f"SELECT {key} AS key, {', '.join(aggregates)}"
        f" FROM {source.from_clause(key + where + ' '.join(aggregates))}"
        f" WHERE {where} GROUP BY 1"
    )
    return Statement(i, group, sql, args, key, packed)


async def measure_all(
    pool: asyncpg.Pool, asks: Sequence[Ask], parallel: int = PARALLEL, packing: bool = True
) -> list[dict[Any, dict[str, Any]]]:
    """Each ask's metrics: key -> metric -> value (a group's id, a bucket, or TOTAL), from
    `statements(asks, packing)`, at most `parallel` at once."""
    work = statements(asks, packing)
    slots = asyncio.Semaphore(parallel)
    tasks = [asyncio.ensure_future(_measure(pool, slots, s, asks[s.ask])) for s in work]
    found: list[dict[Any, dict[str, Any]]] = [{} for _ in asks]
    for s, part in zip(work, await asyncio.gather(*tasks), strict=True):
        for key, values in part.items():
            found[s.ask].setdefault(key, {}).update(values)
    return found


async def measure(
    pool: asyncpg.Pool, q: Query, metrics: Sequence[Metric], by: str | None = None
) -> dict[Any, dict[str, Any]]:
    """The metrics over the query's period, split by `by` (a group name, or an SQL
    expression of a source's `at`, written `{at}`, for time buckets)."""
    return (await measure_all(pool, [Ask(q, metrics, by)]))[0]


async def _measure(
    pool: asyncpg.Pool, slots: asyncio.Semaphore, s: Statement, ask: Ask
) -> dict[Any, dict[str, Any]]:
    group, packed, key, by, total = s.metrics, s.packed, s.key, ask.by, ask.total
    async with slots, pool.acquire() as conn, conn.transaction():
        await conn.execute(_settings(s.source, s.sql))
        rows = await conn.fetch(s.sql, *s.args)

    def read() -> dict[Any, dict[str, Any]]:
        if packed:
            raws = _unpack(group, [row[1] for row in rows])
        else:
            raws = [_raw(group, row) for row in rows]
        if key == "NULL":  # no split (or one this table does not have): the whole period
            return {TOTAL: _figures(group, raws)[0]} if raws and (by is None or total) else {}
        keys = [row["key"] for row in rows]
        if total and raws:  # the whole period beside its groups: their sum
            keys.append(TOTAL)
            raws.append(_add(group, raws))
        return dict(zip(keys, _figures(group, raws), strict=True))

    # The percentiles of a long period are milliseconds of numpy: off the event loop.
    return await asyncio.to_thread(read) if any(m.kind == DURATION for m in group) else read()


def empty(metrics: Sequence[Metric]) -> dict[str, Any]:
    """What a metric says over no rows."""
    return {
        m.name: (
            {"n": 0, "mean": None, "p50": None, "p90": None}
            if m.kind == DURATION
            else {"value": 0 if m.kind in (COUNT, SECONDS) else None}
        )
        for m in metrics
    }


async def names(conn: Conn | asyncpg.Pool, by: str, ids: Sequence[Any]) -> dict[Any, str]:
    """Display names of group keys (an operator's name, a channel's, a queue's)."""
    table = {"operator": "operators", "channel": "channels", "queue": "queues"}.get(by)
    if table is None:
        return {i: str(i) for i in ids if i is not None}
    rows = await conn.fetch(
        f"SELECT id, name FROM {table} WHERE id = ANY($1::bigint[])",
        [i for i in ids if i is not None],
    )
    return {r["id"]: r["name"] for r in rows}


# One row per care cycle: each exported column and the SQL that gives it. The JSON pages
# take the values as they are; the CSV formats them (`_CSV_FORMAT`) in the database.
_EXPORT = {
    "dialog_id": "c.dialog_id",
    "cycle": "c.cycle",
    "lead_id": "c.lead_id",
    "lead_name": "l.name",
    "channel_id": "c.channel_id",
    "channel": "ch.name",
    "channel_kind": "ch.kind",
    "queue_id": "c.queue_id",
    "queue": "qu.name",
    "operator_id": "c.operator_id",
    "operator": "op.name",
    "source": "c.source",
    "started_at": "c.started_at",
    "first_assigned_at": "c.first_assigned_at",
    "first_response_at": "c.first_response_at",
    "closed_at": "c.closed_at",
    "queue_wait_s": "c.queue_wait_s",
    "first_response_s": "c.first_response_s",
    "resolution_s": "c.resolution_s",
    "queue_wait_business_s": "c.queue_wait_bh_s",
    "first_response_business_s": "c.first_response_bh_s",
    "resolution_business_s": "c.resolution_bh_s",
    "first_response_via": "c.first_response_via",
    "outcome": f"""CASE WHEN {_ANSWERED} THEN 'answered' WHEN c.closed_at IS NULL THEN 'open'
                        WHEN c.first_assigned_at IS NULL THEN 'abandoned'
                        ELSE 'unanswered' END""",
    "customer_silent": f"({METRICS['customer_silent'].sql})",
    "messages_in": "c.messages_in",
    "messages_out": "c.messages_out",
    "offers": "c.offers",
    "transfers": "c.transfers",
    "reopened": "c.cycle > 1",
    "backfilled": "c.backfilled",
}
EXPORT_COLUMNS = tuple(_EXPORT)
_EXPORT_FROM = f"""{CYCLES.table}
              LEFT JOIN leads l ON l.id = c.lead_id
              LEFT JOIN channels ch ON ch.id = c.channel_id
              LEFT JOIN queues qu ON qu.id = c.queue_id
              LEFT JOIN operators op ON op.id = c.operator_id"""


async def cycles_page(
    conn: Conn | asyncpg.Pool, q: Query, after: int, limit: int
) -> list[asyncpg.Record]:
    """A page of the period's care cycles in id order, after the id `after`."""
    args: list[Any] = []
    where = _where(CYCLES, q, args)
    args += [after, limit]
    columns = ", ".join(f"{sql} AS {name}" for name, sql in _EXPORT.items())
    return await conn.fetch(
        f"""SELECT c.id, {columns} FROM {_EXPORT_FROM}
             WHERE {where} AND c.id > ${len(args) - 1}
             ORDER BY c.id LIMIT ${len(args)}""",
        *args,
    )


def _spreadsheet_text(expr: str) -> str:
    """Text a customer (or anyone) wrote, as a spreadsheet should show it: never a formula
    (OWASP's advice on CSV injection: a leading quote)."""
    return f"CASE WHEN {expr} ~ '^[=+@\\t\\r-]' THEN '''' || {expr} ELSE {expr} END"


def _iso(expr: str) -> str:
    return f"""to_char({expr}, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')"""


def _seconds(expr: str) -> str:
    return f"trim_scale(round(({expr})::numeric, 3))"


def _flag(expr: str) -> str:
    return f"CASE WHEN {expr} THEN 'true' ELSE 'false' END"


_CSV_FORMAT = {
    **dict.fromkeys(("lead_name", "channel", "queue", "operator"), _spreadsheet_text),
    **dict.fromkeys(("started_at", "first_assigned_at", "first_response_at", "closed_at"), _iso),
    **dict.fromkeys([c for c in EXPORT_COLUMNS if c.endswith("_s")], _seconds),
    **dict.fromkeys(("customer_silent", "reopened", "backfilled"), _flag),
}


async def export_csv(
    conn: Conn, q: Query, delimiter: str, output: Callable[[bytes], Coroutine[Any, Any, None]]
) -> None:
    """Every care cycle of the period as CSV rows (a header first), in start order,
    formatted and streamed by the database itself (COPY): times in ISO 8601 with the
    zone's offset, durations in seconds. The caller holds a transaction."""
    await conn.execute("SELECT set_config('timezone', $1, true)", q.tz)
    args: list[Any] = []
    where = _where(CYCLES, q, args)
    columns = ", ".join(
        f"{_CSV_FORMAT.get(name, str)(sql)} AS {name}" for name, sql in _EXPORT.items()
    )
    await conn.copy_from_query(
        f"""SELECT {columns} FROM {_EXPORT_FROM}
             WHERE {where}
             ORDER BY c.started_at, c.id""",
        *args,
        output=output,
        format="csv",
        header=True,
        delimiter=delimiter,
    )
