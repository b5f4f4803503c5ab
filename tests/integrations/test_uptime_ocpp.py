"""A scripted month through the real OCPP integration under a manual clock, and restarts.

Every figure is checked against values worked out by hand below, to the minute.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import new_hub
from hub.clock import ManualClock, use_manual_clock
from hub.const import EVENT_EXCLUSION, EVENT_OUTAGE
from hub.core import Event, Hub
from hub.registry import device_registry
from integrations.alerts import alert_manager
from integrations.recorder import get_recorder
from integrations.uptime import engine_of
from integrations.uptime.report import port_intervals, report_csv, report_json
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    Connect,
    RawChargePoint,
    connect,
    ws_url,
)
from tests.tmpfs import memory_dir

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
MIN = 60.0


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """POSIX seconds of a local (Los Angeles) time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=LA).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, LA).isoformat()


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, zoneinfo.ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")


CONFIG = """
hub:
  time_zone: America/Los_Angeles
http:
  server_host: 127.0.0.1
  server_port: 0
recorder:
  auto_purge: false
alerts:
  uptime_below_target: {target: 99.9}
ocpp:
  listeners:
    - port: 0
      host: 127.0.0.1
      security_profile: 0
  # The script's chargers speak only when it says so, across jumps of days: the hub pings
  # them each heartbeat interval of its (manual) clock and they answer; an hour keeps a
  # month to some 700 of those sweeps instead of 43,000.
  heartbeat_interval: 3600
  # ... and answer those pings (a month's in well under a minute of real time) faster than
  # the default limit of 20 messages a second, which counts real seconds.
  rate_limit: {rate: 1000, burst: 1000}
  id_tags: [TAG-1]
  chargers:
    - id: CP-A
      name: Station A
    - id: CP-B
      name: Station B
    - id: CP-C
      name: Station C
uptime:
  offline_grace: 150
  no_power: {min_power_w: 500, after_minutes: 15}
  stations:
    CP-B: {operating_hours: "06:00-22:00"}
"""

StartHub = Callable[[float], Awaitable[tuple[Hub, ManualClock]]]


@pytest.fixture
def tmp_path(tmp_path: Path) -> Iterator[Path]:
    """In memory here (tests.tmpfs): a month of minutes saves the uptime store 44,640 times."""
    yield from memory_dir(tmp_path)


@pytest.fixture
async def start_hub(tmp_path: Path) -> AsyncIterator[StartHub]:
    """Start hubs on the same config dir, each on a manual clock starting where told."""
    async for start in manual_hubs(tmp_path, CONFIG):
        yield start


async def manual_hubs(tmp_path: Path, config: str) -> AsyncIterator[StartHub]:
    """Start hubs on one config dir with this configuration, each on a manual clock; stop
    them when done (a fixture's body)."""
    tmp_path.joinpath("configuration.yaml").write_text(textwrap.dedent(config))
    hubs: list[Hub] = []

    async def start(clock_start: float) -> tuple[Hub, ManualClock]:
        hub = new_hub(tmp_path)
        manual = use_manual_clock(hub, clock_start)
        await hub.start()
        hubs.append(hub)
        return hub, manual

    yield start
    for hub in hubs:
        if hub.is_running:
            await hub.stop()


async def goto(clock: ManualClock, when: float) -> None:
    now = clock.time()
    assert when >= now, f"the script goes back in time: {iso(when)} < {iso(now)}"
    await clock.advance(when - now)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def boot(cp: RawChargePoint, ports: int) -> None:
    answer = await cp.call(
        "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"}
    )
    assert answer["status"] == "Accepted"
    for number in range(1, ports + 1):
        await status(cp, number, "Available")


async def status(cp: RawChargePoint, connector: int, value: str, error: str = "NoError") -> None:
    await cp.call(
        "StatusNotification", {"connectorId": connector, "errorCode": error, "status": value}
    )


