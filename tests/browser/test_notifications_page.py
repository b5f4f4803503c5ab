"""The notifications page and the automations list's failed runs in Chromium, at desktop size
and on a 375 px phone, against a real hub whose webhook notifier posts to a real receiver
that is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from hub.notify import PersistentStatus, persistent_notifications
from hub.security import recent_audit
from integrations.automation import DATA as AUTOMATIONS
from tests.browser.conftest import (
    OCPP,
    OPERATOR,
    PHONE,
    VIEWER,
    Dashboard,
    DashboardFactory,
    NewPage,
    confirm,
    login,
    nav,
    no_overflow,
    screenshot_path,
    to_docs,
)


async def clear_notices(page: Page) -> None:
    await page.evaluate("document.getElementById('notices')?.replaceChildren()")


@pytest.fixture
async def receiver() -> AsyncIterator[str]:
    """A webhook receiver that is down for maintenance (HTTP 503)."""

    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    app = web.Application()
    app.router.add_post("/hooks/ops", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def config(receiver: str) -> str:
    return f"""
notify_webhook:
  - name: ops_hook
    url: {receiver}/hooks/ops
    retries: 0
automations:
  - id: fault_mail
    alias: Tell ops about faults
    triggers:
      - trigger: event
        event_type: station_fault
    actions:
      - action: notify.ops_hook
        data:
          title: "Bay 3 faulted"
          message: "GroundFailure on connector 1"
  - id: quiet
    alias: Log only
    triggers:
      - trigger: event
        event_type: never_fired
    actions:
      - log: nothing to see
