"""Stated operating hours (weekly, with holidays, changing over time) and calendar times."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any, Final

from integrations.uptime.intervals import INF, Interval, clip, merge, subtract

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class OperatingHours:
    """Stated daily opening hours, local time; closing at or before opening runs overnight."""

    opens: int  # seconds after local midnight
    closes: int  # seconds after local midnight, up to 86400

    @classmethod
    def parse(cls, text: str) -> OperatingHours:
        """Parse "HH:MM-HH:MM" (24:00 allowed as a closing time); ValueError if malformed."""
        found = _HOURS.match(str(text))
        if found is None:
            raise ValueError(f"expected opening hours as HH:MM-HH:MM, got {text!r}")
        oh, om, ch, cm = (int(part) for part in found.groups())
        if oh > 23 or om > 59 or ch > 24 or cm > 59 or (ch == 24 and cm):
            raise ValueError(f"invalid time in opening hours {text!r}")
        opens, closes = oh * 3600 + om * 60, ch * 3600 + cm * 60
        if opens == closes:
            raise ValueError(f"opening hours {text!r} open and close at the same time")
        return cls(opens, closes)

    def __str__(self) -> str:
        return (
            f"{self.opens // 3600:02d}:{self.opens % 3600 // 60:02d}-"
            f"{self.closes // 3600:02d}:{self.closes % 3600 // 60:02d}"
        )

    def open_intervals(self, start: float, end: float, zone: zoneinfo.ZoneInfo) -> list[Interval]:
        """Return the open periods overlapping [start, end)."""
        if end <= start:
            return []
        if self.opens == 0 and self.closes == 86_400:
            return [(start, end)]
        first = datetime.fromtimestamp(start, zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, zone).date()
        found: list[Interval] = []
        day = first
        while day <= last:
            opening = _local_ts(day, self.opens, zone)
            closing_day = day if self.closes > self.opens else day + timedelta(days=1)
            closing = _local_ts(closing_day, self.closes, zone)
            found.append((opening, closing))
            day += timedelta(days=1)
        return clip(merge(found), start, end)

    def closed_intervals(self, start: float, end: float, zone: zoneinfo.ZoneInfo) -> list[Interval]:
        """Return the closed periods (outside the stated hours) within [start, end)."""
        return (
            subtract([(start, end)], self.open_intervals(start, end, zone)) if end > start else []
        )


_WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY: Final = "holiday"
_CLOSED: Final = "closed"
_OPEN: Final = ("open", "24h")
_ALL_DAY: Final = OperatingHours(0, 86_400)


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Stated hours per weekday (Monday first) and on holidays; None: closed all day.

    A day's hours belong to the day they open on (an overnight 22:00-06:00 runs into the next).
    """

    days: tuple[OperatingHours | None, ...]
    holidays: frozenset[date] = frozenset()
    holiday: OperatingHours | None = None
    holiday_given: bool = False

    @classmethod
    def parse(cls, value: Any, holidays: Iterable[date] = ()) -> WeeklyHours:
        """Parse "HH:MM-HH:MM" (every day) or a mapping of days to hours; ValueError if bad.

        Keys: mon..sun, ranges such as mon-fri, daily, holiday. Values: "HH:MM-HH:MM",
        "closed", "open" (24 hours). Days left out of a mapping are closed; holidays follow
        their weekday unless ``holiday`` is given.
        """
        if isinstance(value, str):
            hours = _day_hours(value)
            return cls((hours,) * 7, frozenset(holidays))
        if not isinstance(value, Mapping) or not value:
            raise ValueError("expected HH:MM-HH:MM or a mapping of days (mon-fri, sat...) to hours")
        days: list[OperatingHours | None] = [None] * 7
        holiday: OperatingHours | None = None
        given = False
        for key, text in value.items():
            name = str(key).strip().lower()
            hours = _day_hours(text)
            if name == HOLIDAY:
                holiday, given = hours, True
                continue
            for index in _day_range(name):
                days[index] = hours
        return cls(tuple(days), frozenset(holidays), holiday, given)

    def hours_on(self, day: date) -> OperatingHours | None:
        """The hours of a local calendar day (None: closed)."""
        if self.holiday_given and day in self.holidays:
            return self.holiday
        return self.days[day.weekday()]

    def open_intervals(self, start: float, end: float, zone: zoneinfo.ZoneInfo) -> list[Interval]:
        """Return the open periods overlapping [start, end)."""
        if end <= start:
            return []
        day = datetime.fromtimestamp(start, zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, zone).date()
        found: list[Interval] = []
        while day <= last:
            hours = self.hours_on(day)
            if hours is not None:
                closing_day = day if hours.closes > hours.opens else day + timedelta(days=1)
                found.append(
                    (_local_ts(day, hours.opens, zone), _local_ts(closing_day, hours.closes, zone))
                )
            day += timedelta(days=1)
        return clip(merge(found), start, end)

    def closed_intervals(self, start: float, end: float, zone: zoneinfo.ZoneInfo) -> list[Interval]:
        """Return the closed periods (outside the stated hours) within [start, end)."""
        return (
            subtract([(start, end)], self.open_intervals(start, end, zone)) if end > start else []
        )

    def describe(self) -> Any:
        """A JSON form: one string for the same hours every day, else a mapping."""

        def text(hours: OperatingHours | None) -> str:
            return _CLOSED if hours is None else str(hours)

        described: Any
        if len(set(self.days)) == 1:
            described = text(self.days[0])
            if not self.holiday_given:
                return described
            described = {"daily": described}
        else:
            described = {
                name: text(hours) for name, hours in zip(_WEEKDAYS, self.days, strict=True)
            }
        if self.holiday_given:
            described[HOLIDAY] = text(self.holiday)
        return described


