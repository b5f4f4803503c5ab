"""The uptime integration: outages, exclusions and NEVI/CEC uptime of every port.

Its modules, each with one job:
- ``const``: the domain, outage causes, exclusion reasons and config keys;
- ``intervals``: arithmetic on sorted, disjoint, half-open [start, end) lists;
- ``records``: the outage and exclusion records;
- ``hours``: stated operating hours and calendar times;
- ``config``: the configuration schema and the operating hours a station is given;
- ``figures``: the regulations' rules, a port's history and a window's figures;
- ``engine``: the live engine, from charger events to outages and uptime sensors;
- ``report``: uptime reports over any window (API, CSV, ``evhub report uptime``).

This module sets the integration up: the engine and its services.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from hub.core import Hub, ServiceCall, new_id
from hub.exceptions import HubError, ServiceValidationError
from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext
from hub.registry import DeviceKind, device_registry, entity_registry
from integrations.uptime.cli import evhub_cli_commands as evhub_cli_commands  # the CLI hook
from integrations.uptime.config import CONFIG_SCHEMA, parse_time
from integrations.uptime.const import (
    ATTR_END,
    ATTR_EXCLUSION_ID,
    ATTR_NOTE,
    ATTR_REASON,
    ATTR_START,
    DATA_UPTIME,
    DOMAIN,
    REASONS,
)
from integrations.uptime.engine import UptimeEngine
from integrations.uptime.figures import CEC_RULES, NEVI_RULES, Rules, UptimeFigures
from integrations.uptime.records import ExclusionRecord
from integrations.uptime.views import register_views

__all__ = [
    "CEC_RULES",
    "CONFIG_SCHEMA",
    "DOMAIN",
    "NEVI_RULES",
    "Rules",
    "UptimeEngine",
    "UptimeError",
    "UptimeFigures",
    "async_setup",
    "async_unload",
    "engine_of",
    "evhub_integration",
]


class UptimeError(HubError):
    """The uptime engine refused a request."""


# Services --------------------------------------------------------------------------------


def _target_schema(extra: dict[Any, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Optional(ATTR_DEVICE_ID): vol.All(str, vol.Length(min=1)),
            vol.Optional(ATTR_ENTITY_ID): vol.All(str, vol.Length(min=1)),
            **extra,
        }
    )


ADD_EXCLUSION_SCHEMA: Final = _target_schema(
    {
        vol.Required(ATTR_START): vol.Any(str, int, float, datetime),
        vol.Optional(ATTR_END): vol.Any(None, str, int, float, datetime),
        vol.Required(ATTR_REASON): vol.In(REASONS),
        vol.Optional(ATTR_NOTE): vol.Any(None, vol.All(str, vol.Length(max=1000))),
        vol.Optional(ATTR_EXCLUSION_ID): vol.All(str, vol.Length(min=1, max=64)),
    }
)
UPDATE_EXCLUSION_SCHEMA: Final = _target_schema(
    {
        vol.Required(ATTR_EXCLUSION_ID): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional(ATTR_START): vol.Any(str, int, float, datetime),
        vol.Optional(ATTR_END): vol.Any(None, str, int, float, datetime),
        vol.Optional(ATTR_REASON): vol.In(REASONS),
        vol.Optional(ATTR_NOTE): vol.Any(None, vol.All(str, vol.Length(max=1000))),
    }
)
REMOVE_EXCLUSION_SCHEMA: Final = vol.Schema(
    {vol.Required(ATTR_EXCLUSION_ID): vol.All(str, vol.Length(min=1, max=64))}
)


def _exclusion_target(hub: Hub, call: ServiceCall) -> tuple[str | None, str | None]:
    """Return (port_id, station_id) of a call's target; (None, None) for the whole site."""
    device_id = call.target.get(ATTR_DEVICE_ID) or call.data.get(ATTR_DEVICE_ID)
    entity_id = call.target.get(ATTR_ENTITY_ID) or call.data.get(ATTR_ENTITY_ID)
    if isinstance(device_id, list | tuple):
        if len(device_id) != 1:
            raise ServiceValidationError("an exclusion targets one station or port")
        device_id = device_id[0]
    if device_id is None and entity_id is not None:
        entry = entity_registry(hub).get(str(entity_id))
        if entry is None or entry.device_id is None:
            raise ServiceValidationError(f"entity {entity_id} belongs to no device")
        device_id = entry.device_id
    if device_id is None:
        return None, None
    devices = device_registry(hub)
    device = devices.get(str(device_id))
    if device is None:
        raise ServiceValidationError(f"device {device_id} not found")
    if device.kind is DeviceKind.STATION:
        return None, device.id
    if device.kind is DeviceKind.CONNECTOR:
        station = devices.station_of(device.id)
        return device.id, None if station is None else station.id
    raise ServiceValidationError(
        f"an exclusion targets a station or a port, not a {device.kind} device"
    )


