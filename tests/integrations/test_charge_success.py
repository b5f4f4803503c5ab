"""Did the charge work? Attempts, success and visits from real OCPP chargers, over the API.

Two 1.6 chargers on one site, driven frame by frame under a manual clock: successful
sessions, one with too little energy, one ending in a fault, one with a stop reason that is
no success, a failed attempt that never became a transaction, a driver's retry, a session on
the next day and one still running. Every figure below is worked out by hand.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
import textwrap
import zoneinfo
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import voluptuous as vol

from hub.bootstrap import new_hub
from hub.clock import ManualClock, use_manual_clock
from hub.config import validate_section
from hub.core import Hub
from hub.http import DATA_HTTP
from hub.registry import device_registry
from integrations.alerts import alert_manager
from integrations.charge_success import CONFIG_SCHEMA, rules_from_config
from integrations.charge_success.attempts import SuccessRules, session_attempt
from integrations.charge_success.cli import report_from_config_dir
from integrations.charge_success.error_codes import ErrorMapping, mrec_names
from tests.hub.http.conftest import make_users
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    Connect,
    RawChargePoint,
    connect,
    ws_url,
)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
MIN = 60.0

CONFIG = """
hub:
  time_zone: Europe/Berlin
http:
  server_host: 127.0.0.1
  server_port: 0
recorder:
  auto_purge: false
uptime: false
alerts:
  charge_success_below_target: {target: 50, days: 7, min_attempts: 2, interval_minutes: 1}
charge_success:
  metrics_max_age_seconds: 0
ocpp:
  listeners:
    - port: 0
      host: 127.0.0.1
      security_profile: 0
  authorize_unknown_id_tags: true
  chargers:
    - id: CP-1
      name: Station 1
      site: Depot
    - id: CP-2
      name: Station 2
      site: Depot
