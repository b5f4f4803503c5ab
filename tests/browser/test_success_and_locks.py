"""Charge success beside the uptime figures, in a real browser."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.async_api import expect

from tests.browser.conftest import (
    PHONE,
    VIEWER,
    DashboardFactory,
    NewPage,
    login,
    screenshot_path,
)
from tests.browser.test_reports import MIN, SITE_OCPP, boot, device, utc
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
    cp = await boot(dashboard, connect, "CP-1", 1)
    station = device(dashboard, "CP-1")

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
