"""The uptime engine: port outages, exclusions, NEVI/CEC uptime, live uptime sensors.

What counts as an outage of a port (a connector or EVSE device), each fired as
``uptime_outage`` at its start (``end`` None) and again at its end:

- ``faulted``: the port reports Faulted;
- ``unavailable``: the port reports Unavailable, whoever made it so. A port an operator
  locked (``charger.set_availability`` with ``available: false``) is not available for use:
  the lock is an outage. Its time is excluded only when the lock gives an excluded reason
  (``reason: maintenance``...): the engine then adds an exclusion for the port from the
  lock call until the port leaves Unavailable or is unlocked, under each regulation's rules
  (CEC's 72 h maintenance cap applies). A lock that does not take (the port still Available
  a minute later) excludes nothing: its exclusion is withdrawn.
- ``offline``: the station went offline; every port of the station is down. A station
  whose source cannot be reached (an ``unknown`` charger event: a vendor cloud away) is
  not offline: its state is unknown, which is no outage; its open outages end there and
  none starts until it is heard of again;
- ``no_power`` (only with ``uptime: no_power:``): the port is Charging in an open session
  and its ``power`` sensor stays below ``min_power_w`` for longer than ``after_minutes``;
  the outage starts when the power fell. A power sensor without a number does not count.

Restart rule. The hub being down is not charger downtime:
- at stop, open outages stay open in the recorder and the stop time is kept as the hub's
  last moment alive (for a crash: a mark rewritten every second, ``.storage/uptime.alive``);
- after the start, an outage that was open is decided by the first news about its port:
  the same condition again (the same down status, the station still offline after its
  grace) continues it as one outage; anything else closes it at the last moment alive,
  never later, so the time the hub was down is not counted for a port that came back;
  with no news until the grace ends, it continues (a station that comes back while it has
  such an outage is asked for its status, when its driver can: charger trigger_status);
- a station that does not come back is counted offline only once ``offline_grace``
  seconds have passed since the start (its normal grace, as when running), from then on;
- charger events while the hub stops (sockets closing) are ignored.

Exclusions (``uptime.add_exclusion`` / ``uptime.remove_exclusion``, fired as
``uptime_exclusion``) and stated operating hours (time outside them counts as excluded,
reason ``outside_hours``) reduce the outage time only where they overlap it. CEC caps:
vandalism at most 10 days per incident, planned maintenance at most 72 hours per port per
calendar year (hub time zone). Uncapped reasons are applied first, then vandalism
incidents, then maintenance, each in start order; the caps count only excluded outage time.

In service. NEVI and CEC count uptime for ports in operation, so each port has an in-service
start: the earliest moment the hub knows it existed, its first recorded status, outage or
session (recorder ``first_seen``, hub clock), else its device registry entry's ``created_at``
(never later than now). Every window of a port is clipped to start there: a window entirely
before it has no figure (uptime None, "not in service"), not 100 %. The engine loads the
in-service times once at its start (one recorder query) and moves them earlier from charger
events (a status, a session) and outages. The CEC 15-minute intervals before it are left
out; the one it falls in counts from it. Known limit: after the recorder's retention
(``long_keep_days``) purged a port's oldest rows, its in-service start is its oldest kept row.

NEVI (23 CFR 680.116(b)): uptime = (W - (T_outage - T_excluded)) / W x 100 per port, with
W = the minutes of the window clipped to the port's in-service time: 525,600 for the
trailing 12 months of a port in service all that time, the window's own minutes otherwise.
Times are kept in seconds and reported in minutes. Overlapping outages of one port count
once. A station's figure is the mean of the percentages of its ports in service in the
window (None when none is); minute totals are sums.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from hub.charger import EVENT_CHARGER, ChargerCapability, ChargerEventKind, get_charger
from hub.clock import Timer, clock
from hub.const import (
    ATTR_DEVICE_ID,
    ATTR_DOMAIN,
    ATTR_ENTITY_ID,
    ATTR_FRIENDLY_NAME,
    ATTR_SERVICE,
    ATTR_SERVICE_DATA,
    ATTR_TARGET,
    ATTR_UNIT_OF_MEASUREMENT,
    EVENT_CALL_SERVICE,
    EVENT_DEVICE_REGISTRY_UPDATED,
    EVENT_ENTITY_REGISTRY_UPDATED,
    EVENT_EXCLUSION,
    EVENT_HUB_STOP,
    EVENT_OUTAGE,
    EVENT_STATE_CHANGED,
    EVENT_UPTIME_UPDATED,
    STORAGE_DIR,
)
from hub.core import Context, Event, Hub, Unsubscribe, new_id
from hub.entity import EntityDescription, register_entity
from hub.exceptions import ServiceValidationError
from hub.registry import DeviceKind, device_registry, entity_registry
from hub.storage import Store
from hub.util import freeze_new_long_lived
from integrations.uptime.config import GLOBAL_HOURS_KEY, _configured, hours_for
from integrations.uptime.const import (
    ATTR_NOTE,
    ATTR_REASON,
    CAUSE_FAULTED,
    CAUSE_NO_POWER,
    CAUSE_OFFLINE,
    CAUSE_UNAVAILABLE,
    CONF_AFTER_MINUTES,
    CONF_MIN_POWER_W,
    CONF_NO_POWER,
    CONF_OFFLINE_GRACE,
    CONF_STATIONS,
    DAY,
    DEFAULT_OFFLINE_GRACE,
    DOMAIN,
    MINUTE,
    REASONS,
    STATUS_CAUSES,
)
from integrations.uptime.figures import (
    CEC_RULES,
    NEVI_RULES,
    NEVI_YEAR_SECONDS,
    PortHistory,
    Rules,
    UptimeFigures,
    _never_down,
    _Pair,
    _rounded,
    _summed,
    history_start,
    mean_percent,
    trailing_window,
)
from integrations.uptime.hours import month_start, utc_iso
from integrations.uptime.intervals import INF
from integrations.uptime.records import ExclusionRecord, OutageRecord

_LOGGER = logging.getLogger(__name__)
# Each port's and station's uptime sensor: the state is the NEVI figure; the attributes are
# written with each figure (the sensor is registered like any entity, hub.entity).
UPTIME_SENSOR = EntityDescription(key="uptime", name="uptime", unit_of_measurement="%")

STORAGE_KEY: Final = "uptime.state"
# The hub's last moment alive, rewritten every second (no fsync: it survives SIGKILL of the
# process, and a power cut costs a few seconds of it): a crash must not truncate an outage
# that began since the last save of the store.
ALIVE_FILE: Final = "uptime.alive"
ALIVE_INTERVAL: Final = 1.0
STORAGE_VERSION: Final = 1
UPDATE_INTERVAL: Final = 60.0
UPDATE_SLICE: Final = 500  # more ports than this: the minute's update yields to the loop
UPDATE_SLICE_S: Final = 0.005  # loop time of one slice of the minute's update
FREEZE_AFTER_SENSORS: Final = 50  # new sensors in one slice: a burst, frozen (hub/util.py)
RELEASE_GRACE: Final = 60.0
# A charger's time within this of the hub clock, either way, is taken for live news.
CLOCK_SKEW_S: Final = 300.0
# The exclusion ids of locks with an excluded reason.
LOCK_PREFIX: Final = "lock-"
# News stated in a station's silence (offline, or the hub down) is taken when it comes this
# soon after the station reconnected (what it queued).
QUEUE_WINDOW_S: Final = 600.0


def _time_of(value: Any, default: float) -> float:
    """Return an event's POSIX time field, or default when it has none."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


