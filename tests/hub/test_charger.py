"""The charger.* services, shown with the third-party ACME integration and a test driver."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import new_hub
from hub.charger import (
    Charger,
    ChargerCapability,
    ChargerCommandError,
    ConnectorStatus,
    ResetType,
    register_charger,
    register_single_port_station,
    status_from_iec61851,
    status_from_ocpp201,
)
from hub.core import Context, Event, Hub
from hub.exceptions import (
    CapabilityNotSupportedError,
    DeviceNotFoundError,
    ServiceValidationError,
)
from hub.registry import DeviceKind, device_registry


@pytest.fixture
async def acme_hub(acme_installed: Path, tmp_path: Path) -> AsyncIterator[Hub]:
    tmp_path.joinpath("configuration.yaml").write_text(
        textwrap.dedent(
            """
            http:
              server_port: 0
            acme:
              stations:
                - id: ACME-1
                  name: Garage
                  connectors: 2
                - id: ACME-2
                  name: Street
            """
        )
    )
    hub = new_hub(tmp_path)
    await hub.start()
    yield hub
    await hub.stop()


def station_id(hub: Hub, ident: str) -> str:
    device = device_registry(hub).get_by_identifier(("acme", ident))
    assert device is not None
    return device.id


async def test_charger_services_are_registered(hub: Hub) -> None:
    services = hub.services.services()["charger"]
    assert set(services) == {
        "reset",
        "set_availability",
        "unlock_connector",
        "set_current_limit",
        "start_charging",
        "stop_charging",
        "trigger_status",
        "update_firmware",
        "set_phases",
    }


def wallbox_of(hub: Hub, ident: str) -> Any:
    """The ACME plugin's charger object of a station."""
    from hub.charger import get_charger

    return get_charger(hub, station_id(hub, ident))


async def test_reset_reaches_the_owning_integration(acme_hub: Hub) -> None:
    device_id = station_id(acme_hub, "ACME-1")
    result = await acme_hub.services.call(
        "charger", "reset", {"type": "hard"}, target={"device_id": device_id}
    )
    assert result == {device_id: "Accepted"}
    wallbox = wallbox_of(acme_hub, "ACME-1")
    assert wallbox.commands == [("reset", ResetType.HARD)]
    assert wallbox_of(acme_hub, "ACME-2").commands == []


async def test_target_by_connector_entity_locks_that_connector(acme_hub: Hub) -> None:
    await acme_hub.services.call(
        "charger",
        "set_availability",
        {"available": False},
        target={"entity_id": "sensor.garage_connector_2_status"},
    )
    assert acme_hub.states.get("sensor.garage_connector_2_status").state == "Unavailable"
    assert acme_hub.states.get("sensor.garage_connector_1_status").state == "Available"
    assert wallbox_of(acme_hub, "ACME-1").commands == [("set_availability", (False, 2))]


async def test_connector_device_target_resolves_to_station(acme_hub: Hub) -> None:
    connector = device_registry(acme_hub).get_by_identifier(("acme", "ACME-1-1"))
    assert connector is not None
    assert connector.kind is DeviceKind.CONNECTOR
    await acme_hub.services.call(
        "charger", "set_availability", {"available": False, "device_id": connector.id}
    )
    assert wallbox_of(acme_hub, "ACME-1").commands == [("set_availability", (False, 1))]


async def test_missing_capability_is_a_clear_error(acme_hub: Hub) -> None:
    with pytest.raises(CapabilityNotSupportedError, match=r"Garage .* does not support unlock"):
        await acme_hub.services.call(
            "charger",
            "unlock_connector",
            {"connector_id": 1},
            target={"device_id": station_id(acme_hub, "ACME-1")},
        )
    assert wallbox_of(acme_hub, "ACME-1").commands == []


async def test_bad_data_and_unknown_targets(acme_hub: Hub) -> None:
    device_id = station_id(acme_hub, "ACME-1")
    with pytest.raises(ServiceValidationError, match="type"):
        await acme_hub.services.call(
            "charger", "reset", {"type": "violent"}, target={"device_id": device_id}
        )
    with pytest.raises(DeviceNotFoundError, match="device nope not found"):
        await acme_hub.services.call("charger", "reset", target={"device_id": "nope"})
    with pytest.raises(DeviceNotFoundError, match="needs a target"):
        await acme_hub.services.call("charger", "reset")
    with pytest.raises(DeviceNotFoundError, match=r"sensor\.unknown"):
        await acme_hub.services.call("charger", "reset", target={"entity_id": "sensor.unknown"})


