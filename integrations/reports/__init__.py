"""Regulators' reports: EV-ChART modules 2, 3 and 4 (NEVI) and the CEC reliability data.

EV-ChART is the Joint Office's data system for 23 CFR 680.112; each module is a CSV with
exactly its Data Input Template's snake_case headers (``MODULE_2``, ``MODULE_3``,
``MODULE_4``), every row carrying ``station_id, network_provider, port_id``:

- Module 2, charging sessions: one row per session started in the quarter; ``session_id``
  the transaction id, ``charger_id`` the charge point id, ``connector_id`` the connector,
  ``session_error`` the session's error code (empty for a good one), ``energy_kwh``,
  ``power_kw`` its peak; ``payment_method`` empty (the hub does not know it).
- Module 3, uptime: one row per port and month-end of the quarter (23 CFR 680.112(a)(7):
  "for each of the previous 3 months"), ``uptime_reporting_start``/``_end`` the month,
  ``uptime`` the NEVI trailing-12-month figure as of the month's end (2 decimals; blank while
  the port is in its first 12 months, as EV-ChART wants), ``total_outage`` and
  ``total_outage_excl`` the minutes of that same trailing window, so the figure follows from
  them. A month not yet over, or before the port's in-service start, has no row.
- Module 4, outages: one row per outage in the quarter, the outages of a port that overlap
  merged into one so minutes never count twice; ``outage_id`` its start, ``outage_duration``
  its minutes within the quarter (an outage across a quarter's end is in both quarters, each
  with its own minutes).

Beside them evhub writes what the templates do not carry: its outage CSV (each merged
outage's causes, exclusion reasons and excluded minutes under NEVI and CEC) and its uptime
CSV (the month-end figures under both rules, a first-year port's over its days in service).

CEC (California's reliability regulation for publicly funded DC fast chargers): the
15-minute interval data per port (up, down, excluded, with seconds of outage and excluded
time under CEC's rules) and the semiannual report per port: uptime under CEC over the half
year, outage minutes, excluded minutes by reason, and whether the 97 % standard is met.

Station and port ids are the public ids configured under ``reports:`` (defaulting to the
charge point id and the connector number); ``network_provider`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import sys
import time
import zoneinfo
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import voluptuous as vol

from hub.commands import CliCommands, add_config_argument
from hub.core import Hub, HubKey
from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext
from integrations.uptime.const import (
    MINUTE,
    REASON_MAINTENANCE,
    REASON_NATURAL_DISASTER,
    REASON_OUTSIDE_HOURS,
    REASON_UTILITY_POWER,
    REASON_VANDALISM,
    REASON_VEHICLE,
)
from integrations.uptime.figures import (
    CEC_RULES,
    CEC_STANDARD_PCT,
    NEVI_RULES,
    NEVI_YEAR_SECONDS,
    Rules,
    UptimeFigures,
    excluded_intervals,
)
from integrations.uptime.hours import next_month
from integrations.uptime.intervals import Interval, clip, intersect, merge, total
from integrations.uptime.report import (
    _FAILED_OK_CODES,
    PortData,
    ReportError,
    ReportSource,
    load_ports,
)

DOMAIN: Final = "reports"
DATA_REPORTS: Final[HubKey[Mapping[str, Any]]] = HubKey("reports.config")

CONF_NETWORK_PROVIDER: Final = "network_provider"
CONF_STATIONS: Final = "stations"
CONF_PUBLIC_ID: Final = "public_id"
CONF_PORT_IDS: Final = "port_ids"

# EV-ChART Data Input Template headers, in the template's order.
MODULE_2: Final = (
    "station_id",
    "network_provider",
    "port_id",
    "charger_id",
    "session_id",
    "connector_id",
    "session_start",
    "session_end",
    "session_error",
    "error_other",
    "energy_kwh",
    "power_kw",
    "payment_method",
    "payment_other",
)
MODULE_3: Final = (
    "station_id",
    "network_provider",
    "port_id",
    "uptime_reporting_start",
    "uptime_reporting_end",
    "uptime",
    "total_outage",
    "total_outage_excl",
)
MODULE_4: Final = ("station_id", "network_provider", "port_id", "outage_id", "outage_duration")
EVHUB_OUTAGES: Final = (
    "station_id",
    "network_provider",
    "port_id",
    "charge_point_id",
    "connector",
    "outage_id",
    "outage_start",
    "outage_end",
    "open",
    "outage_duration",
    "causes",
    "evhub_outage_ids",
    "exclusion_reasons",
    "nevi_excluded_min",
    "cec_excluded_min",
)
EVHUB_UPTIME: Final = (
    "station_id",
    "network_provider",
    "port_id",
    "charge_point_id",
    "connector",
    "uptime_reporting_start",
    "uptime_reporting_end",
    "window_start",
    "window_min",
    "in_service",
    "first_year",
    "t_outage_min",
    "nevi_uptime_percent",
    "nevi_t_excluded_min",
    "cec_uptime_percent",
    "cec_t_excluded_min",
)
CEC_REASONS: Final = (
    REASON_UTILITY_POWER,
    REASON_VANDALISM,
    REASON_NATURAL_DISASTER,
    REASON_MAINTENANCE,
)
CEC_SEMIANNUAL: Final = (
    "station_id",
    "network_provider",
    "port_id",
    "charge_point_id",
    "connector",
    "period_start",
    "period_end",
    "in_service",
    "window_min",
    "intervals",
    "intervals_down",
    "intervals_excluded",
    "cec_uptime_percent",
    "t_outage_min",
    "cec_t_excluded_min",
    *(f"excluded_{reason}_min" for reason in CEC_REASONS),
    "standard_percent",
    "meets_standard",
)
CEC_INTERVALS: Final = (
    "station_id",
    "network_provider",
    "port_id",
    "charge_point_id",
    "connector",
    "interval_start",
    "interval_end",
    "status",
    "outage_s",
    "excluded_s",
    "outage_min",
    "excluded_min",
)
MODULES: Final = ("2", "3", "4")
# The order excluded time is attributed to reasons: uncapped first, then the capped ones in
# the order the engine spends their caps (integrations/uptime/figures.py excluded_intervals).
_REASON_ORDER: Final = (
    REASON_UTILITY_POWER,
    REASON_NATURAL_DISASTER,
    REASON_VEHICLE,
    REASON_OUTSIDE_HOURS,
    REASON_VANDALISM,
    REASON_MAINTENANCE,
)
_QUARTER: Final = re.compile(r"^(\d{4})[Qq]([1-4])$")
_HALF: Final = re.compile(r"^(\d{4})[Hh]([12])$")
_ID_TEXT: Final = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
MIN_YEAR: Final = 1970
MAX_YEAR: Final = 9998


class PeriodError(ReportError):
    """A quarter or half-year that cannot be read."""


# Configuration -------------------------------------------------------------------------


def _public_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise vol.Invalid(f"expected an id (text), got {value!r}")
    text = str(value).strip()
    if not _ID_TEXT.match(text):
        raise vol.Invalid("an id is 1-100 characters without control characters")
    return text


def _connector(value: Any) -> int:
    if isinstance(value, bool):
        raise vol.Invalid(f"expected a connector number, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise vol.Invalid(f"expected a connector number (1-1000), got {value!r}") from None
    if not 1 <= number <= 1000:
        raise vol.Invalid(f"expected a connector number (1-1000), got {value!r}")
    return number


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


def _unique_public_ids(config: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    for key, entry in config[CONF_STATIONS].items():
        public = entry.get(CONF_PUBLIC_ID)
        if public is None:
            continue
        if public in seen:
            raise vol.Invalid(
                f"public_id {public!r} is given to both {seen[public]!r} and {key!r}",
                path=[CONF_STATIONS, key, CONF_PUBLIC_ID],
            )
        seen[public] = key
        ports = list(entry.get(CONF_PORT_IDS, {}).values())
        if len(set(ports)) != len(ports):
            raise vol.Invalid(
                "two connectors have the same port id", path=[CONF_STATIONS, key, CONF_PORT_IDS]
            )
    return config


STATION_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_PUBLIC_ID): _public_id,
        vol.Optional(CONF_PORT_IDS, default={}): vol.All(_none_to_empty, {_connector: _public_id}),
    }
)
CONFIG_SCHEMA: Final = vol.All(
    _none_to_empty,
    vol.Schema(
        {
            vol.Optional(CONF_NETWORK_PROVIDER, default=""): vol.Any(
                vol.All(str, vol.Length(max=100), vol.Match(r"^[^\x00-\x1f\x7f]*$")), None
            ),
            # By charge point id, station name or device id, as under uptime: stations:.
            vol.Optional(CONF_STATIONS, default={}): vol.All(
                _none_to_empty, {vol.All(str, vol.Length(min=1, max=200)): STATION_SCHEMA}
            ),
        }
    ),
    _unique_public_ids,
)


def reports_config(hub: Hub) -> Mapping[str, Any]:
    """The hub's validated ``reports:`` section (its defaults when there is none)."""
    found = hub.data.get(DATA_REPORTS)
    return found if found is not None else CONFIG_SCHEMA({})


