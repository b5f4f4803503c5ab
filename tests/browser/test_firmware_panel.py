"""The Firmware page (integrations/firmware/panels/firmware.js) in a real browser, against a
real hub with simulated OCPP chargers and a raw charge point below its model's minimum."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from hub.testing import Connect
from integrations.ocpp.simulator import SimulatedChargePoint
from tests.browser.conftest import (
    ADMIN,
    VIEWER,
    DashboardFactory,
    NewPage,
    login,
    screenshot_path,
)
from tests.integrations.ocpp.conftest import ws_url

FIRMWARE = """
firmware:
  batch_size: 1
  minimum_versions:
    - {vendor: ACME, model: DC50, version: "2.4.1"}
"""
LOCATION = "https://firmware.example/evhub-1.0.1.bin"


async def test_inventory_flags_and_a_campaign_by_role(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(extra=FIRMWARE)
    hub = dashboard.hub
    await dashboard.add_user(*ADMIN, "admin")
    await dashboard.add_user(*VIEWER, "viewer")
    acme = await connect(ws_url(hub, "ACME-1"))
    answer = await acme.call(
        "BootNotification",
        {"chargePointVendor": "ACME", "chargePointModel": "DC50", "firmwareVersion": "2.3.9"},
    )
    assert answer["status"] == "Accepted"
    base = ws_url(hub, "SIM-1").rsplit("/", 1)[0]
    async with (
        SimulatedChargePoint("SIM-1", base, speed=50) as one,
        SimulatedChargePoint("SIM-2", base, version="2.0.1", speed=50) as two,
    ):
        await asyncio.wait_for(asyncio.gather(one.booted.wait(), two.booted.wait()), 10)

        # A viewer reads: the flagged station, the models; no actions, no new campaign.
        page = await new_page()
        await login(page, dashboard.url, *VIEWER)
        await page.goto(f"{dashboard.url}/#/panel/firmware/firmware")
        flagged = page.locator("[data-part=flagged] tr[data-flagged]")
        await expect(flagged).to_have_count(1)
        await expect(flagged).to_contain_text("2.3.9")
        await expect(flagged).to_contain_text("2.4.1")
        await expect(page.locator("tr[data-model='evhub/Simulator']")).to_contain_text("1.0.0 (2)")
        await expect(page.locator("[data-part=start]")).to_have_count(0)

        # An admin starts a campaign for every evhub Simulator and watches it complete.
        admin = await new_page()
        await login(admin, dashboard.url, *ADMIN)
        await admin.goto(f"{dashboard.url}/#/panel/firmware/firmware")
        form = admin.locator("form.firmware-start")
        await form.get_by_label("Name").fill("evhub 1.0.1")
        await form.get_by_label("Firmware URL").fill(LOCATION)
        await form.get_by_label("Target version (optional)").fill("1.0.1")
        await form.locator("select[name=target]").select_option(label="Every evhub Simulator (2)")
        await form.get_by_role("button", name="Start campaign").click()
        card = admin.locator("article.firmware-campaign")
        await expect(card).to_have_count(1)
        state = card.locator("[data-campaign-state]")
        await expect(state).to_have_text("completed", timeout=15_000)
        await expect(card).to_contain_text("100%")
        await expect(card).to_contain_text("2 done")
        await expect(card).to_contain_text("1 at a time")
        await admin.screenshot(path=str(screenshot_path("firmware-panel")), full_page=True)
        assert (one.firmware_version, two.firmware_version) == ("1.0.1", "1.0.1")

        # The viewer sees the campaign too, without its buttons.
        await page.reload()
        viewer_card = page.locator("article.firmware-campaign")
        await expect(viewer_card.locator("[data-campaign-state]")).to_have_text("completed")
        await expect(viewer_card.locator("button")).to_have_count(0)
