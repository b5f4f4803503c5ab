"""Charge success beside the uptime figures, and locks that say why, in a real browser."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from playwright.async_api import expect

from hub.const import ATTR_SERVICE_DATA, EVENT_CALL_SERVICE
from hub.core import Event
from tests.browser.conftest import (
    OPERATOR,
    PHONE,
    VIEWER,
    DashboardFactory,
    NewPage,
    login,
    screenshot_path,
)
from tests.browser.test_reports import MIN, SITE_OCPP, utc
from tests.integrations.ocpp.conftest import Connect

# A session judged at once (no fault window to wait out).
SUCCESS = """
charge_success:
  fault_window_seconds: 0
"""


async def test_charge_success_on_the_overview_and_the_station_page(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(SITE_OCPP, extra=SUCCESS)
    await dashboard.add_user(*VIEWER, "viewer")
    cp = await dashboard.boot(connect, "CP-1", 1)
    station = dashboard.device("CP-1")

    # No attempts yet: a dash, never NaN.
    page = await new_page()
    await login(page, dashboard.url, *VIEWER)
    tile = page.locator("[data-count='charge-success']")
    await expect(tile.locator(".tile-value")).to_have_text("—")
    await expect(tile).to_have_attribute("href", "#/success")
    await expect(tile.locator("[data-count='charge-attempts']")).to_have_text("no judged attempts")
    await expect(page.locator("[data-count='uptime']")).to_be_visible()
    await page.goto(f"{dashboard.url}/#/chargers/{station}")
    await expect(page.locator("[data-success-rate]")).to_have_text("—")
    await expect(page.locator("[data-success-attempts]")).to_have_text("0")
    assert "NaN" not in await page.locator("main").inner_text()

    # One 5 kWh session stopped at the car (a success), then a plug-in that never started a
    # session (a failed attempt): 1 of 2.
    now = datetime.now(UTC).timestamp()
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": utc(now - 20 * MIN)},
    )
    await cp.call(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "meterStop": 5000,
            "timestamp": utc(now - 5 * MIN),
            "reason": "Local",
        },
    )
    for status in ("Preparing", "Available"):
        await cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status}
        )
    await dashboard.hub.block_till_done()

    await page.goto(f"{dashboard.url}/#/")
    await expect(tile.locator(".tile-value")).to_have_text("50.0 %")
    await expect(tile.locator("[data-count='charge-attempts']")).to_have_text("1 of 2 attempts")
    await tile.click()
    await expect(page.get_by_role("heading", name="Charge success")).to_be_visible()

    await page.goto(f"{dashboard.url}/#/chargers/{station}")
    await expect(page.locator("[data-success-rate]")).to_have_text("50.0 % (1 of 2)")
    await expect(page.locator("[data-success-attempts]")).to_have_text("2")
    await page.locator("[data-success-rate] a").click()
    await expect(page.get_by_role("heading", name="Charge success")).to_be_visible()

    # Both pages still fit a phone with the new figures.
    phone = await new_page(PHONE)
    await login(phone, dashboard.url, *VIEWER)
    for name, route, figure in (
        ("overview", "#/", "[data-count='charge-success']"),
        ("station", f"#/chargers/{station}", "[data-success-rate]"),
        ("success", "#/success", "[data-count='success-rate']"),
    ):
        await phone.goto(f"{dashboard.url}/{route}")
        await expect(phone.locator("main h1").first).to_be_visible()
        await expect(phone.locator("main .loading")).to_have_count(0)
        await expect(phone.locator(figure)).to_contain_text("50.0 %")
        await phone.screenshot(path=screenshot_path(f"success-{name}-phone"), full_page=True)
        overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a 375px phone"


async def test_lock_asks_for_the_reason_and_sends_it(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(SITE_OCPP)
    await dashboard.add_user(*OPERATOR, "operator")
    cp = await dashboard.boot(connect, "CP-1", 1)
    station = dashboard.device("CP-1")
    calls: list[dict[str, Any]] = []
    exclusions: list[dict[str, Any]] = []

    def on_call(event: Event) -> None:
        if event.data.get("service") == "set_availability":
            calls.append(dict(event.data.get(ATTR_SERVICE_DATA) or {}))

    dashboard.hub.bus.listen(EVENT_CALL_SERVICE, on_call)
    dashboard.hub.bus.listen("uptime_exclusion", lambda event: exclusions.append(event.data))

    page = await new_page(PHONE)
    await login(page, dashboard.url, *OPERATOR)
    await page.goto(f"{dashboard.url}/#/chargers/{station}")

    # The station lock: a reason and a note.
    await page.locator("[data-action='lock']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Reason")
    await expect(reason).to_have_value("")  # none by default: counts as downtime
    await expect(reason.locator("option").first).to_have_text("none — counts as downtime")
    await page.screenshot(path=screenshot_path("lock-dialog-phone"))
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the lock dialog is {overflow}px wider than a 375px phone"
    await reason.select_option(label="Scheduled maintenance")
    await dialog.get_by_label("Note (optional)").fill("replacing the cable")
    await dialog.locator("[data-confirm]").click()
    assert await cp.wait_for_call("ChangeAvailability") == {
        "connectorId": 0,
        "type": "Inoperative",
    }
    await expect(page.locator(".notice").first).to_contain_text(": lock accepted")
    await dashboard.hub.block_till_done()
    assert calls == [{"available": False, "reason": "maintenance", "note": "replacing the cable"}]
    assert [e.get("reason") for e in exclusions] == ["maintenance"]
    assert exclusions[0].get("note") == "replacing the cable"

    # A port lock left at none sends neither reason nor note: its time is an outage.
    cp.received.clear()
    await page.locator("[data-action='lock-port']").click()
    await expect(dialog).to_be_visible()
    await dialog.locator("[data-confirm]").click()
    assert await cp.wait_for_call("ChangeAvailability") == {
        "connectorId": 1,
        "type": "Inoperative",
    }
    await dashboard.hub.block_till_done()
    assert calls[1] == {"available": False}

    # Cancelling sends nothing; unlocking still asks a plain confirmation.
    await page.locator("[data-action='lock-port']").click()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    await page.locator("[data-action='unlock']").click()
    await expect(dialog.get_by_label("Reason")).to_have_count(0)
    await dialog.locator("[data-confirm]").click()
    await expect(page.locator(".notice").first).to_be_visible()
    await dashboard.hub.block_till_done()
    assert [c["available"] for c in calls] == [False, False, True]
