"""Monitoring data from the history store: state history, charging sessions and statistics.

The store is whatever provides hub.history.History (the recorder integration does).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.core import Hub, valid_entity_id
from hub.history import History, history_of
from hub.http.schemas import (
    INTEGER,
    NUMBER,
    OBJECT,
    OPT_STRING,
    OPT_TIME,
    STRING,
    TIME,
    array,
    json_ok,
    obj,
    ref,
)
from hub.http.view import KEY_HUB, ApiError, Route, json_response, query_int
from hub.registry import DeviceEntry, DeviceKind, device_registry

MAX_ENTITIES: Final = 100
DAY: Final = 86400.0
# The longest window a statistics period may cover: hours over a month, days over a year.
MAX_STATISTICS_WINDOW: Final = {"hour": 31 * DAY, "day": 400 * DAY}
MAX_SESSIONS_WINDOW: Final = 400 * DAY
_MONTH: Final = re.compile(r"^(\d{4})-(\d{2})$")


def parse_time(request: web.Request, name: str, default: float) -> float:
    """An ISO 8601 query parameter as POSIX seconds (naive times are UTC), or a 400."""
    raw = request.query.get(name)
    if not raw:
        return default
    return parse_iso(raw, name)


def parse_iso(raw: str, name: str, *, strip: bool = False) -> float:
    """An ISO 8601 time (naive: UTC; with strip, blanks around it allowed) as POSIX seconds,
    or a 400 naming the parameter."""
    try:
        parsed = datetime.fromisoformat((raw.strip() if strip else raw).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid", f"{name} must be an ISO 8601 time, not {raw!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        raise ApiError(400, "invalid", f"{name} is out of range") from None


def hub_zone(hub: Hub) -> zoneinfo.ZoneInfo:
    """The hub's time zone (months and days follow it)."""
    return zoneinfo.ZoneInfo(hub.config.time_zone if hub.config is not None else "UTC")


def parse_month(raw: str, zone: zoneinfo.ZoneInfo) -> tuple[float, float]:
    """A "YYYY-MM" month as [first instant, first instant of the next month) in a zone."""
    found = _MONTH.match(raw.strip())
    if found is None:
        raise ApiError(400, "invalid", f"month must be YYYY-MM, not {raw!r}")
    year, month = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12 or not 1970 <= year <= 9998:
        raise ApiError(400, "invalid", f"no such month {raw!r}")
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.timestamp(), end.timestamp()


def time_window(
    request: web.Request, default_span: float, max_span: float, *, month_default: bool = False
) -> tuple[float, float]:
    """[start, end) from the start/end (ISO 8601) or month (YYYY-MM) query, checked.

    Without them: the last default_span seconds, or with month_default this month so far
    (hub time zone).
    """
    hub = request.app[KEY_HUB]
    now = clock(hub).time()
    month = request.query.get("month")
    if month:
        if "start" in request.query or "end" in request.query:
            raise ApiError(400, "invalid", "give month or start/end, not both")
        return parse_month(month, hub_zone(hub))
    if month_default and "start" not in request.query:
        local = datetime.fromtimestamp(now, hub_zone(hub))
        default_start = datetime(local.year, local.month, 1, tzinfo=local.tzinfo).timestamp()
    else:
        default_start = None
    end = parse_time(request, "end", now)
    start = parse_time(
        request, "start", default_start if default_start is not None else end - default_span
    )
    if start >= end:
        raise ApiError(400, "invalid", "start must be before end")
    if end - start > max_span:
        raise ApiError(400, "invalid", f"the window may be at most {max_span / DAY:g} days")
    return start, end


