"""A station whose source is away (a vendor cloud: an ``unknown`` charger event) is not down.

Its state is unknown: the outages open on its ports end when it becomes unknown, none
starts while it is, and news of it (online, offline, a status) counts again from then.
"""

# The fixtures come from the month test's module: their names are redefined as arguments.
# ruff: noqa: F811

from __future__ import annotations

from hub.charger import Charger, ChargerEventKind, fire_charger_event, register_charger
from hub.core import Hub
from integrations.uptime import engine_of
from tests.integrations.test_uptime_ocpp import (  # noqa: F401 - fixtures
    StartHub,
    at,
    goto,
    start_hub,
)
from tests.integrations.test_uptime_services import make_station

H = 3600.0


def _status(hub: Hub, station: str, port: str, status: str) -> None:
    fire_charger_event(
        hub,
        ChargerEventKind.STATUS,
        station_id=station,
        device_id=port,
        data={"port": 1, "status": status},
    )


def _unknown(hub: Hub, station: str) -> None:
    fire_charger_event(
        hub, ChargerEventKind.UNKNOWN, station_id=station, data={"reason": "cloud away"}
    )


async def test_unknown_ends_a_fault_and_starts_nothing(start_hub: StartHub) -> None:
    t0 = at(5, 4, 8)
    hub, clock = await start_hub(t0)
    station, [port] = make_station(hub, "Cloud", 1)
    engine = engine_of(hub)
    _status(hub, station, port, "Faulted")
    await goto(clock, t0 + H)
    _unknown(hub, station)
    await hub.block_till_done()
    assert engine.open_outages() == []
    assert engine.unknown_stations() == {station: t0 + H}
    await goto(clock, t0 + 5 * H)  # four hours unknown: no outage
    assert engine.open_outages() == []
    _status(hub, station, port, "Faulted")  # heard of again: still faulted
    await goto(clock, t0 + 6 * H)
    _status(hub, station, port, "Available")
    await hub.block_till_done()
    spans = [(o.start - t0, o.end - t0) for o in engine.outages(port) if o.end is not None]
    assert spans == [(0.0, H), (5 * H, 6 * H)]
    assert engine.unknown_stations() == {}


async def test_unknown_is_not_offline_and_offline_after_it_is(start_hub: StartHub) -> None:
    t0 = at(5, 4, 8)
    hub, clock = await start_hub(t0)
    station, [port] = make_station(hub, "Cloud", 1)
    engine = engine_of(hub)
    fire_charger_event(hub, ChargerEventKind.OFFLINE, station_id=station)
    await goto(clock, t0 + H)
    _unknown(hub, station)
    await goto(clock, t0 + 2 * H)
    assert engine.open_outages() == []
    fire_charger_event(hub, ChargerEventKind.OFFLINE, station_id=station)  # the cloud is back
    await goto(clock, t0 + 3 * H)
    fire_charger_event(hub, ChargerEventKind.ONLINE, station_id=station)
    await hub.block_till_done()
    spans = [(o.cause, o.start - t0, o.end - t0) for o in engine.outages(port) if o.end]
    assert spans == [("offline", 0.0, H), ("offline", 2 * H, 3 * H)]


class _Away(Charger):
    """A driver whose source is away: not online."""

    @property
    def online(self) -> bool:
        return False


async def test_a_station_unknown_at_the_grace_end_is_not_counted_offline(
    start_hub: StartHub,
) -> None:
    t0 = at(5, 4, 8)
    hub, clock = await start_hub(t0)
    station, _ports = make_station(hub, "Cloud", 1)
    other, _other_ports = make_station(hub, "Gone", 1)
    unregister = [register_charger(hub, _Away(station)), register_charger(hub, _Away(other))]
    _unknown(hub, station)
    await goto(clock, t0 + 600)  # past the start's offline grace
    causes = {(o.station_id, o.cause) for o in engine_of(hub).open_outages()}
    assert causes == {(other, "offline")}  # the one not heard of at all is offline
    for undo in unregister:
        undo()
