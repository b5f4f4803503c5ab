"""The uptime API: per port, station and fleet, per month, and the exclusions (audited)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.http.monitoring import DAY, hub_zone, iso, recorder, time_window
from hub.http.schemas import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    OPT_NUMBER,
    OPT_STRING,
    OPT_TIME,
    STRING,
    TIME,
    Schema,
    array,
    json_ok,
    nullable,
    obj,
    one_of,
)
from hub.http.service_call import call_service, device_label
from hub.http.view import (
    KEY_HUB,
    ApiError,
    current_user,
    json_response,
    read_json,
    remote,
)
from hub.registry import DeviceKind, device_registry
from integrations.uptime.const import REASON_OTHER, REASONS
from integrations.uptime.figures import CEC_RULES, CEC_STANDARD_PCT, NEVI_RULES, mean_percent
from integrations.uptime.report import (
    PortReport,
    ReportSource,
    UptimeReport,
    build_report,
    load_ports,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.uptime.engine import UptimeEngine

NEVI_TARGET_PCT: Final = 97.0
MAX_UPTIME_WINDOW: Final = 731 * DAY
MAX_DAILY_DAYS: Final = 92
EXCLUSION_FIELDS: Final = frozenset({"device_id", "start", "end", "reason", "note"})
_SAFE_NAME: Final = re.compile(r"[^0-9A-Za-z_.-]+")

# What the API answers (the OpenAPI description; tests validate real answers against it).
# Percentages are null for a port (station, fleet) not in service in the window.
_TARGETS: Final[dict[str, Schema]] = {
    "time_zone": STRING,
    "target_pct": NUMBER,  # NEVI's 97 %
    "cec_target_pct": NUMBER,  # the CEC reliability standard
}
_PORT_NAMES: Final[dict[str, Schema]] = {
    "station_id": OPT_STRING,
    "station_name": OPT_STRING,
    "port_id": STRING,
    "connector": nullable(INTEGER),
    "name": STRING,
}
_PORT_FIGURES: Final[dict[str, Schema]] = {
    "uptime_pct": OPT_NUMBER,
    "outage_minutes": NUMBER,
    "excluded_minutes": NUMBER,
    "cec_uptime_pct": OPT_NUMBER,
    "cec_excluded_minutes": NUMBER,
    "window_minutes": NUMBER,
}
UPTIME_ANSWER: Final = obj(
    {
        "start": TIME,
        "end": TIME,
        "until": TIME,  # the end, or now while the window is not over
        **_TARGETS,
        "ports": array(
            obj(
                {
                    **_PORT_NAMES,
                    "charge_point_id": OPT_STRING,
                    **_PORT_FIGURES,
                    "first_year": BOOLEAN,  # in service for less than 12 months
                    "outages": INTEGER,
                }
            )
        ),
        "stations": array(
            obj(
                {
                    "station_id": OPT_STRING,
                    "name": OPT_STRING,
                    "charge_point_id": OPT_STRING,
                    "ports": INTEGER,
                    "uptime_pct": OPT_NUMBER,
                    "outage_minutes": NUMBER,
                    "excluded_minutes": NUMBER,
                    "cec_uptime_pct": OPT_NUMBER,
                    "cec_excluded_minutes": NUMBER,
                }
            )
        ),
        "fleet_uptime_pct": OPT_NUMBER,
        "fleet_cec_uptime_pct": OPT_NUMBER,
    }
)
MONTHLY_ANSWER: Final = obj(
    {
        "year": INTEGER,
        **_TARGETS,
        "rows": array(
            obj(
                {
                    **_PORT_NAMES,
                    "month": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
                    "start": TIME,
                    "end": TIME,
                    **_PORT_FIGURES,
                }
            )
        ),
    }
)
DAILY_ANSWER: Final = obj(
    {
        "days": INTEGER,
        **_TARGETS,
        "ports": INTEGER,
        "rows": array(
            obj(
                {
                    "date": {"type": "string", "format": "date"},
                    "start": TIME,
                    "end": TIME,
                    "uptime_pct": OPT_NUMBER,
                    "cec_uptime_pct": OPT_NUMBER,
                    "outage_minutes": NUMBER,
                }
            )
        ),
    }
)
# A port's, a station's (every port of it) or, with both ids null, the whole site's.
EXCLUSION_ANSWER: Final = obj(
    {
        "exclusion_id": STRING,
        "port_id": OPT_STRING,
        "station_id": OPT_STRING,
        "target": STRING,  # "site", or the name (else the id) of the port or station
        "start": TIME,
        "end": OPT_TIME,  # null: open-ended
        "reason": one_of(*REASONS, REASON_OTHER),
        "note": OPT_STRING,
    }
)


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


async def get_uptime_daily(request: web.Request) -> web.Response:
    """The fleet's (or a station's) uptime per day of the hub's time zone, the last N days."""
    hub = request.app[KEY_HUB]
    zone = hub_zone(hub)
    station_id = station_filter(request)
    engine(request)
    raw = request.query.get("days", "").strip() or "30"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAILY_DAYS:
        raise ApiError(
            400, "invalid", f"days must be a whole number 1-{MAX_DAILY_DAYS}, not {raw!r}"
        )
    days = int(raw)
    now = clock(hub).time()
    today = datetime.fromtimestamp(now, zone).date()
    first = today - timedelta(days=days - 1)
    bounds = [
        datetime.combine(first + timedelta(days=n), time.min, zone).timestamp()
        for n in range(days + 1)
    ]
    store = recorder(request)
    await store.flush()
    ports, _sessions = await load_ports(ReportSource.from_hub(hub), bounds[0], bounds[-1])
    chosen = [p for p in ports if station_id is None or p.station_id == station_id]
    rows = []
    for n in range(days):
        lo, hi = bounds[n], bounds[n + 1]
        nevi = [port.history.figures(lo, hi, NEVI_RULES) for port in chosen]
        cec = [port.history.figures(lo, hi, CEC_RULES) for port in chosen]
        rows.append(
            {
                "date": (first + timedelta(days=n)).isoformat(),
                "start": iso(lo),
                "end": iso(hi),
                "uptime_pct": _percent(mean_percent(nevi)),
                "cec_uptime_pct": _percent(mean_percent(cec)),
                "outage_minutes": round(sum(f.t_outage_min for f in nevi), 3),
            }
        )
    return json_response(
        {
            "days": days,
            "time_zone": str(zone),
            "target_pct": NEVI_TARGET_PCT,
            "cec_target_pct": _cec_target(),
            "ports": len(chosen),
            "rows": rows,
        }
    )


