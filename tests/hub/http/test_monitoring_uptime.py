"""Uptime, monthly rows, the CSV report, sessions and exclusions over HTTP, from real OCPP
chargers under a manual clock; every figure worked out by hand below."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.bootstrap import new_hub
from hub.clock import ManualClock, use_manual_clock
from hub.core import Hub
from hub.http import DATA_HTTP
from hub.registry import device_registry
from integrations.recorder import get_recorder
from integrations.uptime.report import CSV_COLUMNS
from tests.hub.http.conftest import Api, make_users, write_config
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    Connect,
    RawChargePoint,
    connect,
    ws_url,
)

MIN = 60.0
T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()

EXTRA = """\
recorder:
  auto_purge: false
ocpp:
  listeners:
    - port: 0
      host: 127.0.0.1
      security_profile: 0
  id_tags: [TAG-1]
  chargers:
    - id: CP-A
      name: Station A
      site: Depot North
    - id: CP-B
      name: Station B
uptime:
  offline_grace: 150
"""


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class Scene:
    """A hub with HTTP and OCPP on a manual clock, its users, and the client."""

    api: Api
    clock: ManualClock
    client: aiohttp.ClientSession

    async def get(self, path: str, role: str = "viewer") -> tuple[int, Any]:
        async with self.client.get(self.api.url + path, headers=self.api.headers(role)) as resp:
            body = await resp.json() if "json" in resp.content_type else await resp.text()
            return resp.status, body

    async def send(self, method: str, path: str, role: str, body: Any = None) -> tuple[int, Any]:
        async with self.client.request(
            method, self.api.url + path, json=body, headers=self.api.headers(role)
        ) as resp:
            return resp.status, await resp.json()

    async def goto(self, when: float) -> None:
        await self.clock.advance(when - self.clock.time())


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    write_config(tmp_path, extra=EXTRA)
    hub = new_hub(tmp_path)
    manual = use_manual_clock(hub, T0)
    await hub.start()
    tokens, ids = await make_users(hub)
    async with aiohttp.ClientSession() as client:
        yield Scene(Api(hub, hub.data[DATA_HTTP].url, tokens, ids), manual, client)
    await hub.stop()


async def status(cp: RawChargePoint, connector: int, value: str, error: str = "NoError") -> None:
    await cp.call(
        "StatusNotification", {"connectorId": connector, "errorCode": error, "status": value}
    )


async def boot(cp: RawChargePoint, ports: int) -> None:
    answer = await cp.call(
        "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"}
    )
    assert answer["status"] == "Accepted"
    for number in range(1, ports + 1):
        await status(cp, number, "Available")


def device(hub: Hub, ident: str) -> str:
    found = device_registry(hub).get_by_identifier(("ocpp", ident))
    assert found is not None, ident
    return found.id


async def test_uptime_sessions_csv_and_exclusions_over_http(
    scene: Scene,
    connect: Connect,  # noqa: F811
) -> None:
    hub = scene.api.hub
    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    cp_b = await connect(ws_url(hub, "CP-B"))
    await boot(cp_b, 1)
    a, b = device(hub, "CP-A"), device(hub, "CP-B")
    a1, a2, b1 = device(hub, "CP-A:1"), device(hub, "CP-A:2"), device(hub, "CP-B:1")

    # Stations carry the site they belong to.
    code, chargers = await scene.get("/api/chargers")
    assert code == 200
    assert {s["charge_point_id"]: s["site"] for s in chargers} == {
        "CP-A": "Depot North",
        "CP-B": None,
    }

    # 01:00-03:00 A1 faulted (120 min); 02:00-02:30 B1 unavailable (30 min).
    await scene.goto(T0 + 60 * MIN)
    await status(cp_a, 1, "Faulted", "GroundFailure")
    await scene.goto(T0 + 120 * MIN)
    await status(cp_b, 1, "Unavailable")
    await scene.goto(T0 + 150 * MIN)
    await status(cp_b, 1, "Available")
    await scene.goto(T0 + 180 * MIN)
    await status(cp_a, 1, "Available")

    # 02:00-02:30 of A1's outage was a utility power cut: excluded (operator, audited).
    exclusion = {
        "device_id": a1,
        "start": utc(T0 + 120 * MIN),
        "end": utc(T0 + 150 * MIN),
        "reason": "utility_power",
        "note": "grid work",
    }
    code, body = await scene.send("POST", "/api/uptime/exclusions", "viewer", exclusion)
    assert (code, body["error"]) == (403, "forbidden")
    code, created = await scene.send("POST", "/api/uptime/exclusions", "operator", exclusion)
    assert code == 201, created
    assert created["port_id"] == a1
    assert created["station_id"] == a
    assert created["start"] == iso(T0 + 120 * MIN)
    assert created["end"] == iso(T0 + 150 * MIN)
    assert (created["reason"], created["note"]) == ("utility_power", "grid work")

    # 04:00-05:00 a 10 kWh session on A2.
    await scene.goto(T0 + 240 * MIN)
    await status(cp_a, 2, "Preparing")
    started = await cp_a.call(
        "StartTransaction",
        {"connectorId": 2, "idTag": "TAG-1", "meterStart": 0, "timestamp": utc(T0 + 240 * MIN)},
    )
    await status(cp_a, 2, "Charging")
    await scene.goto(T0 + 300 * MIN)
    await cp_a.call(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "meterStop": 10_000,
            "timestamp": utc(T0 + 300 * MIN),
            "reason": "Local",
        },
    )
    await status(cp_a, 2, "Available")
    await scene.goto(T0 + 600 * MIN)

    # This month so far (the default): W = 600 min.
    # A1: (600 - (120 - 30)) / 600 = 85 %; A2: 100 %; B1: (600 - 30) / 600 = 95 %.
    code, uptime = await scene.get("/api/uptime")
    assert code == 200, uptime
    assert uptime["start"] == iso(T0)
    assert uptime["until"] == iso(T0 + 600 * MIN)
    ports = {p["port_id"]: p for p in uptime["ports"]}
    assert set(ports) == {a1, a2, b1}
    assert [ports[a1][k] for k in ("uptime_pct", "outage_minutes", "excluded_minutes")] == [
        85.0,
        120.0,
        30.0,
    ]
    assert ports[a1]["window_minutes"] == 600.0
    assert ports[a1]["station_name"] == "Station A"
    assert ports[a1]["connector"] == 1
    assert ports[a1]["outages"] == 1
    assert [ports[a2][k] for k in ("uptime_pct", "outage_minutes")] == [100.0, 0.0]
    assert [ports[b1][k] for k in ("uptime_pct", "outage_minutes", "excluded_minutes")] == [
        95.0,
        30.0,
        0.0,
    ]
    stations = {s["station_id"]: s for s in uptime["stations"]}
    assert stations[a]["uptime_pct"] == 92.5  # mean of 85 and 100
    assert (stations[a]["outage_minutes"], stations[a]["excluded_minutes"]) == (120.0, 30.0)
    assert (stations[a]["ports"], stations[b]["ports"]) == (2, 1)
    assert stations[b]["uptime_pct"] == 95.0
    assert uptime["fleet_uptime_pct"] == pytest.approx((85 + 100 + 95) / 3, abs=0.001)

    code, only_b = await scene.get(f"/api/uptime?station_id={b}")
    assert code == 200
    assert [p["port_id"] for p in only_b["ports"]] == [b1]
    assert only_b["fleet_uptime_pct"] == 95.0

    # 01:00-03:00 only: W = 120 min. A1: (120 - 90) / 120 = 25 %; B1: (120 - 30) / 120 = 75 %.
    window = f"start={utc(T0 + 60 * MIN)}&end={utc(T0 + 180 * MIN)}"
    code, narrow = await scene.get(f"/api/uptime?{window}")
    assert code == 200
    narrow_ports = {p["port_id"]: p["uptime_pct"] for p in narrow["ports"]}
    assert narrow_ports == {a1: 25.0, a2: 100.0, b1: 75.0}

    # Per month of 2026: March as above; February, before the ports' first status (their
    # in-service start), has no figure (not in service, not 100 %); April has not begun.
    code, monthly = await scene.get("/api/uptime/monthly?year=2026")
    assert code == 200
    assert (monthly["year"], monthly["target_pct"]) == (2026, 97.0)
    rows = {(r["port_id"], r["month"]): r for r in monthly["rows"]}
    assert len(rows) == 36
    march = rows[(a1, "2026-03")]
    assert (march["uptime_pct"], march["outage_minutes"], march["excluded_minutes"]) == (
        85.0,
        120.0,
        30.0,
    )
    assert rows[(b1, "2026-03")]["uptime_pct"] == 95.0
    assert rows[(a1, "2026-02")]["uptime_pct"] is None
    assert rows[(a1, "2026-02")]["window_minutes"] == 0
    assert rows[(a1, "2026-04")]["uptime_pct"] is None
    assert rows[(a1, "2026-04")]["window_minutes"] == 0

    # Sessions from the recorder.
    code, sessions = await scene.get(f"/api/sessions?station_id={a}")
    assert code == 200
    [session] = sessions
    assert session["port_id"] == a2
    assert session["transaction_id"] == str(started["transactionId"])
    assert session["started_at"] == iso(T0 + 240 * MIN)
    assert session["stopped_at"] == iso(T0 + 300 * MIN)
    assert session["energy_wh"] == 10_000
    assert session["duration_s"] == 3600
    assert session["id_tag"] == "TAG-1"
    code, none = await scene.get(f"/api/sessions?port_id={a1}")
    assert (code, none) == (200, [])

    # The CSV report of March.
    async with scene.client.get(
        scene.api.url + "/api/reports/uptime.csv?month=2026-03",
        headers=scene.api.headers("viewer"),
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        assert resp.headers["Content-Disposition"] == (
            'attachment; filename="evhub-uptime-20260301-20260401.csv"'
        )
        text = await resp.text()
    table = list(csv.DictReader(io.StringIO(text)))
    assert tuple(text.splitlines()[0].split(",")) == CSV_COLUMNS
    whole = {r["port_id"]: r for r in table if r["record"] == "port"}
    assert whole[a1]["uptime_percent"] == "85.0000"
    assert (whole[a1]["t_outage_min"], whole[a1]["t_excluded_min"]) == ("120", "30")
    assert whole[a1]["window_min"] == "600"
    assert whole[a1]["charge_point_id"] == "CP-A"
    assert whole[b1]["uptime_percent"] == "95.0000"
    outages = {(r["port_id"], r["cause"]): r for r in table if r["record"] == "outage"}
    assert outages[(a1, "faulted")]["duration_min"] == "120"
    assert outages[(a1, "faulted")]["excluded_min"] == "30"
    assert outages[(b1, "unavailable")]["duration_min"] == "30"
    [csv_session] = [r for r in table if r["record"] == "session"]
    assert (csv_session["port_id"], csv_session["energy_kwh"]) == (a2, "10.0")

    # Exclusions: listed, removed (audited), and the figures follow.
    code, listed = await scene.get("/api/uptime/exclusions")
    assert code == 200
    assert [x["exclusion_id"] for x in listed] == [created["exclusion_id"]]
    port_a1 = device_registry(hub).get(a1)
    assert port_a1 is not None
    assert listed[0]["target"] == port_a1.name
    path = f"/api/uptime/exclusions/{created['exclusion_id']}"
    code, body = await scene.send("DELETE", path, "viewer")
    assert code == 403
    code, removed = await scene.send("DELETE", path, "operator")
    assert (code, removed["exclusion_id"]) == (200, created["exclusion_id"])
    code, listed = await scene.get("/api/uptime/exclusions")
    assert listed == []
    code, uptime = await scene.get("/api/uptime")
    ports = {p["port_id"]: p for p in uptime["ports"]}
    assert (ports[a1]["uptime_pct"], ports[a1]["excluded_minutes"]) == (80.0, 0.0)

    recorder = get_recorder(hub)
    await recorder.flush()
    audit = await recorder.audit(limit=20)
    actions = [
        (e["action"], e["username"], e["result"])
        for e in audit
        if e["action"].startswith("uptime.")
    ]
    assert ("uptime.add_exclusion", "operator_user", "ok") in actions
    assert ("uptime.remove_exclusion", "operator_user", "ok") in actions