async def meter(
    cp: RawChargePoint, connector: int, tx: int, when: float, watts: float, wh: float
) -> None:
    await cp.call(
        "MeterValues",
        {
            "connectorId": connector,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": utc(when),
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


def ids(hub: Hub) -> dict[str, str]:
    devices = device_registry(hub)
    found = {}
    for key, ident in (
        ("A", "CP-A"),
        ("B", "CP-B"),
        ("C", "CP-C"),
        ("A1", "CP-A:1"),
        ("A2", "CP-A:2"),
        ("B1", "CP-B:1"),
        ("C1", "CP-C:1"),
    ):
        device = devices.get_by_identifier(("ocpp", ident))
        if device is not None:
            found[key] = device.id
    return found


# A month of real OCPP traffic, minute by minute where it matters: about 40 s on a quiet
# machine (twice that with the config dir on disk), so a margin over the suite's default
# 120 s for a busy one.
@pytest.mark.timeout(360)
async def test_scripted_month_over_real_ocpp(
    start_hub: StartHub,
    connect: Connect,  # noqa: F811
    tmp_path: Path,
) -> None:
    t0 = at(1, 25)
    hub, clock = await start_hub(t0)
    outage_events: list[dict[str, Any]] = []
    exclusion_events: list[dict[str, Any]] = []
    uptime_events: list[dict[str, Any]] = []
    hub.bus.listen(EVENT_OUTAGE, lambda e: outage_events.append(dict(e.data)))
    hub.bus.listen(EVENT_EXCLUSION, lambda e: exclusion_events.append(dict(e.data)))
    hub.bus.listen("uptime_updated", lambda e: uptime_events.append(dict(e.data)))
    engine = engine_of(hub)

    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    cp_b = await connect(ws_url(hub, "CP-B"))
    await boot(cp_b, 1)
    dev = ids(hub)

    # Jan 26 10:07-13:31: A1 faulted (204 min), edges off the 15-minute grid.
    await goto(clock, at(1, 26, 10, 7))
    await status(cp_a, 1, "Faulted", "GroundFailure")
    await goto(clock, at(1, 26, 13, 31))
    await status(cp_a, 1, "Available")
    # Jan 27 08:00-09:00: A1 unavailable, not on purpose (60 min).
    await goto(clock, at(1, 27, 8))
    await status(cp_a, 1, "Unavailable")
    await goto(clock, at(1, 27, 9))
    await status(cp_a, 1, "Available")

    # Jan 28 12:00-18:00: the operator locks A2 for maintenance: an outage (360 min),
    # excluded under both rules (CEC: within the 72 h a year).
    await goto(clock, at(1, 28, 12))
    await hub.services.call(
        "charger",
        "set_availability",
        {"available": False, "reason": "maintenance"},
        target={"device_id": dev["A2"]},
    )
    assert await cp_a.wait_for_call("ChangeAvailability") == {
        "connectorId": 2,
        "type": "Inoperative",
    }
    await status(cp_a, 2, "Unavailable")
    await goto(clock, at(1, 28, 18))
    await hub.services.call(
        "charger", "set_availability", {"available": True}, target={"device_id": dev["A2"]}
    )
    await status(cp_a, 2, "Available")

    # Jan 31 22:00 - Feb 1 03:00: station A offline (300 min on each port, 120 in January).
    await goto(clock, at(1, 31, 22))
    await cp_a.close()
    await until(
        lambda: any(o.cause == "offline" for o in engine.open_outages()), "station A offline"
    )
    await goto(clock, at(2, 1, 3))
    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    await hub.block_till_done()
    assert engine.open_outages() == []

    # Feb 2 08:00 - Feb 5 08:00: B1 faulted for planned maintenance (72 h). Station B is
    # open 06:00-22:00: 3 nights x 8 h outside hours, the other 48 h use the maintenance cap.
    await goto(clock, at(2, 2, 8))
    await status(cp_b, 1, "Faulted", "OtherError")
    first_maintenance = await hub.services.call(
        "uptime",
        "add_exclusion",
        {
            "device_id": dev["B1"],
            "start": "2026-02-02T08:00:00",
            "end": "2026-02-05T08:00:00",
            "reason": "maintenance",
            "note": "pump replacement",
        },
    )
    await goto(clock, at(2, 5, 8))
    await status(cp_b, 1, "Available")

    # Feb 7 10:00-11:00: a session on A1; power below 500 W from 10:30 to 10:50 (20 min
    # > 15): a no_power outage of 20 minutes.
    await goto(clock, at(2, 7, 10))
    await status(cp_a, 1, "Preparing")
    started = await cp_a.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": utc(clock.time())},
    )
    tx_a = started["transactionId"]
    await status(cp_a, 1, "Charging")
    await meter(cp_a, 1, tx_a, clock.time(), 7000, 1000)
    await goto(clock, at(2, 7, 10, 30))
    await meter(cp_a, 1, tx_a, clock.time(), 100, 4500)
    await goto(clock, at(2, 7, 10, 44))
    assert engine.open_outages() == []  # 14 minutes low: not yet
    await goto(clock, at(2, 7, 10, 46))
    [low] = engine.open_outages()
    assert (low.cause, low.start, low.port_id) == ("no_power", at(2, 7, 10, 30), dev["A1"])
    await goto(clock, at(2, 7, 10, 50))
    await meter(cp_a, 1, tx_a, clock.time(), 7000, 4530)
    await goto(clock, at(2, 7, 11))
    await cp_a.call(
        "StopTransaction",
        {
            "transactionId": tx_a,
            "meterStop": 7000,
            "timestamp": utc(clock.time()),
            "reason": "Local",
        },
    )
    await status(cp_a, 1, "Finishing")
    await status(cp_a, 1, "Available")

    # Feb 10: a session on B1 fails with a ground fault at 10:00; B1 is down until Feb 11
    # 20:00 (34 h) under maintenance: 8 h outside hours, 24 h left in the yearly 72 h cap,
    # so the last 2 h (18:00-20:00) count.
    await goto(clock, at(2, 10, 9))
    await status(cp_b, 1, "Preparing")
    started = await cp_b.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": utc(clock.time())},
    )
    tx_b = started["transactionId"]
    await status(cp_b, 1, "Charging")
    await meter(cp_b, 1, tx_b, clock.time(), 11000, 0)
    await goto(clock, at(2, 10, 10))
    await status(cp_b, 1, "Faulted", "GroundFailure")
    await goto(clock, at(2, 10, 10, 5))
    await cp_b.call(
        "StopTransaction",
        {
            "transactionId": tx_b,
            "meterStop": 2500,
            "timestamp": utc(clock.time()),
            "reason": "Other",
        },
    )
    await hub.services.call(
        "uptime",
        "add_exclusion",
        {
            "device_id": dev["B1"],
            "start": at(2, 10, 10),
            "end": at(2, 11, 20),
            "reason": "maintenance",
        },
    )
    await goto(clock, at(2, 11, 20))
    await status(cp_b, 1, "Available")

    # Feb 12 - Feb 24: A2 vandalised, down 12 days; the vandalism exclusion is capped at
    # 10 days. A utility power cut on station A (Feb 20 00:00-06:00) is excluded first
    # (uncapped) on A2, and counts zero on A1, which is up.
    await goto(clock, at(2, 12))
    await status(cp_a, 2, "Faulted", "OtherError")
    await hub.services.call(
        "uptime",
        "add_exclusion",
        {
            "entity_id": engine._sensor_entity(dev["A2"]),
            "start": "2026-02-12T00:00:00-08:00",
            "end": "2026-02-24T00:00:00-08:00",
            "reason": "vandalism",
            "note": "cable cut",
        },
    )
    cut = await hub.services.call(
        "uptime",
        "add_exclusion",
        {
            "device_id": dev["A"],
            "start": "2026-02-20T00:00:00",
            "end": "2026-02-20T06:00:00",
            "reason": "utility_power",
        },
    )
    assert cut["port_id"] is None
    assert cut["station_id"] == dev["A"]
    # Feb 15 23:00 - Feb 16 01:00: B1 faulted entirely outside its hours (all excluded).
    await goto(clock, at(2, 15, 23))
    await status(cp_b, 1, "Faulted", "OtherError")
    await goto(clock, at(2, 16, 1))
    await status(cp_b, 1, "Available")
    # A wrong exclusion, added and removed: counts nothing.
    wrong = await hub.services.call(
        "uptime",
        "add_exclusion",
        {"device_id": dev["A"], "start": at(2, 17), "end": at(2, 27), "reason": "utility_power"},
    )
    await hub.services.call("uptime", "remove_exclusion", {"exclusion_id": wrong["exclusion_id"]})
    await goto(clock, at(2, 24))
    await status(cp_a, 2, "Available")
    end = at(2, 25)
    await goto(clock, end)
    await hub.block_till_done()

    # ---- Hand-computed figures, in minutes -------------------------------------------------
    window = 31 * 24 * 60  # Jan 25 - Feb 25
    jan, feb = 7 * 24 * 60, 24 * 24 * 60
    # NEVI: no caps; time outside operating hours is excluded.
    expected = {
        # port: (T_outage, T_excluded, Jan outage, Jan excluded, Feb outage, Feb excluded)
        "A1": (204 + 60 + 300 + 20, 0, 204 + 60 + 120, 0, 180 + 20, 0),
        "A2": (360 + 300 + 17280, 360 + 17280, 360 + 120, 360, 180 + 17280, 17280),
        "B1": (4320 + 2040 + 120, 4320 + 2040 + 120, 0, 0, 6480, 6480),
    }
    # CEC: vandalism at most 10 days (A2: 6 h utility power first, then 10 days), planned
    # maintenance at most 72 h a year (B1: the first 72 h use it all, the Feb 10 outage gets
    # none), time outside operating hours not excluded (B1's 2 h at night count).
    cec_excluded = {"A1": 0, "A2": 360 + 360 + 14400, "B1": 4320}

    # Outage events: each started (end None) and ended, with the right causes.
    closed = [o for o in outage_events if o["end"] is not None]
    assert len([o for o in outage_events if o["end"] is None]) == len(closed) == 10
    by_port: dict[str, list[tuple[str, float, float]]] = {}
    for item in closed:
        by_port.setdefault(item["port_id"], []).append((item["cause"], item["start"], item["end"]))
    assert sorted(by_port[dev["A1"]], key=lambda x: x[1]) == [
        ("faulted", at(1, 26, 10, 7), at(1, 26, 13, 31)),
        ("unavailable", at(1, 27, 8), at(1, 27, 9)),
        ("offline", at(1, 31, 22), at(2, 1, 3)),
        ("no_power", at(2, 7, 10, 30), at(2, 7, 10, 50)),
    ]
    assert sorted(by_port[dev["A2"]], key=lambda x: x[1]) == [
        ("unavailable", at(1, 28, 12), at(1, 28, 18)),
        ("offline", at(1, 31, 22), at(2, 1, 3)),
        ("faulted", at(2, 12), at(2, 24)),
    ]
    assert [x[0] for x in sorted(by_port[dev["B1"]], key=lambda x: x[1])] == ["faulted"] * 3
    # The lock's (opened, then closed at the unlock), four kept, one added and removed.
    assert len(exclusion_events) == 8
    assert exclusion_events[-1]["deleted"] is True
    lock = [e for e in exclusion_events if e["port_id"] == dev["A2"]][:2]
    assert [(e["reason"], e["start"], e["end"]) for e in lock] == [
        ("maintenance", at(1, 28, 12), None),
        ("maintenance", at(1, 28, 12), at(1, 28, 18)),
    ]
    assert exclusion_events[2]["reason"] == "maintenance"
    assert exclusion_events[2]["start"] == at(2, 2, 8)
    assert exclusion_events[2]["exclusion_id"] == first_maintenance["exclusion_id"]

    # Live sensors: trailing 12 months clipped to the ports' in-service start (their first
    # status at t0: W = 31 days = 44,640 minutes, not 525,600) and month to date (Feb 1-25).
    for key, (t_out, t_exc, _jo, _je, feb_out, feb_exc) in expected.items():
        state = hub.states.get(engine._sensor_entity(dev[key]))
        assert state is not None
        assert float(state.state) == round((window - (t_out - t_exc)) / window * 100, 3), key
        assert state.attributes["in_service"] == utc(t0)
        assert state.attributes["t_outage_min"] == t_out
        assert state.attributes["t_excluded_min"] == t_exc
        assert state.attributes["month_t_outage_min"] == feb_out
        assert state.attributes["month_t_excluded_min"] == feb_exc
        assert state.attributes["month_to_date"] == round(
            (feb - (feb_out - feb_exc)) / feb * 100, 3
        )
        assert state.attributes["unit_of_measurement"] == "%"
        cec_exc = cec_excluded[key]
        assert state.attributes["cec_t_excluded_min"] == cec_exc, key
        assert state.attributes["cec_uptime"] == round(
            (window - (t_out - cec_exc)) / window * 100, 3
        ), key
        assert state.attributes["first_year"] is True
    station_a = hub.states.get(engine._sensor_entity(dev["A"]))
    assert station_a is not None
    a1, a2 = expected["A1"], expected["A2"]
    mean = ((window - (a1[0] - a1[1])) + (window - (a2[0] - a2[1]))) / 2 / window * 100
    assert float(station_a.state) == round(mean, 3)
    assert station_a.attributes["t_outage_min"] == a1[0] + a2[0]
    # uptime_updated events feed the alert rule (target 99.9 %) with the lower of the two
    # figures: all three are below it over their 31 days in service (B1 is at 100 % under
    # NEVI, at (44,640 - 2,160) / 44,640 = 95.161 % under CEC).
    assert any(e["device_id"] == dev["A2"] and "uptime_percent" in e for e in uptime_events)
    open_keys = {a.key for a in alert_manager(hub).open()}
    assert f"uptime:{dev['A1']}" in open_keys
    assert f"uptime:{dev['A2']}" in open_keys
    assert f"uptime:{dev['B1']}" in open_keys

    # The report API over the window, per port and per month.
    report = await report_json(hub, t0, end)
    ports = {p["port_id"]: p for p in report["ports"]}
    for key, (t_out, t_exc, jan_out, jan_exc, feb_out, feb_exc) in expected.items():
        port = ports[dev[key]]
        assert port["t_outage_min"] == t_out, key
        assert port["t_excluded_min"] == t_exc, key
        assert port["window_min"] == window
        assert port["uptime_percent"] == round((window - (t_out - t_exc)) / window * 100, 4)
        months = {m["month"]: m for m in port["months"]}
        assert set(months) == {"2026-01", "2026-02"}
        assert (months["2026-01"]["t_outage_min"], months["2026-01"]["t_excluded_min"]) == (
            jan_out,
            jan_exc,
        )
        assert (months["2026-02"]["t_outage_min"], months["2026-02"]["t_excluded_min"]) == (
            feb_out,
            feb_exc,
        )
        assert months["2026-01"]["window_min"] == jan
        assert months["2026-02"]["window_min"] == feb
        assert months["2026-02"]["uptime_percent"] == round(
            (feb - (feb_out - feb_exc)) / feb * 100, 4
        )
    b1_outages = [
        (o["duration_min"], o["excluded_min"], o["cec_excluded_min"])
        for o in ports[dev["B1"]]["outages"]
    ]
    assert b1_outages == [(4320, 4320, 4320), (2040, 2040, 0), (120, 120, 0)]
    a2_outages = [
        (o["cause"], o["duration_min"], o["excluded_min"], o["cec_excluded_min"])
        for o in ports[dev["A2"]]["outages"]
    ]
    assert a2_outages == [
        ("unavailable", 360, 360, 360),
        ("offline", 300, 0, 0),
        ("faulted", 17280, 17280, 14760),
    ]
    assert ports[dev["A1"]]["charge_point_id"] == "CP-A"
    assert ports[dev["A1"]]["connector"] == 1

    sessions = {s["transaction_id"]: s for s in report["sessions"]}
    a_session = sessions[str(tx_a)]
    assert a_session["energy_kwh"] == 6.0
    assert a_session["peak_kw"] == 7.0
    assert a_session["error_code"] is None
    assert a_session["session_start"] == utc(at(2, 7, 10))
    assert a_session["session_end"] == utc(at(2, 7, 11))
    b_session = sessions[str(tx_b)]
    assert (b_session["energy_kwh"], b_session["peak_kw"]) == (2.5, 11.0)
    assert b_session["error_code"] == "GroundFailure"
    assert b_session["charge_point_id"] == "CP-B"

    # CEC 15-minute data at the edges of A1's fault (10:07-13:31) and B1's night fault.
    rows = await port_intervals(hub, dev["A1"], at(1, 26, 9, 45), at(1, 26, 14))
    assert [r["status"] for r in rows] == ["up"] + ["down"] * 15 + ["up"]
    assert rows[1]["outage_s"] == 8 * MIN
    assert rows[-2]["outage_s"] == 1 * MIN
    # CEC does not exclude time outside operating hours: B1's night fault is down.
    rows = await port_intervals(hub, dev["B1"], at(2, 15, 22, 45), at(2, 16, 1, 15))
    assert [r["status"] for r in rows] == ["up"] + ["down"] * 8 + ["up"]
    rows = await port_intervals(hub, dev["B1"], at(2, 11, 17, 45), at(2, 11, 20, 15))
    # The maintenance cap was used up by the first 72 hours: the Feb 10-11 fault is down.
    assert [r["status"] for r in rows] == ["down"] * 9 + ["up"]

    csv_text = await report_csv(hub, t0, end)
    lines = csv_text.splitlines()
    assert lines[0].startswith("record,station_id,charge_point_id")
    assert sum(1 for line in lines if line.startswith("session,")) == 2
    assert sum(1 for line in lines if line.startswith("port_month,")) == 3 * 2
    assert sum(1 for line in lines if line.startswith("outage,")) == 10

    # The same report from the command line, reading the database with the hub stopped.
    await get_recorder(hub).flush()
    await hub.stop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "report",
        "uptime",
        "--from",
        "2026-01-25",
        "--to",
        "2026-02-24",
        "--format",
        "json",
        "--config",
        str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    from_cli = json.loads(out)
    cli_ports = {p["port_id"]: p for p in from_cli["ports"]}
    for key, (t_out, t_exc, *_rest) in expected.items():
        assert cli_ports[dev[key]]["t_outage_min"] == t_out
        assert cli_ports[dev[key]]["t_excluded_min"] == t_exc
        assert cli_ports[dev[key]]["window_min"] == window
    assert from_cli["to"] == utc(end)
    assert len(from_cli["sessions"]) == 2