def exclusion_json(request: web.Request, record: Any) -> dict[str, Any]:
    """An exclusion with ISO times and the name of what it covers."""
    devices = device_registry(request.app[KEY_HUB])
    target_id = record.port_id or record.station_id
    target = devices.get(target_id) if target_id else None
    # A device without a name (or gone) is named by its id.
    label = target.name if target is not None and target.name else target_id
    return {
        "exclusion_id": record.exclusion_id,
        "port_id": record.port_id,
        "station_id": record.station_id,
        "target": "site" if target_id is None else label,
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


async def _exclusion_body(request: web.Request) -> dict[str, Any]:
    """The JSON body of an exclusion change; a 400 for fields an exclusion has not."""
    body = await read_json(request)
    unknown = set(body) - EXCLUSION_FIELDS
    if unknown:
        raise ApiError(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))}")
    return body


def _exclusion_of(request: web.Request, uptime: UptimeEngine) -> tuple[str, Any]:
    """The exclusion the path names, with its id; a 404 if there is none."""
    exclusion_id = request.match_info["exclusion_id"]
    record = uptime.exclusions.get(exclusion_id)
    if record is None:
        raise ApiError(404, "not_found", f"no exclusion {exclusion_id!r}")
    return exclusion_id, record


def _check_device(request: web.Request, device_id: Any) -> None:
    """A 404 unless the hub knows the device an exclusion is to cover."""
    if device_registry(request.app[KEY_HUB]).get(str(device_id)) is None:
        raise ApiError(404, "not_found", f"device_id: no device {device_id!r}")


