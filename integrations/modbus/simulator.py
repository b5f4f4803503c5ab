"""A simulated wallbox behind a real pymodbus server, driven by a device profile.

The simulator is generic: the profile says where each value lives and how it is scaled, so
one model (a vehicle arrives, charges at the limit the hub wrote, leaves; energy counts up)
answers for every product. Writes take effect (current limit, enable, phases, start/stop),
a write outside the product's range is refused with a Modbus exception as the product
would, and when the failsafe heartbeat stops the current falls back to the failsafe value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from integrations.modbus.client import FRAMERS
from integrations.modbus.profile import BIT_FUNCTIONS, COIL, DISCRETE, HOLDING, INPUT, Profile

_LOGGER = logging.getLogger(__name__)

IDLE: Final = "idle"
PLUGGED: Final = "plugged"
CHARGING: Final = "charging"
FAULT: Final = "fault"
STATES: Final = (IDLE, PLUGGED, CHARGING, FAULT)
# The automatic scenario: (state, seconds) in a loop.
CYCLE: Final = ((IDLE, 30.0), (PLUGGED, 10.0), (CHARGING, 120.0), (PLUGGED, 10.0))
VOLTAGE: Final = 230.0
_FUNCTION_CODES: Final = {1: COIL, 2: DISCRETE, 3: HOLDING, 4: INPUT}
_FUNCTION_CODES.update({5: COIL, 15: COIL, 6: HOLDING, 16: HOLDING, 22: HOLDING, 23: HOLDING})


class Raw:
    """Registers as they are, unscaled: what a device answering garbage sends."""

    def __init__(self, *words: int) -> None:
        self.words = words


class SimulatedWallbox:
    """What the product does, as its profile describes it."""

    def __init__(
        self,
        profile: Profile,
        *,
        scenario: str = "cycle",
        speed: float = 1.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if scenario not in ("cycle", "fixed"):
            raise ValueError(f"unknown scenario {scenario!r}: cycle or fixed")
        self.profile = profile
        self.scenario = scenario
        self.speed = speed
        self._now = now
        self.state = IDLE
        self.enabled = True
        limits = profile.writes.get("current_limit") or {}
        self.max_current = float(limits.get("max", 32.0))
        self.current_limit = min(16.0, self.max_current)
        self.phases = profile.phases
        self.energy_wh = 1000.0
        self.session_wh = 0.0
        self.last_heartbeat: float | None = None
        self.heartbeats = 0
        self.writes: list[tuple[str, Any]] = []
        self._updated = now()
        self._cycle_started = now()
        self._by_address = {
            (register.function, register.address): register
            for register in profile.registers.values()
        }
        self._gap_fill = {
            (block.function, address)
            for block in profile.blocks
            for address in range(block.address, block.address + block.count)
        }
        self._written: dict[str, Any] = {}
        # Raw values forced into registers, by name (a device answering nonsense).
        self.overrides: dict[str, Any] = {}

    # Behaviour ----------------------------------------------------------------------

    def set_state(self, state: str) -> None:
        """Put the wallbox in a state now (tests, the fixed scenario)."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
        self.update()
        if self.state == IDLE and state in (PLUGGED, CHARGING):
            # A new vehicle: the session counter starts again (it keeps the last one till then).
            self.session_wh = 0.0
        self.state = state

    @property
    def failsafe_active(self) -> bool:
        """Whether the heartbeat stopped for longer than the product's failsafe timeout."""
        failsafe = self.profile.failsafe
        if failsafe is None or self.last_heartbeat is None:
            return False
        return bool((self._now() - self.last_heartbeat) * self.speed > failsafe["timeout"])

    @property
    def effective_limit(self) -> float:
        """The current the wallbox offers the vehicle now (A)."""
        if self.failsafe_active and self.profile.failsafe is not None:
            return min(self.current_limit, float(self.profile.failsafe["current"]))
        return self.current_limit

    @property
    def charging(self) -> bool:
        """Whether energy flows."""
        return self.state == CHARGING and self.enabled and self.effective_limit > 0

    @property
    def power_w(self) -> float:
        """The active power drawn now."""
        return VOLTAGE * self.effective_limit * self.phases if self.charging else 0.0

    def update(self) -> None:
        """Count energy up to now and follow the automatic scenario."""
        now = self._now()
        elapsed = (now - self._updated) * self.speed
        self._updated = now
        if elapsed > 0 and self.charging:
            added = self.power_w * elapsed / 3600.0
            self.energy_wh += added
            self.session_wh += added
        if self.scenario == "cycle" and self.state != FAULT:
            total = sum(seconds for _, seconds in CYCLE)
            position = ((now - self._cycle_started) * self.speed) % total
            for state, seconds in CYCLE:
                if position < seconds:
                    if state != self.state:
                        if self.state == IDLE:
                            self.session_wh = 0.0
                        self.state = state
                    break
                position -= seconds

    def status(self) -> str:
        """The connector status the wallbox shows (in the hub's vocabulary)."""
        if self.state == FAULT:
            return "Faulted"
        if self.state == IDLE:
            return "Available" if self.enabled else "Unavailable"
        if not self.enabled or self.effective_limit <= 0:
            return "SuspendedEVSE"
        return "Charging" if self.state == CHARGING else "SuspendedEV"

    @property
    def plugged(self) -> bool:
        """Whether a vehicle is connected."""
        return self.state in (PLUGGED, CHARGING)

    # Registers ----------------------------------------------------------------------

    def _status_words(self) -> dict[str, int]:
        """Status register (and cable register) values that say status() in this profile."""
        wanted = self.status()
        fallbacks = {
            "SuspendedEV": ("SuspendedEV", "Preparing", "SuspendedEVSE"),
            "SuspendedEVSE": ("SuspendedEVSE", "SuspendedEV", "Preparing", "Unavailable"),
            "Unavailable": ("Unavailable", "Available"),
        }.get(wanted, (wanted,))
        status = self.profile.status
        plugged = status.get("plugged")
        found: dict[str, int] = {}
        if plugged is not None:
            found[plugged["register"]] = (
                plugged["values"][0] if self.plugged else plugged["unplugged"]
            )
        for target in fallbacks:
            if plugged is not None and self.plugged:
                for value, mapped in plugged["map"].items():
                    if mapped == target:
                        found[status["register"]] = value
                        return found
            for value, mapped in status["map"].items():
                if mapped != target:
                    continue
                if (
                    plugged is not None
                    and value in plugged["map"]
                    and self.plugged != (plugged["map"][value] == target)
                ):
                    continue
                found[status["register"]] = value
                return found
        found[status["register"]] = next(iter(status["map"]))
        return found

    def values(self) -> dict[str, Any]:
        """Every register's value now, by register name."""
        self.update()
        charging = self.charging
        amps = self.effective_limit if charging else 0.0
        semantic: dict[str, Any] = {
            "power": self.power_w,
            "energy": self.energy_wh,
            "session_energy": self.session_wh,
            "voltage_l1": VOLTAGE,
            "voltage_l2": VOLTAGE if self.phases == 3 else 0.0,
            "voltage_l3": VOLTAGE if self.phases == 3 else 0.0,
            "current_l1": amps,
            "current_l2": amps if self.phases == 3 else 0.0,
            "current_l3": amps if self.phases == 3 else 0.0,
            "current_limit": self.effective_limit,
            "max_current": self.max_current,
            "phases": self.phases,
            "enabled": self.enabled,
            "error_code": 1 if self.state == FAULT else self.profile.status.get("error_ok", 0),
            "cable": 1 if self.plugged else 0,
        }
        result: dict[str, Any] = {}
        for name, register in self.profile.registers.items():
            if name in self._written:
                result[name] = self._written[name]
            elif register.entity is not None:
                result[name] = semantic[register.entity]
            elif register.simulate is not None:
                result[name] = register.simulate
            else:
                result[name] = 0
        error_register = self.profile.status.get("error_register")
        if error_register is not None:
            result[error_register] = semantic["error_code"]
        result.update(self._status_words())
        failsafe = self.profile.failsafe
        if failsafe is not None and failsafe.get("register") in result:
            # The product clears the alive register once it has seen it.
            result[failsafe["register"]] = 0
        result.update(self.overrides)
        return result

    def read(self, function: str, address: int, count: int) -> list[int] | int:
        """Answer a read: the words (or bits), or a Modbus exception code."""
        bank: dict[int, int] = {}
        for name, value in self.values().items():
            register = self.profile.registers[name]
            if register.function != function:
                continue
            try:
                words = list(value.words) if isinstance(value, Raw) else register.encode(value)
            except (ValueError, OverflowError):
                words = [0] * register.count
            for offset, word in enumerate(words):
                bank[register.address + offset] = word
        answer: list[int] = []
        for where in range(address, address + count):
            found = bank.get(where)
            if found is None and (function, where) not in self._gap_fill:
                return int(ExcCodes.ILLEGAL_ADDRESS)
            answer.append(found or 0)
        return answer

    def write(self, function: str, address: int, values: Sequence[int]) -> int | None:
        """Take a write: None when accepted, else a Modbus exception code."""
        register = self._by_address.get((function, address))
        if register is None or len(values) != register.count:
            return int(ExcCodes.ILLEGAL_ADDRESS)
        value = register.decode([int(v) for v in values])
        self.update()
        for kind, write in self.profile.writes.items():
            if write["register"] != register.name:
                continue
            problem = self._apply(kind, write, value)
            if problem is not None:
                return problem
            self.writes.append((kind, value))
            return None
        failsafe = self.profile.failsafe
        if failsafe is not None and failsafe.get("register") == register.name:
            if value != failsafe["value"]:
                return int(ExcCodes.ILLEGAL_VALUE)
            self._heartbeat()
            return None
        self._written[register.name] = value
        return None

    def _heartbeat(self) -> None:
        self.last_heartbeat = self._now()
        self.heartbeats += 1

    def _apply(self, kind: str, write: Mapping[str, Any], value: Any) -> int | None:
        if kind == "current_limit":
            pause = write.get("pause")
            if value != pause and not write["min"] <= value <= write["max"]:
                return int(ExcCodes.ILLEGAL_VALUE)
            self.current_limit = float(value)
            failsafe = self.profile.failsafe
            if failsafe is not None and failsafe.get("rewrite") == "current_limit":
                self._heartbeat()
        elif kind == "enable":
            if value not in (write["enabled"], write["disabled"]):
                return int(ExcCodes.ILLEGAL_VALUE)
            self.enabled = value == write["enabled"]
        elif kind == "phases":
            chosen = [phases for phases, raw in write["values"].items() if raw == value]
            if not chosen:
                return int(ExcCodes.ILLEGAL_VALUE)
            self.phases = chosen[0]
        elif kind == "start_stop":
            if value == write["start"] and self.plugged:
                self.state = CHARGING
            elif value == write["stop"] and self.state == CHARGING:
                self.state = PLUGGED
            elif value not in (write["start"], write["stop"]):
                return int(ExcCodes.ILLEGAL_VALUE)
        return None