@dataclass(frozen=True, slots=True)
class PublicIds:
    """The ids a regulator knows a port by: station, network provider, port."""

    station_id: str
    network_provider: str
    port_id: str
    charge_point_id: str
    connector: str

    def base(self) -> dict[str, str]:
        """The columns every row carries."""
        return {
            "station_id": self.station_id,
            "network_provider": self.network_provider,
            "port_id": self.port_id,
        }

    def evhub(self) -> dict[str, str]:
        """The columns evhub's own CSVs add: the charge point id and the connector."""
        return {**self.base(), "charge_point_id": self.charge_point_id, "connector": self.connector}


def public_ids(config: Mapping[str, Any], port: PortData) -> PublicIds:
    """Resolve a port's public ids from the config (defaults: charge point id, connector)."""
    stations: Mapping[str, Any] = config.get(CONF_STATIONS) or {}
    charge_point = port.names.get("charge_point_id")
    keys: list[str] = []
    if port.station is not None:
        keys.extend([port.station.id, *(ident for _, ident in sorted(port.station.identifiers))])
        if port.station.name:
            keys.append(port.station.name)
    keys.extend(str(key) for key in (charge_point, port.station_id) if key)
    entry: Mapping[str, Any] = next((stations[k] for k in keys if k in stations), {})
    connector = port.names.get("connector")
    station_public = entry.get(CONF_PUBLIC_ID) or charge_point or port.station_id or ""
    port_public = None
    if connector is not None:
        with contextlib.suppress(TypeError, ValueError):
            port_public = (entry.get(CONF_PORT_IDS) or {}).get(int(connector))
    return PublicIds(
        str(station_public),
        str(config.get(CONF_NETWORK_PROVIDER) or ""),
        str(port_public or (connector if connector is not None else port.port_id)),
        "" if charge_point is None else str(charge_point),
        "" if connector is None else str(connector),
    )


