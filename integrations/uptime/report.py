"""Uptime reports from the recorder's database: per port, per station, per month, as CSV/JSON.

The same code serves the running hub (the HTTP API calls ``port_uptime``,
``station_uptime``, ``monthly_rows`` and ``report_csv``) and ``evhub report uptime``, which
opens the database named by the config dir without running the hub.

A report over [from, to) carries the NEVI quarterly data fields: station and port ids, each
charging session (start, end, kWh, peak kW, the error code of a failed session), and per
port its uptime, T_outage and T_excluded over the whole period and per calendar month (hub
time zone), and each outage with its duration and excluded minutes. Every figure comes under
both regulations, computed separately (integrations/uptime/figures.py): the unprefixed ones
are NEVI's (23 CFR 680.116(b)), the ``cec_`` ones the California CEC's (its caps, no
operating hours). T_outage and the window are the same under both. Time after the report's
"now" is not counted, nor time before a port's in-service start (integrations/uptime/
engine.py): a month entirely before it has uptime None (empty in the CSV), and a station's
uptime is the mean of its ports in service in the period (None when none is).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import math
import sys
import time
import zoneinfo
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from hub.core import Hub
from hub.exceptions import HubError
from hub.registry import DeviceEntry, DeviceKind, DeviceRegistry, device_registry
from integrations.uptime.config import CONFIG_SCHEMA, hours_for
from integrations.uptime.figures import (
    CEC_RULES,
    NEVI_RULES,
    NEVI_YEAR_SECONDS,
    PortHistory,
    UptimeFigures,
    history_start,
    mean_percent,
)
from integrations.uptime.hours import HoursHistory, month_start, next_month, utc_iso
from integrations.uptime.intervals import INF
from integrations.uptime.records import ExclusionRecord, OutageRecord

FORMAT_CSV: Final = "csv"
FORMAT_JSON: Final = "json"
CSV_COLUMNS: Final = (
    "record",
    "station_id",
    "charge_point_id",
    "station_name",
    "port_id",
    "connector",
    "port_name",
    "period",
    "period_start",
    "period_end",
    "uptime_percent",
    "t_outage_min",
    "t_excluded_min",
    "cec_uptime_percent",
    "cec_t_excluded_min",
    "window_min",
    "first_year",
    "outage_id",
    "cause",
    "outage_start",
    "outage_end",
    "duration_min",
    "excluded_min",
    "cec_excluded_min",
    "transaction_id",
    "session_start",
    "session_end",
    "energy_kwh",
    "peak_kw",
    "error_code",
    "stop_reason",
)
_FAILED_OK_CODES: Final = frozenset({"", "NoError", "none", "None"})
# What the figures of a report are: unprefixed NEVI's, cec_ ones CEC's.
RULES_NOTE: Final = {
    "uptime_percent": "NEVI, 23 CFR 680.116(b): no caps; outside stated hours excluded",
    "cec_uptime_percent": (
        "California CEC reliability regulation: vandalism capped at 10 days per incident,"
        " maintenance at 72 h a year; neither vehicle faults nor outside hours excluded"
    ),
}


class ReportError(HubError):
    """A report cannot be made (no database, bad dates)."""


@dataclass(slots=True)
class ReportSource:
    """Where a report reads from: the recorder, the time zone, the uptime config, devices."""

    recorder: Any
    zone: zoneinfo.ZoneInfo
    config: Mapping[str, Any]
    devices: DeviceRegistry | None = None
    now: float = field(default_factory=time.time)
    # The uptime engine's log of stated operating hours (integrations/uptime/config.py hours_for).
    hours_log: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_hub(cls, hub: Hub) -> ReportSource:
        """Read from a running hub's recorder, on the hub clock."""
        from hub.clock import clock
        from integrations.recorder import get_recorder
        from integrations.uptime.const import DATA_UPTIME

        engine = hub.data.get(DATA_UPTIME)
        config = engine.config if engine is not None else CONFIG_SCHEMA({})
        time_zone = hub.config.time_zone if hub.config is not None else "UTC"
        return cls(
            get_recorder(hub),
            zoneinfo.ZoneInfo(time_zone),
            config,
            device_registry(hub),
            clock(hub).time(),
            {} if engine is None else engine.hours_log,
        )


