"""Business hours such as "mon-fri 09:00-13:00; mon-fri 14:00-18:00; sat 10:00-14:00;
closed 2026-12-31..2027-01-08; closed 2027-03-08" in a queue's time zone: as many windows a
day as given, and dated holidays (a day, or a range of days, closed whatever the windows
say)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Seconds of [start, end) that fall inside these hours: what a customer waited while
        the business was open. Windows are laid on each local day (an overnight window's
        second half on the next day, closed by that day's holiday as `is_open` is), so a
        day that daylight saving shortens or lengthens counts its real length."""
        if end <= start:
            return 0.0
        first = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date()
        spans: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            spans += self._spans(day)
            day += timedelta(days=1)
        spans.sort()
        total, reach = 0.0, start
        for lo, hi in spans:
            lo, hi = max(lo, reach), min(hi, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
                reach = hi
        return total

    def _spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open stretches of one local day, in UTC."""
        if any(a <= day <= b for a, b in self.closed):
            return []
        weekday, found = day.weekday(), []
        midnight = time(0, 0)
        for w in self.windows:
            ends_at_midnight = w.end == time(23, 59, 59) or w.end == midnight
            if w.start < w.end and not ends_at_midnight:
                if weekday in w.days:
                    found.append((w.start, w.end, 0))
                continue
            if weekday in w.days:  # from the start to midnight
                found.append((w.start, midnight, 1))
            if (weekday - 1) % 7 in w.days and not ends_at_midnight:  # yesterday's tail
                found.append((midnight, w.end, 0))
        spans = []
        for lo, hi, next_day in found:
            since = datetime.combine(day, lo, self.zone)
            until = datetime.combine(day + timedelta(days=next_day), hi, self.zone)
            spans.append((since.astimezone(UTC), until.astimezone(UTC)))
        return spans


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
