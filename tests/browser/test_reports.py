"""Reports, overview and station pages on the real monitoring API, in a real browser."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import expect

from hub.const import EVENT_OUTAGE
from tests.browser.conftest import (
    ADMIN,
    VIEWER,
    DashboardFactory,
    NewPage,
    login,
    screenshot_path,
    to_docs,
)
from tests.integrations.ocpp.conftest import Connect, plain_ocpp

SITE_OCPP = plain_ocpp(
    """
    unknown_chargers: accept
    id_tags: [TAG-1]
    chargers:
      - {id: CP-1, name: Bay 1, site: Depot North}
      - {id: CP-2, name: Bay 2}
    """
)
MIN = 60.0


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


async def test_reports_show_per_port_uptime_usage_and_download_the_csv(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(SITE_OCPP)
    hub = dashboard.hub
    await dashboard.add_user(*VIEWER, "viewer")
    cp = await dashboard.boot(connect, "CP-1", 2)
    station, p1, p2 = (
        dashboard.device("CP-1"),
        dashboard.device("CP-1:1"),
        dashboard.device("CP-1:2"),
    )

    # Last January: port 1 was down 4,464 min from the 11th, 1,440 of them excluded (a
    # utility power cut). The outage is the first the hub knows of port 1, so it is in
    # service from 11 January 00:00: W = 21 days = 30,240 min, (30,240 - (4,464 - 1,440)) /
    # 30,240 = 90 %. Port 2, first seen today, was not in service then: no figure. The
    # outage is recorded as the uptime engine records one; the exclusion goes through its
    # service.
    year = datetime.now(UTC).year - 1
    down = datetime(year, 1, 11, tzinfo=UTC).timestamp()
    hub.bus.fire(
        EVENT_OUTAGE,
        {
            "outage_id": "last-january",
            "port_id": p1,
            "station_id": station,
            "start": down,
            "end": down + 4464 * MIN,
            "cause": "faulted",
        },
    )
    await hub.services.call(
        "uptime",
        "add_exclusion",
        {"device_id": p1, "start": down, "end": down + 1440 * MIN, "reason": "utility_power"},
    )
    # A 5 kWh session that ended a minute ago.
    now = datetime.now(UTC).timestamp()
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 2, "idTag": "TAG-1", "meterStart": 0, "timestamp": utc(now - 3 * MIN)},
    )
    await cp.call(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "meterStop": 5000,
            "timestamp": utc(now - MIN),
            "reason": "Local",
        },
    )
    await hub.block_till_done()

    page = await new_page()
    await login(page, dashboard.url, *VIEWER)
    await page.goto(dashboard.url + "/#/reports")
    month_input = page.get_by_label("Month")
    session_month = datetime.fromtimestamp(now - 3 * MIN, UTC).strftime("%Y-%m")
    await month_input.fill(session_month)
    usage = page.locator("[data-usage-summary]")
    await expect(usage.locator("[data-fact='energy']")).to_have_text("5.00 kWh")
    await expect(usage.locator("[data-fact='sessions']")).to_have_text("1")

    await month_input.fill(f"{year}-01")
    table = page.locator("[data-table='month-uptime']")
    await expect(table.locator(f"tr[data-port-id='{p1}'] [data-uptime]")).to_have_text("90.00 %")
    await expect(table.locator(f"tr[data-port-id='{p1}'] [data-outage]")).to_have_text("4,464 min")
    await expect(table.locator(f"tr[data-port-id='{p1}'] [data-excluded]")).to_have_text(
        "1,440 min"
    )
    await expect(table.locator(f"tr[data-port-id='{p1}']")).to_have_class("below")
    await expect(table.locator(f"tr[data-port-id='{p2}']")).to_have_count(0)
    year_table = page.locator("[data-table='year-uptime']")
    await expect(year_table).to_contain_text("90.0 %")
    await expect(year_table.locator("td[title='not in service']").first).to_have_text("—")
    await expect(page.get_by_role("img", name="Uptime per port")).to_be_visible()
    await page.screenshot(path=screenshot_path("reports-uptime"), full_page=True)

    async with page.expect_download() as info:
        await page.locator("[data-action='csv']").click()
    download = await info.value
    assert download.suggested_filename == f"uptime-{year}-01.csv"
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    rows = list(csv.DictReader(io.StringIO(text)))
    whole = {r["port_id"]: r for r in rows if r["record"] == "port"}
    assert whole[p1]["uptime_percent"] == "90.0000"
    assert (whole[p1]["t_outage_min"], whole[p1]["t_excluded_min"]) == ("4464", "1440")
    assert whole[p1]["window_min"] == "30240"
    assert (whole[p1]["charge_point_id"], whole[p1]["station_name"]) == ("CP-1", "Bay 1")
    assert (whole[p2]["uptime_percent"], whole[p2]["window_min"]) == ("", "0")
    [outage] = [r for r in rows if r["record"] == "outage"]
    assert (outage["outage_id"], outage["duration_min"], outage["excluded_min"]) == (
        "last-january",
        "4464",
        "1440",
    )


async def test_usage_chart_days_are_the_hubs_days(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    """The usage chart labels each bar with the hub's day, in a browser whose time zone is
    another (Los Angeles is 21 hours behind Auckland in January: its day starts on the
    30th/31st there)."""
    dashboard = await start_dashboard(SITE_OCPP, extra="hub:\n  time_zone: Pacific/Auckland\n")
    await dashboard.add_user(*VIEWER, "viewer")
    await dashboard.boot(connect, "CP-1", 1)
    page = await new_page(timezone_id="America/Los_Angeles", locale="en-US")
    await login(page, dashboard.url, *VIEWER)
    assert (
        await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
        == "America/Los_Angeles"
    )
    await page.goto(dashboard.url + "/#/reports")
    await page.locator("[data-usage-summary]").wait_for()
    async with page.expect_response(
        lambda r: "/api/statistics" in r.url and "month=2027-01" in r.url
    ) as answer:
        await page.get_by_label("Month").fill("2027-01")
    statistics = await (await answer.value).json()
    assert statistics["summary"]["time_zone"] == "Pacific/Auckland"
    # The first day starts at midnight in Auckland: 11:00 UTC on the 31st, 03:00 in LA.
    assert statistics["rows"][0]["start"] == "2026-12-31T11:00:00+00:00"
    chart = "document.querySelector(\"ev-chart[label='Usage per day']\")"
    await page.wait_for_function(f"{chart}?.config?.data.labels.includes('Jan 15')")
    labels = await page.evaluate(f"{chart}.config.data.labels")
    assert labels == [f"Jan {day}" for day in range(1, 32)]


async def test_reports_open_on_the_hubs_month(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    """At 05:00 UTC on 1 January it is still December in Los Angeles (the browser) but
    already January in Auckland (the hub): the reports open on the hub's month."""
    dashboard = await start_dashboard(SITE_OCPP, extra="hub:\n  time_zone: Pacific/Auckland\n")
    await dashboard.add_user(*VIEWER, "viewer")
    await dashboard.boot(connect, "CP-1", 1)
    page = await new_page(timezone_id="America/Los_Angeles", locale="en-US")
    await page.clock.set_fixed_time(datetime(2027, 1, 1, 5, 0, tzinfo=UTC))
    await login(page, dashboard.url, *VIEWER)
    assert await page.evaluate("new Date().getMonth()") == 11  # December, in the browser
    async with page.expect_response(
        lambda r: "/api/statistics" in r.url and "month=2027-01" in r.url
    ):
        await page.goto(dashboard.url + "/#/reports")
    await expect(page.get_by_label("Month")).to_have_value("2027-01")
    await expect(page.get_by_role("heading", name="Usage, Jan 2027")).to_be_visible()


