"""The overview's fleet charts in a real browser on a real hub: power over the last day (kW),
energy per day, uptime per day (NEVI, CEC, the target) and charge success per day, each
drawn from the hub's API (GET /api/statistics/fleet and /api/uptime/daily are checked here
too, hostile input included). Desktop and 375 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from hub.auth import auth_manager
from hub.const import EVENT_OUTAGE
from tests.browser.conftest import (
    ADMIN,
    PHONE,
    Dashboard,
    DashboardFactory,
    NewPage,
    login,
    no_overflow,
    screenshot_path,
    to_docs,
)
from tests.integrations.ocpp.conftest import (
    Connect,
    RawChargePoint,
    meter_values,
    plain_ocpp,
    start_transaction,
    stop_transaction,
)

OCPP = plain_ocpp(
    """
    unknown_chargers: accept
    id_tags: [TAG-1]
    chargers:
      - {id: CP-1, name: Bay 1, site: Depot}
    """
)
MIN = 60.0
CHARTS = ("power", "energy", "uptime", "success")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def session(
    cp: RawChargePoint, port: int, start: datetime, length: timedelta, wh: int
) -> None:
    """A charging session the charger reports afterwards, with its own timestamps."""
    transaction_id = await start_transaction(cp, port, timestamp=utc(start))
    await stop_transaction(
        cp, transaction_id, wh, timestamp=utc(start + length), reason="EVDisconnected"
    )


async def chart_data(page: Page, chart: str) -> Any:
    """What a chart draws: its config's datasets and labels."""
    selector = f"[data-chart='{chart}'] ev-chart"
    await page.wait_for_function(f'document.querySelector("{selector}")?.config != null')
    return await page.evaluate(
        f'(() => {{ const c = document.querySelector("{selector}").config;'
        " return { labels: c.data.labels ?? null,"
        " datasets: c.data.datasets.map(d => ({ label: d.label, data: d.data })),"
        " unit: c.options.scales.y.title?.text ?? null }; })()"
    )


@pytest.fixture
async def fleet(start_dashboard: DashboardFactory, connect: Connect) -> tuple[Dashboard, str]:
    """A hub whose two-port charger charged 10 kWh yesterday (from 08:00) and 5 kWh today,
    was down 144 minutes yesterday, and draws 7.2 + 3 kW now; returns it and an admin token."""
    dashboard = await start_dashboard(OCPP)
    hub = dashboard.hub
    cp = await dashboard.boot(connect, "CP-1", 2)
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = midnight - timedelta(days=1)
    await session(cp, 1, yesterday + timedelta(hours=8), timedelta(hours=1), 10_000)
    # Today's, whatever the hour: it starts and ends between midnight and now.
    today = min((now - midnight) / 3, timedelta(minutes=30))
    await session(cp, 2, now - 2 * today, today, 5_000)
    station, p1 = dashboard.device("CP-1"), dashboard.device("CP-1:1")
    hub.bus.fire(
        EVENT_OUTAGE,
        {
            "outage_id": "yesterday",
            "port_id": p1,
            "station_id": station,
            "start": (yesterday + timedelta(hours=10)).timestamp(),
            "end": (yesterday + timedelta(hours=10, minutes=144)).timestamp(),
            "cause": "faulted",
        },
    )
    await meter_values(cp, 7200, connector=1, timestamp=utc(datetime.now(UTC)))
    await meter_values(cp, 3000, connector=2, timestamp=utc(datetime.now(UTC)))
    await hub.block_till_done()
    user = await auth_manager(hub).add_user(*ADMIN, "admin")
    token, _ = await auth_manager(hub).create_token(user, "charts")
    return dashboard, token