# Periods -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar quarter or half-year in the hub's time zone: [start, end) and its months."""

    label: str
    start: float
    end: float
    months: tuple[tuple[float, float], ...]


def _period(year: int, first_month: int, count: int, label: str, zone: zoneinfo.ZoneInfo) -> Period:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError(f"{label}: the year must be {MIN_YEAR}-{MAX_YEAR}")
    cursor = datetime(year, first_month, 1, tzinfo=zone).timestamp()
    months = []
    for _ in range(count):
        following = next_month(cursor, zone)
        months.append((cursor, following))
        cursor = following
    return Period(label, months[0][0], months[-1][1], tuple(months))


def parse_quarter(text: str, zone: zoneinfo.ZoneInfo) -> Period:
    """Return the calendar quarter "2026Q3" (hub time zone); PeriodError if malformed."""
    match = _QUARTER.match(str(text).strip())
    if match is None:
        raise PeriodError(f"expected a quarter like 2026Q3, got {str(text)[:40]!r}")
    year, quarter = int(match[1]), int(match[2])
    return _period(year, 3 * quarter - 2, 3, f"{year}Q{quarter}", zone)


def last_full_quarter(zone: zoneinfo.ZoneInfo, now: float) -> str:
    """The label of the last calendar quarter over by now ("2026Q2"), in zone."""
    local = datetime.fromtimestamp(now, zone)
    quarter = (local.month - 1) // 3  # the current one, 0-based: the last full is this
    return f"{local.year - 1}Q4" if quarter == 0 else f"{local.year}Q{quarter}"


def last_full_half(zone: zoneinfo.ZoneInfo, now: float) -> str:
    """The label of the last half-year over by now ("2026H1"), in zone."""
    local = datetime.fromtimestamp(now, zone)
    return f"{local.year - 1}H2" if local.month <= 6 else f"{local.year}H1"


