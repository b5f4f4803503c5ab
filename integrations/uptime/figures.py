"""NEVI and CEC uptime: the regulations' rules, a port's history and a window's figures."""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from integrations.uptime.const import (
    DAY,
    MINUTE,
    REASON_MAINTENANCE,
    REASON_NATURAL_DISASTER,
    REASON_OUTSIDE_HOURS,
    REASON_UTILITY_POWER,
    REASON_VANDALISM,
    REASON_VEHICLE,
)
from integrations.uptime.hours import HoursHistory, OperatingHours, year_start
from integrations.uptime.intervals import (
    INF,
    Interval,
    clip,
    intersect,
    merge,
    subtract,
    take_first,
    total,
)
from integrations.uptime.records import ExclusionRecord, OutageRecord

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
# The CEC's reliability standard: each port up at least this share of the time.
CEC_STANDARD_PCT: Final = 97.0


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
