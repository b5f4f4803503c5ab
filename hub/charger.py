"""What every charger can be asked, whatever its protocol, and the ``charger.*`` services.

A driver (an OCPP connection, a Modbus poller, a vendor cloud client) subclasses Charger,
declares its capabilities and implements the methods for them. The services resolve their
target (a station, EVSE or connector device, or one of its entities) to the station's
Charger and call it; asking for a capability the charger lacks is a clear error.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, NotRequired, Protocol, TypedDict, overload

import voluptuous as vol

from hub.clock import clock
from hub.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID, EXCLUSION_REASONS
from hub.core import Hub, HubKey, ServiceCall, Unsubscribe
from hub.exceptions import (
    CapabilityNotSupportedError,
    DeviceNotFoundError,
    HubError,
    ServiceValidationError,
)
from hub.registry import DeviceEntry, DeviceKind, device_registry, entity_registry

_LOGGER = logging.getLogger(__name__)

DOMAIN = "charger"
# Fired by drivers, whatever their protocol: automations' charger triggers, the recorder and
# the uptime engine listen to it. Kinds and their data beyond station_id/device_id:
#   online, offline (reason)            the station's connection came up / went down
#   unknown (reason)                    the hub cannot reach what reports the station (a
#       vendor cloud, a gateway): its state is unknown, which is not the station's outage
#   status (port, status, previous, error_code, vendor_error_code, time)   a port's
#       ConnectorStatus changed; time: when the charger says it did (None: when heard)
#   fault, recovered (port, status, error_code)   a port entered / left Faulted
#   session_started, session_ended (port, transaction_id, id_tag, started_at, stopped_at,
#       energy_wh, peak_power_w, stop_reason, error_code)   times are POSIX seconds
#   boot (reason, firmware), firmware (status), security_event (type, severity)
EVENT_CHARGER = "charger_event"


class ChargerEventKind(enum.StrEnum):
    """What a charger event says happened (the contract between drivers and the rest)."""

    ONLINE = "online"
    OFFLINE = "offline"
    # The source that reports the station (a vendor cloud, a gateway) cannot be reached:
    # the station's state is unknown until online, offline or a status says otherwise.
    UNKNOWN = "unknown"
    STATUS = "status"
    FAULT = "fault"
    RECOVERED = "recovered"
    SESSION_STARTED = "session_started"
    SESSION_ENDED = "session_ended"
    BOOT = "boot"
    FIRMWARE = "firmware"
    SECURITY_EVENT = "security_event"


CHARGER_EVENT_KINDS = tuple(str(kind) for kind in ChargerEventKind)


class _EventData(TypedDict, total=False):
    """What every kind may carry beyond its own fields."""

    # The charger's own id as it presents itself (an OCPP charge point id, a serial).
    charge_point_id: str


class ConnectionData(_EventData, total=False):
    """online, offline, unknown: why the connection went down or the source is away."""

    reason: str | None


class StatusData(_EventData):
    """status: a port's ConnectorStatus changed."""

    port: int
    status: str
    previous: NotRequired[str | None]
    error_code: NotRequired[str | None]
    vendor_error_code: NotRequired[str | None]
    # When the charger says it happened (POSIX seconds); None: when the hub heard it.
    time: NotRequired[float | None]


class FaultData(_EventData):
    """fault, recovered: a port entered or left Faulted."""

    port: int
    status: str
    error_code: NotRequired[str | None]


class SessionData(_EventData, total=False):
    """session_started, session_ended: times are POSIX seconds, energy in Wh."""

    port: int
    transaction_id: Any
    id_tag: str | None
    started_at: float | None
    stopped_at: float | None
    energy_wh: float | None
    peak_power_w: float | None
    stop_reason: str | None
    error_code: str | None


class BootData(_EventData, total=False):
    """boot: the station (re)started."""

    reason: str | None
    firmware: str | None


class FirmwareData(_EventData):
    """firmware: an update's progress."""

    status: str


class SecurityEventData(_EventData):
    """security_event: what the charger reported, and how grave it is."""

    type: str
    severity: str


ChargerEventData = (
    ConnectionData
    | StatusData
    | FaultData
    | SessionData
    | BootData
    | FirmwareData
    | SecurityEventData
)