def cec_dict(figures: UptimeFigures) -> dict[str, Any]:
    """The CEC figures beside NEVI's: its uptime and T_excluded (T_outage is the same)."""
    percent = figures.uptime_percent
    return {
        "cec_uptime_percent": None if percent is None else round(percent, 4),
        "cec_t_excluded_min": round(figures.t_excluded_min, 4),
    }


@dataclass(slots=True)
class PortReport:
    """One port's figures (NEVI and CEC) over the report's period, per month, and its outages.

    first_year: the port was in service for less than 12 months at the period's end (its
    figures cover its days in service).
    """

    port_id: str
    station_id: str | None
    figures: UptimeFigures
    months: list[tuple[str, UptimeFigures]]
    outages: list[dict[str, Any]]
    names: dict[str, Any]
    cec: UptimeFigures | None = None
    cec_months: list[tuple[str, UptimeFigures]] = field(default_factory=list)
    first_year: bool = False
    in_service: float | None = None

    @property
    def cec_figures(self) -> UptimeFigures:
        """The CEC figures over the period (NEVI's when not computed)."""
        return self.figures if self.cec is None else self.cec

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        cec_months = dict(self.cec_months)
        return {
            **self.names,
            "port_id": self.port_id,
            "station_id": self.station_id,
            **self.figures.as_dict(),
            **cec_dict(self.cec_figures),
            "first_year": self.first_year,
            "in_service": utc_iso(self.in_service),
            "months": [
                {"month": label, **fig.as_dict(), **cec_dict(cec_months.get(label, fig))}
                for label, fig in self.months
            ],
            "outages": [
                {**row, "start": utc_iso(row["start"]), "end": utc_iso(row["end"])}
                for row in self.outages
            ],
        }


@dataclass(slots=True)
class UptimeReport:
    """The uptime report over [start, end)."""

    start: float
    end: float
    now: float
    time_zone: str
    ports: list[PortReport]
    sessions: list[dict[str, Any]]

    def stations(self) -> list[dict[str, Any]]:
        """Return per-station figures: the mean uptime of its ports in service, summed minutes.

        window_min is the longest of its ports' (in-service) windows.
        """
        grouped: dict[str | None, list[PortReport]] = {}
        for port in self.ports:
            grouped.setdefault(port.station_id, []).append(port)
        rows = []
        for station_id, ports in grouped.items():
            count = len(ports)
            rows.append(
                {
                    "station_id": station_id,
                    "charge_point_id": ports[0].names.get("charge_point_id"),
                    "station_name": ports[0].names.get("station_name"),
                    "ports": count,
                    "uptime_percent": _round4(mean_percent(p.figures for p in ports)),
                    "t_outage_min": round(sum(p.figures.t_outage_min for p in ports), 4),
                    "t_excluded_min": round(sum(p.figures.t_excluded_min for p in ports), 4),
                    "cec_uptime_percent": _round4(mean_percent(p.cec_figures for p in ports)),
                    "cec_t_excluded_min": round(
                        sum(p.cec_figures.t_excluded_min for p in ports), 4
                    ),
                    "window_min": round(max(p.figures.window_min for p in ports), 4),
                }
            )
        return rows

    def monthly_rows(self) -> list[dict[str, Any]]:
        """Return one row per port and calendar month (NEVI and cec_ figures)."""
        rows: list[dict[str, Any]] = []
        for port in self.ports:
            cec_months = dict(port.cec_months)
            rows.extend(
                {
                    **port.names,
                    "port_id": port.port_id,
                    "station_id": port.station_id,
                    "month": label,
                    **fig.as_dict(),
                    **cec_dict(cec_months.get(label, fig)),
                }
                for label, fig in port.months
            )
        return rows

    def as_dict(self) -> dict[str, Any]:
        """Return the whole report in a JSON-serialisable form."""
        return {
            "from": utc_iso(self.start),
            "to": utc_iso(self.end),
            "generated_at": utc_iso(self.now),
            "time_zone": self.time_zone,
            "rules": RULES_NOTE,
            "stations": self.stations(),
            "ports": [port.as_dict() for port in self.ports],
            "sessions": self.sessions,
        }

    def to_json(self) -> str:
        """Return the report as JSON text."""
        return json.dumps(self.as_dict(), indent=2)

    def to_csv(self) -> str:
        """Return the report as one CSV table; the `record` column says what a row is.

        record: port (the whole period), port_month, outage, session.
        """
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for port in self.ports:
            base = {**port.names, "port_id": port.port_id, "station_id": port.station_id}
            cec_months = dict(port.cec_months)
            periods = [("port", "all", port.figures, port.cec_figures)] + [
                ("port_month", label, fig, cec_months.get(label, fig)) for label, fig in port.months
            ]
            for record, label, fig, cec in periods:
                writer.writerow(
                    {
                        **base,
                        "record": record,
                        "period": label,
                        "period_start": utc_iso(fig.start),
                        "period_end": utc_iso(fig.end),
                        "uptime_percent": _pct(fig.uptime_percent),
                        "t_outage_min": _num(fig.t_outage_min),
                        "t_excluded_min": _num(fig.t_excluded_min),
                        "cec_uptime_percent": _pct(cec.uptime_percent),
                        "cec_t_excluded_min": _num(cec.t_excluded_min),
                        "window_min": _num(fig.window_min),
                        "first_year": (
                            ("true" if port.first_year else "false") if record == "port" else ""
                        ),
                    }
                )
            for row in port.outages:
                writer.writerow(
                    {
                        **base,
                        "record": "outage",
                        "outage_id": row["outage_id"],
                        "cause": row["cause"],
                        "outage_start": utc_iso(row["start"]),
                        "outage_end": utc_iso(row["end"]),
                        "duration_min": _num(row["duration_min"]),
                        "excluded_min": _num(row["excluded_min"]),
                        "cec_excluded_min": _num(row.get("cec_excluded_min", 0.0)),
                    }
                )
        for session in self.sessions:
            writer.writerow({"record": "session", **session})
        return buffer.getvalue()


