"""The security audit's dashboard page (integrations/security_audit/panels/audit.js) in
headless Chromium: admins see the findings and run the audit again; viewers see no page."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import ADMIN, VIEWER, DashboardFactory, NewPage, login, screenshot_path


async def test_admin_sees_findings_and_runs_the_audit_again(
    start_dashboard: DashboardFactory, new_page: NewPage
) -> None:
    # The browser tests' OCPP section admits unknown chargers: a high finding.
    dashboard = await start_dashboard(extra="security_audit:\n")
    await dashboard.hub.block_till_done()
    await dashboard.add_user(*ADMIN, "admin")
    await dashboard.add_user(*VIEWER, "viewer")
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    await login(page, dashboard.url, *ADMIN)
    await page.locator("#main-nav").get_by_role("link", name="Security audit", exact=True).click()
    panel = page.locator("main evhub-security-audit-panel")
    row = panel.locator('tr[data-check="ocpp_unknown_chargers"]')
    await expect(row).to_contain_text("high")
    await expect(row).to_contain_text("unknown_chargers: reject")
    summary = panel.locator("[data-summary]")
    before = await summary.inner_text()
    assert "high" in before
    await page.screenshot(path=screenshot_path("security-audit"), full_page=True)

    await panel.locator("[data-run]").click()
    await expect(panel.locator("[data-run]")).to_be_enabled()
    await expect(row).to_be_visible()
    assert not errors

    viewer = await new_page()
    await login(viewer, dashboard.url, *VIEWER)
    links = await viewer.locator("#main-nav a").all_inner_texts()
    assert "Security audit" not in links