class ChargerEventError(HubError, ValueError):
    """A driver fired a charger event outside the contract (a driver bug, not a charger's)."""

    http_status = 500
    error_code = "driver_error"


DATA_CHARGERS: Final[HubKey[dict[str, Charger]]] = HubKey("charger.chargers")
# Sessions re-announced from a driver's own durable store, for history only: the recorder
# upserts them; automations, alerts and the uptime engine never see them (they are not news).
# Data: the session_started/session_ended fields, plus station_id and device_id.
EVENT_SESSION_RECORD = "charger_session_record"
DATA_HISTORY_FLUSHERS: Final[HubKey[list[Callable[[], Awaitable[None]]]]] = HubKey(
    "charger.history_flushers"
)

ATTR_CONNECTOR_ID = "connector_id"
ATTR_TYPE = "type"
ATTR_AVAILABLE = "available"
ATTR_LIMIT = "limit"
ATTR_ID_TAG = "id_tag"
ATTR_LOCATION = "location"
ATTR_RETRIEVE_AT = "retrieve_at"
ATTR_REASON = "reason"
ATTR_NOTE = "note"
ATTR_PHASES = "phases"


class ChargerCapability(enum.Flag):
    """Optional capabilities a charger driver declares."""

    NONE = 0
    RESET = enum.auto()
    SET_AVAILABILITY = enum.auto()
    UNLOCK_CONNECTOR = enum.auto()
    SET_CURRENT_LIMIT = enum.auto()
    START_STOP = enum.auto()
    TRIGGER_STATUS = enum.auto()
    UPDATE_FIRMWARE = enum.auto()
    SET_PHASES = enum.auto()


