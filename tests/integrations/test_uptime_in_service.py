"""In-service starts: a port counts only from the first moment the hub knew it, over real OCPP.

Station A boots on 30 January 2026 00:00 (Los Angeles) with connector 1; connector 2 reports
for the first time on 3 February at 10:07. Figures worked out by hand, in minutes:

- A1: in service Jan 30 00:00; faulted Jan 30 10:00-11:00 (60).
  January: 2,880 min, (2,880 - 60) / 2,880 = 97.9167 %; February to Feb 5 10:00: 6,360 min,
  100 %; the whole report (cut at Feb 5 10:00): 9,240 min, (9,240 - 60) / 9,240 = 99.3506 %.
- A2: in service Feb 3 10:07; faulted Feb 4 08:00-09:00 (60).
  January: not in service (no figure); February: 2,873 min, (2,873 - 60) / 2,873 = 97.9116 %.
"""

# The fixtures come from the month test's module: their names are redefined as arguments.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from integrations.uptime import engine_of
from integrations.uptime.report import ReportSource, build_report, port_intervals, report_json
from integrations.uptime.views import uptime_json
from tests.integrations.ocpp.conftest import Connect, ws_url
from tests.integrations.test_uptime_ocpp import (  # noqa: F401 - fixtures
    StartHub,
    at,
    boot,
    connect,
    goto,
    ids,
    start_hub,
    status,
    tmp_path,  # in memory (tests.tmpfs): these hubs live days and weeks of minutes
    utc,
)

A1_JAN = (2880 - 60) / 2880 * 100
A1_WHOLE = (9240 - 60) / 9240 * 100
A2_FEB = (2873 - 60) / 2873 * 100


