"""Chargers from the page in Chromium, at desktop size and on a 375 px phone, against a real
hub and real OCPP chargers: the pending list with what each charger said at boot, approval
with a name and a site, renaming and re-siting a station, and a rejection that sticks."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from playwright.async_api import expect

from hub.registry import DeviceKind, device_registry
from hub.security import recent_audit
from tests.browser.conftest import (
    OPERATOR,
    PHONE,
    Dashboard,
    DashboardFactory,
    NewPage,
    login,
    nav,
    no_overflow,
    screenshot_path,
    to_docs,
)
from tests.integrations.ocpp.conftest import Connect, RawChargePoint, plain_ocpp, ws_url

PENDING_OCPP = plain_ocpp(
    """
    unknown_chargers: pending
    chargers:
      - {id: BAY-1, name: Bay 1, site: Example depot}
    """
)


async def pending_charger(
    dashboard: Dashboard, connect: Connect, cp_id: str, vendor: str, model: str, serial: str
) -> RawChargePoint:
    cp = await connect(ws_url(dashboard.hub, cp_id))
    boot = {"chargePointVendor": vendor, "chargePointModel": model}
    if serial:
        boot["chargePointSerialNumber"] = serial
    assert (await cp.call("BootNotification", boot))["status"] == "Pending"
    return cp


def station(dashboard: Dashboard, cp_id: str):  # type: ignore[no-untyped-def]
    found = device_registry(dashboard.hub).get_by_identifier(("ocpp", cp_id))
    assert found is not None
    return found


def site_of(dashboard: Dashboard, cp_id: str) -> str | None:
    devices = device_registry(dashboard.hub)
    entry = station(dashboard, cp_id)
    parent = devices.get(entry.via_device_id) if entry.via_device_id else None
    return parent.name if parent is not None and parent.kind is DeviceKind.SITE else None


@pytest.fixture
async def pending_dashboard(start_dashboard: DashboardFactory) -> Dashboard:
    return await start_dashboard(PENDING_OCPP, users=("operator",))


async def test_approve_with_a_name_and_a_site_then_rename(
    pending_dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    dashboard = pending_dashboard
    cp = await pending_charger(dashboard, connect, "CP-NEW", "ACME", "AC22", "SN-0042")
    await pending_charger(dashboard, connect, "CP-OLD", "Volta", "DC150", "")

    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Pending chargers")
    row = page.locator("tr[data-charge-point-id='CP-NEW']")
    await expect(row.locator("[data-vendor-model]")).to_have_text("ACME AC22")
    await expect(row.locator("[data-serial]")).to_have_text("SN-0042")
    await expect(row).to_contain_text("127.0.0.1")
    await expect(page.locator("tr[data-charge-point-id='CP-OLD'] [data-serial]")).to_have_text("—")
    shot = screenshot_path("pending-desktop")
    await page.screenshot(path=shot, full_page=True)
    await to_docs(shot, "pending-chargers.png")

    cp.handlers["TriggerMessage"] = lambda payload: {"status": "Accepted"}
    await row.locator("[data-action='approve']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await expect(dialog).to_contain_text("Admit CP-NEW?")
    await dialog.get_by_label("Name").fill("Bay 7")
    # The sites the hub knows are offered; a new one may be typed.
    await expect(dialog.locator("datalist option[value='Example depot']")).to_have_count(1)
    await dialog.get_by_label("Site").fill("North depot")
    await page.screenshot(path=screenshot_path("approve-dialog-desktop"))
    await dialog.locator("[data-confirm]").click()
    await expect(row).to_have_count(0)
    await expect(page.locator(".notice", has_text="Approved CP-NEW as Bay 7")).to_be_visible()
    assert station(dashboard, "CP-NEW").name == "Bay 7"
    assert site_of(dashboard, "CP-NEW") == "North depot"
    boot = {"chargePointVendor": "ACME", "chargePointModel": "AC22"}
    assert (await cp.call("BootNotification", boot))["status"] == "Accepted"

    # The chargers page shows it by its name and site; an operator renames and re-sites it.
    await nav(page, "Chargers")
    charger = page.locator("tr[data-charge-point-id='CP-NEW']")
    await expect(charger.get_by_role("link", name="Bay 7")).to_be_visible()
    await expect(charger.locator("[data-site]")).to_have_text("Site: North depot")
    await charger.locator("[data-action='edit']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await expect(dialog.get_by_label("Name")).to_have_value("Bay 7")
    await expect(dialog.get_by_label("Site")).to_have_value("North depot")
    await dialog.get_by_label("Name").fill("Bay 7 (left)")
    await dialog.get_by_label("Site").fill("Example depot")
    await dialog.locator("[data-confirm]").click()
    await expect(charger.get_by_role("link", name="Bay 7 (left)")).to_be_visible()
    await expect(charger.locator("[data-site]")).to_have_text("Site: Example depot")
    assert station(dashboard, "CP-NEW").name == "Bay 7 (left)"
    assert site_of(dashboard, "CP-NEW") == "Example depot"
    # The emptied site the page made is gone; the configured one holds both stations.
    sites = [d.name for d in device_registry(dashboard.hub).devices(kind=DeviceKind.SITE)]
    assert sites == ["Example depot"]

    # A name cannot be emptied.
    await charger.locator("[data-action='edit']").click()
    await dialog.get_by_label("Name").fill("")
    await dialog.locator("[data-confirm]").click()
    await expect(page.locator(".notice.error", has_text="A charger needs a name.")).to_be_visible()
    assert station(dashboard, "CP-NEW").name == "Bay 7 (left)"

    targets = [
        e["target"]
        for e in reversed(recent_audit(dashboard.hub, 200))
        if e["action"] == "device.update"
    ]
    assert targets == [
        "CP-NEW: name 'Bay 7', site 'North depot'",
        "Bay 7: name 'Bay 7 (left)', site 'Example depot'",
    ]


async def test_a_rejected_charger_leaves_the_list(
    pending_dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    dashboard = pending_dashboard
    await pending_charger(dashboard, connect, "ROGUE-1", "Nobody", "X1", "000")
    page = await new_page(PHONE)
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Pending chargers")
    row = page.locator("tr[data-charge-point-id='ROGUE-1']")
    await expect(row.locator("[data-vendor-model]")).to_have_text("Nobody X1")
    await no_overflow(page, "The pending list")
    await page.screenshot(path=screenshot_path("pending-phone"), full_page=True)
    await row.locator("[data-action='reject']").click()
    await expect(page.locator("dialog.confirm-dialog")).to_contain_text(
        "Refuse ROGUE-1 now and whenever it comes back?"
    )
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    await expect(row).to_have_count(0)
    await expect(page.locator(".notice", has_text="Rejected ROGUE-1")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("No charger is waiting for approval.")
    # It comes back: refused, and the list stays empty (the page is still open).
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(ws_url(dashboard.hub, "ROGUE-1"))
    assert refused.value.status == 403
    await asyncio.sleep(1.5)  # the page reloads the list on the security event this makes
    await expect(page.locator("tr[data-charge-point-id='ROGUE-1']")).to_have_count(0)
    # And the chargers page does not list it either.
    await nav(page, "Chargers")
    await expect(page.locator("tr[data-charge-point-id='BAY-1']")).to_have_count(1)
    await expect(page.locator("tr[data-charge-point-id='ROGUE-1']")).to_have_count(0)
    await no_overflow(page, "The chargers page")


async def test_approve_and_rename_on_a_phone(
    pending_dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    dashboard = pending_dashboard
    cp = await pending_charger(dashboard, connect, "CP-PHONE", "ACME", "AC11", "SN-7")
    cp.handlers["TriggerMessage"] = lambda payload: {"status": "Accepted"}
    page = await new_page(PHONE)
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Pending chargers")
    row = page.locator("tr[data-charge-point-id='CP-PHONE']")
    await row.locator("[data-action='approve']").click()
    dialog = page.locator("dialog.confirm-dialog")
    box = await dialog.bounding_box()
    assert box is not None
    assert box["width"] <= PHONE["width"]
    # No name: it keeps its charge point id; a site only.
    await dialog.get_by_label("Site").fill("Garage")
    await dialog.locator("[data-confirm]").click()
    await expect(row).to_have_count(0)
    assert station(dashboard, "CP-PHONE").name == "CP-PHONE"
    assert site_of(dashboard, "CP-PHONE") == "Garage"

    await nav(page, "Chargers")
    charger = page.locator("tr[data-charge-point-id='CP-PHONE']")
    await charger.locator("[data-action='edit']").click()
    await dialog.get_by_label("Name").fill("Garage wallbox")
    await dialog.get_by_label("Site").fill("")
    await dialog.locator("[data-confirm]").click()
    await expect(charger.get_by_role("link", name="Garage wallbox")).to_be_visible()
    await expect(charger.locator("[data-site]")).to_have_count(0)
    assert site_of(dashboard, "CP-PHONE") is None
    await no_overflow(page, "The chargers page")
    await page.screenshot(path=screenshot_path("chargers-phone"), full_page=True)
