"""The uptime integration's configuration: its schema, and the operating hours it states."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from datetime import time as dt_time
from typing import Any, Final

import voluptuous as vol

from hub.registry import DeviceEntry
from integrations.uptime.const import (
    CONF_AFTER_MINUTES,
    CONF_MIN_POWER_W,
    CONF_NO_POWER,
    CONF_OFFLINE_GRACE,
    CONF_OPERATING_HOURS,
    CONF_STATIONS,
    DEFAULT_OFFLINE_GRACE,
)
from integrations.uptime.hours import HoursHistory, WeeklyHours
from integrations.uptime.intervals import INF

# A station's stated hours as configured: one statement, or a history of statements each
# with the local date it took effect ("since"; the first may leave it out).
HoursStatement = tuple[date | None, WeeklyHours]


def _statement(value: Any) -> WeeklyHours:
    try:
        return WeeklyHours.parse(value)
    except ValueError as err:
        raise vol.Invalid(str(err)) from err


def _hours(value: Any) -> tuple[HoursStatement, ...]:
    """Validate operating hours: a statement, or a list of {since: date, hours: statement}."""
    if not isinstance(value, list):
        return ((None, _statement(value)),)
    if not value:
        raise vol.Invalid("operating hours: an empty list")
    found: list[HoursStatement] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or "hours" not in item:
            raise vol.Invalid(f"operating hours [{index}]: expected {{since: date, hours: ...}}")
        unknown = set(item) - {"since", "hours"}
        if unknown:
            raise vol.Invalid(f"operating hours [{index}]: unknown key {sorted(unknown)[0]!r}")
        since = item.get("since")
        if since is None and index:
            raise vol.Invalid(f"operating hours [{index}]: only the first may leave out since")
        day: date | None = None
        if since is not None:
            try:
                day = since if isinstance(since, date) else date.fromisoformat(str(since))
            except ValueError as err:
                raise vol.Invalid(
                    f"operating hours [{index}]: since {since!r} is not a date"
                ) from err
            if found and found[-1][0] is not None and day <= found[-1][0]:
                raise vol.Invalid(f"operating hours [{index}]: since dates must increase")
        found.append((day, _statement(item["hours"])))
    return tuple(found)


def _holidays(value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise vol.Invalid("holidays: expected a list of dates (YYYY-MM-DD)")
    days: set[date] = set()
    for item in value:
        try:
            days.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
        except ValueError as err:
            raise vol.Invalid(f"holidays: {item!r} is not a date (YYYY-MM-DD)") from err
    return frozenset(days)


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


CONF_HOLIDAYS: Final = "holidays"

CONFIG_SCHEMA: Final = vol.All(
    _none_to_empty,
    vol.Schema(
        {
            vol.Optional(CONF_OPERATING_HOURS): _hours,
            vol.Optional(CONF_HOLIDAYS, default=[]): _holidays,
            vol.Optional(CONF_STATIONS, default={}): vol.All(
                _none_to_empty, {str: vol.Schema({vol.Optional(CONF_OPERATING_HOURS): _hours})}
            ),
            vol.Optional(CONF_NO_POWER): vol.Schema(
                {
                    vol.Optional(CONF_MIN_POWER_W, default=100.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0)
                    ),
                    vol.Optional(CONF_AFTER_MINUTES, default=10.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0)
                    ),
                }
            ),
            vol.Optional(CONF_OFFLINE_GRACE, default=DEFAULT_OFFLINE_GRACE): vol.All(
                vol.Coerce(float), vol.Range(min=0, max=86_400)
            ),
        }
    ),
)

GLOBAL_HOURS_KEY: Final = "*"


def hours_key(
    config: Mapping[str, Any], station: DeviceEntry | None, station_key: str | None = None
) -> str | None:
    """The config key whose operating hours apply to a station: its own entry (by name,
    device id or an identifier's id), else the global one ("*"), else None."""
    stations: Mapping[str, Any] = config.get(CONF_STATIONS) or {}
    keys: list[str] = []
    if station_key is not None:
        keys.append(station_key)
    if station is not None:
        keys.extend([station.id, *(ident for _, ident in station.identifiers)])
        if station.name:
            keys.append(station.name)
    for key in keys:
        entry = stations.get(key)
        if entry and entry.get(CONF_OPERATING_HOURS) is not None:
            return key
    return GLOBAL_HOURS_KEY if config.get(CONF_OPERATING_HOURS) is not None else None


def _configured(config: Mapping[str, Any], key: str) -> tuple[HoursStatement, ...]:
    if key == GLOBAL_HOURS_KEY:
        found: tuple[HoursStatement, ...] = config.get(CONF_OPERATING_HOURS) or ()
        return found
    entry = (config.get(CONF_STATIONS) or {}).get(key) or {}
    return tuple(entry.get(CONF_OPERATING_HOURS) or ())


def hours_for(
    config: Mapping[str, Any],
    station: DeviceEntry | None,
    station_key: str | None = None,
    *,
    zone: zoneinfo.ZoneInfo | None = None,
    logged: Mapping[str, Sequence[tuple[float, Any]]] | None = None,
) -> HoursHistory | None:
    """Return the stated hours of a station as they changed over time, or None (always open).

    A history written in config (``since`` dates, hub time zone) is taken as written. A single
    statement has the history the engine logged each time it changed (``logged``: config key
    -> [(since, described hours)]), so editing it does not rewrite the past.
    """
    key = hours_key(config, station, station_key)
    if key is None:
        return None
    zone = zone or zoneinfo.ZoneInfo("UTC")
    holidays: frozenset[date] = config.get(CONF_HOLIDAYS) or frozenset()
    statements = _configured(config, key)
    if len(statements) == 1 and statements[0][0] is None:
        current = replace(statements[0][1], holidays=holidays)
        entries: list[tuple[float, WeeklyHours]] = []
        for since, described in (logged or {}).get(key, ()):
            try:
                entries.append((float(since), WeeklyHours.parse(described, holidays)))
            except (TypeError, ValueError):
                continue
        if not entries:
            entries.append((-INF, current))
        # A statement edited since the engine last logged it applies from when the engine
        # logs it (at its next start), never to the past.
        return HoursHistory(tuple(entries))
    return HoursHistory(
        tuple(
            (
                -INF if since is None else datetime.combine(since, dt_time(0), zone).timestamp(),
                replace(hours, holidays=holidays),
            )
            for since, hours in statements
        )
    )


def parse_time(value: Any, zone: zoneinfo.ZoneInfo) -> float:
    """Return POSIX seconds from a number, a datetime or an ISO string (naive: hub zone)."""
    if isinstance(value, bool):
        raise vol.Invalid(f"expected a time, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as err:
            raise vol.Invalid(f"expected an ISO 8601 time, got {value!r}") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()
