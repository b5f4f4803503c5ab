"""The logbook: what happened, in words, as Home Assistant's ``/api/logbook`` tells it.

Read from the history store (hub.history, the recorder) and nothing else: port status
changes, stations going online and offline, restarting, updating firmware and reporting
security events, charging sessions, and automation runs, each one line with a name and a
message. ``?entity=`` narrows it to those entities' state changes and the charger events of
their devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from aiohttp import web

from hub.auth import Role
from hub.charger import EVENT_CHARGER, ChargerEventKind
from hub.clock import clock
from hub.core import Hub, split_entity_id, valid_entity_id
from hub.http.monitoring import DAY, iso, parse_iso, recorder
from hub.http.schemas import array, json_ok, ref
from hub.http.view import KEY_HUB, ApiError, Route, json_response, query_int
from hub.registry import DeviceEntry, DeviceKind, device_registry, entity_registry

EVENT_AUTOMATION_TRIGGERED: Final = "automation_triggered"  # integrations.automation's
MAX_WINDOW: Final = 31 * DAY
MAX_ENTITIES: Final = 100
DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 10_000
STATUS_ENTITY: Final = "status"
# Kinds that repeat another entry: a fault is the port's status turning Faulted.
_SKIPPED_KINDS: Final = frozenset({ChargerEventKind.FAULT, ChargerEventKind.RECOVERED})


class _Names:
    """Names of devices and entities for the entries, looked up once each."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.devices = device_registry(hub)
        self.entities = entity_registry(hub)
        self._status: dict[str, str | None] = {}

    def device(self, device_id: str | None) -> DeviceEntry | None:
        return self.devices.get(device_id) if device_id else None

    def station(self, station_id: str | None) -> str:
        device = self.device(station_id)
        return (device.name if device is not None else None) or station_id or "a charger"

    def port(self, station_id: str | None, device_id: str | None, port: Any) -> str:
        device = self.device(device_id)
        station = self.station(station_id)
        if device is not None and device.kind is not DeviceKind.STATION and device.name:
            return device.name
        return f"{station} connector {port}" if port is not None else station

    def status_entity(self, device_id: str | None) -> str | None:
        if not device_id:
            return None
        if device_id not in self._status:
            self._status[device_id] = next(
                (
                    entry.entity_id
                    for entry in self.entities.entities_for_device(device_id)
                    if (entry.original_name or "") == STATUS_ENTITY
                ),
                None,
            )
        return self._status[device_id]

    def entity(self, entity_id: str, attributes: Mapping[str, Any]) -> str:
        friendly = attributes.get("friendly_name")
        if isinstance(friendly, str) and friendly:
            return friendly
        entry = self.entities.get(entity_id)
        if entry is not None:
            device = self.device(entry.device_id)
            own = entry.display_name
            if device is not None and device.name:
                return f"{device.name} {own}" if own else device.name
            if own:
                return own
        return entity_id


def _session_message(kind: str, data: Mapping[str, Any]) -> str:
    port = data.get("port")
    where = f" on connector {port}" if port is not None else ""
    if kind == ChargerEventKind.SESSION_STARTED:
        return f"started charging{where}"
    energy = data.get("energy_wh")
    parts = [f"finished charging{where}"]
    if isinstance(energy, int | float):
        parts.append(f"{energy / 1000:.2f} kWh")
    reason = data.get("stop_reason")
    if reason:
        parts.append(f"reason {reason}")
    error = data.get("error_code")
    if error and error != "NoError":
        parts.append(f"error {error}")
    return ", ".join(parts)


