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
            desc = self.entity_description
            fixed: dict[str, Any] = {ATTR_FRIENDLY_NAME: self.full_name}
            if desc.unit_of_measurement is not None:
                fixed[ATTR_UNIT_OF_MEASUREMENT] = desc.unit_of_measurement
            if desc.device_class is not None:
                fixed[ATTR_DEVICE_CLASS] = desc.device_class
            if desc.icon is not None:
                fixed["icon"] = desc.icon
            # One read-only dict reused by every write while nothing extra changes.
            base = self._base_attributes = ReadOnlyDict(fixed)
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
        registry = entity_registry(self.hub)
        for entity in entities:
            device_id = self._device_id(entity.device_info) if entity.device_info else None
            entry = registry.get_or_create(
                entity.domain,
                self.integration,
                entity.unique_id,
                suggested_object_id=entity.full_name,
                device_id=device_id,
                original_name=entity.name,
            )
            if entry.entity_id in self.entities:
                raise HubError(f"entity {entry.entity_id} added twice")
            entity.hub = self.hub
            entity.entity_id = entry.entity_id
            entity.device_id = device_id
            self.entities[entry.entity_id] = entity
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
