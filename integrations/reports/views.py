"""The regulators' downloads: NEVI uptime, EV-ChART modules and CEC reports, as CSV."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import TYPE_CHECKING, Final

from aiohttp import web

from hub.auth import Role
from hub.http.monitoring import DAY, hub_zone, recorder, time_window
from hub.http.schemas import CSV, text_ok
from hub.http.view import KEY_HUB, ApiError
from integrations.reports import (
    CEC_INTERVALS,
    CEC_SEMIANNUAL,
    Period,
    PeriodError,
    cec_interval_rows,
    cec_ports,
    cec_semiannual_rows,
    csv_text,
    evchart_file,
    evchart_tables,
    parse_half,
    parse_quarter,
    reports_config,
)
from integrations.uptime.report import ReportSource
from integrations.uptime.views import MAX_UPTIME_WINDOW, engine, report_of, station_filter

if TYPE_CHECKING:
    from hub.plugins import SetupContext

_SAFE_NAME: Final = re.compile(r"[^0-9A-Za-z_.-]+")
# Every download answers a CSV table (a header line, then a row per port, session or
# interval; UTF-8, as an attachment); a refusal answers the JSON error.
CSV_DOWNLOAD: Final = text_ok(CSV)


async def get_uptime_csv(request: web.Request) -> web.Response:
    """The NEVI uptime report over a window (default: this month) as a CSV download."""
    hub = request.app[KEY_HUB]
    engine(request)
    start, end = time_window(request, DAY, MAX_UPTIME_WINDOW, month_default=True)
    report = await report_of(request, start, end)
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


EVCHART_MODULES: Final = ("2", "3", "4", "outages", "uptime")


def _only_query(request: web.Request, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise ApiError(400, "invalid", f"unknown query parameters: {', '.join(unknown)[:200]}")


def _one(request: web.Request, name: str) -> str:
    values = request.query.getall(name, [])
    if len(values) != 1:
        raise ApiError(400, "invalid", f"{name}: give it once")
    return str(values[0])


def _period(request: web.Request, name: str) -> Period:
    zone = hub_zone(request.app[KEY_HUB])
    try:
        if name == "quarter":
            return parse_quarter(_one(request, name), zone)
        return parse_half(_one(request, name), zone)
    except PeriodError as err:
        raise ApiError(400, "invalid", f"{name}: {err}") from None


def _csv_download(text: str, name: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_SAFE_NAME.sub("_", name)}"'},
    )


async def _source(request: web.Request) -> ReportSource:
    await recorder(request).flush()
    return ReportSource.from_hub(request.app[KEY_HUB])


async def get_evchart_csv(request: web.Request) -> web.Response:
    """One EV-ChART module of a quarter (2, 3, 4) or evhub's outage/uptime CSV beside them."""
    _only_query(request, ("quarter", "module"))
    period = _period(request, "quarter")
    module = _one(request, "module")
    if module not in EVCHART_MODULES:
        raise ApiError(400, "invalid", f"module must be one of {', '.join(EVCHART_MODULES)}")
    engine(request)
    hub = request.app[KEY_HUB]
    wanted = {"outages": "4", "uptime": "3"}.get(module, module)
    tables = await evchart_tables(await _source(request), reports_config(hub), period, (wanted,))
    name = evchart_file(period.label, module)
    headers, rows = tables[name]
    return _csv_download(csv_text(headers, rows), name)


async def get_cec_csv(request: web.Request) -> web.Response:
    """The CEC semiannual reliability report of a half-year, per port."""
    _only_query(request, ("half",))
    period = _period(request, "half")
    engine(request)
    source = await _source(request)
    ports = await cec_ports(source, period)
    rows = cec_semiannual_rows(ports, reports_config(request.app[KEY_HUB]), period, source.zone)
    return _csv_download(csv_text(CEC_SEMIANNUAL, rows), f"cec-{period.label}-semiannual.csv")


async def get_cec_intervals_csv(request: web.Request) -> web.StreamResponse:
    """The CEC 15-minute interval data of a half-year, port by port (streamed)."""
    _only_query(request, ("half", "station_id"))
    period = _period(request, "half")
    station_id = station_filter(request)
    engine(request)
    source = await _source(request)
    config = reports_config(request.app[KEY_HUB])
    ports = [
        port
        for port in await cec_ports(source, period)
        if station_id is None or port.station_id == station_id
    ]
    name = _SAFE_NAME.sub("_", f"cec-{period.label}-intervals.csv")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    await response.prepare(request)
    await response.write(csv_text(CEC_INTERVALS, []).encode())
    for port in ports:
        text = csv_text(CEC_INTERVALS, cec_interval_rows(port, config, period))
        # Without its header line: one table for the whole fleet.
        await response.write(text.split("\n", 1)[1].encode())
        await asyncio.sleep(0)  # a port at a time: the loop serves chargers in between
    await response.write_eof()
    return response


def register_views(ctx: SetupContext) -> None:
    """Serve the downloads through the set-up context (they need the uptime engine)."""
    ctx.register_view(
        "GET",
        "/api/reports/uptime.csv",
        get_uptime_csv,
        role=Role.VIEWER,
        summary="The NEVI uptime report as CSV (text/csv download)",
        query=("start", "end", "month"),
        responses=CSV_DOWNLOAD,
    )
    ctx.register_view(
        "GET",
        "/api/reports/evchart.csv",
        get_evchart_csv,
        role=Role.VIEWER,
        summary="An EV-ChART module of a quarter (2 sessions, 3 uptime, 4 outages) or evhub's"
        " outage or uptime CSV beside them, as CSV",
        query=("quarter", "module"),
        responses=CSV_DOWNLOAD,
    )
    ctx.register_view(
        "GET",
        "/api/reports/cec.csv",
        get_cec_csv,
        role=Role.VIEWER,
        summary="The CEC semiannual reliability report of a half-year per port, as CSV",
        query=("half",),
        responses=CSV_DOWNLOAD,
    )
    ctx.register_view(
        "GET",
        "/api/reports/cec_intervals.csv",
        get_cec_intervals_csv,
        role=Role.VIEWER,
        summary="The CEC 15-minute reliability interval data of a half-year per port, as CSV",
        query=("half", "station_id"),
        responses=CSV_DOWNLOAD,
    )