class ConnectorStatus(enum.StrEnum):
    """One connector status vocabulary across protocols (the OCPP 1.6 statuses)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


_OCPP201_CHARGING_STATE = {
    "Charging": ConnectorStatus.CHARGING,
    "EVConnected": ConnectorStatus.PREPARING,
    "SuspendedEV": ConnectorStatus.SUSPENDED_EV,
    "SuspendedEVSE": ConnectorStatus.SUSPENDED_EVSE,
    "Idle": ConnectorStatus.PREPARING,
}


def status_from_ocpp201(
    connector_status: str, charging_state: str | None = None
) -> ConnectorStatus:
    """Map an OCPP 2.0.1 ConnectorStatus (and a transaction's chargingState) onto the vocabulary.

    2.0.1 says only "Occupied" for a plugged-in connector; the transaction's chargingState
    tells charging from suspended.
    """
    if connector_status == "Occupied":
        if charging_state is None:
            return ConnectorStatus.PREPARING
        return _OCPP201_CHARGING_STATE.get(charging_state, ConnectorStatus.PREPARING)
    try:
        return ConnectorStatus(connector_status)
    except ValueError:
        raise ValueError(f"unknown OCPP 2.0.1 connector status {connector_status!r}") from None


_IEC61851 = {
    "A": ConnectorStatus.AVAILABLE,  # no vehicle
    "B": ConnectorStatus.SUSPENDED_EV,  # vehicle connected, not asking for power
    "C": ConnectorStatus.CHARGING,
    "D": ConnectorStatus.CHARGING,  # charging with ventilation
    "E": ConnectorStatus.FAULTED,  # no power or short circuit on the control pilot
    "F": ConnectorStatus.FAULTED,  # EVSE error
}


def status_from_iec61851(state: str) -> ConnectorStatus:
    """Map an IEC 61851 control pilot state (A-F, with an optional 1/2 suffix)."""
    found = _IEC61851.get(state[:1].upper()) if state else None
    if found is None:
        raise ValueError(f"unknown IEC 61851 state {state!r}")
    return found


class ResetType(enum.StrEnum):
    """How hard a reset is: soft restarts the software, hard reboots the station."""

    SOFT = "soft"
    HARD = "hard"


class Charger:
    """A station an integration controls: the required protocol, optional capabilities.

    Required: ``device_id`` (the station's device registry id), ``capabilities`` and
    ``online``. Each optional method is called only when its capability is declared.
    Methods return the charger's answer (e.g. "Accepted") and raise on failure.
    """

    capabilities: ChargerCapability = ChargerCapability.NONE

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    @property
    def online(self) -> bool:
        """Whether the charger can be reached now."""
        return True

    def _unsupported(self, capability: ChargerCapability) -> CapabilityNotSupportedError:
        return CapabilityNotSupportedError(
            f"charger {self.device_id} does not support {_capability_name(capability)}"
        )

    async def reset(self, reset_type: ResetType) -> Any:
        """Restart the station."""
        raise self._unsupported(ChargerCapability.RESET)

    async def set_availability(self, available: bool, connector_id: int | None) -> Any:
        """Lock (unavailable) or unlock (available) the station or one connector."""
        raise self._unsupported(ChargerCapability.SET_AVAILABILITY)

    async def unlock_connector(self, connector_id: int) -> Any:
        """Release the cable lock of a connector."""
        raise self._unsupported(ChargerCapability.UNLOCK_CONNECTOR)

    async def set_current_limit(self, limit: float, connector_id: int | None) -> Any:
        """Limit the charging current (amperes) of the station or one connector."""
        raise self._unsupported(ChargerCapability.SET_CURRENT_LIMIT)

    async def start_charging(self, connector_id: int | None, id_tag: str | None) -> Any:
        """Start a charging session."""
        raise self._unsupported(ChargerCapability.START_STOP)

    async def stop_charging(self, connector_id: int | None) -> Any:
        """Stop the charging session of a connector (or the only one)."""
        raise self._unsupported(ChargerCapability.START_STOP)

    async def trigger_status(self, connector_id: int | None) -> Any:
        """Ask the charger to report its status now."""
        raise self._unsupported(ChargerCapability.TRIGGER_STATUS)

    async def update_firmware(self, location: str, retrieve_at: datetime | None) -> Any:
        """Ask the charger to fetch and install firmware from location."""
        raise self._unsupported(ChargerCapability.UPDATE_FIRMWARE)

    async def set_phases(self, phases: int, connector_id: int | None) -> Any:
        """Charge on one or three phases (a wallbox that switches phases)."""
        raise self._unsupported(ChargerCapability.SET_PHASES)


def register_single_port_station(
    hub: Hub,
    domain: str,
    key: str,
    name: str,
    *,
    site: tuple[str, str] | None = None,
    port: int = 1,
    **fields: Any,
) -> tuple[DeviceEntry, DeviceEntry]:
    """Register a station of one connector in the device registry; return (station, port).

    The station is identified by ``(domain, key)``, its connector by ``(domain, "key:port")``.
    site, as ``(site key, site name)``, files the station under a site device
    ``(domain, site key)``. fields (manufacturer, model, serial_number...) describe the
    station. What a wallbox integration (Modbus, MQTT, a vendor cloud) needs before it
    writes entities and fires charger events.
    """
    devices = device_registry(hub)
    via: tuple[str, str] | None = None
    if site is not None:
        via = (domain, site[0])
        devices.get_or_create(
            integration=domain, identifiers=frozenset({via}), kind=DeviceKind.SITE, name=site[1]
        )
    station = devices.get_or_create(
        integration=domain,
        identifiers=frozenset({(domain, key)}),
        kind=DeviceKind.STATION,
        name=name,
        via_device=via,
        **fields,
    )
    connector = devices.get_or_create(
        integration=domain,
        identifiers=frozenset({(domain, f"{key}:{port}")}),
        kind=DeviceKind.CONNECTOR,
        name=f"{name} connector {port}",
        via_device=(domain, key),
        connector_id=port,
    )
    return station, connector


def _capability_name(capability: ChargerCapability) -> str:
    return (capability.name or str(capability)).lower()


class ChargerCommandError(HubError):
    """A command failed on some of its targets; results holds each target's outcome."""

    def __init__(self, message: str, results: dict[str, Any]) -> None:
        super().__init__(message)
        self.results = results


_STATUSES: frozenset[str] = frozenset(str(status) for status in ConnectorStatus)


def _number(value: Any) -> bool:
    return value is None or type(value) is int or (type(value) is float and not math.isnan(value))


def _check_port(data: Mapping[str, Any]) -> str | None:
    port = data.get("port")
    if type(port) is not int or port < 0:
        return f"port must be a connector number, not {port!r}"
    return None


def _check_status(data: Mapping[str, Any]) -> str | None:
    found = _check_port(data)
    if found is not None:
        return found
    if data.get("status") not in _STATUSES:
        return f"status {data.get('status')!r} is not a ConnectorStatus"
    previous = data.get("previous")
    if previous is not None and previous not in _STATUSES:
        return f"previous {previous!r} is not a ConnectorStatus"
    if not _number(data.get("time")):
        return f"time must be POSIX seconds or None, not {data.get('time')!r}"
    return None


def _check_fault(data: Mapping[str, Any]) -> str | None:
    found = _check_port(data)
    if found is not None:
        return found
    if data.get("status") not in _STATUSES:
        return f"status {data.get('status')!r} is not a ConnectorStatus"
    return None


def _check_session(data: Mapping[str, Any]) -> str | None:
    if "port" in data:
        found = _check_port(data)
        if found is not None:
            return found
    for key in ("started_at", "stopped_at", "energy_wh", "peak_power_w"):
        if not _number(data.get(key)):
            return f"{key} must be a number or None, not {data.get(key)!r}"
    return None


def _check_text(*keys: str) -> Callable[[Mapping[str, Any]], str | None]:
    def check(data: Mapping[str, Any]) -> str | None:
        for key in keys:
            if not isinstance(data.get(key), str):
                return f"{key} must be text, not {data.get(key)!r}"
        return None

    return check


def _check_nothing(data: Mapping[str, Any]) -> str | None:
    return None


_CHECKS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    ChargerEventKind.ONLINE: _check_nothing,
    ChargerEventKind.OFFLINE: _check_nothing,
    ChargerEventKind.UNKNOWN: _check_nothing,
    ChargerEventKind.STATUS: _check_status,
    ChargerEventKind.FAULT: _check_fault,
    ChargerEventKind.RECOVERED: _check_fault,
    ChargerEventKind.SESSION_STARTED: _check_session,
    ChargerEventKind.SESSION_ENDED: _check_session,
    ChargerEventKind.BOOT: _check_nothing,
    ChargerEventKind.FIRMWARE: _check_text("status"),
    ChargerEventKind.SECURITY_EVENT: _check_text("type", "severity"),
}


@overload
def fire_charger_event(
    hub: Hub,
    kind: Literal[ChargerEventKind.ONLINE, ChargerEventKind.OFFLINE, ChargerEventKind.UNKNOWN],
    *,
    station_id: str,
    device_id: str | None = None,
    data: ConnectionData | dict[str, Any] | None = None,
    context: Any = None,
) -> None: ...
@overload
def fire_charger_event(
    hub: Hub,
    kind: Literal[ChargerEventKind.STATUS],
    *,
    station_id: str,
    device_id: str | None = None,
    data: StatusData,
    context: Any = None,
) -> None: ...
@overload
def fire_charger_event(
    hub: Hub,
    kind: Literal[ChargerEventKind.FAULT, ChargerEventKind.RECOVERED],
    *,
    station_id: str,
    device_id: str | None = None,
    data: FaultData,
    context: Any = None,
) -> None: ...
@overload
def fire_charger_event(
    hub: Hub,
    kind: Literal[ChargerEventKind.SESSION_STARTED, ChargerEventKind.SESSION_ENDED],
    *,
    station_id: str,
    device_id: str | None = None,
    data: SessionData,
    context: Any = None,
) -> None: ...
@overload
def fire_charger_event(
    hub: Hub,
    kind: Literal[ChargerEventKind.BOOT],
    *,
    station_id: str,
    device_id: str | None = None,
    data: BootData | None = None,
    context: Any = None,
) -> None: ...
@overload
def fire_charger_event(
    hub: Hub,
    kind: Literal[ChargerEventKind.FIRMWARE],
    *,
    station_id: str,
    device_id: str | None = None,
    data: FirmwareData,
    context: Any = None,
) -> None: ...
@overload
def fire_charger_event(
    hub: Hub,
    kind: Literal[ChargerEventKind.SECURITY_EVENT],
    *,
    station_id: str,
    device_id: str | None = None,
    data: SecurityEventData,
    context: Any = None,
) -> None: ...
def fire_charger_event(
    hub: Hub,
    kind: ChargerEventKind,
    *,
    station_id: str,
    device_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    context: Any = None,
) -> None:
    """Tell the hub what a station or a port did (kind), in a vendor-neutral event.

    The data is checked here, where the event enters: a kind outside ChargerEventKind or a
    payload outside its kind's contract raises ChargerEventError (a typo would otherwise
    mean silently no history and no uptime). Keys beyond the contract (a protocol's own,
    such as charge_point_id) pass along.
    """
    check = _CHECKS.get(kind)
    if check is None:
        raise ChargerEventError(f"unknown charger event kind {kind!r}")
    payload = data or {}
    problem = check(payload)
    if problem is not None:
        raise ChargerEventError(f"{kind} event of {station_id}: {problem}")
    if not isinstance(station_id, str) or not (device_id is None or isinstance(device_id, str)):
        raise ChargerEventError("station_id and device_id must be device ids")
    hub.bus.fire(
        EVENT_CHARGER,
        {
            "kind": str(kind),
            "station_id": station_id,
            "device_id": device_id or station_id,
            **payload,
        },
        context,
        # On the hub clock, as outages are (the recorder stamps port status rows with it).
        time_fired_ts=clock(hub).time(),
    )


def record_session(hub: Hub, *, station_id: str, device_id: str, data: dict[str, Any]) -> None:
    """Re-announce a stored session to whatever keeps history (after a crash or a restart).

    A driver that keeps sessions durably itself (OCPP does, before a charger hears Accepted)
    calls this for sessions history may lack; recording one twice changes nothing.
    """
    hub.bus.fire(
        EVENT_SESSION_RECORD,
        {"station_id": station_id, "device_id": device_id, **data},
        time_fired_ts=clock(hub).time(),
    )


def register_history_flush(hub: Hub, flush: Callable[[], Awaitable[None]]) -> Unsubscribe:
    """Register how a history keeper (the recorder) waits until what it was given is on disk."""
    flushers = hub.data.setdefault(DATA_HISTORY_FLUSHERS, [])
    flushers.append(flush)

    def unregister() -> None:
        if flush in flushers:
            flushers.remove(flush)

    return unregister


async def history_flush(hub: Hub) -> bool:
    """Wait until every charger event and session record fired so far is on disk.

    False when nothing keeps history (no recorder), or when a keeper failed to write.
    """
    flushers = list(hub.data.get(DATA_HISTORY_FLUSHERS) or ())
    if not flushers:
        return False
    for flush in flushers:
        try:
            await flush()
        except Exception as err:
            _LOGGER.warning("History is not durable yet: %s", err)
            return False
    return True


def register_charger(hub: Hub, charger: Charger) -> Unsubscribe:
    """Make a charger reachable by the charger.* services; returns the unregister callable."""
    chargers = hub.data.setdefault(DATA_CHARGERS, {})
    chargers[charger.device_id] = charger

    def unregister() -> None:
        if chargers.get(charger.device_id) is charger:
            del chargers[charger.device_id]

    return unregister


@dataclass(frozen=True, slots=True)
class PendingCharger:
    """A charger that connected unknown and waits for an operator to admit or refuse it."""

    charger_id: str
    integration: str
    remote: str | None
    first_seen: float
    # What the charger said of itself (an OCPP BootNotification), for whoever approves it.
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    # Its station in the device registry, if the integration filed one while it waits.
    device_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The API's form (charge_point_id is the charger's own id, whatever its protocol)."""
        return {
            "charge_point_id": self.charger_id,
            "integration": self.integration,
            "remote": self.remote,
            "first_seen": self.first_seen,
            "vendor": self.vendor,
            "model": self.model,
            "serial": self.serial,
            "device_id": self.device_id,
        }


class Admission(Protocol):
    """What an integration that admits chargers tells the hub: who waits.

    Admitting or refusing goes through the integration's ``approve_charger`` and
    ``reject_charger`` services (data: ``charge_point_id``), so it is checked and audited
    like any other action.
    """

    def pending_chargers(self) -> list[PendingCharger]:
        """The chargers waiting for approval."""
        ...


DATA_ADMISSIONS: Final[HubKey[dict[str, Admission]]] = HubKey("charger.admissions")


def register_admission(hub: Hub, domain: str, admission: Admission) -> Unsubscribe:
    """Let the hub list the chargers an integration holds for approval."""
    admissions = hub.data.setdefault(DATA_ADMISSIONS, {})
    admissions[domain] = admission

    def unregister() -> None:
        if admissions.get(domain) is admission:
            del admissions[domain]

    return unregister


def pending_chargers(hub: Hub) -> list[PendingCharger]:
    """Every charger waiting for approval, of every integration, by id."""
    found: list[PendingCharger] = []
    for admission in hub.data.get(DATA_ADMISSIONS, {}).values():
        found.extend(admission.pending_chargers())
    return sorted(found, key=lambda pending: pending.charger_id)


def get_charger(hub: Hub, device_id: str) -> Charger | None:
    """Return the charger registered for a station device id."""
    return hub.data.get(DATA_CHARGERS, {}).get(device_id)


def _target_ids(call: ServiceCall, key: str) -> list[str]:
    found: list[str] = []
    for source in (call.target, call.data):
        value = source.get(key)
        if value is None:
            continue
        found.extend([value] if isinstance(value, str) else list(value))
    return found


def resolve_targets(hub: Hub, call: ServiceCall) -> list[tuple[Charger, DeviceEntry, int | None]]:
    """Turn a call's target into (charger, device, connector id) per targeted device."""
    devices = device_registry(hub)
    entities = entity_registry(hub)
    device_ids = _target_ids(call, ATTR_DEVICE_ID)
    for entity_id in _target_ids(call, ATTR_ENTITY_ID):
        entry = entities.get(entity_id)
        if entry is None or entry.device_id is None:
            raise DeviceNotFoundError(f"entity {entity_id} belongs to no charger")
        device_ids.append(entry.device_id)
    if not device_ids:
        raise DeviceNotFoundError(f"{call.domain}.{call.service} needs a target device or entity")
    targets: list[tuple[Charger, DeviceEntry, int | None]] = []
    for device_id in dict.fromkeys(device_ids):
        device = devices.get(device_id)
        if device is None:
            raise DeviceNotFoundError(f"device {device_id} not found")
        station = devices.station_of(device_id)
        charger = get_charger(hub, station.id) if station is not None else None
        if charger is None:
            raise DeviceNotFoundError(f"no charger integration controls {device.name or device_id}")
        connector = call.data.get(ATTR_CONNECTOR_ID)
        if device.kind is DeviceKind.CONNECTOR and device.connector_id is not None:
            connector = device.connector_id
        elif device.kind is DeviceKind.EVSE and device.evse_id is not None:
            connector = device.evse_id
        targets.append((charger, device, connector))
    return targets


