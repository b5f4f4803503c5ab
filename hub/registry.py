"""Device registry (site → station → EVSE → connector) and entity registry.

Both are kept in memory with indexes for O(1) lookups and fire an event on every change.
Each change is journaled at once (one JSON line, on its way to the disk within a loop
iteration, so a crash a moment later keeps it) and the whole registry is snapshotted by a
delayed Store save; async_sync() waits until the changes made so far are fsync'd.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from hub.const import EVENT_DEVICE_REGISTRY_UPDATED, EVENT_ENTITY_REGISTRY_UPDATED
from hub.core import (
    Event,
    EventData,
    Hub,
    HubKey,
    split_entity_id,
    valid_domain,
    valid_entity_id,
)
from hub.exceptions import DeviceNotFoundError, HubError, RegistryError
from hub.restore_state import last_state
from hub.storage import Store
from hub.util import slugify

_LOGGER = logging.getLogger(__name__)

DATA_DEVICE_REGISTRY: Final[HubKey[DeviceRegistry]] = HubKey("device_registry")
DATA_ENTITY_REGISTRY: Final[HubKey[EntityRegistry]] = HubKey("entity_registry")
_DATA_LOAD_LOCK: Final[HubKey[asyncio.Lock]] = HubKey("registry.load_lock")

DEVICE_STORAGE_KEY: Final = "core.device_registry"
ENTITY_STORAGE_KEY: Final = "core.entity_registry"
STORAGE_VERSION: Final = 1
# Registries change in bursts (a fleet connecting); each snapshot rewrites the whole file.
# The journal keeps every change meanwhile, so this only bounds how much is replayed.
SAVE_DELAY: Final = 10.0

# Journal records: [_SET, entry] and [_DEL, id], replayed in order over the snapshot.
_SET: Final = "set"
_DEL: Final = "del"
# Device ids are derived from an identifier in this namespace (see _new_device_id).
_DEVICE_ID_NAMESPACE: Final = uuid.UUID("35fe1c66-34bc-47a6-84a1-c1f0c0b680ef")

ACTION_CREATE: Final = "create"
ACTION_UPDATE: Final = "update"
ACTION_REMOVE: Final = "remove"

Identifier: TypeAlias = tuple[str, str]


class _Undefined(enum.Enum):
    UNDEFINED = enum.auto()


UNDEFINED: Final = _Undefined.UNDEFINED


def _now() -> float:
    return time.time()


def _identifiers(raw: Iterable[Iterable[str]]) -> frozenset[Identifier]:
    result: set[Identifier] = set()
    for item in raw:
        pair = tuple(item)
        if len(pair) != 2 or not all(isinstance(part, str) and part for part in pair):
            raise RegistryError(f"a device identifier is a (domain, id) pair of strings: {item!r}")
        result.add((pair[0], pair[1]))
    return frozenset(result)


def _replay(
    path: object,
    records: Iterable[Any],
    upsert: Callable[[Mapping[str, Any]], None],
    delete: Callable[[str], None],
) -> None:
    """Apply journal records in order; a bad one is logged and skipped."""
    for record in records:
        try:
            operation, value = record
            if operation == _SET:
                upsert(value)
            elif operation == _DEL:
                delete(str(value))
            else:
                raise ValueError(f"unknown operation {operation!r}")
        except (KeyError, TypeError, ValueError) as err:
            _LOGGER.error("Skipping a bad record in the journal of %s: %r (%s)", path, record, err)


# Devices


class DeviceKind(enum.StrEnum):
    """Where a device sits in the site → station → EVSE → connector hierarchy."""

    SITE = "site"
    STATION = "station"
    EVSE = "evse"
    CONNECTOR = "connector"
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEntry:
    """A device as the registry knows it."""

    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    identifiers: frozenset[Identifier]
    kind: DeviceKind
    integration: str
    name: str | None = None
    via_device_id: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    sw_version: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    disabled: bool = False
    created_at: float = dataclasses.field(default_factory=_now)
    modified_at: float = dataclasses.field(default_factory=_now)
    # Fields an operator set (USER_FIELDS): the integration's own registrations keep them.
    user_set: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            "id": self.id,
            "identifiers": [list(pair) for pair in sorted(self.identifiers)],
            "kind": str(self.kind),
            "integration": self.integration,
            "name": self.name,
            "via_device_id": self.via_device_id,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "serial_number": self.serial_number,
            "sw_version": self.sw_version,
            "evse_id": self.evse_id,
            "connector_id": self.connector_id,
            "disabled": self.disabled,
            "created_at": self.created_at,
            "modified_at": self.modified_at,
            "user_set": sorted(self.user_set),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceEntry:
        """Build an entry from the output of as_dict; raises KeyError/ValueError on bad data."""
        return cls(
            id=str(data["id"]),
            identifiers=_identifiers(data["identifiers"]),
            kind=DeviceKind(data["kind"]),
            integration=str(data["integration"]),
            name=data.get("name"),
            via_device_id=data.get("via_device_id"),
            manufacturer=data.get("manufacturer"),
            model=data.get("model"),
            serial_number=data.get("serial_number"),
            sw_version=data.get("sw_version"),
            evse_id=data.get("evse_id"),
            connector_id=data.get("connector_id"),
            disabled=bool(data.get("disabled", False)),
            created_at=float(data["created_at"]),
            modified_at=float(data["modified_at"]),
            user_set=frozenset(str(f) for f in data.get("user_set") or ()) & USER_FIELDS,
        )


# Fields a caller may set through get_or_create(**fields) and update(**changes).
_DEVICE_FIELDS: Final = frozenset(
    {
        "name",
        "manufacturer",
        "model",
        "serial_number",
        "sw_version",
        "evse_id",
        "connector_id",
        "disabled",
    }
)
# Fields an operator may set (a station's name, its site): once set by a person, what an
# integration registers (get_or_create, update) no longer changes them.
USER_FIELDS: Final = frozenset({"name", "via_device_id"})
_DEVICE_UPDATE_FIELDS: Final = _DEVICE_FIELDS | {
    "identifiers",
    "kind",
    "integration",
    "via_device_id",
}


class DeviceRegistry:
    """Devices by id, with indexes by identifier and by parent."""

    def __init__(self, hub: Hub, *, save_delay: float = SAVE_DELAY) -> None:
        self.hub = hub
        self.save_delay = save_delay
        self._store: Store[dict[str, Any]] = Store(
            hub, STORAGE_VERSION, DEVICE_STORAGE_KEY, journal=True
        )
        self._devices: dict[str, DeviceEntry] = {}
        self._by_identifier: dict[Identifier, str] = {}
        self._children: dict[str, set[str]] = {}

    async def async_load(self) -> None:
        """Load the devices saved last time, and the changes journaled since."""
        data, records = await self._store.load_with_journal()
        for raw in (data or {}).get("devices", ()):
            try:
                entry = DeviceEntry.from_dict(raw)
            except (KeyError, TypeError, ValueError) as err:
                _LOGGER.error("Skipping a bad device in %s: %r (%s)", self._store.path, raw, err)
                continue
            self._index(entry)
        # Not saved now: a reader (evhub report) must not write while a hub runs. The next
        # change's snapshot takes the records in.
        _replay(self._store.path, records, self._replay_set, self._replay_del)

    async def async_flush(self) -> None:
        """Write a snapshot of pending changes now."""
        await self._store.flush()

    async def async_sync(self) -> None:
        """Return once every change made so far is on disk (written and fsync'd).

        A driver awaits it before telling a new charger it is accepted; concurrent callers
        share one write and one fsync. Raises StorageError if the journal cannot be written.
        """
        await self._store.sync()

    # Queries

    def get(self, device_id: str) -> DeviceEntry | None:
        """Return a device by id."""
        return self._devices.get(device_id)

    def get_by_identifier(self, identifier: tuple[str, str]) -> DeviceEntry | None:
        """Return the device that has identifier (domain, id)."""
        device_id = self._by_identifier.get(identifier)
        return None if device_id is None else self._devices[device_id]

    def children(self, device_id: str) -> list[DeviceEntry]:
        """Return the devices directly below device_id."""
        return [self._devices[child] for child in self._children.get(device_id, ())]

    def descendants(self, device_id: str) -> list[DeviceEntry]:
        """Return every device below device_id, parents before their children."""
        found: list[DeviceEntry] = []
        pending = [device_id]
        while pending:
            for child in self._children.get(pending.pop(), ()):
                found.append(self._devices[child])
                pending.append(child)
        return found

    def station_of(self, device_id: str) -> DeviceEntry | None:
        """Return the station a device belongs to (itself if it is one), or None."""
        entry = self._devices.get(device_id)
        seen: set[str] = set()
        while entry is not None and entry.id not in seen:
            if entry.kind is DeviceKind.STATION:
                return entry
            seen.add(entry.id)
            entry = None if entry.via_device_id is None else self._devices.get(entry.via_device_id)
        return None

    def devices(
        self, integration: str | None = None, kind: DeviceKind | None = None
    ) -> list[DeviceEntry]:
        """Return all devices, or those of one integration and/or kind."""
        return [
            entry
            for entry in self._devices.values()
            if (integration is None or entry.integration == integration)
            and (kind is None or entry.kind is kind)
        ]

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._devices

    # Changes

    def get_or_create(
        self,
        *,
        integration: str,
        identifiers: Iterable[tuple[str, str]],
        kind: DeviceKind,
        name: str | None = None,
        via_device_id: str | None = None,
        via_device: tuple[str, str] | None = None,
        **fields: Any,
    ) -> DeviceEntry:
        """Return the device with one of identifiers, created or updated with what is given.

        Only the fields given (not None) are compared and changed; an update keeps the id
        and adds new identifiers to those the device already has. via_device names the
        parent by one of its identifiers; the parent must exist.
        """
        unknown = set(fields) - _DEVICE_FIELDS
        if unknown:
            raise TypeError(f"unknown device fields: {', '.join(sorted(unknown))}")
        idents = _identifiers(identifiers)
        if not idents:
            raise RegistryError("a device needs at least one identifier")
        kind = DeviceKind(kind)
        parent_id = self._resolve_parent(via_device_id, via_device)
        matches = {self._by_identifier[i] for i in idents if i in self._by_identifier}
        if len(matches) > 1:
            raise RegistryError(f"identifiers {sorted(idents)} belong to different devices")
        given = {key: value for key, value in fields.items() if value is not None}
        if name is not None:
            given["name"] = name
        if not matches:
            now = _now()
            entry = DeviceEntry(
                id=self._new_device_id(idents),
                created_at=now,
                modified_at=now,
                identifiers=idents,
                kind=kind,
                integration=integration,
                via_device_id=parent_id,
                **given,
            )
            self._index(entry)
            self._changed(ACTION_CREATE, entry.id)
            return entry
        existing = self._devices[matches.pop()]
        changes: dict[str, Any] = {k: v for k, v in given.items() if k not in existing.user_set}
        changes["kind"] = kind
        changes["integration"] = integration
        if not idents <= existing.identifiers:
            changes["identifiers"] = existing.identifiers | idents
        if parent_id is not None and "via_device_id" not in existing.user_set:
            changes["via_device_id"] = parent_id
        return self._apply(existing, changes)

    def update(self, device_id: str, *, by_user: bool = False, **changes: Any) -> DeviceEntry:
        """Change fields of a device; returns the new entry (the same one if nothing changed).

        by_user: a person sets USER_FIELDS (a name, a parent site), which the integration's
        later registrations keep; otherwise fields a person set are left as they are.
        """
        entry = self._devices.get(device_id)
        if entry is None:
            raise DeviceNotFoundError(f"device {device_id} not found")
        unknown = set(changes) - (USER_FIELDS if by_user else _DEVICE_UPDATE_FIELDS)
        if unknown:
            raise TypeError(f"unknown or read-only device fields: {', '.join(sorted(unknown))}")
        if by_user:
            changes["user_set"] = entry.user_set | set(changes)
        else:
            changes = {k: v for k, v in changes.items() if k not in entry.user_set}
        if "identifiers" in changes:
            changes["identifiers"] = _identifiers(changes["identifiers"])
            if not changes["identifiers"]:
                raise RegistryError("a device needs at least one identifier")
        if "kind" in changes:
            changes["kind"] = DeviceKind(changes["kind"])
        if changes.get("via_device_id") is not None:
            self._resolve_parent(changes["via_device_id"], None)
        return self._apply(entry, changes)

    def remove(self, device_id: str) -> None:
        """Remove a device and every device below it."""
        entry = self._devices.get(device_id)
        if entry is None:
            raise DeviceNotFoundError(f"device {device_id} not found")
        # Deepest first, so no removal event names a device whose children remain.
        for child in reversed(self.descendants(device_id)):
            self._unindex(child)
            self._changed(ACTION_REMOVE, child.id)
        self._unindex(entry)
        self._changed(ACTION_REMOVE, entry.id)

    # Internals

    def _new_device_id(self, identifiers: frozenset[Identifier]) -> str:
        """Return an id derived from the device's first identifier.

        A charger then keeps its id even if its entry is lost (a deleted registry, one
        restored from an old backup), and with it its history, uptime and automations.
        """
        domain, value = min(identifiers)
        device_id = uuid.uuid5(_DEVICE_ID_NAMESPACE, f"{domain}\x1f{value}").hex
        # Taken by a device whose identifiers changed since it was made from this one.
        return uuid.uuid4().hex if device_id in self._devices else device_id

    def _replay_set(self, raw: Mapping[str, Any]) -> None:
        entry = DeviceEntry.from_dict(raw)
        old = self._devices.get(entry.id)
        if old is not None:
            self._unindex(old)
        self._index(entry)

    def _replay_del(self, device_id: str) -> None:
        old = self._devices.get(device_id)
        if old is not None:
            self._unindex(old)

    def _resolve_parent(
        self, via_device_id: str | None, via_device: tuple[str, str] | None
    ) -> str | None:
        if via_device_id is not None and via_device is not None:
            raise RegistryError("give via_device_id or via_device, not both")
        if via_device is not None:
            identifier = (via_device[0], via_device[1])
            parent = self.get_by_identifier(identifier)
            if parent is None:
                raise DeviceNotFoundError(f"parent device {identifier} not registered")
            return parent.id
        if via_device_id is not None and via_device_id not in self._devices:
            raise DeviceNotFoundError(f"parent device {via_device_id} not found")
        return via_device_id

    def _check_parent(self, device_id: str, parent_id: str | None) -> None:
        """Refuse a parent that is the device itself or below it."""
        while parent_id is not None:
            if parent_id == device_id:
                raise RegistryError(f"device {device_id} cannot be its own ancestor")
            parent = self._devices.get(parent_id)
            parent_id = None if parent is None else parent.via_device_id

    def _apply(self, entry: DeviceEntry, changes: Mapping[str, Any]) -> DeviceEntry:
        old_values = {
            key: getattr(entry, key)
            for key, value in changes.items()
            if getattr(entry, key) != value
        }
        if not old_values:
            return entry
        if "via_device_id" in old_values:
            self._check_parent(entry.id, changes["via_device_id"])
        if "identifiers" in old_values:
            for identifier in changes["identifiers"]:
                owner = self._by_identifier.get(identifier)
                if owner is not None and owner != entry.id:
                    raise RegistryError(f"identifier {identifier} belongs to device {owner}")
        new = dataclasses.replace(
            entry, **{key: changes[key] for key in old_values}, modified_at=_now()
        )
        self._unindex(entry)
        self._index(new)
        self._changed(ACTION_UPDATE, new.id, old_values)
        return new

    def _index(self, entry: DeviceEntry) -> None:
        self._devices[entry.id] = entry
        for identifier in entry.identifiers:
            self._by_identifier[identifier] = entry.id
        if entry.via_device_id is not None:
            self._children.setdefault(entry.via_device_id, set()).add(entry.id)

    def _unindex(self, entry: DeviceEntry) -> None:
        del self._devices[entry.id]
        for identifier in entry.identifiers:
            if self._by_identifier.get(identifier) == entry.id:
                del self._by_identifier[identifier]
        if entry.via_device_id is not None:
            siblings = self._children.get(entry.via_device_id)
            if siblings is not None:
                siblings.discard(entry.id)
                if not siblings:
                    del self._children[entry.via_device_id]

    def _changed(
        self, action: str, device_id: str, changes: Mapping[str, Any] | None = None
    ) -> None:
        data: dict[str, Any] = {"action": action, "device_id": device_id}
        if changes is not None:
            data["changes"] = dict(changes)
        entry = self._devices.get(device_id)
        self._store.append([_DEL, device_id] if entry is None else [_SET, entry])
        self._store.delay_save(self._data_to_save, self.save_delay)
        self.hub.bus.fire(EVENT_DEVICE_REGISTRY_UPDATED, data)

    def _data_to_save(self) -> dict[str, Any]:
        return {"devices": list(self._devices.values())}


# Entities


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityEntry:
    """An entity as the registry knows it: the stable id behind a platform's unique id."""

    entity_id: str
    unique_id: str
    platform: str
    domain: str
    device_id: str | None = None
    original_name: str | None = None
    name: str | None = None
    disabled: bool = False
    created_at: float = dataclasses.field(default_factory=_now)

    @property
    def display_name(self) -> str | None:
        """The user's name if set, else the integration's."""
        return self.name if self.name is not None else self.original_name

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            "entity_id": self.entity_id,
            "unique_id": self.unique_id,
            "platform": self.platform,
            "domain": self.domain,
            "device_id": self.device_id,
            "original_name": self.original_name,
            "name": self.name,
            "disabled": self.disabled,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntityEntry:
        """Build an entry from the output of as_dict; raises KeyError/ValueError on bad data."""
        entity_id = str(data["entity_id"])
        if not valid_entity_id(entity_id):
            raise ValueError(f"invalid entity id {entity_id!r}")
        return cls(
            entity_id=entity_id,
            unique_id=str(data["unique_id"]),
            platform=str(data["platform"]),
            domain=str(data["domain"]),
            device_id=data.get("device_id"),
            original_name=data.get("original_name"),
            name=data.get("name"),
            disabled=bool(data.get("disabled", False)),
            created_at=float(data["created_at"]),
        )


_EntityKey: TypeAlias = tuple[str, str, str]


class _KeyIndex:
    """(domain, platform, unique_id) -> entity id, as one dict per (domain, platform).

    A fleet has hundreds of thousands of entities and a handful of (domain, platform)
    pairs: keying by the unique id alone saves a key tuple per entity.
    """

    __slots__ = ("_by_pair",)

    def __init__(self) -> None:
        self._by_pair: dict[tuple[str, str], dict[str, str]] = {}

    def get(self, key: _EntityKey) -> str | None:
        found = self._by_pair.get((key[0], key[1]))
        return None if found is None else found.get(key[2])

    def __contains__(self, key: _EntityKey) -> bool:
        return self.get(key) is not None

    def set(self, key: _EntityKey, entity_id: str) -> None:
        self._by_pair.setdefault((key[0], key[1]), {})[key[2]] = entity_id

    def delete(self, key: _EntityKey) -> None:
        found = self._by_pair[(key[0], key[1])]
        del found[key[2]]
        if not found:
            del self._by_pair[(key[0], key[1])]


class EntityRegistry:
    """Entities by entity id, with indexes by (domain, platform, unique_id) and by device."""

    def __init__(self, hub: Hub, *, save_delay: float = SAVE_DELAY) -> None:
        self.hub = hub
        self.save_delay = save_delay
        self._store: Store[dict[str, Any]] = Store(
            hub, STORAGE_VERSION, ENTITY_STORAGE_KEY, journal=True
        )
        self._entities: dict[str, EntityEntry] = {}
        self._by_key = _KeyIndex()
        # Lists, not sets: a device has a dozen entities, and a fleet has many devices.
        self._by_device: dict[str, list[str]] = {}
        hub.bus.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._on_device_removed, _is_device_removal)

    async def async_load(self) -> None:
        """Load the entities saved last time, and the changes journaled since."""
        data, records = await self._store.load_with_journal()
        for raw in (data or {}).get("entities", ()):
            try:
                entry = EntityEntry.from_dict(raw)
            except (KeyError, TypeError, ValueError) as err:
                _LOGGER.error("Skipping a bad entity in %s: %r (%s)", self._store.path, raw, err)
                continue
            key = (entry.domain, entry.platform, entry.unique_id)
            if entry.entity_id in self._entities or key in self._by_key:
                _LOGGER.error("Skipping a duplicate entity in %s: %r", self._store.path, raw)
                continue
            self._index(entry)
        # Not saved now: a reader (evhub report) must not write while a hub runs. The next
        # change's snapshot takes the records in.
        _replay(self._store.path, records, self._replay_set, self._replay_del)

    async def async_flush(self) -> None:
        """Write a snapshot of pending changes now."""
        await self._store.flush()

    async def async_sync(self) -> None:
        """Return once every change made so far is on disk (written and fsync'd).

        A driver awaits it before telling a new charger it is accepted; concurrent callers
        share one write and one fsync. Raises StorageError if the journal cannot be written.
        """
        await self._store.sync()

    # Queries

    def get(self, entity_id: str) -> EntityEntry | None:
        """Return an entity by entity id."""
        return self._entities.get(entity_id)

    def get_entity_id(self, domain: str, platform: str, unique_id: str) -> str | None:
        """Return the entity id registered for a platform's unique id."""
        return self._by_key.get((domain, platform, unique_id))

    def entities_for_device(self, device_id: str) -> list[EntityEntry]:
        """Return the entities of a device."""
        return [self._entities[eid] for eid in self._by_device.get(device_id, ())]

    def entities(self, platform: str | None = None) -> list[EntityEntry]:
        """Return all entities, or those of one integration."""
        if platform is None:
            return list(self._entities.values())
        return [entry for entry in self._entities.values() if entry.platform == platform]

    def is_taken(self, entity_id: str) -> bool:
        """Tell whether entity_id is registered or has a state set since start-up.

        A state restored at start that no registry entry owns is not in use: it is what is
        left of an entity whose entry was lost, and that entity, coming back under its own
        id, must not become ``_2``.
        """
        if entity_id in self._entities:
            return True
        state = self.hub.states.get(entity_id)
        return state is not None and state is not last_state(self.hub, entity_id)

    def __len__(self) -> int:
        return len(self._entities)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._entities

    # Changes

    def get_or_create(
        self,
        domain: str,
        platform: str,
        unique_id: str,
        *,
        suggested_object_id: str,
        device_id: str | None = None,
        original_name: str | None = None,
    ) -> EntityEntry:
        """Return the entry for a platform's unique id, registering it the first time.

        A new entity gets ``domain.<slug of suggested_object_id>``, with ``_2``, ``_3``...
        if taken; after that its entity id never changes unless the user renames it.
        A device_id or original_name given for a known entity updates it.
        """
        key = (domain, platform, unique_id)
        found = self._by_key.get(key)
        if found is not None:
            entry = self._entities[found]
            changes: dict[str, Any] = {}
            if device_id is not None and device_id != entry.device_id:
                changes["device_id"] = device_id
            if original_name is not None and original_name != entry.original_name:
                changes["original_name"] = original_name
            return self._apply(entry, changes) if changes else entry
        if not valid_domain(domain):
            raise RegistryError(f"invalid entity domain {domain!r}")
        entity_id = self._free_entity_id(domain, suggested_object_id)
        entry = EntityEntry(
            entity_id=entity_id,
            unique_id=unique_id,
            platform=platform,
            domain=domain,
            device_id=device_id,
            original_name=original_name,
        )
        self._index(entry)
        self._changed({"action": ACTION_CREATE, "entity_id": entity_id})
        return entry

    def update(
        self,
        entity_id: str,
        *,
        new_entity_id: str | None = None,
        name: str | _Undefined | None = UNDEFINED,
        disabled: bool | _Undefined = UNDEFINED,
        device_id: str | _Undefined | None = UNDEFINED,
    ) -> EntityEntry:
        """Rename, name, enable/disable or move an entity; returns the new entry."""
        entry = self._entities.get(entity_id)
        if entry is None:
            raise DeviceNotFoundError(f"entity {entity_id} not registered")
        changes: dict[str, Any] = {}
        if new_entity_id is not None and new_entity_id != entity_id:
            if not valid_entity_id(new_entity_id):
                raise RegistryError(f"invalid entity id {new_entity_id!r}")
            if split_entity_id(new_entity_id)[0] != entry.domain:
                raise RegistryError(
                    f"{new_entity_id} is not in domain {entry.domain} of {entity_id}"
                )
            if self.is_taken(new_entity_id):
                raise RegistryError(f"entity id {new_entity_id} is already taken")
            changes["entity_id"] = new_entity_id
        if name is not UNDEFINED and name != entry.name:
            changes["name"] = name
        if disabled is not UNDEFINED and disabled != entry.disabled:
            changes["disabled"] = bool(disabled)
        if device_id is not UNDEFINED and device_id != entry.device_id:
            changes["device_id"] = device_id
        return self._apply(entry, changes)

    def remove(self, entity_id: str) -> None:
        """Forget an entity; a later get_or_create registers it afresh."""
        entry = self._entities.get(entity_id)
        if entry is None:
            raise DeviceNotFoundError(f"entity {entity_id} not registered")
        self._unindex(entry)
        self._changed({"action": ACTION_REMOVE, "entity_id": entity_id})

    # Internals

    def _replay_set(self, raw: Mapping[str, Any]) -> None:
        entry = EntityEntry.from_dict(raw)
        old = self._entities.get(entry.entity_id)
        if old is not None:
            self._unindex(old)
        # The same entity under its id before a rename.
        other = self._by_key.get((entry.domain, entry.platform, entry.unique_id))
        if other is not None:
            self._unindex(self._entities[other])
        self._index(entry)

    def _replay_del(self, entity_id: str) -> None:
        old = self._entities.get(entity_id)
        if old is not None:
            self._unindex(old)

    def _free_entity_id(self, domain: str, suggested_object_id: str) -> str:
        object_id = slugify(suggested_object_id) or "unnamed"
        base = f"{domain}.{object_id}"
        candidate, number = base, 1
        while self.is_taken(candidate):
            number += 1
            candidate = f"{base}_{number}"
        return candidate

    def _apply(self, entry: EntityEntry, changes: Mapping[str, Any]) -> EntityEntry:
        if not changes:
            return entry
        new = dataclasses.replace(entry, **changes)
        self._unindex(entry)
        self._index(new)
        data: dict[str, Any] = {
            "action": ACTION_UPDATE,
            "entity_id": new.entity_id,
            "changes": {key: getattr(entry, key) for key in changes},
        }
        if new.entity_id != entry.entity_id:
            data["old_entity_id"] = entry.entity_id
        self._changed(data)
        return new

    def _index(self, entry: EntityEntry) -> None:
        self._entities[entry.entity_id] = entry
        self._by_key.set((entry.domain, entry.platform, entry.unique_id), entry.entity_id)
        if entry.device_id is not None:
            ids = self._by_device.setdefault(entry.device_id, [])
            if entry.entity_id not in ids:
                ids.append(entry.entity_id)

    def _unindex(self, entry: EntityEntry) -> None:
        del self._entities[entry.entity_id]
        self._by_key.delete((entry.domain, entry.platform, entry.unique_id))
        if entry.device_id is not None:
            found = self._by_device.get(entry.device_id)
            if found is not None and entry.entity_id in found:
                found.remove(entry.entity_id)
                if not found:
                    del self._by_device[entry.device_id]

    def _on_device_removed(self, event: Event) -> None:
        for entry in self.entities_for_device(event.data["device_id"]):
            self.remove(entry.entity_id)

    def _changed(self, data: Mapping[str, Any]) -> None:
        old_entity_id = data.get("old_entity_id")
        if old_entity_id is not None:
            self._store.append([_DEL, old_entity_id])
        entry = self._entities.get(data["entity_id"])
        self._store.append([_DEL, data["entity_id"]] if entry is None else [_SET, entry])
        self._store.delay_save(self._data_to_save, self.save_delay)
        self.hub.bus.fire(EVENT_ENTITY_REGISTRY_UPDATED, data)

    def _data_to_save(self) -> dict[str, Any]:
        # Frozen entries: the store serialises them in the executor.
        return {"entities": list(self._entities.values())}


