"""The time a charger says something happened counts, not when the hub heard it.

Real OCPP 1.6 chargers over websockets, a hub on a manual clock: StatusNotification
timestamps set when outages start and end, within a sane window of the hub clock.
"""

# The fixtures come from the month test's module: their names are redefined as arguments.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from integrations.uptime import engine_of
from integrations.uptime.engine import CLOCK_SKEW_S
from integrations.uptime.report import report_from_config_dir, report_json
from tests.integrations.ocpp.conftest import Connect, RawChargePoint, ws_url
from tests.integrations.test_uptime_ocpp import (  # noqa: F401 - fixtures
    StartHub,
    at,
    boot,
    connect,
    goto,
    ids,
    start_hub,
    tmp_path,  # in memory (tests.tmpfs): these hubs live days and weeks of minutes
    utc,
)

H = 3600.0
M = 60.0
DAY = 86_400.0


async def stamped(
    cp: RawChargePoint, connector: int, value: str, when: float, error: str = "NoError"
) -> None:
    """A StatusNotification carrying the charger's time."""
    await cp.call(
        "StatusNotification",
        {"connectorId": connector, "errorCode": error, "status": value, "timestamp": utc(when)},
    )


async def test_a_port_that_recovered_while_the_hub_was_down_ends_at_the_chargers_time(
    start_hub: StartHub, connect: Connect
) -> None:
    t0 = at(3, 2, 8)
    hub, clock = await start_hub(t0)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    dev = ids(hub)
    await stamped(cp, 1, "Faulted", t0, "GroundFailure")
    await goto(clock, t0 + H)
    await hub.stop()
    await cp.close()
    # The hub is down for two hours; the port recovered 30 minutes after it stopped, and the
    # charger tells so (its queued StatusNotification) when the hub is back.
    hub, clock = await start_hub(t0 + 3 * H)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 0)
    await stamped(cp, 1, "Available", t0 + H + 30 * M)
    await goto(clock, t0 + 4 * H)
    figures = engine.port_figures(dev["A1"], t0, t0 + 4 * H)
    assert figures.outage_s == H + 30 * M
    [outage] = engine.outages(dev["A1"])
    assert (outage.start, outage.end) == (t0, t0 + H + 30 * M)


async def test_a_status_queued_while_offline_starts_the_outage_when_it_happened(
    start_hub: StartHub, connect: Connect
) -> None:
    t0 = at(3, 3, 8)
    hub, clock = await start_hub(t0)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    dev = ids(hub)
    # The station loses its connection at 08:30; connector 2 faults at 08:40; the charger
    # reports it, queued, when it is back at 09:00; the recovery comes on time at 10:00.
    await goto(clock, t0 + 30 * M)
    await cp.close()
    await until_offline(engine)
    await goto(clock, t0 + H)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 0)
    await stamped(cp, 2, "Faulted", t0 + 40 * M, "OtherError")
    await goto(clock, t0 + 2 * H)
    await stamped(cp, 2, "Available", t0 + 2 * H)
    faults = [o for o in engine.outages(dev["A2"]) if o.cause == "faulted"]
    assert [(o.start, o.end) for o in faults] == [(t0 + 40 * M, t0 + 2 * H)]
    # Offline 08:30-09:00 and faulted 08:40-10:00 overlap: counted once.
    assert engine.port_figures(dev["A2"], t0, t0 + 3 * H).outage_s == H + 30 * M
    # A time from before the silence is not the charger's to claim: the receipt time.
    await goto(clock, t0 + 2 * H + 5 * M)
    await stamped(cp, 1, "Faulted", t0 + 10 * M, "OtherError")
    [late] = [o for o in engine.open_outages() if o.port_id == dev["A1"]]
    assert late.start == t0 + 2 * H + 5 * M
    assert engine.clock_notes[dev["A"]] == 1


async def test_a_charger_clock_off_or_news_out_of_order_takes_the_receipt_time(
    start_hub: StartHub, connect: Connect
) -> None:
    t0 = at(3, 4, 8)
    hub, clock = await start_hub(t0)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    dev = ids(hub)
    station = dev["A"]
    # Ten minutes ahead (the OCPP window allows a day): the hub's time is used, and noted.
    await stamped(cp, 1, "Faulted", t0 + CLOCK_SKEW_S + 300, "OtherError")
    [outage] = engine.open_outages()
    assert outage.start == t0
    assert engine.clock_notes[station] == 1
    # An hour behind, long after the station came online: a clock off, not a queue.
    await goto(clock, t0 + H)
    await stamped(cp, 1, "Available", t0)
    assert engine.outages(dev["A1"])[0].end == t0 + H
    assert engine.clock_notes[station] == 2
    # Within the skew, a little ahead: taken, but never past the hub's now.
    await stamped(cp, 1, "Unavailable", t0 + H + 60)
    assert engine.open_outages()[0].start == t0 + H
    # A little behind, but before news already applied to the port: the receipt time.
    await goto(clock, t0 + H + 120)
    await stamped(cp, 1, "Available", t0 + H - 60)
    assert engine.outages(dev["A1"])[-1].end == t0 + H + 120
    assert engine.clock_notes[station] == 3