def charger_entry(names: _Names, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """One logbook entry for a recorded charger event, or None for one that repeats another."""
    data: Mapping[str, Any] = event["data"]
    kind = data.get("kind")
    station_id = data.get("station_id")
    device_id = data.get("device_id") or station_id
    if kind in _SKIPPED_KINDS or not isinstance(kind, str):
        return None
    entry: dict[str, Any] = {
        "_ts": event["time_fired"],
        "when": iso(event["time_fired"]),
        "name": names.station(station_id),
        "domain": "charger",
        "kind": kind,
        "device_id": device_id,
        "station_id": station_id,
        "context_id": event.get("context_id"),
        "context_user_id": event.get("context_user_id"),
    }
    reason = data.get("reason")
    because = f" ({reason})" if reason else ""
    if kind == ChargerEventKind.STATUS:
        status = str(data.get("status"))
        entry["name"] = names.port(station_id, device_id, data.get("port"))
        message = f"changed to {status}"
        error = data.get("error_code")
        if error and error != "NoError":
            message += f" (error {error})"
        entry["message"] = message
        entry["state"] = status
        status_entity = names.status_entity(device_id)
        if status_entity is not None:
            entry["entity_id"] = status_entity
    elif kind == ChargerEventKind.ONLINE:
        entry["message"] = "came online"
    elif kind == ChargerEventKind.OFFLINE:
        entry["message"] = f"went offline{because}"
    elif kind == ChargerEventKind.UNKNOWN:
        entry["message"] = f"cannot be reached: its state is unknown{because}"
    elif kind in (ChargerEventKind.SESSION_STARTED, ChargerEventKind.SESSION_ENDED):
        entry["message"] = _session_message(kind, data)
    elif kind == ChargerEventKind.BOOT:
        firmware = data.get("firmware")
        entry["message"] = f"restarted{because}" + (f", firmware {firmware}" if firmware else "")
    elif kind == ChargerEventKind.FIRMWARE:
        entry["message"] = f"firmware update: {data.get('status')}"
    elif kind == ChargerEventKind.SECURITY_EVENT:
        entry["message"] = (
            f"reported the security event {data.get('type')} ({data.get('severity')})"
        )
    else:
        entry["message"] = kind.replace("_", " ")
    return {key: value for key, value in entry.items() if value is not None}


def automation_entry(event: Mapping[str, Any]) -> dict[str, Any]:
    """One logbook entry for a recorded automation run."""
    data: Mapping[str, Any] = event["data"]
    automation_id = str(data.get("automation_id") or "")
    entry = {
        "_ts": event["time_fired"],
        "when": iso(event["time_fired"]),
        "name": str(data.get("alias") or automation_id or "an automation"),
        "message": "triggered",
        "domain": "automation",
        "automation_id": automation_id,
        "context_id": event.get("context_id"),
        "context_user_id": event.get("context_user_id"),
    }
    return {key: value for key, value in entry.items() if value is not None}


def state_entries(
    names: _Names, entity_id: str, rows: Iterable[Mapping[str, Any]], start: float
) -> list[dict[str, Any]]:
    """An entry per change of an entity's state in the window (not attribute-only writes)."""
    found: list[dict[str, Any]] = []
    previous: str | None = None
    for row in rows:
        state = row["state"]
        changed = row.get("last_changed")
        if state == previous or changed is None:
            continue
        previous = state
        if changed < start:
            continue  # the state in force at the start: no change within the window
        found.append(
            {
                "_ts": changed,
                "when": iso(changed),
                "name": names.entity(entity_id, row.get("attributes") or {}),
                "message": f"changed to {state}",
                "domain": split_entity_id(entity_id)[0],
                "entity_id": entity_id,
                "state": state,
            }
        )
    return found


def _devices_of(names: _Names, entity_ids: list[str]) -> set[str]:
    """The devices whose charger events belong with entities: theirs, and a station's ports."""
    found: set[str] = set()
    for entity_id in entity_ids:
        entry = names.entities.get(entity_id)
        if entry is not None and entry.device_id:
            found.add(entry.device_id)
    return found


def _entities(request: web.Request) -> list[str] | None:
    raw = request.query.get("entity", "")
    entity_ids = list(dict.fromkeys(e.strip() for e in raw.split(",") if e.strip()))
    if not entity_ids:
        return None
    if len(entity_ids) > MAX_ENTITIES:
        raise ApiError(400, "invalid", f"at most {MAX_ENTITIES} entities at once")
    bad = [e for e in entity_ids if not valid_entity_id(e)]
    if bad:
        raise ApiError(400, "invalid", f"entity: invalid entity id {bad[0]!r}")
    return entity_ids


async def get_logbook(request: web.Request) -> web.Response:
    """What happened from start (default: a day ago) to end_time (default: a day later)."""
    hub = request.app[KEY_HUB]
    now = clock(hub).time()
    raw_start = request.match_info.get("start")
    start = parse_iso(raw_start, "start", strip=True) if raw_start else now - DAY
    raw_end = request.query.get("end_time")
    end = parse_iso(raw_end, "end_time", strip=True) if raw_end else start + DAY
    if start >= end:
        raise ApiError(400, "invalid", "end_time must be after the start")
    if end - start > MAX_WINDOW:
        raise ApiError(400, "invalid", f"the window may be at most {MAX_WINDOW / DAY:g} days")
    entity_ids = _entities(request)
    limit = query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    store = recorder(request)
    await store.flush()  # include what happened in the last second
    names = _Names(hub)
    entries: list[dict[str, Any]] = []
    if entity_ids is None:
        events = await store.events(
            (EVENT_CHARGER, EVENT_AUTOMATION_TRIGGERED), start, end, MAX_LIMIT
        )
        devices: set[str] | None = None
    else:
        history = await store.history(entity_ids, start, end)
        for entity_id, rows in history.items():
            entries.extend(state_entries(names, entity_id, rows, start))
        devices = _devices_of(names, entity_ids)
        events = await store.events((EVENT_CHARGER,), start, end, MAX_LIMIT) if devices else []
    for event in events:
        if event["event_type"] == EVENT_AUTOMATION_TRIGGERED:
            entries.append(automation_entry(event))
            continue
        data = event["data"]
        if devices is not None and not (
            data.get("device_id") in devices or data.get("station_id") in devices
        ):
            continue
        entry = charger_entry(names, event)
        if entry is None:
            continue
        if entity_ids is not None and entry.get("entity_id") in entity_ids:
            continue  # the status entity's own state changes say it
        entries.append(entry)
    entries.sort(key=lambda entry: entry.pop("_ts"))
    return json_response(entries[:limit])


_QUERY: Final = ("entity", "end_time", "limit")
_SUMMARY: Final = (
    "What happened, in words: port status changes, chargers online and offline, restarts, "
    "firmware, security events, charging sessions and automation runs (Home Assistant's "
    "logbook; entity narrows it, end_time ends it, default one day)"
)

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/logbook",
        get_logbook,
        Role.VIEWER,
        _SUMMARY + "; from a day ago",
        query=_QUERY,
        tag="ha",
        responses=json_ok(array(ref("LogbookEntry"))),
    ),
    Route(
        "GET",
        "/api/logbook/{start}",
        get_logbook,
        Role.VIEWER,
        _SUMMARY + "; from start (ISO 8601)",
        query=_QUERY,
        tag="ha",
        responses=json_ok(array(ref("LogbookEntry"))),
    ),
)
