"""Device and entity registries: hierarchy, stable ids, events and persistence."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import new_hub
from hub.const import EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED
from hub.core import Event, Hub
from hub.exceptions import DeviceNotFoundError, HubError, RegistryError
from hub.registry import (
    DeviceEntry,
    DeviceKind,
    DeviceRegistry,
    async_load_registries,
    async_sync_registries,
    device_registry,
    entity_registry,
)
from hub.restore_state import async_load_restore_state
from hub.util import slugify


def collect(hub: Hub, event_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def listener(event: Event) -> None:
        found.append(dict(event.data))

    hub.bus.listen(event_type, listener)
    return found


def build_site(devices: DeviceRegistry) -> dict[str, DeviceEntry]:
    """A site with one station, one EVSE and two connectors."""
    site = devices.get_or_create(
        integration="ocpp", identifiers={("ocpp", "site-1")}, kind=DeviceKind.SITE, name="Depot"
    )
    station = devices.get_or_create(
        integration="ocpp",
        identifiers={("ocpp", "CP1")},
        kind=DeviceKind.STATION,
        name="Bay 1",
        via_device=("ocpp", "site-1"),
        manufacturer="Alfen",
        model="Eve Double",
        serial_number="ACE0001",
    )
    evse = devices.get_or_create(
        integration="ocpp",
        identifiers={("ocpp", "CP1-E1")},
        kind=DeviceKind.EVSE,
        via_device_id=station.id,
        evse_id=1,
    )
    connectors = [
        devices.get_or_create(
            integration="ocpp",
            identifiers={("ocpp", f"CP1-E1-C{n}")},
            kind=DeviceKind.CONNECTOR,
            via_device=("ocpp", "CP1-E1"),
            evse_id=1,
            connector_id=n,
        )
        for n in (1, 2)
    ]
    return {
        "site": site,
        "station": station,
        "evse": evse,
        "c1": connectors[0],
        "c2": connectors[1],
    }


async def test_slugify() -> None:
    assert slugify("Borne Nord #2") == "borne_nord_2"
    assert slugify("  Straße Größe  ") == "strasse_grosse"
    assert slugify("Élan -- Øst") == "elan_ost"
    assert slugify("!!!") == ""


async def test_accessors_refuse_before_load(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    with pytest.raises(HubError, match="not loaded"):
        device_registry(hub)
    with pytest.raises(HubError, match="not loaded"):
        entity_registry(hub)


async def test_load_is_idempotent(hub: Hub) -> None:
    await async_load_registries(hub)
    devices, entities = device_registry(hub), entity_registry(hub)
    await async_load_registries(hub)
    assert device_registry(hub) is devices
    assert entity_registry(hub) is entities


async def test_device_created_with_fields_and_found_by_identifier(hub: Hub) -> None:
    await async_load_registries(hub)
    devices = device_registry(hub)
    events = collect(hub, EVENT_DEVICE_REGISTRY_UPDATED)

    station = devices.get_or_create(
        integration="ocpp",
        identifiers=[("ocpp", "CP1"), ("serial", "ACE0001")],
        kind=DeviceKind.STATION,
        name="Bay 1",
        manufacturer="Alfen",
        sw_version="6.1",
    )

    assert len(station.id) == 32
    assert station.kind is DeviceKind.STATION
    assert station.integration == "ocpp"
    assert station.manufacturer == "Alfen"
    assert station.disabled is False
    assert station.created_at == station.modified_at
    assert devices.get(station.id) is station
    assert devices.get_by_identifier(("serial", "ACE0001")) is station
    assert devices.get_by_identifier(("ocpp", "nope")) is None
    assert events == [{"action": "create", "device_id": station.id}]


async def test_get_or_create_updates_only_what_changed_and_keeps_the_id(hub: Hub) -> None:
    await async_load_registries(hub)
    devices = device_registry(hub)
    first = devices.get_or_create(
        integration="ocpp",
        identifiers={("ocpp", "CP1")},
        kind=DeviceKind.STATION,
        name="Bay 1",
        sw_version="6.1",
    )
    events = collect(hub, EVENT_DEVICE_REGISTRY_UPDATED)

    same = devices.get_or_create(
        integration="ocpp", identifiers={("ocpp", "CP1")}, kind=DeviceKind.STATION, name="Bay 1"
    )
    assert same is first
    assert events == []

    updated = devices.get_or_create(
        integration="ocpp",
        identifiers={("ocpp", "CP1"), ("mac", "00:11")},
        kind=DeviceKind.STATION,
        sw_version="6.2",
    )
    assert updated.id == first.id
    assert updated.name == "Bay 1"  # not given, kept
    assert updated.sw_version == "6.2"
    assert updated.identifiers == {("ocpp", "CP1"), ("mac", "00:11")}
    assert updated.created_at == first.created_at
    assert updated.modified_at >= first.modified_at
    assert devices.get_by_identifier(("mac", "00:11")) is updated
    assert events == [
        {
            "action": "update",
            "device_id": first.id,
            "changes": {"sw_version": "6.1", "identifiers": first.identifiers},
        }
    ]


async def test_get_or_create_refuses_bad_input(hub: Hub) -> None:
    await async_load_registries(hub)
    devices = device_registry(hub)
    a = devices.get_or_create(integration="x", identifiers={("x", "a")}, kind=DeviceKind.OTHER)
    devices.get_or_create(integration="x", identifiers={("x", "b")}, kind=DeviceKind.OTHER)

    with pytest.raises(DeviceNotFoundError, match="not registered"):
        devices.get_or_create(
            integration="x", identifiers={("x", "c")}, kind=DeviceKind.EVSE, via_device=("x", "z")
        )
    with pytest.raises(DeviceNotFoundError):
        devices.get_or_create(
            integration="x", identifiers={("x", "c")}, kind=DeviceKind.EVSE, via_device_id="nope"
        )
    with pytest.raises(RegistryError, match="different devices"):
        devices.get_or_create(
            integration="x", identifiers={("x", "a"), ("x", "b")}, kind=DeviceKind.OTHER
        )
    with pytest.raises(RegistryError, match="pair"):
        devices.get_or_create(integration="x", identifiers=("x", "a"), kind=DeviceKind.OTHER)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="at least one"):
        devices.get_or_create(integration="x", identifiers=[], kind=DeviceKind.OTHER)
    with pytest.raises(TypeError, match="colour"):
        devices.get_or_create(
            integration="x", identifiers={("x", "a")}, kind=DeviceKind.OTHER, colour="red"
        )
    with pytest.raises(RegistryError, match="ancestor"):
        devices.update(a.id, via_device_id=a.id)
    with pytest.raises(DeviceNotFoundError):
        devices.update("nope", name="x")
    assert len(devices) == 2


async def test_hierarchy_children_and_station_of(hub: Hub) -> None:
    await async_load_registries(hub)
    devices = device_registry(hub)
    d = build_site(devices)

    assert d["station"].via_device_id == d["site"].id
    assert d["evse"].via_device_id == d["station"].id
    assert d["c1"].via_device_id == d["evse"].id
    assert devices.children(d["site"].id) == [d["station"]]
    assert {c.id for c in devices.children(d["evse"].id)} == {d["c1"].id, d["c2"].id}
    assert devices.children(d["c1"].id) == []

    for key in ("station", "evse", "c1", "c2"):
        assert devices.station_of(d[key].id) == d["station"]
    assert devices.station_of(d["site"].id) is None
    assert devices.station_of("unknown") is None

    assert {e.id for e in devices.devices(kind=DeviceKind.CONNECTOR)} == {d["c1"].id, d["c2"].id}
    assert len(devices.devices(integration="ocpp")) == 5
    assert devices.devices(integration="modbus") == []


async def test_moving_a_device_under_its_descendant_is_refused(hub: Hub) -> None:
    await async_load_registries(hub)
    devices = device_registry(hub)
    d = build_site(devices)
    with pytest.raises(RegistryError, match="ancestor"):
        devices.update(d["station"].id, via_device_id=d["c1"].id)
    assert devices.get(d["station"].id) == d["station"]
    moved = devices.update(d["c2"].id, via_device_id=d["station"].id)
    assert devices.children(d["evse"].id) == [d["c1"]]
    assert moved in devices.children(d["station"].id)


async def test_remove_cascades_to_descendants_and_their_entities(hub: Hub) -> None:
    await async_load_registries(hub)
    devices, entities = device_registry(hub), entity_registry(hub)
    d = build_site(devices)
    site_entity = entities.get_or_create(
        "sensor", "ocpp", "site-power", suggested_object_id="Depot power", device_id=d["site"].id
    )
    station_entity = entities.get_or_create(
        "sensor",
        "ocpp",
        "CP1-status",
        suggested_object_id="Bay 1 status",
        device_id=d["station"].id,
    )
    connector_entity = entities.get_or_create(
        "sensor", "ocpp", "CP1-C1-status", suggested_object_id="C1 status", device_id=d["c1"].id
    )
    device_events = collect(hub, EVENT_DEVICE_REGISTRY_UPDATED)
    entity_events = collect(hub, EVENT_ENTITY_REGISTRY_UPDATED)

    devices.remove(d["station"].id)

    assert [d_.id for d_ in devices.devices()] == [d["site"].id]
    assert devices.children(d["site"].id) == []
    assert devices.get_by_identifier(("ocpp", "CP1-E1-C1")) is None
    assert {e["device_id"] for e in device_events} == {
        d[k].id for k in ("station", "evse", "c1", "c2")
    }
    assert device_events[-1] == {"action": "remove", "device_id": d["station"].id}
    assert entities.get(station_entity.entity_id) is None
    assert entities.get(connector_entity.entity_id) is None
    assert entities.get(site_entity.entity_id) == site_entity
    assert {e["entity_id"] for e in entity_events} == {
        station_entity.entity_id,
        connector_entity.entity_id,
    }
    assert all(e["action"] == "remove" for e in entity_events)
    with pytest.raises(DeviceNotFoundError):
        devices.remove(d["station"].id)


async def test_entity_id_is_slugified_stable_and_indexed(hub: Hub) -> None:
    await async_load_registries(hub)
    entities = entity_registry(hub)
    events = collect(hub, EVENT_ENTITY_REGISTRY_UPDATED)

    entry = entities.get_or_create(
        "sensor", "ocpp", "CP1-1-power", suggested_object_id="Bay 1 · Power (kW)"
    )
    assert entry.entity_id == "sensor.bay_1_power_kw"
    assert entry.platform == "ocpp"
    assert entry.domain == "sensor"
    assert entities.get_entity_id("sensor", "ocpp", "CP1-1-power") == "sensor.bay_1_power_kw"
    assert entities.get_entity_id("sensor", "modbus", "CP1-1-power") is None
    assert events == [{"action": "create", "entity_id": "sensor.bay_1_power_kw"}]

    again = entities.get_or_create(
        "sensor", "ocpp", "CP1-1-power", suggested_object_id="Something else entirely"
    )
    assert again is entry
    assert len(events) == 1


async def test_entity_id_is_deduplicated_against_registry_and_states(hub: Hub) -> None:
    await async_load_registries(hub)
    entities = entity_registry(hub)
    hub.states.set("sensor.status_3", "on")

    ids = [
        entities.get_or_create("sensor", "ocpp", f"u{n}", suggested_object_id="Status").entity_id
        for n in range(4)
    ]
    assert ids == ["sensor.status", "sensor.status_2", "sensor.status_4", "sensor.status_5"]
    other_domain = entities.get_or_create("switch", "ocpp", "u0", suggested_object_id="Status")
    assert other_domain.entity_id == "switch.status"
    unnamed = entities.get_or_create("sensor", "ocpp", "u9", suggested_object_id="???")
    assert unnamed.entity_id == "sensor.unnamed"
    with pytest.raises(RegistryError, match="domain"):
        entities.get_or_create("Bad Domain", "ocpp", "u1", suggested_object_id="x")


async def test_entity_update_rename_name_disable(hub: Hub) -> None:
    await async_load_registries(hub)
    entities = entity_registry(hub)
    entry = entities.get_or_create(
        "sensor", "ocpp", "u1", suggested_object_id="Power", original_name="Power"
    )
    entities.get_or_create("sensor", "ocpp", "u2", suggested_object_id="Energy")
    hub.states.set("sensor.somebody_else", "1")
    events = collect(hub, EVENT_ENTITY_REGISTRY_UPDATED)

    with pytest.raises(RegistryError, match="invalid entity id"):
        entities.update(entry.entity_id, new_entity_id="sensor.Bad Id")
    with pytest.raises(RegistryError, match="not in domain"):
        entities.update(entry.entity_id, new_entity_id="switch.power")
    with pytest.raises(RegistryError, match="taken"):
        entities.update(entry.entity_id, new_entity_id="sensor.energy")
    with pytest.raises(RegistryError, match="taken"):
        entities.update(entry.entity_id, new_entity_id="sensor.somebody_else")
    with pytest.raises(DeviceNotFoundError):
        entities.update("sensor.nope", name="x")
    assert events == []

    renamed = entities.update(
        entry.entity_id, new_entity_id="sensor.bay_power", name="Bay power", disabled=True
    )
    assert renamed.entity_id == "sensor.bay_power"
    assert renamed.name == "Bay power"
    assert renamed.display_name == "Bay power"
    assert renamed.disabled is True
    assert entities.get("sensor.power") is None
    assert entities.get("sensor.bay_power") == renamed
    assert entities.get_entity_id("sensor", "ocpp", "u1") == "sensor.bay_power"
    assert events == [
        {
            "action": "update",
            "entity_id": "sensor.bay_power",
            "old_entity_id": "sensor.power",
            "changes": {"entity_id": "sensor.power", "name": None, "disabled": False},
        }
    ]
    cleared = entities.update("sensor.bay_power", name=None)
    assert cleared.name is None
    assert cleared.display_name == "Power"
    # The platform asks again after the rename: it gets the renamed id.
    again = entities.get_or_create("sensor", "ocpp", "u1", suggested_object_id="Power")
    assert again.entity_id == "sensor.bay_power"


async def test_entity_remove_and_queries(hub: Hub) -> None:
    await async_load_registries(hub)
    devices, entities = device_registry(hub), entity_registry(hub)
    d = build_site(devices)
    a = entities.get_or_create(
        "sensor", "ocpp", "a", suggested_object_id="A", device_id=d["station"].id
    )
    b = entities.get_or_create(
        "switch", "ocpp", "b", suggested_object_id="B", device_id=d["station"].id
    )
    c = entities.get_or_create("sensor", "modbus", "c", suggested_object_id="C")

    assert {e.entity_id for e in entities.entities_for_device(d["station"].id)} == {
        a.entity_id,
        b.entity_id,
    }
    assert entities.entities(platform="modbus") == [c]
    assert len(entities.entities()) == 3

    entities.remove(a.entity_id)
    assert entities.get(a.entity_id) is None
    assert entities.get_entity_id("sensor", "ocpp", "a") is None
    assert entities.entities_for_device(d["station"].id) == [b]
    with pytest.raises(DeviceNotFoundError):
        entities.remove(a.entity_id)
    # Registered afresh, it gets its id back since nothing holds it.
    assert entities.get_or_create("sensor", "ocpp", "a", suggested_object_id="A").entity_id == (
        a.entity_id
    )


async def test_registries_survive_a_restart(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    await hub.start()
    await async_load_registries(hub)
    d = build_site(device_registry(hub))
    entities = entity_registry(hub)
    status = entities.get_or_create(
        "sensor", "ocpp", "CP1-C1-status", suggested_object_id="Status", device_id=d["c1"].id
    )
    taken = entities.get_or_create("sensor", "ocpp", "CP1-C2-status", suggested_object_id="Status")
    renamed = entities.update(taken.entity_id, new_entity_id="sensor.c2_status", name="C2")
    await hub.stop()

    document = json.loads(tmp_path.joinpath(".storage", "core.device_registry").read_text())
    assert document["version"] == 1
    assert document["key"] == "core.device_registry"
    assert len(document["data"]["devices"]) == 5
    document = json.loads(tmp_path.joinpath(".storage", "core.entity_registry").read_text())
    assert document["version"] == 1
    assert len(document["data"]["entities"]) == 2

    hub2 = new_hub(tmp_path)
    await hub2.start()
    await async_load_registries(hub2)
    devices2, entities2 = device_registry(hub2), entity_registry(hub2)
    for entry in d.values():
        assert devices2.get(entry.id) == entry
    assert devices2.get_by_identifier(("ocpp", "CP1-E1-C2")) == d["c2"]
    assert devices2.station_of(d["c2"].id) == d["station"]
    assert {c.id for c in devices2.children(d["evse"].id)} == {d["c1"].id, d["c2"].id}

    assert entities2.get(status.entity_id) == status
    assert entities2.get("sensor.c2_status") == renamed
    assert entities2.entities_for_device(d["c1"].id) == [status]
    # The same unique ids get the same entity ids, whatever name is suggested now.
    again = entities2.get_or_create("sensor", "ocpp", "CP1-C1-status", suggested_object_id="New")
    assert again.entity_id == "sensor.status"
    again = entities2.get_or_create("sensor", "ocpp", "CP1-C2-status", suggested_object_id="New")
    assert again.entity_id == "sensor.c2_status"
    await hub2.stop()


async def test_changes_are_saved_once_after_a_burst(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    await hub.start()
    await async_load_registries(hub)
    devices = device_registry(hub)
    devices.save_delay = 0.01
    path = tmp_path.joinpath(".storage", "core.device_registry")
    build_site(devices)
    assert not path.exists()
    await devices.async_flush()
    assert len(json.loads(path.read_text())["data"]["devices"]) == 5
    await hub.stop()


async def test_bad_entries_in_registry_files_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = tmp_path.joinpath(".storage")
    storage.mkdir()
    good_device = DeviceEntry(
        identifiers=frozenset({("x", "1")}), kind=DeviceKind.STATION, integration="x"
    ).as_dict()
    storage.joinpath("core.device_registry").write_text(
        json.dumps(
            {"version": 1, "key": "core.device_registry", "data": {"devices": [
                good_device, {"id": "broken"}, {**good_device, "kind": "toaster"}
            ]}}
        )
    )  # fmt: skip
    storage.joinpath("core.entity_registry").write_text(
        json.dumps(
            {"version": 1, "key": "core.entity_registry", "data": {"entities": [
                {"entity_id": "not valid", "unique_id": "u", "platform": "x", "domain": "sensor",
                 "created_at": 0},
            ]}}
        )
    )  # fmt: skip
    hub = new_hub(tmp_path)
    await hub.start()
    await async_load_registries(hub)
    assert [d.id for d in device_registry(hub).devices()] == [good_device["id"]]
    assert len(entity_registry(hub)) == 0
    assert caplog.text.count("Skipping a bad") == 3
    await hub.stop()


async def test_device_kind_values() -> None:
    assert DeviceKind("connector") is DeviceKind.CONNECTOR
    assert [str(kind) for kind in DeviceKind] == ["site", "station", "evse", "connector", "other"]


async def test_changes_are_on_disk_before_any_snapshot(tmp_path: Path) -> None:
    """A crash seconds after a change keeps it: the journal has it, snapshot or not."""
    hub = new_hub(tmp_path)
    await hub.start()
    await async_load_registries(hub)
    devices, entities = device_registry(hub), entity_registry(hub)
    d = build_site(devices)
    status = entities.get_or_create(
        "sensor", "ocpp", "CP1-C1-status", suggested_object_id="Status", device_id=d["c1"].id
    )
    c2_power = entities.get_or_create(
        "sensor", "ocpp", "CP1-C2-power", suggested_object_id="Power", device_id=d["c2"].id
    )
    renamed = entities.update(status.entity_id, new_entity_id="sensor.c1_status", name="C1")
    station = devices.update(d["station"].id, sw_version="2.1.0")
    devices.remove(d["c2"].id)
    await async_sync_registries(hub)
    storage = tmp_path.joinpath(".storage")
    assert not storage.joinpath("core.device_registry").exists()
    assert not storage.joinpath("core.entity_registry").exists()

    # The process dies here; the next one starts on the same config dir.
    hub2 = new_hub(tmp_path)
    await hub2.start()
    await async_load_registries(hub2)
    devices2, entities2 = device_registry(hub2), entity_registry(hub2)
    assert {entry.id: entry for entry in devices2.devices()} == {
        entry.id: entry for key, entry in d.items() if key not in ("station", "c2")
    } | {station.id: station}
    assert devices2.children(d["evse"].id) == [d["c1"]]
    assert entities2.entities() == [renamed]
    assert entities2.get(c2_power.entity_id) is None
    assert (
        entities2.get_or_create("sensor", "ocpp", "CP1-C1-status", suggested_object_id="Status")
        == renamed
    )
    await hub2.stop()
    await hub.stop()
    # A clean stop snapshots the journal in: nothing is left to replay.
    assert [name for name in os.listdir(storage) if ".journal." in name] == []
    hub3 = new_hub(tmp_path)
    await hub3.start()
    await async_load_registries(hub3)
    assert entity_registry(hub3).entities() == [renamed]
    assert len(device_registry(hub3)) == 4
    await hub3.stop()


async def test_sync_waits_for_an_fsync_of_every_change(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    await async_load_registries(hub)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    build_site(device_registry(hub))
    entity_registry(hub).get_or_create("sensor", "ocpp", "u1", suggested_object_id="Status")
    await async_sync_registries(hub)
    names = {Path(name).name for name in synced}
    assert {"core.device_registry.journal.0", "core.entity_registry.journal.0"} <= names
    synced.clear()
    await async_sync_registries(hub)  # nothing new
    assert synced == []


async def test_device_ids_derive_from_the_identifier(tmp_path: Path) -> None:
    """Even a lost registry gives a charger back its id (and its history, uptime, automations)."""
    ids = []
    for run in range(2):
        hub = new_hub(tmp_path / str(run))
        await hub.start()
        await async_load_registries(hub)
        ids.append([entry.id for entry in build_site(device_registry(hub)).values()])
        await hub.stop()
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 5

    hub = new_hub(tmp_path / "moved")
    await hub.start()
    await async_load_registries(hub)
    devices = device_registry(hub)
    first = devices.get_or_create(
        integration="x", identifiers={("x", "A")}, kind=DeviceKind.STATION
    )
    devices.update(first.id, identifiers={("x", "B")})
    # A new device with the identifier the first was made from cannot take its id.
    second = devices.get_or_create(
        integration="x", identifiers={("x", "A")}, kind=DeviceKind.STATION
    )
    assert second.id != first.id
    assert devices.get(first.id) is not None
    await hub.stop()


async def test_restored_state_of_an_unregistered_entity_does_not_take_its_id(
    tmp_path: Path,
) -> None:
    """An entity whose registry entry was lost comes back under its id, not ``_2``."""
    hub = new_hub(tmp_path)
    await hub.start()
    await async_load_restore_state(hub)
    hub.states.set("sensor.bay_1_power", "7.4")
    hub.states.set("sensor.other_thing", "1")
    await hub.stop()

    hub2 = new_hub(tmp_path)
    await hub2.start()
    await async_load_restore_state(hub2)
    await async_load_registries(hub2)
    entities = entity_registry(hub2)
    assert hub2.states.get("sensor.bay_1_power") is not None
    power = entities.get_or_create("sensor", "ocpp", "CP1-power", suggested_object_id="Bay 1 power")
    assert power.entity_id == "sensor.bay_1_power"
    # A state set since start-up is in use, restored or not.
    hub2.states.set("sensor.other_thing", "2")
    hub2.states.set("sensor.live", "on")
    other = entities.get_or_create("sensor", "x", "u1", suggested_object_id="Other thing")
    live = entities.get_or_create("sensor", "x", "u2", suggested_object_id="Live")
    assert (other.entity_id, live.entity_id) == ("sensor.other_thing_2", "sensor.live_2")
    with pytest.raises(RegistryError, match="taken"):
        entities.update(power.entity_id, new_entity_id="sensor.live")
    await hub2.stop()