def parse_half(text: str, zone: zoneinfo.ZoneInfo) -> Period:
    """Return the half-year "2026H1" (hub time zone); PeriodError if malformed."""
    match = _HALF.match(str(text).strip())
    if match is None:
        raise PeriodError(f"expected a half-year like 2026H1, got {str(text)[:40]!r}")
    year, half = int(match[1]), int(match[2])
    return _period(year, 6 * half - 5, 6, f"{year}H{half}", zone)


# Formatting ----------------------------------------------------------------------------


def zulu(ts: float | None) -> str:
    """An EV-ChART time: ISO 8601 UTC to the second ("2026-07-01T07:00:00Z"); "" for None."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fixed(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _num(value: float | None) -> str:
    if value is None:
        return ""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def csv_text(headers: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV table with exactly these headers (missing values empty, others refused)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(headers), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


# EV-ChART ------------------------------------------------------------------------------


def module2_rows(
    ports: Sequence[PortData],
    sessions: Iterable[Mapping[str, Any]],
    config: Mapping[str, Any],
    period: Period,
) -> list[dict[str, Any]]:
    """Module 2: one row per session started in the period."""
    by_port = {port.port_id: port for port in ports}
    rows = []
    for session in sessions:
        started = session.get("started_at")
        if started is None or not period.start <= float(started) < period.end:
            continue
        port = by_port.get(str(session.get("port_id")))
        if port is None:
            continue
        ids = public_ids(config, port)
        energy = session.get("energy_wh")
        peak = session.get("peak_power_w")
        error = session.get("error_code")
        stopped = session.get("stopped_at")
        rows.append(
            {
                **ids.base(),
                "charger_id": session.get("charge_point_id") or ids.charge_point_id,
                "session_id": session.get("transaction_id"),
                "connector_id": session.get("port") if session.get("port") is not None else "",
                "session_start": zulu(float(started)),
                "session_end": zulu(None if stopped is None else float(stopped)),
                "session_error": "" if error in _FAILED_OK_CODES else error,
                "error_other": "",
                "energy_kwh": "" if energy is None else _num(float(energy) / 1000.0),
                "power_kw": "" if peak is None else _num(float(peak) / 1000.0),
                "payment_method": "",
                "payment_other": "",
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class MonthEnd:
    """A port's trailing-12-month figures as of a month's end, under NEVI and CEC."""

    month_start: float
    month_end: float
    nevi: UptimeFigures
    cec: UptimeFigures
    first_year: bool


def month_ends(port: PortData, period: Period, now: float) -> list[MonthEnd]:
    """The port's figures as of each month-end of the period that is over and in service."""
    found = []
    for month_start, month_end in period.months:
        if month_end > now:
            continue
        window = (month_end - NEVI_YEAR_SECONDS, month_end)
        nevi = port.history.figures(*window, NEVI_RULES)
        if nevi.window_s <= 0:
            continue  # not in service by the month's end
        cec = port.history.figures(*window, CEC_RULES)
        found.append(MonthEnd(month_start, month_end, nevi, cec, port.first_year(month_end)))
    return found


def module3_rows(
    ports: Sequence[PortData], config: Mapping[str, Any], period: Period, now: float
) -> list[dict[str, Any]]:
    """Module 3: per port and month-end, the NEVI trailing-12-month uptime (blank in year one)."""
    rows = []
    for port in ports:
        ids = public_ids(config, port)
        for item in month_ends(port, period, now):
            rows.append(
                {
                    **ids.base(),
                    "uptime_reporting_start": zulu(item.month_start),
                    "uptime_reporting_end": zulu(item.month_end),
                    "uptime": "" if item.first_year else _fixed(item.nevi.uptime_percent),
                    "total_outage": _fixed(item.nevi.t_outage_min),
                    "total_outage_excl": _fixed(item.nevi.t_excluded_min),
                }
            )
    return rows


