"""The uptime API: per port, station and fleet, per month, and the exclusions (audited)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.http.monitoring import DAY, hub_zone, iso, recorder, time_window
from hub.http.service_call import call_service
from hub.http.view import (
    KEY_HUB,
    ApiError,
    current_user,
    json_response,
    read_json,
    remote,
)
from hub.registry import DeviceKind, device_registry
from integrations.uptime.const import REASONS
from integrations.uptime.figures import CEC_STANDARD_PCT, mean_percent
from integrations.uptime.report import PortReport, ReportSource, UptimeReport, build_report

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.uptime.engine import UptimeEngine

NEVI_TARGET_PCT: Final = 97.0
MAX_UPTIME_WINDOW: Final = 731 * DAY
EXCLUSION_FIELDS: Final = frozenset({"device_id", "start", "end", "reason", "note"})
_SAFE_NAME: Final = re.compile(r"[^0-9A-Za-z_.-]+")


def engine(request: web.Request) -> UptimeEngine:
    """The uptime engine, or a 503 when it does not run."""
    from integrations.uptime import UptimeError, engine_of

    try:
        return engine_of(request.app[KEY_HUB])
    except UptimeError:
        raise ApiError(503, "unavailable", "the uptime engine is not running") from None


async def report_of(request: web.Request, start: float, end: float) -> UptimeReport:
    """The uptime report over [start, end) from the recorder, after a flush."""
    hub = request.app[KEY_HUB]
    store = recorder(request)
    await store.flush()
    return await build_report(ReportSource.from_hub(hub), start, end)


def station_filter(request: web.Request) -> str | None:
    """The station the station_id query names, None without one, or a 404."""
    raw = request.query.get("station_id", "").strip()
    if not raw:
        return None
    device = device_registry(request.app[KEY_HUB]).get(raw)
    if device is None or device.kind is not DeviceKind.STATION:
        raise ApiError(404, "not_found", f"station_id: no station {raw!r}")
    return device.id


def _cec_target() -> float:
    return CEC_STANDARD_PCT


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
        "cec_uptime_pct": _percent(port.cec_figures.uptime_percent),
        "cec_excluded_minutes": round(port.cec_figures.t_excluded_min, 3),
        "window_minutes": round(figures.window_min, 3),
        "first_year": port.first_year,
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
                "cec_uptime_pct": _percent(mean_percent(p.cec_figures for p in members)),
                "cec_excluded_minutes": round(
                    sum(p.cec_figures.t_excluded_min for p in members), 3
                ),
            }
        )
    return {
        "start": iso(report.start),
        "end": iso(report.end),
        "until": iso(min(report.end, report.now)),
        "time_zone": report.time_zone,
        "target_pct": NEVI_TARGET_PCT,
        "cec_target_pct": _cec_target(),
        "ports": [_port_json(port) for port in ports],
        "stations": stations,
        "fleet_uptime_pct": _percent(mean_percent(p.figures for p in ports)),
        "fleet_cec_uptime_pct": _percent(mean_percent(p.cec_figures for p in ports)),
    }


async def get_uptime(request: web.Request) -> web.Response:
    """Uptime per port, per station and of the fleet over a window (default: this month)."""
    station_id = station_filter(request)
    engine(request)
    start, end = time_window(request, DAY, MAX_UPTIME_WINDOW, month_default=True)
    report = await report_of(request, start, end)
    return json_response(uptime_json(report, station_id))


async def get_uptime_monthly(request: web.Request) -> web.Response:
    """Per port and calendar month of a year (hub time zone): uptime, outage, excluded."""
    hub = request.app[KEY_HUB]
    zone = hub_zone(hub)
    station_id = station_filter(request)
    engine(request)
    raw = request.query.get("year", "").strip()
    if raw:
        if not raw.isdigit() or not 1970 <= int(raw) <= 9998:
            raise ApiError(400, "invalid", f"year must be a year like 2026, not {raw!r}")
        year = int(raw)
    else:
        year = datetime.fromtimestamp(clock(hub).time(), zone).year
    start = datetime(year, 1, 1, tzinfo=zone).timestamp()
    end = datetime(year + 1, 1, 1, tzinfo=zone).timestamp()
    report = await report_of(request, start, end)
    rows = []
    for port in report.ports:
        if station_id is not None and port.station_id != station_id:
            continue
        base = _port_json(port)
        cec_months = dict(port.cec_months)
        for label, figures in port.months:
            cec = cec_months.get(label, figures)
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
                    "cec_uptime_pct": _percent(cec.uptime_percent),
                    "cec_excluded_minutes": round(cec.t_excluded_min, 3),
                    "window_minutes": round(figures.window_min, 3),
                }
            )
    return json_response(
        {
            "year": year,
            "time_zone": str(zone),
            "target_pct": NEVI_TARGET_PCT,
            "cec_target_pct": _cec_target(),
            "rows": rows,
        }
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
    records = sorted(engine(request).exclusions.values(), key=lambda x: (x.start, x.exclusion_id))
    if "start" in request.query or "end" in request.query or "month" in request.query:
        start, end = time_window(request, 365 * DAY, 100 * 365 * DAY)
        records = [x for x in records if x.start < end and (x.end is None or x.end > start)]
    return json_response([exclusion_json(request, record) for record in records])


async def post_exclusion(request: web.Request) -> web.Response:
    """Add an exclusion through uptime.add_exclusion (audited)."""
    hub = request.app[KEY_HUB]
    uptime = engine(request)
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
    record = uptime.exclusions[result["exclusion_id"]]
    return json_response(exclusion_json(request, record), status=201)


async def delete_exclusion(request: web.Request) -> web.Response:
    """Remove an exclusion through uptime.remove_exclusion (audited)."""
    hub = request.app[KEY_HUB]
    uptime = engine(request)
    exclusion_id = request.match_info["exclusion_id"]
    record = uptime.exclusions.get(exclusion_id)
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


def register_views(ctx: SetupContext) -> None:
    """Serve the uptime API through the set-up context."""
    ctx.register_view(
        "GET",
        "/api/uptime",
        get_uptime,
        role=Role.VIEWER,
        summary="Uptime per port, station and fleet over a window (default: this month)",
        query=("start", "end", "month", "station_id"),
    )
    ctx.register_view(
        "GET",
        "/api/uptime/monthly",
        get_uptime_monthly,
        role=Role.VIEWER,
        summary="Uptime per port and calendar month of a year",
        query=("year", "station_id"),
    )
    ctx.register_view(
        "GET",
        "/api/uptime/exclusions",
        get_exclusions,
        role=Role.VIEWER,
        summary="Exclusions from downtime",
        query=("start", "end", "month"),
    )
    ctx.register_view(
        "POST",
        "/api/uptime/exclusions",
        post_exclusion,
        role=Role.OPERATOR,
        summary="Exclude a period of a port, station or the site from downtime (audited)",
        body={
            "device_id": "string",
            "start": "ISO 8601 time (naive: hub time zone)",
            "end": "ISO 8601 time or null (open-ended)",
            "reason": "|".join(REASONS),
            "note": "string",
        },
    )
    ctx.register_view(
        "DELETE",
        "/api/uptime/exclusions/{exclusion_id}",
        delete_exclusion,
        role=Role.OPERATOR,
        summary="Remove an exclusion (audited)",
    )
