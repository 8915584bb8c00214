"""Business hours such as "mon-fri 09:00-13:00; mon-fri 14:00-18:00; sat 10:00-14:00;
closed 2026-12-31..2027-01-08; closed 2027-03-08" in a queue's time zone: as many windows a
day as given, and dated holidays (a day, or a range of days, closed whatever the windows
say)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_PART = re.compile(
    r"^(?P<d1>mon|tue|wed|thu|fri|sat|sun)(?:-(?P<d2>mon|tue|wed|thu|fri|sat|sun))?\s+"
    r"(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})$"
)


_CLOSED = re.compile(r"^closed\s+(?P<first>\d{4}-\d{2}-\d{2})(?:\.\.(?P<last>\d{4}-\d{2}-\d{2}))?$")


class InvalidHours(ValueError):
    """Hours or a time zone that cannot be read; the CLI says which part."""


@dataclass(frozen=True, slots=True)
class Window:
    days: frozenset[int]
    start: time
    end: time  # exclusive; an end before the start runs past midnight


@dataclass(frozen=True, slots=True)
class BusinessHours:
    windows: tuple[Window, ...]
    zone: ZoneInfo
    closed: tuple[tuple[date, date], ...] = ()  # holidays: first and last day, inclusive

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if any(first <= local.date() <= last for first, last in self.closed):
            return False
        day, clock = local.weekday(), local.time()
        for w in self.windows:
            if w.start <= w.end:
                if day in w.days and w.start <= clock < w.end:
                    return True
            elif (day in w.days and clock >= w.start) or (
                (day - 1) % 7 in w.days and clock < w.end
            ):
                return True
        return False


def parse_hours(spec: str, timezone: str = "UTC") -> BusinessHours:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidHours(f"unknown time zone {timezone!r}") from None
    windows = []
    closed = []
    for part in filter(None, (p.strip().lower() for p in re.split(r"[;,]", spec))):
        holiday = _CLOSED.match(part)
        if holiday:
            try:
                since = date.fromisoformat(holiday["first"])
                until = date.fromisoformat(holiday["last"]) if holiday["last"] else since
            except ValueError:
                raise InvalidHours(f"bad date in {part!r}") from None
            if until < since:
                raise InvalidHours(f"{part!r} ends before it begins")
            closed.append((since, until))
            continue
        match = _PART.match(part)
        if not match:
            raise InvalidHours(f"cannot read {part!r}; write e.g. 'mon-fri 09:00-18:00'")
        first = DAYS.index(match["d1"])
        last = DAYS.index(match["d2"]) if match["d2"] else first
        days = (
            frozenset(range(first, last + 1))
            if first <= last
            else frozenset(list(range(first, 7)) + list(range(0, last + 1)))
        )
        try:
            start = time(int(match["h1"]), int(match["m1"]))
            end = (
                time(int(match["h2"]), int(match["m2"]))
                if match["h2"] != "24"
                else time(23, 59, 59)
            )
        except ValueError:
            raise InvalidHours(f"bad time in {part!r}") from None
        windows.append(Window(days, start, end))
    if not windows:
        raise InvalidHours("no hours given (holidays alone close nothing that opens)")
    return BusinessHours(tuple(windows), zone, tuple(closed))