async def test_overview_shows_fleet_uptime_worst_ports_and_sites(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(SITE_OCPP)
    await dashboard.add_user(*ADMIN, "admin")
    cp = await dashboard.boot(connect, "CP-1", 2)
    await dashboard.boot(connect, "CP-2", 1)
    faulted = dashboard.device("CP-1:1")
    await cp.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"},
    )
    await dashboard.hub.block_till_done()

    page = await new_page()
    async with page.expect_response(lambda r: r.url.endswith("/api/uptime")) as answer:
        await login(page, dashboard.url, *ADMIN)
    report = await (await answer.value).json()
    # The fleet is the mean of its three ports; the faulted one has been down since the fault.
    ports = {p["port_id"]: p for p in report["ports"]}
    assert len(ports) == 3
    assert ports[faulted]["outages"] == 1
    assert ports[faulted]["outage_minutes"] > 0
    mean = sum(p["uptime_pct"] for p in ports.values()) / 3
    assert abs(report["fleet_uptime_pct"] - mean) < 0.001
    tile = page.locator("[data-count='uptime'] .tile-value")
    await expect(tile).to_have_text(f"{report['fleet_uptime_pct']:.2f} %")
    worst = page.locator("tr[data-port-id]").first
    await expect(worst).to_have_attribute("data-port-id", faulted)
    await expect(page.locator("[data-site='Depot North']")).to_contain_text("1 charger")
    await expect(page.locator("[data-site='No site']")).to_contain_text("1 charger")