def _round4(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _pct(value: float | None) -> str:
    """A CSV percentage: empty when the port was not in service (no window)."""
    return "" if value is None else f"{value:.4f}"


def in_service_start(
    first_seen: Mapping[str, float], devices: DeviceRegistry | None, port_id: str, now: float
) -> float:
    """Return a port's in-service start: recorded, else its registry entry (inf: never)."""
    found = first_seen.get(port_id)
    if found is not None:
        return found
    device = devices.get(port_id) if devices is not None else None
    # Registry times are real time: never after the report's (hub clock's) now.
    return INF if device is None else min(device.created_at, now)


def _num(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def _names(devices: DeviceRegistry | None, port_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
    names: dict[str, Any] = {
        "charge_point_id": row.get("charge_point_id"),
        "station_name": None,
        "connector": row.get("port"),
        "port_name": None,
    }
    if devices is None:
        return names
    port = devices.get(port_id)
    station = devices.station_of(port_id)
    if port is not None:
        names["port_name"] = port.name
        if names["connector"] is None:
            names["connector"] = port.connector_id
    if station is not None:
        names["station_name"] = station.name
        if names["charge_point_id"] is None:
            names["charge_point_id"] = _external_id(station)
    return names


def _external_id(device: DeviceEntry) -> str | None:
    for _domain, ident in sorted(device.identifiers):
        return ident
    return None


def _months(start: float, end: float, zone: zoneinfo.ZoneInfo) -> list[tuple[str, float, float]]:
    found: list[tuple[str, float, float]] = []
    cursor = month_start(start, zone)
    while cursor < end:
        following = next_month(cursor, zone)
        label = datetime.fromtimestamp(cursor, zone).strftime("%Y-%m")
        found.append((label, max(cursor, start), min(following, end)))
        cursor = following
    return found


def _session_row(row: Mapping[str, Any], names: Mapping[str, Any]) -> dict[str, Any]:
    energy = row.get("energy_wh")
    peak = row.get("peak_power_w")
    error = row.get("error_code")
    return {
        "station_id": row.get("station_id"),
        "charge_point_id": row.get("charge_point_id") or names.get("charge_point_id"),
        "station_name": names.get("station_name"),
        "port_id": row.get("port_id"),
        "connector": row.get("port"),
        "port_name": names.get("port_name"),
        "transaction_id": row.get("transaction_id"),
        "session_start": utc_iso(row.get("started_at")),
        "session_end": utc_iso(row.get("stopped_at")),
        "energy_kwh": None if energy is None else round(float(energy) / 1000.0, 4),
        "peak_kw": None if peak is None else round(float(peak) / 1000.0, 4),
        "error_code": None if error in _FAILED_OK_CODES else error,
        "stop_reason": row.get("stop_reason"),
    }


@dataclass(slots=True)
class PortData:
    """One port as the recorder knows it: its history under both rules and its names."""

    port_id: str
    station_id: str | None
    history: PortHistory
    names: dict[str, Any]
    station: DeviceEntry | None
    # What the history was built from: the exclusions that apply to the port, its stated
    # hours (None: always open).
    exclusions: list[ExclusionRecord] = field(default_factory=list)
    hours: HoursHistory | None = None

    def first_year(self, at: float) -> bool:
        """Tell whether the port was in service for less than 12 months at `at`."""
        in_service = self.history.in_service
        return math.isfinite(in_service) and in_service > at - NEVI_YEAR_SECONDS

    @property
    def in_service(self) -> float | None:
        """The in-service start (None: never, or always)."""
        value = self.history.in_service
        return value if math.isfinite(value) else None


async def load_ports(
    source: ReportSource,
    start: float,
    end: float,
    port_ids: Iterable[str] | None = None,
    *,
    since: float | None = None,
) -> tuple[list[PortData], list[dict[str, Any]]]:
    """Read the recorder: every port with its history up to min(end, now), and the sessions
    overlapping [start, end).

    since: how far back outages and exclusions are read (default: the calendar year of
    start, for the maintenance cap); a window reaching further back than start needs more.
    """
    if end <= start:
        raise ReportError("the report's end must come after its start")
    recorder = source.recorder
    now = source.now
    until = min(end, now)
    since = history_start(start if since is None else min(since, start), source.zone)
    chosen = None if port_ids is None else list(port_ids)
    outage_rows = await recorder.outages(since, max(until, since + 1), chosen)
    exclusion_rows = await recorder.exclusions(since, max(until, since + 1))
    session_rows = await recorder.sessions(start, until, port_ids=chosen)
    status_rows = await recorder.port_status(start, until, chosen)
    first_seen = await recorder.first_seen(chosen)
    outages = [OutageRecord.from_row(row) for row in outage_rows if row.get("port_id")]
    exclusions = [ExclusionRecord.from_row(row) for row in exclusion_rows]
    ports: dict[str, str | None] = {}
    extra: dict[str, dict[str, Any]] = {}
    for row in [*status_rows, *session_rows, *outage_rows]:
        port_id = row.get("port_id")
        if port_id and (chosen is None or port_id in chosen):
            if ports.get(port_id) is None:
                ports[port_id] = row.get("station_id")
            known = extra.setdefault(port_id, {})
            for key in ("charge_point_id", "port"):
                if known.get(key) is None and row.get(key) is not None:
                    known[key] = row[key]
    if source.devices is not None and chosen is None:
        for known_station in source.devices.devices(kind=DeviceKind.STATION):
            for device in source.devices.descendants(known_station.id):
                if device.kind is DeviceKind.CONNECTOR and device.id not in ports:
                    ports[device.id] = known_station.id
    found: list[PortData] = []
    for port_id in sorted(ports, key=lambda p: (str(ports[p]), p)):
        station_id = ports[port_id]
        station = (
            source.devices.get(station_id)
            if source.devices is not None and station_id is not None
            else None
        )
        hours = hours_for(
            source.config, station, station_id, zone=source.zone, logged=source.hours_log
        )
        history = PortHistory.build(
            port_id,
            station_id,
            outages,
            exclusions,
            until=until,
            zone=source.zone,
            hours=hours,
            in_service=in_service_start(first_seen, source.devices, port_id, now),
        )
        names = _names(source.devices, port_id, extra.get(port_id, {}))
        applicable = [x for x in exclusions if x.applies_to(port_id, station_id)]
        found.append(PortData(port_id, station_id, history, names, station, applicable, hours))
    return found, session_rows


async def build_report(
    source: ReportSource, start: float, end: float, port_ids: Iterable[str] | None = None
) -> UptimeReport:
    """Read the recorder and compute the report over [start, end), under NEVI and CEC."""
    ports, session_rows = await load_ports(source, start, end, port_ids)
    months = _months(start, end, source.zone)
    reports: list[PortReport] = []
    for port in ports:
        history = port.history
        reports.append(
            PortReport(
                port.port_id,
                port.station_id,
                history.figures(start, end, NEVI_RULES),
                [(label, history.figures(lo, hi, NEVI_RULES)) for label, lo, hi in months],
                history.outage_rows(start, end),
                port.names,
                history.figures(start, end, CEC_RULES),
                [(label, history.figures(lo, hi, CEC_RULES)) for label, lo, hi in months],
                port.first_year(min(end, source.now)),
                port.in_service,
            )
        )
    sessions = [
        _session_row(row, _names(source.devices, str(row.get("port_id")), row))
        for row in session_rows
    ]
    return UptimeReport(start, end, source.now, str(source.zone), reports, sessions)


# The Python API the HTTP API calls -----------------------------------------------------


async def _hub_report(hub: Hub, start: float, end: float) -> UptimeReport:
    source = ReportSource.from_hub(hub)
    await source.recorder.flush()
    return await build_report(source, start, end)


async def port_uptime(hub: Hub, start: float, end: float) -> list[dict[str, Any]]:
    """Return each port's uptime, T_outage and T_excluded over [start, end)."""
    report = await _hub_report(hub, start, end)
    return [
        {**port.names, "port_id": port.port_id, "station_id": port.station_id}
        | port.figures.as_dict()
        for port in report.ports
    ]


async def station_uptime(hub: Hub, start: float, end: float) -> list[dict[str, Any]]:
    """Return each station's uptime (mean of its ports) over [start, end)."""
    return (await _hub_report(hub, start, end)).stations()


async def monthly_rows(hub: Hub, start: float, end: float) -> list[dict[str, Any]]:
    """Return one row per port and calendar month over [start, end)."""
    return (await _hub_report(hub, start, end)).monthly_rows()


async def report_csv(hub: Hub, start: float, end: float) -> str:
    """Return the report over [start, end) as CSV text."""
    return (await _hub_report(hub, start, end)).to_csv()


async def report_json(hub: Hub, start: float, end: float) -> dict[str, Any]:
    """Return the report over [start, end) as a JSON-serialisable dict."""
    return (await _hub_report(hub, start, end)).as_dict()


async def port_intervals(hub: Hub, port_id: str, start: float, end: float) -> list[dict[str, Any]]:
    """Return a port's 15-minute reliability intervals (up, down, excluded) over [start, end)."""
    source = ReportSource.from_hub(hub)
    await source.recorder.flush()
    until = min(end, source.now)
    since = history_start(start, source.zone)
    outages = [
        OutageRecord.from_row(row)
        for row in await source.recorder.outages(since, max(until, since + 1), [port_id])
    ]
    exclusions = [
        ExclusionRecord.from_row(row)
        for row in await source.recorder.exclusions(since, max(until, since + 1))
    ]
    station = source.devices.station_of(port_id) if source.devices is not None else None
    first_seen = await source.recorder.first_seen([port_id])
    history = PortHistory.build(
        port_id,
        None if station is None else station.id,
        outages,
        exclusions,
        until=until,
        zone=source.zone,
        hours=hours_for(source.config, station, zone=source.zone, logged=source.hours_log),
        in_service=in_service_start(first_seen, source.devices, port_id, source.now),
    )
    return [
        {
            "start": utc_iso(item.start),
            "status": item.status,
            "outage_s": item.outage_s,
            "excluded_s": item.excluded_s,
        }
        for item in history.intervals(start, until)
    ]


# The command line: evhub report uptime ---------------------------------------------------


def parse_report_time(text: str, zone: zoneinfo.ZoneInfo, *, inclusive_date: bool) -> float:
    """Return POSIX seconds for a date (local midnight; the next one if inclusive) or time."""
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        if len(value) == 10:
            if inclusive_date:
                day += timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise ReportError(
            f"expected a date (YYYY-MM-DD) or an ISO 8601 time, got {text!r}"
        ) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def _load_settings(config_dir: Path) -> tuple[str, str | None, Mapping[str, Any]]:
    """Return the hub's time zone, the recorder's db_url and the uptime config (validated)."""
    import voluptuous as vol

    from hub.bootstrap import HUB_SCHEMA
    from hub.config import load_config_file
    from hub.const import CONFIG_FILE
    from integrations.recorder import CONF_DB_URL
    from integrations.recorder import CONFIG_SCHEMA as RECORDER_SCHEMA

    if not (config_dir / CONFIG_FILE).is_file():
        raise ReportError(f"no {CONFIG_FILE} in {config_dir}")
    raw = load_config_file(config_dir)
    if not isinstance(raw, Mapping):
        raise ReportError(f"{CONFIG_FILE}: expected a mapping of sections")
    try:
        core = HUB_SCHEMA(dict(raw.get("hub") or {}))
        if raw.get("recorder") is False:
            raise ReportError(f"{CONFIG_FILE}: the recorder is turned off: nothing to report")
        recorder = RECORDER_SCHEMA(raw.get("recorder"))
        # `uptime: false` turns the live engine off; what was recorded can still be reported.
        uptime = CONFIG_SCHEMA(raw.get("uptime") or None)
    except vol.Invalid as err:
        raise ReportError(f"{CONFIG_FILE}: {err}") from err
    return str(core["time_zone"]), recorder.get(CONF_DB_URL), uptime


def load_hours_log(config_dir: Path) -> Mapping[str, Any]:
    """The uptime engine's log of stated operating hours, from its store (hub not running)."""
    from hub.const import STORAGE_DIR
    from integrations.uptime.engine import STORAGE_KEY

    path = config_dir / STORAGE_DIR / STORAGE_KEY
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    data = stored.get("data") if isinstance(stored, dict) else None
    log = data.get("hours_log") if isinstance(data, dict) else None
    return log if isinstance(log, dict) else {}


@contextlib.asynccontextmanager
async def open_source(config_dir: Path, now: float | None = None) -> AsyncIterator[ReportSource]:
    """Open the recorder database of a config dir (hub not running) as a report source.

    The validated sections of configuration.yaml are in ``source.sections`` (raw mapping).
    """
    from hub.registry import async_load_registries
    from integrations.recorder import make_backend
    from integrations.recorder.core import Recorder
    from integrations.recorder.schema import SCHEMA_VERSION

    loop = asyncio.get_running_loop()
    time_zone, db_url, config = await loop.run_in_executor(None, _load_settings, config_dir)
    zone = zoneinfo.ZoneInfo(time_zone)
    hub = Hub(config_dir)
    backend = make_backend(hub, db_url)
    path = getattr(backend, "path", None)
    if isinstance(path, Path) and not path.is_file():
        raise ReportError(f"no recorder database at {path}")
    await async_load_registries(hub)
    recorder = Recorder(hub, backend)
    await backend.open(SCHEMA_VERSION)
    try:
        yield ReportSource(
            recorder,
            zone,
            config,
            device_registry(hub),
            time.time() if now is None else now,
            await loop.run_in_executor(None, load_hours_log, config_dir),
        )
    finally:
        await backend.close()


async def report_from_config_dir(
    config_dir: Path, start_text: str | None, end_text: str | None, now: float | None = None
) -> UptimeReport:
    """Open the recorder database of a config dir (hub not running) and make the report.

    With neither start nor end, the report covers the last full calendar month.
    """
    from hub.commands import last_full_month

    loop = asyncio.get_running_loop()
    time_zone, _db_url, _config = await loop.run_in_executor(None, _load_settings, config_dir)
    # Bad dates are told before a missing database.
    zone = zoneinfo.ZoneInfo(time_zone)
    if start_text is None and end_text is None:
        start_text, end_text = last_full_month(zone, time.time() if now is None else now)
    if start_text is None or end_text is None:
        raise ReportError("give both --from and --to, or neither for the last full month")
    start = parse_report_time(start_text, zone, inclusive_date=False)
    end = parse_report_time(end_text, zone, inclusive_date=True)
    async with open_source(config_dir, now) as source:
        return await build_report(source, start, end)


def cmd_report_uptime(
    config_dir: Path, start: str | None, end: str | None, output_format: str
) -> int:
    """Print the uptime report of a config dir's database; 1 with a message on error."""
    from hub.config import ConfigError
    from integrations.recorder import RecorderError

    try:
        report = asyncio.run(report_from_config_dir(config_dir, start, end))
    except (ReportError, ConfigError, RecorderError, OSError) as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(report.to_json() + "\n" if output_format == FORMAT_JSON else report.to_csv())
    return 0
