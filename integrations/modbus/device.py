"""One Modbus wallbox: its coordinator (polling, reconnecting, writing) and its Charger.

One poll per interval on the hub clock reads the profile's registers in the fewest
contiguous requests over one reused connection, and every entity is written from it.
A device that stops answering is offline after ``offline_after`` failed polls (an
``offline`` charger event: uptime counts it) and is tried again with backoff until it
answers (``online``). Writes are confirmed by reading back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from hub.charger import (
    Charger,
    ChargerCapability,
    ChargerEventKind,
    ConnectorStatus,
    SessionData,
    fire_charger_event,
    register_single_port_station,
)
from hub.clock import clock
from hub.core import Hub
from hub.entity import WALLBOX_PORT_ENTITIES, EntityDescription, EntityGroup, entity_table
from hub.exceptions import ServiceValidationError
from hub.plugins import SetupContext, health_reporter
from integrations.modbus.client import (
    DeviceUnavailableError,
    ModbusClient,
    ModbusError,
    ModbusExceptionError,
)
from integrations.modbus.profile import DecodeError, Profile, Register

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "modbus"
ONLINE: Final = "online"
OFFLINE: Final = "offline"
MAX_BACKOFF: Final = 300.0
PORT: Final = 1


# Statuses with a vehicle plugged in; a session starts when energy flows, ends unplugged.
_PLUGGED: Final = frozenset(
    {
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
    }
)


def _nothing() -> None:
    """No one to tell."""


STATION_ENTITIES: Final = entity_table(
    EntityDescription(key="connectivity", name="connectivity", device_class="connectivity"),
    EntityDescription(
        key="latency", name="poll latency", unit_of_measurement="ms", device_class="duration"
    ),
    EntityDescription(key="last_error", name="last error"),
)
PORT_ENTITIES: Final = entity_table(
    *WALLBOX_PORT_ENTITIES,
    EntityDescription(key="phases", name="phases"),
    EntityDescription(key="enabled", name="charging enabled"),
    EntityDescription(key="cable", name="cable state"),
)


class ModbusCharger(Charger):
    """A wallbox polled over Modbus; its capabilities are the writes its profile defines."""

    def __init__(
        self,
        hub: Hub,
        key: str,
        profile: Profile,
        *,
        name: str,
        host: str,
        port: int,
        unit_id: int,
        framer: str,
        interval: float,
        timeout: float,
        offline_after: int,
        site: str | None = None,
        serial: Mapping[str, Any] | None = None,
    ) -> None:
        self.hub = hub
        self.key = key
        self.profile = profile
        self.name = name
        self.host = host
        self.port = port
        self.interval = interval
        self.offline_after = offline_after
        self.client = ModbusClient(
            host, port, unit_id, framer=framer, timeout=timeout, serial=serial
        )
        station, port_device = register_single_port_station(
            hub,
            DOMAIN,
            key,
            name,
            site=(f"site:{site}", site) if site else None,
            port=PORT,
            manufacturer=profile.manufacturer,
            model=profile.model,
        )
        super().__init__(station.id)
        self.port_device_id = port_device.id
        self.station_entities = EntityGroup(DOMAIN, STATION_ENTITIES, station.id, key, name)
        self.port_entities = EntityGroup(
            DOMAIN, PORT_ENTITIES, port_device.id, f"{key}-{PORT}", f"{name} {PORT}"
        )
        capabilities = ChargerCapability.TRIGGER_STATUS
        for kind, capability in (
            ("current_limit", ChargerCapability.SET_CURRENT_LIMIT),
            ("enable", ChargerCapability.SET_AVAILABILITY),
            ("phases", ChargerCapability.SET_PHASES),
            ("start_stop", ChargerCapability.START_STOP),
        ):
            if kind in profile.writes:
                capabilities |= capability
        self.capabilities = capabilities
        self.health = health_reporter(hub, DOMAIN, f"device {key}")
        # Connection and polling.
        self.is_online: bool | None = None
        self.failures = 0
        self._retry_at = 0.0
        self._poll_task: asyncio.Task[bool] | None = None
        self._undo: list[Callable[[], Any]] = []
        self.values: dict[str, Any] = {}
        self.status: str | None = None
        self.error_code: str | None = None
        self.last_error: str | None = None
        self._bad: set[str] = set()
        # What the last answered poll found wrong (values outside the profile's ranges).
        self.problems: list[str] = []
        # The open charging session (a dict of SessionData fields plus energy_start), kept
        # by the integration's store across restarts through on_session.
        self.session: dict[str, Any] | None = None
        self.on_session: Callable[[], None] = _nothing
        # What the hub last wrote (the failsafe rewrite and enable without readback).
        self.limit: float | None = None
        self.enabled: bool | None = None
        # Counters (the benchmark and the API read them).
        self.polls = 0
        self.late = 0
        self.poll_seconds = 0.0
        self.heartbeats = 0

    def __repr__(self) -> str:
        return f"<ModbusCharger {self.key} {self.profile.key} {self.client.where}>"

    @property
    def online(self) -> bool:
        """Whether the last poll was answered."""
        return bool(self.is_online)

    # Scheduling ---------------------------------------------------------------------

    def start(self, ctx: SetupContext, offset: float = 0.0) -> None:
        """Poll now (after offset seconds) and every interval; keep the failsafe heartbeat."""
        undo = self._undo
        undo.append(ctx.register_charger(self))
        ctx.on_unload(self.client.close)
        if self.hub.states.get(self.station_entities.entity_id(self.hub, "connectivity")) is None:
            self._write_station("connectivity", OFFLINE)

        def begin() -> None:
            self.tick(ctx)
            undo.append(ctx.track_interval(self.interval, lambda: self.tick(ctx)))

        undo.append(ctx.call_later(offset, begin).cancel)
        failsafe = self.profile.failsafe
        if failsafe is not None:
            undo.append(
                ctx.track_interval(
                    float(failsafe["period"]),
                    lambda: ctx.create_task(self.heartbeat(), "heartbeat"),
                )
            )

    def stop(self) -> None:
        """Stop polling (the device is removed while the integration runs)."""
        while self._undo:
            self._undo.pop()()
        if self._poll_task is not None:
            self._poll_task.cancel()
        self.client.close()

    def tick(self, ctx: SetupContext) -> None:
        """One interval passed: poll, unless the last poll still runs (then it is late)."""
        if self._poll_task is not None and not self._poll_task.done():
            self.late += 1
            return
        if clock(self.hub).time() < self._retry_at:
            return
        self._poll_task = ctx.create_task(self._poll(), f"poll {self.key}")

    async def refresh(self) -> bool:
        """Poll now (or wait for the poll under way); True when the device answered."""
        task = self._poll_task
        if task is not None and not task.done():
            return await asyncio.shield(task)
        self._poll_task = task = asyncio.ensure_future(self._poll())
        return await task

    # Polling ------------------------------------------------------------------------

    async def _poll(self) -> bool:
        started = time.perf_counter()
        self.polls += 1
        try:
            await self.client.connect()
            raw: list[tuple[Register, list[int]]] = []
            rejected: list[str] = []
            for block in self.profile.blocks:
                try:
                    words = await self.client.read(block.function, block.address, block.count)
                except ModbusExceptionError as err:
                    # The device answers: this block is refused, the others may be fine.
                    rejected.append(str(err))
                    continue
                for register in block.registers:
                    offset = register.address - block.address
                    raw.append((register, words[offset : offset + register.count]))
        except DeviceUnavailableError as err:
            self._failed(str(err))
            return False
        except ModbusError as err:
            self.client.close()
            self._failed(str(err))
            return False
        finally:
            self.poll_seconds += time.perf_counter() - started
        self._answered(raw, rejected, (time.perf_counter() - started) * 1000)
        return True

    def _answered(
        self, raw: list[tuple[Register, list[int]]], rejected: list[str], latency_ms: float
    ) -> None:
        self.failures = 0
        self._retry_at = 0.0
        if self.is_online is not True:
            self._went_online()
        values: dict[str, Any] = {}
        problems = list(rejected)
        for register, words in raw:
            try:
                values[register.name] = register.decode(words)
            except DecodeError as err:
                problems.append(str(err))
                values[register.name] = None
        self.values = values
        for register, _words in raw:
            if register.entity is not None and register.entity != "error_code":
                self._write_port(register.entity, values[register.name])
        try:
            status = self.profile.status_of(values)
        except DecodeError as err:
            problems.append(str(err))
            status = None
        if status is not None:
            self._set_status(self._locked(status, values), self.profile.error_of(values))
        self._follow_session(values)
        self._write_station("latency", round(latency_ms, 1))
        self._report(problems)

    def _locked(self, status: str, values: dict[str, Any]) -> str:
        """A disabled (locked) wallbox is Unavailable, whatever its pilot says."""
        write = self.profile.writes.get("enable")
        if write is None:
            return status
        readback = write.get("readback") or write["register"]
        register = self.profile.registers[readback]
        if register.poll and values.get(readback) is not None:
            disabled = values[readback] == register.decode(register.encode(write["disabled"]))
        else:
            disabled = self.enabled is False
        if not disabled or status == ConnectorStatus.FAULTED:
            return status
        if status in (ConnectorStatus.AVAILABLE, ConnectorStatus.UNAVAILABLE):
            return str(ConnectorStatus.UNAVAILABLE)
        return str(ConnectorStatus.SUSPENDED_EVSE)

    def _report(self, problems: list[str]) -> None:
        fresh = [problem for problem in problems if problem not in self._bad]
        for problem in fresh:
            _LOGGER.warning("%s (%s): %s", self.name, self.profile.key, problem)
        self._bad = set(problems)
        self.problems = problems
        if problems:
            self.last_error = problems[0]
            self._write_station("last_error", problems[0][:250])
            if fresh:
                self.health.degraded(f"{self.key}: {problems[0]}")
        elif self.health.health != "ok":
            self.health.ok()

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason
        backoff = min(self.interval * 2 ** max(self.failures - self.offline_after, 0), MAX_BACKOFF)
        self._retry_at = clock(self.hub).time() + backoff - self.interval / 2
        if self.failures in (1, self.offline_after):
            _LOGGER.warning("%s (%s): %s", self.name, self.client.where, reason)
        if self.failures >= self.offline_after and self.is_online is not False:
            self._went_offline(reason)

    def _went_online(self) -> None:
        self.is_online = True
        extra = {"address": self.client.where, "profile": self.profile.key}
        self._write_station("connectivity", ONLINE, extra)
        fire_charger_event(
            self.hub,
            ChargerEventKind.ONLINE,
            station_id=self.device_id,
            data={"charge_point_id": self.key},
        )
        self.health.ok()
        _LOGGER.info("%s answers at %s", self.name, self.client.where)

    def _went_offline(self, reason: str) -> None:
        self.is_online = False
        self._write_station("connectivity", OFFLINE, {"reason": reason[:250]})
        self._write_station("last_error", reason[:250])
        fire_charger_event(
            self.hub,
            ChargerEventKind.OFFLINE,
            station_id=self.device_id,
            data={"charge_point_id": self.key, "reason": reason[:250]},
        )
        self.health.failed(f"{self.key} does not answer: {reason}")

    def _set_status(self, status: str, error_code: str | None) -> None:
        previous = self.status
        changed = previous != status or error_code != self.error_code
        self.status = status
        self.error_code = error_code
        if not changed:
            return
        self._write_port("status", status)
        self._write_port("error_code", error_code)
        if previous != status and ConnectorStatus.FAULTED in (status, previous):
            kind: Literal[ChargerEventKind.FAULT, ChargerEventKind.RECOVERED] = (
                ChargerEventKind.FAULT
                if status == ConnectorStatus.FAULTED
                else ChargerEventKind.RECOVERED
            )
            fire_charger_event(
                self.hub,
                kind,
                station_id=self.device_id,
                device_id=self.port_device_id,
                data={
                    "charge_point_id": self.key,
                    "port": PORT,
                    "status": status,
                    "error_code": error_code,
                },
            )
        if previous != status:
            fire_charger_event(
                self.hub,
                ChargerEventKind.STATUS,
                station_id=self.device_id,
                device_id=self.port_device_id,
                data={
                    "charge_point_id": self.key,
                    "port": PORT,
                    "status": status,
                    "previous": previous,
                    "error_code": None,
                    "vendor_error_code": error_code,
                    "time": None,
                },
            )

    # Sessions --------------------------------------------------------------------------

    def _entity_value(self, values: Mapping[str, Any], entity: str) -> float | None:
        for register in self.profile.registers.values():
            if register.entity == entity:
                value = values.get(register.name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return float(value)
        return None

    def _follow_session(self, values: Mapping[str, Any]) -> None:
        """Open a session when energy first flows after plug-in; close it when unplugged.

        Modbus wallboxes have no transactions: the status says when a vehicle charges and
        leaves, the meter how much it took, so history, charge success and reports count
        their sessions as an OCPP charger's.
        """
        status = self.status
        session = self.session
        power = self._entity_value(values, "power")
        if session is None:
            if status == ConnectorStatus.CHARGING:
                now = clock(self.hub).time()
                self.session = {
                    "transaction_id": f"{self.key}-{int(now)}",
                    "started_at": now,
                    "energy_start": self._entity_value(values, "energy"),
                    "peak_power_w": power or 0.0,
                    "error_code": None,
                }
                fire_charger_event(
                    self.hub,
                    ChargerEventKind.SESSION_STARTED,
                    station_id=self.device_id,
                    device_id=self.port_device_id,
                    data={**self._session_data(None, None), "energy_wh": 0.0},
                )
                self.on_session()
            return
        if power is not None and power > session["peak_power_w"]:
            session["peak_power_w"] = power
        if self.error_code is not None and status == ConnectorStatus.FAULTED:
            session["error_code"] = self.error_code
        if status in _PLUGGED or status is None:
            session["energy_wh"] = self._session_energy(values)
            return
        reason = {
            ConnectorStatus.AVAILABLE: "EVDisconnected",
            ConnectorStatus.UNAVAILABLE: "Remote" if self.enabled is False else "Other",
        }.get(ConnectorStatus(status), "Other")
        # Some products clear their session counter at unplug: the last reading while
        # plugged in counts then.
        readings = [
            energy
            for energy in (self._session_energy(values), session.get("energy_wh"))
            if isinstance(energy, int | float)
        ]
        energy = max(readings) if readings else None
        fire_charger_event(
            self.hub,
            ChargerEventKind.SESSION_ENDED,
            station_id=self.device_id,
            device_id=self.port_device_id,
            data=self._session_data(reason, energy),
        )
        self.session = None
        self.on_session()

    def _session_energy(self, values: Mapping[str, Any]) -> float | None:
        session = self.session
        if session is None:
            return None
        counted = self._entity_value(values, "session_energy")
        if counted is not None:
            return counted
        energy, start = self._entity_value(values, "energy"), session.get("energy_start")
        if energy is None or not isinstance(start, float):
            last = session.get("energy_wh")
            return float(last) if isinstance(last, int | float) else None
        return max(0.0, energy - start)

    def _session_data(self, reason: str | None, energy: float | None) -> SessionData:
        session = self.session or {}
        return {
            "charge_point_id": self.key,
            "port": PORT,
            "transaction_id": session.get("transaction_id"),
            "id_tag": None,
            "started_at": session.get("started_at"),
            "stopped_at": clock(self.hub).time() if reason is not None else None,
            "energy_wh": energy,
            "peak_power_w": session.get("peak_power_w"),
            "stop_reason": reason,
            "error_code": session.get("error_code"),
        }

    def _write_station(self, key: str, value: Any, extra: dict[str, Any] | None = None) -> None:
        self.station_entities.write(self.hub, key, value, None, extra)

    def _write_port(self, key: str, value: Any) -> None:
        self.port_entities.write(self.hub, key, value)

    # Writes -------------------------------------------------------------------------

    async def _write(self, kind: str, value: Any) -> dict[str, Any]:
        """Write one capability's register and read it back; the answer or a clear error."""
        write = self.profile.writes[kind]
        register = self.profile.registers[write["register"]]
        try:
            words = register.encode(value)
        except ValueError as err:
            raise ServiceValidationError(f"{self.name}: {err}") from err
        if not self.online:
            raise DeviceUnavailableError(f"{self.name} is offline: {self.last_error}")
        try:
            await self.client.connect()
            await self.client.write(register.function, register.address, words)
            readback_name = write.get("readback") or (register.name if register.poll else None)
            confirmed = False
            if readback_name is not None:
                readback = self.profile.registers[readback_name]
                got = readback.decode(
                    await self.client.read(readback.function, readback.address, readback.count)
                )
                expected = register.decode(words)
                tolerance = max(readback.scale, register.scale) / 2 + 1e-9
                same = (
                    got == expected
                    if isinstance(expected, bool) or isinstance(got, bool)
                    else abs(float(got) - float(expected)) <= tolerance
                )
                if not same:
                    raise ModbusError(
                        f"{self.name} did not take {kind} = {value}: it reads back {got}"
                    )
                confirmed = True
        except DecodeError as err:
            raise ModbusError(f"{self.name}: {kind} read back garbage: {err}") from err
        except DeviceUnavailableError:
            raise
        await self.refresh()
        return {"result": "Accepted", "confirmed": confirmed}

    async def set_current_limit(self, limit: float, connector_id: int | None) -> Any:
        """Write the current limit (A); below the product's minimum pauses, where it can."""
        write = self.profile.writes["current_limit"]
        value = float(limit)
        if value < write["min"]:
            if "pause" not in write:
                raise ServiceValidationError(
                    f"{self.name} takes {write['min']:g} to {write['max']:g} A, not {limit:g}"
                )
            value = float(write["pause"])
        elif value > write["max"]:
            raise ServiceValidationError(
                f"{self.name} takes at most {write['max']:g} A, not {limit:g}"
            )
        answer = await self._write("current_limit", value)
        self.limit = value
        return answer

    async def set_availability(self, available: bool, connector_id: int | None) -> Any:
        """Enable (unlock) or disable (lock) charging."""
        write = self.profile.writes["enable"]
        self.enabled = available
        try:
            return await self._write("enable", write["enabled"] if available else write["disabled"])
        except Exception:
            self.enabled = None
            raise

    async def set_phases(self, phases: int, connector_id: int | None) -> Any:
        """Switch between one and three phases."""
        values = self.profile.writes["phases"]["values"]
        if phases not in values:
            raise ServiceValidationError(f"{self.name} cannot charge on {phases} phase(s)")
        return await self._write("phases", values[phases])

    async def start_charging(self, connector_id: int | None, id_tag: str | None) -> Any:
        """Start (resume) charging."""
        return await self._write("start_stop", self.profile.writes["start_stop"]["start"])

    async def stop_charging(self, connector_id: int | None) -> Any:
        """Stop (pause) charging."""
        return await self._write("start_stop", self.profile.writes["start_stop"]["stop"])

    async def trigger_status(self, connector_id: int | None) -> Any:
        """Poll now and report the port's status again (the uptime engine asks after a restart)."""
        if not await self.refresh():
            raise DeviceUnavailableError(f"{self.name} does not answer: {self.last_error}")
        if self.status is not None:
            fire_charger_event(
                self.hub,
                ChargerEventKind.STATUS,
                station_id=self.device_id,
                device_id=self.port_device_id,
                data={
                    "charge_point_id": self.key,
                    "port": PORT,
                    "status": self.status,
                    "previous": self.status,
                    "error_code": None,
                    "vendor_error_code": self.error_code,
                    "time": None,
                },
            )
        return "Accepted"

    async def heartbeat(self) -> None:
        """Keep the device out of its failsafe: write the alive register or the last limit."""
        failsafe = self.profile.failsafe
        if failsafe is None or not self.online:
            return
        try:
            if "register" in failsafe:
                register = self.profile.registers[failsafe["register"]]
                await self.client.write(
                    register.function, register.address, register.encode(failsafe["value"])
                )
            else:
                kind = failsafe["rewrite"]
                write = self.profile.writes[kind]
                register = self.profile.registers[write["register"]]
                value = self.limit if kind == "current_limit" else None
                if value is None:
                    # Nothing set by the hub yet: keep what the device uses now.
                    value = self._current(write)
                if value is None:
                    return
                await self.client.write(register.function, register.address, register.encode(value))
            self.heartbeats += 1
        except (ModbusError, ValueError) as err:
            _LOGGER.warning("%s: failsafe heartbeat failed: %s", self.name, err)

    def _current(self, write: Mapping[str, Any]) -> float | None:
        name = write.get("readback") or write["register"]
        value = self.values.get(name)
        return float(value) if isinstance(value, int | float) else None

    def as_dict(self) -> dict[str, Any]:
        """What the API shows of the device."""
        return {
            "id": self.key,
            "name": self.name,
            "device_id": self.device_id,
            "profile": self.profile.key,
            "product": self.profile.name,
            "host": self.host,
            "port": self.port,
            "serial": self.client.serial,
            "unit_id": self.client.unit_id,
            "framer": self.client.framer,
            "online": self.is_online,
            "status": self.status,
            "error_code": self.error_code,
            "last_error": self.last_error,
            "capabilities": [
                (capability.name or "").lower()
                for capability in ChargerCapability
                if capability and capability in self.capabilities
            ],
            "session": None
            if self.session is None
            else {
                key: self.session.get(key)
                for key in ("transaction_id", "started_at", "energy_wh", "peak_power_w")
            },
            "polls": self.polls,
            "late_polls": self.late,
        }
