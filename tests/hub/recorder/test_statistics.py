"""Statistics from known sessions and port status changes, against hand-computed values."""

from __future__ import annotations

import pytest

from hub.charger import EVENT_CHARGER
from hub.recorder.statistics import period_bounds, statistics

from .conftest import StartHub

T = 1_699_999_200.0  # 2023-11-14 22:00:00 UTC


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