class _Context(ModbusServerContext):
    """The server's datastore: the simulated wallbox answers every request."""

    def __init__(self, server: SimulatorServer) -> None:
        # Not the parent's constructor: no datastore, the wallbox is the data.
        self.old_simulator = True
        self.simdevices = []
        self._server = server

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> Any:
        await self._server.answering()
        if device_id not in (self._server.unit_id, 0):
            return ExcCodes.GATEWAY_NO_RESPONSE
        function = _FUNCTION_CODES.get(func_code)
        if function is None:
            return ExcCodes.ILLEGAL_FUNCTION
        found = self._server.wallbox.read(function, address, count)
        if isinstance(found, int):
            return ExcCodes(found)
        if function in BIT_FUNCTIONS:
            return [bool(bit) for bit in found]
        return found

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Any
    ) -> Any:
        await self._server.answering()
        if device_id not in (self._server.unit_id, 0):
            return ExcCodes.GATEWAY_NO_RESPONSE
        function = _FUNCTION_CODES.get(func_code)
        if function is None:
            return ExcCodes.ILLEGAL_FUNCTION
        problem = self._server.wallbox.write(function, address, [int(v) for v in values])
        return None if problem is None else ExcCodes(problem)

    def device_ids(self) -> list[int]:
        return [self._server.unit_id]


