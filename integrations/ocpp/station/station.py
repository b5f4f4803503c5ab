"""A charging station as the hub knows it: its entities, its messages, its commands.

A Station outlives its connections: it is made from config (or on first contact) and keeps
its devices, entity ids and sessions while the charger comes and goes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.charger import (
    Charger,
    ChargerCapability,
    ConnectorStatus,
    ResetType,
    fire_charger_event,
    register_charger,
    status_from_ocpp201,
)
from hub.clock import clock
from hub.const import ATTR_DEVICE_CLASS, ATTR_FRIENDLY_NAME, ATTR_UNIT_OF_MEASUREMENT
from hub.core import Context, Hub, ReadOnlyDict
from hub.registry import DeviceKind, async_sync_registries, device_registry, entity_registry
from hub.restore_state import last_state
from hub.security import Severity
from integrations.ocpp.connection import Connection, HandlerError, OcppCallError
from integrations.ocpp.const import (
    DOMAIN,
    OFFLINE,
    ONLINE,
    PENDING,
    SEC_CHARGER_REPORTED,
    SEC_REJECTED_PENDING,
)
from integrations.ocpp.limits import LimitError
from integrations.ocpp.protocol import OcppVersion

if TYPE_CHECKING:
    from integrations.ocpp.system import CentralSystem
    from integrations.ocpp.transactions import Transaction

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Context], Awaitable[dict[str, Any]]]

# key: (name, unit, device class)
STATION_ENTITIES: dict[str, tuple[str, str | None, str | None]] = {
    "connectivity": ("connectivity", None, "connectivity"),
    "last_seen": ("last seen", None, "timestamp"),
    "heartbeat_interval": ("heartbeat interval", "s", "duration"),
    "boot_reason": ("boot reason", None, None),
    "reconnects": ("reconnects", None, None),
    "latency": ("latency", "ms", "duration"),
    "status": ("status", None, "enum"),
    "firmware_status": ("firmware status", None, None),
    "diagnostics_status": ("diagnostics status", None, None),
}
# What a station says of itself at boot (vendor, model, serial number, firmware) lives in the
# device registry (manufacturer, model, serial_number, sw_version); the firmware's history is in
# the boot events. Earlier versions kept each as an entity too: at start they are removed.
RETIRED_STATION_ENTITIES = ("vendor", "model", "serial", "firmware")
PORT_ENTITIES: dict[str, tuple[str, str | None, str | None]] = {
    "status": ("status", None, "enum"),
    "error_code": ("error code", None, None),
    "power": ("power", "W", "power"),
    "energy": ("energy", "Wh", "energy"),
    "current_l1": ("current L1", "A", "current"),
    "current_l2": ("current L2", "A", "current"),
    "current_l3": ("current L3", "A", "current"),
    "voltage_l1": ("voltage L1", "V", "voltage"),
    "voltage_l2": ("voltage L2", "V", "voltage"),
    "voltage_l3": ("voltage L3", "V", "voltage"),
    "soc": ("state of charge", "%", "battery"),
    "session_energy": ("session energy", "Wh", "energy"),
    "session_duration": ("session duration", "s", "duration"),
    "transaction_id": ("transaction id", None, None),
    "id_tag": ("id tag", None, None),
}

_ENERGY_SCALE = {"Wh": 1.0, "kWh": 1000.0}
_POWER_SCALE = {"W": 1.0, "kW": 1000.0}
ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_ACTIVE = "Power.Active.Import"
# Unit multipliers are bounded to -9..9 by the schemas (limits.INTEGER_BOUNDS).
_POW10 = {exponent: 10.0**exponent for exponent in range(-9, 10)}

# A sampled value read and checked: (measurand, phase, value in Wh / W / A / V / %).
Sample = tuple[str, str, float]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Entities:
    """Entity ids and fixed attributes of one device's entities, made once."""

    __slots__ = ("attrs", "device_id", "display", "ids", "prefix", "table")

    def __init__(
        self,
        table: dict[str, tuple[str, str | None, str | None]],
        device_id: str,
        prefix: str,
        display: str,
    ) -> None:
        self.table = table
        self.device_id = device_id
        self.prefix = prefix
        self.display = display
        self.ids: dict[str, str] = {}
        self.attrs: dict[str, ReadOnlyDict] = {}

    def resolve(self, hub: Hub, key: str) -> str:
        """Return the entity id of key, registering the entity the first time it is needed.

        Entities appear when the charger first reports them: a single-phase AC charger gets
        no L2/L3 or state-of-charge entities, and a large fleet keeps only what it uses.
        """
        entity_id = self.ids.get(key)
        if entity_id is not None:
            return entity_id
        label, unit, device_class = self.table[key]
        entry = entity_registry(hub).get_or_create(
            "sensor",
            DOMAIN,
            f"{self.prefix}-{key}",
            suggested_object_id=f"{self.display} {label}",
            device_id=self.device_id,
            original_name=label,
        )
        attrs: dict[str, Any] = {ATTR_FRIENDLY_NAME: f"{self.display} {label}"}
        if unit:
            attrs[ATTR_UNIT_OF_MEASUREMENT] = unit
        if device_class:
            attrs[ATTR_DEVICE_CLASS] = device_class
        self.ids[key] = entry.entity_id
        self.attrs[key] = ReadOnlyDict(attrs)
        return entry.entity_id


