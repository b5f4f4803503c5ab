"""Entities: the things an integration exposes as states, bound to devices and registries."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub.const import (
    ATTR_DEVICE_CLASS,
    ATTR_FRIENDLY_NAME,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from hub.core import Context, Hub, ReadOnlyDict, State
from hub.exceptions import HubError
from hub.registry import DeviceKind, device_registry, entity_registry
from hub.restore_state import last_state

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityDescription:
    """What an entity is, independent of which device it belongs to."""

    key: str
    name: str | None = None
    device_class: str | None = None
    unit_of_measurement: str | None = None
    icon: str | None = None
    entity_category: str | None = None


def entity_table(*descriptions: EntityDescription) -> dict[str, EntityDescription]:
    """Descriptions by key, in order: the table an EntityGroup writes from. A later
    description replaces an earlier one of the same key (in its place)."""
    return {description.key: description for description in descriptions}


def _per_phase(key: str, name: str, unit: str) -> tuple[EntityDescription, ...]:
    return tuple(
        EntityDescription(
            key=f"{key}_{phase}",
            name=f"{name} {phase.upper()}",
            unit_of_measurement=unit,
            device_class=key,
        )
        for phase in ("l1", "l2", "l3")
    )


# What a wallbox integration's connector shows, whatever its protocol (Modbus, MQTT, a
# vendor cloud): status, error, power and energy, per-phase currents and voltages, limits.
WALLBOX_PORT_ENTITIES: tuple[EntityDescription, ...] = (
    EntityDescription(key="status", name="status", device_class="enum"),
    EntityDescription(key="error_code", name="error code"),
    EntityDescription(key="power", name="power", unit_of_measurement="W", device_class="power"),
    EntityDescription(key="energy", name="energy", unit_of_measurement="Wh", device_class="energy"),
    EntityDescription(
        key="session_energy", name="session energy", unit_of_measurement="Wh", device_class="energy"
    ),
    *_per_phase("current", "current", "A"),
    *_per_phase("voltage", "voltage", "V"),
    EntityDescription(
        key="current_limit", name="current limit", unit_of_measurement="A", device_class="current"
    ),
    EntityDescription(
        key="max_current", name="maximum current", unit_of_measurement="A", device_class="current"
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """The device an entity belongs to, as the registry should know it."""

    identifiers: frozenset[tuple[str, str]]
    kind: DeviceKind = DeviceKind.STATION
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    sw_version: str | None = None
    via_device: tuple[str, str] | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def fixed_attributes(description: EntityDescription, full_name: str) -> ReadOnlyDict:
    """The attributes an entity always has (name, unit, device class, icon), made once."""
    fixed: dict[str, Any] = {ATTR_FRIENDLY_NAME: full_name}
    if description.unit_of_measurement is not None:
        fixed[ATTR_UNIT_OF_MEASUREMENT] = description.unit_of_measurement
    if description.device_class is not None:
        fixed[ATTR_DEVICE_CLASS] = description.device_class
    if description.icon is not None:
        fixed["icon"] = description.icon
    return ReadOnlyDict(fixed)


def register_entity(
    hub: Hub,
    integration: str,
    description: EntityDescription,
    unique_id: str,
    *,
    device_id: str | None,
    full_name: str,
    domain: str = "sensor",
) -> str:
    """Give an entity its stable id in the entity registry (made the first time); the one
    path every entity takes, whether an Entity object or a row of an EntityGroup."""
    return (
        entity_registry(hub)
        .get_or_create(
            domain,
            integration,
            unique_id,
            suggested_object_id=full_name,
            device_id=device_id,
            original_name=description.name or description.key.replace("_", " "),
        )
        .entity_id
    )


class EntityGroup:
    """The entities of one device from a table of descriptions, for fleets of devices.

    No object per entity: an entity is registered the first time it is written (a
    single-phase charger never gets L2/L3 entities), its fixed attributes are made once and
    shared by every write. A driver with thousands of devices writes through this; an
    integration with a few entities of its own may use Entity objects on an EntityPlatform.
    Both register through register_entity and write with hub.states.set.
    """

    __slots__ = ("attrs", "device_id", "display", "ids", "integration", "prefix", "table")

    def __init__(
        self,
        integration: str,
        table: Mapping[str, EntityDescription],
        device_id: str,
        prefix: str,
        display: str,
    ) -> None:
        self.integration = integration
        self.table = table
        self.device_id = device_id
        self.prefix = prefix  # unique ids are f"{prefix}-{key}"
        self.display = display  # names are f"{display} {description name}"
        self.ids: dict[str, str] = {}
        self.attrs: dict[str, ReadOnlyDict] = {}

    def entity_id(self, hub: Hub, key: str) -> str:
        """The entity id of key, registering the entity the first time it is needed."""
        entity_id = self.ids.get(key)
        if entity_id is not None:
            return entity_id
        description = self.table[key]
        full_name = f"{self.display} {description.name or description.key}"
        entity_id = register_entity(
            hub,
            self.integration,
            description,
            f"{self.prefix}-{key}",
            device_id=self.device_id,
            full_name=full_name,
        )
        self.ids[key] = entity_id
        self.attrs[key] = fixed_attributes(description, full_name)
        return entity_id

    def write(
        self,
        hub: Hub,
        key: str,
        value: Any,
        context: Context | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Write an entity's state: None is "unknown"; extra attributes join the fixed ones."""
        state = STATE_UNKNOWN if value is None else str(value)
        entity_id = self.ids.get(key) or self.entity_id(hub, key)
        attrs = self.attrs[key] if not extra else {**self.attrs[key], **extra}
        hub.states.set(entity_id, state, attrs, context)


