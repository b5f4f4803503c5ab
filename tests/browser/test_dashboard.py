"""The dashboard in a real browser against a real hub and a real OCPP charger."""

from __future__ import annotations

import asyncio

from playwright.async_api import Locator, Page, expect

from hub.auth import Role, auth_manager
from hub.core import Event
from hub.http import DATA_HTTP
from hub.http.websocket_api import KEY_SOCKETS
from integrations.alerts import alert_manager
from tests.browser.conftest import (
    ADMIN,
    OPERATOR,
    PHONE,
    VIEWER,
    Dashboard,
    DashboardFactory,
    NewPage,
    login,
    nav,
    screenshot_path,
)
from tests.integrations.ocpp.conftest import (
    Connect,
    RawChargePoint,
    meter_values,
    plain_ocpp,
    ws_url,
)

PENDING_OCPP = plain_ocpp("unknown_chargers: pending\n")

PAGES = [
    ("overview", "#/"),
    ("chargers", "#/chargers"),
    ("alerts", "#/alerts"),
    ("reports", "#/reports"),
    ("success", "#/success"),
    ("automations", "#/automations"),
    ("pending", "#/pending"),
    ("security", "#/security"),
    ("audit", "#/audit"),
    ("notifications", "#/notifications"),
    ("users", "#/users"),
    ("account", "#/account"),
]


async def boot_charger(
    dashboard: Dashboard, connect: Connect, cp_id: str = "CP-1"
) -> RawChargePoint:
    """Connect an OCPP 1.6 charger that boots with one Available connector."""
    cp = await connect(ws_url(dashboard.hub, cp_id))
    answer = await cp.call(
        "BootNotification",
        {"chargePointVendor": "ACME", "chargePointModel": "DC50", "firmwareVersion": "1.2.3"},
    )
    assert answer["status"] == "Accepted"
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    await dashboard.hub.block_till_done()
    return cp


async def fault(cp: RawChargePoint) -> None:
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"}
    )


def port_badge(page: Page, cp_id: str = "CP-1", port: int = 1) -> Locator:
    return page.locator(f'tr[data-charge-point-id="{cp_id}"] [data-port="{port}"] .badge')


async def open_station(page: Page, cp_id: str = "CP-1") -> None:
    await page.locator(f'tr[data-charge-point-id="{cp_id}"] a').first.click()
    await expect(page.get_by_role("heading", name="Connectors")).to_be_visible()


async def test_onboarding_creates_the_admin(dashboard: Dashboard, new_page: NewPage) -> None:
    page = await new_page()
    await page.goto(dashboard.url + "/")
    await expect(page.get_by_role("heading", name="Welcome to evhub")).to_be_visible()
    await page.get_by_label("Username").fill("root-admin")
    await page.get_by_label("Password", exact=True).fill("a-long-password-1")
    await page.get_by_label("Repeat password").fill("a-long-password-1")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator(".topbar .whoami")).to_contain_text("root-admin")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    user = auth_manager(dashboard.hub).find_user("root-admin")
    assert user is not None
    assert user.role is Role.ADMIN
    assert not auth_manager(dashboard.hub).needs_onboarding