Command = Callable[[Charger, int | None, dict[str, Any]], Awaitable[Any]]


async def _dispatch(
    hub: Hub, call: ServiceCall, capability: ChargerCapability, command: Command
) -> dict[str, Any]:
    targets = resolve_targets(hub, call)
    for charger, device, _connector in targets:
        if capability not in charger.capabilities:
            raise CapabilityNotSupportedError(
                f"{device.name or device.id} ({charger.device_id}) does not support "
                f"{_capability_name(capability)}"
            )
    if len(targets) == 1:
        charger, device, connector = targets[0]
        return {device.id: await command(charger, connector, call.data)}
    outcomes = await asyncio.gather(
        *(command(charger, connector, call.data) for charger, _, connector in targets),
        return_exceptions=True,
    )
    results = {
        device.id: outcome for (_, device, _), outcome in zip(targets, outcomes, strict=True)
    }
    failed = {key: value for key, value in results.items() if isinstance(value, BaseException)}
    if failed:
        detail = "; ".join(f"{key}: {value}" for key, value in failed.items())
        raise ChargerCommandError(
            f"{call.service} failed on {len(failed)} target(s): {detail}", results
        )
    return results


def _positive_connector(value: Any) -> int:
    return int(vol.All(vol.Coerce(int), vol.Range(min=0))(value))