class Entity:
    """Base of every entity: subclasses give ``native_value`` and may add attributes."""

    domain: ClassVar[str] = "sensor"

    def __init__(
        self,
        description: EntityDescription,
        unique_id: str,
        device_info: DeviceInfo | None = None,
    ) -> None:
        self.entity_description = description
        self.unique_id = unique_id
        self.device_info = device_info
        self.hub: Hub | None = None
        self.entity_id: str | None = None
        self.device_id: str | None = None
        self.native_value: Any = None
        self._available = True
        self._base_attributes: ReadOnlyDict | None = None

    @property
    def name(self) -> str:
        """The name shown to people."""
        return self.entity_description.name or self.entity_description.key.replace("_", " ")

    @property
    def available(self) -> bool:
        """Whether the entity's source can be read now."""
        return self._available

    @available.setter
    def available(self, value: bool) -> None:
        self._available = value

    @property
    def state(self) -> str:
        """The state string written to the state machine."""
        if not self.available:
            return STATE_UNAVAILABLE
        value = self.native_value
        if value is None:
            return STATE_UNKNOWN
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Attributes besides name, unit and device class, or None."""
        return None

    def _attributes(self) -> Mapping[str, Any]:
        base = self._base_attributes
        if base is None:
            # One read-only dict reused by every write while nothing extra changes.
            base = self._base_attributes = fixed_attributes(self.entity_description, self.full_name)
        extra = self.extra_state_attributes
        if not extra:
            return base
        return {**base, **extra}

    @property
    def full_name(self) -> str:
        """Device name and entity name together."""
        device_name = self.device_info.name if self.device_info else None
        return f"{device_name} {self.name}" if device_name else self.name

    def write_state(self, context: Context | None = None) -> State:
        """Write the entity's current state to the hub."""
        if self.hub is None or self.entity_id is None:
            raise HubError(f"entity {self.unique_id} is not added to a hub")
        return self.hub.states.set(self.entity_id, self.state, self._attributes(), context)

    def last_state(self) -> State | None:
        """The state this entity had when the hub last stopped."""
        if self.hub is None or self.entity_id is None:
            return None
        return last_state(self.hub, self.entity_id)

    async def async_added(self) -> None:
        """Called after the entity got its id, before its first state is written."""

    async def async_will_remove(self) -> None:
        """Called before the entity is removed."""


class EntityPlatform:
    """The entities of one integration: registers devices and entities, writes first states."""

    def __init__(self, hub: Hub, integration: str) -> None:
        self.hub = hub
        self.integration = integration
        self.entities: dict[str, Entity] = {}

    def _device_id(self, info: DeviceInfo) -> str:
        devices = device_registry(self.hub)
        device = devices.get_or_create(
            integration=self.integration,
            identifiers=info.identifiers,
            kind=info.kind,
            name=info.name,
            via_device=info.via_device,
            manufacturer=info.manufacturer,
            model=info.model,
            serial_number=info.serial_number,
            sw_version=info.sw_version,
            evse_id=info.evse_id,
            connector_id=info.connector_id,
        )
        return device.id

    async def add_entities(self, entities: Iterable[Entity], write: bool = True) -> None:
        """Register entities (and their devices), give them ids and write their states."""
        for entity in entities:
            device_id = self._device_id(entity.device_info) if entity.device_info else None
            entity_id = register_entity(
                self.hub,
                self.integration,
                entity.entity_description,
                entity.unique_id,
                device_id=device_id,
                full_name=entity.full_name,
                domain=entity.domain,
            )
            if entity_id in self.entities:
                raise HubError(f"entity {entity_id} added twice")
            entity.hub = self.hub
            entity.entity_id = entity_id
            entity.device_id = device_id
            self.entities[entity_id] = entity
            await entity.async_added()
            if write:
                entity.write_state()

    async def remove_entity(self, entity_id: str, remove_state: bool = True) -> None:
        """Take an entity out of the platform and, unless told otherwise, its state."""
        entity = self.entities.pop(entity_id, None)
        if entity is None:
            return
        await entity.async_will_remove()
        if remove_state:
            self.hub.states.remove(entity_id)

    async def unload(self) -> None:
        """Detach every entity, keeping their states so a restart restores them."""
        for entity_id in list(self.entities):
            await self.remove_entity(entity_id, remove_state=False)
