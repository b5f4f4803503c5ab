"""The dashboard's Security page searches the log, in headless Chromium against a real hub."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.browser.conftest import ADMIN, Dashboard, NewPage, login
from tests.browser.conftest import browser as browser  # noqa: PLC0414 (fixtures)
from tests.browser.conftest import dashboard as dashboard  # noqa: PLC0414
from tests.browser.conftest import new_page as new_page  # noqa: PLC0414
from tests.browser.conftest import start_dashboard as start_dashboard  # noqa: PLC0414
from tests.browser.test_dashboard import boot_charger
from tests.integrations.ocpp.conftest import Connect

expect = pytest.importorskip("playwright.async_api").expect


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def test_the_security_page_filters_by_charger_and_severity(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    for cp_id, event_type in (("CP-1", "TamperDetectionActivated"), ("CP-2", "InvalidMessages")):
        cp = await boot_charger(dashboard, connect, cp_id)
        await cp.call("SecurityEventNotification", {"type": event_type, "timestamp": now_iso()})
    page = await new_page()
    await login(page, dashboard.url, *ADMIN)
    await page.goto(f"{dashboard.url}/#/security")
    rows = page.locator("main table.data tbody tr")
    await expect(rows.filter(has_text="reported TamperDetectionActivated")).to_have_count(1)
    await expect(rows.filter(has_text="reported InvalidMessages")).to_have_count(1)

    await page.locator('[data-form="security-filters"] input[name="station"]').fill("CP-2")
    await page.locator('[data-form="security-filters"] input[name="station"]').press("Enter")
    await expect(rows.filter(has_text="reported TamperDetectionActivated")).to_have_count(0)
    await expect(rows.filter(has_text="reported InvalidMessages")).to_have_count(1)
    await expect(rows.first.locator('[data-label="Source"]')).to_have_text("charger")

    await page.get_by_role("button", name="Show all").click()
    await page.locator('[data-form="security-filters"] select[name="severity"]').select_option(
        "critical"
    )
    await expect(rows.filter(has_text="reported TamperDetectionActivated")).to_have_count(1)
    await expect(rows.filter(has_text="reported InvalidMessages")).to_have_count(0)