async def test_restart_continues_or_closes_open_outages(
    start_hub: StartHub,
    connect: Connect,  # noqa: F811
) -> None:
    t0 = at(3, 2)
    hub, clock = await start_hub(t0)
    engine = engine_of(hub)
    cp_a = await connect(ws_url(hub, "CP-A"))
    await boot(cp_a, 2)
    cp_b = await connect(ws_url(hub, "CP-B"))
    await boot(cp_b, 1)
    cp_c = await connect(ws_url(hub, "CP-C"))
    await boot(cp_c, 1)
    dev = ids(hub)
    await goto(clock, at(3, 2, 1))
    await status(cp_a, 1, "Faulted", "GroundFailure")
    await status(cp_a, 2, "Faulted", "GroundFailure")
    await goto(clock, at(3, 2, 2))
    await cp_b.close()
    await until(lambda: len(engine.open_outages()) == 3, "station B offline")
    before = {(o.port_id, o.cause): o.outage_id for o in engine.open_outages()}
    stopped = at(3, 2, 3)
    await goto(clock, stopped)
    await hub.stop()  # sockets close: not an outage
    for port in ("A1", "A2", "B1", "C1"):
        rows = await _outages(hub, dev[port])
        assert all(row["cause"] != "offline" or port == "B1" for row in rows)

    # Down for two hours. Station A is back 30 s after the start: A1 still faulted
    # (continued), A2 available (closed at the stop). B never returns (its outage goes on);
    # C never returns either: offline from the end of its 150 s grace.
    restarted = stopped + 2 * 3600
    hub, clock = await start_hub(restarted)
    engine = engine_of(hub)
    events: list[Event] = []
    hub.bus.listen(EVENT_OUTAGE, events.append)
    await goto(clock, restarted + 30)
    cp_a = await connect(ws_url(hub, "CP-A"))
    # A1 and A2 had outages open at the stop: the hub asks for their status.
    assert await cp_a.wait_for_call("TriggerMessage") == {"requestedMessage": "StatusNotification"}
    await cp_a.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    await status(cp_a, 1, "Faulted", "GroundFailure")
    await status(cp_a, 2, "Available")
    await hub.block_till_done()
    assert [(e.data["port_id"], e.data["end"]) for e in events] == [(dev["A2"], stopped)]
    await goto(clock, restarted + 149)
    assert len(events) == 1
    await goto(clock, restarted + 151)
    opened = {(o.port_id, o.cause): o for o in engine.open_outages()}
    assert set(opened) == {(dev["A1"], "faulted"), (dev["B1"], "offline"), (dev["C1"], "offline")}
    assert opened[dev["A1"], "faulted"].outage_id == before[dev["A1"], "faulted"]
    assert opened[dev["A1"], "faulted"].start == at(3, 2, 1)
    assert opened[dev["B1"], "offline"].outage_id == before[dev["B1"], "offline"]
    assert opened[dev["C1"], "offline"].start == restarted + 150
    end = restarted + 3600
    await goto(clock, end)
    figures = {key: engine.port_figures(dev[key], t0, end) for key in ("A1", "A2", "B1", "C1")}
    assert figures["A1"].t_outage_min == (end - at(3, 2, 1)) / MIN  # 4 h, the gap included
    assert figures["A2"].t_outage_min == 120  # 01:00 to the stop at 03:00
    assert figures["B1"].t_outage_min == (end - at(3, 2, 2)) / MIN
    assert figures["C1"].t_outage_min == (end - restarted - 150) / MIN
    stored = {row["outage_id"]: row for row in await _outages(hub, None)}
    assert stored[before[dev["A2"], "faulted"]]["end"] == stopped
    assert stored[before[dev["A1"], "faulted"]]["end"] is None


async def _outages(hub: Hub, port_id: str | None) -> list[dict[str, Any]]:
    recorder = get_recorder(hub) if hub.is_running else None
    if recorder is None:
        from integrations.recorder import make_backend
        from integrations.recorder.core import Recorder
        from integrations.recorder.schema import SCHEMA_VERSION

        backend = make_backend(hub, None)
        await backend.open(SCHEMA_VERSION)
        try:
            return await Recorder(hub, backend).outages(
                0, 4e9, None if port_id is None else [port_id]
            )
        finally:
            await backend.close()
    await recorder.flush()
    return await recorder.outages(0, 4e9, None if port_id is None else [port_id])


def test_la_offsets_are_what_the_script_assumes() -> None:
    # No DST change between Jan 25 and Feb 25 2026 (it comes on March 8).
    assert at(2, 25) - at(1, 25) == 31 * 86400
    assert datetime.fromtimestamp(at(2, 1), LA).utcoffset() == timedelta(hours=-8)