def recorder(request: web.Request) -> History:
    """The hub's history store (the recorder), or a 503 when it does not run."""
    found = history_of(request.app[KEY_HUB])
    if found is None:
        raise ApiError(503, "unavailable", "the recorder is not running")
    return found


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC for POSIX seconds (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def device_of(
    request: web.Request, param: str, kinds: tuple[DeviceKind, ...], required: bool = False
) -> DeviceEntry | None:
    """The device a query parameter names, of one of the kinds; 404 if there is none."""
    raw = request.query.get(param, "").strip()
    if not raw:
        if required:
            raise ApiError(400, "invalid", f"{param} is required")
        return None
    device = device_registry(request.app[KEY_HUB]).get(raw)
    if device is None or device.kind not in kinds:
        what = " or ".join(str(kind) for kind in kinds)
        raise ApiError(404, "not_found", f"{param}: no {what} {raw!r}")
    return device


async def get_history(request: web.Request) -> web.Response:
    """The states of entities between start and end (default: the last day)."""
    raw = request.query.get("entity_id", "")
    entity_ids = [e.strip() for e in raw.split(",") if e.strip()]
    if not entity_ids:
        raise ApiError(400, "invalid", "entity_id is required (comma-separated)")
    if len(entity_ids) > MAX_ENTITIES:
        raise ApiError(400, "invalid", f"at most {MAX_ENTITIES} entities at once")
    bad = [e for e in entity_ids if not valid_entity_id(e)]
    if bad:
        raise ApiError(400, "invalid", f"invalid entity id {bad[0]!r}")
    now = clock(request.app[KEY_HUB]).time()
    end = parse_time(request, "end", now)
    start = parse_time(request, "start", end - DAY)
    if start >= end:
        raise ApiError(400, "invalid", "start must be before end")
    rows = await recorder(request).history(entity_ids, start, end)
    return json_response(
        {
            entity_id: [
                {
                    "state": row["state"],
                    "attributes": row["attributes"],
                    "last_changed": iso(row["last_changed"]),
                }
                for row in found
            ]
            for entity_id, found in rows.items()
        }
    )


def session_json(row: dict[str, Any], now: float) -> dict[str, Any]:
    """A recorded charging session with ISO times and its duration so far."""
    started, stopped = row["started_at"], row["stopped_at"]
    duration = None if started is None else max(0.0, (stopped or now) - started)
    return {
        **row,
        "started_at": iso(started),
        "stopped_at": iso(stopped),
        "duration_s": None if duration is None else round(duration, 3),
    }


async def get_sessions(request: web.Request) -> web.Response:
    """Charging sessions overlapping [start, end) (default: the last 7 days), newest first."""
    station = device_of(request, "station_id", (DeviceKind.STATION,))
    port = device_of(request, "port_id", (DeviceKind.CONNECTOR, DeviceKind.EVSE))
    limit = query_int(request, "limit", 500, 1, 10_000)
    start, end = time_window(request, 7 * DAY, MAX_SESSIONS_WINDOW)
    store = recorder(request)
    await store.flush()
    rows = await store.sessions(
        start,
        end,
        station_ids=None if station is None else [station.id],
        port_ids=None if port is None else [port.id],
    )
    now = clock(request.app[KEY_HUB]).time()
    newest = sorted(rows, key=lambda r: r["started_at"] or 0.0, reverse=True)[:limit]
    return json_response([session_json(row, now) for row in newest])


def _statistics_window(request: web.Request) -> tuple[str, float, float]:
    """The period (hour, the default, or day) and [start, end) of a statistics query."""
    period = request.query.get("period") or "hour"
    if period not in MAX_STATISTICS_WINDOW:
        raise ApiError(400, "invalid", f"period must be hour or day, not {period!r}")
    start, end = time_window(request, DAY, MAX_STATISTICS_WINDOW[period])
    return period, start, end


async def get_statistics(request: web.Request) -> web.Response:
    """Energy, sessions, utilization and failures of a port or station, per hour or day."""
    hub = request.app[KEY_HUB]
    device = device_of(
        request, "device_id", (DeviceKind.STATION, DeviceKind.CONNECTOR), required=True
    )
    assert device is not None
    period, start, end = _statistics_window(request)
    store = recorder(request)
    await store.flush()
    found = (await store.statistics([device.id], start, end, period))[device.id]  # type: ignore[arg-type]
    periods = found.pop("periods")
    kind = "station" if device.kind is DeviceKind.STATION else "port"
    if kind == "station" and found["kind"] != "station":
        # Nothing recorded for the station in the window: it has no counted ports.
        found["ports"] = []
    found["kind"] = kind
    summary = {
        "device_id": device.id,
        "name": device.name,
        "start": iso(start),
        "end": iso(end),
        "period": period,
        # Periods are the hub's hours and days: a client labels them in this zone, not its own.
        "time_zone": str(hub_zone(hub)),
        **found,
        "failed_sessions": [
            {**row, "started_at": iso(row["started_at"])} for row in found["failed_sessions"]
        ],
    }
    rows = [{**row, "start": iso(row["start"]), "end": iso(row["end"])} for row in periods]
    return json_response({"rows": rows, "summary": summary})


async def get_fleet_statistics(request: web.Request) -> web.Response:
    """Energy and sessions of every station together, per hour or day (the overview's charts)."""
    hub = request.app[KEY_HUB]
    period, start, end = _statistics_window(request)
    stations = [device.id for device in device_registry(hub).devices(kind=DeviceKind.STATION)]
    store = recorder(request)
    await store.flush()
    found = await store.statistics(stations, start, end, period) if stations else {}  # type: ignore[arg-type]
    totals: dict[float, dict[str, float]] = {}
    for figures in found.values():
        for row in figures["periods"]:
            total = totals.setdefault(row["start"], {"end": row["end"], "energy_kwh": 0.0})
            total["energy_kwh"] += row["energy_kwh"]
            total["sessions"] = total.get("sessions", 0) + row["sessions"]
    rows: list[dict[str, Any]] = []
    for begin in sorted(totals):
        total = totals[begin]
        hours = max((total["end"] - begin) / 3600, 1e-9)
        rows.append(
            {
                "start": iso(begin),
                "end": iso(total["end"]),
                "energy_kwh": round(total["energy_kwh"], 3),
                "sessions": int(total.get("sessions", 0)),
                # Energy over the period's length: what the fleet drew on average.
                "average_power_kw": round(total["energy_kwh"] / hours, 3),
            }
        )
    return json_response(
        {
            "start": iso(start),
            "end": iso(end),
            "period": period,
            "time_zone": str(hub_zone(hub)),
            "stations": len(stations),
            "energy_kwh": round(sum(row["energy_kwh"] for row in rows), 3),
            "sessions": sum(row["sessions"] for row in rows),
            "rows": rows,
        }
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/history",
        get_history,
        Role.VIEWER,
        "State history of entities",
        query=("entity_id", "start", "end"),
        tag="monitoring",
        responses=json_ok(
            {
                "type": "object",
                "additionalProperties": array(
                    obj({"state": OPT_STRING, "attributes": OBJECT, "last_changed": OPT_TIME})
                ),
            }
        ),
    ),
    Route(
        "GET",
        "/api/sessions",
        get_sessions,
        Role.VIEWER,
        "Recorded charging sessions overlapping a window, newest first",
        query=("start", "end", "month", "station_id", "port_id", "limit"),
        tag="monitoring",
        responses=json_ok(array(ref("Session"))),
    ),
    Route(
        "GET",
        "/api/statistics",
        get_statistics,
        Role.VIEWER,
        "Charging statistics of a station or port per hour or day",
        query=("device_id", "period", "start", "end", "month"),
        tag="monitoring",
        responses=json_ok(
            obj(
                {
                    "rows": array(obj({"start": TIME, "end": TIME}, required=("start", "end"))),
                    "summary": obj(
                        {
                            "device_id": STRING,
                            "name": OPT_STRING,
                            "kind": {"enum": ["station", "port"]},
                            "start": TIME,
                            "end": TIME,
                            "period": {"enum": ["hour", "day"]},
                            "time_zone": STRING,
                        }
                    ),
                }
            )
        ),
    ),
    Route(
        "GET",
        "/api/statistics/fleet",
        get_fleet_statistics,
        Role.VIEWER,
        "Energy and sessions of all stations together per hour or day",
        query=("period", "start", "end", "month"),
        tag="monitoring",
        responses=json_ok(
            obj(
                {
                    "start": TIME,
                    "end": TIME,
                    "period": {"enum": ["hour", "day"]},
                    "time_zone": STRING,
                    "stations": INTEGER,
                    "energy_kwh": NUMBER,
                    "sessions": INTEGER,
                    "rows": array(
                        obj(
                            {
                                "start": TIME,
                                "end": TIME,
                                "energy_kwh": NUMBER,
                                "sessions": INTEGER,
                                "average_power_kw": NUMBER,
                            }
                        )
                    ),
                }
            )
        ),
    ),
)