async def test_station_page_lists_recorded_sessions(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(SITE_OCPP)
    await dashboard.add_user(*VIEWER, "viewer")
    cp = await dashboard.boot(connect, "CP-2", 1)
    now = datetime.now(UTC).timestamp()
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": utc(now - 30 * MIN)},
    )
    page = await new_page()
    await login(page, dashboard.url, *VIEWER)
    await page.goto(f"{dashboard.url}/#/chargers/{dashboard.device('CP-2')}")
    row = page.locator(f"[data-table='sessions'] tr[data-transaction='{started['transactionId']}']")
    await expect(row).to_contain_text("in progress")
    await expect(row).to_contain_text("TAG-1")
    # Stopping it on the charger updates the page live (charger events reload the list).
    await cp.call(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "meterStop": 13_500,
            "timestamp": utc(now),
            "reason": "EVDisconnected",
        },
    )
    await expect(row).to_contain_text("30 min")
    await expect(row).to_contain_text("12.50 kWh")
    await expect(row).to_contain_text("EVDisconnected")


async def test_station_page_shows_one_session_in_progress_per_port(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    """A charger that lost a session (a power cut: no StopTransaction ever comes) and starts
    another on the same connector: the first one is over, and the page says so; only the
    new one is in progress."""
    dashboard = await start_dashboard(SITE_OCPP)
    await dashboard.add_user(*VIEWER, "viewer")
    cp = await dashboard.boot(connect, "CP-2", 1)
    now = datetime.now(UTC).timestamp()
    lost = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": utc(now - 60 * MIN)},
    )
    await cp.close()
    cp = await dashboard.boot(connect, "CP-2", 1)  # back after the power cut
    current = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 9000, "timestamp": utc(now - 10 * MIN)},
    )
    assert current["transactionId"] != lost["transactionId"]
    await dashboard.hub.block_till_done()

    page = await new_page()
    await login(page, dashboard.url, *VIEWER)
    async with page.expect_response(lambda r: "/api/sessions" in r.url) as answer:
        await page.goto(f"{dashboard.url}/#/chargers/{dashboard.device('CP-2')}")
    sessions = {s["transaction_id"]: s for s in await (await answer.value).json()}
    assert set(sessions) == {str(lost["transactionId"]), str(current["transactionId"])}
    old, new = sessions[str(lost["transactionId"])], sessions[str(current["transactionId"])]
    assert new["stopped_at"] is None
    # Over when the next one began, at the latest.
    assert old["stopped_at"] is not None
    assert datetime.fromisoformat(old["stopped_at"]).timestamp() <= now - 10 * MIN
    table = page.locator("[data-table='sessions']")
    running = table.locator(f"tr[data-transaction='{current['transactionId']}']")
    await expect(running).to_contain_text("in progress")
    await expect(table.locator("tr", has_text="in progress")).to_have_count(1)


SIMULATED = """
simulator:
  speed: 5
  stations:
    - {id: SIM-0001, version: "1.6", scenario: normal}
    - {id: SIM-0002, version: "2.0.1", scenario: normal}
    - {id: SIM-0003, version: "1.6", scenario: "normal,fault"}
"""
SIM_OCPP = plain_ocpp(
    """
    unknown_chargers: accept
    authorize_unknown_id_tags: true
    chargers:
      - {id: SIM-0001, name: Bay 1, site: Example depot}
      - {id: SIM-0002, name: Bay 2, site: Example depot}
      - {id: SIM-0003, name: Bay 3, site: Example depot}
    """
)


async def test_overview_with_simulated_chargers(
    start_dashboard: DashboardFactory, new_page: NewPage
) -> None:
    """The overview with live simulated chargers; the README's screenshot comes from here."""
    dashboard = await start_dashboard(SIM_OCPP, extra=SIMULATED)
    await dashboard.add_user(*ADMIN, "admin")
    page = await new_page()
    await login(page, dashboard.url, *ADMIN)
    online = page.locator("[data-count='online'] .tile-value")
    await expect(online).not_to_have_text("0", timeout=20_000)
    await expect(page.locator("[data-count='alerts'] .tile-value")).not_to_have_text(
        "0", timeout=20_000
    )
    await expect(page.locator("[data-count='uptime'] .tile-value")).to_have_text(
        re.compile(r"^\d+\.\d\d %$"), timeout=20_000
    )
    await expect(page.locator("[data-site='Example depot']")).to_contain_text("3 chargers")
    await expect(page.locator("tr[data-port-id]")).to_have_count(6, timeout=20_000)
    shot = screenshot_path("overview-simulated")
    await page.screenshot(path=shot)
    await to_docs(shot, "dashboard.png")
