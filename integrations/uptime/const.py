"""The uptime integration's vocabulary: domain, outage causes, exclusion reasons, config keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from hub.const import EXCLUSION_REASONS
from hub.core import HubKey

if TYPE_CHECKING:
    from integrations.uptime.engine import UptimeEngine

DOMAIN: Final = "uptime"
DATA_UPTIME: Final[HubKey[UptimeEngine]] = HubKey("uptime.engine")

CAUSE_FAULTED: Final = "faulted"
CAUSE_UNAVAILABLE: Final = "unavailable"
CAUSE_OFFLINE: Final = "offline"
CAUSE_NO_POWER: Final = "no_power"
CAUSES: Final = (CAUSE_FAULTED, CAUSE_UNAVAILABLE, CAUSE_OFFLINE, CAUSE_NO_POWER)
STATUS_CAUSES: Final = (CAUSE_FAULTED, CAUSE_UNAVAILABLE)

REASON_MAINTENANCE: Final = "maintenance"
REASON_UTILITY_POWER: Final = "utility_power"
REASON_VANDALISM: Final = "vandalism"
REASON_NATURAL_DISASTER: Final = "natural_disaster"
REASON_VEHICLE: Final = "vehicle"
REASON_OUTSIDE_HOURS: Final = "outside_hours"
# Exclusions recorded by earlier versions with a reason no rule knows ("other"): kept and
# shown, excluded by neither rule.
REASON_OTHER: Final = "other"
# The reasons an exclusion may give: exactly the causes the rules exclude (RULES below).
REASONS: Final = EXCLUSION_REASONS

MINUTE: Final = 60.0
DAY: Final = 86_400.0

DEFAULT_OFFLINE_GRACE: Final = 150.0  # OCPP defaults: 60 s heartbeats x 2.5

CONF_OPERATING_HOURS: Final = "operating_hours"
CONF_STATIONS: Final = "stations"
CONF_NO_POWER: Final = "no_power"
CONF_MIN_POWER_W: Final = "min_power_w"
CONF_AFTER_MINUTES: Final = "after_minutes"
CONF_OFFLINE_GRACE: Final = "offline_grace"

ATTR_EXCLUSION_ID: Final = "exclusion_id"
ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_REASON: Final = "reason"
ATTR_NOTE: Final = "note"