class SimulatorServer:
    """A pymodbus TCP server answering for one simulated wallbox."""

    def __init__(
        self,
        wallbox: SimulatedWallbox,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        framer: str | None = None,
        unit_id: int | None = None,
        serial: Mapping[str, Any] | None = None,
    ) -> None:
        self.wallbox = wallbox
        self.host = host
        self.port = port
        # A serial line (RTU) instead of TCP: {"port": "/dev/ttyS1", "baudrate": 19200, ...}.
        self.serial = dict(serial) if serial else None
        self.framer = framer or ("rtu" if serial else wallbox.profile.framer)
        self.unit_id = wallbox.profile.unit_id if unit_id is None else unit_id
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._answering = asyncio.Event()
        self._answering.set()

    async def answering(self) -> None:
        """Wait while muted (a device that stopped answering keeps its socket open)."""
        await self._answering.wait()

    def mute(self, muted: bool = True) -> None:
        """Stop (or resume) answering requests, keeping connections open."""
        if muted:
            self._answering.clear()
        else:
            self._answering.set()

    async def start(self) -> int:
        """Listen; returns the port (a free one when port was 0)."""
        server: ModbusTcpServer | ModbusSerialServer
        if self.serial is not None:
            server = ModbusSerialServer(
                _Context(self),
                framer=FRAMERS[self.framer],
                port=self.serial["port"],
                baudrate=self.serial.get("baudrate", 19200),
                bytesize=self.serial.get("bytesize", 8),
                parity=self.serial.get("parity", "N"),
                stopbits=self.serial.get("stopbits", 1),
            )
        else:
            server = ModbusTcpServer(
                _Context(self), framer=FRAMERS[self.framer], address=(self.host, self.port)
            )
        await server.serve_forever(background=True)
        self._server = server
        transport: Any = server.transport
        sockets = getattr(transport, "sockets", None) or ()
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Close the listener and every connection."""
        self._answering.set()
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
            # Let the transports finish closing before the port is reused.
            await asyncio.sleep(0)


async def simulate_until_stopped(
    profile: Profile,
    host: str,
    port: int,
    *,
    framer: str | None = None,
    speed: float = 1.0,
    scenario: str = "cycle",
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run one simulated wallbox until stop is set (or duration passes)."""
    wallbox = SimulatedWallbox(profile, scenario=scenario, speed=speed)
    server = SimulatorServer(wallbox, host, port, framer=framer)
    bound = await server.start()
    print(
        f"Simulating {profile.name} ({profile.key}) on {host}:{bound}, unit id "
        f"{server.unit_id}, {server.framer} framing",
        flush=True,
    )
    stop = stop or asyncio.Event()
    try:
        if duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
    finally:
        await server.stop()
    return 0