async def _call_uptime(
    request: web.Request, service: str, data: dict[str, Any], device_id: Any
) -> Any:
    """Call an uptime.* exclusion service as the user, audited under what it covers."""
    return await call_service(
        request.app[KEY_HUB],
        current_user(request),
        remote(request),
        "uptime",
        service,
        data,
        None,
        target_name=_target_name(request, device_id),
    )


async def post_exclusion(request: web.Request) -> web.Response:
    """Add an exclusion through uptime.add_exclusion (audited)."""
    uptime = engine(request)
    body = await _exclusion_body(request)
    device_id = body.get("device_id")
    if device_id is not None:
        _check_device(request, device_id)
    data = {key: value for key, value in body.items() if value is not None or key == "end"}
    result = await _call_uptime(request, "add_exclusion", data, device_id)
    record = uptime.exclusions[result["exclusion_id"]]
    return json_response(exclusion_json(request, record), status=201)


def _target_name(request: web.Request, device_id: Any) -> str:
    """What an exclusion covers, named for the audit log: a station, a port or the site."""
    if device_id is None:
        return "site"
    return device_label(request.app[KEY_HUB], str(device_id)) or f"device_id={device_id}"


async def patch_exclusion(request: web.Request) -> web.Response:
    """Change an exclusion through uptime.update_exclusion (audited): the fields given."""
    uptime = engine(request)
    exclusion_id, record = _exclusion_of(request, uptime)
    body = await _exclusion_body(request)
    if not body:
        raise ApiError(400, "invalid", "nothing to change: give start, end, reason or note")
    device_id = body.get("device_id", record.port_id or record.station_id)
    if "device_id" in body:
        if device_id is None:
            raise ApiError(400, "invalid", "device_id: give a station or port (null is not one)")
        _check_device(request, device_id)
    data = {"exclusion_id": exclusion_id, **body}
    await _call_uptime(request, "update_exclusion", data, device_id)
    return json_response(exclusion_json(request, uptime.exclusions[exclusion_id]))


async def delete_exclusion(request: web.Request) -> web.Response:
    """Remove an exclusion through uptime.remove_exclusion (audited)."""
    exclusion_id, record = _exclusion_of(request, engine(request))
    await _call_uptime(
        request,
        "remove_exclusion",
        {"exclusion_id": exclusion_id},
        record.port_id or record.station_id,
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
        responses=json_ok(UPTIME_ANSWER),
    )
    ctx.register_view(
        "GET",
        "/api/uptime/monthly",
        get_uptime_monthly,
        role=Role.VIEWER,
        summary="Uptime per port and calendar month of a year",
        query=("year", "station_id"),
        responses=json_ok(MONTHLY_ANSWER),
    )
    ctx.register_view(
        "GET",
        "/api/uptime/daily",
        get_uptime_daily,
        role=Role.VIEWER,
        summary="Uptime of the fleet (or a station) per day, the last N days",
        query=("days", "station_id"),
        responses=json_ok(DAILY_ANSWER),
    )
    ctx.register_view(
        "GET",
        "/api/uptime/exclusions",
        get_exclusions,
        role=Role.VIEWER,
        summary="Exclusions from downtime",
        query=("start", "end", "month"),
        responses=json_ok(array(EXCLUSION_ANSWER)),
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
        responses=json_ok(EXCLUSION_ANSWER, "201"),
    )
    ctx.register_view(
        "PATCH",
        "/api/uptime/exclusions/{exclusion_id}",
        patch_exclusion,
        role=Role.OPERATOR,
        summary="Change an exclusion's time span, reason, note or target (audited)",
        body={
            "device_id": "string",
            "start": "ISO 8601 time (naive: hub time zone)",
            "end": "ISO 8601 time or null (open-ended)",
            "reason": "|".join(REASONS),
            "note": "string or null",
        },
        responses=json_ok(EXCLUSION_ANSWER),
    )
    ctx.register_view(
        "DELETE",
        "/api/uptime/exclusions/{exclusion_id}",
        delete_exclusion,
        role=Role.OPERATOR,
        summary="Remove an exclusion (audited); answers the exclusion removed",
        responses=json_ok(EXCLUSION_ANSWER),
    )