class RecordingCharger(Charger):
    """A test driver with every capability, failing on demand."""

    capabilities = (
        ChargerCapability.RESET
        | ChargerCapability.SET_CURRENT_LIMIT
        | ChargerCapability.UNLOCK_CONNECTOR
        | ChargerCapability.START_STOP
        | ChargerCapability.TRIGGER_STATUS
        | ChargerCapability.UPDATE_FIRMWARE
        | ChargerCapability.SET_PHASES
    )

    def __init__(self, device_id: str, fail: bool = False) -> None:
        super().__init__(device_id)
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []

    async def reset(self, reset_type: ResetType) -> str:
        if self.fail:
            raise TimeoutError("charger did not answer")
        self.calls.append(("reset", reset_type))
        return "Accepted"

    async def set_current_limit(self, limit: float, connector_id: int | None) -> str:
        self.calls.append(("limit", (limit, connector_id)))
        return "Accepted"

    async def unlock_connector(self, connector_id: int) -> str:
        self.calls.append(("unlock", connector_id))
        return "Unlocked"

    async def start_charging(self, connector_id: int | None, id_tag: str | None) -> str:
        self.calls.append(("start", (connector_id, id_tag)))
        return "Accepted"

    async def stop_charging(self, connector_id: int | None) -> str:
        self.calls.append(("stop", connector_id))
        return "Accepted"

    async def trigger_status(self, connector_id: int | None) -> str:
        self.calls.append(("trigger", connector_id))
        return "Accepted"

    async def update_firmware(self, location: str, retrieve_at: Any) -> str:
        self.calls.append(("firmware", (location, retrieve_at)))
        return "Accepted"

    async def set_phases(self, phases: int, connector_id: int | None) -> str:
        self.calls.append(("phases", (phases, connector_id)))
        return "Accepted"


def add_station(hub: Hub, ident: str, fail: bool = False) -> RecordingCharger:
    device = device_registry(hub).get_or_create(
        integration="test", identifiers=frozenset({("test", ident)}), kind=DeviceKind.STATION
    )
    charger = RecordingCharger(device.id, fail)
    register_charger(hub, charger)
    return charger


async def test_every_capability_dispatches(hub: Hub) -> None:
    charger = add_station(hub, "T1")
    target = {"device_id": charger.device_id}
    call = hub.services.call
    await call("charger", "set_current_limit", {"limit": "16", "connector_id": 1}, target)
    await call("charger", "unlock_connector", {"connector_id": 2}, target)
    await call("charger", "start_charging", {"id_tag": "RFID1", "connector_id": 1}, target)
    await call("charger", "stop_charging", {"connector_id": 1}, target)
    await call("charger", "trigger_status", {}, target)
    await call(
        "charger",
        "update_firmware",
        {"location": "https://fw.example.com/v2.bin", "retrieve_at": "2026-12-01T02:00:00+00:00"},
        target,
    )
    assert [name for name, _ in charger.calls] == [
        "limit",
        "unlock",
        "start",
        "stop",
        "trigger",
        "firmware",
    ]
    assert charger.calls[0] == ("limit", (16.0, 1))
    assert charger.calls[-1][1][1].year == 2026
    with pytest.raises(ServiceValidationError, match="limit"):
        await call("charger", "set_current_limit", {"limit": -3}, target)
    with pytest.raises(ServiceValidationError, match="location"):
        await call("charger", "update_firmware", {"location": "not a url"}, target)


async def test_set_phases_dispatches_one_or_three_and_needs_the_capability(hub: Hub) -> None:
    charger = add_station(hub, "PH")
    target = {"device_id": charger.device_id}
    await hub.services.call("charger", "set_phases", {"phases": "1"}, target)
    assert charger.calls == [("phases", (1, None))]
    with pytest.raises(ServiceValidationError, match="phases"):
        await hub.services.call("charger", "set_phases", {"phases": 2}, target)
    charger.capabilities = ChargerCapability.RESET
    with pytest.raises(CapabilityNotSupportedError, match="set_phases"):
        await hub.services.call("charger", "set_phases", {"phases": 3}, target)


