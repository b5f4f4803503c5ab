"""A charging station as the hub knows it: its entities, its messages, its commands."""

from __future__ import annotations

from integrations.ocpp.station.station import (
    _HANDLERS_16,
    _HANDLERS_201,
    ENERGY_REGISTER,
    PORT_ENTITIES,
    POWER_ACTIVE,
    RETIRED_STATION_ENTITIES,
    STATION_ENTITIES,
    Handler,
    Port,
    Sample,
    Station,
)

__all__ = [
    "ENERGY_REGISTER",
    "PORT_ENTITIES",
    "POWER_ACTIVE",
    "RETIRED_STATION_ENTITIES",
    "STATION_ENTITIES",
    "_HANDLERS_16",
    "_HANDLERS_201",
    "Handler",
    "Port",
    "Sample",
    "Station",
]
