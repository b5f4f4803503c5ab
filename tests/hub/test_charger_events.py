"""Charger events are checked where they enter: a kind or payload outside the contract is a
driver bug, refused loudly instead of silently giving no history and no uptime."""

from __future__ import annotations

from typing import Any

import pytest

from hub.charger import EVENT_CHARGER, ChargerEventError, ChargerEventKind, fire_charger_event
from hub.core import Event, Hub

STATUS = {"port": 1, "status": "Faulted", "previous": "Available", "error_code": "GroundFailure"}


def _fired(hub: Hub) -> list[Event]:
    events: list[Event] = []
    hub.bus.listen(EVENT_CHARGER, events.append)
    return events


async def test_a_status_event_in_the_contract_is_fired(hub: Hub) -> None:
    events = _fired(hub)
    fire_charger_event(
        hub,
        ChargerEventKind.STATUS,
        station_id="st",
        device_id="st-1",
        data={**STATUS, "charge_point_id": "CP-1", "time": 1_800_000_000.0},  # type: ignore[typeddict-item]
    )
    await hub.block_till_done()
    [event] = events
    assert event.data["kind"] == "status"
    assert event.data["charge_point_id"] == "CP-1"
    assert type(event.data["kind"]) is str  # serialisable as plain text (history, the API)


@pytest.mark.parametrize(
    ("kind", "data", "problem"),
    [
        ("stauts", STATUS, "unknown charger event kind 'stauts'"),
        (ChargerEventKind.STATUS, {**STATUS, "status": "Broken"}, "'Broken' is not a"),
        (ChargerEventKind.STATUS, {**STATUS, "port": "1"}, "port must be a connector number"),
        (ChargerEventKind.STATUS, {**STATUS, "port": -1}, "port must be a connector number"),
        (ChargerEventKind.STATUS, {"status": "Faulted"}, "port must be a connector number"),
        (ChargerEventKind.STATUS, {**STATUS, "time": "yesterday"}, "time must be POSIX"),
        (ChargerEventKind.STATUS, {**STATUS, "time": float("nan")}, "time must be POSIX"),
        (ChargerEventKind.FAULT, {"port": 1}, "None is not a ConnectorStatus"),
        (ChargerEventKind.SESSION_ENDED, {"port": 1, "energy_wh": "12"}, "energy_wh must be"),
        (ChargerEventKind.SECURITY_EVENT, {"type": "Tamper"}, "severity must be text"),
        (ChargerEventKind.FIRMWARE, {}, "status must be text"),
    ],
)
async def test_an_event_outside_the_contract_is_refused(
    hub: Hub, kind: Any, data: dict[str, Any], problem: str
) -> None:
    events = _fired(hub)
    with pytest.raises(ChargerEventError, match=problem):
        fire_charger_event(hub, kind, station_id="st", device_id="st-1", data=data)
    await hub.block_till_done()
    assert events == []


async def test_every_kind_has_a_check() -> None:
    from hub.charger import _CHECKS

    assert set(_CHECKS) == set(ChargerEventKind)


async def test_unknown_says_the_source_is_away_not_the_station(hub: Hub) -> None:
    events = _fired(hub)
    fire_charger_event(
        hub,
        ChargerEventKind.UNKNOWN,
        station_id="st",
        data={"charge_point_id": "CP-1", "reason": "the vendor cloud cannot be reached"},
    )
    await hub.block_till_done()
    [event] = events
    assert event.data["kind"] == "unknown"
    assert event.data["device_id"] == "st"
    assert event.data["reason"] == "the vendor cloud cannot be reached"
    from hub.charger import CHARGER_EVENT_KINDS

    assert "unknown" in CHARGER_EVENT_KINDS  # automations' charger triggers may name it