def evhub_uptime_rows(
    ports: Sequence[PortData], config: Mapping[str, Any], period: Period, now: float
) -> list[dict[str, Any]]:
    """Beside Module 3: the month-end figures under both rules, a first year's included."""
    rows = []
    for port in ports:
        ids = public_ids(config, port)
        for item in month_ends(port, period, now):
            rows.append(
                {
                    **ids.evhub(),
                    "uptime_reporting_start": zulu(item.month_start),
                    "uptime_reporting_end": zulu(item.month_end),
                    "window_start": zulu(item.nevi.start),
                    "window_min": _num(item.nevi.window_min),
                    "in_service": zulu(port.in_service),
                    "first_year": "true" if item.first_year else "false",
                    "t_outage_min": _num(item.nevi.t_outage_min),
                    "nevi_uptime_percent": _fixed(item.nevi.uptime_percent, 4),
                    "nevi_t_excluded_min": _num(item.nevi.t_excluded_min),
                    "cec_uptime_percent": _fixed(item.cec.uptime_percent, 4),
                    "cec_t_excluded_min": _num(item.cec.t_excluded_min),
                }
            )
    return rows


@dataclass(frozen=True, slots=True)
class MergedOutage:
    """Overlapping outages of one port as one: its span within the period and what it was."""

    start: float
    end: float
    span: list[Interval]
    open: bool
    causes: tuple[str, ...]
    outage_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    nevi_excluded_s: float
    cec_excluded_s: float


def merged_outages(
    port: PortData, start: float, end: float, zone: zoneinfo.ZoneInfo
) -> list[MergedOutage]:
    """A port's outages overlapping [start, end), merged where they overlap or touch."""
    history = port.history
    found = []
    for down_start, down_end in history.down:
        span = clip([(down_start, down_end)], max(start, history.in_service), end)
        if not span:
            continue
        members = [
            o
            for o in history.outages
            if o.start < down_end and o.interval(history.until)[1] > down_start
        ]
        reasons = {
            x.reason
            for x in port.exclusions
            if x.start < span[-1][1] and x.interval()[1] > span[0][0]
        }
        if port.hours is not None and port.hours.closed_intervals(span[0][0], span[-1][1], zone):
            reasons.add(REASON_OUTSIDE_HOURS)
        found.append(
            MergedOutage(
                down_start,
                down_end,
                span,
                any(o.end is None for o in members) and down_end >= history.until,
                tuple(sorted({o.cause for o in members})),
                tuple(o.outage_id for o in sorted(members, key=lambda o: (o.start, o.outage_id))),
                tuple(r for r in _REASON_ORDER if r in reasons),
                total(intersect(span, history.excluded_by.get(NEVI_RULES.name, []))),
                total(intersect(span, history.excluded_by.get(CEC_RULES.name, []))),
            )
        )
    return found


def module4_rows(
    ports: Sequence[PortData], config: Mapping[str, Any], period: Period, zone: zoneinfo.ZoneInfo
) -> list[dict[str, Any]]:
    """Module 4: one row per (merged) outage, its minutes within the period."""
    rows = []
    for port in ports:
        ids = public_ids(config, port)
        for outage in merged_outages(port, period.start, period.end, zone):
            rows.append(
                {
                    **ids.base(),
                    "outage_id": zulu(outage.start),
                    "outage_duration": _fixed(total(outage.span) / MINUTE),
                }
            )
    return rows


def evhub_outage_rows(
    ports: Sequence[PortData], config: Mapping[str, Any], period: Period, zone: zoneinfo.ZoneInfo
) -> list[dict[str, Any]]:
    """Beside Module 4: each merged outage's causes, exclusion reasons, excluded minutes."""
    rows = []
    for port in ports:
        ids = public_ids(config, port)
        for outage in merged_outages(port, period.start, period.end, zone):
            rows.append(
                {
                    **ids.evhub(),
                    "outage_id": zulu(outage.start),
                    "outage_start": zulu(outage.start),
                    "outage_end": "" if outage.open else zulu(outage.end),
                    "open": "true" if outage.open else "false",
                    "outage_duration": _fixed(total(outage.span) / MINUTE),
                    "causes": ";".join(outage.causes),
                    "evhub_outage_ids": ";".join(outage.outage_ids),
                    "exclusion_reasons": ";".join(outage.reasons),
                    "nevi_excluded_min": _fixed(outage.nevi_excluded_s / MINUTE),
                    "cec_excluded_min": _fixed(outage.cec_excluded_s / MINUTE),
                }
            )
    return rows


# CEC ----------------------------------------------------------------------------------