"""


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=BERLIN).timestamp()


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class Site:
    """The hub, its clock, the two chargers and an API client."""

    def __init__(self, hub: Hub, clock: ManualClock, cp1: RawChargePoint, cp2: RawChargePoint):
        self.hub = hub
        self.clock = clock
        self.cp = {1: cp1, 2: cp2}
        self.url = hub.data[DATA_HTTP].url
        self.headers: dict[str, str] = {}
        self.tokens: dict[str, str] = {}

    async def goto(self, when: float) -> None:
        assert when >= self.clock.time()
        await self.clock.advance(when - self.clock.time())

    async def status(self, cp: int, connector: int, value: str, error: str = "NoError") -> None:
        await self.cp[cp].call(
            "StatusNotification",
            {
                "connectorId": connector,
                "errorCode": error,
                "status": value,
                "timestamp": utc(self.clock.time()),
            },
        )

    async def start(self, cp: int, connector: int, tag: str) -> int:
        await self.status(cp, connector, "Preparing")
        answer = await self.cp[cp].call(
            "StartTransaction",
            {
                "connectorId": connector,
                "idTag": tag,
                "meterStart": 1000,
                "timestamp": utc(self.clock.time()),
            },
        )
        await self.status(cp, connector, "Charging")
        return int(answer["transactionId"])

    async def stop(self, cp: int, connector: int, tx: int, wh: int, reason: str) -> None:
        await self.cp[cp].call(
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": 1000 + wh,
                "timestamp": utc(self.clock.time()),
                "reason": reason,
            },
        )

    async def free(self, cp: int, connector: int) -> None:
        await self.status(cp, connector, "Finishing")
        await self.status(cp, connector, "Available")

    async def session(
        self, cp: int, connector: int, tag: str, begin: float, wh: int, reason: str = "Local"
    ) -> None:
        """A whole session: 20 minutes of charging from begin, then the port is free."""
        await self.goto(begin)
        tx = await self.start(cp, connector, tag)
        await self.goto(begin + 20 * MIN)
        await self.stop(cp, connector, tx, wh, reason)
        await self.free(cp, connector)

    async def get(self, path: str, status: int = 200) -> Any:
        async with (
            aiohttp.ClientSession() as client,
            client.get(self.url + path, headers=self.headers) as resp,
        ):
            text = await resp.text()
            assert resp.status == status, text
            if resp.content_type == "application/json":
                return await resp.json()
            return text


@pytest.fixture
async def site(tmp_path: Path, connect: Connect) -> AsyncIterator[Site]:  # noqa: F811
    tmp_path.joinpath("configuration.yaml").write_text(textwrap.dedent(CONFIG))
    hub = new_hub(tmp_path)
    clock = use_manual_clock(hub, at(10, 8))
    await hub.start()
    try:
        chargers = []
        for cp_id in ("CP-1", "CP-2"):
            cp = await connect(ws_url(hub, cp_id))
            answer = await cp.call(
                "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"}
            )
            assert answer["status"] == "Accepted"
            chargers.append(cp)
        made = Site(hub, clock, *chargers)
        for cp, ports in ((1, 2), (2, 1)):
            for connector in range(1, ports + 1):
                await made.status(cp, connector, "Available")
        tokens, _ = await make_users(hub)
        made.tokens = tokens
        made.headers = {"Authorization": f"Bearer {tokens['viewer']}"}
        yield made
    finally:
        await hub.stop()


async def play(site: Site) -> None:
    """The scripted two days (Europe/Berlin, March 2026)."""
    # 1. A on CP-1/1: 5 kWh, stopped at the car: success.
    await site.session(1, 1, "TAG-A", at(10, 9), 5000)
    # 2. B on CP-1/2: 0.05 kWh: too little energy.
    await site.session(1, 2, "TAG-B", at(10, 10), 50)
    # 3. C on CP-2/1: 3 kWh, then the port faults 10 s after the stop (GroundFailure, CX002).
    await site.goto(at(10, 11))
    tx = await site.start(2, 1, "TAG-C")
    await site.goto(at(10, 11, 20))
    await site.stop(2, 1, tx, 3000, "Local")
    await site.goto(at(10, 11, 20, 10))
    await site.status(2, 1, "Faulted", "GroundFailure")
    await site.goto(at(10, 11, 30))
    await site.status(2, 1, "Available")
    # 4. Someone plugs into CP-1/2 and leaves two minutes later: no transaction.
    await site.goto(at(10, 12))
    await site.status(1, 2, "Preparing")
    await site.goto(at(10, 12, 2))
    await site.status(1, 2, "Available")
    # 5. D tries CP-1/2 (0.02 kWh, EVDisconnected), and 3 minutes later CP-1/1: 4 kWh.
    await site.session(1, 2, "TAG-D", at(10, 13), 20, "EVDisconnected")
    await site.session(1, 1, "TAG-D", at(10, 13, 23), 4000, "Remote")
    # 6. E on CP-2/1: 6 kWh, but an emergency stop.
    await site.session(2, 1, "TAG-E", at(10, 15), 6000, "EmergencyStop")
    # Next day: F on CP-1/1 succeeds; G on CP-2/1 is still charging.
    await site.session(1, 1, "TAG-F", at(11, 9), 7000)
    await site.goto(at(11, 10))
    await site.start(2, 1, "TAG-G")
    # Every stopped session's fault window is over.
    await site.goto(at(11, 10, 5))


def figures(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "attempts",
        "successful",
        "failed",
        "failed_no_session",
        "failed_low_energy",
        "failed_stop_reason",
        "failed_faulted",
        "in_progress",
        "success_rate",
        "visits",
        "successful_visits",
        "visit_success_rate",
        "attempts_per_visit",
        "error_codes",
    )
    return {key: row[key] for key in keys}


def expect(
    attempts: int,
    successful: int,
    no_session: int = 0,
    low_energy: int = 0,
    stop_reason: int = 0,
    faulted: int = 0,
    in_progress: int = 0,
    visits: int = 0,
    successful_visits: int = 0,
    codes: dict[str, int] | None = None,
) -> dict[str, Any]:
    failed = no_session + low_energy + stop_reason + faulted
    judged = successful + failed
    return {
        "attempts": attempts,
        "successful": successful,
        "failed": failed,
        "failed_no_session": no_session,
        "failed_low_energy": low_energy,
        "failed_stop_reason": stop_reason,
        "failed_faulted": faulted,
        "in_progress": in_progress,
        "success_rate": round(successful / judged, 4) if judged else None,
        "visits": visits,
        "successful_visits": successful_visits,
        "visit_success_rate": round(successful_visits / visits, 4) if visits else None,
        "attempts_per_visit": round(judged / visits, 4) if visits else None,
        "error_codes": codes or {},
    }


WINDOW = "start=2026-03-09T23:00:00Z&end=2026-03-11T23:00:00Z"


async def test_charge_success_over_real_ocpp(site: Site, tmp_path: Path) -> None:
    await play(site)
    devices = device_registry(site.hub)
    station = {
        n: devices.get_by_identifier(("ocpp", f"CP-{n}")).id  # type: ignore[union-attr]
        for n in (1, 2)
    }

    body = await site.get(f"/api/charge_success?{WINDOW}&group=station&by=day&attempts=1")
    assert body["time_zone"] == "Europe/Berlin"
    rows = {(row["name"], row["period"]): figures(row) for row in body["rows"]}
    assert rows == {
        ("Station 1", "2026-03-10"): expect(
            5, 2, no_session=1, low_energy=2, visits=4, successful_visits=2
        ),
        ("Station 1", "2026-03-11"): expect(1, 1, visits=1, successful_visits=1),
        ("Station 2", "2026-03-10"): expect(
            2, 0, stop_reason=1, faulted=1, visits=2, codes={"CX002": 1}
        ),
        ("Station 2", "2026-03-11"): expect(1, 0, in_progress=1),
    }
    assert {row["id"] for row in body["rows"]} == set(station.values())
    assert figures(body["overall"]) == expect(
        9,
        3,
        no_session=1,
        low_energy=2,
        stop_reason=1,
        faulted=1,
        in_progress=1,
        visits=7,
        successful_visits=3,
        codes={"CX002": 1},
    )
    outcomes = [(a["id_tag"], a["outcome"], a["failure"]) for a in body["attempts"]]
    assert outcomes == [
        ("TAG-A", "success", None),
        ("TAG-B", "failed", "low_energy"),
        ("TAG-C", "failed", "faulted"),
        (None, "failed", "no_session"),
        ("TAG-D", "failed", "low_energy"),
        ("TAG-D", "success", None),
        ("TAG-E", "failed", "stop_reason"),
        ("TAG-F", "success", None),
        ("TAG-G", "in_progress", None),
    ]
    faulted = body["attempts"][2]
    assert faulted["error_codes"] == ["GroundFailure"]
    assert faulted["mrec_codes"] == ["CX002"]

    # Per port, one month: CP-1/2 had B, the plug-in without a session and D's first try;
    # D's visit (which succeeded on CP-1/1) counts where it began.
    body = await site.get(f"/api/charge_success?{WINDOW}&group=port&by=month")
    ports = {row["name"]: figures(row) for row in body["rows"]}
    assert len(ports) == 3
    [port_2] = [value for name, value in ports.items() if name.endswith("2")]
    assert port_2 == expect(3, 0, no_session=1, low_energy=2, visits=3, successful_visits=1)

    # The site: the whole month in one row, and the same in the totals.
    body = await site.get(f"/api/charge_success?{WINDOW}&group=site&by=month")
    [row] = body["rows"]
    assert (row["name"], row["period"]) == ("Depot", "2026-03")
    assert figures(row) == figures(body["overall"]) == figures(body["totals"][0])

    # CSV: the same rows.
    text = await site.get(f"/api/charge_success?{WINDOW}&group=station&by=day&format=csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["name"], r["period"], r["attempts"], r["success_rate"]) for r in table] == [
        ("Station 1", "2026-03-10", "5", "0.4"),
        ("Station 1", "2026-03-11", "1", "1.0"),
        ("Station 2", "2026-03-10", "2", "0.0"),
        ("Station 2", "2026-03-11", "1", ""),
    ]
    assert table[2]["error_codes"] == "CX002:1"
    assert table[0]["visits"] == "4"
    assert table[0]["attempts_per_visit"] == "1.25"

    # A station filter.
    body = await site.get(f"/api/charge_success?{WINDOW}&station_id={station[2]}")
    assert {row["name"] for row in body["rows"]} == {"Station 2"}

    # The CLI reads the same database and makes the same CSV.
    found, _ = await report_from_config_dir(
        tmp_path, "2026-03-10", "2026-03-11", "station", "day", now=site.clock.time()
    )
    assert [(r["name"], r["period"], figures(r)) for r in found["rows"]] == [
        (name, period, row) for (name, period), row in sorted(rows.items())
    ]
    # And the command itself, in its own process.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "report",
        "charge-success",
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-11",
        "--group",
        "station",
        "--by",
        "day",
        "--format",
        "json",
        "--config",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert [(r["name"], r["period"]) for r in json.loads(out)["rows"]] == sorted(rows)

    # The alert rule: Station 2 succeeded in 0 of 2 judged attempts (target 50 %); Station 1
    # in 3 of 6, at the target.
    await site.goto(site.clock.time() + 2 * MIN)
    await site.status(1, 1, "Preparing")
    await site.hub.block_till_done()
    alerts = {alert.key: alert for alert in alert_manager(site.hub).open()}
    assert set(alerts) == {f"charge_success:{station[2]}"}
    assert "0 of 2 charge attempts" in alerts[f"charge_success:{station[2]}"].message

    # /metrics: per station over the trailing 30 days, from a cached computation.
    site.headers = {"Authorization": f"Bearer {site.tokens['admin']}"}
    wanted = f'evhub_charge_attempt_success_ratio{{name="Station 1",station_id="{station[1]}"}} 0.5'
    for _ in range(200):
        text = await site.get("/metrics")
        if wanted in text:
            break
        await asyncio.sleep(0.02)
    assert wanted in text
    assert f'evhub_charge_attempts_total{{name="Station 2",station_id="{station[2]}"}} 3.0' in text


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("group=fleet", 400),
        ("by=year", 400),
        ("format=xml", 400),
        ("start=yesterday", 400),
        ("start=2026-03-11T00:00:00Z&end=2026-03-10T00:00:00Z", 400),
        ("start=2020-01-01T00:00:00Z&end=2026-01-01T00:00:00Z", 400),
        ("color=red", 400),
        ("group=port&group=station", 400),
        ("attempts=maybe", 400),
        ("group=site&station_id=x", 400),
        ("station_id=nope", 404),
        ("month=2026-13", 400),
        ("month=2026-03", 200),
    ],
)
async def test_hostile_queries(site: Site, query: str, status: int) -> None:
    body = await site.get(f"/api/charge_success?{query}", status)
    if status != 200:
        assert body["error"] in ("invalid", "not_found")
        assert body["message"]


async def test_needs_a_login(site: Site) -> None:
    site.headers = {}
    await site.get("/api/charge_success", 401)


def test_error_code_mapping() -> None:
    mapping = ErrorMapping()
    assert mapping.mrec("GroundFailure") == "CX002"
    assert mapping.mrec("ConnectorLockFailure") == "CX001"
    assert mapping.mrec("UnderVoltage") == "CX006"
    assert mapping.mrec("InternalError") is None
    assert mapping.mrec("NoError") is None
    assert mapping.mrec(None) is None
    # A charger that sends the MREC as its vendor code; a vendor code wins over OtherError.
    assert mapping.mrec("OtherError", "CX017") == "CX017"
    assert mapping.mrec("GroundFailure", "ACME-E42") == "CX002"
    user = ErrorMapping({"ACME-E42": "CX017", "PowerSwitchFailure": "CX017"})
    assert user.mrec("OtherError", "ACME-E42") == "CX017"
    assert user.mrec("PowerSwitchFailure") == "CX017"
    names = mrec_names()
    assert sorted(names) == [f"CX{n:03d}" for n in range(1, 27)]
    assert names["CX002"] == "GroundFailure"
    assert names["CX026"] == "CutCable"


def test_config_ranges_and_errors() -> None:
    rules = rules_from_config(CONFIG_SCHEMA(None))
    assert rules.min_energy_kwh == 0.1
    assert rules.stop_reasons == {"Local", "Remote", "EVDisconnected", "StoppedByEV"}
    assert (rules.fault_window, rules.visit_window, rules.attempt_timeout) == (60, 600, 600)
    rules = rules_from_config(
        CONFIG_SCHEMA({"visit_window_minutes": 5, "error_codes": {"E42": "cx009"}})
    )
    assert rules.visit_window == 300
    assert rules.errors.mrec("OtherError", "E42") == "CX009"
    for bad in (
        {"min_energy_kwh": -1},
        {"fault_window_seconds": 7200},
        {"visit_window_minutes": "ten"},
        {"stop_reasons": ["Lokal"]},
        {"stop_reasons": []},
        {"error_codes": {"E42": "CX027"}},
        {"what": 1},
    ):
        with pytest.raises(vol.Invalid):
            CONFIG_SCHEMA(bad)
    _, errors = validate_section(CONFIG_SCHEMA, {"error_codes": {"E1": "X1"}}, "charge_success")
    assert errors
    assert errors[0].key == "charge_success.error_codes.E1"


SIMULATED = """
http:
  server_host: 127.0.0.1
  server_port: 0
