"""The interface's language: German from a de-DE browser, the switch in the header (kept
across reloads, on the sign-in page too), numbers and dates in the locale's form, and the
German catalogue checked against the English one by the TypeScript compiler."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import (
    ADMIN,
    OPERATOR,
    PHONE,
    ROOT,
    Dashboard,
    DashboardFactory,
    NewPage,
    login,
    no_overflow,
    screenshot_path,
    to_docs,
)
from tests.integrations.ocpp.conftest import Connect, meter_values, plain_ocpp

OCPP = plain_ocpp(
    """
    unknown_chargers: accept
    chargers:
      - {id: CP-1, name: Bay 1, site: Depot}
    """
)
FRONTEND = ROOT / "frontend"


async def charger_with_power(dashboard: Dashboard, connect: Connect) -> str:
    """Bay 1, one connector drawing 7,250 W; returns the station's device id."""
    cp = await dashboard.boot(connect, "CP-1")
    await meter_values(cp, 7250, 1234567)
    await dashboard.hub.block_till_done()
    return dashboard.device("CP-1")


async def login_de(page: Page, url: str, username: str, password: str) -> None:
    """Sign in through the German sign-in form."""
    await page.goto(url + "/")
    await expect(page.get_by_role("heading", name="Bei evhub anmelden")).to_be_visible()
    await page.get_by_label("Benutzername").fill(username)
    await page.get_by_label("Passwort", exact=True).fill(password)
    await page.get_by_role("button", name="Anmelden").click()
    await page.locator(".topbar .whoami").wait_for()


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
async def test_a_german_browser_gets_german(
    start_dashboard: DashboardFactory,
    new_page: NewPage,
    connect: Connect,
    viewport: dict[str, int] | None,
) -> None:
    dashboard = await start_dashboard(OCPP, users=("operator",))
    station = await charger_with_power(dashboard, connect)
    page = await new_page(viewport, locale="de-DE", timezone_id="Europe/Berlin")
    await login_de(page, dashboard.url, *OPERATOR)
    assert await page.evaluate("document.documentElement.lang") == "de"
    await expect(page.locator("ev-locale-switch select")).to_have_value("de")
    await expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
    await expect(page.locator(".whoami")).to_contain_text("Betreiber")
    await expect(page.locator("[data-count='online'] .tile-label")).to_have_text("online")
    await expect(page.locator("[data-site='Depot']")).to_contain_text("1 Ladestation, 1 online")
    await expect(page.locator("[data-chart='energy'] h2")).to_have_text(
        "Energie pro Tag, letzte 30 Tage"
    )
    nav = page.locator("#main-nav")
    if viewport is PHONE:
        await page.get_by_role("button", name="Menü").click()
    await expect(nav.get_by_role("link", name="Ladestationen", exact=True)).to_be_visible()
    await expect(nav.get_by_role("link", name="Berichte", exact=True)).to_be_visible()
    await no_overflow(page, "the German overview")

    # The station page: words, and numbers in German form (decimal comma, dot thousands).
    await page.goto(f"{dashboard.url}/#/chargers/{station}")
    await expect(page.get_by_role("heading", name="Anschlüsse")).to_be_visible()
    port = page.locator("[data-port-device]").first
    await expect(port.locator("[data-live='power']")).to_have_text("7,25 kW")
    await expect(port.locator("[data-live='energy']")).to_have_text("1.234,57 kWh")
    await expect(page.locator("[data-action='reset-soft']")).to_have_text("Neustart")
    await expect(page.locator("[data-legend]")).to_contain_text("gestört")
    # A date in German: "6. Dez. 2026, …" style, in the browser's zone.
    last_seen = await page.locator("dd[title]").first.get_attribute("title")
    assert last_seen is not None
    assert re.search(r"\d{1,2}\. \w+\.? \d{4}", last_seen), last_seen
    await page.locator("[data-action='reset-soft']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await expect(dialog).to_contain_text("Bay 1 neu starten")
    await expect(dialog.get_by_role("button", name="Abbrechen")).to_be_visible()
    await dialog.get_by_role("button", name="Abbrechen").click()
    await no_overflow(page, "the German station page")
    if viewport is None:
        shot = screenshot_path("station-de")
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=shot)
        await to_docs(shot, "station-de.png")


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
async def test_the_switch_changes_the_language_and_is_remembered(
    start_dashboard: DashboardFactory, new_page: NewPage, viewport: dict[str, int] | None
) -> None:
    dashboard = await start_dashboard(OCPP, users=("admin",))
    page = await new_page(viewport, locale="en-US")

    # On the sign-in page already.
    await page.goto(dashboard.url + "/")
    await expect(page.get_by_role("heading", name="Sign in to evhub")).to_be_visible()
    await page.locator("ev-locale-switch select").select_option("de")
    await expect(page.get_by_role("heading", name="Bei evhub anmelden")).to_be_visible()
    await page.locator("ev-locale-switch select").select_option("en")
    await login(page, dashboard.url, *ADMIN)
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # In the header: the page redraws in German without a reload, and stays German after one.
    switch = page.locator(".topbar ev-locale-switch select")
    await expect(switch).to_be_visible()
    await switch.select_option("de")
    await expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
    await expect(page.get_by_role("button", name="Abmelden")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('evhub.locale')") == "de"
    await no_overflow(page, "the header with the language switch")
    await page.goto(dashboard.url + "/#/reports")
    await expect(page.get_by_role("heading", name="Berichte", exact=True)).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Berichte", exact=True)).to_be_visible()
    await expect(page.locator("[data-section='exclusions'] h2")).to_have_text(
        "Ausschlüsse von der Verfügbarkeit"
    )
    await page.goto(dashboard.url + "/#/audit")
    await expect(page.get_by_role("heading", name="Protokoll")).to_be_visible()
    await expect(page.locator("table.audit th").first).to_have_text("Zeit")
    # The sign-in of a moment ago, its action in words.
    await expect(page.locator("tr[data-action='login']").first).to_contain_text("Anmeldung")
    await no_overflow(page, "the German audit log")
    if viewport is PHONE:
        await page.screenshot(path=screenshot_path("audit-de-phone"))

    # Back to English, also remembered.
    await switch.select_option("en")
    await expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Audit log")).to_be_visible()


def type_check(tsc: Path, project: Path) -> subprocess.CompletedProcess[str]:
    """The TypeScript compiler's check of a frontend project (nothing emitted)."""
    return subprocess.run(
        [str(tsc), "--noEmit", "-p", str(project)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_key_missing_in_german_fails_the_type_check(tmp_path: Path) -> None:
    """The catalogues are typed: dropping a German message is a build error naming it."""
    tsc = FRONTEND / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.skip("the dashboard's packages are not installed (scripts/setup)")
    copy = tmp_path / "frontend"
    copy.mkdir()
    # The dashboard's compiler options on the catalogues and what they import, not the pages:
    # a catalogue's errors are its own (another page may be mid-edit), and found in a third of
    # the time the whole dashboard takes.
    config = json.loads((FRONTEND / "tsconfig.json").read_text())
    config["include"] = ["src/i18n.ts", "src/locales"]
    (copy / "tsconfig.json").write_text(json.dumps(config))
    shutil.copytree(FRONTEND / "src", copy / "src")
    (copy / "node_modules").symlink_to(FRONTEND / "node_modules")
    ok = type_check(tsc, copy)
    assert "src/locales/" not in ok.stdout, ok.stdout
    assert "src/i18n.ts" not in ok.stdout, ok.stdout
    assert ok.returncode == 0, ok.stdout
    german = copy / "src" / "locales" / "de.ts"
    text = german.read_text()
    line = next(row for row in text.splitlines() if '"station.reset":' in row)
    german.write_text(text.replace(line + "\n", ""))
    broken = type_check(tsc, copy)
    assert broken.returncode != 0
    assert "src/locales/de.ts" in broken.stdout, broken.stdout
    assert "station.reset" in broken.stdout, broken.stdout
