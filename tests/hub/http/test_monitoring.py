"""Statistics over HTTP from recorded charger events under a manual clock, and bad queries of
the monitoring endpoints (4xx with a reason, never a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.bootstrap import new_hub
from hub.charger import fire_charger_event
from hub.clock import ManualClock, use_manual_clock
from hub.core import Hub
from hub.http import DATA_HTTP
from hub.registry import DeviceKind, device_registry
from tests.hub.http.conftest import Api, make_users, write_config

MIN = 60.0
T0 = datetime(2026, 5, 4, 8, tzinfo=UTC).timestamp()


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[tuple[Api, ManualClock]]:
    """A hub with HTTP (recorder and uptime on by default) on a manual clock at T0."""
    write_config(tmp_path, extra="recorder:\n  auto_purge: false\n")
    hub = new_hub(tmp_path)
    manual = use_manual_clock(hub, T0)
    await hub.start()
    tokens, ids = await make_users(hub)
    yield Api(hub, hub.data[DATA_HTTP].url, tokens, ids), manual
    await hub.stop()


def make_station(hub: Hub, name: str, ports: int, site: str | None = None) -> tuple[str, list[str]]:
    devices = device_registry(hub)
    parent = None
    if site is not None:
        parent = devices.get_or_create(
            integration="test", identifiers={("test", site)}, kind=DeviceKind.SITE, name=site
        ).id
    station = devices.get_or_create(
        integration="test",
        identifiers={("test", name)},
        kind=DeviceKind.STATION,
        name=name,
        via_device_id=parent,
    )
    port_ids = [
        devices.get_or_create(
            integration="test",
            identifiers={("test", f"{name}:{n}")},
            kind=DeviceKind.CONNECTOR,
            name=f"{name} {n}",
            via_device_id=station.id,
            connector_id=n,
        ).id
        for n in range(1, ports + 1)
    ]
    return station.id, port_ids


def port_status(hub: Hub, station: str, port: str, when: float, value: str, old: str) -> None:
    fire_charger_event(
        hub,
        "status",
        station_id=station,
        device_id=port,
        data={"port": 1, "status": value, "previous": old, "error_code": None, "time": when},
    )


def session(
    hub: Hub, station: str, port: str, tx: str, span: tuple[float, float], wh: float, **extra: Any
) -> None:
    for kind in ("session_started", "session_ended"):
        fire_charger_event(
            hub,
            kind,
            station_id=station,
            device_id=port,
            data={
                "transaction_id": tx,
                "port": 1,
                "started_at": span[0],
                "stopped_at": span[1] if kind == "session_ended" else None,
                "energy_wh": wh if kind == "session_ended" else None,
                "peak_power_w": 7400.0,
                **extra,
            },
        )


async def get(client: aiohttp.ClientSession, api: Api, path: str) -> tuple[int, Any]:
    async with client.get(api.url + path, headers=api.headers("viewer")) as resp:
        return resp.status, await resp.json()


async def test_statistics_per_hour_of_a_port_and_its_station(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    hub = api.hub
    station, (p1, p2) = make_station(hub, "Lab", 2, site="Campus")
    # P1: Available, Preparing at 08:15, Charging 08:20-09:20 (a 6 kWh session), Finishing
    # until 09:30. P2 Available; a failed 0.5 kWh session 09:40-09:50.
    port_status(hub, station, p1, T0, "Available", "Unavailable")
    port_status(hub, station, p2, T0, "Available", "Unavailable")
    port_status(hub, station, p1, T0 + 15 * MIN, "Preparing", "Available")
    port_status(hub, station, p1, T0 + 20 * MIN, "Charging", "Preparing")
    port_status(hub, station, p1, T0 + 80 * MIN, "Finishing", "Charging")
    port_status(hub, station, p1, T0 + 90 * MIN, "Available", "Finishing")
    session(hub, station, p1, "tx-1", (T0 + 20 * MIN, T0 + 80 * MIN), 6000.0, error_code="NoError")
    session(
        hub,
        station,
        p2,
        "tx-2",
        (T0 + 100 * MIN, T0 + 110 * MIN),
        500.0,
        error_code="GroundFailure",
    )
    await clock.advance(3 * 60 * MIN)

    window = f"start={utc(T0)}&end={utc(T0 + 120 * MIN)}"
    async with aiohttp.ClientSession() as client:
        code, port = await get(client, api, f"/api/statistics?device_id={p1}&period=hour&{window}")
        assert code == 200, port
        # Hour 1: 40 of the 60 session minutes (4 kWh), charging 40 min, occupied 5 + 40.
        # Hour 2: 2 kWh, charging 20 min, occupied 20 + 10.
        assert [r["start"] for r in port["rows"]] == [
            datetime.fromtimestamp(T0, UTC).isoformat(),
            datetime.fromtimestamp(T0 + 60 * MIN, UTC).isoformat(),
        ]
        assert [r["energy_kwh"] for r in port["rows"]] == pytest.approx([4.0, 2.0])
        assert [r["sessions"] for r in port["rows"]] == [1, 0]
        assert [r["charging_percent"] for r in port["rows"]] == pytest.approx([200 / 3, 100 / 3])
        assert [r["occupied_percent"] for r in port["rows"]] == pytest.approx([75.0, 50.0])
        summary = port["summary"]
        assert (summary["kind"], summary["device_id"], summary["name"]) == ("port", p1, "Lab 1")
        assert summary["energy_kwh"] == pytest.approx(6.0)
        assert summary["charging_percent"] == pytest.approx(50.0)
        assert summary["occupied_percent"] == pytest.approx(62.5)
        assert summary["peak_power_kw"] == pytest.approx(7.4)
        assert summary["failed_sessions"] == []
        assert summary["busiest_hours"][8] == 1

        code, whole = await get(client, api, f"/api/statistics?device_id={station}&{window}")
        assert code == 200, whole
        summary = whole["summary"]
        assert (summary["kind"], sorted(summary["ports"])) == ("station", sorted([p1, p2]))
        assert summary["energy_kwh"] == pytest.approx(6.5)
        assert summary["sessions"] == 2
        # Occupied 75 of 240 port-minutes.
        assert summary["occupied_percent"] == pytest.approx(31.25)
        assert summary["error_codes"] == {"GroundFailure": 1}
        [failed] = summary["failed_sessions"]
        assert (failed["transaction_id"], failed["port_id"]) == ("tx-2", p2)
        assert failed["started_at"] == datetime.fromtimestamp(T0 + 100 * MIN, UTC).isoformat()
        assert [r["energy_kwh"] for r in whole["rows"]] == pytest.approx([4.0, 2.5])

        # Per day over the window: one row with the totals.
        code, daily = await get(client, api, f"/api/statistics?device_id={p1}&period=day&{window}")
        assert code == 200
        assert [r["energy_kwh"] for r in daily["rows"]] == pytest.approx([6.0])

        # A station with no recorded rows still answers, with zeros.
        empty_station, _ = make_station(hub, "Quiet", 1)
        code, empty = await get(client, api, f"/api/statistics?device_id={empty_station}")
        assert code == 200
        assert (empty["summary"]["kind"], empty["summary"]["ports"]) == ("station", [])
        assert empty["summary"]["energy_kwh"] == 0

        # The sessions endpoint sees the same sessions, newest first.
        code, sessions = await get(client, api, f"/api/sessions?station_id={station}&{window}")
        assert code == 200
        assert [s["transaction_id"] for s in sessions] == ["tx-2", "tx-1"]
        assert sessions[0]["error_code"] == "GroundFailure"
        code, limited = await get(client, api, f"/api/sessions?limit=1&{window}")
        assert [s["transaction_id"] for s in limited] == ["tx-2"]

        # The station's site.
        code, chargers = await get(client, api, "/api/chargers")
        assert {c["name"]: c["site"] for c in chargers} == {"Lab": "Campus", "Quiet": None}


BAD_QUERIES = [
    ("GET", "/api/statistics", None, 400, "invalid"),
    ("GET", "/api/statistics?device_id=nope", None, 404, "not_found"),
    ("GET", "/api/statistics?device_id={port}&period=week", None, 400, "invalid"),
    ("GET", "/api/statistics?device_id={port}&start=tomorrow", None, 400, "invalid"),
    ("GET", "/api/statistics?device_id={port}&start=2026-02-01&end=2026-01-01", None, 400,
     "invalid"),
    ("GET", "/api/statistics?device_id={port}&period=hour&start=2026-01-01&end=2026-03-01", None,
     400, "invalid"),
    ("GET", "/api/statistics?device_id={port}&start=99999-01-01", None, 400, "invalid"),
    ("GET", "/api/sessions?station_id=nope", None, 404, "not_found"),
    ("GET", "/api/sessions?port_id={station}", None, 404, "not_found"),
    ("GET", "/api/sessions?limit=0", None, 400, "invalid"),
    ("GET", "/api/sessions?start=2026-01-02&end=2026-01-01", None, 400, "invalid"),
    ("GET", "/api/uptime?start=not-a-date", None, 400, "invalid"),
    ("GET", "/api/uptime?start=2026-03-02&end=2026-03-01", None, 400, "invalid"),
    ("GET", "/api/uptime?start=2020-01-01&end=2026-01-01", None, 400, "invalid"),
    ("GET", "/api/uptime?station_id=nope", None, 404, "not_found"),
    ("GET", "/api/uptime?station_id={port}", None, 404, "not_found"),
    ("GET", "/api/uptime?month=2026-13", None, 400, "invalid"),
    ("GET", "/api/uptime?month=March", None, 400, "invalid"),
    ("GET", "/api/uptime?month=2026-03&start=2026-03-01", None, 400, "invalid"),
    ("GET", "/api/uptime/monthly?year=twenty", None, 400, "invalid"),
    ("GET", "/api/uptime/monthly?year=1200", None, 400, "invalid"),
    ("GET", "/api/uptime/monthly?station_id=nope", None, 404, "not_found"),
    ("GET", "/api/reports/uptime.csv?end=yesterday", None, 400, "invalid"),
    ("GET", "/api/reports/uptime.csv?start=2026-03-02&end=2026-03-01", None, 400, "invalid"),
    ("GET", "/api/uptime/exclusions?start=bad", None, 400, "invalid"),
    ("POST", "/api/uptime/exclusions", {"start": "2026-03-01T00:00Z", "reason": "aliens"}, 400,
     "invalid"),
    ("POST", "/api/uptime/exclusions", {"reason": "vehicle"}, 400, "invalid"),
    ("POST", "/api/uptime/exclusions", {"start": "soon", "reason": "vehicle"}, 400, "invalid"),
    ("POST", "/api/uptime/exclusions",
     {"start": "2026-03-02T00:00Z", "end": "2026-03-01T00:00Z", "reason": "vehicle"}, 400,
     "invalid"),
    ("POST", "/api/uptime/exclusions", {"device_id": "nope", "start": 0, "reason": "vehicle"}, 404,
     "not_found"),
    ("POST", "/api/uptime/exclusions", {"start": 0, "reason": "vehicle", "colour": "red"}, 400,
     "invalid"),
    ("POST", "/api/uptime/exclusions", [1, 2], 400, "invalid_json"),
    ("DELETE", "/api/uptime/exclusions/nope", None, 404, "not_found"),
    ("GET", "/api/uptime/nothing", None, 404, "no_endpoint"),
    ("DELETE", "/api/reports", None, 404, "no_endpoint"),
    ("POST", "/api/uptime", {}, 405, "method_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_QUERIES)
async def test_bad_queries_get_a_json_reason(
    api: Api,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    station, (port,) = make_station(api.hub, "Lab", 1)
    url = api.url + path.replace("{port}", port).replace("{station}", station)
    async with session.request(method, url, json=body, headers=api.headers("admin")) as resp:
        text = await resp.text()
        assert resp.status == status, text
        answer = await resp.json()
    assert answer["error"] == code, answer
    assert answer["message"]


async def test_no_recorder_means_503_not_500(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    write_config(tmp_path, extra="recorder: false\n")
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        tokens, _ = await make_users(hub)
        headers = {"Authorization": f"Bearer {tokens['viewer']}"}
        url = hub.data[DATA_HTTP].url
        for path in (
            "/api/uptime",
            "/api/uptime/monthly",
            "/api/sessions",
            "/api/uptime/exclusions",
        ):
            async with session.get(url + path, headers=headers) as resp:
                assert resp.status == 503, path
                assert (await resp.json())["error"] == "unavailable"
    finally:
        await hub.stop()
