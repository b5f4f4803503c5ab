"""Uptime services and bad input, exclusions over a restart, on-purpose locks, the CLI's errors."""

# The fixtures come from the month test's module: their names are redefined as arguments.
# ruff: noqa: F811

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.charger import fire_charger_event
from hub.const import EVENT_EXCLUSION
from hub.core import Hub
from hub.exceptions import HubError, ServiceValidationError
from hub.registry import DeviceKind, device_registry
from integrations.recorder import get_recorder
from integrations.uptime import engine_of
from integrations.uptime.report import report_from_config_dir
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
)

H = 3600.0


def make_station(hub: Hub, name: str, ports: int) -> tuple[str, list[str]]:
    devices = device_registry(hub)
    station = devices.get_or_create(
        integration="test", identifiers={("test", name)}, kind=DeviceKind.STATION, name=name
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


async def test_bad_exclusions_are_refused_and_nothing_is_kept(start_hub: StartHub) -> None:
    hub, _clock = await start_hub(at(4, 1))
    seen: list[dict[str, Any]] = []
    hub.bus.listen(EVENT_EXCLUSION, lambda e: seen.append(dict(e.data)))
    station, ports = make_station(hub, "Lab", 1)
    add = {"device_id": ports[0], "start": "2026-04-01T08:00", "end": "2026-04-01T09:00"}
    with pytest.raises(ServiceValidationError, match="reason: value must be one of"):
        await hub.services.call("uptime", "add_exclusion", {**add, "reason": "aliens"})
    with pytest.raises(ServiceValidationError, match="end after it starts"):
        await hub.services.call(
            "uptime", "add_exclusion", {**add, "end": "2026-04-01T07:00", "reason": "utility_power"}
        )
    with pytest.raises(ServiceValidationError, match="ISO 8601"):
        await hub.services.call(
            "uptime", "add_exclusion", {**add, "start": "yesterday", "reason": "utility_power"}
        )
    with pytest.raises(ServiceValidationError, match="not found"):
        await hub.services.call(
            "uptime", "add_exclusion", {**add, "device_id": "nope", "reason": "utility_power"}
        )
    with pytest.raises(ServiceValidationError, match="no exclusion"):
        await hub.services.call("uptime", "remove_exclusion", {"exclusion_id": "missing"})
    assert seen == []
    site = await hub.services.call(
        "uptime", "add_exclusion", {"start": at(4, 1), "reason": "natural_disaster"}
    )
    assert (site["port_id"], site["station_id"], site["end"]) == (None, None, None)
    own = await hub.services.call("uptime", "add_exclusion", {**add, "reason": "maintenance"})
    assert (own["port_id"], own["station_id"]) == (ports[0], station)
    assert own["start"] == at(4, 1, 8)  # naive times are local to hub.time_zone
    assert len(seen) == 2


async def test_exclusions_and_outages_survive_a_restart(start_hub: StartHub) -> None:
    t0 = at(4, 1)
    hub, clock = await start_hub(t0)
    station, ports = make_station(hub, "Lab", 1)
    fire_charger_event(
        hub,
        "status",
        station_id=station,
        device_id=ports[0],
        data={"port": 1, "status": "Faulted", "previous": "Available", "error_code": "X"},
    )
    await goto(clock, t0 + H)
    fire_charger_event(
        hub,
        "status",
        station_id=station,
        device_id=ports[0],
        data={"port": 1, "status": "Available", "previous": "Faulted", "error_code": None},
    )
    await hub.services.call(
        "uptime",
        "add_exclusion",
        {"device_id": ports[0], "start": t0, "end": t0 + H / 2, "reason": "utility_power"},
    )
    await goto(clock, t0 + 2 * H)
    await hub.stop()
    hub, clock = await start_hub(t0 + 3 * H)
    engine = engine_of(hub)
    figures = engine.port_figures(ports[0], t0, t0 + 3 * H)
    assert (figures.t_outage_min, figures.t_excluded_min) == (60, 30)
    sensor = hub.states.get(engine._sensor_entity(ports[0]))
    assert sensor is not None
    assert sensor.attributes["t_outage_min"] == 60
    assert sensor.attributes["t_excluded_min"] == 30
    # In service since its first status at t0 (loaded from the recorder after the restart):
    # W = 180 minutes, not 525,600.
    assert sensor.attributes["in_service"] == "2026-04-01T07:00:00Z"  # t0, Los Angeles
    assert float(sensor.state) == round((180 - 30) / 180 * 100, 3)


async def test_a_lock_is_an_outage_excluded_only_with_a_reason(
    start_hub: StartHub,
    connect: Connect,
) -> None:
    """A port an operator made unavailable is not available for use: an outage. A lock that
    gives an excluded reason excludes its time, until the unlock; one without a reason not."""
    t0 = at(5, 4)
    hub, clock = await start_hub(t0)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    dev = ids(hub)
    # Connector 2 locked for maintenance, through the station's device; connector 1 locked
    # without a reason.
    await hub.services.call(
        "charger",
        "set_availability",
        {"available": False, "connector_id": 2, "reason": "maintenance", "note": "new cable"},
        target={"device_id": dev["A"]},
    )
    await hub.services.call(
        "charger", "set_availability", {"available": False}, target={"device_id": dev["A1"]}
    )
    await status(cp, 2, "Unavailable")
    await status(cp, 1, "Unavailable")
    await hub.block_till_done()
    assert sorted((o.port_id, o.cause) for o in engine.open_outages()) == sorted(
        [(dev["A1"], "unavailable"), (dev["A2"], "unavailable")]
    )
    [lock] = engine.exclusions.values()
    assert (lock.port_id, lock.start, lock.end, lock.reason, lock.note) == (
        dev["A2"],
        t0,
        None,
        "maintenance",
        "new cable",
    )
    await goto(clock, t0 + 6 * H)
    await hub.services.call(
        "charger", "set_availability", {"available": True}, target={"device_id": dev["A"]}
    )
    await goto(clock, t0 + 6 * H + 30)
    await status(cp, 2, "Available")
    await status(cp, 1, "Available")
    await goto(clock, t0 + 7 * H)
    for rules in ("nevi", "cec"):
        a1 = engine.port_figures(dev["A1"], t0, t0 + 7 * H, rules)
        a2 = engine.port_figures(dev["A2"], t0, t0 + 7 * H, rules)
        assert (a1.outage_s, a1.excluded_s) == (6 * H + 30, 0), rules
        # Excluded from the lock to the unlock; the 30 s until the port said Available count.
        assert (a2.outage_s, a2.excluded_s) == (6 * H + 30, 6 * H), rules
    assert engine.exclusions[lock.exclusion_id].end == t0 + 6 * H


async def test_a_lock_that_does_not_take_excludes_nothing(
    start_hub: StartHub,
    connect: Connect,
) -> None:
    t0 = at(5, 6)
    hub, clock = await start_hub(t0)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    dev = ids(hub)
    await status(cp, 1, "Available")
    await hub.services.call(
        "charger",
        "set_availability",
        {"available": False, "reason": "maintenance"},
        target={"device_id": dev["A1"]},
    )
    assert len(engine.exclusions) == 1
    # The port stays Available: a minute later the lock's exclusion is withdrawn, so a fault
    # next day is not excluded.
    await goto(clock, t0 + 61)
    assert engine.exclusions == {}
    await goto(clock, t0 + 24 * H)
    await status(cp, 1, "Faulted", "GroundFailure")
    await goto(clock, t0 + 25 * H)
    await status(cp, 1, "Available")
    figures = engine.port_figures(dev["A1"], t0, t0 + 26 * H, "nevi")
    assert (figures.outage_s, figures.excluded_s) == (H, 0)


async def test_station_that_never_comes_back_after_a_start_counts_after_grace(
    start_hub: StartHub,
    connect: Connect,
) -> None:
    t0 = at(6, 1)
    hub, clock = await start_hub(t0)
    cp = await connect(ws_url(hub, "CP-B"))
    await boot(cp, 1)
    await goto(clock, t0 + 600)
    await hub.stop()
    # The hub is down for a day; CP-B was fine before and stays away after the start.
    hub, clock = await start_hub(t0 + 86_400)
    engine = engine_of(hub)
    await goto(clock, t0 + 86_400 + 149)
    assert engine.open_outages() == []
    await goto(clock, t0 + 86_400 + 150)
    [outage] = engine.open_outages()
    assert (outage.cause, outage.start) == ("offline", t0 + 86_400 + 150)
    recorder = get_recorder(hub)
    await recorder.flush()
    rows = await recorder.outages(t0, t0 + 2 * 86_400)
    assert [(r["cause"], r["start"], r["end"]) for r in rows] == [
        ("offline", t0 + 86_400 + 150, None)
    ]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "report", "uptime", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_report_cli_errors(tmp_path: Path) -> None:
    missing = run_cli("--from", "2026-01-01", "--to", "2026-01-31", "--config", str(tmp_path))
    assert missing.returncode == 1
    assert "no configuration.yaml" in missing.stderr
    tmp_path.joinpath("configuration.yaml").write_text("hub:\n  time_zone: UTC\n")
    no_db = run_cli("--from", "2026-01-01", "--to", "2026-01-31", "--config", str(tmp_path))
    assert no_db.returncode == 1
    assert "no recorder database" in no_db.stderr
    assert not tmp_path.joinpath("evhub.db").exists()  # a report never creates one
    # Without --from and --to the report covers the last full month: it still needs the
    # database (test_report_csv_from_the_cli_with_the_hub_stopped checks the month covered).
    default = run_cli("--config", str(tmp_path))
    assert default.returncode == 1
    assert "no recorder database" in default.stderr
    bad = run_cli("--from", "January", "--to", "2026-01-31", "--config", str(tmp_path))
    assert bad.returncode == 1
    assert "expected a date" in bad.stderr
    # One end without the other is refused, before the database is looked for.
    for given in (("--from", "2026-01-01"), ("--to", "2026-01-31")):
        half = run_cli(*given, "--config", str(tmp_path))
        assert half.returncode == 1, given
        assert "give both --from and --to, or neither for the last full month" in half.stderr
        assert "Traceback" not in half.stderr
    usage = run_cli("--format", "xml", "--config", str(tmp_path))
    assert usage.returncode == 2
    assert "invalid choice" in usage.stderr


async def test_report_csv_from_the_cli_with_the_hub_stopped(
    start_hub: StartHub, tmp_path: Path
) -> None:
    t0 = at(7, 31, 23)
    hub, clock = await start_hub(t0)
    station, ports = make_station(hub, "Lab", 1)
    fire_charger_event(
        hub,
        "status",
        station_id=station,
        device_id=ports[0],
        data={"port": 1, "status": "Faulted", "previous": "Available", "error_code": "X"},
    )
    await goto(clock, at(8, 1, 0, 30))  # 90 minutes down across the month's end
    fire_charger_event(
        hub,
        "status",
        station_id=station,
        device_id=ports[0],
        data={"port": 1, "status": "Available", "previous": "Faulted", "error_code": None},
    )
    await goto(clock, at(8, 2))
    await hub.stop()
    result = await _run_cli_async(
        "--from", "2026-07-31", "--to", "2026-08-01", "--config", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split(",") for line in result.stdout.splitlines()]
    header = rows[0]
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    months = {r["period"]: r for r in records if r["record"] == "port_month"}
    assert (months["2026-07"]["t_outage_min"], months["2026-08"]["t_outage_min"]) == ("60", "30")
    # The port came into service with its first status at 23:00 on 31 July: July counts
    # its last 60 minutes (all down), the whole report 25 h = 1,500 minutes.
    assert months["2026-07"]["window_min"] == "60"
    assert months["2026-07"]["uptime_percent"] == "0.0000"
    assert months["2026-07"]["period_start"] == "2026-08-01T06:00:00Z"
    [whole] = [r for r in records if r["record"] == "port"]
    assert whole["t_outage_min"] == "90"
    assert whole["window_min"] == "1500"
    assert whole["uptime_percent"] == f"{(1500 - 90) / 1500 * 100:.4f}"
    [outage] = [r for r in records if r["record"] == "outage"]
    assert (outage["cause"], outage["duration_min"]) == ("faulted", "90")
    assert whole["port_name"] == "Lab 1"
    # Without --from and --to: the last full month, July on 2 August (the CLI's own clock is
    # the machine's; tests/test_cli_admin.py runs that through the process).
    july = await report_from_config_dir(tmp_path, None, None, now=at(8, 2))
    assert (july.start, july.end) == (at(7, 1), at(8, 1))
    [port] = july.ports
    assert [label for label, _figures in port.months] == ["2026-07"]
    assert (port.figures.t_outage_min, port.figures.window_min) == (60, 60)


async def _run_cli_async(*args: str) -> subprocess.CompletedProcess[str]:
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, lambda: run_cli(*args))