async def test_operating_hours_changed_between_runs_do_not_rewrite_the_past(
    start_hub: StartHub, connect: Connect, tmp_path: Path
) -> None:
    """CP-B is open 06:00-22:00; the operator then makes it open round the clock. A night
    fault before the change stays excluded (NEVI), one after it counts."""
    t0 = at(3, 10, 20)
    hub, clock = await start_hub(t0)
    cp = await connect(ws_url(hub, "CP-B"))
    await boot(cp, 1)
    dev = ids(hub)
    await goto(clock, t0 + H)
    await stamped(cp, 1, "Faulted", t0 + H, "OtherError")  # 21:00
    await goto(clock, t0 + 3 * H)
    await stamped(cp, 1, "Available", t0 + 3 * H)  # 23:00: 1 h of it after closing
    await hub.stop()
    await cp.close()
    config = tmp_path / "configuration.yaml"
    config.write_text(
        config.read_text().replace(
            'CP-B: {operating_hours: "06:00-22:00"}', 'CP-B: {operating_hours: "open"}'
        )
    )
    t1 = at(3, 12, 20)
    hub, clock = await start_hub(t1)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-B"))
    await boot(cp, 1)
    await goto(clock, t1 + H)
    await stamped(cp, 1, "Faulted", t1 + H, "OtherError")
    await goto(clock, t1 + 3 * H)
    await stamped(cp, 1, "Available", t1 + 3 * H)
    before = engine.port_figures(dev["B1"], t0, t0 + DAY)
    after = engine.port_figures(dev["B1"], t1, t1 + DAY)
    assert (before.outage_s, before.excluded_s) == (2 * H, H)
    assert (after.outage_s, after.excluded_s) == (2 * H, 0)
    assert [since for since, _ in engine.hours_log["CP-B"]] == [t0, t1]
    # The report read from the database with the hub stopped agrees.
    await hub.stop()
    report = await report_from_config_dir(tmp_path, "2026-03-10", "2026-03-13", now=t1 + DAY)
    [port] = [p for p in report.ports if p.port_id == dev["B1"]]
    assert port.figures.outage_s == 4 * H
    assert port.figures.excluded_s == H


async def test_month_boundary_dst_and_a_reboot_to_the_minute(
    start_hub: StartHub, connect: Connect
) -> None:
    """Los Angeles: a fault across the end of February splits between the months; a fault
    over the spring change (8 March, 02:00 -> 03:00) lasts its real minutes; a reboot (the
    socket closes, the station boots again) is an offline outage of each port."""
    t0 = at(2, 20)
    hub, clock = await start_hub(t0)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    dev = ids(hub)
    await goto(clock, at(2, 28, 23))
    await stamped(cp, 1, "Faulted", at(2, 28, 23), "OtherError")
    await goto(clock, at(3, 1, 1, 30))
    await stamped(cp, 1, "Available", at(3, 1, 1, 30))
    await goto(clock, at(3, 8, 1))
    await stamped(cp, 2, "Faulted", at(3, 8, 1), "OtherError")
    await goto(clock, at(3, 8, 4))
    await stamped(cp, 2, "Available", at(3, 8, 4))  # 01:00 -> 04:00 local is 2 real hours
    # A reboot: the charger closes its socket and is back 3 minutes later.
    await goto(clock, at(3, 9, 12))
    await cp.close()
    await until_offline(engine)
    await goto(clock, at(3, 9, 12, 3))
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    await goto(clock, at(3, 10))
    report = await report_json(hub, at(2, 20), at(3, 10))
    ports = {p["port_id"]: p for p in report["ports"]}
    a1 = {m["month"]: m["t_outage_min"] for m in ports[dev["A1"]]["months"]}
    a2 = {m["month"]: m["t_outage_min"] for m in ports[dev["A2"]]["months"]}
    assert a1 == {"2026-02": 60, "2026-03": 90 + 3}
    assert a2 == {"2026-02": 0, "2026-03": 120 + 3}
    causes = sorted((o.cause, o.start, o.end) for o in engine.outages(dev["A2"]))
    assert causes == [
        ("faulted", at(3, 8, 1), at(3, 8, 4)),
        ("offline", at(3, 9, 12), at(3, 9, 12, 3)),
    ]


async def until_offline(engine: Any) -> None:
    for _ in range(500):
        if any(o.cause == "offline" for o in engine.open_outages()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the station never went offline")