"""


@pytest.fixture
async def notify_dashboard(start_dashboard: DashboardFactory, receiver: str) -> Dashboard:
    return await start_dashboard(OCPP, extra=config(receiver), users=("operator", "viewer"))


async def fire_fault(dashboard: Dashboard) -> None:
    """Fire the event the automation listens to and wait until its run has ended."""
    manager = dashboard.hub.data.get(AUTOMATIONS)
    assert manager is not None
    runs = len(manager.automations["fault_mail"].traces)
    dashboard.hub.bus.fire("station_fault", {})
    for _ in range(250):
        traces = manager.automations["fault_mail"].traces
        if len(traces) > runs and traces[-1].finished is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the automation did not run")


async def test_operator_reads_and_dismisses_notifications_live(
    notify_dashboard: Dashboard, new_page: NewPage
) -> None:
    dashboard = notify_dashboard
    hub = dashboard.hub
    await hub.services.call(
        "notify", "persistent", {"title": "Maintenance", "message": "Bay 2 needs a technician"}
    )
    await fire_fault(dashboard)

    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Notifications")
    await expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    items = page.locator("li.notification")
    await expect(items).to_have_count(2)
    failed = page.locator("li.notification[data-status='failed']")
    await expect(failed.locator("[data-status-badge]")).to_have_text("delivery failed")
    await expect(failed).to_contain_text("Notification via ops_hook failed")
    await expect(failed).to_contain_text("answered HTTP 503: down for maintenance")
    await expect(failed).to_contain_text("Bay 3 faulted: GroundFailure on connector 1")
    await expect(page.locator("[data-counts]")).to_have_text("2 notifications: 1 unread, 1 failed")

    # A new one arrives while the page is open.
    await hub.services.call("notify", "persistent", {"message": "Firmware 2.4 is out"})
    await expect(items).to_have_count(3)
    newest = items.first
    await expect(newest).to_contain_text("Firmware 2.4 is out")

    await clear_notices(page)
    shot = screenshot_path("notifications-desktop")
    await page.screenshot(path=shot, full_page=True)
    await to_docs(shot, "notifications.png")

    unread = page.locator("li.notification", has_text="Bay 2 needs a technician")
    await unread.locator("[data-action='read']").click()
    await expect(unread).to_have_attribute("data-status", "read")
    await expect(unread.locator("[data-action='read']")).to_have_count(0)

    await page.locator("[data-filter='failed']").click()
    await expect(items).to_have_count(1)
    await failed.locator("[data-action='dismiss']").click()
    await expect(page.locator("dialog.confirm-dialog")).to_contain_text(
        "Dismiss “Notification via ops_hook failed”?"
    )
    await confirm(page)
    await expect(items).to_have_count(0)
    await expect(page.locator("main")).to_contain_text("No notification matches.")
    await page.locator("[data-filter='all']").click()
    await expect(items).to_have_count(2)

    statuses = sorted(str(n.status) for n in persistent_notifications(hub))
    assert statuses == [str(PersistentStatus.read), str(PersistentStatus.unread)]
    actions = [
        (e["action"], e["username"])
        for e in reversed(recent_audit(hub, 200))
        if e["action"] in ("notify.mark_read", "notify.dismiss")
    ]
    assert actions == [("notify.mark_read", OPERATOR[0]), ("notify.dismiss", OPERATOR[0])]


async def test_a_failed_notification_marks_the_automation_and_its_trace(
    notify_dashboard: Dashboard, new_page: NewPage
) -> None:
    dashboard = notify_dashboard
    page = await new_page()
    await login(page, dashboard.url, *OPERATOR)
    await nav(page, "Automations")
    row = page.locator("tr[data-automation-id='fault_mail']")
    await expect(row).to_be_visible()
    await expect(row.locator("[data-last-run='error']")).to_have_count(0)

    # The run fails while the page is open: the list says so without a reload.
    await fire_fault(dashboard)
    mark = row.locator("[data-last-run='error']")
    await expect(mark).to_contain_text("last run failed")
    await expect(mark).to_contain_text("notify.ops_hook failed")
    await expect(page.locator("tr[data-automation-id='quiet'] [data-last-run]")).to_have_count(0)

    await row.get_by_role("link", name="Tell ops about faults").click()
    trace = page.locator("details.trace").first
    await expect(trace).to_have_attribute("data-outcome", "error")
    await trace.locator("summary").click()
    step = trace.locator("[data-step='action/0']")
    await expect(step).to_have_attribute("data-step-failed", "true")
    await expect(step).to_contain_text("failed")
    await expect(step).to_contain_text("answered HTTP 503")
    await clear_notices(page)
    await page.screenshot(path=screenshot_path("automation-failed-desktop"), full_page=True)


async def test_notifications_for_a_viewer_on_a_phone(
    notify_dashboard: Dashboard, new_page: NewPage
) -> None:
    dashboard = notify_dashboard
    await dashboard.hub.services.call(
        "notify", "persistent", {"title": "Maintenance", "message": "Bay 2 needs a technician"}
    )
    await fire_fault(dashboard)
    page = await new_page(PHONE)
    await login(page, dashboard.url, *VIEWER)
    await nav(page, "Notifications")
    await expect(page.locator("li.notification")).to_have_count(2)
    # A viewer reads; only operators act.
    await expect(page.locator("li.notification button")).to_have_count(0)
    await no_overflow(page, "the notifications page")
    await page.screenshot(path=screenshot_path("notifications-phone"), full_page=True)

    await nav(page, "Automations")
    await expect(
        page.locator("tr[data-automation-id='fault_mail'] [data-last-run]")
    ).to_be_visible()
    await no_overflow(page, "the automations page")
    await page.screenshot(path=screenshot_path("automations-phone"), full_page=True)

    # In German: the page speaks the catalogue's words.
    await page.locator(".locale-switch").select_option("de")
    await nav(page, "Benachrichtigungen")
    await expect(page.get_by_role("heading", name="Benachrichtigungen")).to_be_visible()
    await expect(page.locator("[data-counts]")).to_have_text(
        "2 Benachrichtigungen: 1 ungelesen, 1 fehlgeschlagen"
    )
    await expect(
        page.locator("li.notification[data-status='failed'] [data-status-badge]")
    ).to_have_text("Zustellung fehlgeschlagen")
    await no_overflow(page, "the German notifications page")