def test_engine_of_without_the_integration() -> None:
    class Bare:
        data: dict[str, Any] = {}

    with pytest.raises(HubError, match="not set up"):
        engine_of(Bare())  # type: ignore[arg-type]


async def test_a_large_fleet_is_updated_in_slices(start_hub: StartHub) -> None:
    t0 = at(9, 1)
    hub, clock = await start_hub(t0)
    engine = engine_of(hub)
    fleet = [make_station(hub, f"S{n:03d}", 2) for n in range(300)]  # 600 ports > one slice
    station, ports = fleet[-1]
    fire_charger_event(
        hub,
        "status",
        station_id=station,
        device_id=ports[1],
        data={"port": 2, "status": "Faulted", "previous": "Available", "error_code": "X"},
    )
    await goto(clock, t0 + 10 * 60)
    assert engine._updating is not None
    sensors = [hub.states.get(engine._sensor_entity(p)) for _s, pair in fleet for p in pair]
    assert all(s is not None and s.attributes["t_outage_min"] == 0 for s in sensors[:-1])
    last = hub.states.get(engine._sensor_entity(ports[1]))
    assert last is not None
    assert last.attributes["t_outage_min"] == 10
    whole = hub.states.get(engine._sensor_entity(station))
    assert whole is not None
    assert whole.attributes["t_outage_min"] == 10
    # Port 2 came into service faulted (down its whole 10 minutes); port 1 has no record
    # and its registry entry (real time) is after this manual clock: not in service, left
    # out of the station's mean.
    assert last.state == "0.0"
    first = hub.states.get(engine._sensor_entity(ports[0]))
    assert first is not None
    assert first.state == "unknown"
    assert float(whole.state) == 0.0