def excluded_by_reason(
    port: PortData, start: float, end: float, zone: zoneinfo.ZoneInfo, rules: Rules = CEC_RULES
) -> dict[str, float]:
    """Seconds of a port's excluded time in [start, end) by reason, under the rules.

    The parts add up to the rules' T_excluded: the engine's computation is run again with
    the reasons added one at a time, in the order it spends them (uncapped reasons first,
    then vandalism, then maintenance), each taking what the previous ones left.
    """
    history = port.history
    lo, hi = max(start, history.in_service), min(end, history.until)
    down = history.down
    closed: list[Interval] = []
    if port.hours is not None and rules.outside_hours:
        for a, b in down:
            closed.extend(port.hours.closed_intervals(a, b, zone))
    parts: dict[str, float] = {}
    counted = 0.0
    included: set[str] = set()
    for reason in _REASON_ORDER:
        applies = reason in rules.reasons or (
            reason == REASON_OUTSIDE_HOURS and rules.outside_hours
        )
        if not applies:
            continue
        included.add(reason)
        stage = Rules(
            rules.name,
            frozenset(included & rules.reasons),
            outside_hours=rules.outside_hours and REASON_OUTSIDE_HOURS in included,
            vandalism_cap_s=rules.vandalism_cap_s,
            maintenance_cap_s=rules.maintenance_cap_s,
        )
        excluded = excluded_intervals(down, port.exclusions, zone, merge(closed), stage)
        so_far = total(clip(excluded, lo, hi)) if lo < hi else 0.0
        parts[reason] = max(0.0, so_far - counted)
        counted = max(counted, so_far)
    return parts


def cec_semiannual_rows(
    ports: Sequence[PortData],
    config: Mapping[str, Any],
    period: Period,
    zone: zoneinfo.ZoneInfo,
) -> list[dict[str, Any]]:
    """Per port over the half-year: CEC uptime, outage and excluded minutes, the 97 % test."""
    rows = []
    for port in ports:
        ids = public_ids(config, port)
        figures = port.history.figures(period.start, period.end, CEC_RULES)
        percent = figures.uptime_percent
        intervals = port.history.intervals(period.start, min(period.end, port.history.until))
        by_reason = excluded_by_reason(port, period.start, period.end, zone)
        rows.append(
            {
                **ids.evhub(),
                "period_start": zulu(period.start),
                "period_end": zulu(period.end),
                "in_service": zulu(port.in_service),
                "window_min": _num(figures.window_min),
                "intervals": len(intervals),
                "intervals_down": sum(1 for i in intervals if i.status == "down"),
                "intervals_excluded": sum(1 for i in intervals if i.status == "excluded"),
                "cec_uptime_percent": _fixed(percent, 4),
                "t_outage_min": _num(figures.t_outage_min),
                "cec_t_excluded_min": _num(figures.t_excluded_min),
                **{
                    f"excluded_{reason}_min": _num(by_reason.get(reason, 0.0) / MINUTE)
                    for reason in CEC_REASONS
                },
                "standard_percent": _num(CEC_STANDARD_PCT),
                "meets_standard": (
                    "" if percent is None else ("yes" if percent >= CEC_STANDARD_PCT else "no")
                ),
            }
        )
    return rows


def cec_interval_rows(
    port: PortData, config: Mapping[str, Any], period: Period
) -> Iterator[dict[str, Any]]:
    """A port's CEC 15-minute intervals over the half-year (to now), in service only."""
    ids = public_ids(config, port)
    base = ids.evhub()
    stop = min(period.end, port.history.until)
    if stop <= period.start:
        return
    for item in port.history.intervals(period.start, stop, CEC_RULES):
        yield {
            **base,
            "interval_start": zulu(item.start),
            "interval_end": zulu(item.start + 900.0),
            "status": item.status,
            "outage_s": _num(item.outage_s),
            "excluded_s": _num(item.excluded_s),
            "outage_min": _num(item.outage_s / MINUTE),
            "excluded_min": _num(item.excluded_s / MINUTE),
        }


# Putting them together ------------------------------------------------------------------


