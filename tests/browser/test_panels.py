"""Integration panels in the dashboard: listed per role, loaded as modules, shown with `hub`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from hub.auth import Role
from hub.bootstrap import new_hub
from hub.core import Hub
from hub.http import DATA_HTTP
from hub.plugins import SetupContext, plugin_registry
from hub.registry import DeviceKind, device_registry
from tests.browser.conftest import ADMIN, DIST, VIEWER, Dashboard, NewPage, _require, login
from tests.hub.test_plugins import make_plugin

PANELS = Path(__file__).parent / "panels"

StartPanels = Callable[[], Awaitable[Dashboard]]


async def setup_demo(ctx: SetupContext) -> bool:
    """The demo integration: one panel for everyone, one for admins, two that fail."""
    ctx.register_panel("demo", "Demo panel", PANELS / "demo_panel.js", "demo-panel")
    ctx.register_panel(
        "admin", "Admin panel", PANELS / "admin_panel.js", "demo-admin-panel", role=Role.ADMIN
    )
    ctx.register_panel("silent", "Silent panel", PANELS / "silent_panel.js", "demo-silent-panel")
    ctx.register_panel("broken", "Broken panel", PANELS / "broken_panel.js", "demo-broken-panel")
    # A section of the station page of the demo integration's stations, and one station.
    ctx.register_panel(
        "station",
        "Demo station facts",
        PANELS / "station_section.js",
        "demo-station-section",
        placement="station",
    )
    device_registry(ctx.hub).get_or_create(
        integration="demo",
        identifiers=[("demo", "DEMO-1")],
        kind=DeviceKind.STATION,
        name="Demo station",
    )
    return True


@pytest.fixture
async def start_panels(tmp_path: Path) -> AsyncIterator[StartPanels]:
    """Start a hub (http on port 0) with the demo integration's panels and the dashboard."""
    hubs: list[Hub] = []

    async def start() -> Dashboard:
        _require(DIST / "index.html", "frontend/dist is not built (scripts/setup builds it)")
        tmp_path.joinpath("configuration.yaml").write_text(
            "http:\n  server_host: 127.0.0.1\n  server_port: 0\ndemo:\n"
        )
        hub = new_hub(tmp_path)
        plugin_registry(hub).register(make_plugin("demo", setup=setup_demo))
        await hub.start()
        hubs.append(hub)
        assert plugin_registry(hub).is_loaded("demo")
        server = hub.data.get(DATA_HTTP)
        assert server is not None, "the hub started without its HTTP server"
        return Dashboard(hub, f"http://127.0.0.1:{server.port}")

    yield start
    for hub in hubs:
        await hub.stop()


def nav_link(page: Page, label: str) -> Locator:
    """A link of the main navigation."""
    return page.locator("#main-nav").get_by_role("link", name=label, exact=True)


async def test_viewer_sees_the_demo_panel_and_not_the_admin_one(
    start_panels: StartPanels, new_page: NewPage
) -> None:
    dashboard = await start_panels()
    await dashboard.add_user(*VIEWER, "viewer")
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, dashboard.url, *VIEWER)

    await expect(nav_link(page, "Demo panel")).to_be_visible()
    links = await page.locator("#main-nav a").all_inner_texts()
    # After the built-in entries; the admin panel is not listed for a viewer.
    assert links[0] == "Overview"
    assert links.index("Demo panel") > links.index("Security events")
    assert "Admin panel" not in links

    await nav_link(page, "Demo panel").click()
    await expect(page).to_have_url(f"{dashboard.url}/#/panel/demo/demo")
    panel = page.locator("main demo-panel")
    await expect(panel).to_contain_text("demo panel for victor (viewer)")
    # The element called GET /api/panels through the client it was given.
    listed = panel.locator(".demo-listed")
    await expect(listed).to_contain_text("panels: demo/demo")
    assert "demo/admin" not in await listed.inner_text()
    await expect(nav_link(page, "Demo panel")).to_have_attribute("aria-current", "page")

    # The admin panel's page, opened by hand, is not there for a viewer.
    await page.goto(f"{dashboard.url}/#/panel/demo/admin")
    await expect(page.get_by_role("heading", name="Panel not found")).to_be_visible()
    assert not errors


async def test_admin_sees_both_panels_and_opens_one_directly(
    start_panels: StartPanels, new_page: NewPage
) -> None:
    dashboard = await start_panels()
    await dashboard.add_user(*ADMIN, "admin")
    page = await new_page()
    await login(page, dashboard.url, *ADMIN)
    await expect(nav_link(page, "Admin panel")).to_be_visible()
    await expect(nav_link(page, "Demo panel")).to_be_visible()

    # Straight to a panel's URL on a fresh load: the list loads, then the module.
    await page.goto(f"{dashboard.url}/#/panel/demo/admin")
    await page.reload()
    await expect(page.locator("main demo-admin-panel")).to_have_text("admin panel for admin")
    await nav_link(page, "Demo panel").click()
    await expect(page.locator("main demo-panel")).to_contain_text("demo panel for admin (admin)")
    await expect(page.locator("main .demo-listed")).to_contain_text("demo/admin")


async def test_failing_panels_show_an_error(start_panels: StartPanels, new_page: NewPage) -> None:
    dashboard = await start_panels()
    await dashboard.add_user(*VIEWER, "viewer")
    page = await new_page()
    await login(page, dashboard.url, *VIEWER)

    await nav_link(page, "Broken panel").click()
    error = page.locator("main .panel-error")
    await expect(error).to_contain_text("could not be loaded")

    # A module that never defines its element: an error after 5 s, not a blank page.
    await nav_link(page, "Silent panel").click()
    await expect(error).to_contain_text(
        "did not define its element <demo-silent-panel> within 5 s", timeout=10_000
    )

    # The other panels still work.
    await nav_link(page, "Demo panel").click()
    await expect(page.locator("main demo-panel")).to_contain_text("demo panel for victor")


async def test_station_sections_show_on_their_integrations_station_pages(
    start_panels: StartPanels, new_page: NewPage
) -> None:
    """A panel with placement "station" is not in the navigation: it is a section of the
    station page of its integration's stations, given the station."""
    dashboard = await start_panels()
    await dashboard.add_user(*VIEWER, "viewer")
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, dashboard.url, *VIEWER)
    await expect(nav_link(page, "Demo panel")).to_be_visible()
    assert "Demo station facts" not in await page.locator("#main-nav a").all_inner_texts()
    device = device_registry(dashboard.hub).get_by_identifier(("demo", "DEMO-1"))
    assert device is not None
    await page.goto(f"{dashboard.url}/#/chargers/{device.id}")
    section = page.locator("main section.station-section", has_text="Demo station facts")
    await expect(section.locator("demo-station-section")).to_have_text(
        "section of Demo station (DEMO-1) for victor"
    )
    assert not errors