def engine_of(hub: Hub) -> UptimeEngine:
    """Return the hub's uptime engine; UptimeError when the integration is not set up."""
    engine = hub.data.get(DATA_UPTIME)
    if engine is None:
        raise UptimeError("the uptime integration is not set up")
    return engine


async def async_setup(ctx: SetupContext) -> bool:
    """Start the engine on the recorder's history and register the services."""
    from integrations.recorder import get_recorder

    hub = ctx.hub
    engine = UptimeEngine(hub, ctx.config, get_recorder(hub))
    ctx.on_unload(lambda: _stop(hub, engine))
    await engine.start()
    hub.data[DATA_UPTIME] = engine

    async def add_exclusion(call: ServiceCall) -> dict[str, Any]:
        port_id, station_id = _exclusion_target(hub, call)
        try:
            start = parse_time(call.data[ATTR_START], engine.zone)
            raw_end = call.data.get(ATTR_END)
            end = None if raw_end is None else parse_time(raw_end, engine.zone)
        except vol.Invalid as err:
            raise ServiceValidationError(str(err)) from err
        record = ExclusionRecord(
            call.data.get(ATTR_EXCLUSION_ID) or new_id(),
            port_id,
            station_id,
            start,
            end,
            call.data[ATTR_REASON],
            call.data.get(ATTR_NOTE),
        )
        return engine.add_exclusion(record).as_data()

    async def update_exclusion(call: ServiceCall) -> dict[str, Any]:
        exclusion_id = call.data[ATTR_EXCLUSION_ID]
        previous = engine.exclusions.get(exclusion_id)
        if previous is None:
            raise ServiceValidationError(f"no exclusion {exclusion_id!r}")
        port_id, station_id = previous.port_id, previous.station_id
        if ATTR_DEVICE_ID in call.data or ATTR_ENTITY_ID in call.data or call.target:
            port_id, station_id = _exclusion_target(hub, call)
        try:
            start = previous.start
            if ATTR_START in call.data:
                start = parse_time(call.data[ATTR_START], engine.zone)
            end = previous.end
            if ATTR_END in call.data:
                raw_end = call.data[ATTR_END]
                end = None if raw_end is None else parse_time(raw_end, engine.zone)
        except vol.Invalid as err:
            raise ServiceValidationError(str(err)) from err
        record = ExclusionRecord(
            exclusion_id,
            port_id,
            station_id,
            start,
            end,
            call.data.get(ATTR_REASON, previous.reason),
            call.data.get(ATTR_NOTE, previous.note),
        )
        return engine.add_exclusion(record).as_data()

    async def remove_exclusion(call: ServiceCall) -> dict[str, Any]:
        return engine.remove_exclusion(call.data[ATTR_EXCLUSION_ID]).as_data(deleted=True)

    # Operators record why a charger was down (vandalism, a utility outage...).
    ctx.register_service(
        "add_exclusion",
        add_exclusion,
        ADD_EXCLUSION_SCHEMA,
        role=Role.OPERATOR,
        description="Exclude a period from a station's or port's downtime (with a reason).",
    )
    ctx.register_service(
        "update_exclusion",
        update_exclusion,
        UPDATE_EXCLUSION_SCHEMA,
        role=Role.OPERATOR,
        description="Change an exclusion's time span, reason, note or target.",
    )
    ctx.register_service(
        "remove_exclusion",
        remove_exclusion,
        REMOVE_EXCLUSION_SCHEMA,
        role=Role.OPERATOR,
        description="Remove an exclusion.",
    )
    register_views(ctx)
    return True


async def _stop(hub: Hub, engine: UptimeEngine) -> None:
    """Stop the engine."""
    if hub.data.get(DATA_UPTIME) is engine:
        hub.data.pop(DATA_UPTIME)
    await engine.stop()


@hookimpl
def evhub_integration() -> Integration:
    """Describe the uptime integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Uptime",
        version=__version__,
        setup=async_setup,
        dependencies=("recorder",),
        config_schema=CONFIG_SCHEMA,
        infrastructure=True,
    )
