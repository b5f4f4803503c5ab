"""Advanced device management (N): monitors and their events, monitoring reports, logs and
customer information.

- Monitors (2.0.1 N02-N08): ``ocpp.set_variable_monitoring``, ``ocpp.set_monitoring_base``,
  ``ocpp.set_monitoring_level``, ``ocpp.clear_variable_monitoring`` (split by the station's
  ``MonitoringCtrlr.ItemsPerMessage``), ``ocpp.get_monitoring_report`` (NotifyMonitoringReport
  assembled by requestId). The hub keeps every monitor it set or was told of, per station, on
  disk: ``ocpp.get_monitors`` shows them.
- NotifyEvent: each reported component/variable becomes an entity of the station (or of its
  EVSE): a boolean variable (a door contact, a problem) a ``binary_sensor``, any other a
  ``sensor`` (a temperature, a current), at most ``max_monitor_entities`` per station. An event
  of a monitor whose severity is at or below ``monitor_alert_severity`` (0 danger .. 9 debug;
  -1: none) fires ``ocpp_monitor_alert`` on the bus (an automation's ``event`` trigger) and
  raises an alert (``alert.raise``, resolved when the charger reports it cleared).
- Logs (N01, and 1.6 GetLog of the security whitepaper): ``ocpp.get_log`` and the 1.6
  ``ocpp.get_diagnostics``; LogStatusNotification is tracked per requestId.
- Customer information (N09, N10): ``ocpp.customer_information``; NotifyCustomerInformation is
  assembled by requestId and kept for the operator (``ocpp.get_customer_information``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.charger import status_from_ocpp201
from hub.core import Context, Hub, HubKey, ServiceCall
from hub.entity import EntityDescription, fixed_attributes, register_entity
from hub.exceptions import HubError, ServiceValidationError
from hub.storage import Store
from integrations.ocpp.const import DOMAIN
from integrations.ocpp.features.base import (
    ID_TOKEN_TYPES,
    MessageHandler,
    register_station_services,
    station_for,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

CONF_MONITOR_ALERT_SEVERITY: Final = "monitor_alert_severity"
CONF_MAX_MONITOR_ENTITIES: Final = "max_monitor_entities"
DEFAULT_MONITOR_ALERT_SEVERITY: Final = 3  # Danger, HardwareFailure, SystemFailure, Critical
DEFAULT_MAX_MONITOR_ENTITIES: Final = 100

EVENT_MONITOR_ALERT: Final = "ocpp_monitor_alert"
EVENT_MONITORING_REPORT: Final = "ocpp_monitoring_report"
EVENT_CUSTOMER_INFORMATION: Final = "ocpp_customer_information"
EVENT_LOG_STATUS: Final = "ocpp_log_status"

STORE_KEY: Final = "ocpp.device_management"
# Bounds on what a charger can make the hub keep (hostile input grows nothing unbounded).
MAX_MONITORS_PER_STATION: Final = 1000
MAX_REPORT_PARTS: Final = 200
MAX_OPEN_ASSEMBLIES: Final = 8
MAX_KEPT_CUSTOMER_INFO: Final = 20
MAX_TRACKED_REQUESTS: Final = 20
MAX_ENTITY_STATE: Final = 255

MONITOR_TYPES: Final = (
    "UpperThreshold",
    "LowerThreshold",
    "Delta",
    "Periodic",
    "PeriodicClockAligned",
)
MONITORING_CRITERIA: Final = ("ThresholdMonitoring", "DeltaMonitoring", "PeriodicMonitoring")
MONITORING_BASES: Final = ("All", "FactoryDefault", "HardWiredOnly")
LOG_TYPES: Final = ("DiagnosticsLog", "SecurityLog")
HASH_ALGORITHMS: Final = ("SHA256", "SHA384", "SHA512")

CONFIG: dict[Any, Any] = {
    vol.Optional(CONF_MONITOR_ALERT_SEVERITY, default=DEFAULT_MONITOR_ALERT_SEVERITY): vol.All(
        vol.Coerce(int), vol.Range(min=-1, max=9)
    ),
    vol.Optional(CONF_MAX_MONITOR_ENTITIES, default=DEFAULT_MAX_MONITOR_ENTITIES): vol.All(
        vol.Coerce(int), vol.Range(min=0, max=1000)
    ),
}


# State ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Assembly:
    """A multi-part report being received (NotifyMonitoringReport, NotifyCustomerInformation)."""

    parts: dict[int, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _MonitorEntity:
    entity_id: str
    binary: bool
    attrs: Any


@dataclass
class DeviceManagement:
    """The feature's state: monitors, reports, logs and customer information per station."""

    hub: Hub
    alert_severity: int = DEFAULT_MONITOR_ALERT_SEVERITY
    max_entities: int = DEFAULT_MAX_MONITOR_ENTITIES
    store: Store[dict[str, Any]] | None = None
    # cp_id -> monitor id (text) -> {id, component, variable, type, value, severity, transaction}
    monitors: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # cp_id -> the last complete monitoring report {request_id, monitors}
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # cp_id -> kept customer information [{request_id, data, ...}]
    customer_info: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # cp_id -> request id (text) -> {log_type, status, filename}
    logs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    request_id: int = 0
    assemblies: dict[tuple[str, str, int], _Assembly] = field(default_factory=dict)
    entities: dict[str, dict[str, _MonitorEntity]] = field(default_factory=dict)
    items_per_message: dict[tuple[str, int, str], int | None] = field(default_factory=dict)

    def next_request_id(self) -> int:
        """A request id no earlier request of this hub used (kept across restarts)."""
        self.request_id = self.request_id % 2_000_000_000 + 1
        self.save()
        return self.request_id

    def save(self) -> None:
        if self.store is not None:
            self.store.delay_save(self._data, 0.5)

    def _data(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "monitors": self.monitors,
            "reports": self.reports,
            "customer_info": self.customer_info,
            "logs": self.logs,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.request_id = int(data.get("request_id", 0))
        self.monitors = dict(data.get("monitors", {}))
        self.reports = dict(data.get("reports", {}))
        self.customer_info = dict(data.get("customer_info", {}))
        self.logs = dict(data.get("logs", {}))

    def assembly(self, kind: str, cp_id: str, request_id: int) -> _Assembly:
        """The parts received so far of a report; the oldest open one of a station goes
        when a station opens too many."""
        key = (kind, cp_id, request_id)
        found = self.assemblies.get(key)
        if found is None:
            mine = [k for k in self.assemblies if k[0] == kind and k[1] == cp_id]
            if len(mine) >= MAX_OPEN_ASSEMBLIES:
                del self.assemblies[mine[0]]
            found = self.assemblies[key] = _Assembly()
        return found


DATA_DEVICE_MANAGEMENT: Final[HubKey[DeviceManagement]] = HubKey("ocpp.device_management")


def state_of(hub: Hub) -> DeviceManagement:
    """The feature's state (made with the defaults if a charger spoke before set-up)."""
    found = hub.data.get(DATA_DEVICE_MANAGEMENT)
    if found is None:
        found = hub.data[DATA_DEVICE_MANAGEMENT] = DeviceManagement(hub)
    return found


def _remember(state: DeviceManagement, cp_id: str, monitor: dict[str, Any]) -> None:
    known = state.monitors.setdefault(cp_id, {})
    if str(monitor["id"]) not in known and len(known) >= MAX_MONITORS_PER_STATION:
        return
    known[str(monitor["id"])] = monitor


def _trim(mapping: dict[str, Any], limit: int) -> None:
    """Drop the oldest entries of an insertion-ordered mapping beyond limit."""
    while len(mapping) > limit:
        del mapping[next(iter(mapping))]


# Schemas -------------------------------------------------------------------------------

_NAME = vol.All(str, vol.Length(min=1, max=50))
_EVSE = vol.Schema(
    {
        vol.Required("id"): vol.All(int, vol.Range(min=0, max=10000)),
        vol.Optional("connectorId"): vol.All(int, vol.Range(min=0, max=10000)),
    }
)
COMPONENT = vol.Schema(
    {
        vol.Required("name"): _NAME,
        vol.Optional("instance"): _NAME,
        vol.Optional("evse"): _EVSE,
    }
)
VARIABLE = vol.Schema({vol.Required("name"): _NAME, vol.Optional("instance"): _NAME})
COMPONENT_VARIABLE = vol.Schema(
    {vol.Required("component"): COMPONENT, vol.Optional("variable"): VARIABLE}
)
_MONITOR_ID = vol.All(int, vol.Range(min=0, max=2_147_483_647))
SET_MONITORING_DATA = vol.Schema(
    {
        vol.Optional("id"): _MONITOR_ID,
        vol.Optional("transaction"): bool,
        vol.Required("value"): vol.All(vol.Coerce(float), vol.Range(min=-1e12, max=1e12)),
        vol.Required("type"): vol.In(MONITOR_TYPES),
        vol.Required("severity"): vol.All(int, vol.Range(min=0, max=9)),
        vol.Required("component"): COMPONENT,
        vol.Required("variable"): VARIABLE,
    }
)
_URL = vol.All(vol.Url(), vol.Length(max=512))
_RETRIES = vol.All(int, vol.Range(min=0, max=100))
_RETRY_INTERVAL = vol.All(int, vol.Range(min=0, max=86400))


def _timestamp(value: Any) -> str:
    """An ISO 8601 date and time with its offset, as OCPP writes them."""
    if not isinstance(value, str) or len(value) > 40:
        raise vol.Invalid("expected an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise vol.Invalid(f"expected an ISO 8601 date and time, got {value!r}") from err
    if parsed.tzinfo is None:
        raise vol.Invalid("a date and time needs its offset (Z or +hh:mm)")
    return value


# Splitting by ItemsPerMessage ----------------------------------------------------------


async def items_per_message(station: Station, instance: str) -> int | None:
    """The station's MonitoringCtrlr.ItemsPerMessage for a message (None: not reported),
    asked once per connection."""
    state = state_of(station.hub)
    key = (station.cp_id, id(station.connection), instance)
    if key in state.items_per_message:
        return state.items_per_message[key]
    limit: int | None = None
    try:
        answer = await station.call(
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "MonitoringCtrlr"},
                        "variable": {"name": "ItemsPerMessage", "instance": instance},
                    }
                ]
            },
        )
        result = (answer.get("getVariableResult") or [{}])[0]
        if result.get("attributeStatus") == "Accepted":
            limit = int(str(result.get("attributeValue", "")).strip())
            limit = limit if limit > 0 else None
    except (HubError, ValueError, TypeError, AttributeError, IndexError) as err:
        _LOGGER.debug("%s: no ItemsPerMessage %s (%s)", station.cp_id, instance, err)
        limit = None
    stale = [k for k in state.items_per_message if k[0] == station.cp_id and k[1] != key[1]]
    for old in stale:
        del state.items_per_message[old]
    state.items_per_message[key] = limit
    return limit