_TARGET = {
    vol.Optional(ATTR_DEVICE_ID): vol.Any(str, [str]),
    vol.Optional(ATTR_ENTITY_ID): vol.Any(str, [str]),
    vol.Optional(ATTR_CONNECTOR_ID): _positive_connector,
}


def _schema(extra: dict[Any, Any]) -> vol.Schema:
    return vol.Schema({**_TARGET, **extra})


def _parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as err:
        raise vol.Invalid(f"expected an ISO 8601 date and time, got {value!r}") from err


async def _reset(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.reset(ResetType(data[ATTR_TYPE]))


async def _set_availability(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.set_availability(data[ATTR_AVAILABLE], connector)


async def _unlock(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    if connector is None:
        raise ServiceValidationError(
            "unlock_connector needs a connector (connector_id or a connector device)"
        )
    return await charger.unlock_connector(connector)


async def _current_limit(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.set_current_limit(data[ATTR_LIMIT], connector)


async def _start(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.start_charging(connector, data.get(ATTR_ID_TAG))


async def _stop(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.stop_charging(connector)


async def _trigger(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.trigger_status(connector)


async def _firmware(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.update_firmware(data[ATTR_LOCATION], data.get(ATTR_RETRIEVE_AT))


async def _phases(charger: Charger, connector: int | None, data: dict[str, Any]) -> Any:
    return await charger.set_phases(data[ATTR_PHASES], connector)


SERVICES: dict[str, tuple[ChargerCapability, Command, vol.Schema, str]] = {
    "reset": (
        ChargerCapability.RESET,
        _reset,
        _schema({vol.Optional(ATTR_TYPE, default="soft"): vol.In([t.value for t in ResetType])}),
        "Restart a station (soft or hard).",
    ),
    "set_availability": (
        ChargerCapability.SET_AVAILABILITY,
        _set_availability,
        _schema(
            {
                vol.Required(ATTR_AVAILABLE): bool,
                # Why a lock takes the port out of use: a reason the uptime rules exclude
                # (scheduled maintenance...); without one the locked time is an outage.
                vol.Optional(ATTR_REASON): vol.In(EXCLUSION_REASONS),
                vol.Optional(ATTR_NOTE): vol.All(str, vol.Length(max=500)),
            }
        ),
        "Lock (available: false) or unlock a station or connector; a lock may give the"
        " reason that excludes its time from uptime (reason, note).",
    ),
    "unlock_connector": (
        ChargerCapability.UNLOCK_CONNECTOR,
        _unlock,
        _schema({}),
        "Release the cable lock of a connector.",
    ),
    "set_current_limit": (
        ChargerCapability.SET_CURRENT_LIMIT,
        _current_limit,
        _schema({vol.Required(ATTR_LIMIT): vol.All(vol.Coerce(float), vol.Range(min=0, max=1000))}),
        "Limit the charging current in amperes.",
    ),
    "start_charging": (
        ChargerCapability.START_STOP,
        _start,
        _schema({vol.Optional(ATTR_ID_TAG): vol.All(str, vol.Length(min=1, max=36))}),
        "Start a charging session remotely.",
    ),
    "stop_charging": (
        ChargerCapability.START_STOP,
        _stop,
        _schema({}),
        "Stop a charging session remotely.",
    ),
    "trigger_status": (
        ChargerCapability.TRIGGER_STATUS,
        _trigger,
        _schema({}),
        "Ask a charger to report its status now.",
    ),
    "update_firmware": (
        ChargerCapability.UPDATE_FIRMWARE,
        _firmware,
        _schema(
            {
                vol.Required(ATTR_LOCATION): vol.Url(),
                vol.Optional(ATTR_RETRIEVE_AT): _parse_datetime,
            }
        ),
        "Install firmware from a URL.",
    ),
    "set_phases": (
        ChargerCapability.SET_PHASES,
        _phases,
        _schema({vol.Required(ATTR_PHASES): vol.All(vol.Coerce(int), vol.In([1, 3]))}),
        "Charge on one or three phases.",
    ),
}


def setup_charger_services(hub: Hub) -> None:
    """Register the charger.* services."""
    for service, (capability, command, schema, description) in SERVICES.items():

        async def handle(
            call: ServiceCall,
            capability: ChargerCapability = capability,
            command: Command = command,
        ) -> dict[str, Any]:
            return await _dispatch(hub, call, capability, command)

        # Operators control chargers; configuration stays with admins.
        hub.services.register(DOMAIN, service, handle, schema, description, role="operator")
