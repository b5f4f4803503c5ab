"""Uptime exclusions in the page: an operator adds, edits and removes one (with its reason
and time span, a confirmation before removing), it shows through the API and on the port's
timeline, every change is audited with what was sent; viewers only read. Desktop and 375 px.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from playwright.async_api import Page, expect

from hub.auth import auth_manager
from hub.registry import device_registry
from hub.security import recent_audit
from tests.browser.conftest import (
    OPERATOR,
    PHONE,
    VIEWER,
    Dashboard,
    DashboardFactory,
    NewPage,
    login,
    no_overflow,
    screenshot_path,
    to_docs,
)
from tests.integrations.ocpp.conftest import Connect, plain_ocpp

OCPP = plain_ocpp(
    """
    unknown_chargers: accept
    chargers:
      - {id: CP-9, name: Bay 9, site: Depot}
    """
)
ZONE = "Europe/Berlin"


def local_input(moment: datetime) -> str:
    """A moment as a datetime-local input holds it in the browser's zone (minutes)."""
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def listed(page: Page, url: str) -> list[dict[str, object]]:
    """The exclusions the API lists (the page's session cookie reads them)."""
    now = datetime.now(UTC)
    span = (
        f"start={(now - timedelta(days=2)).isoformat()}&end={(now + timedelta(days=2)).isoformat()}"
    )
    answer = await page.request.get(f"{url}/api/uptime/exclusions?{span.replace('+', '%2B')}")
    assert answer.status == 200
    found: list[dict[str, object]] = await answer.json()
    return found


@pytest.fixture
async def depot(start_dashboard: DashboardFactory) -> Dashboard:
    """The hub with Bay 9 configured, an operator and a viewer."""
    return await start_dashboard(OCPP, users=("operator", "viewer"))