def _chunks(items: list[Any], size: int | None) -> list[list[Any]]:
    if not size:
        return [items]
    return [items[start : start + size] for start in range(0, len(items), size)]


def _require_201(station: Station, action: str) -> None:
    if station.version is None or station.version.value != "ocpp2.0.1":
        raise ServiceValidationError(f"{action} is OCPP 2.0.1; {station.cp_id} speaks 1.6")


# Monitors ------------------------------------------------------------------------------


async def set_variable_monitoring(station: Station, monitors: list[dict[str, Any]]) -> Any:
    """Send SetVariableMonitoring in as many messages as the station takes; keep what it
    accepted."""
    _require_201(station, "SetVariableMonitoring")
    state = state_of(station.hub)
    limit = await items_per_message(station, "SetVariableMonitoring")
    results: list[dict[str, Any]] = []
    for chunk in _chunks(monitors, limit):
        answer = await station.call("SetVariableMonitoring", {"setMonitoringData": chunk})
        for index, result in enumerate(answer.get("setMonitoringResult", [])):
            results.append(result)
            if result.get("status") != "Accepted" or "id" not in result:
                continue
            asked = chunk[index] if index < len(chunk) else {}
            _remember(
                state,
                station.cp_id,
                {
                    "id": result["id"],
                    "component": result.get("component", asked.get("component")),
                    "variable": result.get("variable", asked.get("variable")),
                    "type": result.get("type", asked.get("type")),
                    "severity": result.get("severity", asked.get("severity")),
                    "value": asked.get("value"),
                    "transaction": asked.get("transaction", False),
                    "kind": "CustomMonitor",
                },
            )
    state.save()
    return {"setMonitoringResult": results}


