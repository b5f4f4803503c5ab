"""EV-ChART and CEC exports from real OCPP chargers under a manual clock, over HTTP and CLI.

The script spans a year and a quarter by restarting the hub at later times (the time it is
down counts for no port): station A is in service from June 2025, station B from 10 July
2026 (its first year). Every figure is worked out by hand below.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import textwrap
import zoneinfo
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from hub.core import Hub
from hub.http import DATA_HTTP
from hub.registry import device_registry
from integrations.recorder import get_recorder
from integrations.reports import (
    CEC_INTERVALS,
    CEC_SEMIANNUAL,
    EVHUB_OUTAGES,
    EVHUB_UPTIME,
    MODULE_2,
    MODULE_3,
    MODULE_4,
    PeriodError,
    parse_half,
    parse_quarter,
)
from integrations.uptime import engine_of
from tests.hub.http.conftest import make_users
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    Connect,
    RawChargePoint,
    connect,
    ws_url,
)
from tests.integrations.test_uptime_ocpp import StartHub, boot, goto, manual_hubs, status, until

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
MIN = 60.0
YEAR_MIN = 525_600

# The headers of the EV-ChART Data Input Template, as the issue and the template give them.
EVCHART_2 = (
    "station_id,network_provider,port_id,charger_id,session_id,connector_id,session_start,"
    "session_end,session_error,error_other,energy_kwh,power_kw,payment_method,payment_other"
)
EVCHART_3 = (
    "station_id,network_provider,port_id,uptime_reporting_start,uptime_reporting_end,uptime,"
    "total_outage,total_outage_excl"
)
EVCHART_4 = "station_id,network_provider,port_id,outage_id,outage_duration"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """POSIX seconds of a Los Angeles local time."""
    return datetime(year, month, day, hour, minute, tzinfo=LA).timestamp()


def z(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CONFIG = """
hub:
  time_zone: America/Los_Angeles
http:
  server_host: 127.0.0.1
  server_port: 0
  zeroconf: false
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
    - id: CP-B
      name: Station B
uptime:
  offline_grace: 150
reports:
  network_provider: acme_network
  stations:
    CP-A:
      public_id: NEVI-A
      port_ids: {1: NEVI-A-1, 2: NEVI-A-2}
