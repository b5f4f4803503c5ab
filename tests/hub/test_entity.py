"""Entities through the platform: registered devices, stable ids, attributes, restarts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.bootstrap import new_hub
from hub.core import Hub
from hub.entity import DeviceInfo, Entity, EntityDescription, EntityPlatform
from hub.exceptions import HubError
from hub.http import DATA_HTTP
from hub.registry import DeviceKind, device_registry, entity_registry

POWER = EntityDescription(key="power", name="power", device_class="power", unit_of_measurement="W")
STATUS = EntityDescription(key="status", name="status")

STATION = DeviceInfo(
    identifiers=frozenset({("test", "CP1")}),
    kind=DeviceKind.STATION,
    name="Bay 1",
    manufacturer="ACME",
    model="DC50",
    serial_number="SN-1",
    sw_version="1.0.3",
)
CONNECTOR = DeviceInfo(
    identifiers=frozenset({("test", "CP1-1")}),
    kind=DeviceKind.CONNECTOR,
    name="Bay 1 connector 1",
    via_device=("test", "CP1"),
    connector_id=1,
)


class Session(Entity):
    """An entity with attributes besides name and unit."""

    def __init__(self) -> None:
        super().__init__(EntityDescription(key="session"), "CP1-session", STATION)
        self.energy = 0.0

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        return {"energy_kwh": self.energy}


async def test_entities_get_ids_devices_and_attributes(hub: Hub) -> None:
    platform = EntityPlatform(hub, "test")
    power = Entity(POWER, "CP1-power", STATION)
    power.native_value = 7400
    status = Entity(STATUS, "CP1-1-status", CONNECTOR)
    status.native_value = "Charging"
    await platform.add_entities([power, status])

    assert power.entity_id == "sensor.bay_1_power"
    state = hub.states.get("sensor.bay_1_power")
    assert state is not None
    assert state.state == "7400"
    assert dict(state.attributes) == {
        "friendly_name": "Bay 1 power",
        "unit_of_measurement": "W",
        "device_class": "power",
    }
    assert hub.states.get("sensor.bay_1_connector_1_status").state == "Charging"

    devices = device_registry(hub)
    station = devices.get_by_identifier(("test", "CP1"))
    connector = devices.get_by_identifier(("test", "CP1-1"))
    assert station is not None
    assert connector is not None
    assert station.model == "DC50"
    assert connector.via_device_id == station.id
    assert devices.station_of(connector.id) == station
    entry = entity_registry(hub).get("sensor.bay_1_connector_1_status")
    assert entry is not None
    assert entry.device_id == connector.id
    assert entry.platform == "test"


async def test_state_strings_for_none_bool_and_unavailable(hub: Hub) -> None:
    platform = EntityPlatform(hub, "test")
    entity = Entity(STATUS, "x", None)
    await platform.add_entities([entity])
    assert hub.states.get("sensor.status").state == "unknown"
    entity.native_value = True
    entity.write_state()
    assert hub.states.get("sensor.status").state == "on"
    entity.available = False
    entity.write_state()
    assert hub.states.get("sensor.status").state == "unavailable"


async def test_unchanged_attributes_are_shared_between_writes(hub: Hub) -> None:
    platform = EntityPlatform(hub, "test")
    power = Entity(POWER, "CP1-power", STATION)
    await platform.add_entities([power])
    first = hub.states.get("sensor.bay_1_power")
    power.native_value = 1
    second = power.write_state()
    assert first is not None
    assert second.attributes is first.attributes


async def test_extra_attributes(hub: Hub) -> None:
    platform = EntityPlatform(hub, "test")
    session = Session()
    await platform.add_entities([session])
    session.energy = 12.5
    state = session.write_state()
    assert state.attributes["energy_kwh"] == 12.5
    assert state.attributes["friendly_name"] == "Bay 1 session"


async def test_entity_ids_are_stable_across_restarts(tmp_path: Path) -> None:
    async def run_once(value: int) -> tuple[str | None, str | None]:
        hub = new_hub(tmp_path)
        await hub.start()
        platform = EntityPlatform(hub, "test")
        power = Entity(POWER, "CP1-power", STATION)
        power.native_value = value
        # A second entity with the same name gets a suffix, the same one every time.
        clash = Entity(POWER, "CP1-power-b", STATION)
        await platform.add_entities([power, clash])
        last = power.last_state()
        result = (clash.entity_id, last.state if last else None)
        await platform.unload()
        await hub.stop()
        return result

    assert await run_once(100) == ("sensor.bay_1_power_2", None)
    assert await run_once(200) == ("sensor.bay_1_power_2", "100")


async def test_entity_not_added_cannot_write() -> None:
    entity = Entity(STATUS, "lonely")
    with pytest.raises(HubError, match="not added"):
        entity.write_state()


async def test_remove_entity_removes_state(hub: Hub) -> None:
    platform = EntityPlatform(hub, "test")
    entity = Entity(STATUS, "gone", None)
    await platform.add_entities([entity])
    await platform.remove_entity("sensor.status")
    assert hub.states.get("sensor.status") is None


async def test_health_endpoint(tmp_path: Path) -> None:
    tmp_path.joinpath("configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n"
    )
    hub = new_hub(tmp_path)
    await hub.start()
    port = hub.data[DATA_HTTP].port
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/api/health") as response,
    ):
        body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok"
    assert body["state"] == "RUNNING"
    await hub.stop()


async def test_an_entity_group_registers_each_entity_when_first_written(hub: Hub) -> None:
    from hub.entity import EntityGroup

    table = {
        "power": EntityDescription(
            key="power", name="power", unit_of_measurement="W", device_class="power"
        ),
        "soc": EntityDescription(key="soc", name="state of charge", unit_of_measurement="%"),
    }
    group = EntityGroup("acme", table, "dev-1", "bay1-1", "Bay 1 connector 1")
    assert entity_registry(hub).entities("acme") == []
    group.write(hub, "power", 7400.0)
    group.write(hub, "power", None, extra={"phase": "L1"})
    [entry] = entity_registry(hub).entities("acme")
    assert (entry.entity_id, entry.unique_id, entry.device_id) == (
        "sensor.bay_1_connector_1_power",
        "bay1-1-power",
        "dev-1",
    )
    state = hub.states.get("sensor.bay_1_connector_1_power")
    assert state is not None
    assert state.state == "unknown"
    assert dict(state.attributes) == {
        "friendly_name": "Bay 1 connector 1 power",
        "unit_of_measurement": "W",
        "device_class": "power",
        "phase": "L1",
    }
    # No extra: every write shares the one fixed attribute mapping.
    group.write(hub, "power", 1.0)
    first = hub.states.get("sensor.bay_1_connector_1_power")
    group.write(hub, "power", 2.0)
    second = hub.states.get("sensor.bay_1_connector_1_power")
    assert first is not None
    assert second is not None
    assert first.attributes is second.attributes
    assert group.entity_id(hub, "soc") == "sensor.bay_1_connector_1_state_of_charge"
