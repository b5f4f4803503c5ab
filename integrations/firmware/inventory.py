"""The fleet's firmware: versions by vendor and model, and stations below their minimum.

What a station runs is what its integration wrote in the device registry (manufacturer,
model, sw_version: OCPP from the BootNotification). A minimum is configured per vendor, or
per vendor and model (the more specific wins); a station below it is flagged: its
``firmware compliance`` sensor says ``below_minimum`` and an alert is raised through
``alert.raise`` (resolved through ``alert.resolve`` once it runs a version at or above).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from hub.charger import ChargerCapability, get_charger
from hub.core import Hub
from hub.entity import EntityDescription, EntityGroup
from hub.registry import DeviceEntry, DeviceKind, device_registry
from integrations.firmware.version import below, parse_version

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "firmware"
ALERT_KEY: Final = "firmware_below_minimum"
OK: Final = "ok"
BELOW_MINIMUM: Final = "below_minimum"
UNKNOWN: Final = "unknown"  # no version reported, or one that cannot be compared
NO_MINIMUM: Final = "no_minimum"

ENTITIES: Final = {
    "compliance": EntityDescription(
        key="compliance", name="firmware compliance", device_class="enum"
    ),
}


@dataclass(frozen=True, slots=True)
class Minimum:
    """The least firmware a vendor's stations (of one model, or of every model) may run."""

    vendor: str
    model: str | None
    version: str

    def as_dict(self) -> dict[str, Any]:
        return {"vendor": self.vendor, "model": self.model, "version": self.version}


def _norm(text: str | None) -> str:
    return (text or "").strip().casefold()


class Minimums:
    """The configured minimums, looked up by (vendor, model), case-insensitively."""

    def __init__(self, minimums: list[Minimum]) -> None:
        self.all = minimums
        self._by_model = {(_norm(m.vendor), _norm(m.model)): m for m in minimums if m.model}
        self._by_vendor = {_norm(m.vendor): m for m in minimums if not m.model}

    def of(self, vendor: str | None, model: str | None) -> Minimum | None:
        if not vendor:
            return None
        return self._by_model.get((_norm(vendor), _norm(model))) or self._by_vendor.get(
            _norm(vendor)
        )


def compliance(device: DeviceEntry, minimum: Minimum | None) -> str:
    """ok, below_minimum, unknown or no_minimum."""
    if minimum is None:
        return NO_MINIMUM
    found = below(device.sw_version, minimum.version)
    if found is None:
        return UNKNOWN
    return BELOW_MINIMUM if found else OK


def stations(hub: Hub) -> list[DeviceEntry]:
    """Every station in the device registry."""
    return device_registry(hub).devices(kind=DeviceKind.STATION)


def station_row(hub: Hub, device: DeviceEntry, minimums: Minimums) -> dict[str, Any]:
    """What the inventory says of one station."""
    minimum = minimums.of(device.manufacturer, device.model)
    charger = get_charger(hub, device.id)
    return {
        "device_id": device.id,
        "name": device.name,
        "integration": device.integration,
        "vendor": device.manufacturer,
        "model": device.model,
        "firmware": device.sw_version,
        "minimum": minimum.version if minimum else None,
        "compliance": compliance(device, minimum),
        "online": charger.online if charger is not None else None,
        "can_update": charger is not None
        and ChargerCapability.UPDATE_FIRMWARE in charger.capabilities,
    }


def _version_key(text: str | None) -> tuple[int, Any]:
    if text is None:
        return (0, ())
    try:
        parsed = parse_version(text)
    except ValueError:
        return (1, (text,))
    return (2, (parsed.release, parsed.stage, parsed.rest))


def inventory(hub: Hub, minimums: Minimums) -> dict[str, Any]:
    """Versions by vendor and model across the fleet, and the flagged stations."""
    rows = [station_row(hub, device, minimums) for device in stations(hub)]
    rows.sort(key=lambda row: (_norm(row["vendor"]), _norm(row["model"]), _norm(row["name"])))
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["vendor"] or "", row["model"] or "")
        entry = models.setdefault(
            key,
            {
                "vendor": row["vendor"],
                "model": row["model"],
                "minimum": row["minimum"],
                "stations": 0,
                "below_minimum": 0,
                "versions": {},
            },
        )
        entry["stations"] += 1
        entry["below_minimum"] += row["compliance"] == BELOW_MINIMUM
        version = row["firmware"] or "unknown"
        entry["versions"][version] = entry["versions"].get(version, 0) + 1
    for entry in models.values():
        # Newest first, so the panel shows what most of a model should run at the top.
        ordered = sorted(
            entry["versions"].items(),
            key=lambda pair: _version_key(None if pair[0] == "unknown" else pair[0]),
            reverse=True,
        )
        entry["versions"] = [{"version": v, "stations": n} for v, n in ordered]
    return {
        "stations": rows,
        "models": list(models.values()),
        "below_minimum": [row for row in rows if row["compliance"] == BELOW_MINIMUM],
        "minimums": [m.as_dict() for m in minimums.all],
    }


class Flags:
    """Keeps each station's compliance sensor and its below-minimum alert up to date."""

    def __init__(self, hub: Hub, minimums: Minimums) -> None:
        self.hub = hub
        self.minimums = minimums
        self.groups: dict[str, EntityGroup] = {}
        # Stations whose alert is raised (device id → the version flagged), kept on disk so
        # a restart does not raise them again.
        self.flagged: dict[str, str] = {}

    def entity_id(self, device: DeviceEntry) -> str:
        return self._group(device).entity_id(self.hub, "compliance")

    def _group(self, device: DeviceEntry) -> EntityGroup:
        group = self.groups.get(device.id)
        if group is None:
            group = self.groups[device.id] = EntityGroup(
                DOMAIN, ENTITIES, device.id, f"{device.id}-firmware", device.name or device.id
            )
        return group

    def update(self, device: DeviceEntry) -> tuple[str, str | None] | None:
        """Write the station's sensor; return an alert change: ("raise"|"resolve", version)."""
        minimum = self.minimums.of(device.manufacturer, device.model)
        state = compliance(device, minimum)
        if minimum is not None or device.sw_version is not None:
            self._group(device).write(
                self.hub,
                "compliance",
                state,
                extra={
                    "firmware": device.sw_version,
                    "minimum": minimum.version if minimum else None,
                    "vendor": device.manufacturer,
                    "model": device.model,
                },
            )
        if state == BELOW_MINIMUM:
            version = device.sw_version or ""
            if self.flagged.get(device.id) == version:
                return None
            self.flagged[device.id] = version
            return ("raise", version)
        if device.id in self.flagged and state != UNKNOWN:
            del self.flagged[device.id]
            return ("resolve", None)
        return None

    def forget(self, device_id: str) -> bool:
        """A removed station: whether its alert was raised."""
        self.groups.pop(device_id, None)
        return self.flagged.pop(device_id, None) is not None

    def alert(self, device: DeviceEntry) -> dict[str, Any]:
        """The alert.raise data for a flagged station."""
        minimum = self.minimums.of(device.manufacturer, device.model)
        name = device.name or device.id
        return {
            "key": f"{ALERT_KEY}:{device.id}",
            "title": f"{name}: firmware below the minimum",
            "message": (
                f"{name} ({device.manufacturer} {device.model or ''}) runs firmware "
                f"{device.sw_version}, below the minimum {minimum.version if minimum else '?'}"
            ),
            "severity": "warning",
            "station_id": device.id,
        }
