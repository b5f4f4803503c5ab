"""Provisioning (B), remote control (F), availability (G) and data transfer (P): the
station's configuration and variables, reports, resets, triggers and vendor data.

- GetVariables / SetVariables are split by the station's DeviceDataCtrlr ItemsPerMessage and
  BytesPerMessage (learnt from a report, or asked for once, and forgotten when the station
  boots again: new firmware may have other limits) and their answers merged.
- SetNetworkProfile (1.6: ChangeConfiguration SecurityProfile) never goes below the profile
  the station must use; one to a higher profile that the station accepts raises its minimum
  once it connects with it (A05), so it cannot come back on the lower one.
- GetBaseReport / GetReport ask for a report; the NotifyReport parts of its requestId are
  collected (bounded) and, at the last one (tbc false), stored as one report per request,
  readable with ``ocpp.get_stored_report``.
- An integration answers a vendor's inbound DataTransfer with ``register_data_transfer``;
  any other vendor gets UnknownVendorId.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.core import Context, Hub, HubKey, ServiceCall
from hub.exceptions import ServiceValidationError
from hub.storage import Store
from integrations.ocpp.connection import HandlerError
from integrations.ocpp.features.base import (
    MessageHandler,
    register_station_services,
    station_for,
)
from integrations.ocpp.protocol import OcppVersion

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

STORE_KEY: Final = "ocpp.reports"
# Reports kept per station (the newest), parts of one report, reports assembled at once.
MAX_REPORTS: Final = 5
MAX_PARTS: Final = 1000
MAX_ENTRIES: Final = 20_000
MAX_OPEN_REPORTS: Final = 4
# Items of one GetVariables / SetVariables service call.
MAX_VARIABLES: Final = 1000
# Bytes of a DataTransfer's data the API may send (its JSON text).
MAX_DATA_BYTES: Final = 65_536
# What a CALL frame adds around the payload: [2,"<message id>","<action>",...].
_FRAME_OVERHEAD: Final = 80

TRIGGERS_16: Final = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)
TRIGGERS_201: Final = (
    "BootNotification",
    "LogStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "SignChargingStationCertificate",
    "SignV2GCertificate",
    "StatusNotification",
    "TransactionEvent",
    "SignCombinedCertificate",
    "PublishFirmwareStatusNotification",
)
DATA_TRANSFER_STATUSES: Final = ("Accepted", "Rejected", "UnknownMessageId", "UnknownVendorId")

# An integration's answer to its vendor's DataTransfer: (charge point id, messageId, data)
# -> {"status": Accepted | Rejected | UnknownMessageId | UnknownVendorId, "data": ...}.
DataTransferHandler = Callable[[str, str | None, Any], Awaitable[dict[str, Any]]]
DATA_VENDORS: Final[HubKey[dict[str, DataTransferHandler]]] = HubKey("ocpp.data_transfer_vendors")
DATA_PROVISIONING: Final[HubKey[Provisioning]] = HubKey("ocpp.provisioning")

HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {}
CONFIG: dict[Any, Any] = {}


def register_data_transfer(
    hub: Hub, vendor_id: str, handler: DataTransferHandler
) -> Callable[[], None]:
    """Answer the inbound DataTransfer of vendor_id (both versions) with handler; return the
    undo (give it to ``ctx.on_unload``). One handler per vendor."""
    if not isinstance(vendor_id, str) or not 0 < len(vendor_id) <= 255:
        raise ValueError("a vendorId is 1 to 255 characters")
    vendors = hub.data.setdefault(DATA_VENDORS, {})
    if vendor_id in vendors:
        raise ValueError(f"DataTransfer of {vendor_id} is already handled")
    vendors[vendor_id] = handler

    def undo() -> None:
        if vendors.get(vendor_id) is handler:
            del vendors[vendor_id]

    return undo


# Reports --------------------------------------------------------------------------------


class Provisioning:
    """The reports of every station (on disk) and what each said of its message limits."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._store: Store[dict[str, Any]] = Store(hub, 1, STORE_KEY, private=True)
        # cp_id -> the newest reports, oldest first.
        self.reports: dict[str, list[dict[str, Any]]] = {}
        # (cp_id, requestId) -> {seqNo: reportData}, while tbc.
        self._open: dict[tuple[str, int], dict[str, Any]] = {}
        # cp_id -> {"GetVariables": {"items": n, "bytes": m}, "SetVariables": {...}}.
        self.limits: dict[str, dict[str, dict[str, int]]] = {}
        self._request_id = 0

    async def load(self) -> None:
        stored = await self._store.load() or {}
        self.reports = {
            cp_id: list(reports)[-MAX_REPORTS:]
            for cp_id, reports in stored.get("reports", {}).items()
            if isinstance(reports, list)
        }
        self._request_id = int(stored.get("request_id", 0))

    def _data(self) -> dict[str, Any]:
        return {"reports": self.reports, "request_id": self._request_id}

    def _save(self) -> None:
        self._store.delay_save(self._data, 0.5)

    async def flush(self) -> None:
        await self._store.flush()

    def next_request_id(self) -> int:
        """A requestId no earlier request of this hub used (kept across restarts)."""
        self._request_id = self._request_id % 2_000_000_000 + 1
        self._save()
        return self._request_id

    def requested(self, cp_id: str, request_id: int, kind: str, at: float) -> None:
        """The station accepted a report request: its parts are awaited."""
        self._begin(cp_id, request_id, {"kind": kind, "requested_at": at})

    def _begin(self, cp_id: str, request_id: int, meta: dict[str, Any]) -> dict[str, Any]:
        key = (cp_id, request_id)
        entry = self._open.get(key)
        if entry is None:
            mine = [k for k in self._open if k[0] == cp_id]
            if len(mine) >= MAX_OPEN_REPORTS:
                # A station that starts reports and never ends them cannot grow memory.
                self._open.pop(mine[0])
            entry = {"parts": {}, "entries": 0, **meta}
            self._open[key] = entry
        return entry

    def part(self, station: Station, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Add one NotifyReport; return the assembled report at the last part."""
        cp_id = station.cp_id
        request_id = payload["requestId"]
        entry = self._begin(cp_id, request_id, {"kind": "unrequested", "requested_at": None})
        data = payload.get("reportData", [])
        seq_no = payload["seqNo"]
        if seq_no not in entry["parts"] and len(entry["parts"]) >= MAX_PARTS:
            raise HandlerError("OccurrenceConstraintViolation", f"more than {MAX_PARTS} parts")
        previous = entry["parts"].get(seq_no, [])
        if entry["entries"] - len(previous) + len(data) > MAX_ENTRIES:
            raise HandlerError("OccurrenceConstraintViolation", f"more than {MAX_ENTRIES} entries")
        entry["parts"][seq_no] = data
        entry["entries"] += len(data) - len(previous)
        entry["generated_at"] = payload["generatedAt"]
        self._learn_limits(cp_id, data)
        if payload.get("tbc", False):
            return None
        del self._open[(cp_id, request_id)]
        seq_nos = sorted(entry["parts"])
        missing = sorted(set(range(seq_nos[-1] + 1)) - set(seq_nos)) if seq_nos else []
        report = {
            "request_id": request_id,
            "kind": entry["kind"],
            "requested_at": entry["requested_at"],
            "generated_at": entry["generated_at"],
            "completed_at": station.now(),
            "parts": len(seq_nos),
            "missing_seq_nos": missing,
            "report_data": [item for seq in seq_nos for item in entry["parts"][seq]],
        }
        kept = [r for r in self.reports.get(cp_id, []) if r["request_id"] != request_id]
        kept.append(report)
        self.reports[cp_id] = kept[-MAX_REPORTS:]
        self._save()
        return report

    def _learn_limits(self, cp_id: str, data: list[dict[str, Any]]) -> None:
        for item in data:
            if item.get("component", {}).get("name") != "DeviceDataCtrlr":
                continue
            variable = item.get("variable", {})
            kind = {"ItemsPerMessage": "items", "BytesPerMessage": "bytes"}.get(
                variable.get("name", "")
            )
            instance = variable.get("instance")
            if kind is None or instance not in ("GetVariables", "SetVariables"):
                continue
            for attribute in item.get("variableAttribute", []):
                if attribute.get("type", "Actual") == "Actual":
                    self.note_limit(cp_id, instance, kind, attribute.get("value"))

    def note_limit(self, cp_id: str, action: str, kind: str, value: Any) -> None:
        """Remember a station's ItemsPerMessage / BytesPerMessage (a positive integer)."""
        try:
            number = int(str(value))
        except ValueError:
            return
        if number > 0:
            self.limits.setdefault(cp_id, {}).setdefault(action, {})[kind] = number

    def forget_limits(self, cp_id: str) -> None:
        """The station booted: what it said of its message limits may no longer hold."""
        self.limits.pop(cp_id, None)

    def report(self, cp_id: str, request_id: int | None) -> dict[str, Any] | None:
        reports = self.reports.get(cp_id, [])
        if request_id is None:
            return reports[-1] if reports else None
        for report in reports:
            if report["request_id"] == request_id:
                return report
        return None


def report_values(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A report's variables as ``Component[:instance][@evse[.connector]]/Variable[:instance]``
    -> {attribute type: value}."""
    values: dict[str, dict[str, Any]] = {}
    for item in report["report_data"]:
        component = item.get("component", {})
        variable = item.get("variable", {})
        name = component.get("name", "")
        if component.get("instance"):
            name += f":{component['instance']}"
        evse = component.get("evse")
        if evse:
            name += f"@{evse.get('id')}"
            if evse.get("connectorId") is not None:
                name += f".{evse['connectorId']}"
        name += f"/{variable.get('name', '')}"
        if variable.get("instance"):
            name += f":{variable['instance']}"
        values[name] = {
            attribute.get("type", "Actual"): attribute.get("value")
            for attribute in item.get("variableAttribute", [])
        }
    return values


async def on_notify_report(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    provisioning = station.hub.data.get(DATA_PROVISIONING)
    report = None if provisioning is None else provisioning.part(station, payload)
    station.hub.bus.fire(
        "ocpp_notify_report",
        {
            "charge_point_id": station.cp_id,
            "request_id": payload["requestId"],
            "seq_no": payload["seqNo"],
            "tbc": payload.get("tbc", False),
            "report": payload.get("reportData", []),
        },
        ctx,
    )
    if report is not None:
        station.hub.bus.fire(
            "ocpp_report_complete",
            {
                "charge_point_id": station.cp_id,
                "request_id": report["request_id"],
                "variables": len(report["report_data"]),
                "missing_seq_nos": report["missing_seq_nos"],
            },
            ctx,
        )
    return {}


async def on_data_transfer(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    station.hub.bus.fire("ocpp_data_transfer", {"charge_point_id": station.cp_id, **payload}, ctx)
    handler = station.hub.data.get(DATA_VENDORS, {}).get(payload["vendorId"])
    if handler is None:
        return {"status": "UnknownVendorId"}
    answer = await handler(station.cp_id, payload.get("messageId"), payload.get("data"))
    status = answer.get("status") if isinstance(answer, dict) else None
    if status not in DATA_TRANSFER_STATUSES:
        _LOGGER.error("DataTransfer handler of %s answered %r", payload["vendorId"], answer)
        raise HandlerError("InternalError", "the vendor's handler failed")
    response: dict[str, Any] = {"status": status}
    if answer.get("data") is not None:
        data = answer["data"]
        if station.version is not OcppVersion.V201 and not isinstance(data, str):
            data = json.dumps(data)  # 1.6 data is a string
        response["data"] = data
    return response


HANDLERS_16["DataTransfer"] = on_data_transfer
HANDLERS_201["DataTransfer"] = on_data_transfer
HANDLERS_201["NotifyReport"] = on_notify_report


# Splitting GetVariables / SetVariables ------------------------------------------------


def _chunks(
    action: str, key: str, items: list[dict[str, Any]], limits: dict[str, int]
) -> list[list[dict[str, Any]]]:
    """items in requests of at most the station's items and bytes per message."""
    max_items = limits.get("items") or len(items)
    max_bytes = limits.get("bytes")
    base = _FRAME_OVERHEAD + len(action) + len(json.dumps({key: []}))
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = base
    for item in items:
        item_size = len(json.dumps(item)) + 2
        if max_bytes is not None and base + item_size > max_bytes:
            raise ServiceValidationError(
                f"one {action} item is larger than the station's {max_bytes} bytes per message"
            )
        full = len(current) >= max_items or (max_bytes is not None and size + item_size > max_bytes)
        if current and full:
            chunks.append(current)
            current, size = [], base
        current.append(item)
        size += item_size
    if current:
        chunks.append(current)
    return chunks


async def _limits(
    provisioning: Provisioning, station: Station, action: str, count: int
) -> dict[str, int]:
    """The station's per-message limits of action: known, or asked for once."""
    known = provisioning.limits.get(station.cp_id, {}).get(action)
    if known is not None or count <= 1:
        return known or {}
    from integrations.ocpp.connection import OcppCallError

    query = [
        {"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": name, "instance": action}}
        for name in ("ItemsPerMessage", "BytesPerMessage")
    ]
    try:
        answer = await station.call("GetVariables", {"getVariableData": query})
    except OcppCallError as err:
        _LOGGER.info("%s did not tell its %s limits: %s", station.cp_id, action, err)
        answer = {}
    for result in answer.get("getVariableResult", []):
        if result.get("attributeStatus") == "Accepted":
            kind = "items" if result["variable"]["name"] == "ItemsPerMessage" else "bytes"
            provisioning.note_limit(station.cp_id, action, kind, result.get("attributeValue"))
    # Asked once: an empty entry means "no limit known".
    return provisioning.limits.setdefault(station.cp_id, {}).setdefault(action, {})


async def split_call(
    provisioning: Provisioning,
    station: Station,
    action: str,
    key: str,
    result_key: str,
    items: list[dict[str, Any]],
) -> dict[str, Any]:
    """Send items in as many calls as the station's limits need; merge the results."""
    limits = await _limits(provisioning, station, action, len(items))
    results: list[Any] = []
    for chunk in _chunks(action, key, items, limits):
        answer = await station.call(action, {key: chunk})
        results.extend(answer.get(result_key, []))
    return {result_key: results}


# Services -------------------------------------------------------------------------------


def _text(maximum: int, minimum: int = 0) -> vol.All:
    return vol.All(str, vol.Length(min=minimum, max=maximum))


_IDENTIFIER = _text(50, 1)
_EVSE_ID = vol.All(int, vol.Range(min=0, max=1000))
_CONNECTOR_ID = vol.All(int, vol.Range(min=0, max=100))
_EVSE = vol.Schema({vol.Required("id"): _EVSE_ID, vol.Optional("connectorId"): _CONNECTOR_ID})
_COMPONENT = vol.Schema(
    {
        vol.Required("name"): _IDENTIFIER,
        vol.Optional("instance"): _IDENTIFIER,
        vol.Optional("evse"): _EVSE,
    }
)
_VARIABLE = vol.Schema({vol.Required("name"): _IDENTIFIER, vol.Optional("instance"): _IDENTIFIER})
_ATTRIBUTE_TYPE = vol.In(("Actual", "Target", "MinSet", "MaxSet"))
_GET_ITEM = vol.Schema(
    {
        vol.Required("component"): _COMPONENT,
        vol.Required("variable"): _VARIABLE,
        vol.Optional("attributeType"): _ATTRIBUTE_TYPE,
    }
)
_SET_ITEM = vol.Schema(
    {
        vol.Required("component"): _COMPONENT,
        vol.Required("variable"): _VARIABLE,
        vol.Optional("attributeType"): _ATTRIBUTE_TYPE,
        vol.Required("attributeValue"): vol.All(vol.Coerce(str), vol.Length(max=1000)),
    }
)
_COMPONENT_VARIABLE = vol.Schema(
    {vol.Required("component"): _COMPONENT, vol.Optional("variable"): _VARIABLE}
)
_CONNECTION_DATA = vol.Schema(
    {
        vol.Required("ocpp_csms_url"): vol.All(
            str, vol.Length(min=1, max=512), vol.Match(r"^wss?://[^\s]+$")
        ),
        vol.Required("security_profile"): vol.All(int, vol.Range(min=0, max=3)),
        vol.Required("ocpp_interface"): vol.In(
            [f"Wired{n}" for n in range(4)] + [f"Wireless{n}" for n in range(4)]
        ),
        vol.Optional("message_timeout", default=30): vol.All(int, vol.Range(min=1, max=3600)),
        vol.Optional("ocpp_version", default="OCPP20"): vol.In(("OCPP16", "OCPP20")),
        vol.Optional("vpn"): vol.Schema(
            {
                vol.Required("server"): _text(512, 1),
                vol.Required("user"): _text(20),
                vol.Optional("group"): _text(20),
                vol.Required("password"): _text(20),
                vol.Required("key"): _text(255),
                vol.Required("type"): vol.In(("IKEv2", "IPSec", "L2TP", "PPTP")),
            }
        ),
        vol.Optional("apn"): vol.Schema(
            {
                vol.Required("apn"): _text(512, 1),
                vol.Optional("apnUserName"): _text(20),
                vol.Optional("apnPassword"): _text(20),
                vol.Optional("simPin"): vol.All(int, vol.Range(min=0, max=99_999_999)),
                vol.Optional("preferredNetwork"): _text(6),
                vol.Optional("useOnlyPreferredNetwork"): bool,
                vol.Required("apnAuthentication"): vol.In(("CHAP", "NONE", "PAP", "AUTO")),
            }
        ),
    }
)
_JSON = vol.Any(str, int, float, bool, dict, list)


def _need(station: Station, version: OcppVersion, what: str) -> None:
    if station.version is not version:
        have = "OCPP 1.6" if station.version is not OcppVersion.V201 else "OCPP 2.0.1"
        raise ServiceValidationError(
            f"{what} is {version.name} only; {station.cp_id} speaks {have}"
        )


def _check_profile(system: CentralSystem, station: Station, profile: int) -> None:
    """No downgrade: not below the profile the station connected with or must use."""
    seen = system.profiles_seen.get(station.cp_id, 0)
    if profile < seen:
        raise ServiceValidationError(
            f"security profile {profile} is below the {seen} {station.cp_id} connected with"
        )
    minimum = system.minimum_profile(station.cp_id)
    if profile < minimum:
        raise ServiceValidationError(
            f"security profile {profile} is below the {minimum} {station.cp_id} must use"
        )


def _note_upgrade(system: CentralSystem, station: Station, profile: int) -> None:
    """The station accepted profile: if it is higher than its current connection's, the
    hub raises its minimum once it connects with it (A05)."""
    current = system.current_profiles.get(station.cp_id)
    if current is not None and profile > current:
        system.request_profile_upgrade(station.cp_id, profile)


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the provisioning, remote control, availability and data transfer services."""
    hub = ctx.hub
    provisioning = Provisioning(hub)
    await provisioning.load()
    hub.data[DATA_PROVISIONING] = provisioning

    def forget() -> None:
        if hub.data.get(DATA_PROVISIONING) is provisioning:
            hub.data.pop(DATA_PROVISIONING)
            hub.create_task(provisioning.flush())

    ctx.on_unload(forget)
    ctx.listen(
        "ocpp_boot", lambda event: provisioning.forget_limits(str(event.data["charge_point_id"]))
    )

    async def get_configuration(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _need(station, OcppVersion.V16, "GetConfiguration")
        keys = call.data.get("key")
        return await station.call("GetConfiguration", {"key": keys} if keys else {})

    async def change_configuration(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _need(station, OcppVersion.V16, "ChangeConfiguration")
        payload = {"key": call.data["key"], "value": call.data["value"]}
        profile = None
        if payload["key"] == "SecurityProfile":
            # 1.6 security whitepaper: the upgrade of a charge point's security profile.
            try:
                profile = int(payload["value"])
            except ValueError:
                profile = -1
            if not 0 <= profile <= 3:
                raise ServiceValidationError("SecurityProfile is 0, 1, 2 or 3")
            _check_profile(system, station, profile)
        answer = await station.call("ChangeConfiguration", payload)
        if profile is not None and answer.get("status") == "Accepted":
            _note_upgrade(system, station, profile)
        return answer

    async def get_variables(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _need(station, OcppVersion.V201, "GetVariables")
        return await split_call(
            provisioning,
            station,
            "GetVariables",
            "getVariableData",
            "getVariableResult",
            call.data["variables"],
        )

    async def set_variables(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _need(station, OcppVersion.V201, "SetVariables")
        return await split_call(
            provisioning,
            station,
            "SetVariables",
            "setVariableData",
            "setVariableResult",
            call.data["variables"],
        )

    async def get_base_report(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _need(station, OcppVersion.V201, "GetBaseReport")
        request_id = provisioning.next_request_id()
        base = call.data["report_base"]
        answer = await station.call("GetBaseReport", {"requestId": request_id, "reportBase": base})
        if answer.get("status") == "Accepted":
            provisioning.requested(station.cp_id, request_id, base, station.now())
        return {**answer, "requestId": request_id}

    async def get_report(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _need(station, OcppVersion.V201, "GetReport")
        request_id = provisioning.next_request_id()
        payload: dict[str, Any] = {"requestId": request_id}
        if call.data.get("component_criteria"):
            payload["componentCriteria"] = call.data["component_criteria"]
        if call.data.get("component_variable"):
            payload["componentVariable"] = call.data["component_variable"]
        answer = await station.call("GetReport", payload)
        if answer.get("status") == "Accepted":
            provisioning.requested(station.cp_id, request_id, "Custom", station.now())
        return {**answer, "requestId": request_id}

    async def get_stored_report(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        report = provisioning.report(station.cp_id, call.data.get("request_id"))
        if report is None:
            raise ServiceValidationError(f"no report of {station.cp_id} is stored")
        return {**report, "variables": report_values(report)}

    async def reset(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        kind = call.data.get("type")
        evse_id = call.data.get("evse_id")
        if station.version is OcppVersion.V201:
            kind = {"Hard": "Immediate", "Soft": "OnIdle"}.get(kind or "Immediate", kind)
            payload: dict[str, Any] = {"type": kind}
            if evse_id is not None:
                payload["evseId"] = evse_id
        else:
            if evse_id is not None:
                raise ServiceValidationError("OCPP 1.6 resets the whole charge point only")
            kind = {"Immediate": "Hard", "OnIdle": "Soft"}.get(kind or "Soft", kind)
            payload = {"type": kind}
        return await station.call("Reset", payload)

    async def set_network_profile(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _need(station, OcppVersion.V201, "SetNetworkProfile")
        data = call.data["connection_data"]
        profile = data["security_profile"]
        _check_profile(system, station, profile)
        if profile >= 2 and not data["ocpp_csms_url"].startswith("wss://"):
            raise ServiceValidationError("security profiles 2 and 3 need a wss:// URL")
        connection: dict[str, Any] = {
            "ocppVersion": data["ocpp_version"],
            "ocppTransport": "JSON",
            "ocppCsmsUrl": data["ocpp_csms_url"],
            "messageTimeout": data["message_timeout"],
            "securityProfile": profile,
            "ocppInterface": data["ocpp_interface"],
        }
        for extra in ("vpn", "apn"):
            if extra in data:
                connection[extra] = data[extra]
        payload = {
            "configurationSlot": call.data["configuration_slot"],
            "connectionData": connection,
        }
        answer = await station.call("SetNetworkProfile", payload)
        if answer.get("status") == "Accepted":
            _note_upgrade(system, station, profile)
        return answer

    async def change_availability(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        status = call.data["operational_status"]
        evse_id = call.data.get("evse_id")
        connector_id = call.data.get("connector_id")
        if station.version is OcppVersion.V201:
            payload: dict[str, Any] = {"operationalStatus": status}
            if connector_id is not None and not evse_id:
                raise ServiceValidationError("a 2.0.1 connector is named within its evse_id")
            if evse_id:
                payload["evse"] = {"id": evse_id}
                if connector_id is not None:
                    payload["evse"]["connectorId"] = connector_id
        else:
            if evse_id is not None and connector_id is not None and evse_id != connector_id:
                raise ServiceValidationError("OCPP 1.6 names a connector only")
            number = connector_id if connector_id is not None else (evse_id or 0)
            payload = {"connectorId": number, "type": status}
        return await station.call("ChangeAvailability", payload)

    async def unlock_connector(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        connector_id = call.data["connector_id"]
        if station.version is OcppVersion.V201:
            evse_id = call.data.get("evse_id")
            if evse_id is None:
                raise ServiceValidationError("a 2.0.1 unlock names evse_id and connector_id")
            payload: dict[str, Any] = {"evseId": evse_id, "connectorId": connector_id}
        else:
            payload = {"connectorId": connector_id}
        return await station.call("UnlockConnector", payload)

    async def data_transfer(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        payload: dict[str, Any] = {"vendorId": call.data["vendor_id"]}
        if "message_id" in call.data:
            payload["messageId"] = call.data["message_id"]
        if "data" in call.data:
            data = call.data["data"]
            if station.version is not OcppVersion.V201 and not isinstance(data, str):
                raise ServiceValidationError("OCPP 1.6 DataTransfer data is a string")
            if len(json.dumps(data)) > MAX_DATA_BYTES:
                raise ServiceValidationError(f"data is over {MAX_DATA_BYTES} bytes")
            payload["data"] = data
        return await station.call("DataTransfer", payload)

    async def trigger_message(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        message = call.data["requested_message"]
        evse_id = call.data.get("evse_id", call.data.get("connector_id"))
        if station.version is OcppVersion.V201:
            if message not in TRIGGERS_201:
                raise ServiceValidationError(f"OCPP 2.0.1 cannot trigger {message}")
            if "evse_id" in call.data and "connector_id" in call.data:
                station.expect_triggered(message)
                evse = {"id": call.data["evse_id"], "connectorId": call.data["connector_id"]}
                payload = {"requestedMessage": message, "evse": evse}
                return (await station.call("TriggerMessage", payload)).get("status")
        elif message not in TRIGGERS_16:
            raise ServiceValidationError(f"OCPP 1.6 cannot trigger {message}")
        return await station.trigger_message(message, evse_id)

    target_port = {
        vol.Optional("evse_id"): _EVSE_ID,
        vol.Optional("connector_id"): _CONNECTOR_ID,
    }
    register_station_services(
        ctx,
        {
            "get_configuration": (
                get_configuration,
                {vol.Optional("key"): vol.All([_IDENTIFIER], vol.Length(max=MAX_VARIABLES))},
            ),
            "change_configuration": (
                change_configuration,
                {
                    vol.Required("key"): _IDENTIFIER,
                    vol.Required("value"): vol.All(vol.Coerce(str), vol.Length(max=500)),
                },
            ),
            "get_variables": (
                get_variables,
                {
                    vol.Required("variables"): vol.All(
                        [_GET_ITEM], vol.Length(min=1, max=MAX_VARIABLES)
                    )
                },
            ),
            "set_variables": (
                set_variables,
                {
                    vol.Required("variables"): vol.All(
                        [_SET_ITEM], vol.Length(min=1, max=MAX_VARIABLES)
                    )
                },
            ),
            "get_base_report": (
                get_base_report,
                {
                    vol.Required("report_base"): vol.In(
                        ("ConfigurationInventory", "FullInventory", "SummaryInventory")
                    )
                },
            ),
            "get_report": (
                get_report,
                {
                    vol.Optional("component_criteria"): vol.All(
                        [vol.In(("Active", "Available", "Enabled", "Problem"))],
                        vol.Length(min=1, max=4),
                    ),
                    vol.Optional("component_variable"): vol.All(
                        [_COMPONENT_VARIABLE], vol.Length(min=1, max=MAX_VARIABLES)
                    ),
                },
            ),
            "reset": (
                reset,
                {
                    vol.Optional("type"): vol.In(("Immediate", "OnIdle", "Hard", "Soft")),
                    vol.Optional("evse_id"): vol.All(int, vol.Range(min=1, max=1000)),
                },
            ),
            "set_network_profile": (
                set_network_profile,
                {
                    vol.Required("configuration_slot"): vol.All(int, vol.Range(min=0, max=100)),
                    vol.Required("connection_data"): _CONNECTION_DATA,
                },
            ),
            "data_transfer": (
                data_transfer,
                {
                    vol.Required("vendor_id"): vol.All(
                        str, vol.Length(min=1, max=255), msg="a vendorId is 1 to 255 characters"
                    ),
                    vol.Optional("message_id"): vol.All(
                        str, vol.Length(max=50), msg="a messageId is at most 50 characters"
                    ),
                    vol.Optional("data"): _JSON,
                },
            ),
        },
    )
    # An operator's daily work: taking a charger in or out of service, helping a driver.
    register_station_services(
        ctx,
        {
            "change_availability": (
                change_availability,
                {
                    vol.Required("operational_status"): vol.In(("Operative", "Inoperative")),
                    **target_port,
                },
            ),
            "unlock_connector": (
                unlock_connector,
                {
                    vol.Optional("evse_id"): vol.All(int, vol.Range(min=1, max=1000)),
                    vol.Required("connector_id"): vol.All(int, vol.Range(min=1, max=100)),
                },
            ),
            "trigger_message": (
                trigger_message,
                {
                    vol.Required("requested_message"): vol.In(
                        sorted(set(TRIGGERS_16) | set(TRIGGERS_201)),
                        msg="not a requestedMessage of OCPP 1.6 or 2.0.1",
                    ),
                    **target_port,
                },
            ),
        },
        role=Role.OPERATOR,
    )
    register_station_services(
        ctx,
        {
            "get_stored_report": (
                get_stored_report,
                {vol.Optional("request_id"): vol.All(int, vol.Range(min=0))},
            )
        },
        role=Role.VIEWER,
    )
