"""When the drain timer fires, computed from ``SQS_POLL_SCHEDULE`` as the Functions host computes it.

Only the watchdog reads this (``scale_out/watchdog.py``): it must know when ticks are due to tell
that some were missed. The host reads an NCRONTAB expression (the NCrontab library's rules):

- six fields, ``second minute hour day month day-of-week`` (five: no seconds, second 0);
- each a list of ``*``, ``v``, ``a-b``, ``*/n``, ``a-b/n`` or ``a/n`` (from ``a`` to the end, every ``n``);
  months and days of the week also by name (``Jan``, ``Mon``, any prefix of the English name);
- a day fires when both its day of month and its day of week match.

On App Service plans the host also takes a TimeSpan (``hh:mm:ss`` or ``d.hh:mm:ss``): an interval.
The schedule is in the host's time zone: ``WEBSITE_TIME_ZONE`` (an IANA name) where the plan honours it,
else UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")  # fmt: skip
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")
# NCrontab looks no further; a schedule with no occurrence in this many days never fires.
SEARCH_DAYS = 366 * 30


class ScheduleError(ValueError):
    """``SQS_POLL_SCHEDULE`` is not a schedule this module can read; the message says why."""


@dataclass(frozen=True)
class Field:
    """One field's allowed values."""

    values: tuple[int, ...]

    def first_from(self, value: int) -> int | None:
        return next((v for v in self.values if v >= value), None)


@dataclass(frozen=True)
class Schedule:
    """Occurrences of the timer's schedule, as epoch seconds."""

    expression: str
    zone: tzinfo = UTC
    interval_seconds: float = 0.0  # a TimeSpan's interval; 0 for NCRONTAB
    fields: tuple[Field, ...] = ()  # second, minute, hour, day, month, day of week

    def after(self, moment: float, count: int = 1) -> float:
        """The ``count``-th occurrence strictly after ``moment``."""
        if self.interval_seconds:
            return moment + count * self.interval_seconds
        for _ in range(count):
            moment = self._next(moment)
        return moment

    def _next(self, moment: float) -> float:
        local = datetime.fromtimestamp(int(moment) + 1, self.zone).replace(tzinfo=None)
        while True:
            found = self._next_local(local)
            at = found.replace(tzinfo=self.zone).timestamp()
            if at > moment:  # a local time repeated when clocks go back is taken once
                return at
            local = found + timedelta(seconds=1)

    def _next_local(self, start: datetime) -> datetime:
        seconds, minutes, hours, days, months, weekdays = self.fields
        day = start.date()
        for offset in range(SEARCH_DAYS):
            if offset:
                day += timedelta(days=1)
            # Python counts Monday 0; NCRONTAB Sunday 0.
            if day.day not in days.values or day.month not in months.values:
                continue
            if (day.weekday() + 1) % 7 not in weekdays.values:
                continue
            earliest = (start.hour, start.minute, start.second) if offset == 0 else (0, 0, 0)
            time = _first_time(hours, minutes, seconds, earliest)
            if time is not None:
                return datetime(day.year, day.month, day.day, *time)
        raise ScheduleError(f"{self.expression!r} never fires")


def _first_time(
    hours: Field, minutes: Field, seconds: Field, earliest: tuple[int, int, int]
) -> tuple[int, int, int] | None:
    """The first (hour, minute, second) of the fields at or after ``earliest``, within the day."""
    for hour in hours.values:
        if hour < earliest[0]:
            continue
        for minute in minutes.values:
            if (hour, minute) < earliest[:2]:
                continue
            floor = earliest[2] if (hour, minute) == earliest[:2] else 0
            second = seconds.first_from(floor)
            if second is not None:
                return (hour, minute, second)
    return None


def parse_schedule(expression: str, time_zone: str = "") -> Schedule:
    """``expression`` (NCRONTAB or TimeSpan) in ``time_zone`` (an IANA name; empty: UTC)."""
    zone = _zone(time_zone)
    text = expression.strip()
    timespan = TIMESPAN.match(text)
    if timespan:
        days, hours, minutes, seconds = (int(part or 0) for part in timespan.groups())
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds).total_seconds()
        if interval <= 0:
            raise ScheduleError(f"{expression!r} is an empty interval")
        return Schedule(text, zone, interval_seconds=interval)
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise ScheduleError(
            f"{expression!r} is not NCRONTAB (six fields: second minute hour day month day-of-week) "
            "nor a TimeSpan (hh:mm:ss)"
        )
    ranges = ((0, 59, ()), (0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTHS), (0, 6, DAYS))
    fields = tuple(
        _field(part, low, high, names) for part, (low, high, names) in zip(parts, ranges, strict=True)
    )
    schedule = Schedule(text, zone, fields=fields)
    schedule.after(datetime.now(UTC).timestamp())  # one that never fires is refused now
    return schedule


def _field(text: str, low: int, high: int, names: tuple[str, ...]) -> Field:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, "step", 1, high - low + 1) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _value(start, low, high, names), _value(end, low, high, names)
        else:
            first = _value(span, low, high, names)
            last = high if step_text else first
        if first > last:
            raise ScheduleError(f"{text!r}: {first}-{last} is an empty range")
        values.update(range(first, last + 1, step))
    return Field(tuple(sorted(values)))


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text[:1].isalpha() and names:
        lowered = text.lower()
        for number, name in enumerate(names):
            if name.startswith(lowered):
                return low + number
        raise ScheduleError(f"{text!r} is not one of {', '.join(names)}")
    return _number(text, "value", low, high)


def _number(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ScheduleError(f"{text!r} is not a {what} from {low} to {high}")
    return int(text)


def _zone(name: str) -> tzinfo:
    if not name.strip():
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError(f"time zone {name!r} is not an IANA name this machine knows ({error})") from None