async def test_a_lock_for_maintenance_holds_over_a_restart(
    start_hub: StartHub,
    connect: Connect,
) -> None:
    t0 = at(10, 5)
    hub, clock = await start_hub(t0)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 2)
    dev = ids(hub)
    await hub.services.call(
        "charger",
        "set_availability",
        {"available": False, "reason": "maintenance"},
        target={"device_id": dev["A1"]},
    )
    await status(cp, 1, "Unavailable")
    await goto(clock, t0 + H)
    await hub.stop()
    await cp.close()
    hub, clock = await start_hub(t0 + 2 * H)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 0)
    await status(cp, 1, "Unavailable")  # still locked: the same outage goes on, excluded
    await status(cp, 2, "Unavailable")  # nobody asked for this one: an outage, counted
    await goto(clock, t0 + 3 * H)
    assert sorted((o.port_id, o.start) for o in engine.open_outages()) == sorted(
        [(dev["A1"], t0), (dev["A2"], t0 + 2 * H)]
    )
    a1 = engine.port_figures(dev["A1"], t0, t0 + 3 * H, "cec")
    assert (a1.outage_s, a1.excluded_s) == (3 * H, 3 * H)
    await status(cp, 1, "Available")  # back in use: the lock's reason ends here
    await goto(clock, t0 + 4 * H)
    a1 = engine.port_figures(dev["A1"], t0, t0 + 4 * H, "cec")
    assert (a1.outage_s, a1.excluded_s) == (3 * H, 3 * H)
    a2 = engine.port_figures(dev["A2"], t0, t0 + 4 * H, "cec")
    assert (a2.outage_s, a2.excluded_s) == (2 * H, 0)