"""


@pytest.fixture
async def start_hub(tmp_path: Path) -> AsyncIterator[StartHub]:
    async for start in manual_hubs(tmp_path, CONFIG):
        yield start


async def meter(cp: RawChargePoint, tx: int, when: float, watts: float, wh: float) -> None:
    await cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": z(when),
                    "sampledValue": [
                        {"value": str(watts), "measurand": "Power.Active.Import", "unit": "W"},
                        {
                            "value": str(wh),
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        },
                    ],
                }
            ],
        },
    )


def device(hub: Hub, ident: str) -> str:
    found = device_registry(hub).get_by_identifier(("ocpp", ident))
    assert found is not None, ident
    return found.id


def table(text: str) -> tuple[str, list[dict[str, str]]]:
    header = text.split("\n", 1)[0]
    return header, list(csv.DictReader(io.StringIO(text)))


def pct(window_min: float, outage: float, excluded: float) -> float:
    return (window_min - (outage - excluded)) / window_min * 100


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", "report", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    return await asyncio.get_running_loop().run_in_executor(None, run)


async def test_evchart_and_cec_exports_over_real_ocpp(
    start_hub: StartHub,
    connect: Connect,  # noqa: F811
    tmp_path: Path,
) -> None:
    # June 2025: station A comes into service (its two ports), then the hub stops.
    hub, clock = await start_hub(at(2025, 6, 15, 12))
    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    await hub.block_till_done()
    await hub.stop()

    # 10 July 2026: A is back, B comes into service.
    hub, clock = await start_hub(at(2026, 7, 10, 8))
    engine = engine_of(hub)
    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    cp_b = await connect(ws_url(hub, "CP-B"))
    await boot(cp_b, 1)
    a2, b1 = device(hub, "CP-A:2"), device(hub, "CP-B:1")

    # 09:00 A1 faulted; 09:30-10:30 station A offline: A1's outages overlap (09:00-10:30 is
    # 90 minutes, not 60 + 90); A2 offline 60 minutes.
    await goto(clock, at(2026, 7, 10, 9))
    await status(cp_a, 1, "Faulted", "GroundFailure")
    await goto(clock, at(2026, 7, 10, 9, 30))
    await cp_a.close()
    await until(lambda: any(o.cause == "offline" for o in engine.open_outages()), "A offline")
    await goto(clock, at(2026, 7, 10, 10, 30))
    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    await hub.block_till_done()
    assert engine.open_outages() == []

    # 11:00 two sessions: A1 charges 5 kWh at up to 7 kW; B1 fails with a ground fault at
    # 11:05 (B1 down until 11:10: 5 minutes).
    await goto(clock, at(2026, 7, 10, 11))
    await status(cp_a, 1, "Preparing")
    tx_a = (
        await cp_a.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": z(clock.time())},
        )
    )["transactionId"]
    await status(cp_a, 1, "Charging")
    await meter(cp_a, tx_a, clock.time(), 7000, 1000)
    await status(cp_b, 1, "Preparing")
    tx_b = (
        await cp_b.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": z(clock.time())},
        )
    )["transactionId"]
    await status(cp_b, 1, "Charging")
    await meter(cp_b, tx_b, clock.time(), 11000, 0)
    await goto(clock, at(2026, 7, 10, 11, 5))
    await status(cp_b, 1, "Faulted", "GroundFailure")
    await goto(clock, at(2026, 7, 10, 11, 6))
    await cp_b.call(
        "StopTransaction",
        {"transactionId": tx_b, "meterStop": 500, "timestamp": z(clock.time()), "reason": "Other"},
    )
    await goto(clock, at(2026, 7, 10, 11, 10))
    await status(cp_b, 1, "Available")
    await goto(clock, at(2026, 7, 10, 11, 30))
    await cp_a.call(
        "StopTransaction",
        {"transactionId": tx_a, "meterStop": 6000, "timestamp": z(clock.time()), "reason": "Local"},
    )
    await status(cp_a, 1, "Finishing")
    await status(cp_a, 1, "Available")

    # 12:00-13:00 A2 faulted by a vehicle (excluded under NEVI, not CEC); 12:00-14:00 B1
    # vandalised (excluded under both).
    await goto(clock, at(2026, 7, 10, 12))
    await status(cp_a, 2, "Faulted", "OtherError")
    await status(cp_b, 1, "Faulted", "OtherError")
    for port, hours, reason in ((a2, 13, "vehicle"), (b1, 14, "vandalism")):
        await hub.services.call(
            "uptime",
            "add_exclusion",
            {
                "device_id": port,
                "start": at(2026, 7, 10, 12),
                "end": at(2026, 7, 10, hours),
                "reason": reason,
            },
        )
    await goto(clock, at(2026, 7, 10, 13))
    await status(cp_a, 2, "Available")
    await goto(clock, at(2026, 7, 10, 14))
    await status(cp_b, 1, "Available")
    await goto(clock, at(2026, 7, 10, 14, 30))
    await hub.stop()

    # 30 September 23:00: both back; A1 faulted 23:30 - 1 October 00:30 (30 minutes in Q3,
    # 30 in Q4).
    hub, clock = await start_hub(at(2026, 9, 30, 23))
    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    cp_b = await connect(ws_url(hub, "CP-B"))
    await boot(cp_b, 1)
    await goto(clock, at(2026, 9, 30, 23, 30))
    await status(cp_a, 1, "Faulted", "GroundFailure")
    await goto(clock, at(2026, 10, 1, 0, 30))
    await status(cp_a, 1, "Available")
    now = at(2026, 10, 1, 1)
    await goto(clock, now)
    await get_recorder(hub).flush()

    tokens, _ids = await make_users(hub)
    url = hub.data[DATA_HTTP].url

    async def get(path: str, role: str | None = "viewer") -> tuple[int, str]:
        headers = {} if role is None else {"Authorization": f"Bearer {tokens[role]}"}
        async with (
            aiohttp.ClientSession() as client,
            client.get(url + path, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    downloads: dict[str, str] = {}
    for module in ("2", "3", "4", "outages", "uptime"):
        code, text = await get(f"/api/reports/evchart.csv?quarter=2026Q3&module={module}")
        assert code == 200, text
        downloads[module] = text

    # ---- Module 2: one row per session, exactly the template's headers --------------------
    header, rows = table(downloads["2"])
    assert header == EVCHART_2 == ",".join(MODULE_2)
    assert len(rows) == 2
    sessions = {r["charger_id"]: r for r in rows}
    assert sessions["CP-A"] == {
        "station_id": "NEVI-A",
        "network_provider": "acme_network",
        "port_id": "NEVI-A-1",
        "charger_id": "CP-A",
        "session_id": str(tx_a),
        "connector_id": "1",
        "session_start": z(at(2026, 7, 10, 11)),
        "session_end": z(at(2026, 7, 10, 11, 30)),
        "session_error": "",
        "error_other": "",
        "energy_kwh": "5",
        "power_kw": "7",
        "payment_method": "",
        "payment_other": "",
    }
    # Station B has no public id configured: its charge point id and connector number.
    assert (sessions["CP-B"]["station_id"], sessions["CP-B"]["port_id"]) == ("CP-B", "1")
    assert sessions["CP-B"]["session_error"] == "GroundFailure"
    assert (sessions["CP-B"]["energy_kwh"], sessions["CP-B"]["power_kw"]) == ("0.5", "11")

    # ---- Module 3: per port and month-end, trailing 12 months; blank uptime in year one ------
    header, rows = table(downloads["3"])
    assert header == EVCHART_3 == ",".join(MODULE_3)
    assert len(rows) == 3 * 3
    month_ends = [at(2026, 8, 1), at(2026, 9, 1), at(2026, 10, 1)]
    month_starts = [at(2026, 7, 1), at(2026, 8, 1), at(2026, 9, 1)]
    by_port: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_port.setdefault(row["port_id"], []).append(row)
    # A1: 90 minutes (merged) as of July and August, 120 as of September's end.
    a1_outage = [90, 90, 120]
    for row, start, end, outage in zip(
        by_port["NEVI-A-1"], month_starts, month_ends, a1_outage, strict=True
    ):
        assert row["station_id"] == "NEVI-A"
        assert row["network_provider"] == "acme_network"
        assert (row["uptime_reporting_start"], row["uptime_reporting_end"]) == (z(start), z(end))
        assert row["uptime"] == f"{pct(YEAR_MIN, outage, 0):.2f}"
        assert (row["total_outage"], row["total_outage_excl"]) == (f"{outage:.2f}", "0.00")
    # A2: 120 minutes down, 60 of them excluded (the vehicle) under NEVI.
    for row in by_port["NEVI-A-2"]:
        assert row["uptime"] == f"{pct(YEAR_MIN, 120, 60):.2f}" == "99.99"
        assert (row["total_outage"], row["total_outage_excl"]) == ("120.00", "60.00")
    # B1, in its first 12 months: uptime blank, minutes over its days in service.
    for row in by_port["1"]:
        assert row["station_id"] == "CP-B"
        assert row["uptime"] == ""
        assert (row["total_outage"], row["total_outage_excl"]) == ("125.00", "120.00")

    # evhub's uptime CSV beside it: the same month-ends under both rules, B1's figure over its
    # days in service, flagged first_year.
    header, rows = table(downloads["uptime"])
    assert header == ",".join(EVHUB_UPTIME)
    b1_july = next(r for r in rows if r["port_id"] == "1")
    window = (at(2026, 8, 1) - at(2026, 7, 10, 8)) / MIN
    assert b1_july["first_year"] == "true"
    assert b1_july["window_min"] == f"{window:g}"
    assert b1_july["nevi_uptime_percent"] == f"{pct(window, 125, 120):.4f}"
    assert b1_july["cec_uptime_percent"] == f"{pct(window, 125, 120):.4f}"
    a2_july = next(r for r in rows if r["port_id"] == "NEVI-A-2")
    assert a2_july["first_year"] == "false"
    assert a2_july["window_min"] == str(YEAR_MIN)
    assert (a2_july["nevi_t_excluded_min"], a2_july["cec_t_excluded_min"]) == ("60", "0")
    assert a2_july["cec_uptime_percent"] == f"{pct(YEAR_MIN, 120, 0):.4f}"

    # ---- Module 4: one row per merged outage, minutes never doubled ---------------------------
    header, rows = table(downloads["4"])
    assert header == EVCHART_4 == ",".join(MODULE_4)
    got = sorted((r["port_id"], r["outage_id"], r["outage_duration"]) for r in rows)
    assert got == sorted(
        [
            ("NEVI-A-1", z(at(2026, 7, 10, 9)), "90.00"),
            ("NEVI-A-1", z(at(2026, 9, 30, 23, 30)), "30.00"),
            ("NEVI-A-2", z(at(2026, 7, 10, 9, 30)), "60.00"),
            ("NEVI-A-2", z(at(2026, 7, 10, 12)), "60.00"),
            ("1", z(at(2026, 7, 10, 11, 5)), "5.00"),
            ("1", z(at(2026, 7, 10, 12)), "120.00"),
        ]
    )
    assert all(r["network_provider"] == "acme_network" for r in rows)
    header, rows = table(downloads["outages"])
    assert header == ",".join(EVHUB_OUTAGES)
    assert len(rows) == 6
    merged = next(r for r in rows if r["outage_id"] == z(at(2026, 7, 10, 9)))
    assert merged["causes"] == "faulted;offline"
    assert len(merged["evhub_outage_ids"].split(";")) == 2
    vehicle = next(r for r in rows if r["port_id"] == "NEVI-A-2" and r["exclusion_reasons"])
    assert (vehicle["exclusion_reasons"], vehicle["nevi_excluded_min"]) == ("vehicle", "60.00")
    assert vehicle["cec_excluded_min"] == "0.00"
    vandal = next(r for r in rows if r["exclusion_reasons"] == "vandalism")
    assert (vandal["nevi_excluded_min"], vandal["cec_excluded_min"]) == ("120.00", "120.00")
    # The outage across the quarter's end: its other 30 minutes are in Q4, same outage_id.
    code, text = await get("/api/reports/evchart.csv?quarter=2026Q4&module=4")
    assert code == 200
    _header, rows = table(text)
    assert [(r["outage_id"], r["outage_duration"]) for r in rows] == [
        (z(at(2026, 9, 30, 23, 30)), "30.00")
    ]
    _header, rows = table((await get("/api/reports/evchart.csv?quarter=2026Q4&module=3"))[1])
    assert rows == []  # no month of Q4 is over

    # ---- CEC: the semiannual report and the 15-minute data ------------------------------------
    code, text = await get("/api/reports/cec.csv?half=2026H2")
    assert code == 200, text
    header, rows = table(text)
    assert header == ",".join(CEC_SEMIANNUAL)
    cec = {r["port_id"]: r for r in rows}
    half = (now - at(2026, 7, 1)) / MIN
    assert cec["NEVI-A-1"]["window_min"] == f"{half:g}"
    assert cec["NEVI-A-1"]["t_outage_min"] == "150"  # 90 + 60, 30 of it in October
    assert cec["NEVI-A-2"]["cec_t_excluded_min"] == "0"  # a vehicle is no CEC exclusion
    assert cec["NEVI-A-2"]["cec_uptime_percent"] == f"{pct(half, 120, 0):.4f}"
    b_window = (now - at(2026, 7, 10, 8)) / MIN
    assert cec["1"]["window_min"] == f"{b_window:g}"
    assert (cec["1"]["excluded_vandalism_min"], cec["1"]["cec_t_excluded_min"]) == ("120", "120")
    assert cec["1"]["excluded_maintenance_min"] == "0"
    assert all(r["meets_standard"] == "yes" and r["standard_percent"] == "97" for r in rows)
    assert cec["NEVI-A-2"]["intervals_down"] == "8"  # 09:30-10:30 and 12:00-13:00
    assert cec["1"]["intervals_excluded"] == "8"  # 12:00-14:00, all of it excluded

    code, text = await get("/api/reports/cec_intervals.csv?half=2026H2")
    assert code == 200, text
    header, rows = table(text)
    assert header == ",".join(CEC_INTERVALS)
    per_port: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        per_port.setdefault(row["port_id"], []).append(row)
    assert len(per_port["NEVI-A-1"]) == len(per_port["NEVI-A-2"]) == half / 15
    assert len(per_port["1"]) == b_window / 15
    a2_rows = {r["interval_start"]: r for r in per_port["NEVI-A-2"]}
    noon = a2_rows[z(at(2026, 7, 10, 12))]
    assert (noon["status"], noon["outage_s"], noon["excluded_s"]) == ("down", "900", "0")
    b_rows = {r["interval_start"]: r for r in per_port["1"]}
    assert b_rows[z(at(2026, 7, 10, 13, 45))]["status"] == "excluded"
    assert b_rows[z(at(2026, 7, 10, 11))]["outage_min"] == "5"  # 11:05-11:10

    # ---- Hostile queries and roles ------------------------------------------------------------
    for path in (
        "/api/reports/evchart.csv?quarter=2026Q5&module=2",
        "/api/reports/evchart.csv?quarter=2026-07&module=2",
        "/api/reports/evchart.csv?quarter=2026Q3&module=5",
        "/api/reports/evchart.csv?quarter=2026Q3",
        "/api/reports/evchart.csv?quarter=2026Q3&quarter=2026Q4&module=2",
        "/api/reports/evchart.csv?quarter=2026Q3&module=2&x=1",
        "/api/reports/cec.csv?half=2026H3",
        "/api/reports/cec.csv?half=0001H1",
        "/api/reports/cec_intervals.csv?half=2026H1&station_id=nope",
    ):
        code, text = await get(path)
        assert code in (400, 404), (path, code)
        assert "message" in text
    code, _text = await get("/api/reports/cec.csv?half=2026H2", role=None)
    assert code == 401
    await hub.stop()

    # ---- The same from the command line, with the hub stopped --------------------------------
    out = tmp_path / "out"
    result = await cli("evchart", "--quarter", "2026Q3", "--output", str(out), "-c", str(tmp_path))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "evchart-2026Q3-module2-sessions.csv",
        "evchart-2026Q3-module3-uptime.csv",
        "evchart-2026Q3-module4-outages.csv",
        "evhub-2026Q3-outages.csv",
        "evhub-2026Q3-uptime.csv",
    ]
    for name, module in (
        ("evchart-2026Q3-module2-sessions.csv", "2"),
        ("evchart-2026Q3-module3-uptime.csv", "3"),
        ("evchart-2026Q3-module4-outages.csv", "4"),
        ("evhub-2026Q3-outages.csv", "outages"),
        ("evhub-2026Q3-uptime.csv", "uptime"),
    ):
        assert (out / name).read_text() == downloads[module], name
    result = await cli("evchart", "--quarter", "2026Q3", "--module", "4", "-c", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == downloads["4"]
    result = await cli(
        "cec", "--half", "2026H2", "--intervals", "-o", str(out), "-c", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    _header, rows = table((out / "cec-2026H2-semiannual.csv").read_text())
    assert {r["port_id"]: r["t_outage_min"] for r in rows} == {
        "NEVI-A-1": "150",
        "NEVI-A-2": "120",
        "1": "125",
    }
    header, _rows = table((out / "cec-2026H2-intervals.csv").read_text())
    assert header == ",".join(CEC_INTERVALS)

    # Hostile arguments: exit 2 with the reason.
    for args in (
        ("evchart", "--quarter", "2026Q0", "-c", str(tmp_path)),
        ("evchart", "--quarter", "Q3-2026", "--module", "2", "-c", str(tmp_path)),
        ("evchart", "--quarter", "2026Q3", "--module", "5", "-c", str(tmp_path)),
        ("evchart", "--quarter", "2026Q3", "-c", str(tmp_path)),  # neither module nor output
        ("cec", "--half", "2026H3", "-c", str(tmp_path)),
    ):
        result = await cli(*args)
        assert result.returncode == 2, args
        assert "evhub" in result.stderr or "error" in result.stderr


async def test_a_bad_reports_section_names_file_line_and_key(tmp_path: Path) -> None:
    tmp_path.joinpath("configuration.yaml").write_text(
        textwrap.dedent(
            """\
            hub:
              time_zone: UTC
            reports:
              network_provider: acme
              stations:
                CP-A: {public_id: SAME}
                CP-B:
                  public_id: SAME
                  port_ids: {0: X}
            """
        )
    )
    from hub.bootstrap import check_config

    errors = check_config(tmp_path)
    assert errors, "expected errors"
    text = "\n".join(str(e) for e in errors)
    assert "configuration.yaml:9" in text
    assert "reports.stations.CP-B.port_ids" in text
    result = await cli("evchart", "--quarter", "2026Q3", "--module", "2", "-c", str(tmp_path))
    assert result.returncode == 1
    assert "configuration.yaml" in result.stderr


def test_periods_parse_and_refuse() -> None:
    q3 = parse_quarter("2026Q3", LA)
    assert (q3.start, q3.end) == (at(2026, 7, 1), at(2026, 10, 1))
    assert [m[0] for m in q3.months] == [at(2026, 7, 1), at(2026, 8, 1), at(2026, 9, 1)]
    h1 = parse_half("2026h1", LA)
    assert (h1.label, h1.start, h1.end) == ("2026H1", at(2026, 1, 1), at(2026, 7, 1))
    for bad in ("2026Q5", "2026Q", "26Q1", "x" * 1000, "0999Q1"):
        with pytest.raises(PeriodError):
            parse_quarter(bad, LA)
    for bad in ("2026H0", "2026H3", "2026-H1", "", "9999H1"):
        with pytest.raises(PeriodError):
            parse_half(bad, LA)