async def test_a_device_without_charger_is_an_error(hub: Hub) -> None:
    device = device_registry(hub).get_or_create(
        integration="test", identifiers=frozenset({("test", "lonely")}), kind=DeviceKind.STATION
    )
    with pytest.raises(DeviceNotFoundError, match="no charger integration controls"):
        await hub.services.call("charger", "reset", target={"device_id": device.id})


async def test_several_targets_report_each_outcome(hub: Hub) -> None:
    good = add_station(hub, "GOOD")
    bad = add_station(hub, "BAD", fail=True)
    with pytest.raises(ChargerCommandError) as info:
        await hub.services.call(
            "charger", "reset", target={"device_id": [good.device_id, bad.device_id]}
        )
    assert info.value.results[good.device_id] == "Accepted"
    assert isinstance(info.value.results[bad.device_id], TimeoutError)
    assert good.calls == [("reset", ResetType.SOFT)]


async def test_single_target_raises_the_drivers_error(hub: Hub) -> None:
    bad = add_station(hub, "BAD", fail=True)
    with pytest.raises(TimeoutError, match="did not answer"):
        await hub.services.call("charger", "reset", target={"device_id": bad.device_id})


async def test_call_carries_context_to_the_event(hub: Hub) -> None:
    charger = add_station(hub, "CTX")
    seen: list[Event] = []
    hub.bus.listen("call_service", seen.append)
    context = Context(user_id="operator-1")
    await hub.services.call(
        "charger", "reset", target={"device_id": charger.device_id}, context=context
    )
    assert seen[0].context is context
    assert seen[0].data["target"] == {"device_id": charger.device_id}


def test_status_vocabulary_across_protocols() -> None:
    assert status_from_ocpp201("Available") is ConnectorStatus.AVAILABLE
    assert status_from_ocpp201("Occupied") is ConnectorStatus.PREPARING
    assert status_from_ocpp201("Occupied", "Charging") is ConnectorStatus.CHARGING
    assert status_from_ocpp201("Occupied", "SuspendedEV") is ConnectorStatus.SUSPENDED_EV
    assert status_from_ocpp201("Faulted") is ConnectorStatus.FAULTED
    assert status_from_ocpp201("Unavailable") is ConnectorStatus.UNAVAILABLE
    with pytest.raises(ValueError, match="Broken"):
        status_from_ocpp201("Broken")
    assert status_from_iec61851("A") is ConnectorStatus.AVAILABLE
    assert status_from_iec61851("B2") is ConnectorStatus.SUSPENDED_EV
    assert status_from_iec61851("C") is ConnectorStatus.CHARGING
    assert status_from_iec61851("D") is ConnectorStatus.CHARGING
    assert status_from_iec61851("E") is ConnectorStatus.FAULTED
    assert status_from_iec61851("F") is ConnectorStatus.FAULTED
    with pytest.raises(ValueError, match="G"):
        status_from_iec61851("G")


async def test_unlock_needs_a_connector(hub: Hub) -> None:
    charger = add_station(hub, "U1")
    with pytest.raises(ServiceValidationError, match="needs a connector"):
        await hub.services.call(
            "charger", "unlock_connector", target={"device_id": charger.device_id}
        )
    assert charger.calls == []


async def test_register_single_port_station_files_station_connector_and_site(hub: Hub) -> None:
    station, port = register_single_port_station(
        hub, "wb", "W-1", "Wallbox", site=("site:Depot", "Depot"), manufacturer="ACME"
    )
    devices = device_registry(hub)
    site = devices.get_by_identifier(("wb", "site:Depot"))
    assert site is not None
    assert (site.kind, site.name) == (DeviceKind.SITE, "Depot")
    assert (station.kind, station.name, station.manufacturer) == (
        DeviceKind.STATION,
        "Wallbox",
        "ACME",
    )
    assert station.via_device_id == site.id
    assert (port.kind, port.name, port.connector_id) == (
        DeviceKind.CONNECTOR,
        "Wallbox connector 1",
        1,
    )
    assert devices.station_of(port.id) == station
    # Registering again finds the same devices.
    again = register_single_port_station(hub, "wb", "W-1", "Wallbox")
    assert (again[0].id, again[1].id) == (station.id, port.id)