async def test_ports_follow_the_device_registry(start_hub: StartHub) -> None:
    hub, _clock = await start_hub(at(1, 1))
    engine = engine_of(hub)
    first, first_ports = make_station(hub, "A", 2)
    assert engine.all_ports() == dict.fromkeys(first_ports, first)
    # Stations and ports that come later join; a station without ports has none.
    second, second_ports = make_station(hub, "B", 1)
    empty, _ = make_station(hub, "C", 0)
    assert engine.ports_of(second) == second_ports
    assert engine.ports_of(empty) == []
    # A port moved to another station, and a port removed.
    devices = device_registry(hub)
    devices.update(first_ports[1], via_device_id=second)
    assert engine.ports_of(first) == first_ports[:1]
    assert sorted(engine.ports_of(second)) == sorted([*second_ports, first_ports[1]])
    devices.remove(second_ports[0])
    assert engine.all_ports() == {first_ports[0]: first, first_ports[1]: second}


async def test_a_locks_exclusion_the_store_missed_still_ends(
    start_hub: StartHub, connect: Connect, tmp_path: Path
) -> None:
    """A crash within the engine's save delay loses its map of locks, not the exclusion the
    recorder kept: at start a lock's open exclusion is adopted and ends with the lock."""
    import json

    t0 = at(10, 7)
    hub, clock = await start_hub(t0)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 1)
    dev = ids(hub)
    await hub.services.call(
        "charger",
        "set_availability",
        {"available": False, "reason": "maintenance"},
        target={"device_id": dev["A1"]},
    )
    await status(cp, 1, "Unavailable")
    await goto(clock, t0 + H)
    await hub.stop()
    await cp.close()
    store = tmp_path / ".storage" / "uptime.state"
    document = json.loads(store.read_text())
    document["data"]["locks"] = {}
    store.write_text(json.dumps(document))
    hub, clock = await start_hub(t0 + 2 * H)
    engine = engine_of(hub)
    cp = await connect(ws_url(hub, "CP-A"))
    await boot(cp, 0)
    await goto(clock, t0 + 3 * H)
    await status(cp, 1, "Available")
    [lock] = engine.exclusions.values()
    assert lock.exclusion_id.startswith("lock-")
    assert lock.end == t0 + 3 * H