class Port:
    """A connector (1.6) or EVSE (2.0.1): the unit whose uptime is counted."""

    __slots__ = (
        "device_id",
        "entities",
        "number",
        "peak_power",
        "phases",
        "power_phases",
        "session_error",
        "session_start_wh",
        "status",
        "transaction",
    )

    def __init__(self, number: int, device_id: str, entities: _Entities) -> None:
        self.number = number
        self.device_id = device_id
        self.entities = entities
        self.status: str | None = None
        self.transaction: Transaction | None = None
        self.phases: dict[str, float] = {}
        self.power_phases: dict[str, float] = {}
        # Highest power (W) seen during the open session: NEVI reports peak kW per session.
        self.peak_power = 0.0
        # Last error code reported during the open session (a failed session's code).
        self.session_error: str | None = None
        # The energy register at the open session's start (Wh), once known.
        self.session_start_wh: float | None = None

    def note_error(self, code: str | None) -> None:
        """Remember a fault code reported while a session is open."""
        if code and code != "NoError" and self.transaction is not None:
            self.session_error = code


class Station(Charger):
    """One charge point: entities, message handlers, and the charger.* capabilities."""

    capabilities = (
        ChargerCapability.RESET
        | ChargerCapability.SET_AVAILABILITY
        | ChargerCapability.UNLOCK_CONNECTOR
        | ChargerCapability.SET_CURRENT_LIMIT
        | ChargerCapability.START_STOP
        | ChargerCapability.TRIGGER_STATUS
        | ChargerCapability.UPDATE_FIRMWARE
    )

    def __init__(
        self,
        system: CentralSystem,
        cp_id: str,
        *,
        name: str | None,
        site: str | None,
        pending: bool,
    ) -> None:
        self.system = system
        self.hub = system.hub
        self.cp_id = cp_id
        self.name = name or cp_id
        self.site = site
        self.pending = pending
        self.connection: Connection | None = None
        self.version: OcppVersion | None = None
        self.boot_status: str | None = None
        self.heartbeat_interval = system.heartbeat_interval
        self.connects = 0
        self.ports: dict[int, Port] = {}
        self._last_seen_written = 0.0
        self._profile_ids = 0
        devices = device_registry(self.hub)
        via: tuple[str, str] | None = None
        if site:
            via = (DOMAIN, f"site:{site}")
            devices.get_or_create(
                integration=DOMAIN,
                identifiers=frozenset({via}),
                kind=DeviceKind.SITE,
                name=site,
            )
        device = devices.get_or_create(
            integration=DOMAIN,
            identifiers=frozenset({(DOMAIN, cp_id)}),
            kind=DeviceKind.STATION,
            name=self.name,
            via_device=via,
        )
        super().__init__(device.id)
        self.entities = _Entities(STATION_ENTITIES, device.id, cp_id, self.name)
        registry = entity_registry(self.hub)
        for key in RETIRED_STATION_ENTITIES:
            retired = registry.get_entity_id("sensor", DOMAIN, f"{cp_id}-{key}")
            if retired is not None:
                registry.remove(retired)
                self.hub.states.remove(retired)
        restored = last_state(self.hub, self._entity_id("reconnects"))
        try:
            self.reconnects = int(restored.state) if restored else 0
        except ValueError:
            self.reconnects = 0
        if self.hub.states.get(self._entity_id("connectivity")) is None:
            self._write_station("connectivity", PENDING if pending else OFFLINE)
        elif pending:
            self._write_station("connectivity", PENDING)
        self._unregister = register_charger(self.hub, self)

    # Entities ---------------------------------------------------------------------------

    def _entity_id(self, key: str) -> str:
        return self.entities.resolve(self.hub, key)

    def _write(
        self,
        entities: _Entities,
        key: str,
        value: Any,
        context: Context | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        state = "unknown" if value is None else str(value)
        entity_id = entities.ids.get(key) or entities.resolve(self.hub, key)
        attrs = entities.attrs[key] if not extra else {**entities.attrs[key], **extra}
        self.hub.states.set(entity_id, state, attrs, context)

    def _write_station(
        self,
        key: str,
        value: Any,
        context: Context | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self._write(self.entities, key, value, context, extra)

    def port(self, number: int) -> Port:
        """Return a port (connector or EVSE), registering it on first sight."""
        port = self.ports.get(number)
        if port is None:
            kind_name = "EVSE" if self.version is OcppVersion.V201 else "connector"
            device = device_registry(self.hub).get_or_create(
                integration=DOMAIN,
                identifiers=frozenset({(DOMAIN, f"{self.cp_id}:{number}")}),
                kind=DeviceKind.CONNECTOR,
                name=f"{self.name} {kind_name} {number}",
                via_device=(DOMAIN, self.cp_id),
                connector_id=number,
                evse_id=number if self.version is OcppVersion.V201 else None,
            )
            entities = _Entities(
                PORT_ENTITIES, device.id, f"{self.cp_id}-{number}", f"{self.name} {number}"
            )
            port = Port(number, device.id, entities)
            self.ports[number] = port
        return port

    def set_latency(self, milliseconds: float) -> None:
        """Record the round trip of the last call or ping."""
        self._write_station("latency", round(milliseconds, 1))

    # Connection life --------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """Whether the charger's socket is open and it spoke recently."""
        return self.connection is not None and not self.connection.closed

    async def attach(self, connection: Connection, profile: int) -> None:
        """A new socket from this charger: the old one, if any, is closed."""
        old = self.connection
        self.connection = connection
        self.version = connection.version
        if old is not None and not old.closed:
            await old.close(code=1000, message=b"replaced by a new connection")
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
            self._write_station("reconnects", self.reconnects)
        elif self.hub.states.get(self._entity_id("reconnects")) is None:
            self._write_station("reconnects", self.reconnects)
        extra = {
            "remote": connection.remote,
            "ocpp_version": str(connection.version),
            "security_profile": profile,
        }
        self._write_station("connectivity", PENDING if self.pending else ONLINE, None, extra)
        if not self.pending:
            fire_charger_event(
                self.hub, "online", station_id=self.device_id, data={"charge_point_id": self.cp_id}
            )
        self._touch(force=True)
        _LOGGER.info("%s connected from %s (%s)", self.cp_id, connection.remote, connection.version)

    async def detach(self, connection: Connection) -> None:
        """The socket closed: the station is offline from now."""
        if self.connection is not connection:
            return
        self.connection = None
        if not self.pending:
            self._went_offline("disconnected")
        _LOGGER.info("%s disconnected", self.cp_id)

    def _went_offline(self, reason: str) -> None:
        self._write_station("connectivity", OFFLINE)
        fire_charger_event(
            self.hub,
            "offline",
            station_id=self.device_id,
            data={"charge_point_id": self.cp_id, "reason": reason},
        )

    def not_connected(self) -> None:
        """At start: the charger has no socket to this hub (yet), whatever was restored.

        Only the state changes: whether the time the hub was down counts as an outage is
        the uptime engine's restart rule, not a charger event.
        """
        if self.connection is not None:
            return
        state = self.hub.states.get(self._entity_id("connectivity"))
        wanted = PENDING if self.pending else OFFLINE
        if state is None or state.state != wanted:
            self._write_station("connectivity", wanted)

    def resume_transaction(self, number: int, transaction: Transaction) -> None:
        """Give a port back the session that was open when the hub stopped."""
        port = self.port(number)
        port.transaction = transaction
        port.session_start_wh = transaction.meter_start_wh

    def check_liveness(self, now: float) -> None:
        """Called every second: ping idle chargers, mark silent ones offline."""
        connection = self.connection
        if connection is None:
            return
        silence = now - connection.last_seen
        if silence > self.heartbeat_interval * self.system.offline_after:
            _LOGGER.warning("%s silent for %.0f s: offline", self.cp_id, silence)
            self.connection = None
            self._went_offline("silent")
            self.hub.create_task(connection.close(code=1001, message=b"silent too long"))
        elif silence > self.heartbeat_interval and connection.ping_sent_at is None:
            self.hub.create_task(connection.ping())

    def _touch(self, force: bool = False, context: Context | None = None) -> None:
        now = time.time()
        if force or now - self._last_seen_written >= 10.0:
            self._last_seen_written = now
            self._write_station("last_seen", datetime.fromtimestamp(now, UTC).isoformat(), context)

    async def shutdown(self) -> None:
        """The hub stops: close the socket, keep the states for restore."""
        self._unregister()
        if self.connection is not None:
            connection = self.connection
            await connection.close(code=1001, message=b"central system stopping")

    async def approved(self) -> None:
        """The operator approved this pending charger: accept its next boot."""
        self.pending = False
        if self.connection is not None:
            self._write_station("connectivity", ONLINE)
            try:
                await self._trigger("BootNotification", None)
            except OcppCallError as err:
                _LOGGER.info(
                    "%s approved; it will be accepted at its next boot (%s)", self.cp_id, err
                )

    async def rejected(self) -> None:
        """The operator rejected this pending charger."""
        self.system.security_event(
            SEC_REJECTED_PENDING,
            f"{self.cp_id} rejected by the operator",
            self.connection,
            {},
            cp_id=self.cp_id,
            severity=Severity.INFO,
        )
        await self.forget(b"rejected")

    async def forget(self, reason: bytes = b"forgotten") -> None:
        """Drop a charger that was never admitted: its socket, states and devices."""
        self._unregister()
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close(code=1008, message=reason)
        registry = entity_registry(self.hub)
        devices = device_registry(self.hub)
        for device in [*devices.descendants(self.device_id), devices.get(self.device_id)]:
            if device is None:
                continue
            for entry in registry.entities_for_device(device.id):
                self.hub.states.remove(entry.entity_id)
        if self.device_id in devices:
            devices.remove(self.device_id)

    # Inbound messages -------------------------------------------------------------------

    def handler(self, version: OcppVersion, action: str) -> Handler | None:
        """Return the handler of an inbound action, or None if not supported."""
        table = _HANDLERS_16 if version is OcppVersion.V16 else _HANDLERS_201
        method = table.get(action)
        if method is None:
            return None
        if self.pending and action not in {"BootNotification", "Heartbeat"}:
            return self._refuse_while_pending
        bound: Handler = method.__get__(self)
        return bound

    async def _refuse_while_pending(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        raise HandlerError("SecurityError", "charge point is pending approval")

    def _boot_response(self) -> dict[str, Any]:
        if self.pending:
            status = "Pending"
        elif self.system.is_admitted(self.cp_id):
            status = "Accepted"
        else:
            status = "Rejected"
        self.boot_status = status
        return {"status": status, "currentTime": _now_iso(), "interval": self.heartbeat_interval}

    def _record_boot(
        self,
        ctx: Context,
        vendor: str | None,
        model: str | None,
        serial: str | None,
        firmware: str | None,
        reason: str,
    ) -> None:
        self._touch(True, ctx)
        if self.pending:
            self.system.note_boot(self.cp_id, vendor, model, serial)
        self._write_station("boot_reason", reason, ctx)
        self._write_station("heartbeat_interval", self.heartbeat_interval, ctx)
        device_registry(self.hub).update(
            self.device_id,
            manufacturer=vendor,
            model=model,
            serial_number=serial,
            sw_version=firmware,
        )
        self.hub.bus.fire(
            "ocpp_boot",
            {"charge_point_id": self.cp_id, "reason": reason, "firmware": firmware},
            ctx,
        )
        fire_charger_event(
            self.hub,
            "boot",
            station_id=self.device_id,
            context=ctx,
            data={"charge_point_id": self.cp_id, "reason": reason, "firmware": firmware},
        )

    async def on_boot_16(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self._record_boot(
            ctx,
            payload.get("chargePointVendor"),
            payload.get("chargePointModel"),
            payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
            payload.get("firmwareVersion"),
            "PowerUp",
        )
        # The charger's device and entities are on disk before it hears Accepted.
        await async_sync_registries(self.hub)
        return self._boot_response()

    async def on_boot_201(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        station = payload.get("chargingStation", {})
        self._record_boot(
            ctx,
            station.get("vendorName"),
            station.get("model"),
            station.get("serialNumber"),
            station.get("firmwareVersion"),
            payload.get("reason", "Unknown"),
        )
        await async_sync_registries(self.hub)
        return self._boot_response()

    async def on_heartbeat(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self._touch(context=ctx)
        return {"currentTime": _now_iso()}

    def _set_status(
        self,
        number: int,
        status: str,
        error_code: str | None,
        info: dict[str, Any],
        ctx: Context,
        at: float | None = None,
    ) -> None:
        """Apply a port's status; ``at`` is when the charger says it changed (its timestamp,
        already checked against the window around the hub clock)."""
        if number == 0:
            self._write_station("status", status, ctx, info or None)
            return
        port = self.port(number)
        previous = port.status
        port.status = status
        self._write(port.entities, "status", status, ctx)
        self._write(port.entities, "error_code", error_code, ctx, info or None)
        port.note_error(error_code)
        if previous != status and (status == "Faulted" or previous == "Faulted"):
            fire_charger_event(
                self.hub,
                "fault" if status == "Faulted" else "recovered",
                station_id=self.device_id,
                device_id=port.device_id,
                context=ctx,
                data={
                    "charge_point_id": self.cp_id,
                    "port": number,
                    "status": status,
                    "error_code": error_code,
                },
            )
        if previous != status:
            fire_charger_event(
                self.hub,
                "status",
                station_id=self.device_id,
                device_id=port.device_id,
                context=ctx,
                data={
                    "charge_point_id": self.cp_id,
                    "port": number,
                    "status": status,
                    "previous": previous,
                    "error_code": error_code,
                    "vendor_error_code": info.get("vendor_error_code"),
                    # When the charger says it happened (None: when the hub heard it).
                    "time": at,
                },
            )
            self.hub.bus.fire(
                "ocpp_status",
                {
                    "charge_point_id": self.cp_id,
                    "port": number,
                    "status": status,
                    "previous": previous,
                    "error_code": error_code,
                },
                ctx,
            )

    async def on_status_16(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        number = self._port_number("connectorId", payload["connectorId"])
        at = (
            self._charger_time("timestamp", payload["timestamp"])
            if payload.get("timestamp")
            else None
        )
        self._touch(context=ctx)
        info = {
            key: payload[source]
            for key, source in (
                ("vendor_error_code", "vendorErrorCode"),
                ("info", "info"),
                ("vendor_id", "vendorId"),
            )
            if payload.get(source)
        }
        self._set_status(number, payload["status"], payload.get("errorCode"), info, ctx, at)
        return {}

    async def on_status_201(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        number = self._port_number("evseId", payload["evseId"])
        at = self._charger_time("timestamp", payload["timestamp"])
        self._touch(context=ctx)
        port = self.ports.get(number)
        charging_state = None
        if port is not None and port.transaction is not None:
            charging_state = "Charging"
        status = status_from_ocpp201(payload["connectorStatus"], charging_state)
        error = "NoError" if status is not ConnectorStatus.FAULTED else "Faulted"
        self._set_status(
            number, str(status), error, {"connector_id": payload["connectorId"]}, ctx, at
        )
        return {}

    # Values checked before anything is applied: a message is taken whole or refused whole.

    def _now(self) -> float:
        return clock(self.hub).time()

    def _port_number(self, field: str, number: int) -> int:
        """Check a connector/EVSE id against the station's port limit."""
        return self.system.limits.port_number(field, number)

    def _charger_time(self, field: str, value: Any) -> float:
        """A charger's timestamp as POSIX seconds, within the window around the hub clock."""
        return self.system.limits.timestamp(field, value, self._now())

    def _samples(self, field: str, meter_values: list[dict[str, Any]]) -> list[Sample]:
        """Read and check every sampled value of a meterValue list, in base units."""
        limits = self.system.limits
        now = self._now()
        found: list[Sample] = []
        for index, meter_value in enumerate(meter_values):
            name = f"{field}[{index}]"
            limits.timestamp(f"{name}.timestamp", meter_value.get("timestamp"), now)
            for position, sample in enumerate(meter_value.get("sampledValue", ())):
                measurand = sample.get("measurand", ENERGY_REGISTER)
                unit = sample.get("unit")
                multiplier = 0
                uom = sample.get("unitOfMeasure")
                if uom is not None:
                    unit = uom.get("unit", unit)
                    multiplier = uom.get("multiplier", 0)
                raw = sample["value"]
                try:
                    value = float(raw) * _POW10[multiplier]
                except (TypeError, ValueError):
                    if sample.get("format") == "SignedData":
                        continue  # a signed meter record, not a number
                    raise LimitError(
                        f"{name}.sampledValue[{position}].value",
                        f"{name}.sampledValue[{position}].value {str(raw)[:40]!r} is not a number",
                    ) from None
                if measurand.startswith("Energy."):
                    value *= _ENERGY_SCALE.get(unit or "Wh", 1.0)
                elif measurand.startswith("Power."):
                    value *= _POWER_SCALE.get(unit or "W", 1.0)
                limits.sample(f"{name}.sampledValue[{position}].value", measurand, value)
                found.append((measurand, sample.get("phase") or "", value))
        return found

    def _apply_meter_values(self, number: int, samples: list[Sample], ctx: Context) -> None:
        if number == 0 or not samples:
            return
        port = self.port(number)
        total_power = False
        for measurand, phase, value in samples:
            if measurand == ENERGY_REGISTER:
                if not phase:
                    self._apply_energy(port, value, ctx)
            elif measurand == POWER_ACTIVE:
                if phase:
                    port.power_phases[phase] = value
                else:
                    total_power = True
                    self._write(port.entities, "power", round(value, 3), ctx)
                    port.peak_power = max(port.peak_power, value)
            elif measurand in ("Current.Import", "Voltage"):
                key = "current" if measurand == "Current.Import" else "voltage"
                line = phase[:2] if phase.startswith("L") else "L1"
                if line in ("L1", "L2", "L3"):
                    self._write(port.entities, f"{key}_{line.lower()}", round(value, 3), ctx)
            elif measurand == "SoC":
                self._write(port.entities, "soc", round(value, 1), ctx)
        if port.power_phases and not total_power:
            total = sum(port.power_phases.values())
            self._write(port.entities, "power", round(total, 3), ctx)
            port.peak_power = max(port.peak_power, total)
        port.power_phases.clear()
        transaction = port.transaction
        if transaction is not None:
            duration = round(max(0.0, self._now() - transaction.started_at))
            self._write(port.entities, "session_duration", duration, ctx)

    def _apply_energy(self, port: Port, wh: float, ctx: Context) -> None:
        self._write(port.entities, "energy", round(wh, 3), ctx)
        if port.transaction is None:
            return
        if port.session_start_wh is None:
            # A session started without a reading (2.0.1 allows it) counts from its first.
            port.session_start_wh = wh
        self._write(port.entities, "session_energy", round(wh - port.session_start_wh, 3), ctx)

    async def on_meter_values_16(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        number = self._port_number("connectorId", payload["connectorId"])
        samples = self._samples("meterValue", payload["meterValue"])
        self._touch(context=ctx)
        self._apply_meter_values(number, samples, ctx)
        return {}

    async def on_meter_values_201(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        number = self._port_number("evseId", payload["evseId"])
        samples = self._samples("meterValue", payload["meterValue"])
        self._touch(context=ctx)
        self._apply_meter_values(number, samples, ctx)
        return {}

    def _id_tag_status(self, id_tag: str | None) -> str:
        if id_tag is None:
            return "Invalid"
        if id_tag in self.system.id_tags or self.system.authorize_unknown:
            return "Accepted"
        return "Invalid"

    async def on_authorize_16(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {"idTagInfo": {"status": self._id_tag_status(payload["idTag"])}}

    async def on_authorize_201(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        token = payload["idToken"]
        return {"idTokenInfo": {"status": self._id_tag_status(token.get("idToken"))}}

    def _session_started(
        self, port: Port, transaction: Transaction, id_tag: str | None, ctx: Context
    ) -> None:
        port.transaction = transaction
        port.peak_power = 0.0
        port.session_error = None
        port.session_start_wh = transaction.meter_start_wh
        self._write(port.entities, "transaction_id", transaction.ocpp_id, ctx)
        self._write(port.entities, "id_tag", id_tag, ctx)
        self._write(port.entities, "session_energy", 0, ctx)
        self._write(port.entities, "session_duration", 0, ctx)
        fire_charger_event(
            self.hub,
            "session_started",
            station_id=self.device_id,
            device_id=port.device_id,
            context=ctx,
            data=self._session_data(port, transaction, id_tag),
        )

    def _session_data(
        self, port: Port, transaction: Transaction, id_tag: str | None
    ) -> dict[str, Any]:
        return {
            "charge_point_id": self.cp_id,
            "port": port.number,
            "transaction_id": transaction.ocpp_id,
            "id_tag": id_tag,
            "started_at": transaction.started_at,
            "stopped_at": transaction.stopped_at,
            "energy_wh": transaction.energy_wh,
            "peak_power_w": port.peak_power,
            "stop_reason": transaction.stop_reason,
            "error_code": port.session_error,
        }

    def _session_ended(self, port: Port, transaction: Transaction, ctx: Context) -> None:
        current = port.transaction is not None and port.transaction.ocpp_id == transaction.ocpp_id
        data = self._session_data(port, transaction, transaction.id_tag)
        if not current:
            # Ended after a restart (the stop was the charger's first message) or for a
            # session this port no longer shows: what was seen live is not known here.
            data["peak_power_w"] = None
            data["error_code"] = None
        fire_charger_event(
            self.hub,
            "session_ended",
            station_id=self.device_id,
            device_id=port.device_id,
            context=ctx,
            data=data,
        )
        if not current:
            return
        port.transaction = None
        port.session_start_wh = None
        self._write(port.entities, "transaction_id", None, ctx)
        if transaction.energy_wh is not None:
            self._write(port.entities, "session_energy", round(transaction.energy_wh, 3), ctx)
        if transaction.stopped_at is not None:
            self._write(
                port.entities,
                "session_duration",
                round(transaction.stopped_at - transaction.started_at),
                ctx,
            )

    async def on_start_transaction_16(
        self, payload: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        connector = self._port_number("connectorId", payload["connectorId"])
        if connector == 0:
            raise LimitError("connectorId", "connectorId 0 is the station, not a connector")
        started_at = self._charger_time("timestamp", payload["timestamp"])
        self._touch(context=ctx)
        id_tag = payload["idTag"]
        key = f"{self.cp_id}|{connector}|{id_tag}|{payload['timestamp']}|{payload['meterStart']}"
        # On disk before the charger hears Accepted.
        transaction = await self.system.transactions.start_transaction(
            charge_point_id=self.cp_id,
            connector_id=connector,
            id_tag=id_tag,
            meter_start_wh=float(payload["meterStart"]),
            started_at=started_at,
            ocpp_version="1.6",
            replay_key=key,
        )
        port = self.port(connector)
        if not transaction.replayed or port.transaction is None:
            await self._end_superseded(port, transaction, ctx)
            self._session_started(port, transaction, id_tag, ctx)
        return {
            "transactionId": int(transaction.ocpp_id),
            "idTagInfo": {"status": self._id_tag_status(id_tag)},
        }

    async def _end_superseded(self, port: Port, new: Transaction, ctx: Context) -> None:
        """End the port's open 1.6 transaction when another starts on it (one at a time).

        A charger that lost power mid-session often never sends that session's
        StopTransaction; the new start is the proof it is over. It ends, at the latest, when
        the new one began, at the meter reading the new one starts from (the connector's
        register), so it does not stay open forever in the store, the recorder and the API.
        """
        old = port.transaction
        if old is None or old.ocpp_id == new.ocpp_id or old.ocpp_version != "1.6":
            return
        meter = new.meter_start_wh
        if meter is None or old.meter_start_wh is None or meter < old.meter_start_wh:
            meter = old.meter_start_wh or 0.0
        stopped = await self.system.transactions.stop_transaction(
            charge_point_id=self.cp_id,
            transaction_id=int(old.ocpp_id),
            meter_stop_wh=meter,
            stopped_at=max(old.started_at, new.started_at),
            reason="Other",
            id_tag=None,
            replay_key=f"{self.cp_id}|superseded|{old.ocpp_id}|by|{new.ocpp_id}",
        )
        if stopped is not None:
            self._session_ended(port, stopped, ctx)

    def _supersede_201(self, port: Port, old: Transaction, new: Transaction, ctx: Context) -> None:
        """A new 2.0.1 transaction on an EVSE that still had one open: the old one is over.

        An EVSE runs one transaction at a time. The old one ended, at the latest, when the
        new one began; history and the port say so now. The transaction store keeps it open
        until the charger's own Ended arrives (2.0.1 chargers queue it over a power loss),
        which then records the real end and energy.
        """
        ended = dataclasses.replace(
            old, stopped_at=max(old.started_at, new.started_at), stop_reason="Other"
        )
        self._session_ended(port, ended, ctx)

    async def on_stop_transaction_16(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        stopped_at = self._charger_time("timestamp", payload["timestamp"])
        samples = self._samples("transactionData", payload.get("transactionData", ()))
        self._touch(context=ctx)
        ocpp_id = payload["transactionId"]
        key = f"{self.cp_id}|stop|{ocpp_id}|{payload['timestamp']}|{payload['meterStop']}"
        transaction = await self.system.transactions.stop_transaction(
            charge_point_id=self.cp_id,
            transaction_id=ocpp_id,
            meter_stop_wh=float(payload["meterStop"]),
            stopped_at=stopped_at,
            reason=payload.get("reason", "Local"),
            id_tag=payload.get("idTag"),
            replay_key=key,
        )
        number = transaction.connector_id if transaction is not None else None
        if transaction is not None and number:
            # The port may not be known yet in this run: a stop queued while the hub was
            # down is often the charger's first message after a restart.
            port = self.port(number)
            if not transaction.replayed or port.transaction is not None:
                self._session_ended(port, transaction, ctx)
            self._apply_meter_values(number, samples, ctx)
        response: dict[str, Any] = {}
        if payload.get("idTag"):
            response["idTagInfo"] = {"status": self._id_tag_status(payload["idTag"])}
        return response

    async def on_transaction_event_201(
        self, payload: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        timestamp = self._charger_time("timestamp", payload["timestamp"])
        evse = payload.get("evse", {}).get("id")
        if evse is not None:
            self._port_number("evse.id", evse)
        samples = self._samples("meterValue", payload.get("meterValue", ()))
        self._touch(context=ctx)
        info = payload["transactionInfo"]
        transaction, replayed = await self.system.transactions.upsert_event(
            charge_point_id=self.cp_id,
            transaction_id=info["transactionId"],
            seq_no=payload["seqNo"],
            event_type=payload["eventType"],
            timestamp=timestamp,
            offline=bool(payload.get("offline", False)),
            meter_wh=_energy_of(samples),
            data=payload,
            evse_id=evse,
            connector_id=payload.get("evse", {}).get("connectorId"),
            id_tag=payload.get("idToken", {}).get("idToken"),
            stop_reason=info.get("stoppedReason"),
        )
        number = evse if evse is not None else transaction.evse_id
        if number and not replayed:
            port = self.port(number)
            id_tag = payload.get("idToken", {}).get("idToken")
            current = port.transaction
            if payload["eventType"] == "Ended":
                self._session_ended(port, transaction, ctx)
            elif current is not None and current.ocpp_id == transaction.ocpp_id:
                # The stored record moves on (a start reading that came late, the id tag).
                port.transaction = transaction
            elif current is None or transaction.started_at >= current.started_at:
                if current is not None:
                    self._supersede_201(port, current, transaction, ctx)
                self._session_started(port, transaction, id_tag or transaction.id_tag, ctx)
            # Else a late (offline-queued) event of an older transaction: stored, and the
            # port keeps the newer one.
            state = info.get("chargingState")
            if state is not None and payload["eventType"] != "Ended":
                status = status_from_ocpp201("Occupied", state)
                if port.status != str(status):
                    self._set_status(number, str(status), "NoError", {}, ctx)
            self._apply_meter_values(number, samples, ctx)
        response: dict[str, Any] = {}
        token = payload.get("idToken")
        if token is not None:
            response["idTokenInfo"] = {"status": self._id_tag_status(token.get("idToken"))}
        return response

    async def on_data_transfer(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self.hub.bus.fire("ocpp_data_transfer", {"charge_point_id": self.cp_id, **payload}, ctx)
        return {"status": "UnknownVendorId"}

    async def on_diagnostics_status(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self._write_station("diagnostics_status", payload["status"], ctx)
        return {}

    async def on_firmware_status(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self._write_station("firmware_status", payload["status"], ctx)
        self.hub.bus.fire(
            "ocpp_firmware_status",
            {"charge_point_id": self.cp_id, "status": payload["status"]},
            ctx,
        )
        fire_charger_event(
            self.hub,
            "firmware",
            station_id=self.device_id,
            context=ctx,
            data={"charge_point_id": self.cp_id, "status": payload["status"]},
        )
        return {}

    async def on_log_status(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self._write_station("diagnostics_status", payload["status"], ctx)
        return {}

    async def on_security_event(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self._charger_time("timestamp", payload["timestamp"])
        kind = payload["type"]
        severity = Severity.CRITICAL if "Tamper" in kind or "Attack" in kind else Severity.WARNING
        self.system.security_event(
            SEC_CHARGER_REPORTED,
            f"{self.cp_id} reported {kind}",
            self.connection,
            {"type": kind, "tech_info": payload.get("techInfo"), "timestamp": payload["timestamp"]},
            cp_id=self.cp_id,
            severity=severity,
        )
        fire_charger_event(
            self.hub,
            "security_event",
            station_id=self.device_id,
            context=ctx,
            data={"charge_point_id": self.cp_id, "type": kind, "severity": str(severity)},
        )
        return {}

    async def on_notify_event_201(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self._charger_time("generatedAt", payload["generatedAt"])
        for index, event in enumerate(payload.get("eventData", ())):
            self._charger_time(f"eventData[{index}].timestamp", event["timestamp"])
            evse = event.get("component", {}).get("evse", {}).get("id")
            if evse is not None:
                self._port_number(f"eventData[{index}].component.evse.id", evse)
        for event in payload.get("eventData", ()):
            self.hub.bus.fire("ocpp_notify_event", {"charge_point_id": self.cp_id, **event}, ctx)
            component = event.get("component", {})
            variable = event.get("variable", {}).get("name")
            evse = component.get("evse", {}).get("id")
            if component.get("name") != "Connector" or not evse:
                continue
            if variable == "AvailabilityState":
                status = status_from_ocpp201(event.get("actualValue", "Unavailable"))
                self._set_status(evse, str(status), None, {}, ctx)
            elif variable == "Problem":
                # 2.0.1 StatusNotification has no error code: a connector's problem and its
                # code arrive as a NotifyEvent.
                active = str(event.get("actualValue", "")).lower() == "true"
                active = active and not event.get("cleared", False)
                code = (event.get("techCode") or "Problem") if active else "NoError"
                info = {"info": event["techInfo"]} if active and event.get("techInfo") else None
                self._write(self.port(evse).entities, "error_code", code, ctx, info)
                self.port(evse).note_error(code)
        return {}

    async def on_notify_report_201(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self.hub.bus.fire(
            "ocpp_notify_report",
            {
                "charge_point_id": self.cp_id,
                "request_id": payload["requestId"],
                "tbc": payload.get("tbc", False),
                "report": payload.get("reportData", []),
            },
            ctx,
        )
        return {}

    # Outbound commands ------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        """Send a call to the charger and return its answer."""
        connection = self.connection
        if connection is None or connection.closed:
            raise OcppCallError(f"charger {self.cp_id} is offline")
        return await connection.call(action, payload, self.system.call_timeout)

    def _v16(self) -> bool:
        return self.version is not OcppVersion.V201

    @staticmethod
    def _status(answer: Any) -> Any:
        if isinstance(answer, dict) and "status" in answer:
            return answer["status"]
        return answer

    async def reset(self, reset_type: ResetType) -> Any:
        if self._v16():
            payload = {"type": "Hard" if reset_type is ResetType.HARD else "Soft"}
        else:
            payload = {"type": "Immediate" if reset_type is ResetType.HARD else "OnIdle"}
        return self._status(await self.call("Reset", payload))

    async def set_availability(self, available: bool, connector_id: int | None) -> Any:
        kind = "Operative" if available else "Inoperative"
        if self._v16():
            payload: dict[str, Any] = {"connectorId": connector_id or 0, "type": kind}
        else:
            payload = {"operationalStatus": kind}
            if connector_id:
                payload["evse"] = {"id": connector_id}
        return self._status(await self.call("ChangeAvailability", payload))

    async def unlock_connector(self, connector_id: int) -> Any:
        if self._v16():
            payload = {"connectorId": connector_id}
        else:
            payload = {"evseId": connector_id, "connectorId": 1}
        return self._status(await self.call("UnlockConnector", payload))

    async def set_current_limit(self, limit: float, connector_id: int | None) -> Any:
        self._profile_ids += 1
        period = {"startPeriod": 0, "limit": round(limit, 1)}
        station_wide = not connector_id
        if self._v16():
            profile: dict[str, Any] = {
                "chargingProfileId": 1000 + (connector_id or 0),
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile"
                if station_wide
                else "TxDefaultProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [period]},
            }
            payload = {"connectorId": connector_id or 0, "csChargingProfiles": profile}
        else:
            profile = {
                "id": 1000 + (connector_id or 0),
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargingStationMaxProfile"
                if station_wide
                else "TxDefaultProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [period]}
                ],
            }
            payload = {"evseId": connector_id or 0, "chargingProfile": profile}
        return self._status(await self.call("SetChargingProfile", payload))

    async def start_charging(self, connector_id: int | None, id_tag: str | None) -> Any:
        tag = id_tag or "evhub"
        if self._v16():
            payload: dict[str, Any] = {"idTag": tag}
            if connector_id:
                payload["connectorId"] = connector_id
        else:
            self._profile_ids += 1
            payload = {
                "idToken": {"idToken": tag, "type": "Central"},
                "remoteStartId": self._profile_ids,
            }
            if connector_id:
                payload["evseId"] = connector_id
        return self._status(
            await self.call(
                "RemoteStartTransaction" if self._v16() else "RequestStartTransaction", payload
            )
        )

    async def stop_charging(self, connector_id: int | None) -> Any:
        ports = (
            [self.ports[connector_id]]
            if connector_id in self.ports
            else (list(self.ports.values()) if connector_id is None else [])
        )
        active = [p.transaction for p in ports if p.transaction is not None]
        if not active:
            raise OcppCallError(
                f"no session running on {self.cp_id}"
                + (f" connector {connector_id}" if connector_id else "")
            )
        transaction = active[0]
        if self._v16():
            return self._status(
                await self.call(
                    "RemoteStopTransaction", {"transactionId": int(transaction.ocpp_id)}
                )
            )
        return self._status(
            await self.call("RequestStopTransaction", {"transactionId": transaction.ocpp_id})
        )

    async def _trigger(self, message: str, connector_id: int | None) -> Any:
        payload: dict[str, Any] = {"requestedMessage": message}
        if connector_id:
            if self._v16():
                payload["connectorId"] = connector_id
            else:
                payload["evse"] = {"id": connector_id}
        return self._status(await self.call("TriggerMessage", payload))

    async def trigger_status(self, connector_id: int | None) -> Any:
        return await self._trigger("StatusNotification", connector_id)

    async def trigger_message(self, message: str, connector_id: int | None) -> Any:
        """Ask the charger to send a message now (TriggerMessage)."""
        return await self._trigger(message, connector_id)

    async def update_firmware(self, location: str, retrieve_at: datetime | None) -> Any:
        when = (retrieve_at or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
        if self._v16():
            return await self.call("UpdateFirmware", {"location": location, "retrieveDate": when})
        self._profile_ids += 1
        return self._status(
            await self.call(
                "UpdateFirmware",
                {
                    "requestId": self._profile_ids,
                    "firmware": {"location": location, "retrieveDateTime": when},
                },
            )
        )


def _energy_of(samples: list[Sample]) -> float | None:
    """The station-wide energy register reading among checked samples, in Wh."""
    for measurand, phase, value in samples:
        if measurand == ENERGY_REGISTER and not phase:
            return value
    return None


_HANDLERS_16: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "BootNotification": Station.on_boot_16,
    "Heartbeat": Station.on_heartbeat,
    "StatusNotification": Station.on_status_16,
    "MeterValues": Station.on_meter_values_16,
    "Authorize": Station.on_authorize_16,
    "StartTransaction": Station.on_start_transaction_16,
    "StopTransaction": Station.on_stop_transaction_16,
    "DataTransfer": Station.on_data_transfer,
    "DiagnosticsStatusNotification": Station.on_diagnostics_status,
    "FirmwareStatusNotification": Station.on_firmware_status,
    "SignedFirmwareStatusNotification": Station.on_firmware_status,
    "LogStatusNotification": Station.on_log_status,
    "SecurityEventNotification": Station.on_security_event,
}
_HANDLERS_201: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "BootNotification": Station.on_boot_201,
    "Heartbeat": Station.on_heartbeat,
    "StatusNotification": Station.on_status_201,
    "MeterValues": Station.on_meter_values_201,
    "Authorize": Station.on_authorize_201,
    "TransactionEvent": Station.on_transaction_event_201,
    "DataTransfer": Station.on_data_transfer,
    "NotifyEvent": Station.on_notify_event_201,
    "NotifyReport": Station.on_notify_report_201,
    "SecurityEventNotification": Station.on_security_event,
    "FirmwareStatusNotification": Station.on_firmware_status,
    "LogStatusNotification": Station.on_log_status,
}
