"""The uptime engine: port outages, exclusions, NEVI/CEC uptime, live uptime sensors.

What counts as an outage of a port (a connector or EVSE device), each fired as
``uptime_outage`` at its start (``end`` None) and again at its end:

- ``faulted``: the port reports Faulted;
- ``unavailable``: the port reports Unavailable, whoever made it so. A port an operator
  locked (``charger.set_availability`` with ``available: false``) is not available for use:
  the lock is an outage. Its time is excluded only when the lock gives an excluded reason
  (``reason: maintenance``...): the engine then adds an exclusion for the port from the
  lock call until the port leaves Unavailable or is unlocked, under each regulation's rules
  (CEC's 72 h maintenance cap applies). A lock that does not take (the port still Available
  a minute later) excludes nothing: its exclusion is withdrawn.
- ``offline``: the station went offline; every port of the station is down;
- ``no_power`` (only with ``uptime: no_power:``): the port is Charging in an open session
  and its ``power`` sensor stays below ``min_power_w`` for longer than ``after_minutes``;
  the outage starts when the power fell. A power sensor without a number does not count.

Restart rule. The hub being down is not charger downtime:
- at stop, open outages stay open in the recorder and the stop time is kept as the hub's
  last moment alive (for a crash: a mark rewritten every second, ``.storage/uptime.alive``);
- after the start, an outage that was open is decided by the first news about its port:
  the same condition again (the same down status, the station still offline after its
  grace) continues it as one outage; anything else closes it at the last moment alive,
  never later, so the time the hub was down is not counted for a port that came back;
  with no news until the grace ends, it continues (a station that comes back while it has
  such an outage is asked for its status, when its driver can: charger trigger_status);
- a station that does not come back is counted offline only once ``offline_grace``
  seconds have passed since the start (its normal grace, as when running), from then on;
- charger events while the hub stops (sockets closing) are ignored.

Exclusions (``uptime.add_exclusion`` / ``uptime.remove_exclusion``, fired as
``uptime_exclusion``) and stated operating hours (time outside them counts as excluded,
reason ``outside_hours``) reduce the outage time only where they overlap it. CEC caps:
vandalism at most 10 days per incident, planned maintenance at most 72 hours per port per
calendar year (hub time zone). Uncapped reasons are applied first, then vandalism
incidents, then maintenance, each in start order; the caps count only excluded outage time.

In service. NEVI and CEC count uptime for ports in operation, so each port has an in-service
start: the earliest moment the hub knows it existed, its first recorded status, outage or
session (recorder ``first_seen``, hub clock), else its device registry entry's ``created_at``
(never later than now). Every window of a port is clipped to start there: a window entirely
before it has no figure (uptime None, "not in service"), not 100 %. The engine loads the
in-service times once at its start (one recorder query) and moves them earlier from charger
events (a status, a session) and outages. The CEC 15-minute intervals before it are left
out; the one it falls in counts from it. Known limit: after the recorder's retention
(``long_keep_days``) purged a port's oldest rows, its in-service start is its oldest kept row.

NEVI (23 CFR 680.116(b)): uptime = (W - (T_outage - T_excluded)) / W x 100 per port, with
W = the minutes of the window clipped to the port's in-service time: 525,600 for the
trailing 12 months of a port in service all that time, the window's own minutes otherwise.
Times are kept in seconds and reported in minutes. Overlapping outages of one port count
once. A station's figure is the mean of the percentages of its ports in service in the
window (None when none is); minute totals are sums.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import time
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any, Final

import voluptuous as vol

from hub.alerts import EVENT_UPTIME_UPDATED
from hub.charger import EVENT_CHARGER, ChargerCapability, get_charger
from hub.clock import Timer, clock
from hub.const import (
    ATTR_DEVICE_ID,
    ATTR_DOMAIN,
    ATTR_ENTITY_ID,
    ATTR_FRIENDLY_NAME,
    ATTR_SERVICE,
    ATTR_SERVICE_DATA,
    ATTR_TARGET,
    ATTR_UNIT_OF_MEASUREMENT,
    EVENT_CALL_SERVICE,
    EVENT_DEVICE_REGISTRY_UPDATED,
    EVENT_ENTITY_REGISTRY_UPDATED,
    EVENT_EXCLUSION,
    EVENT_HUB_STOP,
    EVENT_OUTAGE,
    EVENT_STATE_CHANGED,
    EXCLUSION_REASONS,
    STORAGE_DIR,
)
from hub.core import Event, Hub, ServiceCall, Unsubscribe, new_id
from hub.exceptions import HubError, ServiceValidationError
from hub.hookspecs import hookimpl
from hub.plugins import Integration
from hub.registry import DeviceEntry, DeviceKind, device_registry, entity_registry
from hub.storage import Store
from hub.util import freeze_new_long_lived

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "uptime"
DATA_UPTIME: Final = "uptime.engine"
STORAGE_KEY: Final = "uptime.state"
# The hub's last moment alive, rewritten every second (no fsync: it survives SIGKILL of the
# process, and a power cut costs a few seconds of it): a crash must not truncate an outage
# that began since the last save of the store.
ALIVE_FILE: Final = "uptime.alive"
ALIVE_INTERVAL: Final = 1.0
STORAGE_VERSION: Final = 1

CAUSE_FAULTED: Final = "faulted"
CAUSE_UNAVAILABLE: Final = "unavailable"
CAUSE_OFFLINE: Final = "offline"
CAUSE_NO_POWER: Final = "no_power"
CAUSES: Final = (CAUSE_FAULTED, CAUSE_UNAVAILABLE, CAUSE_OFFLINE, CAUSE_NO_POWER)
STATUS_CAUSES: Final = (CAUSE_FAULTED, CAUSE_UNAVAILABLE)

REASON_MAINTENANCE: Final = "maintenance"
REASON_UTILITY_POWER: Final = "utility_power"
REASON_VANDALISM: Final = "vandalism"
REASON_NATURAL_DISASTER: Final = "natural_disaster"
REASON_VEHICLE: Final = "vehicle"
REASON_OUTSIDE_HOURS: Final = "outside_hours"
# Exclusions recorded by earlier versions with a reason no rule knows ("other"): kept and
# shown, excluded by neither rule.
REASON_OTHER: Final = "other"
# The reasons an exclusion may give: exactly the causes the rules exclude (RULES below).
REASONS: Final = EXCLUSION_REASONS

MINUTE: Final = 60.0
DAY: Final = 86_400.0
NEVI_YEAR_MINUTES: Final = 525_600
NEVI_YEAR_SECONDS: Final = NEVI_YEAR_MINUTES * 60.0
VANDALISM_CAP_S: Final = 10 * DAY
MAINTENANCE_CAP_S: Final = 72 * 3600.0
RULE_NEVI: Final = "nevi"
RULE_CEC: Final = "cec"
INTERVAL_S: Final = 900.0  # CEC reliability data: 15-minute intervals
INTERVAL_UP: Final = "up"
INTERVAL_DOWN: Final = "down"
INTERVAL_EXCLUDED: Final = "excluded"
UPDATE_INTERVAL: Final = 60.0
UPDATE_SLICE: Final = 500  # more ports than this: the minute's update yields to the loop
UPDATE_SLICE_S: Final = 0.005  # loop time of one slice of the minute's update
FREEZE_AFTER_SENSORS: Final = 50  # new sensors in one slice: a burst, frozen (hub/util.py)
RELEASE_GRACE: Final = 60.0
# A charger's time within this of the hub clock, either way, is taken for live news.
CLOCK_SKEW_S: Final = 300.0
# The exclusion ids of locks with an excluded reason.
LOCK_PREFIX: Final = "lock-"
# News stated in a station's silence (offline, or the hub down) is taken when it comes this
# soon after the station reconnected (what it queued).
QUEUE_WINDOW_S: Final = 600.0
DEFAULT_OFFLINE_GRACE: Final = 150.0  # OCPP defaults: 60 s heartbeats x 2.5

CONF_OPERATING_HOURS: Final = "operating_hours"
CONF_STATIONS: Final = "stations"
CONF_NO_POWER: Final = "no_power"
CONF_MIN_POWER_W: Final = "min_power_w"
CONF_AFTER_MINUTES: Final = "after_minutes"
CONF_OFFLINE_GRACE: Final = "offline_grace"

ATTR_EXCLUSION_ID: Final = "exclusion_id"
ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_REASON: Final = "reason"
ATTR_NOTE: Final = "note"

Interval = tuple[float, float]
INF: Final = math.inf


class UptimeError(HubError):
    """The uptime engine refused a request."""


@dataclass(frozen=True, slots=True)
class Rules:
    """What one regulation excludes from a port's outage time, and its caps.

    NEVI (23 CFR 680.116(b)(2)): electric utility service interruptions, failure to charge due
    to the vehicle, scheduled maintenance, vandalism, natural disasters and time outside the
    station's stated operating hours; no caps. California CEC (reliability regulation for
    publicly funded DC fast chargers): grid power loss, vandalism (at most 10 days per
    incident), natural disasters and planned maintenance (at most 72 hours per calendar year).
    """

    name: str
    reasons: frozenset[str]
    outside_hours: bool
    vandalism_cap_s: float | None = None
    maintenance_cap_s: float | None = None  # per port and calendar year (hub time zone)


NEVI_RULES: Final = Rules(
    RULE_NEVI,
    frozenset(
        {
            REASON_UTILITY_POWER,
            REASON_VEHICLE,
            REASON_MAINTENANCE,
            REASON_VANDALISM,
            REASON_NATURAL_DISASTER,
            REASON_OUTSIDE_HOURS,
        }
    ),
    outside_hours=True,
)
CEC_RULES: Final = Rules(
    RULE_CEC,
    frozenset(
        {REASON_UTILITY_POWER, REASON_VANDALISM, REASON_NATURAL_DISASTER, REASON_MAINTENANCE}
    ),
    outside_hours=False,
    vandalism_cap_s=VANDALISM_CAP_S,
    maintenance_cap_s=MAINTENANCE_CAP_S,
)
RULES: Final = {RULE_NEVI: NEVI_RULES, RULE_CEC: CEC_RULES}


# Interval arithmetic (sorted, disjoint, half-open [start, end) lists) -----------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Return the union of intervals as a sorted list of disjoint intervals."""
    merged: list[Interval] = []
    for start, end in sorted(item for item in intervals if item[1] > item[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def intersect(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    """Return the intersection of two merged interval lists."""
    found: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if start < end:
            found.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return found


def subtract(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    """Return the parts of first (merged) not in second (merged)."""
    found: list[Interval] = []
    j = 0
    for start, end in first:
        cursor = start
        while j < len(second) and second[j][1] <= cursor:
            j += 1
        k = j
        while k < len(second) and second[k][0] < end:
            if second[k][0] > cursor:
                found.append((cursor, second[k][0]))
            cursor = max(cursor, second[k][1])
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            found.append((cursor, end))
    return found


def clip(intervals: Sequence[Interval], start: float, end: float) -> list[Interval]:
    """Return the parts of merged intervals inside [start, end)."""
    return intersect(intervals, [(start, end)]) if end > start else []


def total(intervals: Iterable[Interval]) -> float:
    """Return the summed length of disjoint intervals, in seconds."""
    return sum(end - start for start, end in intervals)


def take_first(intervals: Sequence[Interval], amount: float) -> list[Interval]:
    """Return the earliest `amount` seconds of merged intervals."""
    taken: list[Interval] = []
    left = amount
    for start, end in intervals:
        if left <= 0:
            break
        stop = min(end, start + left)
        taken.append((start, stop))
        left -= stop - start
    return taken


# Records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutageRecord:
    """One outage of one port: [start, end), end None while open."""

    outage_id: str
    port_id: str
    station_id: str | None
    start: float
    end: float | None
    cause: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutageRecord:
        """Build a record from a recorder row or an event's data."""
        end = row.get("end")
        return cls(
            str(row["outage_id"]),
            str(row["port_id"]),
            None if row.get("station_id") is None else str(row["station_id"]),
            float(row["start"]),
            None if end is None else float(end),
            str(row.get("cause") or CAUSE_FAULTED),
        )

    def as_data(self) -> dict[str, Any]:
        """Return the EVENT_OUTAGE data."""
        return {
            "outage_id": self.outage_id,
            "port_id": self.port_id,
            "station_id": self.station_id,
            "start": self.start,
            "end": self.end,
            "cause": self.cause,
        }

    def interval(self, open_end: float) -> Interval:
        """Return [start, end), an open outage ending at open_end."""
        return (self.start, open_end if self.end is None else self.end)


@dataclass(frozen=True, slots=True)
class ExclusionRecord:
    """An excluded period: a port, every port of a station, or (both None) the whole site."""

    exclusion_id: str
    port_id: str | None
    station_id: str | None
    start: float
    end: float | None
    reason: str
    note: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExclusionRecord:
        """Build a record from a recorder row or an event's data."""
        end = row.get("end")
        reason = str(row.get("reason") or REASON_OTHER)
        return cls(
            str(row["exclusion_id"]),
            None if row.get("port_id") is None else str(row["port_id"]),
            None if row.get("station_id") is None else str(row["station_id"]),
            float(row["start"]),
            None if end is None else float(end),
            reason if reason in REASONS else REASON_OTHER,
            None if row.get("note") is None else str(row["note"]),
        )

    def as_data(self, deleted: bool = False) -> dict[str, Any]:
        """Return the EVENT_EXCLUSION data."""
        return {
            "exclusion_id": self.exclusion_id,
            "port_id": self.port_id,
            "station_id": self.station_id,
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "note": self.note,
            "deleted": deleted,
        }

    def applies_to(self, port_id: str, station_id: str | None) -> bool:
        """Tell whether the exclusion covers a port."""
        if self.port_id is not None:
            return self.port_id == port_id
        if self.station_id is not None:
            return self.station_id == station_id
        return True

    def interval(self) -> Interval:
        """Return [start, end), an open-ended exclusion ending never."""
        return (self.start, INF if self.end is None else self.end)


# Operating hours -------------------------------------------------------------------------

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


def _split_years(intervals: Sequence[Interval], zone: zoneinfo.ZoneInfo) -> list[Interval]:
    pieces: list[Interval] = []
    for start, end in intervals:
        cursor = start
        while cursor < end:
            boundary = datetime(datetime.fromtimestamp(cursor, zone).year + 1, 1, 1, tzinfo=zone)
            stop = min(end, boundary.timestamp())
            pieces.append((cursor, stop))
            cursor = stop
    return pieces


# The formulas ----------------------------------------------------------------------------


def excluded_intervals(
    down: Sequence[Interval],
    exclusions: Iterable[ExclusionRecord],
    zone: zoneinfo.ZoneInfo,
    closed: Sequence[Interval] = (),
    rules: Rules = NEVI_RULES,
) -> list[Interval]:
    """Return the excluded parts of a port's down time (merged) under one regulation's rules.

    closed: the port's time outside operating hours (excluded where the rules say so).
    Exclusions whose reason the rules do not name, and exclusions outside the down time,
    count zero. Uncapped reasons first, then vandalism (capped per incident), then
    maintenance (capped per calendar year), each in start order; the caps count only excluded
    outage time.
    """
    ordered = sorted(
        (x for x in exclusions if x.reason in rules.reasons),
        key=lambda item: (item.start, item.exclusion_id),
    )
    capped = {
        reason
        for reason, cap in (
            (REASON_VANDALISM, rules.vandalism_cap_s),
            (REASON_MAINTENANCE, rules.maintenance_cap_s),
        )
        if cap is not None
    }
    uncapped = merge(
        [*(closed if rules.outside_hours else ())]
        + [x.interval() for x in ordered if x.reason not in capped]
    )
    excluded = intersect(down, uncapped)
    if rules.vandalism_cap_s is not None:
        for item in ordered:
            if item.reason != REASON_VANDALISM:
                continue
            candidate = subtract(intersect(down, [item.interval()]), excluded)
            excluded = merge([*excluded, *take_first(candidate, rules.vandalism_cap_s)])
    if rules.maintenance_cap_s is not None:
        used: dict[int, float] = {}
        for item in ordered:
            if item.reason != REASON_MAINTENANCE:
                continue
            candidate = subtract(intersect(down, [item.interval()]), excluded)
            taken: list[Interval] = []
            for start, end in _split_years(candidate, zone):
                year = datetime.fromtimestamp(start, zone).year
                room = rules.maintenance_cap_s - used.get(year, 0.0)
                if room <= 0:
                    continue
                stop = min(end, start + room)
                used[year] = used.get(year, 0.0) + (stop - start)
                taken.append((start, stop))
            excluded = merge([*excluded, *taken])
    return excluded


@dataclass(frozen=True, slots=True)
class UptimeFigures:
    """T_outage, T_excluded and the window, in seconds; minutes and percent derived."""

    start: float
    end: float
    outage_s: float
    excluded_s: float

    @property
    def window_s(self) -> float:
        """Length of the window in seconds."""
        return max(0.0, self.end - self.start)

    @property
    def t_outage_min(self) -> float:
        """T_outage in minutes."""
        return self.outage_s / MINUTE

    @property
    def t_excluded_min(self) -> float:
        """T_excluded in minutes."""
        return self.excluded_s / MINUTE

    @property
    def window_min(self) -> float:
        """The window in minutes (525,600 for the trailing 12 months)."""
        return self.window_s / MINUTE

    @property
    def uptime_percent(self) -> float | None:
        """((W - (T_outage - T_excluded)) / W) x 100; None for an empty window (not in service)."""
        window = self.window_s
        if window <= 0:
            return None
        return (window - (self.outage_s - self.excluded_s)) / window * 100.0

    def as_dict(self) -> dict[str, Any]:
        """Return the figures in the units reports use."""
        return {
            "start": self.start,
            "end": self.end,
            "window_min": round(self.window_min, 4),
            "t_outage_min": round(self.t_outage_min, 4),
            "t_excluded_min": round(self.t_excluded_min, 4),
            "uptime_percent": _rounded(self.uptime_percent, 4),
        }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def mean_percent(figures: Iterable[UptimeFigures]) -> float | None:
    """Return the mean uptime of the figures with a window (ports in service); None if none."""
    found = [f.uptime_percent for f in figures]
    counted = [value for value in found if value is not None]
    return sum(counted) / len(counted) if counted else None


# A window's figures under NEVI and under CEC.
_Pair = tuple[UptimeFigures, UptimeFigures]


def _never_down(start: float, end: float, in_service: float) -> UptimeFigures:
    """The figures over [start, end) of a port without outages, clipped to in service."""
    begin = min(max(start, in_service), end)
    return UptimeFigures(begin, end, 0.0, 0.0)


def _summed(figures: Sequence[UptimeFigures], end: float) -> UptimeFigures:
    """A station's minute totals: the sums of its ports' (from its earliest port's start)."""
    return UptimeFigures(
        min(f.start for f in figures),
        end,
        sum(f.outage_s for f in figures),
        sum(f.excluded_s for f in figures),
    )


@dataclass(frozen=True, slots=True)
class IntervalRecord:
    """One 15-minute interval of one port: up, down or excluded, with its seconds."""

    start: float
    status: str
    outage_s: float
    excluded_s: float


@dataclass(slots=True)
class PortHistory:
    """A port's down and excluded time, from which any window's figures follow.

    The excluded time is kept per regulation (``excluded_by``: rule name -> intervals).
    Open outages are taken to last until ``until``; figures after ``until`` are not counted,
    nor before ``in_service`` (-inf: always in service, inf: never).
    """

    port_id: str
    station_id: str | None
    outages: list[OutageRecord]
    until: float
    down: list[Interval] = field(default_factory=list)
    excluded_by: dict[str, list[Interval]] = field(default_factory=dict)
    in_service: float = -INF

    @property
    def excluded(self) -> list[Interval]:
        """The excluded time under NEVI."""
        return self.excluded_by.get(RULE_NEVI, [])

    @classmethod
    def build(
        cls,
        port_id: str,
        station_id: str | None,
        outages: Iterable[OutageRecord],
        exclusions: Iterable[ExclusionRecord],
        *,
        until: float,
        zone: zoneinfo.ZoneInfo,
        hours: OperatingHours | HoursHistory | None = None,
        in_service: float = -INF,
        rules: Iterable[Rules] = (NEVI_RULES, CEC_RULES),
    ) -> PortHistory:
        """Compute the down and excluded intervals of a port up to `until`."""
        mine = [o for o in outages if o.port_id == port_id and o.start < until]
        down = merge((o.start, min(o.interval(until)[1], until)) for o in mine)
        closed: list[Interval] = []
        if hours is not None:
            for start, end in down:
                closed.extend(hours.closed_intervals(start, end, zone))
        applicable = [x for x in exclusions if x.applies_to(port_id, station_id)]
        excluded_by = {
            rule.name: excluded_intervals(down, applicable, zone, closed, rule) for rule in rules
        }
        return cls(port_id, station_id, mine, until, down, excluded_by, in_service)

    def figures(self, start: float, end: float, rules: Rules | str = NEVI_RULES) -> UptimeFigures:
        """Return the figures over [start, end) under the rules, cut at `until` and clipped to
        in service.

        A window entirely before the in-service start is empty: it starts and ends at its
        (cut) end.
        """
        name = rules if isinstance(rules, str) else rules.name
        stop = max(start, min(end, self.until))
        begin = min(max(start, self.in_service), stop)
        return UptimeFigures(
            begin,
            stop,
            total(clip(self.down, begin, stop)),
            total(clip(self.excluded_by[name], begin, stop)),
        )

    def intervals(
        self, start: float, end: float, rules: Rules | str = CEC_RULES
    ) -> list[IntervalRecord]:
        """Return the 15-minute intervals (aligned to the epoch) overlapping [start, end).

        Intervals before the in-service start are left out; the one it falls in counts
        from it. CEC's reliability data by default.
        """
        if self.in_service >= end:
            return []
        name = rules if isinstance(rules, str) else rules.name
        begin = max(start, self.in_service)
        first = math.floor(begin / INTERVAL_S) * INTERVAL_S
        found: list[IntervalRecord] = []
        down = clip(self.down, begin, end)
        excluded = clip(self.excluded_by[name], begin, end)
        cursor = first
        while cursor < end:
            stop = cursor + INTERVAL_S
            outage = total(clip(down, cursor, stop))
            excl = total(clip(excluded, cursor, stop))
            if outage - excl > 0:
                status = INTERVAL_DOWN
            elif outage > 0:
                status = INTERVAL_EXCLUDED
            else:
                status = INTERVAL_UP
            found.append(IntervalRecord(cursor, status, outage, excl))
            cursor = stop
        return found

    def outage_rows(self, start: float, end: float) -> list[dict[str, Any]]:
        """Return each outage overlapping [start, end) with its duration and the excluded
        minutes under each regulation (``excluded_min`` is NEVI's, ``cec_excluded_min``
        CEC's)."""
        end = min(end, self.until)
        rows: list[dict[str, Any]] = []
        for outage in sorted(self.outages, key=lambda o: (o.start, o.outage_id)):
            span = clip([outage.interval(self.until)], start, end)
            if not span:
                continue
            row = {
                "outage_id": outage.outage_id,
                "port_id": outage.port_id,
                "station_id": outage.station_id,
                "start": outage.start,
                "end": outage.end,
                "cause": outage.cause,
                "duration_min": round(total(span) / MINUTE, 4),
            }
            for name, excluded in self.excluded_by.items():
                key = "excluded_min" if name == RULE_NEVI else f"{name}_excluded_min"
                row[key] = round(total(intersect(span, excluded)) / MINUTE, 4)
            rows.append(row)
        return rows


def trailing_window(now: float) -> tuple[float, float]:
    """Return the NEVI trailing 12 months: the 525,600 minutes before now."""
    return (now - NEVI_YEAR_SECONDS, now)


def history_start(start: float, zone: zoneinfo.ZoneInfo) -> float:
    """Return how far back history must reach for a window starting at start (the caps)."""
    return year_start(start, zone)


# Configuration ---------------------------------------------------------------------------


# A station's stated hours as configured: one statement, or a history of statements each
# with the local date it took effect ("since"; the first may leave it out).
HoursStatement = tuple[date | None, WeeklyHours]


def _statement(value: Any) -> WeeklyHours:
    try:
        return WeeklyHours.parse(value)
    except ValueError as err:
        raise vol.Invalid(str(err)) from err


def _hours(value: Any) -> tuple[HoursStatement, ...]:
    """Validate operating hours: a statement, or a list of {since: date, hours: statement}."""
    if not isinstance(value, list):
        return ((None, _statement(value)),)
    if not value:
        raise vol.Invalid("operating hours: an empty list")
    found: list[HoursStatement] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or "hours" not in item:
            raise vol.Invalid(f"operating hours [{index}]: expected {{since: date, hours: ...}}")
        unknown = set(item) - {"since", "hours"}
        if unknown:
            raise vol.Invalid(f"operating hours [{index}]: unknown key {sorted(unknown)[0]!r}")
        since = item.get("since")
        if since is None and index:
            raise vol.Invalid(f"operating hours [{index}]: only the first may leave out since")
        day: date | None = None
        if since is not None:
            try:
                day = since if isinstance(since, date) else date.fromisoformat(str(since))
            except ValueError as err:
                raise vol.Invalid(
                    f"operating hours [{index}]: since {since!r} is not a date"
                ) from err
            if found and found[-1][0] is not None and day <= found[-1][0]:
                raise vol.Invalid(f"operating hours [{index}]: since dates must increase")
        found.append((day, _statement(item["hours"])))
    return tuple(found)


def _holidays(value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise vol.Invalid("holidays: expected a list of dates (YYYY-MM-DD)")
    days: set[date] = set()
    for item in value:
        try:
            days.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
        except ValueError as err:
            raise vol.Invalid(f"holidays: {item!r} is not a date (YYYY-MM-DD)") from err
    return frozenset(days)


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


CONF_HOLIDAYS: Final = "holidays"

CONFIG_SCHEMA: Final = vol.All(
    _none_to_empty,
    vol.Schema(
        {
            vol.Optional(CONF_OPERATING_HOURS): _hours,
            vol.Optional(CONF_HOLIDAYS, default=[]): _holidays,
            vol.Optional(CONF_STATIONS, default={}): vol.All(
                _none_to_empty, {str: vol.Schema({vol.Optional(CONF_OPERATING_HOURS): _hours})}
            ),
            vol.Optional(CONF_NO_POWER): vol.Schema(
                {
                    vol.Optional(CONF_MIN_POWER_W, default=100.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0)
                    ),
                    vol.Optional(CONF_AFTER_MINUTES, default=10.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0)
                    ),
                }
            ),
            vol.Optional(CONF_OFFLINE_GRACE, default=DEFAULT_OFFLINE_GRACE): vol.All(
                vol.Coerce(float), vol.Range(min=0, max=86_400)
            ),
        }
    ),
)

GLOBAL_HOURS_KEY: Final = "*"


def hours_key(
    config: Mapping[str, Any], station: DeviceEntry | None, station_key: str | None = None
) -> str | None:
    """The config key whose operating hours apply to a station: its own entry (by name,
    device id or an identifier's id), else the global one ("*"), else None."""
    stations: Mapping[str, Any] = config.get(CONF_STATIONS) or {}
    keys: list[str] = []
    if station_key is not None:
        keys.append(station_key)
    if station is not None:
        keys.extend([station.id, *(ident for _, ident in station.identifiers)])
        if station.name:
            keys.append(station.name)
    for key in keys:
        entry = stations.get(key)
        if entry and entry.get(CONF_OPERATING_HOURS) is not None:
            return key
    return GLOBAL_HOURS_KEY if config.get(CONF_OPERATING_HOURS) is not None else None


def _configured(config: Mapping[str, Any], key: str) -> tuple[HoursStatement, ...]:
    if key == GLOBAL_HOURS_KEY:
        found: tuple[HoursStatement, ...] = config.get(CONF_OPERATING_HOURS) or ()
        return found
    entry = (config.get(CONF_STATIONS) or {}).get(key) or {}
    return tuple(entry.get(CONF_OPERATING_HOURS) or ())


def hours_for(
    config: Mapping[str, Any],
    station: DeviceEntry | None,
    station_key: str | None = None,
    *,
    zone: zoneinfo.ZoneInfo | None = None,
    logged: Mapping[str, Sequence[tuple[float, Any]]] | None = None,
) -> HoursHistory | None:
    """Return the stated hours of a station as they changed over time, or None (always open).

    A history written in config (``since`` dates, hub time zone) is taken as written. A single
    statement has the history the engine logged each time it changed (``logged``: config key
    -> [(since, described hours)]), so editing it does not rewrite the past.
    """
    key = hours_key(config, station, station_key)
    if key is None:
        return None
    zone = zone or zoneinfo.ZoneInfo("UTC")
    holidays: frozenset[date] = config.get(CONF_HOLIDAYS) or frozenset()
    statements = _configured(config, key)
    if len(statements) == 1 and statements[0][0] is None:
        current = replace(statements[0][1], holidays=holidays)
        entries: list[tuple[float, WeeklyHours]] = []
        for since, described in (logged or {}).get(key, ()):
            try:
                entries.append((float(since), WeeklyHours.parse(described, holidays)))
            except (TypeError, ValueError):
                continue
        if not entries:
            entries.append((-INF, current))
        # A statement edited since the engine last logged it applies from when the engine
        # logs it (at its next start), never to the past.
        return HoursHistory(tuple(entries))
    return HoursHistory(
        tuple(
            (
                -INF if since is None else datetime.combine(since, dt_time(0), zone).timestamp(),
                replace(hours, holidays=holidays),
            )
            for since, hours in statements
        )
    )


def parse_time(value: Any, zone: zoneinfo.ZoneInfo) -> float:
    """Return POSIX seconds from a number, a datetime or an ISO string (naive: hub zone)."""
    if isinstance(value, bool):
        raise vol.Invalid(f"expected a time, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as err:
            raise vol.Invalid(f"expected an ISO 8601 time, got {value!r}") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def _time_of(value: Any, default: float) -> float:
    """Return an event's POSIX time field, or default when it has none."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


# The live engine -------------------------------------------------------------------------


@dataclass(slots=True)
class _LowPower:
    since: float
    timer: Timer | None


class UptimeEngine:
    """Turns charger events into outages, keeps exclusions, and the uptime sensors live."""

    def __init__(self, hub: Hub, config: Mapping[str, Any], recorder: Any) -> None:
        self.hub = hub
        self.config = config
        self.recorder = recorder
        time_zone = hub.config.time_zone if hub.config is not None else "UTC"
        self.zone = zoneinfo.ZoneInfo(time_zone)
        self.offline_grace: float = config.get(CONF_OFFLINE_GRACE, DEFAULT_OFFLINE_GRACE)
        no_power = config.get(CONF_NO_POWER)
        self.min_power_w: float | None = None if no_power is None else no_power[CONF_MIN_POWER_W]
        self.after_s = 0.0 if no_power is None else no_power[CONF_AFTER_MINUTES] * MINUTE
        self._store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY)
        self._closed: dict[str, list[OutageRecord]] = {}
        self._open: dict[str, dict[str, OutageRecord]] = {}
        self._carried: set[str] = set()
        self.exclusions: dict[str, ExclusionRecord] = {}
        self._status: dict[str, str] = {}
        # The time of the last news applied per port, and charger times not taken.
        self._news: dict[str, float] = {}
        # Station -> (when its last silence began, when it came back online); station ->
        # when it went offline (while it is).
        self._gap: dict[str, tuple[float, float]] = {}
        self._offline_at: dict[str, float] = {}
        self.clock_notes: dict[str, int] = {}
        self._clock_logged: dict[str, float] = {}
        self._sessions: set[str] = set()
        # Ports locked with an excluded reason: port -> (the exclusion that covers the lock,
        # whether the port went Unavailable since).
        self._locks: dict[str, tuple[str, bool]] = {}
        self.hours_log: dict[str, list[tuple[float, Any]]] = {}
        self._release_timers: dict[str, Timer] = {}
        self._low: dict[str, _LowPower] = {}
        self._power_entities: dict[str, str] = {}
        self._power_of_port: dict[str, str] = {}
        self._unsubs: list[Unsubscribe] = []
        self._timers: list[Timer] = []
        self._tick_timer: Timer | None = None
        self._alive_timer: asyncio.TimerHandle | None = None
        self._updating: asyncio.Task[None] | None = None
        self._cache: dict[str, PortHistory] = {}
        # Port -> station and station -> ports, kept from device registry changes (a fleet's
        # registry walked once, not for every event and every minute).
        self._port_station: dict[str, str] | None = None
        self._station_ports: dict[str, list[str]] = {}
        self._in_service: dict[str, float] = {}
        self._sensor_ids: dict[str, str] = {}
        self._sensors_made = 0
        self._last_percent: dict[str, tuple[int, int | None]] = {}
        self.started_at = 0.0
        self._pruned = 0.0
        self.resume_from = 0.0
        self.last_alive: float | None = None
        self._in_grace = True
        self._stopping = False

    # Time and lifecycle -----------------------------------------------------------------

    def now(self) -> float:
        """The hub clock's time."""
        return clock(self.hub).time()

    async def start(self) -> None:
        """Load state and history, listen, and schedule the grace end and the minute tick."""
        now = self.started_at = self.now()
        stored = await self._store.load() or {}
        last_alive = stored.get("last_alive")
        self.last_alive = float(last_alive) if isinstance(last_alive, int | float) else None
        marked = await self.hub.run_in_executor(_read_alive, self._alive_path)
        if marked is not None and (self.last_alive is None or marked > self.last_alive):
            self.last_alive = marked
        # Outages carried over the restart close at the previous run's last moment alive.
        self.resume_from = now if self.last_alive is None else min(self.last_alive, now)
        locks = stored.get("locks")
        if isinstance(locks, Mapping):
            for port, lock in locks.items():
                with contextlib.suppress(TypeError, ValueError):
                    self._locks[str(port)] = (str(lock[0]), bool(lock[1]))
        self._log_hours(now, stored.get("hours_log"))
        since = history_start(now - NEVI_YEAR_SECONDS, self.zone)
        for row in await self.recorder.outages(since, now + DAY):
            try:
                record = OutageRecord.from_row(row)
            except (KeyError, TypeError, ValueError):
                _LOGGER.warning("Uptime: skipping a bad outage row %s", row)
                continue
            if record.end is None:
                self._open.setdefault(record.port_id, {})[record.cause] = record
                self._carried.add(record.outage_id)
            else:
                self._closed.setdefault(record.port_id, []).append(record)
        # In-service starts: one query; recorded times follow the hub clock.
        self._in_service = dict(await self.recorder.first_seen())
        for record in self.outages():
            self._note_in_service(record.port_id, record.start)
        for row in await self.recorder.exclusions(since, now + 3650 * DAY):
            try:
                exclusion = ExclusionRecord.from_row(row)
            except (KeyError, TypeError, ValueError):
                _LOGGER.warning("Uptime: skipping a bad exclusion row %s", row)
                continue
            self.exclusions[exclusion.exclusion_id] = exclusion
        # A lock's exclusion the recorder kept while the engine's store missed it (a crash
        # within its save delay): adopted, so it ends when the port is back in use.
        for exclusion in self.exclusions.values():
            port = exclusion.port_id
            if exclusion.exclusion_id.startswith(LOCK_PREFIX) and exclusion.end is None and port:
                self._locks.setdefault(port, (exclusion.exclusion_id, True))
        if self.last_alive is None:
            self.last_alive = now
        for port_id, records in list(self._open.items()):
            stale = records.pop(CAUSE_NO_POWER, None)
            if stale is not None:  # sessions and power are live facts: not carried over
                self._carried.discard(stale.outage_id)
                self._finish(stale, self.resume_from)
            if not records:
                self._open.pop(port_id, None)
        bus = self.hub.bus
        self._unsubs = [
            bus.listen(EVENT_CHARGER, self._on_charger_event),
            bus.listen(
                EVENT_CALL_SERVICE,
                self._on_call_service,
                lambda data: (
                    data.get(ATTR_DOMAIN) == "charger"
                    and data.get(ATTR_SERVICE) == "set_availability"
                ),
            ),
            bus.listen(EVENT_HUB_STOP, self._on_hub_stop),
            bus.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._on_device_registry_updated),
        ]
        if self.min_power_w is not None:
            self._refresh_power_entities()
            self._unsubs.append(
                bus.listen(EVENT_ENTITY_REGISTRY_UPDATED, self._on_entity_registry_updated)
            )
            self._unsubs.append(
                bus.listen(
                    EVENT_STATE_CHANGED,
                    self._on_power_changed,
                    lambda data: data.get(ATTR_ENTITY_ID) in self._power_entities,
                )
            )
        self._timers.append(clock(self.hub).call_later(self.offline_grace, self._grace_over))
        self._save()
        self._tick()
        self._mark_alive()

    async def stop(self) -> None:
        """Stop listening and keep the last moment alive for the next start."""
        self._stopping = True
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        for timer in [*self._timers, *self._release_timers.values()]:
            timer.cancel()
        for low in self._low.values():
            if low.timer is not None:
                low.timer.cancel()
        if self._tick_timer is not None:
            self._tick_timer.cancel()
        if self._alive_timer is not None:
            self._alive_timer.cancel()
            self._alive_timer = None
        if self._updating is not None and not self._updating.done():
            self._updating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updating
        self._timers.clear()
        self._release_timers.clear()
        self.last_alive = self.now()
        await self._store.save(self._data_to_save())

    @property
    def _alive_path(self) -> Path:
        return Path(self.hub.path(STORAGE_DIR, ALIVE_FILE))

    def _mark_alive(self) -> None:
        """Write the hub clock's time to the alive file, then again a second later."""
        self._alive_timer = None
        if self._stopping:
            return
        now = self.now()
        self.hub.create_task(
            self.hub.run_in_executor(_write_alive, self._alive_path, now), "uptime alive mark"
        )
        # Real seconds, not the hub clock's: a crash happens in real time.
        self._alive_timer = self.hub.loop.call_later(ALIVE_INTERVAL, self._mark_alive)

    def _on_hub_stop(self, _event: Event) -> None:
        self._stopping = True
        self.last_alive = self.now()
        self._save()

    def _data_to_save(self) -> dict[str, Any]:
        return {
            "last_alive": self.last_alive,
            "locks": {port: list(lock) for port, lock in self._locks.items()},
            "hours_log": {
                key: [list(item) for item in items] for key, items in self.hours_log.items()
            },
        }

    def _log_hours(self, now: float, stored: Any) -> None:
        """Keep the history of each stated hours written as one statement in config: a
        change is logged with the time the engine first saw it."""
        log: dict[str, list[tuple[float, Any]]] = {}
        if isinstance(stored, Mapping):
            for key, items in stored.items():
                try:
                    log[str(key)] = [(float(since), described) for since, described in items]
                except (TypeError, ValueError):
                    _LOGGER.warning("Uptime: skipping a bad operating hours log for %s", key)
        keys = [GLOBAL_HOURS_KEY, *(self.config.get(CONF_STATIONS) or {})]
        for key in keys:
            statements = _configured(self.config, key)
            if len(statements) != 1 or statements[0][0] is not None:
                continue
            described = statements[0][1].describe()
            items = log.setdefault(key, [])
            if not items or items[-1][1] != described:
                items.append((now, described))
        self.hours_log = log

    def _save(self) -> None:
        self._store.delay_save(self._data_to_save)

    def _tick(self) -> None:
        self._tick_timer = None
        if self._stopping:
            return
        now = self.last_alive = self.now()
        self._save()
        if now - self._pruned >= DAY:
            self._prune(now)
        if len(self.all_ports()) <= UPDATE_SLICE:
            self.update_sensors()
        elif self._updating is None or self._updating.done():
            self._updating = self.hub.create_task(self._update_in_slices(), "uptime sensors")
        self._tick_timer = clock(self.hub).call_later(UPDATE_INTERVAL, self._tick)

    async def _update_in_slices(self) -> None:
        """Update a large fleet's sensors whole stations at a time, yielding to the loop
        every UPDATE_SLICE_S seconds (chargers' messages wait at most that long)."""
        # The station ids only: one list, not a container per station for the collector to
        # traverse while the update runs.
        stations = list(self._stations())
        started = time.perf_counter()
        made = self._sensors_made
        for station_id in stations:
            ports = self._station_ports.get(station_id)
            if ports:
                self._update_ports(dict.fromkeys(ports, station_id))
            if time.perf_counter() - started >= UPDATE_SLICE_S:
                if self._sensors_made - made >= FREEZE_AFTER_SENSORS:
                    # A fleet's first sensors (after a start or a burst of new chargers): long
                    # lived, kept out of the collector's young generation.
                    freeze_new_long_lived()
                made = self._sensors_made
                await asyncio.sleep(0)
                if self._stopping:
                    return
                started = time.perf_counter()

    def _prune(self, now: float) -> None:
        """Forget closed outages older than any trailing window still needs."""
        self._pruned = now
        since = history_start(now - NEVI_YEAR_SECONDS, self.zone)
        for port_id, records in list(self._closed.items()):
            kept = [r for r in records if r.end is None or r.end > since]
            if kept:
                self._closed[port_id] = kept
            else:
                del self._closed[port_id]

    def _grace_over(self) -> None:
        """The start's grace is over: carried outages continue; absent stations are offline."""
        self._in_grace = False
        now = self.now()
        devices = device_registry(self.hub)
        for station in devices.devices(kind=DeviceKind.STATION):
            charger = get_charger(self.hub, station.id)
            ports = self.ports_of(station.id)
            if charger is None or not ports:
                continue
            if charger.online:
                for port_id in ports:
                    self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=False)
                continue
            for port_id in ports:
                if not self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=True):
                    self._start(port_id, station.id, CAUSE_OFFLINE, now)
        self._carried.clear()

    def _resolve_carried(
        self, port_id: str, cause: str, *, still_down: bool, when: float | None = None
    ) -> bool:
        """Decide an outage carried over a restart; True if one continues.

        One that is over ends when the charger says the port came back (``when``, e.g. while
        the hub was down), else at the hub's last moment alive.
        """
        record = self._open.get(port_id, {}).get(cause)
        if record is None:
            return False
        if record.outage_id not in self._carried:
            return still_down
        self._carried.discard(record.outage_id)
        if still_down:
            return True
        self._end(port_id, cause, self.resume_from if when is None else when)
        return False

    # Devices ------------------------------------------------------------------------------

    def _ports(self) -> dict[str, str]:
        """Port -> station, built from the registry once, then kept from its changes."""
        found = self._port_station
        if found is None:
            devices = device_registry(self.hub)
            found = self._port_station = {}
            self._station_ports = {}
            for station in devices.devices(kind=DeviceKind.STATION):
                ports = [
                    device.id
                    for device in devices.descendants(station.id)
                    if device.kind is DeviceKind.CONNECTOR
                ]
                for port_id in ports:
                    found[port_id] = station.id
                if ports:
                    self._station_ports[station.id] = ports
        return found

    def _stations(self) -> dict[str, list[str]]:
        """Station -> its ports (stations without ports left out)."""
        self._ports()
        return self._station_ports

    def _on_device_registry_updated(self, event: Event) -> None:
        found = self._port_station
        if found is None:
            return
        device_id = event.data.get(ATTR_DEVICE_ID)
        device = device_registry(self.hub).get(device_id) if device_id else None
        action = event.data.get("action")
        if action == "create":
            # A new station has no ports yet; a new port joins its station.
            if device is not None and device.kind is DeviceKind.CONNECTOR:
                station = device_registry(self.hub).station_of(device.id)
                if station is not None and device.id not in found:
                    found[device.id] = station.id
                    self._station_ports.setdefault(station.id, []).append(device.id)
            return
        if action == "update" and not {"via_device_id", "kind"} & set(
            event.data.get("changes", {})
        ):
            return  # a name, a model, a firmware: where ports belong is unchanged
        # A removal or a move: rare; build again when next asked.
        self._port_station = None

    def ports_of(self, station_id: str) -> list[str]:
        """Return the port device ids of a station."""
        return list(self._stations().get(station_id, ()))

    def all_ports(self) -> dict[str, str]:
        """Return every port device id with its station's device id."""
        return dict(self._ports())

    def _station_of(self, port_id: str) -> str | None:
        found = self._ports().get(port_id)
        if found is not None:
            return found
        station = device_registry(self.hub).station_of(port_id)
        return None if station is None else station.id

    def in_service_of(self, port_id: str) -> float:
        """Return when a port came into service: recorded, else its registry entry (inf: never)."""
        found = self._in_service.get(port_id)
        if found is not None:
            return found
        # Nothing recorded: the registry's real time, never after the hub clock's now.
        device = device_registry(self.hub).get(port_id)
        return INF if device is None else min(device.created_at, self.now())

    def _note_in_service(self, port_id: str, when: float) -> None:
        """Move a port's in-service start earlier to `when` if it is earlier."""
        if math.isfinite(when) and when < self._in_service.get(port_id, INF):
            self._in_service[port_id] = when
            self._cache.pop(port_id, None)

    # Outages ------------------------------------------------------------------------------

    def _start(self, port_id: str, station_id: str | None, cause: str, start: float) -> None:
        ports = self._open.setdefault(port_id, {})
        if cause in ports:
            return
        record = OutageRecord(new_id(), port_id, station_id, start, None, cause)
        ports[cause] = record
        self._note_in_service(port_id, start)
        self.hub.bus.fire(EVENT_OUTAGE, record.as_data())
        self._changed(port_id)

    def _end(self, port_id: str, cause: str, end: float) -> None:
        ports = self._open.get(port_id)
        record = None if ports is None else ports.pop(cause, None)
        if record is None:
            return
        if ports is not None and not ports:
            self._open.pop(port_id, None)
        self._carried.discard(record.outage_id)
        self._finish(record, end)
        self._changed(port_id)

    def _finish(self, record: OutageRecord, end: float) -> None:
        closed = replace(record, end=max(end, record.start))
        self._closed.setdefault(record.port_id, []).append(closed)
        self.hub.bus.fire(EVENT_OUTAGE, closed.as_data())

    def open_outages(self) -> list[OutageRecord]:
        """Return the outages open now."""
        return [record for ports in self._open.values() for record in ports.values()]

    def outages(self, port_id: str | None = None) -> list[OutageRecord]:
        """Return the outages kept in memory (closed and open), of one port or all."""
        ports = [port_id] if port_id is not None else list({*self._closed, *self._open})
        found: list[OutageRecord] = []
        for port in ports:
            found.extend(self._closed.get(port, ()))
            found.extend(self._open.get(port, {}).values())
        return sorted(found, key=lambda o: (o.start, o.outage_id))

    # Events -------------------------------------------------------------------------------

    def _active(self) -> bool:
        return not self._stopping and self.hub.is_running

    def _on_charger_event(self, event: Event) -> None:
        if not self._active():
            return
        data = event.data
        kind = data.get("kind")
        station_id = data.get("station_id")
        if not isinstance(station_id, str):
            return
        now = self.now()
        if kind == "status":
            port_id = data.get("device_id")
            status = data.get("status")
            if isinstance(port_id, str) and port_id != station_id and isinstance(status, str):
                when, stated = self._news_time(port_id, station_id, data.get("time"), now)
                self._note_in_service(port_id, when)
                self._on_status(port_id, station_id, status, when, stated=stated)
        elif kind == "offline":
            self._offline_at.setdefault(station_id, now)
            for port_id in self.ports_of(station_id):
                if not self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=True):
                    self._start(port_id, station_id, CAUSE_OFFLINE, now)
        elif kind == "online":
            # Its silence began when it went offline, or (its first time online since the
            # start) at the hub's last moment alive.
            silent_since = self._offline_at.pop(station_id, None)
            if silent_since is None and station_id not in self._gap:
                silent_since = self.resume_from
            if silent_since is not None:
                self._gap[station_id] = (silent_since, now)
            ports = self.ports_of(station_id)
            for port_id in ports:
                if not self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=False):
                    self._end(port_id, CAUSE_OFFLINE, now)
            if any(
                record.outage_id in self._carried
                for port_id in ports
                for record in self._open.get(port_id, {}).values()
            ):
                self._ask_status(station_id)
        elif kind in ("session_started", "session_ended"):
            port_id = data.get("device_id")
            if isinstance(port_id, str) and port_id != station_id:
                self._note_in_service(port_id, min(now, _time_of(data.get("started_at"), now)))
                if kind == "session_started":
                    self._sessions.add(port_id)
                else:
                    self._sessions.discard(port_id)
                self._check_power(port_id, now)

    def _ask_status(self, station_id: str) -> None:
        """Ask a station back after a restart for its ports' status: the news that decides."""
        charger = get_charger(self.hub, station_id)
        if charger is None or ChargerCapability.TRIGGER_STATUS not in charger.capabilities:
            return

        async def ask() -> None:
            try:
                await charger.trigger_status(None)
            except Exception as err:  # any driver's failure: the status is only a hint
                _LOGGER.info("Uptime: %s did not report its status: %s", station_id, err)

        self.hub.create_background_task(ask(), f"uptime status of {station_id}")

    def _news_time(
        self, port_id: str, station_id: str, stated: Any, now: float
    ) -> tuple[float, bool]:
        """When a port's news happened, and whether the charger's time was taken.

        The charger's time counts, not when the hub heard it, within a sane window: within
        CLOCK_SKEW_S of the hub clock either way (a live message), or earlier down to the
        start of the station's last silence when the news comes within QUEUE_WINDOW_S of
        its reconnection (a status it queued while it, or the hub, was down). Otherwise,
        and for news older than what was already applied to the port, the receipt time is
        used, noted.
        """
        when, by_charger = now, False
        if isinstance(stated, int | float) and not isinstance(stated, bool):
            if not math.isfinite(stated) or stated > now + CLOCK_SKEW_S:
                self._note_clock(station_id, f"a time {stated - now:.0f} s ahead of the hub clock")
            elif stated >= now - CLOCK_SKEW_S:
                when, by_charger = min(float(stated), now), True
            else:
                gap = self._gap.get(station_id)
                if gap is not None and now - gap[1] <= QUEUE_WINDOW_S and stated >= gap[0]:
                    when, by_charger = float(stated), True
                else:
                    self._note_clock(
                        station_id, f"a time {now - stated:.0f} s behind the hub clock"
                    )
        last = self._news.get(port_id, -INF)
        if when < last:
            self._note_clock(station_id, f"news {last - when:.0f} s older than the last")
            when, by_charger = now, False
        self._news[port_id] = when
        return when, by_charger

    def _note_clock(self, station_id: str, what: str) -> None:
        """Count and log (at most hourly per station) a charger time the engine did not take."""
        self.clock_notes[station_id] = self.clock_notes.get(station_id, 0) + 1
        now = self.now()
        if now - self._clock_logged.get(station_id, -INF) >= 3600:
            self._clock_logged[station_id] = now
            _LOGGER.warning(
                "Uptime: station %s sent %s; the receipt time was used (%d times so far)",
                station_id,
                what,
                self.clock_notes[station_id],
            )

    def _on_status(
        self, port_id: str, station_id: str, status: str, now: float, *, stated: bool = False
    ) -> None:
        """Apply a port's status at `now` (the charger's time when `stated`)."""
        self._status[port_id] = status
        lock = self._locks.get(port_id)
        if lock is not None:
            if status == "Unavailable":
                if not lock[1]:
                    self._locks[port_id] = (lock[0], True)
                    self._save()
            elif lock[1]:
                # The locked port is back in use (or faulted): the lock's reason ends here.
                self._end_lock(port_id, now)
        cause: str | None = None
        if status == "Faulted":
            cause = CAUSE_FAULTED
        elif status == "Unavailable":
            # Unavailable is down, whoever made it so: a lock is an outage; its time is
            # excluded only where the lock gave an excluded reason (an exclusion, see locks).
            cause = CAUSE_UNAVAILABLE
        for other in STATUS_CAUSES:
            if other == cause:
                self._resolve_carried(port_id, other, still_down=True)
            elif not self._resolve_carried(
                port_id, other, still_down=False, when=now if stated else None
            ):
                self._end(port_id, other, now)
        if cause is not None:
            self._start(port_id, station_id, cause, now)
        self._check_power(port_id, now)

    def _target_ports(self, target: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        devices = device_registry(self.hub)
        entities = entity_registry(self.hub)
        ids: list[str] = []
        for source in (target, data):
            for key in (ATTR_DEVICE_ID, ATTR_ENTITY_ID):
                value = source.get(key)
                values = [value] if isinstance(value, str) else list(value or ())
                for item in values:
                    if key == ATTR_ENTITY_ID:
                        entry = entities.get(str(item))
                        if entry is not None and entry.device_id is not None:
                            ids.append(entry.device_id)
                    else:
                        ids.append(str(item))
        connector = data.get("connector_id")
        ports: list[str] = []
        for device_id in dict.fromkeys(ids):
            device = devices.get(device_id)
            if device is None:
                continue
            if device.kind is DeviceKind.CONNECTOR:
                ports.append(device.id)
                continue
            candidates = [
                child
                for child in devices.descendants(device.id)
                if child.kind is DeviceKind.CONNECTOR
            ]
            if isinstance(connector, int) and not isinstance(connector, bool) and connector > 0:
                candidates = [
                    child
                    for child in candidates
                    if connector in (child.connector_id, child.evse_id)
                ]
            ports.extend(child.id for child in candidates)
        return ports

    def _on_call_service(self, event: Event) -> None:
        if not self._active():
            return
        data = event.data
        service_data = data.get(ATTR_SERVICE_DATA) or {}
        available = service_data.get("available")
        if not isinstance(available, bool):
            return
        reason = service_data.get(ATTR_REASON)
        note = service_data.get(ATTR_NOTE)
        now = self.now()
        for port_id in self._target_ports(data.get(ATTR_TARGET) or {}, service_data):
            self._end_lock(port_id, now)
            if available or reason not in REASONS:
                continue
            station_id = self._station_of(port_id)
            exclusion = self.add_exclusion(
                ExclusionRecord(
                    f"{LOCK_PREFIX}{new_id()}",
                    port_id,
                    station_id,
                    now,
                    None,
                    str(reason),
                    str(note) if isinstance(note, str) else "lock",
                )
            )
            self._locks[port_id] = (
                exclusion.exclusion_id,
                self._status.get(port_id) == "Unavailable",
            )
            timer = self._release_timers.pop(port_id, None)
            if timer is not None:
                timer.cancel()

            def check(port_id: str = port_id, exclusion_id: str = exclusion.exclusion_id) -> None:
                """A lock that did not take (refused, the port still in use or available)
                excludes nothing: its exclusion is withdrawn."""
                self._release_timers.pop(port_id, None)
                lock = self._locks.get(port_id)
                if not self._active() or lock is None or lock[0] != exclusion_id or lock[1]:
                    return
                if self._status.get(port_id) in ("Available", "Faulted", None):
                    self._end_lock(port_id, None)

            self._release_timers[port_id] = clock(self.hub).call_later(RELEASE_GRACE, check)
        self._save()

    def _end_lock(self, port_id: str, when: float | None) -> None:
        """End the exclusion of a port's lock at `when` (None: withdraw it)."""
        lock = self._locks.pop(port_id, None)
        timer = self._release_timers.pop(port_id, None)
        if timer is not None:
            timer.cancel()
        if lock is None:
            return
        self._save()
        exclusion = self.exclusions.get(lock[0])
        if exclusion is None or exclusion.end is not None:
            return
        if when is None or when <= exclusion.start:
            self.remove_exclusion(exclusion.exclusion_id)
        else:
            self.add_exclusion(replace(exclusion, end=when))

    # No power ---------------------------------------------------------------------------

    @staticmethod
    def _is_power(entry: Any) -> bool:
        return (
            entry is not None
            and entry.domain == "sensor"
            and entry.device_id is not None
            and (entry.original_name == "power" or entry.unique_id.endswith("-power"))
        )

    def _refresh_power_entities(self) -> None:
        self._power_entities = {}
        self._power_of_port = {}
        for entry in entity_registry(self.hub).entities():
            if self._is_power(entry) and entry.device_id is not None:
                self._power_entities[entry.entity_id] = entry.device_id
                self._power_of_port[entry.device_id] = entry.entity_id

    def _on_entity_registry_updated(self, event: Event) -> None:
        """Follow power sensors one registry change at a time (a fleet registers many)."""
        entity_id = event.data.get("entity_id")
        if not isinstance(entity_id, str):
            return
        for gone in (entity_id, event.data.get("old_entity_id")):
            old_port = self._power_entities.pop(gone, None) if isinstance(gone, str) else None
            if old_port is not None and self._power_of_port.get(old_port) == gone:
                del self._power_of_port[old_port]
        entry = entity_registry(self.hub).get(entity_id)
        if entry is not None and self._is_power(entry) and entry.device_id is not None:
            self._power_entities[entity_id] = entry.device_id
            self._power_of_port[entry.device_id] = entity_id

    def _power_of(self, port_id: str) -> float | None:
        entity_id = self._power_of_port.get(port_id)
        state = None if entity_id is None else self.hub.states.get(entity_id)
        if state is None:
            return None
        try:
            value = float(state.state)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def _on_power_changed(self, event: Event) -> None:
        if not self._active():
            return
        port_id = self._power_entities.get(event.data[ATTR_ENTITY_ID])
        if port_id is not None:
            self._check_power(port_id, self.now())

    def _check_power(self, port_id: str, now: float) -> None:
        if self.min_power_w is None:
            return
        power = self._power_of(port_id)
        low = (
            port_id in self._sessions
            and self._status.get(port_id) == "Charging"
            and power is not None
            and power < self.min_power_w
        )
        current = self._low.get(port_id)
        if low and current is None:
            entry = _LowPower(now, None)

            def expired(port_id: str = port_id, entry: _LowPower = entry) -> None:
                entry.timer = None
                if self._active() and self._low.get(port_id) is entry:
                    self._start(port_id, self._station_of(port_id), CAUSE_NO_POWER, entry.since)

            entry.timer = clock(self.hub).call_later(self.after_s, expired)
            self._low[port_id] = entry
        elif not low and current is not None:
            del self._low[port_id]
            if current.timer is not None:
                current.timer.cancel()
            self._end(port_id, CAUSE_NO_POWER, now)

    # Exclusions ---------------------------------------------------------------------------

    def add_exclusion(self, exclusion: ExclusionRecord) -> ExclusionRecord:
        """Add or replace an exclusion and fire it."""
        if exclusion.end is not None and exclusion.end <= exclusion.start:
            raise ServiceValidationError("an exclusion must end after it starts")
        previous = self.exclusions.get(exclusion.exclusion_id)
        self.exclusions[exclusion.exclusion_id] = exclusion
        self.hub.bus.fire(EVENT_EXCLUSION, exclusion.as_data())
        if previous is not None and (previous.port_id, previous.station_id) != (
            exclusion.port_id,
            exclusion.station_id,
        ):
            self._exclusions_changed(previous)
        self._exclusions_changed(exclusion)
        return exclusion

    def remove_exclusion(self, exclusion_id: str) -> ExclusionRecord:
        """Remove an exclusion and fire its deletion."""
        exclusion = self.exclusions.pop(exclusion_id, None)
        if exclusion is None:
            raise ServiceValidationError(f"no exclusion {exclusion_id!r}")
        self.hub.bus.fire(EVENT_EXCLUSION, exclusion.as_data(deleted=True))
        self._exclusions_changed(exclusion)
        return exclusion

    def _exclusions_changed(self, exclusion: ExclusionRecord) -> None:
        """Recompute the ports an exclusion covers (a port, a station's, or every port)."""
        if exclusion.port_id is not None:
            ports = [exclusion.port_id]
        elif exclusion.station_id is not None:
            ports = self.ports_of(exclusion.station_id)
        else:
            self._cache.clear()
            self.update_sensors()
            return
        for port_id in ports:
            self._cache.pop(port_id, None)
        if ports and not self._stopping:
            self.update_sensors(ports)

    # Figures and sensors ------------------------------------------------------------------

    def _changed(self, port_id: str) -> None:
        self._cache.pop(port_id, None)
        if not self._stopping:
            self.update_sensors([port_id])

    def history(self, port_id: str, station_id: str | None) -> PortHistory:
        """Return a port's history, cached until its outages or the exclusions change."""
        now = self.now()
        in_service = self.in_service_of(port_id)
        cached = self._cache.get(port_id)
        if cached is not None and cached.until >= now and cached.in_service == in_service:
            return cached
        station = device_registry(self.hub).get(station_id) if station_id else None
        built = PortHistory.build(
            port_id,
            station_id,
            self.outages(port_id),
            self.exclusions.values(),
            until=now + DAY,
            zone=self.zone,
            hours=hours_for(self.config, station, zone=self.zone, logged=self.hours_log),
            in_service=in_service,
        )
        self._cache[port_id] = built
        return built

    def port_figures(
        self, port_id: str, start: float, end: float, rules: Rules | str = NEVI_RULES
    ) -> UptimeFigures:
        """Return a port's figures over [start, end) under the rules (NEVI, CEC), cut at now."""
        history = self.history(port_id, self._station_of(port_id))
        return history.figures(start, min(end, self.now()), rules)

    def update_sensors(self, port_ids: Iterable[str] | None = None) -> None:
        """Recompute the uptime sensors (of some ports and their stations, or all)."""
        if port_ids is None:
            chosen = self.all_ports()
        else:
            # Only the stations concerned: an event costs its station, not the fleet.
            chosen = {}
            for port in port_ids:
                station = self._station_of(port)
                if station is None or port in chosen:
                    continue
                for sibling in self.ports_of(station) or [port]:
                    chosen[sibling] = station
        self._update_ports(chosen)

    def _update_ports(self, chosen: Mapping[str, str]) -> None:
        """Recompute the sensors of these ports (port -> station) and of their stations."""
        now = self.now()
        start, end = trailing_window(now)
        month = month_start(now, self.zone)
        by_station: dict[str, list[tuple[_Pair, _Pair, float]]] = {}
        for port_id, station_id in chosen.items():
            if port_id in self._closed or port_id in self._open:
                history = self.history(port_id, station_id)
                in_service = history.in_service
                year = (
                    history.figures(start, end, NEVI_RULES),
                    history.figures(start, end, CEC_RULES),
                )
                mtd = (
                    history.figures(month, now, NEVI_RULES),
                    history.figures(month, now, CEC_RULES),
                )
            else:
                # Never down (most of a fleet): nothing to build or keep, the same figures
                # PortHistory gives for no outages.
                in_service = self.in_service_of(port_id)
                year = (_never_down(start, end, in_service),) * 2
                mtd = (_never_down(month, now, in_service),) * 2
            by_station.setdefault(station_id, []).append((year, mtd, in_service))
            self._write_sensor(
                port_id,
                (year[0].uptime_percent, year[1].uptime_percent),
                (mtd[0].uptime_percent, mtd[1].uptime_percent),
                (year, mtd),
                station_id=station_id,
                port_id=port_id,
                in_service=in_service,
            )
        for station_id, rows in by_station.items():
            # The mean of its ports in service; minute totals are sums.
            years = tuple(_summed([row[0][i] for row in rows], end) for i in (0, 1))
            months = tuple(_summed([row[1][i] for row in rows], now) for i in (0, 1))
            self._write_sensor(
                station_id,
                tuple(mean_percent(row[0][i] for row in rows) for i in (0, 1)),  # type: ignore[arg-type]
                tuple(mean_percent(row[1][i] for row in rows) for i in (0, 1)),  # type: ignore[arg-type]
                (years, months),  # type: ignore[arg-type]
                station_id=station_id,
                ports=len(rows),
                in_service=min(row[2] for row in rows),  # its first port's
            )

    def _sensor_entity(self, device_id: str) -> str:
        entity_id = self._sensor_ids.get(device_id)
        if entity_id is None:
            device = device_registry(self.hub).get(device_id)
            name = (device.name if device is not None else None) or device_id
            entity_id = (
                entity_registry(self.hub)
                .get_or_create(
                    "sensor",
                    DOMAIN,
                    f"{device_id}-uptime",
                    suggested_object_id=f"{name} uptime",
                    device_id=device_id,
                    original_name="uptime",
                )
                .entity_id
            )
            self._sensor_ids[device_id] = entity_id
            self._sensors_made += 1
        return entity_id

    def _write_sensor(
        self,
        device_id: str,
        percent: tuple[float | None, float | None],
        month_percent: tuple[float | None, float | None],
        figures: tuple[_Pair, _Pair],
        *,
        station_id: str,
        port_id: str | None = None,
        ports: int | None = None,
        in_service: float | None = None,
    ) -> None:
        """Write an uptime sensor ("unknown" while not in service) and fire uptime_updated.

        The state is the NEVI figure over the trailing 12 months; the CEC figure, computed
        under its own rules, is in the ``cec_*`` attributes. Attributes stay the same from
        minute to minute unless a figure moves (no window length: it follows from
        ``in_service``). The event is fired when the NEVI figure moves to another 0.01 % step
        (floor), so a target with two decimals is never crossed unseen, and a young port,
        whose figure moves every minute, does not flood the alerts.
        """
        entity_id = self._sensor_entity(device_id)
        (year, cec_year), (mtd, cec_mtd) = figures
        shown = _rounded(percent[0], 3)
        first_year = (
            in_service is not None
            and math.isfinite(in_service)
            and in_service > self.now() - NEVI_YEAR_SECONDS
        )
        attributes: dict[str, Any] = {
            ATTR_FRIENDLY_NAME: f"{self._name(device_id)} uptime",
            ATTR_UNIT_OF_MEASUREMENT: "%",
            "t_outage_min": round(year.t_outage_min, 3),
            "t_excluded_min": round(year.t_excluded_min, 3),
            "month_to_date": _rounded(month_percent[0], 3),
            "month_t_outage_min": round(mtd.t_outage_min, 3),
            "month_t_excluded_min": round(mtd.t_excluded_min, 3),
            "cec_uptime": _rounded(percent[1], 3),
            "cec_t_excluded_min": round(cec_year.t_excluded_min, 3),
            "cec_month_to_date": _rounded(month_percent[1], 3),
            "cec_month_t_excluded_min": round(cec_mtd.t_excluded_min, 3),
            "in_service": (
                utc_iso(in_service)
                if in_service is not None and math.isfinite(in_service)
                else None
            ),
            # In service for less than 12 months: the figures cover the days in service.
            "first_year": first_year,
            "station_id": station_id,
        }
        if port_id is not None:
            attributes["port_id"] = port_id
            attributes["down"] = port_id in self._open
        if ports is not None:
            attributes["ports"] = ports
        value = "unknown" if shown is None else str(shown)
        current = self.hub.states.get(entity_id)
        # Unchanged (the minute's update of a fleet, mostly): no write at all. A reported
        # write would make a new state object and an event per sensor per minute, which only
        # feeds the garbage collector's older generations.
        if current is None or current.state != value or current.attributes != attributes:
            self.hub.states.set(entity_id, value, attributes)
        cec_shown = attributes["cec_uptime"]
        step = (
            None
            if shown is None
            else (
                math.floor(shown * 100 + 1e-6),
                None if cec_shown is None else math.floor(cec_shown * 100 + 1e-6),
            )
        )
        if step is not None and self._last_percent.get(device_id) != step:
            self._last_percent[device_id] = step
            data: dict[str, Any] = {
                "device_id": device_id,
                "station_id": station_id,
                "uptime_percent": shown,
                "cec_uptime_percent": attributes["cec_uptime"],
                # The window the figure covers: short for a port just in service.
                "window_min": round(year.window_min, 3),
                "first_year": first_year,
                "month_to_date": attributes["month_to_date"],
                "t_outage_min": attributes["t_outage_min"],
                "t_excluded_min": attributes["t_excluded_min"],
                "entity_id": entity_id,
            }
            if port_id is not None:
                data["port_id"] = port_id
            self.hub.bus.fire(EVENT_UPTIME_UPDATED, data)

    def _name(self, device_id: str) -> str:
        device = device_registry(self.hub).get(device_id)
        return (device.name if device is not None else None) or device_id


# Services --------------------------------------------------------------------------------


def _target_schema(extra: dict[Any, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Optional(ATTR_DEVICE_ID): vol.All(str, vol.Length(min=1)),
            vol.Optional(ATTR_ENTITY_ID): vol.All(str, vol.Length(min=1)),
            **extra,
        }
    )


ADD_EXCLUSION_SCHEMA: Final = _target_schema(
    {
        vol.Required(ATTR_START): vol.Any(str, int, float, datetime),
        vol.Optional(ATTR_END): vol.Any(None, str, int, float, datetime),
        vol.Required(ATTR_REASON): vol.In(REASONS),
        vol.Optional(ATTR_NOTE): vol.Any(None, vol.All(str, vol.Length(max=1000))),
        vol.Optional(ATTR_EXCLUSION_ID): vol.All(str, vol.Length(min=1, max=64)),
    }
)
REMOVE_EXCLUSION_SCHEMA: Final = vol.Schema(
    {vol.Required(ATTR_EXCLUSION_ID): vol.All(str, vol.Length(min=1, max=64))}
)


def _exclusion_target(hub: Hub, call: ServiceCall) -> tuple[str | None, str | None]:
    """Return (port_id, station_id) of a call's target; (None, None) for the whole site."""
    device_id = call.target.get(ATTR_DEVICE_ID) or call.data.get(ATTR_DEVICE_ID)
    entity_id = call.target.get(ATTR_ENTITY_ID) or call.data.get(ATTR_ENTITY_ID)
    if isinstance(device_id, list | tuple):
        if len(device_id) != 1:
            raise ServiceValidationError("an exclusion targets one station or port")
        device_id = device_id[0]
    if device_id is None and entity_id is not None:
        entry = entity_registry(hub).get(str(entity_id))
        if entry is None or entry.device_id is None:
            raise ServiceValidationError(f"entity {entity_id} belongs to no device")
        device_id = entry.device_id
    if device_id is None:
        return None, None
    devices = device_registry(hub)
    device = devices.get(str(device_id))
    if device is None:
        raise ServiceValidationError(f"device {device_id} not found")
    if device.kind is DeviceKind.STATION:
        return None, device.id
    if device.kind is DeviceKind.CONNECTOR:
        station = devices.station_of(device.id)
        return device.id, None if station is None else station.id
    raise ServiceValidationError(
        f"an exclusion targets a station or a port, not a {device.kind} device"
    )


def _read_alive(path: Path) -> float | None:
    """The time in the alive file, or None if there is none (or it is torn)."""
    try:
        value = float(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _write_alive(path: Path, when: float) -> None:
    """Overwrite the alive file in place (a fixed-width number, so no torn mixes)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, f"{when:020.3f}\n".encode("ascii"), 0)
    finally:
        os.close(fd)


def engine_of(hub: Hub) -> UptimeEngine:
    """Return the hub's uptime engine; UptimeError when the integration is not set up."""
    engine: UptimeEngine | None = hub.data.get(DATA_UPTIME)
    if engine is None:
        raise UptimeError("the uptime integration is not set up")
    return engine


async def async_setup(hub: Hub, config: dict[str, Any]) -> bool:
    """Start the engine on the recorder's history and register the services."""
    from hub.recorder import get_recorder

    engine = UptimeEngine(hub, config, get_recorder(hub))
    await engine.start()
    hub.data[DATA_UPTIME] = engine

    async def add_exclusion(call: ServiceCall) -> dict[str, Any]:
        port_id, station_id = _exclusion_target(hub, call)
        try:
            start = parse_time(call.data[ATTR_START], engine.zone)
            raw_end = call.data.get(ATTR_END)
            end = None if raw_end is None else parse_time(raw_end, engine.zone)
        except vol.Invalid as err:
            raise ServiceValidationError(str(err)) from err
        record = ExclusionRecord(
            call.data.get(ATTR_EXCLUSION_ID) or new_id(),
            port_id,
            station_id,
            start,
            end,
            call.data[ATTR_REASON],
            call.data.get(ATTR_NOTE),
        )
        return engine.add_exclusion(record).as_data()

    async def remove_exclusion(call: ServiceCall) -> dict[str, Any]:
        return engine.remove_exclusion(call.data[ATTR_EXCLUSION_ID]).as_data(deleted=True)

    unsubs = [
        hub.services.register(
            DOMAIN,
            "add_exclusion",
            add_exclusion,
            ADD_EXCLUSION_SCHEMA,
            "Exclude a period from a station's or port's downtime (with a reason).",
        ),
        hub.services.register(
            DOMAIN,
            "remove_exclusion",
            remove_exclusion,
            REMOVE_EXCLUSION_SCHEMA,
            "Remove an exclusion.",
        ),
    ]
    hub.data[f"{DATA_UPTIME}.unsubs"] = unsubs
    return True


async def async_unload(hub: Hub) -> None:
    """Stop the engine and remove the services."""
    for unsub in hub.data.pop(f"{DATA_UPTIME}.unsubs", ()):
        unsub()
    engine: UptimeEngine | None = hub.data.pop(DATA_UPTIME, None)
    if engine is not None:
        await engine.stop()


@hookimpl
def evhub_integration() -> Integration:
    """Describe the uptime integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Uptime",
        version=__version__,
        setup=async_setup,
        unload=async_unload,
        dependencies=("recorder",),
        config_schema=CONFIG_SCHEMA,
        infrastructure=True,
    )


def utc_iso(ts: float | None) -> str | None:
    """Return an ISO 8601 UTC time for POSIX seconds (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
