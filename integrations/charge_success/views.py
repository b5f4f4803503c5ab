"""Charge success (did the charge work?) per port, station or site, by day or month."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from hub.auth import Role
from hub.http.monitoring import DAY, hub_zone, iso, recorder, time_window
from hub.http.schemas import (
    INTEGER,
    JSON,
    OPT_NUMBER,
    OPT_STRING,
    OPT_TIME,
    STRING,
    TIME,
    Schema,
    array,
    dict_of,
    json_ok,
    nullable,
    obj,
    one_of,
)
from hub.http.view import KEY_HUB, ApiError, json_response

if TYPE_CHECKING:
    from hub.plugins import SetupContext

MAX_WINDOW: Final = 400 * DAY
DEFAULT_SPAN: Final = 30 * DAY
KNOWN_QUERY: Final = frozenset(
    {"start", "end", "month", "group", "by", "format", "attempts", "station_id"}
)
MAX_ATTEMPTS_LISTED: Final = 1000
_SAFE_NAME: Final = re.compile(r"[^0-9A-Za-z_.-]+")


# What the API answers (the OpenAPI description; tests validate real answers against it).
_FIGURES: Final[dict[str, Schema]] = {
    "attempts": INTEGER,
    "successful": INTEGER,
    "failed": INTEGER,
    "failed_no_session": INTEGER,
    "failed_low_energy": INTEGER,
    "failed_stop_reason": INTEGER,
    "failed_faulted": INTEGER,
    "in_progress": INTEGER,
    "success_rate": OPT_NUMBER,
    "visits": INTEGER,
    "successful_visits": INTEGER,
    "visit_success_rate": OPT_NUMBER,
    "attempts_per_visit": OPT_NUMBER,
    # MREC code -> how many attempts saw it.
    "error_codes": dict_of(INTEGER),
}
_GROUP: Final[dict[str, Schema]] = {
    "group": one_of("port", "station", "site"),
    "id": OPT_STRING,  # None: the attempts of ports without a site (group=site)
    "name": STRING,
    "station_id": OPT_STRING,
    "site_id": OPT_STRING,
}
ATTEMPT_ANSWER: Final = obj(
    {
        "port_id": STRING,
        "station_id": OPT_STRING,
        "start": TIME,
        "end": OPT_TIME,
        "id_tag": OPT_STRING,
        "transaction_id": OPT_STRING,
        "energy_kwh": OPT_NUMBER,
        "stop_reason": OPT_STRING,
        "outcome": one_of("success", "failed", "in_progress"),
        "failure": nullable(one_of("no_session", "low_energy", "stop_reason", "faulted")),
        "error_codes": array(STRING),
        "mrec_codes": array(STRING),
    }
)
REPORT_ANSWER: Final = obj(
    {
        "start": TIME,
        "end": TIME,
        "time_zone": STRING,
        "group": one_of("port", "station", "site"),
        "by": one_of("day", "month"),
        "rows": array(obj({**_GROUP, "period": STRING, "start": TIME, "end": TIME, **_FIGURES})),
        "totals": array(obj({**_GROUP, **_FIGURES})),
        "overall": obj(_FIGURES),
        # Only with attempts=1: the last attempts, oldest first.
        "attempts": array(ATTEMPT_ANSWER),
    },
    required=("start", "end", "time_zone", "group", "by", "rows", "totals", "overall"),
)
ERROR_CODES_ANSWER: Final = obj(
    {
        # MREC code -> its name (None where the name is not verified).
        "codes": dict_of(OPT_STRING),
        # OCPP (and vendor) error code -> MREC code (None: no MREC of its own).
        "ocpp": dict_of(OPT_STRING),
        "vendor": dict_of(OPT_STRING),
        # What configuration.yaml adds: code -> MREC code.
        "user": dict_of(STRING),
    }
)


def _choice(request: web.Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        raise ApiError(400, "invalid", f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


def _station(request: web.Request) -> str | None:
    from hub.registry import DeviceKind, device_registry

    raw = request.query.get("station_id", "").strip()
    if not raw:
        return None
    if len(raw) > 128:
        raise ApiError(400, "invalid", "station_id is too long")
    device = device_registry(request.app[KEY_HUB]).get(raw)
    if device is None or device.kind is not DeviceKind.STATION:
        raise ApiError(404, "not_found", f"station_id: no station {raw!r}")
    return device.id


async def get_charge_success(request: web.Request) -> web.Response:
    """Attempts, success rates and visits per group and period; ?format=csv for a download."""
    from integrations.charge_success import ChargeSuccessError, report
    from integrations.charge_success.attempts import GROUPS, PERIODS, to_csv

    hub = request.app[KEY_HUB]
    unknown = sorted(set(request.query) - KNOWN_QUERY)
    if unknown:
        raise ApiError(400, "invalid", f"unknown query parameters: {', '.join(unknown)}")
    for name, values in request.query.items():
        if len(request.query.getall(name)) > 1:
            raise ApiError(400, "invalid", f"{name} given more than once")
        if len(values) > 64:
            raise ApiError(400, "invalid", f"{name} is too long")
    group = _choice(request, "group", GROUPS, "station")
    by = _choice(request, "by", PERIODS, "day")
    output = _choice(request, "format", ("json", "csv"), "json")
    listed = _choice(request, "attempts", ("0", "1", "false", "true"), "0") in ("1", "true")
    if group == "site" and request.query.get("station_id"):
        raise ApiError(400, "invalid", "station_id filters port or station groups, not sites")
    station_id = _station(request)
    start, end = time_window(request, DEFAULT_SPAN, MAX_WINDOW)
    store = recorder(request)
    await store.flush()
    try:
        found = await report(hub, start, end, group, by)
    except ChargeSuccessError as err:
        raise ApiError(503, "unavailable", str(err)) from None
    attempts = found.pop("attempt_list")
    if station_id is not None:
        for key in ("rows", "totals"):
            found[key] = [row for row in found[key] if row["station_id"] == station_id]
        attempts = [a for a in attempts if a.station_id == station_id]
    if output == "csv":
        zone = hub_zone(hub)
        first = datetime.fromtimestamp(start, zone).strftime("%Y%m%d")
        last = datetime.fromtimestamp(end, zone).strftime("%Y%m%d")
        name = _SAFE_NAME.sub("_", f"evhub-charge-success-{group}-{by}-{first}-{last}.csv")
        return web.Response(
            text=to_csv(found, iso),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    body: dict[str, Any] = {
        "start": iso(start),
        "end": iso(end),
        "time_zone": str(hub_zone(hub)),
        "group": group,
        "by": by,
        "rows": [_times(row) for row in found["rows"]],
        "totals": found["totals"],
        "overall": found["overall"],
    }
    if listed:
        body["attempts"] = [
            {**a.as_dict(), "start": iso(a.start), "end": iso(a.end)}
            for a in attempts[-MAX_ATTEMPTS_LISTED:]
        ]
    return json_response(body)


def _times(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "start": iso(row["start"]), "end": iso(row["end"])}


async def get_error_codes(request: web.Request) -> web.Response:
    """The OCPP and vendor error code mapping onto the ChargeX MRECs in use."""
    from integrations.charge_success import ChargeSuccessError, rules_of

    try:
        rules = rules_of(request.app[KEY_HUB])
    except ChargeSuccessError as err:
        raise ApiError(503, "unavailable", str(err)) from None
    return json_response(rules.errors.as_dict())


def register_views(ctx: SetupContext) -> None:
    """Serve the charge success API through the set-up context."""
    ctx.register_view(
        "GET",
        "/api/charge_success",
        get_charge_success,
        role=Role.VIEWER,
        summary="Charge attempts, success and visit rates per port, station or site, by day or"
        " month (format=csv for a download)",
        query=("start", "end", "month", "group", "by", "format", "attempts", "station_id"),
        responses={"200": {JSON: REPORT_ANSWER, "text/csv": STRING}},
    )
    ctx.register_view(
        "GET",
        "/api/charge_success/error_codes",
        get_error_codes,
        role=Role.VIEWER,
        summary="OCPP and vendor error codes mapped onto the ChargeX Minimum Required Error Codes",
        responses=json_ok(ERROR_CODES_ANSWER),
    )
