"""Fixtures for the browser tests: the built dashboard, a real hub and headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.core import Hub
from hub.http import DATA_HTTP
from hub.registry import device_registry
from tests.integrations.ocpp.conftest import (  # noqa: F401 - fixtures used by the tests
    Connect,
    HubFactory,
    RawChargePoint,
    connect,
    ocpp_hub,
    plain_ocpp,
    ws_url,
)

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
except ImportError:  # pragma: no cover - reported by the fixtures below
    async_playwright = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}

OCPP = plain_ocpp("unknown_chargers: accept\n")

ADMIN = ("admin", "admin-password-1")
OPERATOR = ("olga", "operator-password-1")
VIEWER = ("victor", "viewer-password-1")
CREDENTIALS = {"admin": ADMIN, "operator": OPERATOR, "viewer": VIEWER}


def _missing(reason: str) -> None:
    """A missing part fails under CI and skips elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing part fails)")
    pytest.skip(reason)


def _require(path: Path, reason: str) -> None:
    if not path.exists():
        _missing(reason)


@dataclass
class Dashboard:
    """A running hub with http and OCPP, and the URL its dashboard is served at."""

    hub: Hub
    url: str

    async def add_user(self, username: str, password: str, role: str) -> None:
        """Create a user through the hub's auth API."""
        from hub.auth import auth_manager

        await auth_manager(self.hub).add_user(username, password, role)

    def device(self, ident: str) -> str:
        """The device id of an OCPP station ("CP-1") or connector ("CP-1:1")."""
        found = device_registry(self.hub).get_by_identifier(("ocpp", ident))
        assert found is not None, ident
        return found.id

    async def boot(
        self,
        connect: Connect,  # noqa: F811 - the fixture's value
        cp_id: str,
        ports: int = 1,
    ) -> RawChargePoint:
        """An OCPP 1.6 charger that connects and boots (accepted), its ports Available."""
        cp = await connect(ws_url(self.hub, cp_id))
        answer = await cp.call(
            "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"}
        )
        assert answer["status"] == "Accepted"
        for number in range(1, ports + 1):
            await cp.call(
                "StatusNotification",
                {"connectorId": number, "errorCode": "NoError", "status": "Available"},
            )
        await self.hub.block_till_done()
        return cp


DashboardFactory = Callable[..., Awaitable[Dashboard]]


@pytest.fixture
def start_dashboard(ocpp_hub: HubFactory) -> DashboardFactory:  # noqa: F811
    """Start a hub (http on port 0, the given ocpp section) serving the built dashboard,
    with a user of each role in users (ADMIN, OPERATOR or VIEWER), made in that order."""

    async def start(ocpp: str = OCPP, extra: str = "", users: tuple[str, ...] = ()) -> Dashboard:
        _require(DIST / "index.html", "frontend/dist is not built (scripts/setup builds it)")
        hub = await ocpp_hub(ocpp, extra=extra)
        server = hub.data.get(DATA_HTTP)
        assert server is not None, "the hub started without its HTTP server"
        dashboard = Dashboard(hub, f"http://127.0.0.1:{server.port}")
        for role in users:
            await dashboard.add_user(*CREDENTIALS[role], role)
        return dashboard

    return start


@pytest.fixture
async def dashboard(start_dashboard: DashboardFactory) -> Dashboard:
    """A hub with OCPP open admission (unknown chargers accepted) and the dashboard."""
    return await start_dashboard()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    if async_playwright is None:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    _require(CHROMIUM, "/usr/bin/chromium is missing (apt-get install -y chromium)")
    playwright = await async_playwright().start()
    try:
        instance = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield instance
        finally:
            await instance.close()
    finally:
        await playwright.stop()


NewPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    """Open pages in fresh browser contexts (own cookies), desktop size unless told."""
    contexts: list[BrowserContext] = []

    async def open_page(viewport: dict[str, int] | None = None, **options: Any) -> Page:
        """options go to the browser context: timezone_id, locale, ..."""
        context = await browser.new_context(viewport=viewport or DESKTOP, **options)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_page
    for context in contexts:
        await context.close()


async def login(page: Page, url: str, username: str, password: str) -> None:
    """Sign in through the login form and wait for the app shell."""
    await page.goto(url + "/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.locator(".topbar .whoami").wait_for()


async def nav(page: Page, label: str) -> None:
    """Follow a link of the main navigation (opening the menu on a phone)."""
    menu = page.locator(".topbar .nav-toggle")
    phone = await menu.is_visible()
    if phone:
        await menu.click()
    await page.locator("#main-nav").get_by_role("link", name=label, exact=True).click()
    if phone:  # the menu slides away
        await expect(page.locator("#main-nav")).not_to_be_in_viewport()


async def confirm(page: Page) -> None:
    """Confirm the open confirmation dialog, and see it close."""
    await page.locator("dialog.confirm-dialog [data-confirm]").click()
    await expect(page.locator("dialog.confirm-dialog")).to_have_count(0)


async def no_overflow(page: Page, what: str) -> None:
    """Nothing wider than the window: the page does not scroll sideways."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{what} is {overflow}px wider than the window"


def screenshot_path(name: str) -> Path:
    """Where a page's screenshot goes (tests/artifacts is git-ignored)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


async def to_docs(shot: Path, name: str) -> None:
    """With EVHUB_README_SCREENSHOT=1, the screenshot also goes to docs/ for the README."""
    if os.environ.get("EVHUB_README_SCREENSHOT") == "1":
        await asyncio.to_thread(shutil.copyfile, shot, ROOT / "docs" / name)


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"
