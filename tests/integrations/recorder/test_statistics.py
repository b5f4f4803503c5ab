"""Statistics from known sessions and port status changes, against hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.charger import EVENT_CHARGER
from hub.clock import use_manual_clock
from hub.const import EVENT_OUTAGE
from hub.core import Hub
from integrations.recorder.statistics import period_bounds, statistics

from .conftest import StartHub

T = 1_699_999_200.0  # 2023-11-14 22:00:00 UTC
DEC = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
JAN = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0
MIN = 60.0


def port_status(hub: Hub, port: str, at: float, value: str, station: str = "st1") -> None:
    hub.bus.fire(
        EVENT_CHARGER,
        {
            "kind": "status",
            "station_id": station,
            "device_id": port,
            "port": int(port[-1]),
            "status": value,
            "previous": None,
            "error_code": None,
        },
        time_fired_ts=at,
    )


def session_started(hub: Hub, port: str, tx: str, at: float, wh: float | None = None) -> None:
    data: dict[str, Any] = {
        "kind": "session_started",
        "station_id": "st1",
        "device_id": port,
        "transaction_id": tx,
        "started_at": at,
    }
    if wh is not None:
        data["energy_wh"] = wh
    hub.bus.fire(EVENT_CHARGER, data, time_fired_ts=at)


def offline(hub: Hub, port: str, at: float) -> None:
    hub.bus.fire(
        EVENT_OUTAGE,
        {
            "outage_id": f"off-{port}-{at}",
            "port_id": port,
            "station_id": "st1",
            "start": at,
            "end": None,
            "cause": "offline",
        },
    )


async def test_port_and_station_statistics(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()

    def status(port: str, at: float, value: str, error: str | None = None) -> None:
        hub.bus.fire(
            EVENT_CHARGER,
            {
                "kind": "status",
                "station_id": "st1",
                "device_id": port,
                "port": 1 if port == "p1" else 2,
                "status": value,
                "previous": None,
                "error_code": error,
            },
            time_fired_ts=at,
        )

    def session(
        port: str, tx: str, start: float, stop: float, wh: float, w: float, err: str | None
    ) -> None:
        hub.bus.fire(
            EVENT_CHARGER,
            {
                "kind": "session_ended",
                "station_id": "st1",
                "device_id": port,
                "transaction_id": tx,
                "started_at": start,
                "stopped_at": stop,
                "energy_wh": wh,
                "peak_power_w": w,
                "error_code": err,
            },
        )

    status("p1", T - 100, "Available")
    status("p1", T + 600, "Preparing")
    status("p1", T + 900, "Charging")
    status("p1", T + 4500, "Finishing")
    status("p1", T + 4800, "Available")
    status("p2", T + 5400, "Charging")
    status("p2", T + 6300, "Faulted", "GroundFailure")
    session("p1", "1", T + 900, T + 4500, 6000.0, 11000.0, None)
    session("p2", "2", T + 5400, T + 6300, 1500.0, 7400.0, "GroundFailure")
    # Outside the window: neither counted nor spread into it.
    session("p1", "0", T - 7200, T - 3600, 9999.0, 22000.0, None)
    await recorder.flush()

    stats = await statistics(hub, ["p1", "st1"], T, T + 7200, period="hour")
    p1 = stats["p1"]
    assert p1["kind"] == "port"
    assert p1["energy_kwh"] == pytest.approx(6.0)
    assert p1["sessions"] == 1
    assert p1["charging_percent"] == pytest.approx(50.0)
    assert p1["occupied_percent"] == pytest.approx(4200 / 7200 * 100)
    assert p1["peak_power_kw"] == pytest.approx(11.0)
    assert p1["failed_sessions"] == []
    hour1, hour2 = p1["periods"]
    assert (hour1["start"], hour1["end"], hour2["end"]) == (T, T + 3600, T + 7200)
    assert hour1["energy_kwh"] == pytest.approx(4.5)
    assert hour2["energy_kwh"] == pytest.approx(1.5)
    assert hour1["charging_percent"] == pytest.approx(75.0)
    assert hour1["occupied_percent"] == pytest.approx(3000 / 3600 * 100)
    assert hour2["charging_percent"] == pytest.approx(25.0)
    assert hour2["occupied_percent"] == pytest.approx(1200 / 3600 * 100)
    assert (hour1["sessions"], hour2["sessions"]) == (1, 0)
    assert hour2["peak_power_kw"] == pytest.approx(11.0)

    st1 = stats["st1"]
    assert st1["kind"] == "station"
    assert st1["ports"] == ["p1", "p2"]
    assert st1["energy_kwh"] == pytest.approx(7.5)
    assert st1["sessions"] == 2
    assert st1["charging_percent"] == pytest.approx(4500 / 14400 * 100)
    assert st1["occupied_percent"] == pytest.approx(5100 / 14400 * 100)
    assert st1["peak_power_kw"] == pytest.approx(11.0)
    assert st1["failed_sessions"] == [
        {
            "station_id": "st1",
            "port_id": "p2",
            "transaction_id": "2",
            "started_at": T + 5400,
            "error_code": "GroundFailure",
        }
    ]
    assert st1["error_codes"] == {"GroundFailure": 1}
    hours = [0] * 24
    hours[22] = hours[23] = 1
    assert st1["busiest_hours"] == hours
    s1, s2 = st1["periods"]
    assert s1["charging_percent"] == pytest.approx(37.5)
    assert s2["charging_percent"] == pytest.approx(25.0)
    assert s2["occupied_percent"] == pytest.approx(2100 / 7200 * 100)
    assert s2["energy_kwh"] == pytest.approx(3.0)
    assert s2["peak_power_kw"] == pytest.approx(11.0)

    daily = await statistics(hub, ["st1"], T, T + 7200, period="day")
    (day,) = daily["st1"]["periods"]
    assert day["energy_kwh"] == pytest.approx(7.5)
    assert day["sessions"] == 2


def test_period_bounds_follow_the_time_zone() -> None:
    # 2023-11-14 22:00 UTC is 23:00 in Berlin: the next local day starts an hour later.
    assert period_bounds(T, T + 3 * 3600, "day", "Europe/Berlin") == [T, T + 3600, T + 3 * 3600]
    assert period_bounds(T + 60, T + 7200, "hour", "UTC") == [T + 60, T + 3600, T + 7200]
    with pytest.raises(ValueError, match="period"):
        period_bounds(T, T + 1, "week", "UTC")


async def test_nothing_counts_past_now(start_hub: StartHub) -> None:
    """A port charging now, an open session: December so far counts them up to now (the hub
    clock), not to the end of the month; the days still to come have no figures."""
    now = DEC + 5 * DAY + 10 * 3600  # Dec 6, 10:00
    hub, recorder = await start_hub(before_start=lambda hub: use_manual_clock(hub, now))
    port_status(hub, "p1", DEC - 10 * DAY, "Available")
    port_status(hub, "p2", DEC - 10 * DAY, "Available")
    port_status(hub, "p1", now - 20 * MIN, "Preparing")
    port_status(hub, "p1", now - 15 * MIN, "Charging")
    session_started(hub, "p1", "7", now - 15 * MIN, wh=3000.0)
    await recorder.flush()

    stats = await statistics(hub, ["p1", "st1"], DEC, JAN, period="day")
    p1, st1 = stats["p1"], stats["st1"]
    elapsed = now - DEC
    assert p1["occupied_percent"] == pytest.approx(20 * MIN / elapsed * 100)
    assert p1["charging_percent"] == pytest.approx(15 * MIN / elapsed * 100)
    assert st1["occupied_percent"] == pytest.approx(20 * MIN / (2 * elapsed) * 100)
    assert p1["energy_kwh"] == pytest.approx(3.0)
    assert p1["sessions"] == 1
    days = st1["periods"]
    assert len(days) == 31
    today = days[5]
    assert today["occupied_percent"] == pytest.approx(20 * MIN / (2 * 10 * 3600) * 100)
    assert today["energy_kwh"] == pytest.approx(3.0)
    for day in days[6:]:
        assert (day["occupied_percent"], day["charging_percent"]) == (0.0, 0.0), day
        assert (day["energy_kwh"], day["sessions"]) == (0.0, 0), day
    for day in days[:5]:
        assert day["occupied_percent"] == 0.0

    # A window wholly in the future has nothing.
    future = await statistics(hub, ["st1"], now + DAY, now + 2 * DAY, period="hour")
    assert future["st1"]["occupied_percent"] == 0.0
    assert future["st1"]["energy_kwh"] == 0.0


async def test_a_session_never_closed_stops_counting(start_hub: StartHub) -> None:
    """Sessions the charger never closed: one whose port was seen free again ends there; one
    whose station went away (offline) while charging ends when it went, and so does its
    port's Charging status. Neither inflates later days or months."""
    now = JAN + 10 * DAY
    hub, recorder = await start_hub(before_start=lambda hub: use_manual_clock(hub, now))
    # p1: charges an hour on Dec 3, goes Available; the StopTransaction never came.
    port_status(hub, "p1", DEC, "Available")
    port_status(hub, "p1", DEC + 2 * DAY, "Charging")
    session_started(hub, "p1", "1", DEC + 2 * DAY, wh=7000.0)
    port_status(hub, "p1", DEC + 2 * DAY + 3600, "Available")
    # p2: charging on Dec 10 when its station drops off the network, and never comes back.
    port_status(hub, "p2", DEC, "Available")
    port_status(hub, "p2", DEC + 9 * DAY, "Charging")
    session_started(hub, "p2", "2", DEC + 9 * DAY, wh=11000.0)
    offline(hub, "p2", DEC + 9 * DAY + 7200)
    await recorder.flush()
    assert len([s for s in await recorder.sessions(DEC, now) if s["stopped_at"] is None]) == 2

    stats = await statistics(hub, ["p1", "p2", "st1"], DEC, JAN, period="day")
    p1, p2, st1 = stats["p1"], stats["p2"], stats["st1"]
    month = JAN - DEC
    assert p1["occupied_percent"] == pytest.approx(3600 / month * 100)
    assert p2["occupied_percent"] == pytest.approx(7200 / month * 100)
    assert p2["charging_percent"] == pytest.approx(7200 / month * 100)
    assert st1["occupied_percent"] == pytest.approx(10800 / (2 * month) * 100)
    # All of each session's energy falls on its one day.
    assert p1["periods"][2]["energy_kwh"] == pytest.approx(7.0)
    assert p2["periods"][9]["energy_kwh"] == pytest.approx(11.0)
    assert st1["energy_kwh"] == pytest.approx(18.0)
    for index, day in enumerate(st1["periods"]):
        if index not in (2, 9):
            assert (day["occupied_percent"], day["energy_kwh"]) == (0.0, 0.0), index

    january = await statistics(hub, ["st1"], JAN, JAN + 31 * DAY, period="day")
    assert january["st1"]["occupied_percent"] == 0.0
    assert january["st1"]["energy_kwh"] == 0.0
    assert january["st1"]["sessions"] == 0