# The live engine -------------------------------------------------------------------------


@dataclass(slots=True)
class _LowPower:
    since: float
    timer: Timer | None


class UptimeEngine:
    """Turns charger events into outages, keeps exclusions, and the uptime sensors live."""

    def __init__(self, hub: Hub, config: Mapping[str, Any], recorder: Any) -> None:
        self.hub = hub
        self.config = config
        self.recorder = recorder
        time_zone = hub.config.time_zone if hub.config is not None else "UTC"
        self.zone = zoneinfo.ZoneInfo(time_zone)
        self.offline_grace: float = config.get(CONF_OFFLINE_GRACE, DEFAULT_OFFLINE_GRACE)
        no_power = config.get(CONF_NO_POWER)
        self.min_power_w: float | None = None if no_power is None else no_power[CONF_MIN_POWER_W]
        self.after_s = 0.0 if no_power is None else no_power[CONF_AFTER_MINUTES] * MINUTE
        self._store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY)
        self._closed: dict[str, list[OutageRecord]] = {}
        self._open: dict[str, dict[str, OutageRecord]] = {}
        self._carried: set[str] = set()
        self.exclusions: dict[str, ExclusionRecord] = {}
        self._status: dict[str, str] = {}
        # The time of the last news applied per port, and charger times not taken.
        self._news: dict[str, float] = {}
        # Station -> (when its last silence began, when it came back online); station ->
        # when it went offline (while it is).
        self._gap: dict[str, tuple[float, float]] = {}
        self._offline_at: dict[str, float] = {}
        # Station -> when its source (a vendor cloud, a gateway) became unreachable, while
        # it is: its state is unknown, not down.
        self._unknown_at: dict[str, float] = {}
        self.clock_notes: dict[str, int] = {}
        self._clock_logged: dict[str, float] = {}
        self._sessions: set[str] = set()
        # Ports locked with an excluded reason: port -> (the exclusion that covers the lock,
        # whether the port went Unavailable since).
        self._locks: dict[str, tuple[str, bool]] = {}
        self.hours_log: dict[str, list[tuple[float, Any]]] = {}
        self._release_timers: dict[str, Timer] = {}
        self._low: dict[str, _LowPower] = {}
        self._power_entities: dict[str, str] = {}
        self._power_of_port: dict[str, str] = {}
        self._unsubs: list[Unsubscribe] = []
        self._timers: list[Timer] = []
        self._tick_timer: Timer | None = None
        self._alive_timer: asyncio.TimerHandle | None = None
        self._updating: asyncio.Task[None] | None = None
        self._cache: dict[str, PortHistory] = {}
        # Port -> station and station -> ports, kept from device registry changes (a fleet's
        # registry walked once, not for every event and every minute).
        self._port_station: dict[str, str] | None = None
        self._station_ports: dict[str, list[str]] = {}
        self._in_service: dict[str, float] = {}
        self._sensor_ids: dict[str, str] = {}
        self._sensors_made = 0
        self._last_percent: dict[str, tuple[int, int | None]] = {}
        self.started_at = 0.0
        self._pruned = 0.0
        self.resume_from = 0.0
        self.last_alive: float | None = None
        self._in_grace = True
        self._stopping = False

    # Time and lifecycle -----------------------------------------------------------------

    def now(self) -> float:
        """The hub clock's time."""
        return clock(self.hub).time()

    async def start(self) -> None:
        """Load state and history, listen, and schedule the grace end and the minute tick."""
        now = self.started_at = self.now()
        stored = await self._store.load() or {}
        last_alive = stored.get("last_alive")
        self.last_alive = float(last_alive) if isinstance(last_alive, int | float) else None
        marked = await self.hub.run_in_executor(_read_alive, self._alive_path)
        if marked is not None and (self.last_alive is None or marked > self.last_alive):
            self.last_alive = marked
        # Outages carried over the restart close at the previous run's last moment alive.
        self.resume_from = now if self.last_alive is None else min(self.last_alive, now)
        locks = stored.get("locks")
        if isinstance(locks, Mapping):
            for port, lock in locks.items():
                with contextlib.suppress(TypeError, ValueError):
                    self._locks[str(port)] = (str(lock[0]), bool(lock[1]))
        self._log_hours(now, stored.get("hours_log"))
        since = history_start(now - NEVI_YEAR_SECONDS, self.zone)
        for row in await self.recorder.outages(since, now + DAY):
            try:
                record = OutageRecord.from_row(row)
            except (KeyError, TypeError, ValueError):
                _LOGGER.warning("Uptime: skipping a bad outage row %s", row)
                continue
            if record.end is None:
                self._open.setdefault(record.port_id, {})[record.cause] = record
                self._carried.add(record.outage_id)
            else:
                self._closed.setdefault(record.port_id, []).append(record)
        # In-service starts: one query; recorded times follow the hub clock.
        self._in_service = dict(await self.recorder.first_seen())
        for record in self.outages():
            self._note_in_service(record.port_id, record.start)
        for row in await self.recorder.exclusions(since, now + 3650 * DAY):
            try:
                exclusion = ExclusionRecord.from_row(row)
            except (KeyError, TypeError, ValueError):
                _LOGGER.warning("Uptime: skipping a bad exclusion row %s", row)
                continue
            self.exclusions[exclusion.exclusion_id] = exclusion
        # A lock's exclusion the recorder kept while the engine's store missed it (a crash
        # within its save delay): adopted, so it ends when the port is back in use.
        for exclusion in self.exclusions.values():
            port = exclusion.port_id
            if exclusion.exclusion_id.startswith(LOCK_PREFIX) and exclusion.end is None and port:
                self._locks.setdefault(port, (exclusion.exclusion_id, True))
        if self.last_alive is None:
            self.last_alive = now
        for port_id, records in list(self._open.items()):
            stale = records.pop(CAUSE_NO_POWER, None)
            if stale is not None:  # sessions and power are live facts: not carried over
                self._carried.discard(stale.outage_id)
                self._finish(stale, self.resume_from)
            if not records:
                self._open.pop(port_id, None)
        bus = self.hub.bus
        self._unsubs = [
            bus.listen(EVENT_CHARGER, self._on_charger_event),
            bus.listen(
                EVENT_CALL_SERVICE,
                self._on_call_service,
                lambda data: (
                    data.get(ATTR_DOMAIN) == "charger"
                    and data.get(ATTR_SERVICE) == "set_availability"
                ),
            ),
            bus.listen(EVENT_HUB_STOP, self._on_hub_stop),
            bus.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._on_device_registry_updated),
        ]
        if self.min_power_w is not None:
            self._refresh_power_entities()
            self._unsubs.append(
                bus.listen(EVENT_ENTITY_REGISTRY_UPDATED, self._on_entity_registry_updated)
            )
            self._unsubs.append(
                bus.listen(
                    EVENT_STATE_CHANGED,
                    self._on_power_changed,
                    lambda data: data.get(ATTR_ENTITY_ID) in self._power_entities,
                )
            )
        self._timers.append(clock(self.hub).call_later(self.offline_grace, self._grace_over))
        self._save()
        self._tick()
        self._mark_alive()

    async def stop(self) -> None:
        """Stop listening and keep the last moment alive for the next start."""
        self._stopping = True
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        for timer in [*self._timers, *self._release_timers.values()]:
            timer.cancel()
        for low in self._low.values():
            if low.timer is not None:
                low.timer.cancel()
        if self._tick_timer is not None:
            self._tick_timer.cancel()
        if self._alive_timer is not None:
            self._alive_timer.cancel()
            self._alive_timer = None
        if self._updating is not None and not self._updating.done():
            self._updating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updating
        self._timers.clear()
        self._release_timers.clear()
        self.last_alive = self.now()
        await self._store.save(self._data_to_save())

    @property
    def _alive_path(self) -> Path:
        return Path(self.hub.path(STORAGE_DIR, ALIVE_FILE))

    def _mark_alive(self) -> None:
        """Write the hub clock's time to the alive file, then again a second later."""
        self._alive_timer = None
        if self._stopping:
            return
        now = self.now()
        self.hub.create_task(
            self.hub.run_in_executor(_write_alive, self._alive_path, now), "uptime alive mark"
        )
        # Real seconds, not the hub clock's: a crash happens in real time.
        self._alive_timer = self.hub.loop.call_later(ALIVE_INTERVAL, self._mark_alive)

    def _on_hub_stop(self, _event: Event) -> None:
        self._stopping = True
        self.last_alive = self.now()
        self._save()

    def _data_to_save(self) -> dict[str, Any]:
        return {
            "last_alive": self.last_alive,
            "locks": {port: list(lock) for port, lock in self._locks.items()},
            "hours_log": {
                key: [list(item) for item in items] for key, items in self.hours_log.items()
            },
        }

    def _log_hours(self, now: float, stored: Any) -> None:
        """Keep the history of each stated hours written as one statement in config: a
        change is logged with the time the engine first saw it."""
        log: dict[str, list[tuple[float, Any]]] = {}
        if isinstance(stored, Mapping):
            for key, items in stored.items():
                try:
                    log[str(key)] = [(float(since), described) for since, described in items]
                except (TypeError, ValueError):
                    _LOGGER.warning("Uptime: skipping a bad operating hours log for %s", key)
        keys = [GLOBAL_HOURS_KEY, *(self.config.get(CONF_STATIONS) or {})]
        for key in keys:
            statements = _configured(self.config, key)
            if len(statements) != 1 or statements[0][0] is not None:
                continue
            described = statements[0][1].describe()
            items = log.setdefault(key, [])
            if not items or items[-1][1] != described:
                items.append((now, described))
        self.hours_log = log

    def _save(self) -> None:
        self._store.delay_save(self._data_to_save)

    def _tick(self) -> None:
        self._tick_timer = None
        if self._stopping:
            return
        now = self.last_alive = self.now()
        self._save()
        if now - self._pruned >= DAY:
            self._prune(now)
        if len(self.all_ports()) <= UPDATE_SLICE:
            self.update_sensors()
        elif self._updating is None or self._updating.done():
            self._updating = self.hub.create_task(self._update_in_slices(), "uptime sensors")
        self._tick_timer = clock(self.hub).call_later(UPDATE_INTERVAL, self._tick)

    async def _update_in_slices(self) -> None:
        """Update a large fleet's sensors whole stations at a time, yielding to the loop
        every UPDATE_SLICE_S seconds (chargers' messages wait at most that long)."""
        # The station ids only: one list, not a container per station for the collector to
        # traverse while the update runs.
        stations = list(self._stations())
        started = time.perf_counter()
        made = self._sensors_made
        for station_id in stations:
            ports = self._station_ports.get(station_id)
            if ports:
                self._update_ports(dict.fromkeys(ports, station_id))
            if time.perf_counter() - started >= UPDATE_SLICE_S:
                if self._sensors_made - made >= FREEZE_AFTER_SENSORS:
                    # A fleet's first sensors (after a start or a burst of new chargers): long
                    # lived, kept out of the collector's young generation.
                    freeze_new_long_lived()
                made = self._sensors_made
                await asyncio.sleep(0)
                if self._stopping:
                    return
                started = time.perf_counter()

    def _prune(self, now: float) -> None:
        """Forget closed outages older than any trailing window still needs."""
        self._pruned = now
        since = history_start(now - NEVI_YEAR_SECONDS, self.zone)
        for port_id, records in list(self._closed.items()):
            kept = [r for r in records if r.end is None or r.end > since]
            if kept:
                self._closed[port_id] = kept
            else:
                del self._closed[port_id]

    def _grace_over(self) -> None:
        """The start's grace is over: carried outages continue; absent stations are offline."""
        self._in_grace = False
        now = self.now()
        devices = device_registry(self.hub)
        for station in devices.devices(kind=DeviceKind.STATION):
            charger = get_charger(self.hub, station.id)
            ports = self.ports_of(station.id)
            if charger is None or not ports or station.id in self._unknown_at:
                continue
            if charger.online:
                for port_id in ports:
                    self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=False)
                continue
            for port_id in ports:
                if not self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=True):
                    self._start(port_id, station.id, CAUSE_OFFLINE, now)
        self._carried.clear()

    def _resolve_carried(
        self, port_id: str, cause: str, *, still_down: bool, when: float | None = None
    ) -> bool:
        """Decide an outage carried over a restart; True if one continues.

        One that is over ends when the charger says the port came back (``when``, e.g. while
        the hub was down), else at the hub's last moment alive.
        """
        record = self._open.get(port_id, {}).get(cause)
        if record is None:
            return False
        if record.outage_id not in self._carried:
            return still_down
        self._carried.discard(record.outage_id)
        if still_down:
            return True
        self._end(port_id, cause, self.resume_from if when is None else when)
        return False

    # Devices ------------------------------------------------------------------------------

    def _ports(self) -> dict[str, str]:
        """Port -> station, built from the registry once, then kept from its changes."""
        found = self._port_station
        if found is None:
            devices = device_registry(self.hub)
            found = self._port_station = {}
            self._station_ports = {}
            for station in devices.devices(kind=DeviceKind.STATION):
                ports = [
                    device.id
                    for device in devices.descendants(station.id)
                    if device.kind is DeviceKind.CONNECTOR
                ]
                for port_id in ports:
                    found[port_id] = station.id
                if ports:
                    self._station_ports[station.id] = ports
        return found

    def _stations(self) -> dict[str, list[str]]:
        """Station -> its ports (stations without ports left out)."""
        self._ports()
        return self._station_ports

    def _on_device_registry_updated(self, event: Event) -> None:
        found = self._port_station
        if found is None:
            return
        device_id = event.data.get(ATTR_DEVICE_ID)
        device = device_registry(self.hub).get(device_id) if device_id else None
        action = event.data.get("action")
        if action == "create":
            # A new station has no ports yet; a new port joins its station.
            if device is not None and device.kind is DeviceKind.CONNECTOR:
                station = device_registry(self.hub).station_of(device.id)
                if station is not None and device.id not in found:
                    found[device.id] = station.id
                    self._station_ports.setdefault(station.id, []).append(device.id)
            return
        if action == "update" and not {"via_device_id", "kind"} & set(
            event.data.get("changes", {})
        ):
            return  # a name, a model, a firmware: where ports belong is unchanged
        # A removal or a move: rare; build again when next asked.
        self._port_station = None

    def ports_of(self, station_id: str) -> list[str]:
        """Return the port device ids of a station."""
        return list(self._stations().get(station_id, ()))

    def all_ports(self) -> dict[str, str]:
        """Return every port device id with its station's device id."""
        return dict(self._ports())

    def _station_of(self, port_id: str) -> str | None:
        found = self._ports().get(port_id)
        if found is not None:
            return found
        station = device_registry(self.hub).station_of(port_id)
        return None if station is None else station.id

    def in_service_of(self, port_id: str) -> float:
        """Return when a port came into service: recorded, else its registry entry (inf: never)."""
        found = self._in_service.get(port_id)
        if found is not None:
            return found
        # Nothing recorded: the registry's real time, never after the hub clock's now.
        device = device_registry(self.hub).get(port_id)
        return INF if device is None else min(device.created_at, self.now())

    def _note_in_service(self, port_id: str, when: float) -> None:
        """Move a port's in-service start earlier to `when` if it is earlier."""
        if math.isfinite(when) and when < self._in_service.get(port_id, INF):
            self._in_service[port_id] = when
            self._cache.pop(port_id, None)

    # Outages ------------------------------------------------------------------------------

    def _start(self, port_id: str, station_id: str | None, cause: str, start: float) -> None:
        ports = self._open.setdefault(port_id, {})
        if cause in ports:
            return
        record = OutageRecord(new_id(), port_id, station_id, start, None, cause)
        ports[cause] = record
        self._note_in_service(port_id, start)
        self.hub.bus.fire(EVENT_OUTAGE, record.as_data())
        self._changed(port_id)

    def _end(self, port_id: str, cause: str, end: float) -> None:
        ports = self._open.get(port_id)
        record = None if ports is None else ports.pop(cause, None)
        if record is None:
            return
        if ports is not None and not ports:
            self._open.pop(port_id, None)
        self._carried.discard(record.outage_id)
        self._finish(record, end)
        self._changed(port_id)

    def _finish(self, record: OutageRecord, end: float) -> None:
        closed = replace(record, end=max(end, record.start))
        self._closed.setdefault(record.port_id, []).append(closed)
        self.hub.bus.fire(EVENT_OUTAGE, closed.as_data())

    def open_outages(self) -> list[OutageRecord]:
        """Return the outages open now."""
        return [record for ports in self._open.values() for record in ports.values()]

    def outages(self, port_id: str | None = None) -> list[OutageRecord]:
        """Return the outages kept in memory (closed and open), of one port or all."""
        ports = [port_id] if port_id is not None else list({*self._closed, *self._open})
        found: list[OutageRecord] = []
        for port in ports:
            found.extend(self._closed.get(port, ()))
            found.extend(self._open.get(port, {}).values())
        return sorted(found, key=lambda o: (o.start, o.outage_id))

    # Events -------------------------------------------------------------------------------

    def _active(self) -> bool:
        return not self._stopping and self.hub.is_running

    def _on_charger_event(self, event: Event) -> None:
        if not self._active():
            return
        data = event.data
        kind = data.get("kind")
        station_id = data.get("station_id")
        if not isinstance(station_id, str):
            return
        now = self.now()
        if kind == ChargerEventKind.STATUS:
            port_id = data.get("device_id")
            status = data.get("status")
            if isinstance(port_id, str) and port_id != station_id and isinstance(status, str):
                self._unknown_at.pop(station_id, None)
                when, stated = self._news_time(port_id, station_id, data.get("time"), now)
                self._note_in_service(port_id, when)
                self._on_status(port_id, station_id, status, when, stated=stated)
        elif kind == ChargerEventKind.UNKNOWN:
            self._on_unknown(station_id, now)
        elif kind == ChargerEventKind.OFFLINE:
            self._unknown_at.pop(station_id, None)
            self._offline_at.setdefault(station_id, now)
            for port_id in self.ports_of(station_id):
                if not self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=True):
                    self._start(port_id, station_id, CAUSE_OFFLINE, now)
        elif kind == ChargerEventKind.ONLINE:
            # Its silence began when it went offline, or (its first time online since the
            # start) at the hub's last moment alive.
            silent_since = self._offline_at.pop(station_id, None)
            unknown_since = self._unknown_at.pop(station_id, None)
            if silent_since is None:
                silent_since = unknown_since
            if silent_since is None and station_id not in self._gap:
                silent_since = self.resume_from
            if silent_since is not None:
                self._gap[station_id] = (silent_since, now)
            ports = self.ports_of(station_id)
            for port_id in ports:
                if not self._resolve_carried(port_id, CAUSE_OFFLINE, still_down=False):
                    self._end(port_id, CAUSE_OFFLINE, now)
            if any(
                record.outage_id in self._carried
                for port_id in ports
                for record in self._open.get(port_id, {}).values()
            ):
                self._ask_status(station_id)
        elif kind in (ChargerEventKind.SESSION_STARTED, ChargerEventKind.SESSION_ENDED):
            port_id = data.get("device_id")
            if isinstance(port_id, str) and port_id != station_id:
                self._note_in_service(port_id, min(now, _time_of(data.get("started_at"), now)))
                if kind == ChargerEventKind.SESSION_STARTED:
                    self._sessions.add(port_id)
                else:
                    self._sessions.discard(port_id)
                self._check_power(port_id, now)

    def _on_unknown(self, station_id: str, now: float) -> None:
        """The source that reports a station cannot be reached: its state is unknown.

        Unknown is neither up nor down: the outages open on its ports end here (what
        follows is not known to be down), and none starts until the station is heard of
        again (online, offline, a port's status), as for the hub's own down time.
        """
        self._unknown_at.setdefault(station_id, now)
        self._offline_at.pop(station_id, None)
        for port_id in self.ports_of(station_id):
            self._status.pop(port_id, None)
            for cause in list(self._open.get(port_id, {})):
                if not self._resolve_carried(port_id, cause, still_down=False):
                    self._end(port_id, cause, now)
            self._check_power(port_id, now)

    def unknown_stations(self) -> dict[str, float]:
        """The stations whose state is unknown now (their source is away), with since when."""
        return dict(self._unknown_at)

    def _ask_status(self, station_id: str) -> None:
        """Ask a station back after a restart for its ports' status: the news that decides."""
        charger = get_charger(self.hub, station_id)
        if charger is None or ChargerCapability.TRIGGER_STATUS not in charger.capabilities:
            return

        async def ask() -> None:
            # Through the charger.trigger_status service with a context of its own, like any
            # other action: the call is on the bus and in history, and the driver is asked
            # the one way every caller asks it.
            try:
                await self.hub.services.call(
                    "charger", "trigger_status", {}, {"device_id": station_id}, Context()
                )
            except Exception as err:  # any driver's failure: the status is only a hint
                _LOGGER.info("Uptime: %s did not report its status: %s", station_id, err)

        self.hub.create_background_task(ask(), f"uptime status of {station_id}")

    def _news_time(
        self, port_id: str, station_id: str, stated: Any, now: float
    ) -> tuple[float, bool]:
        """When a port's news happened, and whether the charger's time was taken.

        The charger's time counts, not when the hub heard it, within a sane window: within
        CLOCK_SKEW_S of the hub clock either way (a live message), or earlier down to the
        start of the station's last silence when the news comes within QUEUE_WINDOW_S of
        its reconnection (a status it queued while it, or the hub, was down). Otherwise,
        and for news older than what was already applied to the port, the receipt time is
        used, noted.
        """
        when, by_charger = now, False
        if isinstance(stated, int | float) and not isinstance(stated, bool):
            if not math.isfinite(stated) or stated > now + CLOCK_SKEW_S:
                self._note_clock(station_id, f"a time {stated - now:.0f} s ahead of the hub clock")
            elif stated >= now - CLOCK_SKEW_S:
                when, by_charger = min(float(stated), now), True
            else:
                gap = self._gap.get(station_id)
                if gap is not None and now - gap[1] <= QUEUE_WINDOW_S and stated >= gap[0]:
                    when, by_charger = float(stated), True
                else:
                    self._note_clock(
                        station_id, f"a time {now - stated:.0f} s behind the hub clock"
                    )
        last = self._news.get(port_id, -INF)
        if when < last:
            self._note_clock(station_id, f"news {last - when:.0f} s older than the last")
            when, by_charger = now, False
        self._news[port_id] = when
        return when, by_charger

    def _note_clock(self, station_id: str, what: str) -> None:
        """Count and log (at most hourly per station) a charger time the engine did not take."""
        self.clock_notes[station_id] = self.clock_notes.get(station_id, 0) + 1
        now = self.now()
        if now - self._clock_logged.get(station_id, -INF) >= 3600:
            self._clock_logged[station_id] = now
            _LOGGER.warning(
                "Uptime: station %s sent %s; the receipt time was used (%d times so far)",
                station_id,
                what,
                self.clock_notes[station_id],
            )

    def _on_status(
        self, port_id: str, station_id: str, status: str, now: float, *, stated: bool = False
    ) -> None:
        """Apply a port's status at `now` (the charger's time when `stated`)."""
        self._status[port_id] = status
        lock = self._locks.get(port_id)
        if lock is not None:
            if status == "Unavailable":
                if not lock[1]:
                    self._locks[port_id] = (lock[0], True)
                    self._save()
            elif lock[1]:
                # The locked port is back in use (or faulted): the lock's reason ends here.
                self._end_lock(port_id, now)
        cause: str | None = None
        if status == "Faulted":
            cause = CAUSE_FAULTED
        elif status == "Unavailable":
            # Unavailable is down, whoever made it so: a lock is an outage; its time is
            # excluded only where the lock gave an excluded reason (an exclusion, see locks).
            cause = CAUSE_UNAVAILABLE
        for other in STATUS_CAUSES:
            if other == cause:
                self._resolve_carried(port_id, other, still_down=True)
            elif not self._resolve_carried(
                port_id, other, still_down=False, when=now if stated else None
            ):
                self._end(port_id, other, now)
        if cause is not None:
            self._start(port_id, station_id, cause, now)
        self._check_power(port_id, now)

    def _target_ports(self, target: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
        devices = device_registry(self.hub)
        entities = entity_registry(self.hub)
        ids: list[str] = []
        for source in (target, data):
            for key in (ATTR_DEVICE_ID, ATTR_ENTITY_ID):
                value = source.get(key)
                values = [value] if isinstance(value, str) else list(value or ())
                for item in values:
                    if key == ATTR_ENTITY_ID:
                        entry = entities.get(str(item))
                        if entry is not None and entry.device_id is not None:
                            ids.append(entry.device_id)
                    else:
                        ids.append(str(item))
        connector = data.get("connector_id")
        ports: list[str] = []
        for device_id in dict.fromkeys(ids):
            device = devices.get(device_id)
            if device is None:
                continue
            if device.kind is DeviceKind.CONNECTOR:
                ports.append(device.id)
                continue
            candidates = [
                child
                for child in devices.descendants(device.id)
                if child.kind is DeviceKind.CONNECTOR
            ]
            if isinstance(connector, int) and not isinstance(connector, bool) and connector > 0:
                candidates = [
                    child
                    for child in candidates
                    if connector in (child.connector_id, child.evse_id)
                ]
            ports.extend(child.id for child in candidates)
        return ports

    def _on_call_service(self, event: Event) -> None:
        if not self._active():
            return
        data = event.data
        service_data = data.get(ATTR_SERVICE_DATA) or {}
        available = service_data.get("available")
        if not isinstance(available, bool):
            return
        reason = service_data.get(ATTR_REASON)
        note = service_data.get(ATTR_NOTE)
        now = self.now()
        for port_id in self._target_ports(data.get(ATTR_TARGET) or {}, service_data):
            self._end_lock(port_id, now)
            if available or reason not in REASONS:
                continue
            station_id = self._station_of(port_id)
            exclusion = self.add_exclusion(
                ExclusionRecord(
                    f"{LOCK_PREFIX}{new_id()}",
                    port_id,
                    station_id,
                    now,
                    None,
                    str(reason),
                    str(note) if isinstance(note, str) else "lock",
                )
            )
            self._locks[port_id] = (
                exclusion.exclusion_id,
                self._status.get(port_id) == "Unavailable",
            )
            timer = self._release_timers.pop(port_id, None)
            if timer is not None:
                timer.cancel()

            def check(port_id: str = port_id, exclusion_id: str = exclusion.exclusion_id) -> None:
                """A lock that did not take (refused, the port still in use or available)
                excludes nothing: its exclusion is withdrawn."""
                self._release_timers.pop(port_id, None)
                lock = self._locks.get(port_id)
                if not self._active() or lock is None or lock[0] != exclusion_id or lock[1]:
                    return
                if self._status.get(port_id) in ("Available", "Faulted", None):
                    self._end_lock(port_id, None)

            self._release_timers[port_id] = clock(self.hub).call_later(RELEASE_GRACE, check)
        self._save()

    def _end_lock(self, port_id: str, when: float | None) -> None:
        """End the exclusion of a port's lock at `when` (None: withdraw it)."""
        lock = self._locks.pop(port_id, None)
        timer = self._release_timers.pop(port_id, None)
        if timer is not None:
            timer.cancel()
        if lock is None:
            return
        self._save()
        exclusion = self.exclusions.get(lock[0])
        if exclusion is None or exclusion.end is not None:
            return
        if when is None or when <= exclusion.start:
            self.remove_exclusion(exclusion.exclusion_id)
        else:
            self.add_exclusion(replace(exclusion, end=when))

    # No power ---------------------------------------------------------------------------

    @staticmethod
    def _is_power(entry: Any) -> bool:
        return (
            entry is not None
            and entry.domain == "sensor"
            and entry.device_id is not None
            and (entry.original_name == "power" or entry.unique_id.endswith("-power"))
        )

    def _refresh_power_entities(self) -> None:
        self._power_entities = {}
        self._power_of_port = {}
        for entry in entity_registry(self.hub).entities():
            if self._is_power(entry) and entry.device_id is not None:
                self._power_entities[entry.entity_id] = entry.device_id
                self._power_of_port[entry.device_id] = entry.entity_id

    def _on_entity_registry_updated(self, event: Event) -> None:
        """Follow power sensors one registry change at a time (a fleet registers many)."""
        entity_id = event.data.get("entity_id")
        if not isinstance(entity_id, str):
            return
        for gone in (entity_id, event.data.get("old_entity_id")):
            old_port = self._power_entities.pop(gone, None) if isinstance(gone, str) else None
            if old_port is not None and self._power_of_port.get(old_port) == gone:
                del self._power_of_port[old_port]
        entry = entity_registry(self.hub).get(entity_id)
        if entry is not None and self._is_power(entry) and entry.device_id is not None:
            self._power_entities[entity_id] = entry.device_id
            self._power_of_port[entry.device_id] = entity_id

    def _power_of(self, port_id: str) -> float | None:
        entity_id = self._power_of_port.get(port_id)
        state = None if entity_id is None else self.hub.states.get(entity_id)
        if state is None:
            return None
        try:
            value = float(state.state)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def _on_power_changed(self, event: Event) -> None:
        if not self._active():
            return
        port_id = self._power_entities.get(event.data[ATTR_ENTITY_ID])
        if port_id is not None:
            self._check_power(port_id, self.now())

    def _check_power(self, port_id: str, now: float) -> None:
        if self.min_power_w is None:
            return
        power = self._power_of(port_id)
        low = (
            port_id in self._sessions
            and self._status.get(port_id) == "Charging"
            and power is not None
            and power < self.min_power_w
        )
        current = self._low.get(port_id)
        if low and current is None:
            entry = _LowPower(now, None)

            def expired(port_id: str = port_id, entry: _LowPower = entry) -> None:
                entry.timer = None
                if self._active() and self._low.get(port_id) is entry:
                    self._start(port_id, self._station_of(port_id), CAUSE_NO_POWER, entry.since)

            entry.timer = clock(self.hub).call_later(self.after_s, expired)
            self._low[port_id] = entry
        elif not low and current is not None:
            del self._low[port_id]
            if current.timer is not None:
                current.timer.cancel()
            self._end(port_id, CAUSE_NO_POWER, now)

    # Exclusions ---------------------------------------------------------------------------

    def add_exclusion(self, exclusion: ExclusionRecord) -> ExclusionRecord:
        """Add or replace an exclusion and fire it."""
        if exclusion.end is not None and exclusion.end <= exclusion.start:
            raise ServiceValidationError("an exclusion must end after it starts")
        previous = self.exclusions.get(exclusion.exclusion_id)
        self.exclusions[exclusion.exclusion_id] = exclusion
        self.hub.bus.fire(EVENT_EXCLUSION, exclusion.as_data())
        if previous is not None and (previous.port_id, previous.station_id) != (
            exclusion.port_id,
            exclusion.station_id,
        ):
            self._exclusions_changed(previous)
        self._exclusions_changed(exclusion)
        return exclusion

    def remove_exclusion(self, exclusion_id: str) -> ExclusionRecord:
        """Remove an exclusion and fire its deletion."""
        exclusion = self.exclusions.pop(exclusion_id, None)
        if exclusion is None:
            raise ServiceValidationError(f"no exclusion {exclusion_id!r}")
        self.hub.bus.fire(EVENT_EXCLUSION, exclusion.as_data(deleted=True))
        self._exclusions_changed(exclusion)
        return exclusion

    def _exclusions_changed(self, exclusion: ExclusionRecord) -> None:
        """Recompute the ports an exclusion covers (a port, a station's, or every port)."""
        if exclusion.port_id is not None:
            ports = [exclusion.port_id]
        elif exclusion.station_id is not None:
            ports = self.ports_of(exclusion.station_id)
        else:
            self._cache.clear()
            self.update_sensors()
            return
        for port_id in ports:
            self._cache.pop(port_id, None)
        if ports and not self._stopping:
            self.update_sensors(ports)

    # Figures and sensors ------------------------------------------------------------------

    def _changed(self, port_id: str) -> None:
        self._cache.pop(port_id, None)
        if not self._stopping:
            self.update_sensors([port_id])

    def history(self, port_id: str, station_id: str | None) -> PortHistory:
        """Return a port's history, cached until its outages or the exclusions change."""
        now = self.now()
        in_service = self.in_service_of(port_id)
        cached = self._cache.get(port_id)
        if cached is not None and cached.until >= now and cached.in_service == in_service:
            return cached
        station = device_registry(self.hub).get(station_id) if station_id else None
        built = PortHistory.build(
            port_id,
            station_id,
            self.outages(port_id),
            self.exclusions.values(),
            until=now + DAY,
            zone=self.zone,
            hours=hours_for(self.config, station, zone=self.zone, logged=self.hours_log),
            in_service=in_service,
        )
        self._cache[port_id] = built
        return built

    def port_figures(
        self, port_id: str, start: float, end: float, rules: Rules | str = NEVI_RULES
    ) -> UptimeFigures:
        """Return a port's figures over [start, end) under the rules (NEVI, CEC), cut at now."""
        history = self.history(port_id, self._station_of(port_id))
        return history.figures(start, min(end, self.now()), rules)

    def update_sensors(self, port_ids: Iterable[str] | None = None) -> None:
        """Recompute the uptime sensors (of some ports and their stations, or all)."""
        if port_ids is None:
            chosen = self.all_ports()
        else:
            # Only the stations concerned: an event costs its station, not the fleet.
            chosen = {}
            for port in port_ids:
                station = self._station_of(port)
                if station is None or port in chosen:
                    continue
                for sibling in self.ports_of(station) or [port]:
                    chosen[sibling] = station
        self._update_ports(chosen)

    def _update_ports(self, chosen: Mapping[str, str]) -> None:
        """Recompute the sensors of these ports (port -> station) and of their stations."""
        now = self.now()
        start, end = trailing_window(now)
        month = month_start(now, self.zone)
        by_station: dict[str, list[tuple[_Pair, _Pair, float]]] = {}
        for port_id, station_id in chosen.items():
            if port_id in self._closed or port_id in self._open:
                history = self.history(port_id, station_id)
                in_service = history.in_service
                year = (
                    history.figures(start, end, NEVI_RULES),
                    history.figures(start, end, CEC_RULES),
                )
                mtd = (
                    history.figures(month, now, NEVI_RULES),
                    history.figures(month, now, CEC_RULES),
                )
            else:
                # Never down (most of a fleet): nothing to build or keep, the same figures
                # PortHistory gives for no outages.
                in_service = self.in_service_of(port_id)
                year = (_never_down(start, end, in_service),) * 2
                mtd = (_never_down(month, now, in_service),) * 2
            by_station.setdefault(station_id, []).append((year, mtd, in_service))
            self._write_sensor(
                port_id,
                (year[0].uptime_percent, year[1].uptime_percent),
                (mtd[0].uptime_percent, mtd[1].uptime_percent),
                (year, mtd),
                station_id=station_id,
                port_id=port_id,
                in_service=in_service,
            )
        for station_id, rows in by_station.items():
            # The mean of its ports in service; minute totals are sums.
            years = tuple(_summed([row[0][i] for row in rows], end) for i in (0, 1))
            months = tuple(_summed([row[1][i] for row in rows], now) for i in (0, 1))
            self._write_sensor(
                station_id,
                tuple(mean_percent(row[0][i] for row in rows) for i in (0, 1)),  # type: ignore[arg-type]
                tuple(mean_percent(row[1][i] for row in rows) for i in (0, 1)),  # type: ignore[arg-type]
                (years, months),  # type: ignore[arg-type]
                station_id=station_id,
                ports=len(rows),
                in_service=min(row[2] for row in rows),  # its first port's
            )

    def _sensor_entity(self, device_id: str) -> str:
        entity_id = self._sensor_ids.get(device_id)
        if entity_id is None:
            device = device_registry(self.hub).get(device_id)
            name = (device.name if device is not None else None) or device_id
            entity_id = register_entity(
                self.hub,
                DOMAIN,
                UPTIME_SENSOR,
                f"{device_id}-uptime",
                device_id=device_id,
                full_name=f"{name} uptime",
            )
            self._sensor_ids[device_id] = entity_id
            self._sensors_made += 1
        return entity_id

    def _write_sensor(
        self,
        device_id: str,
        percent: tuple[float | None, float | None],
        month_percent: tuple[float | None, float | None],
        figures: tuple[_Pair, _Pair],
        *,
        station_id: str,
        port_id: str | None = None,
        ports: int | None = None,
        in_service: float | None = None,
    ) -> None:
        """Write an uptime sensor ("unknown" while not in service) and fire uptime_updated.

        The state is the NEVI figure over the trailing 12 months; the CEC figure, computed
        under its own rules, is in the ``cec_*`` attributes. Attributes stay the same from
        minute to minute unless a figure moves (no window length: it follows from
        ``in_service``). The event is fired when the NEVI figure moves to another 0.01 % step
        (floor), so a target with two decimals is never crossed unseen, and a young port,
        whose figure moves every minute, does not flood the alerts.
        """
        entity_id = self._sensor_entity(device_id)
        (year, cec_year), (mtd, cec_mtd) = figures
        shown = _rounded(percent[0], 3)
        first_year = (
            in_service is not None
            and math.isfinite(in_service)
            and in_service > self.now() - NEVI_YEAR_SECONDS
        )
        attributes: dict[str, Any] = {
            ATTR_FRIENDLY_NAME: f"{self._name(device_id)} uptime",
            ATTR_UNIT_OF_MEASUREMENT: "%",
            "t_outage_min": round(year.t_outage_min, 3),
            "t_excluded_min": round(year.t_excluded_min, 3),
            "month_to_date": _rounded(month_percent[0], 3),
            "month_t_outage_min": round(mtd.t_outage_min, 3),
            "month_t_excluded_min": round(mtd.t_excluded_min, 3),
            "cec_uptime": _rounded(percent[1], 3),
            "cec_t_excluded_min": round(cec_year.t_excluded_min, 3),
            "cec_month_to_date": _rounded(month_percent[1], 3),
            "cec_month_t_excluded_min": round(cec_mtd.t_excluded_min, 3),
            "in_service": (
                utc_iso(in_service)
                if in_service is not None and math.isfinite(in_service)
                else None
            ),
            # In service for less than 12 months: the figures cover the days in service.
            "first_year": first_year,
            "station_id": station_id,
        }
        if port_id is not None:
            attributes["port_id"] = port_id
            attributes["down"] = port_id in self._open
        if ports is not None:
            attributes["ports"] = ports
        value = "unknown" if shown is None else str(shown)
        current = self.hub.states.get(entity_id)
        # Unchanged (the minute's update of a fleet, mostly): no write at all. A reported
        # write would make a new state object and an event per sensor per minute, which only
        # feeds the garbage collector's older generations.
        if current is None or current.state != value or current.attributes != attributes:
            self.hub.states.set(entity_id, value, attributes)
        cec_shown = attributes["cec_uptime"]
        step = (
            None
            if shown is None
            else (
                math.floor(shown * 100 + 1e-6),
                None if cec_shown is None else math.floor(cec_shown * 100 + 1e-6),
            )
        )
        if step is not None and self._last_percent.get(device_id) != step:
            self._last_percent[device_id] = step
            data: dict[str, Any] = {
                "device_id": device_id,
                "station_id": station_id,
                "uptime_percent": shown,
                "cec_uptime_percent": attributes["cec_uptime"],
                # The window the figure covers: short for a port just in service.
                "window_min": round(year.window_min, 3),
                "first_year": first_year,
                "month_to_date": attributes["month_to_date"],
                "t_outage_min": attributes["t_outage_min"],
                "t_excluded_min": attributes["t_excluded_min"],
                "entity_id": entity_id,
            }
            if port_id is not None:
                data["port_id"] = port_id
            self.hub.bus.fire(EVENT_UPTIME_UPDATED, data)

    def _name(self, device_id: str) -> str:
        device = device_registry(self.hub).get(device_id)
        return (device.name if device is not None else None) or device_id


def _read_alive(path: Path) -> float | None:
    """The time in the alive file, or None if there is none (or it is torn)."""
    try:
        value = float(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _write_alive(path: Path, when: float) -> None:
    """Overwrite the alive file in place (a fixed-width number, so no torn mixes)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, f"{when:020.3f}\n".encode("ascii"), 0)
    finally:
        os.close(fd)
