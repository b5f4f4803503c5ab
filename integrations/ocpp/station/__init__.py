"""A charging station as the hub knows it: its entities, its messages, its commands.

station.py holds the Station, whatever its OCPP version; v16.py and v201.py the messages of
each version and the words of the calls sent in it; common.py what both share.
"""

from __future__ import annotations

from integrations.ocpp.station.common import ENERGY_REGISTER, POWER_ACTIVE, Sample
from integrations.ocpp.station.station import (
    _HANDLERS_16,
    _HANDLERS_201,
    PORT_ENTITIES,
    RETIRED_STATION_ENTITIES,
    STATION_ENTITIES,
    Handler,
    Port,
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