uptime: false
ocpp:
  listeners:
    - port: 0
      host: 127.0.0.1
      security_profile: 0
  authorize_unknown_id_tags: true
  chargers:
    - id: SIM-1
simulator:
  speed: 50
  stations:
    - id: SIM-1
      version: "{version}"
      scenario: normal
      connectors: 1
      failed_start_rate: 1.0
"""


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_simulator_makes_failed_attempts(tmp_path: Path, version: str) -> None:
    from integrations.charge_success import report

    tmp_path.joinpath("configuration.yaml").write_text(
        textwrap.dedent(SIMULATED).replace("{version}", version)
    )
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        found: dict[str, Any] = {}
        for _ in range(500):
            now = datetime.now(UTC).timestamp()
            found = (await report(hub, now - 3600, now + 60))["overall"]
            if found["failed_no_session"] >= 2:
                break
            await asyncio.sleep(0.02)
        assert found["failed_no_session"] >= 2, found
        assert found["successful"] == 0
    finally:
        await hub.stop()


def test_a_vendor_code_recorded_with_a_status_reaches_the_mrec() -> None:
    """The recorder keeps each status's vendorErrorCode; a session that ends in a fault the
    vendor code names is mapped by the user's entry, over the OCPP code's."""
    rules = SuccessRules(errors=ErrorMapping({"ACME-E42": "CX017"}))
    session = {
        "port_id": "p1",
        "station_id": "s1",
        "transaction_id": "7",
        "id_tag": "TAG",
        "started_at": 100.0,
        "stopped_at": 200.0,
        "energy_wh": 5000.0,
        "stop_reason": "Local",
        "error_code": None,
    }
    rows = [
        {
            "time": 210.0,
            "status": "Faulted",
            "error_code": "OtherError",
            "vendor_error_code": "ACME-E42",
        },
    ]
    attempt = session_attempt(session, rows, rules, now=1000.0)
    assert attempt.outcome == "failed"
    assert attempt.error_codes == ("OtherError",)
    assert attempt.mrec_codes == ("CX017",)
