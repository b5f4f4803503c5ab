"""Fixtures for the browser tests: the built dashboard, a real hub and headless Chromium."""

from __future__ import annotations

import os
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.core import Hub
from hub.http import DATA_HTTP
from tests.integrations.ocpp.conftest import (  # noqa: F401 - fixtures used by the tests
    Connect,
    HubFactory,
    connect,
    ocpp_hub,
)

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - reported by the fixtures below
    async_playwright = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}

OCPP = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
unknown_chargers: accept
"""

ADMIN = ("admin", "admin-password-1")
OPERATOR = ("olga", "operator-password-1")
VIEWER = ("victor", "viewer-password-1")


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


DashboardFactory = Callable[..., Awaitable[Dashboard]]


@pytest.fixture
def start_dashboard(ocpp_hub: HubFactory) -> DashboardFactory:  # noqa: F811
    """Start a hub (http on port 0, the given ocpp section) serving the built dashboard."""

    async def start(ocpp: str = OCPP, extra: str = "") -> Dashboard:
        _require(DIST / "index.html", "frontend/dist is not built (scripts/setup builds it)")
        hub = await ocpp_hub(ocpp, extra=extra)
        server = hub.data.get(DATA_HTTP)
        assert server is not None, "the hub started without its HTTP server"
        return Dashboard(hub, f"http://127.0.0.1:{server.port}")

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


def screenshot_path(name: str) -> Path:
    """Where a page's screenshot goes (tests/artifacts is git-ignored)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"