async def test_operator_adds_edits_and_removes_an_exclusion(
    depot: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    dashboard = depot
    hub = dashboard.hub
    await dashboard.boot(connect, "CP-9", 2)
    station, port = dashboard.device("CP-9"), dashboard.device("CP-9:1")
    port_name = device_registry(hub).get(port).name  # type: ignore[union-attr]

    page = await new_page(timezone_id=ZONE)
    await login(page, dashboard.url, *OPERATOR)
    await page.goto(f"{dashboard.url}/#/chargers/{station}")
    section = page.locator("[data-section='exclusions']")
    await expect(section.locator("[data-empty]")).to_be_visible()

    # Add: a port, a reason, a span in the browser's zone (Berlin), a note.
    now = datetime.now(UTC)
    start, end = minute(now - timedelta(hours=3)), minute(now - timedelta(hours=1))
    await section.locator("[data-action='add-exclusion']").click()
    form = section.locator("form[data-form='exclusion']")
    await form.locator("[data-field='target']").select_option(port)
    await form.locator("[data-field='reason']").select_option("vandalism")
    await form.locator("[data-field='start']").fill(local_input(start))
    await form.locator("[data-field='end']").fill(local_input(end))
    await form.locator("[data-field='note']").fill("glass broken")
    await form.locator("[data-action='save-exclusion']").click()
    await expect(page.locator(".notice").last).to_have_text("Exclusion added")
    row = section.locator("tr[data-exclusion-id]")
    await expect(row).to_have_count(1)
    await expect(row.locator("[data-reason]")).to_have_text("Vandalism")

    [made] = await listed(page, dashboard.url)
    assert (made["port_id"], made["station_id"]) == (port, station)
    assert (made["reason"], made["note"]) == ("vandalism", "glass broken")
    assert datetime.fromisoformat(str(made["start"])) == start
    assert datetime.fromisoformat(str(made["end"])) == end
    exclusion_id = made["exclusion_id"]
    # On the port's timeline (and not on the other port's).
    band = page.locator(f".timeline-row[data-timeline-port='1'] [data-exclusion='{exclusion_id}']")
    await expect(band).to_be_visible()
    await expect(
        page.locator(f".timeline-row[data-timeline-port='2'] [data-exclusion='{exclusion_id}']")
    ).to_have_count(0)
    await expect(band).to_have_attribute(
        "title", re.compile(r"^Excluded from uptime: Vandalism: .* \(glass broken\)$")
    )
    # The timeline and the exclusions under it, as the README shows them.
    await page.evaluate(
        "document.querySelector('[data-timeline]').closest('section').scrollIntoView();"
        " window.scrollBy(0, -64)"
    )
    shot = screenshot_path("station-exclusions")
    await page.screenshot(path=shot)
    await to_docs(shot, "station-exclusions.png")

    # Edit: the form comes filled in; another reason, and still going on.
    await row.locator("[data-action='edit-exclusion']").click()
    await expect(form.locator("[data-field='reason']")).to_have_value("vandalism")
    await expect(form.locator("[data-field='note']")).to_have_value("glass broken")
    await expect(form.locator("[data-field='start']")).to_have_value(local_input(start))
    await form.locator("[data-field='reason']").select_option("utility_power")
    await form.locator("[data-field='end']").fill("")
    await form.locator("[data-action='save-exclusion']").click()
    await expect(page.locator(".notice").last).to_have_text("Exclusion saved")
    await expect(row.locator("[data-reason]")).to_have_text("Utility power interruption")
    await expect(row).to_contain_text("ongoing")
    [changed] = await listed(page, dashboard.url)
    assert changed["exclusion_id"] == exclusion_id
    assert (changed["reason"], changed["end"], changed["note"]) == (
        "utility_power",
        None,
        "glass broken",
    )

    # An end before the start is refused in the page, before anything is sent.
    await row.locator("[data-action='edit-exclusion']").click()
    await form.locator("[data-field='end']").fill(local_input(start - timedelta(hours=1)))
    await form.locator("[data-action='save-exclusion']").click()
    await expect(form.locator("[role=alert]")).to_have_text(
        "The exclusion must end after it starts."
    )
    await form.get_by_role("button", name="Cancel").click()

    # Remove: a confirmation first; cancelled, nothing changes.
    await row.locator("[data-action='delete-exclusion']").click()
    dialog = page.locator("dialog.confirm-dialog")
    await expect(dialog).to_contain_text("Utility power interruption")
    await dialog.get_by_role("button", name="Cancel").click()
    assert [x["exclusion_id"] for x in await listed(page, dashboard.url)] == [exclusion_id]
    await row.locator("[data-action='delete-exclusion']").click()
    await dialog.locator("[data-confirm]").click()
    await expect(page.locator(".notice").last).to_have_text("Exclusion removed")
    await expect(row).to_have_count(0)
    await expect(band).to_have_count(0)
    assert await listed(page, dashboard.url) == []

    # Each change audited by name, with what was sent.
    entries = {e["action"]: e for e in recent_audit(hub) if e["action"].startswith("uptime.")}
    assert set(entries) == {
        "uptime.add_exclusion",
        "uptime.update_exclusion",
        "uptime.remove_exclusion",
    }
    added = entries["uptime.add_exclusion"]
    assert added["target"] == port_name
    assert added["username"] == OPERATOR[0]
    assert added["data"]["reason"] == "vandalism"
    assert added["data"]["note"] == "glass broken"
    assert added["data"]["device_id"] == port
    assert entries["uptime.update_exclusion"]["data"]["reason"] == "utility_power"
    assert entries["uptime.update_exclusion"]["data"]["end"] is None
    assert entries["uptime.remove_exclusion"]["data"] == {"exclusion_id": exclusion_id}

    # A viewer sees exclusions and changes none.
    await hub.services.call(
        "uptime",
        "add_exclusion",
        {
            "device_id": station,
            "start": (now - timedelta(hours=2)).timestamp(),
            "reason": "maintenance",
        },
    )
    viewer = await new_page()
    await login(viewer, dashboard.url, *VIEWER)
    await viewer.goto(f"{dashboard.url}/#/chargers/{station}")
    view_section = viewer.locator("[data-section='exclusions']")
    await expect(view_section.locator("tr[data-exclusion-id]")).to_have_count(1)
    await expect(view_section.locator("tr[data-exclusion-id]")).to_contain_text(
        "Scheduled maintenance"
    )
    await expect(view_section.locator("[data-action]")).to_have_count(0)
    # A station's exclusion covers each of its ports' rows.
    await expect(viewer.locator(".timeline-row [data-exclusion]")).to_have_count(2)


async def test_exclusions_on_a_phone_and_the_reports_page(
    depot: Dashboard, new_page: NewPage, connect: Connect
) -> None:
    dashboard = depot
    await dashboard.boot(connect, "CP-9")
    station = dashboard.device("CP-9")

    page = await new_page(PHONE, timezone_id=ZONE)
    await login(page, dashboard.url, *OPERATOR)
    await page.goto(f"{dashboard.url}/#/chargers/{station}")
    section = page.locator("[data-section='exclusions']")
    await section.locator("[data-action='add-exclusion']").click()
    form = section.locator("form[data-form='exclusion']")
    await expect(form.locator("[data-field='target']")).to_have_value(station)  # the default
    await form.locator("[data-field='reason']").select_option("natural_disaster")
    await form.locator("[data-field='start']").fill(
        local_input(datetime.now(UTC) - timedelta(hours=5))
    )
    await no_overflow(page, "the exclusion form on a phone")
    await form.locator("[data-action='save-exclusion']").click()
    row = section.locator("tr[data-exclusion-id]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Natural disaster")
    await expect(row).to_contain_text("ongoing")
    await expect(page.locator(".timeline-row [data-exclusion]")).to_have_count(1)
    await no_overflow(page, "the station page with an exclusion")
    await section.scroll_into_view_if_needed()
    await page.screenshot(path=screenshot_path("station-exclusions-phone"))

    # The reports page lists every exclusion; the site itself is a target there.
    await page.goto(f"{dashboard.url}/#/reports")
    reports = page.locator("[data-section='exclusions']")
    await expect(reports.locator("tr[data-exclusion-id]")).to_have_count(1)
    await reports.locator("[data-action='add-exclusion']").click()
    options = reports.locator("[data-field='target'] option")
    await expect(options.last).to_have_text("the whole site")
    await reports.locator("[data-field='target']").select_option("")
    await reports.locator("[data-field='reason']").select_option("outside_hours")
    await reports.locator("[data-action='save-exclusion']").click()
    await expect(reports.locator("tr[data-exclusion-id]")).to_have_count(2)
    site_row = reports.locator("tr[data-exclusion-id]", has_text="the whole site")
    await expect(site_row).to_contain_text("Outside operating hours")
    await no_overflow(page, "the reports page with its exclusions")
    rows = await listed(page, dashboard.url)
    site = [x for x in rows if x["port_id"] is None and x["station_id"] is None]
    assert [x["reason"] for x in site] == ["outside_hours"]


async def test_exclusion_api_refuses_bad_changes(
    start_dashboard: DashboardFactory, connect: Connect
) -> None:
    """PATCH /api/uptime/exclusions/{id}: roles, unknown ids and fields, bad values."""
    dashboard = await start_dashboard(OCPP)
    hub = dashboard.hub
    await dashboard.boot(connect, "CP-9", 0)
    station = dashboard.device("CP-9")
    auth = auth_manager(hub)
    tokens = {}
    for role in ("viewer", "operator"):
        user = await auth.add_user(f"{role}-api", f"{role}-password-12", role)
        tokens[role], _ = await auth.create_token(user, "test")
    made = await hub.services.call(
        "uptime",
        "add_exclusion",
        {"device_id": station, "start": "2026-01-01T08:00:00", "reason": "maintenance"},
    )
    path = f"{dashboard.url}/api/uptime/exclusions/{made['exclusion_id']}"

    async with aiohttp.ClientSession() as client:

        async def patch(url: str, body: object, role: str = "operator") -> tuple[int, dict]:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            async with client.patch(url, json=body, headers=headers) as resp:
                return resp.status, await resp.json()

        assert (await patch(path, {"reason": "vandalism"}, "viewer"))[0] == 403
        code, body = await patch(path, {"colour": "red"})
        assert (code, body["error"]) == (400, "invalid")
        assert "colour" in body["message"]
        assert (await patch(path, {}))[0] == 400
        code, body = await patch(path, {"reason": "bored"})
        assert code == 400, body
        code, body = await patch(path, {"end": "2025-12-31T00:00:00"})
        assert code == 400, body
        assert "end after it starts" in body["message"]
        code, body = await patch(path, {"start": "yesterday"})
        assert code == 400, body
        code, body = await patch(path, {"device_id": "no-such-device"})
        assert code == 404, body
        code, body = await patch(f"{dashboard.url}/api/uptime/exclusions/nope", {"reason": "other"})
        assert code == 404, body
        code, body = await patch(path, {"end": "2026-01-01T12:00:00", "note": "done"})
        assert code == 200, body
        assert (body["reason"], body["note"], body["station_id"]) == (
            "maintenance",
            "done",
            station,
        )
        assert body["end"] is not None
