"""One Modbus TCP (or RTU over TCP) connection to one device: reads, writes, clear errors.

pymodbus's asyncio client does the framing; this wraps it so that every failure is one of
three errors (the device is unreachable, it answered a Modbus exception, it answered
nonsense), every request is bounded in time, and a broken connection is closed so the
next request starts clean.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from hub.exceptions import HubError
from integrations.modbus.profile import COIL, DISCRETE, HOLDING, INPUT

_LOGGER = logging.getLogger(__name__)

# Modbus exception codes (the protocol's own words for them).
EXCEPTION_CODES: Final = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
FRAMERS: Final = {"socket": FramerType.SOCKET, "rtu": FramerType.RTU}


class ModbusError(HubError):
    """Root of the Modbus integration's errors."""


class DeviceUnavailableError(ModbusError):
    """The device cannot be reached now (no connection, no answer in time)."""

    http_status = 503
    error_code = "unavailable"


class ModbusExceptionError(ModbusError):
    """The device answered with a Modbus exception (a rejected read or write)."""

    http_status = 502
    error_code = "rejected"

    def __init__(self, what: str, code: int) -> None:
        self.code = code
        name = EXCEPTION_CODES.get(code, "unknown exception")
        super().__init__(f"{what}: the device answered Modbus exception {code} ({name})")


class ModbusClient:
    """A reusable connection to host:port; reconnects only when told to."""

    def __init__(
        self,
        host: str,
        port: int,
        unit_id: int,
        *,
        framer: str = "socket",
        timeout: float = 3.0,
        serial: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.unit_id = unit_id
        self.framer = framer
        self.timeout = timeout
        # A serial line instead of TCP: {"port": "/dev/ttyUSB0", "baudrate": 9600, ...}.
        self.serial = dict(serial) if serial else None
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<ModbusClient {self.where} unit {self.unit_id}>"

    @property
    def where(self) -> str:
        """host:port, or the serial device."""
        return str(self.serial["port"]) if self.serial else f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether a connection is open."""
        return self._client is not None and bool(self._client.connected)

    async def connect(self) -> None:
        """Open the connection (a no-op when open); DeviceUnavailableError when refused."""
        if self.connected:
            return
        self.close()
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if self.serial is not None:
            client = AsyncModbusSerialClient(
                self.serial["port"],
                framer=FRAMERS[self.framer],
                baudrate=self.serial.get("baudrate", 19200),
                bytesize=self.serial.get("bytesize", 8),
                parity=self.serial.get("parity", "N"),
                stopbits=self.serial.get("stopbits", 1),
                timeout=self.timeout,
                retries=0,
                reconnect_delay=0,
                reconnect_delay_max=0,
            )
        else:
            client = AsyncModbusTcpClient(
                self.host,
                port=self.port,
                framer=FRAMERS[self.framer],
                timeout=self.timeout,
                retries=0,
                # Reconnecting is the coordinator's business, with its own backoff.
                reconnect_delay=0,
                reconnect_delay_max=0,
            )
        try:
            async with asyncio.timeout(self.timeout + 0.5):
                ok = await client.connect()
        except (TimeoutError, OSError, ModbusException) as err:
            client.close()
            raise DeviceUnavailableError(f"cannot connect to {self.where}: {err}") from err
        if not ok:
            client.close()
            raise DeviceUnavailableError(f"cannot connect to {self.where}")
        self._client = client

    def close(self) -> None:
        """Close the connection, if open."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            client = self._client
            if client is None or not client.connected:
                raise DeviceUnavailableError(f"{what}: not connected to {self.where}")
            try:
                async with asyncio.timeout(self.timeout + 0.5):
                    response = await getattr(client, method)(
                        *args, device_id=self.unit_id, **kwargs
                    )
            except (TimeoutError, OSError, ModbusException) as err:
                # Whatever arrives late on this connection would answer the wrong request.
                self.close()
                raise DeviceUnavailableError(f"{what}: no answer ({err or 'timeout'})") from err
        if response is None:
            self.close()
            raise DeviceUnavailableError(f"{what}: no answer")
        if response.isError():
            raise ModbusExceptionError(what, int(getattr(response, "exception_code", 0) or 0))
        return response

    async def read(self, function: str, address: int, count: int) -> list[int]:
        """Read count registers (or bits) of a function from address."""
        what = f"read {function} {address}+{count}"
        if function == HOLDING:
            response = await self._call(what, "read_holding_registers", address, count=count)
            words = list(response.registers)
        elif function == INPUT:
            response = await self._call(what, "read_input_registers", address, count=count)
            words = list(response.registers)
        elif function == COIL:
            response = await self._call(what, "read_coils", address, count=count)
            words = [int(bool(bit)) for bit in response.bits[:count]]
        elif function == DISCRETE:
            response = await self._call(what, "read_discrete_inputs", address, count=count)
            words = [int(bool(bit)) for bit in response.bits[:count]]
        else:
            raise ValueError(f"unknown function {function!r}")
        if len(words) != count:
            raise ModbusError(f"{what}: the device answered {len(words)} values")
        return words

    async def write(self, function: str, address: int, values: Sequence[int]) -> None:
        """Write registers (one or several) or a coil at address."""
        what = f"write {function} {address}={list(values)}"
        if function == COIL:
            await self._call(what, "write_coil", address, bool(values[0]))
        elif function == HOLDING and len(values) == 1:
            await self._call(what, "write_register", address, int(values[0]))
        elif function == HOLDING:
            await self._call(what, "write_registers", address, [int(v) for v in values])
        else:
            raise ModbusError(f"{what}: a {function} register cannot be written")