def _day_hours(value: Any) -> OperatingHours | None:
    text = str(value).strip().lower()
    if text == _CLOSED:
        return None
    if text in _OPEN:
        return _ALL_DAY
    return OperatingHours.parse(text)


def _day_range(name: str) -> list[int]:
    if name in ("daily", "mon-sun"):
        return list(range(7))
    first, _, last = name.partition("-")
    if first not in _WEEKDAYS or (last and last not in _WEEKDAYS):
        raise ValueError(
            f"unknown day {name!r}: use mon..sun, a range such as mon-fri, daily or holiday"
        )
    low = _WEEKDAYS.index(first)
    high = _WEEKDAYS.index(last) if last else low
    if high < low:
        raise ValueError(f"day range {name!r} runs backwards")
    return list(range(low, high + 1))


@dataclass(frozen=True, slots=True)
class HoursHistory:
    """Stated hours as they changed: each entry applies from its start until the next.

    Before the first entry the first applies (a station's hours are known from its first
    statement). Kept so that a later change does not rewrite past reports.
    """

    entries: tuple[tuple[float, WeeklyHours], ...]

    def closed_intervals(self, start: float, end: float, zone: zoneinfo.ZoneInfo) -> list[Interval]:
        """Return the closed periods within [start, end) under the hours of each period."""
        found: list[Interval] = []
        for index, (since, hours) in enumerate(self.entries):
            lo = -INF if index == 0 else since
            hi = self.entries[index + 1][0] if index + 1 < len(self.entries) else INF
            a, b = max(start, lo), min(end, hi)
            if a < b:
                found.extend(hours.closed_intervals(a, b, zone))
        return merge(found)

    def at(self, when: float) -> WeeklyHours | None:
        """The hours in effect at a moment."""
        current = self.entries[0][1] if self.entries else None
        for since, hours in self.entries:
            if since <= when:
                current = hours
        return current


def _local_ts(day: date, seconds: int, zone: zoneinfo.ZoneInfo) -> float:
    base = datetime.combine(day, dt_time(0), zone)
    if seconds >= 86_400:
        base = datetime.combine(day + timedelta(days=1), dt_time(0), zone)
        seconds -= 86_400
    local = datetime.combine(base.date(), dt_time(seconds // 3600, seconds % 3600 // 60), zone)
    return local.timestamp()


def year_start(ts: float, zone: zoneinfo.ZoneInfo) -> float:
    """Return the start of the local calendar year of ts."""
    local = datetime.fromtimestamp(ts, zone)
    return datetime(local.year, 1, 1, tzinfo=zone).timestamp()


def month_start(ts: float, zone: zoneinfo.ZoneInfo) -> float:
    """Return the start of the local calendar month of ts."""
    local = datetime.fromtimestamp(ts, zone)
    return datetime(local.year, local.month, 1, tzinfo=zone).timestamp()


def next_month(ts: float, zone: zoneinfo.ZoneInfo) -> float:
    """Return the start of the local calendar month after the one of ts."""
    local = datetime.fromtimestamp(ts, zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=zone).timestamp()


def utc_iso(ts: float | None) -> str | None:
    """Return an ISO 8601 UTC time for POSIX seconds (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
