"""The reports' part of the OpenAPI document, with every metric's definition written out:
the definitions live once, in storage/reports.py, and are printed from there."""

from __future__ import annotations

from typing import Any

from hub.api.openapi_parts import op, q
from storage.reports import DURATION, GROUPS, INTERVALS, METRICS

_PERIOD = [
    q("from", "first day, YYYY-MM-DD, in tz (default: six days before `to`)", format="date"),
    q("to", "last day, inclusive (default: today in tz)", format="date"),
    q("tz", "IANA time zone the days are in (default UTC), e.g. Europe/Moscow"),
    q("channel", "only this channel's cycles (id)", "integer"),
    q("queue", "only this queue's (id)", "integer"),
    q("operator", "only this operator's (id): credited to them", "integer"),
    q("source", "only leads whose first touch is of this kind (form, telegram, call, api, ...)"),
    q(
        "recovered_within_s",
        "how soon an answered call with the number recovers a missed one (86400)",
        "integer",
    ),
]
_METRIC_ARGS = [
    q("metric", "a metric name (see the summary's description); default cycles"),
    q("stat", "value for counts and shares; n, mean, p50 (default) or p90 for durations"),
]
_DURATION = {
    "type": "object",
    "properties": {k: {"type": ["number", "null"]} for k in ("n", "mean", "p50", "p90")},
}
_COUNT = {"type": "object", "properties": {"value": {"type": ["number", "null"]}}}
_METRICS = {
    "type": "object",
    "properties": {m.name: _DURATION if m.kind == DURATION else _COUNT for m in METRICS.values()},
}


def _table() -> str:
    rows = "\n".join(
        f"| `{m.name}` | {'count, mean, p50, p90' if m.kind == DURATION else m.kind} | "
        f"{m.definition} |"
        for m in METRICS.values()
    )
    return (
        "A care cycle runs from a dialog's creation or reopening to its close and counts in "
        "the period in which it started; calls count by their start, offers by when they "
        "were made, leads by their creation. Days are local to `tz`. Durations are in "
        "seconds, over the raw rows (`percentile_cont`), never averages of averages.\n\n"
        "| metric | reported as | definition |\n|---|---|---|\n" + rows
    )


def _get(summary: str, description: str, params: list[dict[str, Any]], schema: Any) -> Any:
    return {
        "get": op(
            summary,
            tag="reports",
            description=description,
            params=params,
            schema=schema,
            errors=(400, 401, 403),
        )
    }


def report_paths() -> dict[str, Any]:
    period = {
        "type": "object",
        "properties": {
            "from": {"type": "string"},
            "to": {"type": "string"},
            "tz": {"type": "string"},
        },
    }
    export = _get(
        "One row per care cycle (supervisors, API keys with `reports`)",
        "JSON pages (`limit`, `cursor`), or the whole period as CSV with `Accept: text/csv` "
        "(or `?format=csv`): UTF-8 with a BOM, a header row, ISO-8601 times with the zone's "
        "offset, durations in seconds; `?delimiter=semicolon` for spreadsheet programs that "
        "expect semicolons. A cell a customer wrote that starts with =, +, - or @ is prefixed "
        "with a quote so that no spreadsheet runs it.",
        [
            *_PERIOD,
            q("limit", "page size, 1-200", "integer"),
            q("cursor", "next_cursor of the previous page"),
            q("format", "csv: the same as Accept: text/csv", enum=["csv", "json"]),
            q("delimiter", "comma (default) or semicolon", enum=["comma", "semicolon"]),
        ],
        {"type": "object", "properties": {"items": {"type": "array"}}},
    )
    export["get"]["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return {
        "/api/v1/reports/summary": _get(
            "Summary of a period beside the period before it",
            _table(),
            [*_PERIOD, q("group_by", "split by", enum=list(GROUPS)), q("metrics", "a,b,c")],
            {
                "type": "object",
                "properties": {
                    "period": period,
                    "totals": _METRICS,
                    "groups": {"type": "array"},
                    "previous": {"type": "object"},
                },
            },
        ),
        "/api/v1/reports/series": _get(
            "One metric over time, bucket by bucket (local hours, days or ISO weeks)",
            "Every bucket of the period is listed, empty ones with 0 (counts) or null.",
            [*_PERIOD, *_METRIC_ARGS, q("interval", "bucket", enum=list(INTERVALS))],
            {"type": "object", "properties": {"points": {"type": "array"}}},
        ),
        "/api/v1/reports/heatmap": _get(
            "One metric by local weekday and hour",
            "Seven rows (mon..sun) of 24 values.",
            [*_PERIOD, *_METRIC_ARGS],
            {"type": "object", "properties": {"rows": {"type": "array"}}},
        ),
        "/api/v1/reports/dialogs": export,
        "/api/v1/reports/metrics": _get(
            "The metrics and their definitions", _table(), [], {"type": "object"}
        ),
    }