async def test_a_port_counts_from_its_in_service_start_and_keeps_it_over_a_restart(
    start_hub: StartHub, connect: Connect
) -> None:
    hub, clock = await start_hub(at(1, 30))
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 1)
    await goto(clock, at(1, 30, 10))
    await status(cp, 1, "Faulted", "GroundFailure")
    await goto(clock, at(1, 30, 11))
    await status(cp, 1, "Available")
    await goto(clock, at(2, 3, 10, 7))
    await status(cp, 2, "Available")  # connector 2 is heard of for the first time
    await goto(clock, at(2, 4, 8))
    await status(cp, 2, "Faulted", "GroundFailure")
    await goto(clock, at(2, 4, 9))
    await status(cp, 2, "Available")
    now = at(2, 5, 10)
    await goto(clock, now)
    await hub.block_till_done()
    dev = ids(hub)
    a, a1, a2 = dev["A"], dev["A1"], dev["A2"]
    assert (engine.in_service_of(a1), engine.in_service_of(a2)) == (at(1, 30), at(2, 3, 10, 7))

    # (a) Per month: A2's February covers only its 2,873 in-service minutes; its January has
    # no figure (null), not 100 %.
    report = await report_json(hub, at(1, 1), at(3, 1))
    ports = {p["port_id"]: p for p in report["ports"]}
    a1_months = {m["month"]: m for m in ports[a1]["months"]}
    a2_months = {m["month"]: m for m in ports[a2]["months"]}
    assert (a1_months["2026-01"]["window_min"], a1_months["2026-01"]["t_outage_min"]) == (2880, 60)
    assert a1_months["2026-01"]["uptime_percent"] == round(A1_JAN, 4)
    assert (a1_months["2026-02"]["window_min"], a1_months["2026-02"]["uptime_percent"]) == (
        6360,
        100.0,
    )
    assert a2_months["2026-01"]["uptime_percent"] is None
    assert a2_months["2026-01"]["window_min"] == 0
    assert a2_months["2026-02"]["window_min"] == 2873
    assert a2_months["2026-02"]["t_outage_min"] == 60
    assert a2_months["2026-02"]["uptime_percent"] == round(A2_FEB, 4)
    assert a2_months["2026-02"]["start"] == at(2, 3, 10, 7)
    assert (ports[a1]["window_min"], ports[a1]["uptime_percent"]) == (9240, round(A1_WHOLE, 4))
    assert (ports[a2]["window_min"], ports[a2]["uptime_percent"]) == (2873, round(A2_FEB, 4))
    [station] = report["stations"]
    assert station["uptime_percent"] == round((A1_WHOLE + A2_FEB) / 2, 4)

    # The station's January leaves A2 out (not in service): A1's figure alone, not a mean
    # with a 100 % that never was.
    january = uptime_json(await build_report(ReportSource.from_hub(hub), at(1, 1), at(2, 1)), None)
    by_port = {p["port_id"]: p for p in january["ports"]}
    assert by_port[a2]["uptime_pct"] is None
    assert by_port[a1]["uptime_pct"] == round(A1_JAN, 3)
    [station_jan] = january["stations"]
    assert station_jan["station_id"] == a
    assert station_jan["uptime_pct"] == round(A1_JAN, 3)
    assert january["fleet_uptime_pct"] == round(A1_JAN, 3)

    # CEC 15-minute data: the intervals before 10:07 are left out; 10:00-10:15 counts from
    # 10:07.
    rows = await port_intervals(hub, a2, at(2, 3, 9, 30), at(2, 3, 10, 30))
    assert [(r["start"], r["status"], r["outage_s"]) for r in rows] == [
        (utc(at(2, 3, 10)), "up", 0),
        (utc(at(2, 3, 10, 15)), "up", 0),
    ]

    # (b) The trailing-12-months sensor of the young port: W = its 2,873 minutes, not
    # 525,600; the station's is the mean of its ports'.
    sensor = hub.states.get(engine._sensor_entity(a2))
    assert sensor is not None
    assert float(sensor.state) == round(A2_FEB, 3)
    assert sensor.attributes["in_service"] == utc(at(2, 3, 10, 7))
    assert sensor.attributes["month_to_date"] == round(A2_FEB, 3)
    assert sensor.attributes["t_outage_min"] == 60
    a1_sensor = hub.states.get(engine._sensor_entity(a1))
    assert a1_sensor is not None
    assert float(a1_sensor.state) == round(A1_WHOLE, 3)
    assert a1_sensor.attributes["month_to_date"] == 100.0
    whole = hub.states.get(engine._sensor_entity(a))
    assert whole is not None
    assert float(whole.state) == round((A1_WHOLE + A2_FEB) / 2, 3)
    assert whole.attributes["month_to_date"] == round((100 + A2_FEB) / 2, 3)
    assert whole.attributes["in_service"] == utc(at(1, 30))
    assert whole.attributes["t_outage_min"] == 120

    # (c) A restart an hour later: the in-service starts come back from the recorder (A1's
    # is its first status, before its first outage), and the young port's window goes on
    # from Feb 3 10:07: 2,933 minutes (the hour the hub was down is not downtime).
    await hub.stop()
    hub, clock = await start_hub(now + 3600)
    engine = engine_of(hub)
    assert (engine.in_service_of(a1), engine.in_service_of(a2)) == (at(1, 30), at(2, 3, 10, 7))
    sensor = hub.states.get(engine._sensor_entity(a2))
    assert sensor is not None
    assert float(sensor.state) == round((2933 - 60) / 2933 * 100, 3)
    assert sensor.attributes["in_service"] == utc(at(2, 3, 10, 7))
    again = await report_json(hub, at(1, 1), at(3, 1))
    months = {m["month"]: m for p in again["ports"] if p["port_id"] == a2 for m in p["months"]}
    assert months["2026-01"]["uptime_percent"] is None
    assert months["2026-02"]["window_min"] == 2933
    assert months["2026-02"]["uptime_percent"] == pytest.approx((2933 - 60) / 2933 * 100, abs=1e-4)
