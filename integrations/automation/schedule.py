"""When a time trigger next fires: wall-clock times in a time zone, daylight saving included.

Both functions take and return seconds since the epoch and answer the first fire time strictly
after ``after``, so a trigger schedules one timer for it instead of polling.

- A time of day (``at:``) fires once on each day. On the day clocks spring forward, a time in
  the skipped hour fires at the first instant after the gap (02:30 in Europe/Berlin fires at
  03:00 CEST): an operator's nightly reset or report is late, never lost. (Home Assistant
  skips it.) On the day clocks fall back, a time that occurs twice fires at its first
  occurrence only.
- A pattern (``time_pattern``) matches the wall-clock fields of each second that occurs: in
  the repeated hour it matches in both passes (every 15 minutes stays every 15 minutes of
  real time), in the skipped hour nothing occurs to match.

Zone offsets are taken to be whole minutes, as every offset in use since 1972 is.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# The most days ahead a time of day or a pattern can be: each fires at least once a day
# (a pattern's hour may be skipped on a spring-forward day, so two days).
_DAYS_AHEAD = 3


def next_time_of_day(after: float, times: Sequence[tuple[int, int, int]], zone: ZoneInfo) -> float:
    """The first instant after ``after`` at which one of times (h, m, s) is due in zone."""
    if not times:
        raise ValueError("no times of day")
    ordered = sorted(times)
    day = datetime.fromtimestamp(after, zone).date()
    for offset in range(_DAYS_AHEAD):
        current = day + timedelta(days=offset)
        for hour, minute, second in ordered:
            # In wall-clock order the instants never go back (the first occurrence of a
            # repeated time, the end of the gap for a skipped one): the first is the answer.
            instant = _instant(current, hour, minute, second, zone)
            if instant > after:
                return instant
    raise AssertionError("a time of day recurs every day")  # pragma: no cover


def next_pattern_match(
    after: float,
    hours: Collection[int],
    minutes: Collection[int],
    seconds: Sequence[int],
    zone: ZoneInfo,
) -> float:
    """The first second after ``after`` whose wall-clock time in zone matches the fields.

    seconds must be sorted; hours, minutes and seconds must not be empty.
    """
    start = math.floor(after) + 1
    minute_start = start - start % 60
    # Stepping through real minutes (not wall-clock ones) visits each wall time that occurs,
    # a repeated hour twice, a skipped hour never.
    end = minute_start + _DAYS_AHEAD * 86400
    while minute_start < end:
        local = datetime.fromtimestamp(minute_start, zone)
        if local.hour not in hours:
            # To the next wall-clock hour: a change of offset lands on an hour boundary.
            minute_start += (60 - local.minute) * 60
            continue
        if local.minute in minutes:
            for second in seconds:
                if minute_start + second >= start:
                    return float(minute_start + second)
        minute_start += 60
    raise ValueError("the pattern matches no time of day")


def _instant(day: date, hour: int, minute: int, second: int, zone: ZoneInfo) -> float:
    """The instant a wall-clock time is due on a day: its first occurrence if it repeats,
    the end of the gap if it is skipped."""
    wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)
    instant = wall.timestamp()  # fold=0: the first occurrence; in a gap, past the gap
    if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # In a gap: fold=1 reads the time with the offset after the change, which puts it before
    # the change; the change (where the wall clock resumes) lies in between.
    low = math.floor(wall.replace(fold=1).timestamp())
    high = math.ceil(instant)
    after_offset = datetime.fromtimestamp(high, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return float(high)