async def test_fleet_apis_answer_and_refuse(fleet: tuple[Dashboard, str]) -> None:
    dashboard, token = fleet
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as client:

        async def get(path: str) -> tuple[int, Any]:
            async with client.get(dashboard.url + path) as resp:
                return resp.status, await resp.json()

        code, energy = await get(
            "/api/statistics/fleet?period=day&start="
            + utc(datetime.now(UTC) - timedelta(days=3)).replace("+", "%2B")
        )
        assert code == 200, energy
        assert energy["stations"] == 1
        assert energy["energy_kwh"] == pytest.approx(15.0)
        assert energy["sessions"] == 2
        by_day = [row for row in energy["rows"] if row["energy_kwh"] > 0]
        assert [row["energy_kwh"] for row in by_day] == [pytest.approx(10.0), pytest.approx(5.0)]
        assert by_day[0]["average_power_kw"] == pytest.approx(10.0 / 24, abs=0.01)

        code, daily = await get("/api/uptime/daily?days=7")
        assert code == 200, daily
        assert (daily["days"], daily["target_pct"], len(daily["rows"])) == (7, 97.0, 7)
        yesterday, today = daily["rows"][-2], daily["rows"][-1]
        assert yesterday["outage_minutes"] == pytest.approx(144.0)
        # Port 1 in service from its first session (08:00), down 144 of those 960 minutes;
        # port 2 not yet in service: (960 - 144) / 960 = 85 %.
        assert yesterday["uptime_pct"] == pytest.approx(85.0)
        assert today["uptime_pct"] == pytest.approx(100.0)
        assert daily["rows"][0]["uptime_pct"] is None  # no port in service that day

        for path, status in (
            ("/api/uptime/daily?days=0", 400),
            ("/api/uptime/daily?days=93", 400),
            ("/api/uptime/daily?days=ten", 400),
            ("/api/uptime/daily?station_id=nope", 404),
            ("/api/statistics/fleet?period=week", 400),
            ("/api/statistics/fleet?start=2026-01-02T00:00:00&end=2026-01-01T00:00:00", 400),
            ("/api/statistics/fleet?period=hour&start=2025-01-01T00:00:00", 400),  # too long
        ):
            code, body = await get(path)
            assert code == status, (path, body)
            assert body["message"], path


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
async def test_overview_draws_the_fleet_charts(
    fleet: tuple[Dashboard, str], new_page: NewPage, viewport: dict[str, int] | None
) -> None:
    dashboard, _ = fleet
    page = await new_page(viewport)
    await login(page, dashboard.url, *ADMIN)
    for chart in CHARTS:
        await expect(page.locator(f"[data-chart='{chart}'] canvas")).to_be_visible()

    power = await chart_data(page, "power")
    assert power["unit"] == "kW"
    assert power["datasets"][0]["data"][-1]["y"] == pytest.approx(10.2)

    energy = await chart_data(page, "energy")
    assert energy["unit"] == "kWh"
    values = energy["datasets"][0]["data"]
    assert len(values) == len(energy["labels"]) >= 30
    assert sum(values) == pytest.approx(15.0)
    assert [v for v in values if v] == [pytest.approx(10.0), pytest.approx(5.0)]
    await expect(page.locator("[data-fact='fleet-energy']")).to_have_text("15.0 kWh in 2 sessions")

    uptime = await chart_data(page, "uptime")
    labels = [d["label"] for d in uptime["datasets"]]
    assert labels == ["NEVI", "CEC", "target 97 %"]
    nevi = uptime["datasets"][0]["data"]
    assert len(nevi) == 30
    assert nevi[-2] == pytest.approx(85.0)
    assert nevi[-1] == pytest.approx(100.0)
    assert set(uptime["datasets"][2]["data"]) == {97}

    success = await chart_data(page, "success")
    rates = [r for r in success["datasets"][0]["data"] if r is not None]
    assert rates == [100, 100]  # two days, one session each, both ended at the car

    await no_overflow(page, "the overview")
    if viewport is PHONE:
        # One chart under another on a phone.
        boxes = [await page.locator(f"[data-chart='{c}']").bounding_box() for c in CHARTS]
        assert all(box is not None for box in boxes)
        tops = [box["y"] for box in boxes if box is not None]
        assert tops == sorted(tops)
        assert len(set(tops)) == 4
    name = "overview-charts" if viewport is None else "overview-charts-phone"
    shot = screenshot_path(name)
    await page.screenshot(path=shot, full_page=viewport is None)
    await to_docs(shot, f"{name}.png")