async def evchart_tables(
    source: ReportSource, config: Mapping[str, Any], period: Period, modules: Sequence[str]
) -> dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """The EV-ChART CSV tables of a quarter by file name (and evhub's beside them)."""
    ports, sessions = await load_ports(
        source, period.start, period.end, since=period.start - NEVI_YEAR_SECONDS
    )
    now = source.now
    zone = source.zone
    label = period.label
    tables: dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]] = {}
    if "2" in modules:
        tables[f"evchart-{label}-module2-sessions.csv"] = (
            MODULE_2,
            module2_rows(ports, sessions, config, period),
        )
    if "3" in modules:
        tables[f"evchart-{label}-module3-uptime.csv"] = (
            MODULE_3,
            module3_rows(ports, config, period, now),
        )
        tables[f"evhub-{label}-uptime.csv"] = (
            EVHUB_UPTIME,
            evhub_uptime_rows(ports, config, period, now),
        )
    if "4" in modules:
        tables[f"evchart-{label}-module4-outages.csv"] = (
            MODULE_4,
            module4_rows(ports, config, period, zone),
        )
        tables[f"evhub-{label}-outages.csv"] = (
            EVHUB_OUTAGES,
            evhub_outage_rows(ports, config, period, zone),
        )
    return tables


async def cec_ports(
    source: ReportSource, period: Period, port_ids: Iterable[str] | None = None
) -> list[PortData]:
    """The ports of a CEC report, with their histories over the half-year."""
    ports, _sessions = await load_ports(source, period.start, period.end, port_ids)
    return ports


async def cec_semiannual(
    source: ReportSource, config: Mapping[str, Any], period: Period
) -> list[dict[str, Any]]:
    """The CEC semiannual report's rows."""
    return cec_semiannual_rows(await cec_ports(source, period), config, period, source.zone)


def evchart_file(label: str, module: str) -> str:
    """The file name of one EV-ChART module (or evhub's outage/uptime CSV)."""
    names = {
        "2": f"evchart-{label}-module2-sessions.csv",
        "3": f"evchart-{label}-module3-uptime.csv",
        "4": f"evchart-{label}-module4-outages.csv",
        "outages": f"evhub-{label}-outages.csv",
        "uptime": f"evhub-{label}-uptime.csv",
    }
    return names[module]


# The command line ------------------------------------------------------------------------


def _load_reports_config(config_dir: Path) -> Mapping[str, Any]:
    """The validated ``reports:`` section of a config dir (errors with file, line, key)."""
    from hub.config import ConfigError, load_config_file, validate_section
    from hub.const import CONFIG_FILE

    if not (config_dir / CONFIG_FILE).is_file():
        defaults: Mapping[str, Any] = CONFIG_SCHEMA({})
        return defaults  # open_source says what is missing
    raw = load_config_file(config_dir)
    section = raw.get(DOMAIN) if isinstance(raw, Mapping) else None
    validated, errors = validate_section(
        CONFIG_SCHEMA, section if isinstance(section, Mapping) else {}, DOMAIN, raw
    )
    if errors:
        raise ConfigError("; ".join(str(error) for error in errors))
    found: Mapping[str, Any] = validated
    return found


@contextlib.asynccontextmanager
async def _opened(
    config_dir: Path, now: float | None
) -> AsyncIterator[tuple[ReportSource, Mapping[str, Any]]]:
    from integrations.uptime.report import open_source

    loop = asyncio.get_running_loop()
    config = await loop.run_in_executor(None, _load_reports_config, config_dir)
    async with open_source(config_dir, now) as source:
        yield source, config


def _write(output: Path, name: str, text: str) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    path = output / name
    path.write_text(text, encoding="utf-8")
    return path


async def _evchart(
    config_dir: Path,
    quarter: str | None,
    module: str | None,
    output: Path | None,
    now: float | None,
) -> int:
    async with _opened(config_dir, now) as (source, config):
        if quarter is None:
            quarter = last_full_quarter(source.zone, time.time() if now is None else now)
        period = parse_quarter(quarter, source.zone)
        modules = MODULES if module is None else (module,)
        tables = await evchart_tables(source, config, period, modules)
    if output is None:
        # One module to stdout: the EV-ChART table itself.
        headers, rows = tables[evchart_file(period.label, modules[0])]
        sys.stdout.write(csv_text(headers, rows))
        return 0
    for name, (headers, rows) in tables.items():
        path = _write(output, name, csv_text(headers, rows))
        print(f"{path}: {len(rows)} rows")
    return 0


