"""A charging station as the hub knows it: its entities, ports, state and commands.

A Station outlives its connections: it is made from config (or on first contact) and keeps
its devices, entity ids and sessions while the charger comes and goes. What differs by OCPP
version, the messages it handles and the words of the calls it sends, is in v16 and v201.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from hub.charger import (
    Charger,
    ChargerCapability,
    ChargerEventKind,
    ResetType,
    SessionData,
    fire_charger_event,
    register_charger,
)
from hub.clock import clock
from hub.core import Context
from hub.entity import EntityDescription, EntityGroup
from hub.registry import DeviceKind, device_registry, entity_registry
from hub.restore_state import last_state
from hub.security import Severity
from integrations.ocpp import features
from integrations.ocpp.connection import Connection, HandlerError, OcppCallError
from integrations.ocpp.const import DOMAIN, OFFLINE, ONLINE, PENDING, SEC_REJECTED_PENDING
from integrations.ocpp.limits import LimitError
from integrations.ocpp.protocol import OcppVersion
from integrations.ocpp.station import v16, v201
from integrations.ocpp.station.common import (
    ENERGY_REGISTER,
    POWER_ACTIVE,
    OcppCalls,
    Sample,
    now_iso,
)

if TYPE_CHECKING:
    from integrations.ocpp.system import CentralSystem
    from integrations.ocpp.transactions import Transaction

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Context], Awaitable[dict[str, Any]]]
# Each version's handlers, by action; held here so the per-message lookup is one global.
# Each version's inbound messages: the station's own and those of the features (features/).
_HANDLERS_16 = features.handlers(OcppVersion.V16, v16.HANDLERS)
_HANDLERS_201 = features.handlers(OcppVersion.V201, v201.HANDLERS)


# A TriggerMessage's requestedMessage, where the message it asks for has another name.
_TRIGGERED_ACTIONS: Final = {
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
    "SignChargePointCertificate": "SignCertificate",
}


def _table(*descriptions: EntityDescription) -> dict[str, EntityDescription]:
    return {description.key: description for description in descriptions}


STATION_ENTITIES: dict[str, EntityDescription] = _table(
    EntityDescription(key="connectivity", name="connectivity", device_class="connectivity"),
    EntityDescription(key="last_seen", name="last seen", device_class="timestamp"),
    EntityDescription(
        key="heartbeat_interval",
        name="heartbeat interval",
        unit_of_measurement="s",
        device_class="duration",
    ),
    EntityDescription(key="boot_reason", name="boot reason"),
    EntityDescription(key="reconnects", name="reconnects"),
    EntityDescription(
        key="latency", name="latency", unit_of_measurement="ms", device_class="duration"
    ),
    EntityDescription(key="status", name="status", device_class="enum"),
    EntityDescription(key="firmware_status", name="firmware status"),
    EntityDescription(key="diagnostics_status", name="diagnostics status"),
)
# What a station says of itself at boot (vendor, model, serial number, firmware) lives in the
# device registry (manufacturer, model, serial_number, sw_version); the firmware's history is in
# the boot events. Earlier versions kept each as an entity too: at start they are removed.
RETIRED_STATION_ENTITIES = ("vendor", "model", "serial", "firmware")
PORT_ENTITIES: dict[str, EntityDescription] = _table(
    EntityDescription(key="status", name="status", device_class="enum"),
    EntityDescription(key="error_code", name="error code"),
    EntityDescription(key="power", name="power", unit_of_measurement="W", device_class="power"),
    EntityDescription(key="energy", name="energy", unit_of_measurement="Wh", device_class="energy"),
    EntityDescription(
        key="current_l1", name="current L1", unit_of_measurement="A", device_class="current"
    ),
    EntityDescription(
        key="current_l2", name="current L2", unit_of_measurement="A", device_class="current"
    ),
    EntityDescription(
        key="current_l3", name="current L3", unit_of_measurement="A", device_class="current"
    ),
    EntityDescription(
        key="voltage_l1", name="voltage L1", unit_of_measurement="V", device_class="voltage"
    ),
    EntityDescription(
        key="voltage_l2", name="voltage L2", unit_of_measurement="V", device_class="voltage"
    ),
    EntityDescription(
        key="voltage_l3", name="voltage L3", unit_of_measurement="V", device_class="voltage"
    ),
    EntityDescription(
        key="soc", name="state of charge", unit_of_measurement="%", device_class="battery"
    ),
    EntityDescription(
        key="session_energy", name="session energy", unit_of_measurement="Wh", device_class="energy"
    ),
    EntityDescription(
        key="session_duration",
        name="session duration",
        unit_of_measurement="s",
        device_class="duration",
    ),
    EntityDescription(key="transaction_id", name="transaction id"),
    EntityDescription(key="id_tag", name="id tag"),
)

# Defined here, not imported from common: CPython 3.11 compiles `name.get(...)` on an imported
# name as an attribute load making a bound method per call (it assumes a module).
_ENERGY_SCALE = {"Wh": 1.0, "kWh": 1000.0}
_POWER_SCALE = {"W": 1.0, "kW": 1000.0}
# Unit multipliers are bounded to -9..9 by the schemas (limits.INTEGER_BOUNDS).
_POW10 = {exponent: 10.0**exponent for exponent in range(-9, 10)}


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

    def __init__(self, number: int, device_id: str, entities: EntityGroup) -> None:
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
    """One charge point: entities, ports, state, and the charger.* capabilities."""

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
        # Actions the hub triggered that a Pending station may send (once each).
        self._triggered: set[str] = set()
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
        self.entities = EntityGroup(DOMAIN, STATION_ENTITIES, device.id, cp_id, self.name)
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
        return self.entities.entity_id(self.hub, key)

    def _write(
        self,
        entities: EntityGroup,
        key: str,
        value: Any,
        context: Context | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        entities.write(self.hub, key, value, context, extra)

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
            entities = EntityGroup(
                DOMAIN, PORT_ENTITIES, device.id, f"{self.cp_id}-{number}", f"{self.name} {number}"
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
                self.hub,
                ChargerEventKind.ONLINE,
                station_id=self.device_id,
                data={"charge_point_id": self.cp_id},
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
            ChargerEventKind.OFFLINE,
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
        """Called by the liveness sweep (now: the hub's monotonic clock): ping a charger
        idle for a heartbeat interval, mark one silent for offline_after intervals offline."""
        connection = self.connection
        if connection is None:
            return
        silence = now - connection.last_seen
        if silence > self.heartbeat_interval * self.system.offline_after:
            _LOGGER.warning("%s silent for %.0f s: offline", self.cp_id, silence)
            self.connection = None
            self._went_offline("silent")
            self.hub.create_task(connection.close(code=1001, message=b"silent too long"))
        elif silence >= self.heartbeat_interval and connection.ping_sent_at is None:
            connection.start_ping()

    def _touch(self, force: bool = False, context: Context | None = None) -> None:
        now = self.now()
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
                await self._calls().trigger_message(self, "BootNotification", None)
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
        if self.pending and action != "BootNotification":
            # B02.FR.09 (and 1.6 4.2): while Pending, a station sends only BootNotification
            # and what the hub asked for with TriggerMessage; Heartbeat too is refused.
            if action not in self._triggered:
                return self._refuse_while_pending
            self._triggered.discard(action)
        bound: Handler = method.__get__(self)
        return bound

    async def _refuse_while_pending(self, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
        raise HandlerError("SecurityError", "charge point is pending approval")

    def expect_triggered(self, requested_message: str) -> None:
        """The hub asks for a message (TriggerMessage, ExtendedTriggerMessage): the station
        may send it even while Pending, once."""
        self._triggered.add(_TRIGGERED_ACTIONS.get(requested_message, requested_message))

    def _boot_response(self) -> dict[str, Any]:
        if self.pending:
            status = "Pending"
        elif self.system.is_admitted(self.cp_id):
            status = "Accepted"
        else:
            status = "Rejected"
        self.boot_status = status
        return {
            "status": status,
            "currentTime": now_iso(self.now()),
            "interval": self.heartbeat_interval,
        }

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
            ChargerEventKind.BOOT,
            station_id=self.device_id,
            context=ctx,
            data={"charge_point_id": self.cp_id, "reason": reason, "firmware": firmware},
        )

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
            kind: Literal[ChargerEventKind.FAULT, ChargerEventKind.RECOVERED] = (
                ChargerEventKind.FAULT if status == "Faulted" else ChargerEventKind.RECOVERED
            )
            fire_charger_event(
                self.hub,
                kind,
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
                ChargerEventKind.STATUS,
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

    # Values checked before anything is applied: a message is taken whole or refused whole.

    def now(self) -> float:
        """The hub clock's time, POSIX seconds."""
        return clock(self.hub).time()

    def _port_number(self, field: str, number: int) -> int:
        """Check a connector/EVSE id against the station's port limit."""
        return self.system.limits.port_number(field, number)

    def _charger_time(self, field: str, value: Any) -> float:
        """A charger's timestamp as POSIX seconds, within the window around the hub clock."""
        return self.system.limits.timestamp(field, value, self.now())

    def _samples(self, field: str, meter_values: list[dict[str, Any]]) -> list[Sample]:
        """Read and check every sampled value of a meterValue list, in base units."""
        limits = self.system.limits
        now = self.now()
        found: list[Sample] = []
        # Oldest first, whatever order they came in: the last reading of a register is the
        # latest (an Ended event carries a transaction's clock-aligned readings, its
        # Transaction.End one last or not).
        timed = []
        for index, meter_value in enumerate(meter_values):
            name = f"{field}[{index}]"
            at = limits.timestamp(f"{name}.timestamp", meter_value.get("timestamp"), now)
            timed.append((at, index, meter_value))
        timed.sort(key=lambda item: (item[0], item[1]))
        for _, index, meter_value in timed:
            name = f"{field}[{index}]"
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
            duration = round(max(0.0, self.now() - transaction.started_at))
            self._write(port.entities, "session_duration", duration, ctx)

    def _apply_energy(self, port: Port, wh: float, ctx: Context) -> None:
        self._write(port.entities, "energy", round(wh, 3), ctx)
        if port.transaction is None:
            return
        if port.session_start_wh is None:
            # A session started without a reading (2.0.1 allows it) counts from its first.
            port.session_start_wh = wh
        self._write(port.entities, "session_energy", round(wh - port.session_start_wh, 3), ctx)

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
            ChargerEventKind.SESSION_STARTED,
            station_id=self.device_id,
            device_id=port.device_id,
            context=ctx,
            data=self._session_data(port, transaction, id_tag),
        )

    def _session_data(
        self, port: Port, transaction: Transaction, id_tag: str | None
    ) -> SessionData:
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
            ChargerEventKind.SESSION_ENDED,
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

    # Outbound commands ------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        """Send a call to the charger and return its answer."""
        connection = self.connection
        if connection is None or connection.closed:
            raise OcppCallError(f"charger {self.cp_id} is offline")
        return await connection.call(action, payload, self.system.call_timeout)

    def _calls(self) -> OcppCalls:
        """The calls in the words of the charger's OCPP version (1.6 until it has spoken)."""
        if self.version is OcppVersion.V201:
            return v201
        return v16

    async def reset(self, reset_type: ResetType) -> Any:
        return await self._calls().reset(self, reset_type)

    async def set_availability(self, available: bool, connector_id: int | None) -> Any:
        return await self._calls().set_availability(self, available, connector_id)

    async def unlock_connector(self, connector_id: int) -> Any:
        return await self._calls().unlock_connector(self, connector_id)

    async def set_current_limit(self, limit: float, connector_id: int | None) -> Any:
        self._profile_ids += 1
        return await self._calls().set_current_limit(self, limit, connector_id)

    async def start_charging(self, connector_id: int | None, id_tag: str | None) -> Any:
        return await self._calls().start_charging(self, connector_id, id_tag or "evhub")

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
        return await self._calls().stop_charging(self, active[0])

    async def trigger_status(self, connector_id: int | None) -> Any:
        return await self._calls().trigger_message(self, "StatusNotification", connector_id)

    async def trigger_message(self, message: str, connector_id: int | None) -> Any:
        """Ask the charger to send a message now (TriggerMessage)."""
        self.expect_triggered(message)
        return await self._calls().trigger_message(self, message, connector_id)

    async def update_firmware(self, location: str, retrieve_at: datetime | None) -> Any:
        when = (
            (retrieve_at or datetime.fromtimestamp(self.now(), UTC))
            .astimezone(UTC)
            .isoformat()
            .replace("+00:00", "Z")
        )
        return await self._calls().update_firmware(self, location, when)
