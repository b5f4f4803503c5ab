"""The dashboard under its Content-Security-Policy, and what each role sees of failed logins."""

from __future__ import annotations

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.conftest import ADMIN, VIEWER, Dashboard, NewPage, login
from tests.browser.test_dashboard import PAGES, boot_charger, open_station
from tests.integrations.ocpp.conftest import Connect

# Collects every CSP violation the page reports (Chromium fires the event on the document).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}:${e.columnNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${where} ${e.sample}`);
});
"""


async def violations(page: Page) -> list[str]:
    found: list[str] = await page.evaluate("window.__cspViolations")
    return found


async def test_every_page_works_under_the_content_security_policy(
    dashboard: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    await boot_charger(dashboard, connect)
    page = await new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    await page.add_init_script(WATCH_CSP)
    response = await page.goto(dashboard.url + "/")
    assert response is not None
    assert "script-src 'self'" in (await response.header_value("content-security-policy") or "")
    await login(page, dashboard.url, *ADMIN)
    for _name, fragment in PAGES:
        await page.goto(f"{dashboard.url}/{fragment}")
        await page.locator("main h1").first.wait_for()
    await page.goto(f"{dashboard.url}/#/chargers")
    await open_station(page)
    # The status timeline's segments are placed through the CSSOM, not a style attribute.
    segment = page.locator(".timeline-bar .seg").first
    await segment.wait_for()
    width = await segment.evaluate("(el) => el.style.width")
    assert width.endswith("%")
    assert float(width[:-1]) > 0
    assert await violations(page) == []
    assert not [text for text in console if "Content Security Policy" in text], console


async def test_the_security_page_shows_typed_usernames_to_admins_only(
    dashboard: Dashboard, new_page: NewPage
) -> None:
    await dashboard.add_user(*ADMIN, "admin")
    await dashboard.add_user(*VIEWER, "viewer")
    typed = "Typed-Passw0rd-Here"
    # Logged in first: the failed login below makes the address wait before its next login.
    admin = await new_page()
    await login(admin, dashboard.url, *ADMIN)
    viewer = await new_page()
    await login(viewer, dashboard.url, *VIEWER)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{dashboard.url}/api/auth/login", json={"username": typed, "password": "nope-nope"}
        ) as resp,
    ):
        assert resp.status == 401
    await admin.goto(f"{dashboard.url}/#/security")
    row = admin.locator("tr", has_text="failed login from")
    await expect(row).to_contain_text(typed)
    await viewer.goto(f"{dashboard.url}/#/security")
    row = viewer.locator("tr", has_text="failed login from")
    await expect(row).to_be_visible()
    await expect(viewer.locator("main")).not_to_contain_text(typed)