async def _cec(
    config_dir: Path, half: str | None, intervals: bool, output: Path | None, now: float | None
) -> int:
    async with _opened(config_dir, now) as (source, config):
        if half is None:
            half = last_full_half(source.zone, time.time() if now is None else now)
        period = parse_half(half, source.zone)
        ports = await cec_ports(source, period)
    texts: dict[str, tuple[str, int]] = {}
    rows = cec_semiannual_rows(ports, config, period, source.zone)
    texts[f"cec-{period.label}-semiannual.csv"] = (csv_text(CEC_SEMIANNUAL, rows), len(rows))
    if intervals:
        interval_rows = [row for port in ports for row in cec_interval_rows(port, config, period)]
        texts[f"cec-{period.label}-intervals.csv"] = (
            csv_text(CEC_INTERVALS, interval_rows),
            len(interval_rows),
        )
    if output is None:
        sys.stdout.write(list(texts.values())[-1][0])
        return 0
    for name, (text, count) in texts.items():
        print(f"{_write(output, name, text)}: {count} rows")
    return 0


def _run(command: Any) -> int:
    from hub.config import ConfigError
    from integrations.recorder import RecorderError

    try:
        result: int = asyncio.run(command)
    except PeriodError as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 2
    except (ReportError, ConfigError, RecorderError, OSError) as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 1
    return result


def cmd_report_evchart(
    config_dir: Path,
    quarter: str | None,
    module: str | None,
    output: Path | None,
    now: float | None = None,
) -> int:
    """Write a quarter's EV-ChART modules (files in output, or one module to stdout)."""
    if output is None and module is None:
        print("evhub: give --module to print one module, or --output DIR", file=sys.stderr)
        return 2
    return _run(_evchart(config_dir, quarter, module, output, now))


def cmd_report_cec(
    config_dir: Path,
    half: str | None,
    intervals: bool,
    output: Path | None,
    now: float | None = None,
) -> int:
    """Write a half-year's CEC semiannual report (and with intervals its 15-minute data)."""
    return _run(_cec(config_dir, half, intervals, output, now))


def quarter_arg(text: str) -> str:
    """argparse type: a quarter like 2026Q3 (exit 2 with the reason otherwise)."""
    import argparse

    try:
        return parse_quarter(text, zoneinfo.ZoneInfo("UTC")).label
    except PeriodError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def half_arg(text: str) -> str:
    """argparse type: a half-year like 2026H1 (exit 2 with the reason otherwise)."""
    import argparse

    try:
        return parse_half(text, zoneinfo.ZoneInfo("UTC")).label
    except PeriodError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# The integration: holds the validated reports: section ------------------------------------


async def async_setup(ctx: SetupContext) -> bool:
    """Keep the validated configuration and serve the downloads."""
    hub = ctx.hub
    # Imported here: the views import this module.
    from integrations.reports.views import register_views

    hub.data[DATA_REPORTS] = ctx.config
    ctx.on_unload(lambda: hub.data.pop(DATA_REPORTS, None))
    register_views(ctx)
    return True


@hookimpl
def evhub_integration() -> Integration:
    """Describe the reports integration (public ids and network provider of the exports)."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Regulatory reports",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        # The reports are the uptime engine's figures over the recorder's history.
        dependencies=("uptime",),
    )


# `evhub report evchart` and `evhub report cec` ---------------------------------------------


@hookimpl
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub report evchart`` and ``evhub report cec``."""
    evchart = commands.add(
        "evchart",
        "EV-ChART modules 2, 3, 4 of a quarter (NEVI, 23 CFR 680.112)",
        lambda args: cmd_report_evchart(args.config, args.quarter, args.module, args.output),
        group="report",
    )
    evchart.add_argument(
        "--quarter", type=quarter_arg, help="e.g. 2026Q3 (default: the last full quarter)"
    )
    evchart.add_argument(
        "--module", choices=["2", "3", "4"], help="only this module (printed without --output)"
    )
    evchart.add_argument("--output", "-o", type=Path, help="write the CSVs into this dir")
    add_config_argument(evchart)
    cec = commands.add(
        "cec",
        "CEC semiannual reliability report of a half-year (and 15-minute data)",
        lambda args: cmd_report_cec(args.config, args.half, args.intervals, args.output),
        group="report",
    )
    cec.add_argument("--half", type=half_arg, help="e.g. 2026H1 (default: the last full half-year)")
    cec.add_argument("--intervals", action="store_true", help="the 15-minute interval data too")
    cec.add_argument("--output", "-o", type=Path, help="write the CSVs into this dir")
    add_config_argument(cec)
