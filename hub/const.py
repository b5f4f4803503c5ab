"""Constants shared across the hub: event types, attribute names, configuration keys."""

from __future__ import annotations

from typing import Final

MATCH_ALL: Final = "*"

# Events fired by the core.
EVENT_HUB_START: Final = "hub_start"
EVENT_HUB_STARTED: Final = "hub_started"
EVENT_HUB_STOP: Final = "hub_stop"
EVENT_HUB_FINAL_WRITE: Final = "hub_final_write"
EVENT_HUB_CLOSE: Final = "hub_close"
EVENT_STATE_CHANGED: Final = "state_changed"
EVENT_STATE_REPORTED: Final = "state_reported"
EVENT_CALL_SERVICE: Final = "call_service"
EVENT_SERVICE_REGISTERED: Final = "service_registered"
EVENT_SERVICE_REMOVED: Final = "service_removed"
EVENT_INTEGRATION_LOADED: Final = "integration_loaded"
EVENT_INTEGRATION_FAILED: Final = "integration_failed"

# Events the recorder keeps in tables of their own (besides state_changed and the charger
# events of hub.charger). Data contracts:
# uptime_outage: outage_id, port_id (port device id), station_id, start, end (None while
#   open), cause (faulted | unavailable | offline | no_power); fired at start and at end.
# uptime_exclusion: exclusion_id, port_id (None: every port of station_id), station_id
#   (None with port_id None: the whole site), start, end, reason (maintenance |
#   utility_power | vandalism | natural_disaster | outside_hours | other), note, deleted.
# audit_entry: time, user_id, username, source (address, "automation", "cli"), action
#   (e.g. "charger.reset", "login"), target (named: "Bay 1", not its id), result ("ok" or
#   "error: ..."), context_id, data (what was sent: the ids targeted, a limit, a reset type;
#   secrets redacted; None when nothing was).
# Times are POSIX seconds (float).
EVENT_OUTAGE: Final = "uptime_outage"
EVENT_EXCLUSION: Final = "uptime_exclusion"
# Fired by the uptime integration when a port's or station's figure moves (alerts listen).
EVENT_UPTIME_UPDATED: Final = "uptime_updated"
EVENT_AUDIT: Final = "audit_entry"

# Event data and state attribute keys.
ATTR_ENTITY_ID: Final = "entity_id"
ATTR_DEVICE_ID: Final = "device_id"
ATTR_OLD_STATE: Final = "old_state"
ATTR_NEW_STATE: Final = "new_state"
ATTR_DOMAIN: Final = "domain"
ATTR_SERVICE: Final = "service"
ATTR_SERVICE_DATA: Final = "service_data"
ATTR_TARGET: Final = "target"
ATTR_FRIENDLY_NAME: Final = "friendly_name"
ATTR_UNIT_OF_MEASUREMENT: Final = "unit_of_measurement"
ATTR_DEVICE_CLASS: Final = "device_class"
ATTR_CONNECTOR_ID: Final = "connector_id"

# Configuration keys.
CONF_HUB: Final = "hub"
CONF_HTTP: Final = "http"
CONF_NAME: Final = "name"
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_SERVER_HOST: Final = "server_host"
CONF_SERVER_PORT: Final = "server_port"
CONF_TIME_ZONE: Final = "time_zone"
CONF_ENTITY_ID: Final = "entity_id"
CONF_DEVICE_ID: Final = "device_id"

# States every entity may take besides its own.
STATE_UNAVAILABLE: Final = "unavailable"
STATE_UNKNOWN: Final = "unknown"
STATE_ON: Final = "on"
STATE_OFF: Final = "off"

MAX_LENGTH_STATE: Final = 255

DEFAULT_HTTP_PORT: Final = 8300
STORAGE_DIR: Final = ".storage"
CONFIG_FILE: Final = "configuration.yaml"

# Events fired by the device and entity registries.
EVENT_DEVICE_REGISTRY_UPDATED: Final = "device_registry_updated"
EVENT_ENTITY_REGISTRY_UPDATED: Final = "entity_registry_updated"

# Why a port is down, when the regulations exclude that time from its outage time
# (integrations/uptime/figures.py applies them per regulation): the reasons an exclusion, or a lock
# (charger.set_availability), may give.
EXCLUSION_REASONS: Final = (
    "maintenance",
    "utility_power",
    "vandalism",
    "natural_disaster",
    "vehicle",
    "outside_hours",
)
