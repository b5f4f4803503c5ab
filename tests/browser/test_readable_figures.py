"""Human results and readable figures in a real browser against a real hub.

"Bay 1: reset accepted" after a real reset of a simulated charger, Scheduled explained,
names (not ids) and the data sent in the audit log, who acknowledged an alert by name,
outage minutes with one decimal under ten, power in kW, timeline rows with the connector's
number and a colour legend, and the month tables fitting a 375 px phone.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from playwright.async_api import expect

from hub.const import EVENT_OUTAGE
from hub.registry import entity_registry
from hub.security import recent_audit
from integrations.alerts import alert_manager
from integrations.ocpp.simulator import SimulatedChargePoint
from tests.browser.conftest import (
    ADMIN,
    OPERATOR,
    PHONE,
    Dashboard,
    DashboardFactory,
    NewPage,
    login,
    no_overflow,
    screenshot_path,
    to_docs,
)
from tests.integrations.ocpp.conftest import Connect, meter_values, plain_ocpp, ws_url

NAMED_OCPP = plain_ocpp(
    """
    unknown_chargers: accept
    authorize_unknown_id_tags: true
    chargers:
      - {id: SIM-1, name: Bay 1, site: Depot}
      - {id: CP-2, name: Bay 2, site: Depot}
    """
)
MIN = 60.0
# 4.5 minutes down, and the seconds since the port faulted: one decimal, not "5 min".
ONE_DECIMAL = re.compile(r"^4\.[5-9] min$")


async def _booted_again(sim: SimulatedChargePoint, boots: int) -> None:
    """Return once the simulator booted again after its boots-th boot (10 s at most)."""
    for _ in range(500):
        if sim.boot_count > boots and sim.booted.is_set():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the simulator did not boot again")


async def test_reset_of_a_simulated_charger_reads_bay_1_reset_accepted(
    start_dashboard: DashboardFactory, new_page: NewPage
) -> None:
    dashboard = await start_dashboard(NAMED_OCPP, users=("operator", "admin"))
    hub = dashboard.hub
    base = ws_url(hub, "SIM-1").rsplit("/", 1)[0]
    async with SimulatedChargePoint("SIM-1", base, connectors=2, speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        await hub.block_till_done()
        station = dashboard.device("SIM-1")
        port1 = dashboard.device("SIM-1:1")

        for viewport in (None, PHONE):
            page = await new_page(viewport)
            await login(page, dashboard.url, *OPERATOR)
            await page.goto(f"{dashboard.url}/#/chargers/{station}")
            await expect(page.locator("h1")).to_contain_text("Bay 1")
            boots = sim.boot_count
            await page.locator("[data-action='reset-soft']").click()
            await page.locator("dialog.confirm-dialog [data-confirm]").click()
            notice = page.locator(".notice").last
            await expect(notice).to_have_text("Bay 1: reset accepted")
            await expect(notice).not_to_contain_text(station)  # no device id, no JSON
            await expect(notice).not_to_contain_text("{")
            await no_overflow(page, "the station page with its notice")
            # The simulator reboots: wait until it went and came back before the next round
            # (at speed 50 it is back within a poll: watching it go would miss it).
            await _booted_again(sim, boots)
            await asyncio.sleep(0.3)

        # A port busy charging is locked once its session ends: "Scheduled", explained.
        await hub.services.call(
            "charger", "start_charging", {"id_tag": "TAG-7"}, target={"device_id": port1}
        )
        for _ in range(100):
            state = hub.states.get(_status_entity(dashboard, port1))
            if state is not None and state.state == "Charging":
                break
            await asyncio.sleep(0.1)
        page = await new_page()
        await login(page, dashboard.url, *OPERATOR)
        await page.goto(f"{dashboard.url}/#/chargers/{station}")
        await page.locator(f"[data-port-device='{port1}'] [data-action='lock-port']").click()
        await page.locator("dialog.confirm-dialog [data-confirm]").click()
        notice = page.locator(".notice").last
        await expect(notice).to_contain_text("lock scheduled: the port goes out of service")
        await expect(notice).to_contain_text("when its current session ends")
        await expect(notice).to_contain_text("Bay 1")
        await page.screenshot(path=screenshot_path("station-human-result"))

        # A current limit: the audit log names Bay 1 and keeps what was sent.
        await page.get_by_label("Current limit (A)").fill("16")
        await page.locator("[data-action='current-limit']").click()
        await page.locator("dialog.confirm-dialog [data-confirm]").click()
        await expect(page.locator(".notice").last).to_contain_text("Bay 1: current limit 16 A")

    admin = await new_page()
    await login(admin, dashboard.url, *ADMIN)
    await admin.goto(f"{dashboard.url}/#/audit")
    reset = admin.locator("tr[data-action='charger.reset']").first
    await expect(reset.locator("[data-target]")).to_have_text("Bay 1")
    await expect(reset.locator("[data-sent]")).to_contain_text("type")
    await expect(reset.locator("[data-sent]")).to_contain_text("soft")
    limit = admin.locator("tr[data-action='charger.set_current_limit']").first
    await expect(limit.locator("[data-target]")).to_have_text("Bay 1")
    await expect(limit.locator("[data-sent]")).to_contain_text("limit (A)")
    await expect(limit.locator("[data-sent]")).to_contain_text("16")
    await expect(admin.locator("main")).not_to_contain_text(f"device_id={station}")
    shot = screenshot_path("audit-names")
    await admin.screenshot(path=shot, full_page=True)
    await to_docs(shot, "audit-names.png")
    # The API keeps the ids and the data sent beside the name.
    answer = await admin.request.get(f"{dashboard.url}/api/audit?limit=50")
    entries = await answer.json()
    resets = [e for e in entries if e["action"] == "charger.reset"]
    assert resets
    assert resets[0]["target"] == "Bay 1"
    assert resets[0]["data"] == {"device_id": station, "type": "soft"}
    [limit_entry] = [e for e in entries if e["action"] == "charger.set_current_limit"]
    assert limit_entry["data"] == {"device_id": station, "limit": 16}


def _status_entity(dashboard: Dashboard, port_id: str) -> str:
    for entry in entity_registry(dashboard.hub).entities_for_device(port_id):
        if entry.entity_id.endswith("_status"):
            return entry.entity_id
    raise AssertionError(f"no status entity for {port_id}")


async def test_alert_acknowledged_by_name_and_outages_power_timeline_readable(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(NAMED_OCPP, users=("operator",))
    hub = dashboard.hub
    cp = await dashboard.boot(connect, "CP-2")
    station, port = dashboard.device("CP-2"), dashboard.device("CP-2:1")

    # A 4.5 minute outage half an hour ago: "4.5 min", not "5 min" (nor "4.50").
    now = datetime.now(UTC).timestamp()
    hub.bus.fire(
        EVENT_OUTAGE,
        {
            "outage_id": "short-one",
            "port_id": port,
            "station_id": station,
            "start": now - 30 * MIN,
            "end": now - 25.5 * MIN,
            "cause": "faulted",
        },
    )
    # 500 W: shown as 0.50 kW, as every power on the page.
    await meter_values(cp, 500)
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"}
    )
    await hub.block_till_done()
    [alert] = [a for a in alert_manager(hub).open() if a.key.startswith("fault:")]

    for viewport in (None, PHONE):
        page = await new_page(viewport)
        await login(page, dashboard.url, *OPERATOR)
        await page.goto(f"{dashboard.url}/#/chargers/{station}")
        card = page.locator(f"[data-port-device='{port}']")
        await expect(card.locator("[data-live='power']")).to_have_text("0.50 kW")
        # (the fault just now adds its few seconds)
        await expect(card.locator("[data-outage]")).to_have_text(ONE_DECIMAL)
        await expect(card.locator(".connector-no")).to_have_text("1")
        row = page.locator(".timeline-row[data-timeline-port='1']")
        await expect(row.locator("[data-connector='1']")).to_have_text("1")
        await expect(row.locator(".seg.bad[data-state='Faulted']").first).to_be_visible()
        legend = page.locator("[data-legend] li")
        await expect(legend).to_have_count(6)
        await expect(page.locator("[data-legend]")).to_contain_text("faulted")
        await expect(page.locator("[data-legend]")).to_contain_text("excluded from uptime")
        # The power chart is in kW.
        unit = await page.evaluate(
            "document.querySelector(\"ev-chart[label='Power per port']\").config"
            ".options.scales.y.title.text"
        )
        assert unit == "kW"
        await no_overflow(page, "the station page")
        if viewport is None:
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=screenshot_path("station-timeline-legend"), full_page=True)

    # Acknowledged in the page: the alert says by whom, by name (the id stays in the API).
    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await page.goto(f"{dashboard.url}/#/alerts")
    alert_card = page.locator(f".alert[data-alert-id='{alert.id}']")
    await alert_card.locator("[data-action='acknowledge']").click()
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    await page.locator("[data-tab='acknowledged']").click()
    by = alert_card.locator("[data-acknowledged-by]")
    await expect(by).to_contain_text(f"by {OPERATOR[0]}")
    user_id = alert_manager(hub).get(alert.id).acknowledged_by
    assert user_id is not None
    assert user_id != OPERATOR[0]
    await expect(by).not_to_contain_text(user_id)
    answer = await page.request.get(f"{dashboard.url}/api/alerts?status=acknowledged")
    [listed] = [a for a in await answer.json() if a["id"] == alert.id]
    assert (listed["acknowledged_by"], listed["acknowledged_by_name"]) == (user_id, OPERATOR[0])
    # Its audit entry names the alert by its title, not its id.
    [ack] = [e for e in recent_audit(hub) if e["action"] == "alert.acknowledge"]
    assert ack["target"] == alert.title
    assert ack["data"] == {"alert": alert.id}

    # The reports: outage minutes with one decimal; the month tables fit a 375 px phone.
    for viewport in (None, PHONE):
        page = await new_page(viewport)
        await login(page, dashboard.url, *OPERATOR)
        await page.goto(f"{dashboard.url}/#/reports")
        month = page.locator("table[data-table='month-uptime']")
        await expect(month.locator(f"tr[data-port-id='{port}'] [data-outage]")).to_have_text(
            ONE_DECIMAL
        )
        year = page.locator("table[data-table='year-uptime']")
        await expect(year).to_be_visible()
        await no_overflow(page, "the reports page")
        for table in (month, year):
            box = await table.bounding_box()
            assert box is not None
            width = (viewport or {"width": 1280})["width"]
            assert box["x"] >= 0, box
            assert box["x"] + box["width"] <= width, (box, width)
            inner = await table.evaluate("t => t.scrollWidth - t.clientWidth")
            assert inner <= 0, f"a month table scrolls sideways by {inner}px"
        if viewport is PHONE:
            # One card per port: the months in a grid under the port's name.
            cells = year.locator("tbody tr").first.locator("td")
            await expect(cells).to_have_count(13)
            first, last = await cells.nth(1).bounding_box(), await cells.nth(12).bounding_box()
            assert first is not None
            assert last is not None
            assert last["y"] > first["y"]
            # The month tables as cards, as the README shows them.
            await page.evaluate(
                "document.querySelector(\"[data-table='month-uptime']\").scrollIntoView();"
                " window.scrollBy(0, -64)"
            )
            shot = screenshot_path("reports-phone")
            await page.screenshot(path=shot)
            await to_docs(shot, "reports-phone.png")