def _is_device_removal(data: EventData) -> bool:
    return bool(data.get("action") == ACTION_REMOVE)


# Loading and access


async def async_load_registries(hub: Hub) -> None:
    """Create and load the device and entity registries once per hub."""
    lock = hub.data.setdefault(_DATA_LOAD_LOCK, asyncio.Lock())
    async with lock:
        if DATA_ENTITY_REGISTRY in hub.data:
            return
        devices = DeviceRegistry(hub)
        entities = EntityRegistry(hub)
        await devices.async_load()
        await entities.async_load()
        hub.data[DATA_DEVICE_REGISTRY] = devices
        hub.data[DATA_ENTITY_REGISTRY] = entities


async def async_sync_registries(hub: Hub) -> None:
    """Return once every device and entity change made so far is on disk (fsync'd)."""
    await asyncio.gather(device_registry(hub).async_sync(), entity_registry(hub).async_sync())


def device_registry(hub: Hub) -> DeviceRegistry:
    """Return the hub's device registry."""
    registry = hub.data.get(DATA_DEVICE_REGISTRY)
    if registry is None:
        raise HubError("device registry not loaded: await async_load_registries(hub) first")
    return registry


def entity_registry(hub: Hub) -> EntityRegistry:
    """Return the hub's entity registry."""
    registry = hub.data.get(DATA_ENTITY_REGISTRY)
    if registry is None:
        raise HubError("entity registry not loaded: await async_load_registries(hub) first")
    return registry
