"""Which entities and events the recorder keeps: include and exclude lists."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from hub.charger import EVENT_SESSION_RECORD
from hub.const import (
    EVENT_AUDIT,
    EVENT_EXCLUSION,
    EVENT_OUTAGE,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
)
from hub.security import EVENT_SECURITY

CONF_DOMAINS: Final = "domains"
CONF_ENTITY_IDS: Final = "entity_ids"
CONF_ENTITY_GLOBS: Final = "entity_globs"
CONF_EVENT_TYPES: Final = "event_types"

# The alert manager's events (integrations.alerts; named here so the recorder does not import it).
ALERT_EVENTS: Final = ("alert_raised", "alert_updated", "alert_acknowledged", "alert_resolved")

# Never kept as events: state changes, outages, exclusions, alerts, security events, audit
# entries and re-announced sessions have tables of their own; a report of an unchanged
# state says nothing history needs, and uptime_updated repeats the uptime sensors' states.
NOT_EVENTS: Final = frozenset(
    {
        EVENT_STATE_CHANGED,
        EVENT_STATE_REPORTED,
        EVENT_OUTAGE,
        EVENT_EXCLUSION,
        EVENT_AUDIT,
        EVENT_SECURITY,
        EVENT_SESSION_RECORD,
        *ALERT_EVENTS,
        "uptime_updated",
    }
)


def _globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    patterns = list(patterns)
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


class RecorderFilter:
    """Decide per entity id and per event type whether the recorder keeps it.

    An entity is kept when it is not excluded (by id, domain or glob) and, when include
    names domains or globs, it matches one. An entity id listed in include is always kept.
    Events: every type but state_changed and state_reported, minus exclude, or only the
    include list when one is given.
    """

    def __init__(self, include: Mapping[str, Any], exclude: Mapping[str, Any]) -> None:
        self.inc_domains = frozenset(include.get(CONF_DOMAINS, ()))
        self.inc_ids = frozenset(include.get(CONF_ENTITY_IDS, ()))
        self.inc_globs = _globs(include.get(CONF_ENTITY_GLOBS, ()))
        self.exc_domains = frozenset(exclude.get(CONF_DOMAINS, ()))
        self.exc_ids = frozenset(exclude.get(CONF_ENTITY_IDS, ()))
        self.exc_globs = _globs(exclude.get(CONF_ENTITY_GLOBS, ()))
        self.inc_events = frozenset(include.get(CONF_EVENT_TYPES, ()))
        self.exc_events = frozenset(exclude.get(CONF_EVENT_TYPES, ()))
        self.filters_entities = bool(
            self.inc_domains
            or self.inc_ids
            or self.inc_globs
            or self.exc_domains
            or self.exc_ids
            or self.exc_globs
        )
        # Included entity ids only override excludes; included domains or globs restrict.
        self._has_include = bool(self.inc_domains or self.inc_globs)

    def entity(self, entity_id: str) -> bool:
        """Tell whether the state changes of entity_id are kept."""
        if entity_id in self.inc_ids:
            return True
        domain = entity_id.partition(".")[0]
        if (
            entity_id in self.exc_ids
            or domain in self.exc_domains
            or (self.exc_globs is not None and self.exc_globs.match(entity_id))
        ):
            return False
        if not self._has_include:
            return True
        return domain in self.inc_domains or bool(
            self.inc_globs is not None and self.inc_globs.match(entity_id)
        )

    def event(self, event_type: str) -> bool:
        """Tell whether events of event_type are kept in the events table."""
        if event_type in self.inc_events:
            return event_type != EVENT_STATE_CHANGED
        if event_type in NOT_EVENTS or event_type in self.exc_events:
            return False
        return not self.inc_events
