"""Reports: the summary of a period beside the one before it, a metric over time, the
week's heatmap, and one row per care cycle as JSON or CSV.

Periods are local dates, inclusive, in the zone asked for: the bounds are that zone's
midnights, so a day is 23 or 25 hours long when daylight saving changes. Before answering,
the fact builder folds every event committed so far: a report never lags the log.
Supervisors, admins and API keys with the `reports` scope only (metric definitions are in
storage/reports.py and at `GET /api/v1/reports/metrics`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from hub.api.auth import scoped
from hub.api.shapes import page, paging
from hub.context import hub_of
from hub.errors import ApiError
from hub.httputil import large_json, whole_number
from storage import reports
from storage.reports import DURATION, GROUPS, INTERVALS, METRICS, Metric, Query

MAX_DAYS = 366
MAX_POINTS = 2000
STATS = ("value", "n", "mean", "p50", "p90")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_query", message)


def _zone(request: web.Request) -> tuple[str, ZoneInfo]:
    name = request.query.get("tz") or "UTC"
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(
            f"unknown time zone {name[:64]!r}; give an IANA name, e.g. Europe/Moscow"
        ) from None


def _day(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        if len(raw) != 10:  # fromisoformat would also take 20261127
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(f"{name} is a date, YYYY-MM-DD") from None


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def query_of(request: web.Request) -> tuple[Query, date, date]:
    """The period (dates inclusive, in the zone) and the filters of a report request."""
    tz, zone = _zone(request)
    today = datetime.now(zone).date()
    until = _day(request, "to", today)
    since = _day(request, "from", until - timedelta(days=6))
    if since > until:
        raise _bad("from is after to")
    if (until - since).days >= MAX_DAYS:
        raise _bad(f"a report covers at most {MAX_DAYS} days")
    ids: dict[str, int | None] = {}
    for name in ("channel", "queue", "operator"):
        raw = request.query.get(name)
        ids[name] = whole_number(raw, name, minimum=1) if raw else None
    source = request.query.get("source") or None
    if source is not None and (len(source) > 32 or not source.replace("_", "").isalnum()):
        raise _bad("source is a kind of first touch, e.g. form, telegram, call, api, import")
    recovered = whole_number(
        request.query.get("recovered_within_s") or "86400",
        "recovered_within_s",
        minimum=60,
        maximum=30 * 86_400,
    )
    q = Query(
        since=_local_midnight(since, zone),
        until=_local_midnight(until + timedelta(days=1), zone),
        tz=tz,
        channel=ids["channel"],
        queue=ids["queue"],
        operator=ids["operator"],
        source=source,
        recovered_within_s=recovered,
    )
    return q, since, until


def _period(q: Query, since: date, until: date) -> dict[str, Any]:
    return {"from": since.isoformat(), "to": until.isoformat(), "tz": q.tz}


def _metrics(request: web.Request) -> list[Metric]:
    raw = request.query.get("metrics")
    if not raw:
        return list(METRICS.values())
    unknown = [m for m in raw.split(",") if m not in METRICS]
    if unknown:
        raise _bad(f"unknown metrics {unknown[:5]}; see GET /api/v1/reports/metrics")
    return [METRICS[m] for m in dict.fromkeys(raw.split(","))]


@scoped("reports")
async def metric_definitions(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "items": [
                {"name": m.name, "kind": m.kind, "definition": m.definition}
                for m in METRICS.values()
            ]
        }
    )


@scoped("reports")
async def summary(request: web.Request) -> web.Response:
    hub = hub_of(request)
    q, since, until = query_of(request)
    group = request.query.get("group_by") or None
    if group is not None and group not in GROUPS:
        raise _bad(f"group_by is one of {', '.join(GROUPS)}")
    wanted = _metrics(request)
    await hub.facts.catch_up()
    days = (until - since).days + 1
    before = replace(
        q, since=_local_midnight(since - timedelta(days=days), ZoneInfo(q.tz)), until=q.since
    )
    now, previous = await reports.measure_all(
        hub.pool, [reports.Ask(q, wanted, group, total=True), reports.Ask(before, wanted)]
    )
    totals = now.pop(reports.TOTAL, {})
    groups: list[dict[str, Any]] = []
    if group is not None:
        names = await reports.names(hub.pool, group, list(now))
        for key in sorted(now, key=lambda k: (k is None, str(k))):
            groups.append(
                {
                    "key": {
                        "type": group,
                        "id": key,
                        "name": names.get(key) if key is not None else None,
                    },
                    "metrics": reports.empty(wanted) | now[key],
                }
            )
    return large_json(
        {
            "period": _period(q, since, until),
            "totals": reports.empty(wanted) | totals,
            "groups": groups,
            "previous": {
                "period": _period(before, since - timedelta(days=days), since - timedelta(days=1)),
                "totals": reports.empty(wanted) | previous.get(reports.TOTAL, {}),
            },
        }
    )


def _metric_and_stat(request: web.Request, default: str) -> tuple[Metric, str]:
    name = request.query.get("metric") or default
    metric = METRICS.get(name)
    if metric is None:
        raise _bad(f"unknown metric {name[:64]!r}; see GET /api/v1/reports/metrics")
    stat = request.query.get("stat") or ("p50" if metric.kind == DURATION else "value")
    if stat not in STATS or (metric.kind == DURATION) == (stat == "value"):
        allowed = "n, mean, p50 or p90" if metric.kind == DURATION else "value"
        raise _bad(f"the stat of {metric.name} is {allowed}")
    return metric, stat


def _pick(values: dict[str, Any] | None, metric: Metric, stat: str) -> float | int | None:
    got = (values or {}).get(metric.name) or reports.empty([metric])[metric.name]
    value: float | int | None = got[stat]
    return value


def _buckets(q: Query, interval: str) -> list[datetime]:
    """Every local bucket of the period, as naive local times (what date_trunc gives)."""
    zone = ZoneInfo(q.tz)
    found: dict[datetime, None] = {}
    step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
    at = q.since
    while at < q.until:
        local = at.astimezone(zone).replace(tzinfo=None)
        if interval == "hour":
            local = local.replace(minute=0, second=0, microsecond=0)
        else:
            local = datetime.combine(local.date(), time(0))
            if interval == "week":
                local -= timedelta(days=local.weekday())
        found[local] = None
        at += step
    return list(found)


@scoped("reports")
async def series(request: web.Request) -> web.Response:
    hub = hub_of(request)
    q, since, until = query_of(request)
    metric, stat = _metric_and_stat(request, "cycles")
    interval = request.query.get("interval") or "day"
    if interval not in INTERVALS:
        raise _bad(f"interval is one of {', '.join(INTERVALS)}")
    buckets = _buckets(q, interval)
    if len(buckets) > MAX_POINTS:
        raise _bad(f"that is more than {MAX_POINTS} points; choose a longer interval")
    await hub.facts.catch_up()
    values = await reports.measure(
        hub.pool, q, [metric], f"date_trunc('{interval}', {{at}} AT TIME ZONE {{tz}})"
    )
    zone = ZoneInfo(q.tz)
    points = [
        {
            "at": b.replace(tzinfo=zone).isoformat(),
            "value": _pick(values.get(b), metric, stat),
        }
        for b in buckets
    ]
    return large_json(
        {
            "period": _period(q, since, until),
            "metric": metric.name,
            "stat": stat,
            "interval": interval,
            "points": points,
        }
    )


@scoped("reports")
async def heatmap(request: web.Request) -> web.Response:
    """Weekday x local hour: when customers come (cycles by default), or any metric."""
    hub = hub_of(request)
    q, since, until = query_of(request)
    metric, stat = _metric_and_stat(request, "cycles")
    await hub.facts.catch_up()
    values = await reports.measure(
        hub.pool,
        q,
        [metric],
        "(extract(isodow FROM {at} AT TIME ZONE {tz}) * 100"
        " + extract(hour FROM {at} AT TIME ZONE {tz}))::int",
    )
    rows = [
        {
            "weekday": day,
            "hours": [_pick(values.get((i + 1) * 100 + h), metric, stat) for h in range(24)],
        }
        for i, day in enumerate(WEEKDAYS)
    ]
    return web.json_response(
        {"period": _period(q, since, until), "metric": metric.name, "stat": stat, "rows": rows}
    )


def _cell(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat(timespec="seconds")
    if isinstance(value, float):
        return round(value, 3)
    return value


def _export_row(record: Any, zone: ZoneInfo) -> dict[str, Any]:
    return {c: _cell(record[c], zone) for c in ("id", *reports.EXPORT_COLUMNS)}


def _wants_csv(request: web.Request) -> bool:
    if request.query.get("format") == "csv":
        return True
    accepted = [p.split(";")[0].strip() for p in request.headers.get("Accept", "").split(",")]
    return "text/csv" in accepted


@scoped("reports")
async def dialogs(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    q, since, until = query_of(request)
    zone = ZoneInfo(q.tz)
    delimiter = {"comma": ",", "semicolon": ";"}.get(request.query.get("delimiter") or "comma")
    if delimiter is None:
        raise _bad("delimiter is comma or semicolon")
    as_csv = _wants_csv(request)
    after, limit = (0, 0) if as_csv else paging(request)
    await hub.facts.catch_up()
    if not as_csv:
        rows = await reports.cycles_page(hub.pool, q, after, limit)
        items = [_export_row(r, zone) for r in rows]
        body = page(items, limit) | {"period": _period(q, since, until)}
        return web.json_response(body)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": (
                f'attachment; filename="dialogs-{since.isoformat()}-{until.isoformat()}.csv"'
            ),
        }
    )
    await response.prepare(request)
    await response.write("\ufeff".encode())
    async with hub.pool.acquire() as conn, conn.transaction():
        await reports.export_csv(conn, q, delimiter, response.write)
    await response.write_eof()
    return response