async def test_wrong_password_is_refused_on_the_page(
    dashboard: Dashboard, new_page: NewPage
) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    page = await new_page()
    await page.goto(dashboard.url + "/")
    await page.get_by_label("Username").fill(ADMIN[0])
    await page.get_by_label("Password", exact=True).fill("not-the-password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await expect(page.locator(".topbar")).to_have_count(0)


async def test_live_fault_reset_from_the_page_and_its_audit_entry(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    cp = await boot_charger(dashboard, connect)
    page = await new_page()
    await login(page, dashboard.url, *ADMIN)
    await expect(page.locator(".conn")).to_have_attribute("data-connection", "connected")

    await nav(page, "Chargers")
    badge = port_badge(page)
    await expect(badge).to_have_text("Available")

    # Live through subscribe_entities: no reload, within 2 s of the StatusNotification.
    await fault(cp)
    await expect(badge).to_have_text("Faulted", timeout=2_000)

    await open_station(page)
    await expect(page.locator("[data-port='1'] .badge").first).to_have_text("Faulted")
    await expect(page.locator("[data-firmware]")).to_contain_text("1.2.3")
    await page.locator("[data-action='reset-soft']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await expect(dialog).to_be_visible()
    assert cp.received == [] or all(name != "Reset" for name, _ in cp.received)
    await dialog.locator("[data-confirm]").click()
    assert await cp.wait_for_call("Reset") == {"type": "Soft"}
    await expect(page.locator(".notice")).to_contain_text("CP-1: reset accepted")

    await nav(page, "Audit log")
    entry = page.locator("tr[data-action='charger.reset']").first
    await expect(entry).to_be_visible()
    await expect(entry).to_contain_text(ADMIN[0])


async def test_cancelled_confirmation_sends_nothing(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*OPERATOR, "operator")
    cp = await boot_charger(dashboard, connect)
    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Chargers")
    await open_station(page)
    await page.locator("[data-action='reset-hard']").click()
    await page.locator("dialog.confirm-dialog").get_by_role("button", name="Cancel").click()
    await expect(page.locator("dialog.confirm-dialog")).to_have_count(0)
    # Ask for something else; the charger must see it and no Reset before it.
    await page.locator("[data-action='trigger-status']").click()
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    await cp.wait_for_call("TriggerMessage")
    assert "Reset" not in [name for name, _ in cp.received]


async def test_viewer_sees_no_action_buttons(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*VIEWER, "viewer")
    cp = await boot_charger(dashboard, connect)
    await fault(cp)
    page = await new_page()
    await login(page, dashboard.url, *VIEWER)
    await nav(page, "Chargers")
    await open_station(page)
    await expect(page.locator("[data-port='1'] .badge").first).to_have_text("Faulted")
    await expect(page.locator("[data-section='actions']")).to_have_count(0)
    await expect(page.locator("[data-action]")).to_have_count(0)

    await nav(page, "Alerts")
    await expect(page.locator(".alert").first).to_be_visible()
    await expect(page.locator(".alert button")).to_have_count(0)


async def test_operator_acknowledges_and_resolves_an_alert(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*OPERATOR, "operator")
    cp = await boot_charger(dashboard, connect)
    await fault(cp)
    await dashboard.hub.block_till_done()
    # The fault alert (the just-booted port's uptime alerts may be open too: it has been
    # faulted for most of its seconds in service).
    [alert] = [a for a in alert_manager(dashboard.hub).open() if a.key.startswith("fault:")]
    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Alerts")
    card = page.locator(f".alert[data-alert-id='{alert.id}']")
    await card.locator("[data-action='acknowledge']").click()
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    await expect(card).to_have_count(0)  # it left the open tab
    assert alert_manager(dashboard.hub).get(alert.id).state == "acknowledged"

    await page.locator("[data-tab='acknowledged']").click()
    await card.locator("[data-action='resolve']").click()
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    await expect(card).to_have_count(0)
    assert alert_manager(dashboard.hub).get(alert.id).state == "resolved"


async def test_every_page_on_desktop_and_phone(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    cp = await boot_charger(dashboard, connect)
    await fault(cp)
    for size, viewport in (("desktop", None), ("phone", PHONE)):
        page = await new_page(viewport)
        await login(page, dashboard.url, *ADMIN)
        for name, route in PAGES:
            await page.goto(f"{dashboard.url}/{route}")
            await expect(page.locator("main h1").first).to_be_visible()
            await expect(page.locator("main .loading")).to_have_count(0)
            await page.screenshot(path=screenshot_path(f"{name}-{size}"), full_page=True)
            if size == "phone":
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{name} is {overflow}px wider than a 375px phone"
        await page.goto(f"{dashboard.url}/#/chargers")
        await open_station(page)
        await page.screenshot(path=screenshot_path(f"station-{size}"), full_page=True)
        if size == "phone":
            nav = page.locator("#main-nav")
            await expect(nav).not_to_be_in_viewport()
            await page.get_by_role("button", name="Menu").click()
            await expect(nav).to_be_in_viewport()
            await page.screenshot(path=screenshot_path("nav-open-phone"))
            await nav.get_by_role("link", name="Alerts").click()
            await expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
            await expect(nav).not_to_be_in_viewport()


async def test_station_page_shows_live_power_and_energy(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*VIEWER, "viewer")
    cp = await boot_charger(dashboard, connect)
    page = await new_page()
    await login(page, dashboard.url, *VIEWER)
    await nav(page, "Chargers")
    await open_station(page)
    port = page.locator("[data-port-device]").first
    await expect(port.locator("[data-live='power']")).to_have_text("—")
    await meter_values(cp, 7200, 12345)
    await expect(port.locator("[data-live='power']")).to_have_text("7.20 kW")
    await expect(port.locator("[data-live='energy']")).to_have_text("12.35 kWh")


async def test_live_updates_resume_after_the_socket_drops(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    cp = await boot_charger(dashboard, connect)
    page = await new_page()
    await login(page, dashboard.url, *ADMIN)
    conn = page.locator(".conn")
    await expect(conn).to_have_attribute("data-connection", "connected")
    await nav(page, "Chargers")
    await expect(port_badge(page)).to_have_text("Available")

    sockets = dashboard.hub.data[DATA_HTTP].app[KEY_SOCKETS]
    assert sockets, "the page holds no WebSocket to the hub"
    dropped = set(sockets)
    for socket in dropped:
        await socket.close()
    await fault(cp)  # while the page is disconnected
    for _ in range(500):  # the page reconnects after its backoff delay
        if sockets - dropped:
            break
        await asyncio.sleep(0.02)
    assert sockets - dropped, "the page did not reconnect"
    await expect(conn).to_have_attribute("data-connection", "connected")
    # The fresh snapshot after the reconnect brings what was missed.
    await expect(port_badge(page)).to_have_text("Faulted")
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    await expect(port_badge(page)).to_have_text("Available")


async def test_pending_charger_approved_from_the_page(
    start_dashboard: DashboardFactory, new_page: NewPage, connect: Connect
) -> None:
    dashboard = await start_dashboard(PENDING_OCPP)
    await dashboard.add_user(*OPERATOR, "operator")
    cp = await connect(ws_url(dashboard.hub, "CP-NEW"))
    boot = {"chargePointVendor": "ACME", "chargePointModel": "AC22"}
    assert (await cp.call("BootNotification", boot))["status"] == "Pending"
    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Pending chargers")
    row = page.locator("tr[data-charge-point-id='CP-NEW']")
    await row.locator("[data-action='approve']").click()
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    await expect(row).to_have_count(0)
    assert (await cp.call("BootNotification", boot))["status"] == "Accepted"


AUTOMATIONS = """
automations:
  - id: announce
    alias: Announce faults
    description: Fire an event when asked
    triggers:
      - trigger: event
        event_type: never_fired
    actions:
      - event: announced
        event_data: {source: dashboard}
"""


async def test_automation_switched_off_and_run_from_the_page(
    start_dashboard: DashboardFactory, new_page: NewPage
) -> None:
    dashboard = await start_dashboard(extra=AUTOMATIONS)
    await dashboard.add_user(*OPERATOR, "operator")
    fired: list[Event] = []
    dashboard.hub.bus.listen("announced", fired.append)
    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Automations")
    row = page.locator("tr[data-automation-id='announce']")
    switch = row.get_by_role("switch")
    await expect(switch).to_be_checked()
    await switch.click(force=True)
    await expect(switch).not_to_be_checked()
    await expect(switch).to_be_enabled()
    await switch.click(force=True)
    await expect(switch).to_be_checked()
    await expect(switch).to_be_enabled()

    await row.locator("[data-action='run']").click()
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    # Earlier notices (enabled/disabled) may still show: look for this one.
    await expect(page.locator(".notice", has_text="Started")).to_have_count(1)
    for _ in range(250):
        if fired:
            break
        await asyncio.sleep(0.02)
    assert [event.data for event in fired] == [{"source": "dashboard"}]

    await row.get_by_role("link", name="Announce faults").click()
    await expect(page.get_by_role("heading", name="Traces: Announce faults")).to_be_visible()
    trace = page.locator("details.trace").first
    await expect(trace).to_be_visible()
    await trace.locator("summary").click()
    await expect(trace).to_contain_text("event")
    await page.screenshot(path=screenshot_path("automation-traces-desktop"), full_page=True)
