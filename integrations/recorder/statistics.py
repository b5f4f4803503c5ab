"""Charging statistics per port and per station over a window, from the recorder's tables.

Energy comes from the recorded sessions, spread evenly over each session's duration (the
recorder keeps a session's total, not its meter curve). Utilization comes from the recorded
port status changes: the share of port-time spent Charging, and occupied (a vehicle plugged
in: Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing). A station's figures add up
its ports (utilization is over the sum of its ports' time). Times are POSIX seconds; periods
follow the hub's time zone.

Nothing counts past now (the hub's clock): utilization is over the port-time elapsed in the
window, so a period still to come has none. A status holds until the port's next status
change, or until its station goes away (the start of an ``offline`` outage of the port, as
the uptime engine records it), whichever comes first: what a port does while it is away, or
before its first known status, is not known and counts as neither charging nor occupied. A
session still open in the recorder runs until now, or until its port is known to be out of
session (a status other than occupied, or offline), so a session its charger never closed
does not grow forever.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from hub.clock import clock
from hub.core import Hub
from integrations.recorder.core import Time, to_ts

CHARGING: Final = "Charging"
OCCUPIED: Final = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})
NO_ERROR: Final = frozenset({"", "NoError"})
# The uptime engine's outage cause while a port's station is away
# (integrations.uptime.const.CAUSE_OFFLINE).
OFFLINE: Final = "offline"

# (since, until, status): what a port was known to be doing over [since, until).
Span = tuple[float, float, str]


def period_bounds(start: float, end: float, period: str, time_zone: str) -> list[float]:
    """Return bucket boundaries from start to end on local hour or day starts."""
    if period not in ("hour", "day"):
        raise ValueError(f"period must be 'hour' or 'day', not {period!r}")
    zone = zoneinfo.ZoneInfo(time_zone)
    bounds = [start]
    local = datetime.fromtimestamp(start, zone)
    if period == "hour":
        mark = local.replace(minute=0, second=0, microsecond=0).timestamp()
        while True:
            mark += 3600.0
            if mark >= end:
                break
            bounds.append(mark)
    else:
        day = local.date()
        while True:
            day += timedelta(days=1)
            mark = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
            if mark >= end:
                break
            bounds.append(mark)
    bounds.append(end)
    return bounds


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


class _Acc:
    """Sums for one device."""

    def __init__(self, bounds: list[float], ports: int) -> None:
        n = len(bounds) - 1
        self.energy = [0.0] * n
        self.sessions = [0] * n
        self.charging = [0.0] * n
        self.occupied = [0.0] * n
        self.peak = [0.0] * n
        self.ports = ports


async def statistics(
    hub: Hub,
    device_ids: Iterable[str],
    start: Time,
    end: Time,
    period: Literal["hour", "day"] = "hour",
) -> dict[str, dict[str, Any]]:
    """Return per device (port or station id): totals and per-period figures over [start, end).

    Per device: kind ("port" or "station"), ports, energy_kwh, sessions, charging_percent,
    occupied_percent, peak_power_kw, failed_sessions (station_id, port_id, transaction_id,
    started_at, error_code), error_codes ({code: count}), busiest_hours (24 counts of
    sessions started per local hour of day) and periods (start, end, energy_kwh, sessions,
    charging_percent, occupied_percent, peak_power_kw).
    """
    from integrations.recorder import get_recorder

    recorder = get_recorder(hub)
    start_ts, end_ts = to_ts(start), to_ts(end)
    if end_ts <= start_ts:
        raise ValueError("end must be after start")
    time_zone = hub.config.time_zone if hub.config is not None else "UTC"
    zone = zoneinfo.ZoneInfo(time_zone)
    bounds = period_bounds(start_ts, end_ts, period, time_zone)
    sessions = await recorder.sessions(start_ts, end_ts)
    status = await recorder.port_status(start_ts, end_ts)
    now = min(end_ts, clock(hub).time())

    station_ports: dict[str, set[str]] = {}
    for row in (*sessions, *status):
        if row["station_id"] is not None and row["port_id"] is not None:
            station_ports.setdefault(row["station_id"], set()).add(row["port_id"])
    changes: dict[str, list[tuple[float, str]]] = {}
    for row in status:
        changes.setdefault(row["port_id"], []).append((row["time"], row["status"]))
    # Offline outages from the oldest moment that needs them: a port's status at the window's
    # start, or an open session's start.
    since = min(
        (
            *(row["time"] for row in status),
            *(s["started_at"] for s in sessions if s["stopped_at"] is None and s["started_at"]),
        ),
        default=start_ts,
    )
    away: dict[str, list[float]] = {}
    if status or any(s["stopped_at"] is None for s in sessions):
        for outage in await recorder.outages(min(since, start_ts), end_ts):
            if outage["cause"] == OFFLINE and outage["port_id"] is not None:
                away.setdefault(outage["port_id"], []).append(outage["start"])
    timelines = {
        port: _known_spans(found, sorted(away.get(port, [])), now)
        for port, found in changes.items()
    }

    result: dict[str, dict[str, Any]] = {}
    for device_id in dict.fromkeys(device_ids):
        is_station = device_id in station_ports
        ports = sorted(station_ports[device_id]) if is_station else [device_id]
        acc = _Acc(bounds, len(ports))
        for port in ports:
            _add_status(acc, bounds, timelines.get(port, []))
        mine = [
            s
            for s in sessions
            if (s["station_id"] == device_id if is_station else s["port_id"] == device_id)
        ]
        failed: list[dict[str, Any]] = []
        codes: dict[str, int] = {}
        hours = [0] * 24
        for session in mine:
            port = session["port_id"]
            stopped = _session_end(session, changes.get(port, []), away.get(port, []), now)
            _add_session(acc, bounds, session, stopped)
            started = session["started_at"]
            if started is None or not start_ts <= started < end_ts:
                continue
            hours[datetime.fromtimestamp(started, zone).hour] += 1
            code = session["error_code"]
            if code is not None and code not in NO_ERROR:
                codes[code] = codes.get(code, 0) + 1
                failed.append(
                    {
                        key: session[key]
                        for key in (
                            "station_id",
                            "port_id",
                            "transaction_id",
                            "started_at",
                            "error_code",
                        )
                    }
                )
        result[device_id] = _summary(acc, bounds, now, is_station, ports, failed, codes, hours)
    return result


def _known_spans(changes: list[tuple[float, str]], away: list[float], now: float) -> list[Span]:
    """A port's statuses over the time each is known: to the next change, offline or now."""
    spans: list[Span] = []
    for index, (since, status) in enumerate(changes):
        until = changes[index + 1][0] if index + 1 < len(changes) else now
        gone = next((start for start in away if since <= start < until), None)
        until = min(until, now, gone if gone is not None else until)
        if until > since:
            spans.append((since, until, status))
    return spans


