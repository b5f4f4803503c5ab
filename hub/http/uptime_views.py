"""Uptime from the uptime engine's reports: per port and station, per month, CSV, exclusions."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.http.monitoring import DAY, hub_zone, iso, recorder, time_window
from hub.http.service_call import call_service
from hub.http.view import (
    KEY_HUB,
    ApiError,
    Route,
    current_user,
    json_response,
    read_json,
    remote,
)
from hub.registry import DeviceKind, device_registry
from hub.uptime import mean_percent
from hub.uptime_report import PortReport, ReportSource, UptimeReport, build_report

NEVI_TARGET_PCT: Final = 97.0
MAX_UPTIME_WINDOW: Final = 731 * DAY
EXCLUSION_FIELDS: Final = frozenset({"device_id", "start", "end", "reason", "note"})
_SAFE_NAME: Final = re.compile(r"[^0-9A-Za-z_.-]+")


def _engine(request: web.Request) -> Any:
    from hub.uptime import UptimeError, engine_of

    try:
        return engine_of(request.app[KEY_HUB])
    except UptimeError:
        raise ApiError(503, "unavailable", "the uptime engine is not running") from None


async def _report(request: web.Request, start: float, end: float) -> UptimeReport:
    """The uptime report over [start, end) from the recorder, after a flush."""
    hub = request.app[KEY_HUB]
    store = recorder(request)
    await store.flush()
    return await build_report(ReportSource.from_hub(hub), start, end)


def _station_filter(request: web.Request) -> str | None:
    raw = request.query.get("station_id", "").strip()
    if not raw:
        return None
    device = device_registry(request.app[KEY_HUB]).get(raw)
    if device is None or device.kind is not DeviceKind.STATION:
        raise ApiError(404, "not_found", f"station_id: no station {raw!r}")
    return device.id


def _percent(value: float | None) -> float | None:
    """A percentage to 3 places; None (null) for a port not in service in the window."""
    return None if value is None else round(value, 3)


def _port_json(port: PortReport) -> dict[str, Any]:
    figures = port.figures
    names = port.names
    return {
        "station_id": port.station_id,
        "station_name": names.get("station_name"),
        "charge_point_id": names.get("charge_point_id"),
        "port_id": port.port_id,
        "connector": names.get("connector"),
        "name": names.get("port_name") or f"{names.get('station_name')} {names.get('connector')}",
        "uptime_pct": _percent(figures.uptime_percent),
        "outage_minutes": round(figures.t_outage_min, 3),
        "excluded_minutes": round(figures.t_excluded_min, 3),
        "window_minutes": round(figures.window_min, 3),
        "outages": len(port.outages),
    }


def uptime_json(report: UptimeReport, station_id: str | None) -> dict[str, Any]:
    """Ports, stations and the fleet: the mean of their ports in service (null if none)."""
    ports = [p for p in report.ports if station_id is None or p.station_id == station_id]
    grouped: dict[str | None, list[PortReport]] = {}
    for port in ports:
        grouped.setdefault(port.station_id, []).append(port)
    stations = []
    for sid, members in grouped.items():
        stations.append(
            {
                "station_id": sid,
                "name": members[0].names.get("station_name"),
                "charge_point_id": members[0].names.get("charge_point_id"),
                "ports": len(members),
                "uptime_pct": _percent(mean_percent(p.figures for p in members)),
                "outage_minutes": round(sum(p.figures.t_outage_min for p in members), 3),
                "excluded_minutes": round(sum(p.figures.t_excluded_min for p in members), 3),
            }
        )
    return {
        "start": iso(report.start),
        "end": iso(report.end),
        "until": iso(min(report.end, report.now)),
        "time_zone": report.time_zone,
        "target_pct": NEVI_TARGET_PCT,
        "ports": [_port_json(port) for port in ports],
        "stations": stations,
        "fleet_uptime_pct": _percent(mean_percent(p.figures for p in ports)),
    }


async def get_uptime(request: web.Request) -> web.Response:
    """Uptime per port, per station and of the fleet over a window (default: this month)."""
    station_id = _station_filter(request)
    _engine(request)
    start, end = time_window(request, DAY, MAX_UPTIME_WINDOW, month_default=True)
    report = await _report(request, start, end)
    return json_response(uptime_json(report, station_id))


async def get_uptime_monthly(request: web.Request) -> web.Response:
    """Per port and calendar month of a year (hub time zone): uptime, outage, excluded."""
    hub = request.app[KEY_HUB]
    zone = hub_zone(hub)
    station_id = _station_filter(request)
    _engine(request)
    raw = request.query.get("year", "").strip()
    if raw:
        if not raw.isdigit() or not 1970 <= int(raw) <= 9998:
            raise ApiError(400, "invalid", f"year must be a year like 2026, not {raw!r}")
        year = int(raw)
    else:
        year = datetime.fromtimestamp(clock(hub).time(), zone).year
    start = datetime(year, 1, 1, tzinfo=zone).timestamp()
    end = datetime(year + 1, 1, 1, tzinfo=zone).timestamp()
    report = await _report(request, start, end)
    rows = []
    for port in report.ports:
        if station_id is not None and port.station_id != station_id:
            continue
        base = _port_json(port)
        for label, figures in port.months:
            rows.append(
                {
                    "station_id": port.station_id,
                    "station_name": base["station_name"],
                    "port_id": port.port_id,
                    "connector": base["connector"],
                    "name": base["name"],
                    "month": label,
                    "start": iso(figures.start),
                    "end": iso(figures.end),
                    "uptime_pct": _percent(figures.uptime_percent),
                    "outage_minutes": round(figures.t_outage_min, 3),
                    "excluded_minutes": round(figures.t_excluded_min, 3),
                    "window_minutes": round(figures.window_min, 3),
                }
            )
    return json_response(
        {"year": year, "time_zone": str(zone), "target_pct": NEVI_TARGET_PCT, "rows": rows}
    )


async def get_uptime_csv(request: web.Request) -> web.Response:
    """The NEVI uptime report over a window (default: this month) as a CSV download."""
    hub = request.app[KEY_HUB]
    _engine(request)
    start, end = time_window(request, DAY, MAX_UPTIME_WINDOW, month_default=True)
    report = await _report(request, start, end)
    zone = hub_zone(hub)
    first = datetime.fromtimestamp(start, zone).strftime("%Y%m%d")
    last = datetime.fromtimestamp(end, zone).strftime("%Y%m%d")
    name = _SAFE_NAME.sub("_", f"evhub-uptime-{first}-{last}.csv")
    return web.Response(
        text=report.to_csv(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def exclusion_json(request: web.Request, record: Any) -> dict[str, Any]:
    """An exclusion with ISO times and the name of what it covers."""
    devices = device_registry(request.app[KEY_HUB])
    target_id = record.port_id or record.station_id
    target = devices.get(target_id) if target_id else None
    return {
        "exclusion_id": record.exclusion_id,
        "port_id": record.port_id,
        "station_id": record.station_id,
        "target": "site" if target_id is None else (target.name if target else target_id),
        "start": iso(record.start),
        "end": iso(record.end),
        "reason": record.reason,
        "note": record.note,
    }


async def get_exclusions(request: web.Request) -> web.Response:
    """Exclusions, by start; with start/end only those overlapping that window."""
    engine = _engine(request)
    records = sorted(engine.exclusions.values(), key=lambda x: (x.start, x.exclusion_id))
    if "start" in request.query or "end" in request.query or "month" in request.query:
        start, end = time_window(request, 365 * DAY, 100 * 365 * DAY)
        records = [x for x in records if x.start < end and (x.end is None or x.end > start)]
    return json_response([exclusion_json(request, record) for record in records])


async def post_exclusion(request: web.Request) -> web.Response:
    """Add an exclusion through uptime.add_exclusion (audited)."""
    hub = request.app[KEY_HUB]
    engine = _engine(request)
    body = await read_json(request)
    unknown = set(body) - EXCLUSION_FIELDS
    if unknown:
        raise ApiError(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))}")
    device_id = body.get("device_id")
    if device_id is not None:
        device = device_registry(hub).get(str(device_id))
        if device is None:
            raise ApiError(404, "not_found", f"device_id: no device {device_id!r}")
    data = {key: value for key, value in body.items() if value is not None or key == "end"}
    result = await call_service(
        hub, current_user(request), remote(request), "uptime", "add_exclusion", data, None
    )
    record = engine.exclusions[result["exclusion_id"]]
    return json_response(exclusion_json(request, record), status=201)


async def delete_exclusion(request: web.Request) -> web.Response:
    """Remove an exclusion through uptime.remove_exclusion (audited)."""
    hub = request.app[KEY_HUB]
    engine = _engine(request)
    exclusion_id = request.match_info["exclusion_id"]
    record = engine.exclusions.get(exclusion_id)
    if record is None:
        raise ApiError(404, "not_found", f"no exclusion {exclusion_id!r}")
    await call_service(
        hub,
        current_user(request),
        remote(request),
        "uptime",
        "remove_exclusion",
        {"exclusion_id": exclusion_id},
        None,
    )
    return json_response(exclusion_json(request, record))


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/uptime",
        get_uptime,
        Role.VIEWER,
        "Uptime per port, station and fleet over a window (default: this month)",
        query=("start", "end", "month", "station_id"),
        tag="uptime",
    ),
    Route(
        "GET",
        "/api/uptime/monthly",
        get_uptime_monthly,
        Role.VIEWER,
        "Uptime per port and calendar month of a year",
        query=("year", "station_id"),
        tag="uptime",
    ),
    Route(
        "GET",
        "/api/reports/uptime.csv",
        get_uptime_csv,
        Role.VIEWER,
        "The NEVI uptime report as CSV (text/csv download)",
        query=("start", "end", "month"),
        tag="uptime",
    ),
    Route(
        "GET",
        "/api/uptime/exclusions",
        get_exclusions,
        Role.VIEWER,
        "Exclusions from downtime",
        query=("start", "end", "month"),
        tag="uptime",
    ),
    Route(
        "POST",
        "/api/uptime/exclusions",
        post_exclusion,
        Role.OPERATOR,
        "Exclude a period of a port, station or the site from downtime (audited)",
        body={
            "device_id": "string",
            "start": "ISO 8601 time (naive: hub time zone)",
            "end": "ISO 8601 time or null (open-ended)",
            "reason": "maintenance|utility_power|vandalism|natural_disaster|outside_hours|other",
            "note": "string",
        },
        tag="uptime",
    ),
    Route(
        "DELETE",
        "/api/uptime/exclusions/{exclusion_id}",
        delete_exclusion,
        Role.OPERATOR,
        "Remove an exclusion (audited)",
        tag="uptime",
    ),
)