async def clear_variable_monitoring(station: Station, ids: list[int]) -> Any:
    """Send ClearVariableMonitoring, never more ids per message than the station takes."""
    _require_201(station, "ClearVariableMonitoring")
    state = state_of(station.hub)
    limit = await items_per_message(station, "ClearVariableMonitoring")
    results: list[dict[str, Any]] = []
    for chunk in _chunks(ids, limit):
        answer = await station.call("ClearVariableMonitoring", {"id": chunk})
        for result in answer.get("clearMonitoringResult", []):
            results.append(result)
            if result.get("status") in ("Accepted", "NotFound"):
                state.monitors.get(station.cp_id, {}).pop(str(result.get("id")), None)
    state.save()
    return {"clearMonitoringResult": results}


async def on_notify_monitoring_report(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    station._charger_time("generatedAt", payload["generatedAt"])
    state = state_of(station.hub)
    request_id = payload["requestId"]
    assembly = state.assembly("monitoring", station.cp_id, request_id)
    if len(assembly.parts) < MAX_REPORT_PARTS:
        assembly.parts[payload["seqNo"]] = payload.get("monitor", [])
    if payload.get("tbc", False):
        return {}
    state.assemblies.pop(("monitoring", station.cp_id, request_id), None)
    found: list[dict[str, Any]] = []
    for seq_no in sorted(assembly.parts):
        for monitor in assembly.parts[seq_no]:
            for item in monitor.get("variableMonitoring", []):
                entry = {
                    "id": item["id"],
                    "component": monitor["component"],
                    "variable": monitor["variable"],
                    "type": item["type"],
                    "severity": item["severity"],
                    "value": item["value"],
                    "transaction": item["transaction"],
                }
                found.append(entry)
                _remember(state, station.cp_id, entry)
    state.reports[station.cp_id] = {
        "request_id": request_id,
        "generated_at": payload["generatedAt"],
        "monitors": found[:MAX_MONITORS_PER_STATION],
    }
    state.save()
    station.hub.bus.fire(
        EVENT_MONITORING_REPORT,
        {"charge_point_id": station.cp_id, "request_id": request_id, "monitors": len(found)},
        ctx,
    )
    return {}


# Events --------------------------------------------------------------------------------

_UNITS: Final = (
    ("temperature", "°C", "temperature"),
    ("current", "A", "current"),
    ("voltage", "V", "voltage"),
    ("power", "W", "power"),
    ("energy", "Wh", "energy"),
)
_TRUE: Final = ("true", "false")


def _describe(component: dict[str, Any], variable: dict[str, Any], binary: bool) -> dict[str, Any]:
    name = variable.get("name", "")
    lowered = f"{component.get('name', '')} {name}".lower()
    if binary:
        if "door" in lowered or "accessbarrier" in lowered or "lid" in lowered:
            return {"device_class": "door"}
        if "problem" in lowered or "fault" in lowered or "tripped" in lowered:
            return {"device_class": "problem"}
        return {}
    for word, unit, device_class in _UNITS:
        if word in name.lower():
            return {"unit_of_measurement": unit, "device_class": device_class}
    return {}


def _label(component: dict[str, Any], variable: dict[str, Any]) -> tuple[str, str]:
    """A stable key and a readable name of a component's variable."""
    parts = [component.get("name", "")]
    if component.get("instance"):
        parts.append(component["instance"])
    evse = component.get("evse") or {}
    if evse.get("connectorId") is not None:
        parts.append(f"c{evse['connectorId']}")
    parts.append(variable.get("name", ""))
    if variable.get("instance"):
        parts.append(variable["instance"])
    key = "-".join(str(part) for part in parts)
    return key, " ".join(str(part) for part in parts)


def _write_event_entity(
    station: Station, event: dict[str, Any], monitor: dict[str, Any] | None, ctx: Context
) -> str | None:
    """Write an event's variable as an entity of the station or its EVSE."""
    state = state_of(station.hub)
    component, variable = event["component"], event["variable"]
    evse = (component.get("evse") or {}).get("id")
    key, label = _label(component, variable)
    key = f"{evse}-{key}" if evse else key
    value = str(event["actualValue"])
    known = state.entities.setdefault(station.cp_id, {})
    entity = known.get(key)
    if entity is None:
        if len(known) >= state.max_entities:
            return None
        binary = value.strip().lower() in _TRUE
        description = EntityDescription(
            key=key, name=label, **_describe(component, variable, binary)
        )
        if evse:
            port = station.port(evse)
            device_id, prefix, display = (
                port.device_id,
                f"{station.cp_id}-{evse}",
                f"{station.name} {evse}",
            )
        else:
            device_id, prefix, display = station.device_id, station.cp_id, station.name
        full_name = f"{display} {label}"
        entity_id = register_entity(
            station.hub,
            DOMAIN,
            description,
            f"{prefix}-monitor-{key}",
            device_id=device_id,
            full_name=full_name,
            domain="binary_sensor" if binary else "sensor",
        )
        entity = known[key] = _MonitorEntity(
            entity_id, binary, fixed_attributes(description, full_name)
        )
    if entity.binary:
        active = value.strip().lower() == "true" and not event.get("cleared", False)
        text = "on" if active else "off"
    else:
        text = value[:MAX_ENTITY_STATE]
    extra = {
        "trigger": event["trigger"],
        "event_notification_type": event["eventNotificationType"],
        "timestamp": event["timestamp"],
    }
    for source, target in (
        ("variableMonitoringId", "monitor_id"),
        ("techCode", "tech_code"),
        ("techInfo", "tech_info"),
        ("cleared", "cleared"),
    ):
        if source in event:
            extra[target] = event[source]
    if monitor is not None:
        extra["severity"] = monitor.get("severity")
    station.hub.states.set(entity.entity_id, text, {**entity.attrs, **extra}, ctx)
    return entity.entity_id


def _alert_severity(severity: int) -> str:
    """An OCPP severity (0 danger .. 9 debug) in the alerts' words."""
    if severity <= 3:  # Danger, HardwareFailure, SystemFailure, Critical
        return "critical"
    return "warning" if severity <= 6 else "info"  # Error, Alert, Warning / the rest


async def _alert(
    station: Station,
    event: dict[str, Any],
    monitor: dict[str, Any],
    entity_id: str | None,
    ctx: Context,
) -> None:
    """A monitor at or above the configured gravity fired: tell the bus and the alerts."""
    hub = station.hub
    severity = int(monitor.get("severity", 9))
    key = f"ocpp_monitor:{station.cp_id}:{monitor['id']}"
    _, label = _label(event["component"], event["variable"])
    cleared = bool(event.get("cleared", False))
    hub.bus.fire(
        EVENT_MONITOR_ALERT,
        {
            "charge_point_id": station.cp_id,
            "station_id": station.device_id,
            "entity_id": entity_id,
            "monitor_id": monitor["id"],
            "severity": severity,
            "component": event["component"],
            "variable": event["variable"],
            "actual_value": str(event["actualValue"])[:MAX_ENTITY_STATE],
            "trigger": event["trigger"],
            "cleared": cleared,
            "tech_code": event.get("techCode"),
        },
        ctx,
    )
    if not hub.services.has_service("alert", "raise"):
        return
    try:
        if cleared:
            await hub.services.call("alert", "resolve", {"alert": key}, context=ctx)
            return
        data: dict[str, Any] = {
            "key": key,
            "title": f"{station.name}: {label}",
            "message": f"{label} is {str(event['actualValue'])[:200]}"
            f" (monitor {monitor['id']}, {monitor.get('type')}, severity {severity})",
            "severity": _alert_severity(severity),
            "station_id": station.device_id,
        }
        if entity_id is not None:
            data["entity_id"] = entity_id
        await hub.services.call("alert", "raise", data, context=ctx)
    except HubError as err:
        # Resolving an alert that is not open: nothing to do.
        _LOGGER.debug("%s: alert %s: %s", station.cp_id, key, err)


async def on_notify_event(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    """NotifyEvent: checked whole first; connector availability and problems as the port's
    status and error code; every variable an entity; a grave monitor's event an alert."""
    station._charger_time("generatedAt", payload["generatedAt"])
    for index, event in enumerate(payload.get("eventData", ())):
        station._charger_time(f"eventData[{index}].timestamp", event["timestamp"])
        evse = event.get("component", {}).get("evse", {}).get("id")
        if evse is not None:
            station._port_number(f"eventData[{index}].component.evse.id", evse)
    state = state_of(station.hub)
    known = state.monitors.get(station.cp_id, {})
    for event in payload.get("eventData", ()):
        station.hub.bus.fire("ocpp_notify_event", {"charge_point_id": station.cp_id, **event}, ctx)
        component = event.get("component", {})
        variable = event.get("variable", {}).get("name")
        evse = component.get("evse", {}).get("id")
        monitor_id = event.get("variableMonitoringId")
        monitor = known.get(str(monitor_id)) if monitor_id is not None else None
        if component.get("name") == "Connector" and evse and variable == "AvailabilityState":
            status = status_from_ocpp201(event.get("actualValue", "Unavailable"))
            station._set_status(evse, str(status), None, {}, ctx)
            entity_id = None
        elif component.get("name") == "Connector" and evse and variable == "Problem":
            # 2.0.1 StatusNotification has no error code: a connector's problem and its
            # code arrive as a NotifyEvent.
            active = str(event.get("actualValue", "")).lower() == "true"
            active = active and not event.get("cleared", False)
            code = (event.get("techCode") or "Problem") if active else "NoError"
            info = {"info": event["techInfo"]} if active and event.get("techInfo") else None
            station._write(station.port(evse).entities, "error_code", code, ctx, info)
            station.port(evse).note_error(code)
            entity_id = None
        else:
            entity_id = _write_event_entity(station, event, monitor, ctx)
        if monitor is not None and int(monitor.get("severity", 9)) <= state.alert_severity:
            await _alert(station, event, monitor, entity_id, ctx)
    return {}


# Logs ------------------------------------------------------------------------------------


def _track_log(station: Station, request_id: int, record: dict[str, Any]) -> None:
    state = state_of(station.hub)
    requests = state.logs.setdefault(station.cp_id, {})
    requests[str(request_id)] = {**requests.get(str(request_id), {}), **record}
    _trim(requests, MAX_TRACKED_REQUESTS)
    state.save()


def note_log_status(station: Station, payload: dict[str, Any], ctx: Context) -> None:
    """A LogStatusNotification (2.0.1, 1.6 security whitepaper): the upload's progress, by
    requestId, in the station's diagnostics status."""
    status = payload["status"]
    request_id = payload.get("requestId")
    extra: dict[str, Any] = {}
    if request_id is not None:
        requests = state_of(station.hub).logs.get(station.cp_id, {})
        known = requests.get(str(request_id), {})
        extra = {"request_id": request_id}
        if known.get("log_type"):
            extra["log_type"] = known["log_type"]
        _track_log(station, request_id, {"status": status})
    station._write_station("diagnostics_status", status, ctx, extra or None)
    station.hub.bus.fire(
        EVENT_LOG_STATUS,
        {"charge_point_id": station.cp_id, "status": status, "request_id": request_id},
        ctx,
    )


async def get_log(
    station: Station,
    log_type: str,
    location: str,
    *,
    retries: int | None = None,
    retry_interval: int | None = None,
    oldest: str | None = None,
    latest: str | None = None,
) -> dict[str, Any]:
    """Ask for a log upload (GetLog, both versions); the answer and its requestId."""
    request_id = state_of(station.hub).next_request_id()
    log: dict[str, Any] = {"remoteLocation": location}
    if oldest is not None:
        log["oldestTimestamp"] = oldest
    if latest is not None:
        log["latestTimestamp"] = latest
    payload: dict[str, Any] = {"logType": log_type, "requestId": request_id, "log": log}
    if retries is not None:
        payload["retries"] = retries
    if retry_interval is not None:
        payload["retryInterval"] = retry_interval
    answer = await station.call("GetLog", payload)
    _track_log(
        station,
        request_id,
        {"log_type": log_type, "status": answer.get("status"), "filename": answer.get("filename")},
    )
    return {**answer, "requestId": request_id}


# Customer information --------------------------------------------------------------------


async def on_notify_customer_information(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    station._charger_time("generatedAt", payload["generatedAt"])
    state = state_of(station.hub)
    request_id = payload["requestId"]
    assembly = state.assembly("customer", station.cp_id, request_id)
    if len(assembly.parts) < MAX_REPORT_PARTS:
        assembly.parts[payload["seqNo"]] = payload["data"]
    if payload.get("tbc", False):
        return {}
    state.assemblies.pop(("customer", station.cp_id, request_id), None)
    data = "".join(assembly.parts[seq_no] for seq_no in sorted(assembly.parts))
    kept = state.customer_info.setdefault(station.cp_id, [])
    kept[:] = [item for item in kept if item["request_id"] != request_id]
    kept.append(
        {
            "request_id": request_id,
            "generated_at": payload["generatedAt"],
            "data": data,
            "parts": len(assembly.parts),
        }
    )
    del kept[:-MAX_KEPT_CUSTOMER_INFO]
    state.save()
    # Personal data stays in the private store: the bus hears that it came, not what it is.
    station.hub.bus.fire(
        EVENT_CUSTOMER_INFORMATION,
        {"charge_point_id": station.cp_id, "request_id": request_id, "length": len(data)},
        ctx,
    )
    return {}


HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {
    "NotifyEvent": on_notify_event,
    "NotifyMonitoringReport": on_notify_monitoring_report,
    "NotifyCustomerInformation": on_notify_customer_information,
}


# Services --------------------------------------------------------------------------------


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Load what was kept and register the device management services."""
    hub = ctx.hub
    state = state_of(hub)
    state.alert_severity = ctx.config.get(
        CONF_MONITOR_ALERT_SEVERITY, DEFAULT_MONITOR_ALERT_SEVERITY
    )
    state.max_entities = ctx.config.get(CONF_MAX_MONITOR_ENTITIES, DEFAULT_MAX_MONITOR_ENTITIES)
    state.store = Store(hub, 1, STORE_KEY, private=True)
    stored = await state.store.load()
    if stored:
        state.load(stored)

    async def _unload() -> None:
        if state.store is not None:
            await state.store.flush()
        hub.data.pop(DATA_DEVICE_MANAGEMENT, None)

    ctx.on_unload(_unload)

    def handler(
        run: Callable[[Station, dict[str, Any]], Any],
    ) -> Callable[[ServiceCall], Any]:
        async def handle(call: ServiceCall) -> Any:
            return await run(station_for(hub, call), call.data)

        return handle

    async def get_diagnostics(station: Station, data: dict[str, Any]) -> Any:
        if station.version is not None and station.version.value == "ocpp2.0.1":
            return await get_log(
                station,
                "DiagnosticsLog",
                data["location"],
                retries=data.get("retries"),
                retry_interval=data.get("retry_interval"),
                oldest=data.get("start_time"),
                latest=data.get("stop_time"),
            )
        payload: dict[str, Any] = {"location": data["location"]}
        for source, target in (
            ("retries", "retries"),
            ("retry_interval", "retryInterval"),
            ("start_time", "startTime"),
            ("stop_time", "stopTime"),
        ):
            if source in data:
                payload[target] = data[source]
        return await station.call("GetDiagnostics", payload)

    async def log(station: Station, data: dict[str, Any]) -> Any:
        return await get_log(
            station,
            data["log_type"],
            data["location"],
            retries=data.get("retries"),
            retry_interval=data.get("retry_interval"),
            oldest=data.get("oldest"),
            latest=data.get("latest"),
        )

    async def set_monitoring(station: Station, data: dict[str, Any]) -> Any:
        return await set_variable_monitoring(station, data["monitors"])

    async def monitoring_base(station: Station, data: dict[str, Any]) -> Any:
        _require_201(station, "SetMonitoringBase")
        base = data["monitoring_base"]
        answer = await station.call("SetMonitoringBase", {"monitoringBase": base})
        if answer.get("status") == "Accepted" and base != "All":
            # FactoryDefault and HardWiredOnly remove the custom monitors (N03.FR.04/05).
            known = state.monitors.get(station.cp_id, {})
            for key in [k for k, m in known.items() if m.get("kind") == "CustomMonitor"]:
                del known[key]
            state.save()
        return answer

    async def monitoring_level(station: Station, data: dict[str, Any]) -> Any:
        _require_201(station, "SetMonitoringLevel")
        return await station.call("SetMonitoringLevel", {"severity": data["severity"]})

    async def clear_monitoring(station: Station, data: dict[str, Any]) -> Any:
        return await clear_variable_monitoring(station, data["ids"])

    async def monitoring_report(station: Station, data: dict[str, Any]) -> Any:
        _require_201(station, "GetMonitoringReport")
        payload: dict[str, Any] = {"requestId": state.next_request_id()}
        if data.get("monitoring_criteria"):
            payload["monitoringCriteria"] = data["monitoring_criteria"]
        if data.get("component_variables"):
            payload["componentVariable"] = data["component_variables"]
        answer = await station.call("GetMonitoringReport", payload)
        return {**answer, "requestId": payload["requestId"]}

    async def monitors(station: Station, data: dict[str, Any]) -> Any:
        return {
            "monitors": list(state.monitors.get(station.cp_id, {}).values()),
            "last_report": state.reports.get(station.cp_id),
            "logs": state.logs.get(station.cp_id, {}),
        }

    async def customer_information(station: Station, data: dict[str, Any]) -> Any:
        _require_201(station, "CustomerInformation")
        references = ("id_token", "customer_certificate", "customer_identifier")
        if not any(key in data for key in references):
            raise ServiceValidationError(
                "give the customer: id_token, customer_certificate or customer_identifier"
            )
        if not data["report"] and not data["clear"]:
            raise ServiceValidationError("ask for a report, a clear, or both")
        payload: dict[str, Any] = {
            "requestId": state.next_request_id(),
            "report": data["report"],
            "clear": data["clear"],
        }
        if "id_token" in data:
            payload["idToken"] = {
                "idToken": data["id_token"],
                "type": data.get("id_token_type", "Central"),
            }
        if "customer_certificate" in data:
            payload["customerCertificate"] = data["customer_certificate"]
        if "customer_identifier" in data:
            payload["customerIdentifier"] = data["customer_identifier"]
        answer = await station.call("CustomerInformation", payload)
        result = {**answer, "requestId": payload["requestId"]}
        if data["clear"] and "id_token" in data and answer.get("status") == "Accepted":
            # N10.FR.02: the customer's token leaves the station's local list too.
            from integrations.ocpp.features.authorization_local_list import DATA_LOCAL_LISTS

            lists = station.hub.data.get(DATA_LOCAL_LISTS)
            if lists is not None:
                update = await lists.forget(station, data["id_token"])
                if update is not None:
                    result["local_list"] = update
        return result

    async def kept_customer_information(station: Station, data: dict[str, Any]) -> Any:
        kept = state.customer_info.get(station.cp_id, [])
        if "request_id" in data:
            kept = [item for item in kept if item["request_id"] == data["request_id"]]
        return {"customer_information": kept}

    time_range = {vol.Optional("oldest"): _timestamp, vol.Optional("latest"): _timestamp}
    register_station_services(
        ctx,
        {
            "get_diagnostics": (
                handler(get_diagnostics),
                {
                    vol.Required("location"): _URL,
                    vol.Optional("retries"): _RETRIES,
                    vol.Optional("retry_interval"): _RETRY_INTERVAL,
                    vol.Optional("start_time"): _timestamp,
                    vol.Optional("stop_time"): _timestamp,
                },
            ),
            "get_log": (
                handler(log),
                {
                    vol.Required("location"): _URL,
                    vol.Optional("log_type", default="DiagnosticsLog"): vol.In(LOG_TYPES),
                    vol.Optional("retries"): _RETRIES,
                    vol.Optional("retry_interval"): _RETRY_INTERVAL,
                    **time_range,
                },
            ),
            "set_variable_monitoring": (
                handler(set_monitoring),
                {
                    vol.Required("monitors"): vol.All(
                        [SET_MONITORING_DATA], vol.Length(min=1, max=200)
                    )
                },
            ),
            "set_monitoring_base": (
                handler(monitoring_base),
                {vol.Required("monitoring_base"): vol.In(MONITORING_BASES)},
            ),
            "set_monitoring_level": (
                handler(monitoring_level),
                {vol.Required("severity"): vol.All(int, vol.Range(min=0, max=9))},
            ),
            "clear_variable_monitoring": (
                handler(clear_monitoring),
                {vol.Required("ids"): vol.All([_MONITOR_ID], vol.Length(min=1, max=1000))},
            ),
            "get_monitoring_report": (
                handler(monitoring_report),
                {
                    vol.Optional("monitoring_criteria"): vol.All(
                        [vol.In(MONITORING_CRITERIA)], vol.Length(min=1, max=3)
                    ),
                    vol.Optional("component_variables"): vol.All(
                        [COMPONENT_VARIABLE], vol.Length(min=1, max=200)
                    ),
                },
            ),
        },
    )
    # Customer data is personal: asking for it, clearing it and reading it are an admin's.
    register_station_services(
        ctx,
        {
            "customer_information": (
                handler(customer_information),
                {
                    vol.Optional("report", default=True): bool,
                    vol.Optional("clear", default=False): bool,
                    vol.Optional("id_token"): vol.All(str, vol.Length(min=1, max=36)),
                    vol.Optional("id_token_type", default="Central"): vol.In(ID_TOKEN_TYPES),
                    vol.Optional("customer_certificate"): vol.Schema(
                        {
                            vol.Required("hashAlgorithm"): vol.In(HASH_ALGORITHMS),
                            vol.Required("issuerNameHash"): vol.All(
                                str, vol.Length(min=1, max=128)
                            ),
                            vol.Required("issuerKeyHash"): vol.All(str, vol.Length(min=1, max=128)),
                            vol.Required("serialNumber"): vol.All(str, vol.Length(min=1, max=40)),
                        }
                    ),
                    vol.Optional("customer_identifier"): vol.All(str, vol.Length(min=1, max=64)),
                },
            ),
            "get_customer_information": (
                handler(kept_customer_information),
                {vol.Optional("request_id"): vol.All(int, vol.Range(min=0))},
            ),
        },
    )
    register_station_services(ctx, {"get_monitors": (handler(monitors), {})}, role=Role.VIEWER)