def _session_end(
    session: dict[str, Any], changes: list[tuple[float, str]], away: list[float], now: float
) -> float | None:
    """When a session ended, or for an open one, when it is known to have ended, or now."""
    started: float | None = session["started_at"]
    stopped: float | None = session["stopped_at"]
    if stopped is not None or started is None:
        return stopped
    end = now
    # Only what the port reported after the session began tells: a charger may report
    # Charging a moment after its StartTransaction.
    free = next((t for t, status in changes if t >= started and status not in OCCUPIED), None)
    gone = next((start for start in away if start >= started), None)
    for known in (free, gone):
        if known is not None:
            end = min(end, known)
    return max(started, end)


def _add_status(acc: _Acc, bounds: list[float], timeline: list[Span]) -> None:
    for since, until, status in timeline:
        if status not in OCCUPIED:
            continue
        charging = status == CHARGING
        for b in range(len(bounds) - 1):
            overlap = _overlap(since, until, bounds[b], bounds[b + 1])
            if overlap:
                acc.occupied[b] += overlap
                if charging:
                    acc.charging[b] += overlap


def _add_session(
    acc: _Acc, bounds: list[float], session: dict[str, Any], stopped: float | None
) -> None:
    started = session["started_at"]
    if started is None or stopped is None:
        return
    energy = session["energy_wh"] or 0.0
    peak = (session["peak_power_w"] or 0.0) / 1000.0
    duration = stopped - started
    for b in range(len(bounds) - 1):
        low, high = bounds[b], bounds[b + 1]
        if low <= started < high:
            acc.sessions[b] += 1
        if duration > 0:
            overlap = _overlap(started, stopped, low, high)
            if overlap:
                acc.energy[b] += energy * overlap / duration / 1000.0
                acc.peak[b] = max(acc.peak[b], peak)
        elif low <= started < high:
            acc.energy[b] += energy / 1000.0
            acc.peak[b] = max(acc.peak[b], peak)


def _summary(
    acc: _Acc,
    bounds: list[float],
    now: float,
    is_station: bool,
    ports: list[str],
    failed: list[dict[str, Any]],
    codes: dict[str, int],
    hours: list[int],
) -> dict[str, Any]:
    periods = []
    # Utilization is over the port-time elapsed: none of a period still to come.
    elapsed = [max(0.0, min(bounds[b + 1], now) - bounds[b]) for b in range(len(bounds) - 1)]
    for b in range(len(bounds) - 1):
        span = elapsed[b] * acc.ports
        periods.append(
            {
                "start": bounds[b],
                "end": bounds[b + 1],
                "energy_kwh": acc.energy[b],
                "sessions": acc.sessions[b],
                "charging_percent": 100.0 * acc.charging[b] / span if span else 0.0,
                "occupied_percent": 100.0 * acc.occupied[b] / span if span else 0.0,
                "peak_power_kw": acc.peak[b],
            }
        )
    total = sum(elapsed) * acc.ports
    return {
        "kind": "station" if is_station else "port",
        "ports": ports,
        "energy_kwh": sum(acc.energy),
        "sessions": sum(acc.sessions),
        "charging_percent": 100.0 * sum(acc.charging) / total if total else 0.0,
        "occupied_percent": 100.0 * sum(acc.occupied) / total if total else 0.0,
        "peak_power_kw": max(acc.peak, default=0.0),
        "failed_sessions": failed,
        "error_codes": codes,
        "busiest_hours": hours,
        "periods": periods,
    }
