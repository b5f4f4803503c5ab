"""Virtual OCPP 1.6 and 2.0.1 charge points that talk to a central system over websockets.

Each SimulatedChargePoint is a real OCPP client: the ``ocpp`` package's ChargePoint, with
its schema validation on, over an aiohttp websocket. It boots, reports its connectors,
heartbeats, answers the central system's calls, charges with plausible meter values and
plays a scenario (see SCENARIOS). ``run_simulation`` runs a fleet of them and ``evhub
simulate`` is its command line.

Every wait is divided by ``speed``, the intervals the central system hands out included, so
tests run whole scenarios in a fraction of a second; energy follows the simulated clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import itertools
import json
import logging
import random
import re
import signal
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, cast

import aiohttp
from ocpp.exceptions import OCPPError  # type: ignore[import-untyped, unused-ignore]
from ocpp.routing import on  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import ChargePoint as _V16ChargePoint  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call as v16_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call_result as v16_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import ChargePoint as _V201ChargePoint  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

if TYPE_CHECKING:
    import ssl as ssl_lib

_LOGGER = logging.getLogger(__name__)
# Every OCPP frame in and out, logged by the ocpp package at INFO; the CLI quiets it.
WIRE_LOGGER: Final = logging.getLogger(f"{__name__}.wire")

VERSION_16: Final = "1.6"
VERSION_201: Final = "2.0.1"
SUBPROTOCOLS: Final[dict[str, str]] = {VERSION_16: "ocpp1.6", VERSION_201: "ocpp2.0.1"}

SCENARIO_IDLE: Final = "idle"
SCENARIO_NORMAL: Final = "normal"
SCENARIO_FAULT: Final = "fault"
SCENARIO_OFFLINE: Final = "offline"
SCENARIO_REBOOT: Final = "reboot"
SCENARIO_WRONG_PASSWORD: Final = "wrong-password"
SCENARIO_TAMPER: Final = "tamper"
SCENARIOS: Final = (
    SCENARIO_IDLE,
    SCENARIO_NORMAL,
    SCENARIO_FAULT,
    SCENARIO_OFFLINE,
    SCENARIO_REBOOT,
    SCENARIO_WRONG_PASSWORD,
    SCENARIO_TAMPER,
)

# Timings in simulated seconds (divided by speed).
BACKOFF_INITIAL: Final = 1.0
BACKOFF_MAX: Final = 60.0
DEFAULT_HEARTBEAT_INTERVAL: Final = 300
BOOT_RETRY_INTERVAL: Final = 30
REBOOT_TIME: Final = 2.0
FINISHING_TIME: Final = 2.0
STEP_TIME: Final = 1.0
SCENARIO_TICK: Final = 1.0
NORMAL_IDLE: Final = (5.0, 15.0)
NORMAL_SESSION: Final = (30.0, 120.0)
# A failed start (normal scenario, failed_start_rate): a driver plugs in, no transaction
# starts, and the connector is free again after this long.
FAILED_START_TIME: Final = 5.0
FAULT_FIRST: Final = 5.0
FAULT_EVERY: Final = 30.0
FAULT_FOR: Final = 10.0
FAULT_CODES: Final = (
    "GroundFailure",
    "OverCurrentFailure",
    "HighTemperature",
    "EVCommunicationError",
)
OFFLINE_EVERY: Final = 30.0
OFFLINE_FOR: Final = 15.0
REBOOT_EVERY: Final = 60.0
REBOOT_REASON: Final = "Watchdog"
TAMPER_FIRST: Final = 5.0
TAMPER_EVERY: Final = 60.0
TAMPER_EVENT: Final = "TamperDetectionActivated"
# How long the ocpp ChargePoint waits for the central system's answer, in real seconds.
RESPONSE_TIMEOUT: Final = 30
RAMP_STEP: Final = 0.01

# The electrical model: three phases, 230 V, 32 A, an EV with a 60 kWh battery.
PHASES: Final = 3
NOMINAL_VOLTAGE: Final = 230.0
MAX_POWER_W: Final = PHASES * NOMINAL_VOLTAGE * 32
EV_CAPACITY_WH: Final = 60_000.0

STATUS_AVAILABLE: Final = "Available"
STATUS_PREPARING: Final = "Preparing"
STATUS_CHARGING: Final = "Charging"
STATUS_FINISHING: Final = "Finishing"
STATUS_UNAVAILABLE: Final = "Unavailable"
STATUS_FAULTED: Final = "Faulted"
ERROR_NONE: Final = "NoError"

# A 1.6 StopTransaction reason → (2.0.1 stoppedReason, 2.0.1 triggerReason).
_STOP_REASONS_201: Final[dict[str, tuple[str, str]]] = {
    "Remote": ("Remote", "RemoteStop"),
    "Local": ("Local", "StopAuthorized"),
    "HardReset": ("ImmediateReset", "ResetCommand"),
    "SoftReset": ("ImmediateReset", "ResetCommand"),
    "Reboot": ("Reboot", "AbnormalCondition"),
    "UnlockCommand": ("Other", "UnlockCommand"),
    "DeAuthorized": ("DeAuthorized", "Deauthorized"),
    "EVDisconnected": ("EVDisconnected", "EVCommunicationLost"),
    "PowerLoss": ("PowerLoss", "AbnormalCondition"),
    "Other": ("Other", "AbnormalCondition"),
}
# 1.6 connector statuses (evhub's vocabulary) → 2.0.1 connector statuses.
_STATUS_201: Final[dict[str, str]] = {
    STATUS_AVAILABLE: "Available",
    STATUS_UNAVAILABLE: "Unavailable",
    STATUS_FAULTED: "Faulted",
    "Reserved": "Reserved",
}

_F = TypeVar("_F", bound=Callable[..., Any])
_FollowUp = Callable[[], Coroutine[Any, Any, None]]


def _on(action: str) -> Callable[[_F], _F]:
    """Typed ``ocpp.routing.on``."""
    return cast("Callable[[_F], _F]", on(action))


class SimulatorError(Exception):
    """Root of the simulator's errors."""


class ConnectionClosedError(SimulatorError):
    """The websocket closed; raised by recv and send."""


class SubprotocolError(SimulatorError):
    """The central system did not agree on the OCPP subprotocol."""


class _WebSocket(Protocol):
    """What the adapter needs of aiohttp's client and server websockets."""

    @property
    def closed(self) -> bool: ...

    @property
    def close_code(self) -> int | None: ...

    async def send_str(self, data: str, compress: int | None = None) -> None: ...

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage: ...


class WebSocketAdapter:
    """Give the ocpp ChargePoint the ``send``/``recv`` it expects, over an aiohttp websocket.

    Works for both ends: ``aiohttp.ClientWebSocketResponse`` and ``web.WebSocketResponse``.
    """

    __slots__ = ("_ws",)

    def __init__(self, ws: Any) -> None:
        self._ws = cast("_WebSocket", ws)

    async def send(self, message: str) -> None:
        """Send one OCPP frame."""
        if self._ws.closed:
            raise ConnectionClosedError("websocket is closed")
        try:
            await self._ws.send_str(message)
        except ConnectionError as err:
            raise ConnectionClosedError(f"websocket is closed: {err}") from err

    async def recv(self) -> str:
        """Return the next OCPP frame; raise ConnectionClosedError once the socket closes."""
        while True:
            msg = await self._ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                return cast("str", msg.data)
            if msg.type is aiohttp.WSMsgType.BINARY:
                return cast("bytes", msg.data).decode()
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                raise ConnectionClosedError(f"websocket closed (code {self._ws.close_code})")
            if msg.type is aiohttp.WSMsgType.ERROR:
                raise ConnectionClosedError(f"websocket error: {msg.data}")
            # PING/PONG are answered by aiohttp itself.


async def _cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until they are done.

    A task that swallowed its cancellation is cancelled again: Python 3.11's
    asyncio.wait_for, which the ocpp package awaits answers with, returns the answer instead
    of raising when the cancellation and the answer arrive together.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.1)


def basic_auth_header(login: str, password: str) -> str:
    """Return the value of an HTTP Basic ``Authorization`` header."""
    token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bump_version(version: str) -> str:
    """Return the version with its last number incremented (1.0.0 → 1.0.1)."""
    match = re.search(r"(\d+)(?!.*\d)", version)
    if match is None:
        return f"{version}.1"
    return f"{version[: match.start()]}{int(match.group(1)) + 1}{version[match.end() :]}"


@dataclass(slots=True)
class _Setting:
    """One configuration key (1.6) or device model variable (2.0.1)."""

    value: str
    readonly: bool = False
    kind: type = str


@dataclass(slots=True)
class _Profile:
    """A charging profile reduced to what the simulator honours: a power limit."""

    id: int
    connector: int  # 0 = the whole station
    purpose: str
    stack_level: int
    limit_w: float


@dataclass(slots=True)
class _Session:
    """A charging session on one connector."""

    id_tag: str
    remote_start_id: int | None = None
    transaction_id: int | str | None = None
    meter_start: int = 0
    ends_at: float | None = None
    seq_no: int = 0


@dataclass(slots=True)
class _Connector:
    """One connector (1.6) or EVSE with one connector (2.0.1)."""

    id: int
    energy_wh: float
    status: str = STATUS_AVAILABLE
    error_code: str = ERROR_NONE
    operative: bool = True
    pending_operative: bool | None = None
    session: _Session | None = None
    power_w: float = 0.0
    soc: float = 0.0
    last_sample: float = 0.0
    next_start: float | None = None
    voltages: tuple[float, float, float] = (NOMINAL_VOLTAGE,) * 3


@dataclass(slots=True)
class _Sample:
    """One set of measurements on a connector."""

    energy_wh: int
    power_w: float
    currents: tuple[float, float, float]
    voltages: tuple[float, float, float]
    soc: float | None


def _limit_w(schedule: dict[str, Any]) -> float:
    """Return the first period's limit of a charging schedule in W."""
    period = schedule["charging_schedule_period"][0]
    limit = float(period["limit"])
    if schedule["charging_rate_unit"] == "A":
        return limit * NOMINAL_VOLTAGE * int(period.get("number_phases") or PHASES)
    return limit


class SimulatedChargePoint:
    """One virtual charge point: connects, boots, answers and plays its scenario."""

    def __init__(
        self,
        cp_id: str,
        url: str,
        *,
        version: str = VERSION_16,
        connectors: int = 2,
        scenario: str = SCENARIO_IDLE,
        password: str | None = None,
        ssl: ssl_lib.SSLContext | None = None,
        vendor: str = "evhub",
        model: str = "Simulator",
        serial: str | None = None,
        firmware_version: str = "1.0.0",
        meter_interval: float = 10.0,
        speed: float = 1.0,
        start_delay: float = 0.0,
        session: aiohttp.ClientSession | None = None,
        seed: int | str | None = None,
        failed_start_rate: float = 0.0,
    ) -> None:
        if version not in SUBPROTOCOLS:
            raise ValueError(f"unknown OCPP version {version!r}; use one of {list(SUBPROTOCOLS)}")
        scenarios = tuple(name.strip() for name in scenario.split(",") if name.strip())
        unknown = [name for name in scenarios if name not in SCENARIOS]
        if unknown or not scenarios:
            raise ValueError(f"unknown scenario {scenario!r}; use one of {list(SCENARIOS)}")
        if connectors < 1:
            raise ValueError("a charge point needs at least one connector")
        if speed <= 0:
            raise ValueError("speed must be positive")
        if not 0.0 <= failed_start_rate <= 1.0:
            raise ValueError("failed_start_rate must be between 0 and 1")
        self.failed_start_rate = failed_start_rate
        self.id = cp_id
        self.version = version
        self.scenarios = scenarios
        self.url = f"{url.rstrip('/')}/{cp_id}"
        self.vendor = vendor
        self.model = model
        self.serial = serial or f"SN-{cp_id}"[:25]
        self.firmware_version = firmware_version
        self.meter_interval = meter_interval
        self.speed = speed
        self.heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
        self._password = password
        self._ssl = ssl
        self._start_delay = start_delay
        self._session = session
        self._rng = random.Random(cp_id if seed is None else seed)

        # What happened, for tests and logs.
        self.received_calls: list[tuple[str, dict[str, Any]]] = []
        self.transaction_ids: list[int | str] = []
        self.connected = asyncio.Event()
        self.booted = asyncio.Event()
        self.boot_status: str | None = None
        self.boot_count = 0
        self.connect_attempts = 0
        self.refused = 0
        self.firmware_status = "Idle"

        self._connectors = {
            n: _Connector(n, energy_wh=float(self._rng.randint(100_000, 5_000_000)))
            for n in range(1, connectors + 1)
        }
        self._station_operative = True
        self._profiles: list[_Profile] = []
        self._settings = self._default_settings()
        self._registered = False  # BootNotification accepted since the last (re)boot
        self._boot_reason = "PowerUp"
        self._reset_scheduled = False
        self._uploading = False
        self._events = itertools.count(1)
        self._due: dict[str, float] = {}
        self._fault_count = 0
        self._task: asyncio.Task[None] | None = None
        self._link: _V16Link | _V201Link | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._followups: list[_FollowUp] = []
        self._drop = asyncio.Event()
        self._reconnect_after: float | None = None
        self._close_code = aiohttp.WSCloseCode.OK

    def __repr__(self) -> str:
        return f"<SimulatedChargePoint {self.id} OCPP {self.version} {','.join(self.scenarios)}>"

    # -- public API ---------------------------------------------------------------------

    @property
    def status(self) -> dict[int, str]:
        """Connector id → status in OCPP 1.6 words (evhub's vocabulary); 1.6 includes 0."""
        statuses = {n: c.status for n, c in self._connectors.items()}
        if self.version == VERSION_16:
            statuses[0] = STATUS_AVAILABLE if self._station_operative else STATUS_UNAVAILABLE
        return dict(sorted(statuses.items()))

    @property
    def power_w(self) -> dict[int, float]:
        """Connector id → power drawn at the last sample, in W."""
        return {n: c.power_w for n, c in self._connectors.items()}

    def start(self) -> None:
        """Start connecting in the background; stop() ends it."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ocpp-simulator-{self.id}")

    async def stop(self) -> None:
        """Close the connection and end every task of this charge point."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("%s: stopped with an error", self.id, exc_info=task.exception())

    async def __aenter__(self) -> SimulatedChargePoint:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- connection ---------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)

    def _backoff(self, failures: int) -> float:
        delay = min(BACKOFF_MAX, BACKOFF_INITIAL * 2.0 ** max(failures - 1, 0))
        return delay * self._rng.uniform(1.0, 1.25)

    async def _run(self) -> None:
        own_session = self._session is None
        session = self._session or aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15)
        )
        failures = 0
        try:
            if self._start_delay:
                await self._sleep(self._start_delay)
            while True:
                self._reconnect_after = None
                registered = False
                try:
                    registered = await self._connect_once(session)
                except aiohttp.WSServerHandshakeError as err:
                    self.refused += 1
                    _LOGGER.warning(
                        "%s: refused by the central system: HTTP %s %s",
                        self.id,
                        err.status,
                        err.message,
                    )
                except (aiohttp.ClientError, OSError, TimeoutError, SimulatorError) as err:
                    _LOGGER.warning("%s: cannot connect to %s: %s", self.id, self.url, err)
                except Exception:
                    # A simulator bug: keep this charge point alive, the others run on.
                    _LOGGER.exception("%s: connection failed", self.id)
                delay = self._reconnect_after
                if delay is None:
                    failures = 0 if registered else failures + 1
                    delay = self._backoff(failures)
                _LOGGER.info("%s: reconnecting in %.1fs", self.id, delay / self.speed)
                await self._sleep(delay)
        finally:
            if own_session:
                await session.close()

    def _connect_password(self) -> str | None:
        if SCENARIO_WRONG_PASSWORD in self.scenarios:
            return f"wrong-{self._password or 'password'}"
        return self._password

    async def _connect_once(self, session: aiohttp.ClientSession) -> bool:
        """Connect and serve until the socket closes; return whether it got registered."""
        self.connect_attempts += 1
        subprotocol = SUBPROTOCOLS[self.version]
        headers = {}
        password = self._connect_password()
        if password is not None:
            headers["Authorization"] = basic_auth_header(self.id, password)
        _LOGGER.debug("%s: connecting to %s", self.id, self.url)
        async with session.ws_connect(
            self.url,
            protocols=[subprotocol],
            headers=headers,
            ssl=self._ssl if self._ssl is not None else True,
            autoping=True,
        ) as ws:
            if ws.protocol != subprotocol:
                raise SubprotocolError(
                    f"the central system did not accept subprotocol {subprotocol!r} "
                    f"(it answered {ws.protocol!r})"
                )
            return await self._serve(ws)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        adapter = WebSocketAdapter(ws)
        link: _V16Link | _V201Link
        link = _V16Link(self, adapter) if self.version == VERSION_16 else _V201Link(self, adapter)
        self._link = link
        self._drop = asyncio.Event()
        self._close_code = aiohttp.WSCloseCode.OK
        self.connected.set()
        _LOGGER.info("%s: connected to %s (OCPP %s)", self.id, self.url, self.version)
        if SCENARIO_WRONG_PASSWORD in self.scenarios:
            _LOGGER.error(
                "%s: the central system accepted a wrong password; it should refuse it", self.id
            )
        reader = asyncio.create_task(link.start(), name=f"ocpp-simulator-{self.id}-reader")
        dropped = asyncio.create_task(self._drop.wait(), name=f"ocpp-simulator-{self.id}-drop")
        self._spawn(self._online(link), "online")
        try:
            await asyncio.wait({reader, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            registered = self.booted.is_set()
            self.connected.clear()
            self.booted.clear()
            self._link = None
            self._followups.clear()
            await _cancel_and_wait([reader, dropped, *self._tasks])
            self._tasks.clear()
            self._release_unstarted()
            await ws.close(code=self._close_code)
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            _LOGGER.warning("%s: disconnected: %s", self.id, reader.exception())
        else:
            _LOGGER.info("%s: disconnected", self.id)
        return registered

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a task that belongs to the current connection."""
        task = asyncio.create_task(self._guard(coro, name), name=f"ocpp-simulator-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except ConnectionClosedError as err:
            _LOGGER.debug("%s: %s ended: %s", self.id, name, err)
        except (OCPPError, TimeoutError) as err:
            _LOGGER.warning("%s: %s failed: %r", self.id, name, err)
        except Exception:
            _LOGGER.exception("%s: %s failed", self.id, name)

    def _later(self, followup: _FollowUp) -> None:
        """Run followup once the answer to the call being handled is sent."""
        self._followups.append(followup)

    def _run_followups(self) -> None:
        followups, self._followups = self._followups, []
        for followup in followups:
            self._spawn(followup(), "follow-up")

    def _note_call(self, raw: str) -> None:
        with contextlib.suppress(ValueError, TypeError):
            message = json.loads(raw)
            if isinstance(message, list) and len(message) == 4 and message[0] == 2:
                self.received_calls.append((str(message[2]), dict(message[3])))
                _LOGGER.info("%s: %s from the central system", self.id, message[2])

    def _disconnect(self, *, reconnect_after: float, code: int = aiohttp.WSCloseCode.OK) -> None:
        """Close the socket and reconnect after the given (simulated) time."""
        self._reconnect_after = reconnect_after
        self._close_code = aiohttp.WSCloseCode(code)
        self._drop.set()

    async def _reboot(self, reason: str, stop_reason: str = "Reboot") -> None:
        """Stop the sessions, drop the socket, come back and boot with reason."""
        for connector in self._connectors.values():
            if connector.session is not None and connector.session.transaction_id is not None:
                await self._stop_session(connector, stop_reason, finishing=False)
        self._release_unstarted()
        _LOGGER.info("%s: rebooting (%s)", self.id, reason)
        self._registered = False
        self._boot_reason = reason
        self._reset_scheduled = False
        self._disconnect(reconnect_after=REBOOT_TIME, code=aiohttp.WSCloseCode.GOING_AWAY)

    # -- online life --------------------------------------------------------------------

    async def _online(self, link: _V16Link | _V201Link) -> None:
        if self._registered:
            # Back after a network outage, not a reboot: no BootNotification, statuses only.
            _LOGGER.info("%s: back on line", self.id)
        else:
            await self._boot(link)
        await self._report_all_statuses(link)
        self.booted.set()
        self._spawn(self._heartbeats(link), "heartbeat")
        self._spawn(self._meter_loop(), "meter-values")
        for name in self.scenarios:
            scenario = self._scenario(name)
            if scenario is not None:
                self._spawn(scenario, f"scenario-{name}")

    async def _boot(self, link: _V16Link | _V201Link) -> None:
        while True:
            try:
                status, interval = await link.send_boot(self._boot_reason)
            except (OCPPError, TimeoutError) as err:
                _LOGGER.warning("%s: BootNotification failed: %r", self.id, err)
                await self._sleep(BOOT_RETRY_INTERVAL)
                continue
            self.boot_count += 1
            self.boot_status = status
            if status == "Accepted":
                self._set_heartbeat_interval(interval or DEFAULT_HEARTBEAT_INTERVAL)
                self._registered = True
                self._boot_reason = "PowerUp"
                _LOGGER.info(
                    "%s: boot accepted, heartbeat every %ss", self.id, self.heartbeat_interval
                )
                return
            retry = interval or BOOT_RETRY_INTERVAL
            _LOGGER.info("%s: boot %s, retrying in %ss", self.id, status, retry)
            await self._sleep(retry)

    async def _heartbeats(self, link: _V16Link | _V201Link) -> None:
        while True:
            await self._sleep(self.heartbeat_interval)
            try:
                await link.send_heartbeat()
            except (OCPPError, TimeoutError) as err:
                _LOGGER.warning("%s: Heartbeat failed: %r", self.id, err)

    async def _meter_loop(self) -> None:
        while True:
            await self._sleep(self.meter_interval)
            for connector in self._connectors.values():
                link = self._link
                if link is None or connector.session is None:
                    continue
                if connector.session.transaction_id is None:
                    continue
                try:
                    await link.send_meter_values(connector, "Sample.Periodic")
                except (OCPPError, TimeoutError) as err:
                    _LOGGER.warning("%s: meter values failed: %r", self.id, err)

    def _set_heartbeat_interval(self, seconds: float) -> None:
        self.heartbeat_interval = seconds
        key = "HeartbeatInterval"
        if self.version == VERSION_16:
            self._settings[key].value = str(int(seconds))
        else:
            self._settings[f"OCPPCommCtrlr/{key}"].value = str(int(seconds))

    # -- statuses -----------------------------------------------------------------------

    async def _report_all_statuses(self, link: _V16Link | _V201Link) -> None:
        if isinstance(link, _V16Link):
            await link.send_station_status(self._station_operative)
        for connector in self._connectors.values():
            await link.send_status(connector, force=True)

    async def _set_status(
        self, connector: _Connector, status: str, error_code: str = ERROR_NONE
    ) -> None:
        if (connector.status, connector.error_code) != (status, error_code):
            _LOGGER.info(
                "%s: connector %s %s%s",
                self.id,
                connector.id,
                status,
                "" if error_code == ERROR_NONE else f" ({error_code})",
            )
        connector.status = status
        connector.error_code = error_code
        if self._link is not None:
            await self._link.send_status(connector)

    def _idle_status(self, connector: _Connector) -> str:
        operative = connector.operative and self._station_operative
        return STATUS_AVAILABLE if operative else STATUS_UNAVAILABLE

    def _connector(self, number: int | None) -> _Connector | None:
        if number is None:
            return None
        return self._connectors.get(int(number))

    # -- sessions -----------------------------------------------------------------------

    def _targets(self, number: int | None) -> list[_Connector] | None:
        """Return the connectors a request means (none or 0: all), None if it is unknown."""
        if not number:
            return list(self._connectors.values())
        connector = self._connector(number)
        return None if connector is None else [connector]

    def _free_connector(self, number: int | None) -> _Connector | None:
        """Return the connector a session may start on (the given one or the first free)."""
        for connector in self._targets(number) or []:
            if connector.session is None and connector.status == STATUS_AVAILABLE:
                return connector
        return None

    def _reserve(
        self, connector: _Connector, id_tag: str, remote_start_id: int | None = None
    ) -> _Session:
        """Claim the connector for a session at once, before its transaction starts."""
        session = _Session(
            id_tag=id_tag, remote_start_id=remote_start_id, meter_start=int(connector.energy_wh)
        )
        connector.session = session
        connector.soc = self._rng.uniform(10.0, 60.0)
        connector.last_sample = asyncio.get_running_loop().time()
        return session

    def _release_unstarted(self) -> None:
        """Free connectors claimed for a session whose transaction never started."""
        for connector in self._connectors.values():
            if connector.session is not None and connector.session.transaction_id is None:
                connector.session = None
                connector.status = self._idle_status(connector)

    async def _start_session(self, connector: _Connector, trigger: str = "Authorized") -> None:
        """Start the transaction of the session reserved on the connector."""
        session = connector.session
        link = self._link
        if session is None or link is None:
            return
        try:
            await self._set_status(connector, STATUS_PREPARING)
            accepted = await link.start_transaction(connector, trigger)
        except BaseException:
            if session.transaction_id is None and connector.session is session:
                connector.session = None
                connector.status = self._idle_status(connector)
            raise
        assert session.transaction_id is not None
        self.transaction_ids.append(session.transaction_id)
        _LOGGER.info(
            "%s: connector %s session %s started for %s",
            self.id,
            connector.id,
            session.transaction_id,
            session.id_tag,
        )
        if not accepted:
            _LOGGER.info("%s: %s not authorized, stopping", self.id, session.id_tag)
            await self._stop_session(connector, "DeAuthorized")
            return
        await self._set_status(connector, STATUS_CHARGING)

    async def _stop_session(
        self, connector: _Connector, reason: str, *, finishing: bool = True
    ) -> None:
        session = connector.session
        link = self._link
        if session is None or link is None:
            return
        self._advance(connector)
        await link.stop_transaction(connector, reason)
        connector.session = None
        connector.power_w = 0.0
        self._profiles = [
            p for p in self._profiles if not (p.purpose == "Tx" and p.connector == connector.id)
        ]
        _LOGGER.info(
            "%s: connector %s session %s stopped (%s), %.0f Wh",
            self.id,
            connector.id,
            session.transaction_id,
            reason,
            connector.energy_wh - session.meter_start,
        )
        if connector.pending_operative is not None:
            connector.operative = connector.pending_operative
            connector.pending_operative = None
        if finishing:
            await self._set_status(connector, STATUS_FINISHING)
            await self._sleep(FINISHING_TIME)
        await self._set_status(connector, self._idle_status(connector))
        if self._reset_scheduled and all(c.session is None for c in self._connectors.values()):
            await self._reboot("RemoteReset")

    def _power_limit(self, connector: _Connector) -> float:
        limit = MAX_POWER_W
        for profile in self._profiles:
            if profile.connector in (0, connector.id):
                limit = min(limit, profile.limit_w)
        return max(limit, 0.0)

    def _advance(self, connector: _Connector) -> None:
        """Move the meter on to now."""
        now = asyncio.get_running_loop().time()
        elapsed = max(now - connector.last_sample, 0.0) * self.speed
        connector.last_sample = now
        if connector.session is None or connector.status != STATUS_CHARGING:
            connector.power_w = 0.0
            return
        power = self._power_limit(connector)
        if connector.soc >= 80.0:
            # The EV tapers towards full.
            power *= max(100.0 - connector.soc, 0.0) / 20.0
        energy = power * elapsed / 3600.0
        connector.energy_wh += energy
        connector.soc = min(100.0, connector.soc + energy / EV_CAPACITY_WH * 100.0)
        connector.power_w = power

    def _sample(self, connector: _Connector, *, stopped: bool = False) -> _Sample:
        """Measure the connector now; a stopped session draws no more power."""
        self._advance(connector)
        if stopped:
            connector.power_w = 0.0
        voltages = (
            round(NOMINAL_VOLTAGE + self._rng.uniform(-3.0, 3.0), 1),
            round(NOMINAL_VOLTAGE + self._rng.uniform(-3.0, 3.0), 1),
            round(NOMINAL_VOLTAGE + self._rng.uniform(-3.0, 3.0), 1),
        )
        currents = (
            round(connector.power_w / PHASES / voltages[0], 2),
            round(connector.power_w / PHASES / voltages[1], 2),
            round(connector.power_w / PHASES / voltages[2], 2),
        )
        return _Sample(
            energy_wh=int(connector.energy_wh),
            power_w=round(connector.power_w, 1),
            currents=currents,
            voltages=voltages,
            soc=round(connector.soc, 1) if connector.session is not None else None,
        )

    # -- what the central system asks ----------------------------------------------------

    def _change_availability(self, target: int, operative: bool) -> str:
        """Apply ChangeAvailability (0 = the station); return Accepted, Scheduled or Rejected."""
        if target != 0 and target not in self._connectors:
            return "Rejected"
        connectors = list(self._connectors.values()) if target == 0 else [self._connectors[target]]
        busy = [c for c in connectors if c.session is not None]
        if target == 0:
            self._station_operative = operative
        for connector in connectors:
            if connector.session is not None:
                connector.pending_operative = operative
            else:
                connector.operative = operative
        self._later(lambda: self._report_availability(target, connectors))
        return "Scheduled" if busy and not operative else "Accepted"

    async def _report_availability(self, target: int, connectors: list[_Connector]) -> None:
        link = self._link
        if isinstance(link, _V16Link) and target == 0:
            await link.send_station_status(self._station_operative)
        for connector in connectors:
            if connector.session is None and connector.status != STATUS_FAULTED:
                await self._set_status(connector, self._idle_status(connector))

    def _remote_start(
        self,
        number: int | None,
        id_tag: str,
        remote_start_id: int | None = None,
        profile: _Profile | None = None,
    ) -> bool:
        connector = self._free_connector(number)
        if connector is None:
            return False
        if profile is not None:
            profile.connector = connector.id
            self._profiles.append(profile)
        self._reserve(connector, id_tag, remote_start_id)
        self._later(lambda: self._start_session(connector, "RemoteStart"))
        return True

    def _remote_stop(self, transaction_id: int | str) -> bool:
        found = [
            c
            for c in self._connectors.values()
            if c.session is not None and c.session.transaction_id == transaction_id
        ]
        if not found:
            return False
        self._later(lambda: self._stop_session(found[0], "Remote"))
        return True

    def _firmware_report(self) -> str:
        """The firmware status to report on request: Idle unless an update is under way."""
        busy = self.firmware_status in ("Downloading", "Downloaded", "Installing")
        return self.firmware_status if busy else "Idle"

    def _set_profile(self, profile: _Profile) -> str:
        if profile.connector != 0 and profile.connector not in self._connectors:
            return "Rejected"
        if profile.purpose == "Tx":
            connector = self._connectors.get(profile.connector)
            if connector is None or connector.session is None:
                return "Rejected"
        slot = (profile.connector, profile.purpose, profile.stack_level)
        self._profiles = [
            p
            for p in self._profiles
            if p.id != profile.id and (p.connector, p.purpose, p.stack_level) != slot
        ]
        self._profiles.append(profile)
        _LOGGER.info(
            "%s: %s limit %.0f W on connector %s",
            self.id,
            profile.purpose,
            profile.limit_w,
            profile.connector,
        )
        return "Accepted"

    def _clear_profiles(
        self,
        profile_id: int | None,
        connector: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        def matches(profile: _Profile) -> bool:
            if profile_id is not None:
                return profile.id == profile_id
            return (
                (connector is None or profile.connector == connector)
                and (purpose is None or profile.purpose == purpose)
                and (stack_level is None or profile.stack_level == stack_level)
            )

        kept = [p for p in self._profiles if not matches(p)]
        cleared = len(kept) != len(self._profiles)
        self._profiles = kept
        return "Accepted" if cleared else "Unknown"

    async def _update_firmware(self, request_id: int | None, retrieve: str | None) -> None:
        link = self._link
        if link is None:
            return
        if retrieve:
            with contextlib.suppress(ValueError):
                start = datetime.fromisoformat(retrieve.replace("Z", "+00:00"))
                wait = (start - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    await self._sleep(wait)
        for status in ("Downloading", "Downloaded", "Installing"):
            self.firmware_status = status
            _LOGGER.info("%s: firmware %s", self.id, status)
            await link.send_firmware_status(status, request_id)
            await self._sleep(STEP_TIME)
        self.firmware_version = _bump_version(self.firmware_version)
        self.firmware_status = "Installed"
        _LOGGER.info("%s: firmware %s installed", self.id, self.firmware_version)
        await link.send_firmware_status("Installed", request_id)
        await self._reboot("FirmwareUpdate")

    async def _upload(self, request_id: int | None, diagnostics: bool) -> None:
        link = self._link
        if link is None:
            return
        self._uploading = True
        try:
            await link.send_upload_status("Uploading", request_id, diagnostics)
            await self._sleep(STEP_TIME)
        finally:
            self._uploading = False
        await link.send_upload_status("Uploaded", request_id, diagnostics)

    def _upload_name(self, kind: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{kind}-{self.id}-{stamp}.log"

    def _unlock(self, number: int, *, stop_session: bool) -> str:
        connector = self._connector(number)
        if connector is None:
            return "UnknownConnector"
        if connector.session is not None:
            if not stop_session:
                return "OngoingAuthorizedTransaction"
            self._later(lambda: self._stop_session(connector, "UnlockCommand"))
        return "Unlocked"

    def _apply_setting(self, key: str, value: str) -> str:
        """Change a setting; return Accepted, Rejected or NotSupported."""
        setting = self._settings.get(key)
        if setting is None:
            return "NotSupported"
        if setting.readonly:
            return "Rejected"
        if setting.kind is int:
            try:
                number = int(value)
            except ValueError:
                return "Rejected"
            if number < 0:
                return "Rejected"
            value = str(number)
        elif setting.kind is bool:
            if value.lower() not in ("true", "false"):
                return "Rejected"
            value = value.lower()
        setting.value = value
        name = key.rsplit("/", 1)[-1]
        if name == "HeartbeatInterval":
            self.heartbeat_interval = int(value) or DEFAULT_HEARTBEAT_INTERVAL
        elif name in ("MeterValueSampleInterval", "TxUpdatedInterval") and int(value) > 0:
            self.meter_interval = int(value)
        return "Accepted"

    def _default_settings(self) -> dict[str, _Setting]:
        measurands = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"
        heartbeat = str(DEFAULT_HEARTBEAT_INTERVAL)
        meter = str(int(self.meter_interval))
        # OCPP security profiles: 1 = Basic auth, 2 = Basic auth over TLS.
        profile = "1" if self.url.startswith("ws://") else "2"
        if self._password is None:
            profile = "0"
        if self.version == VERSION_16:
            return {
                "HeartbeatInterval": _Setting(heartbeat, kind=int),
                "MeterValueSampleInterval": _Setting(meter, kind=int),
                "MeterValuesSampledData": _Setting(measurands),
                "NumberOfConnectors": _Setting(str(len(self._connectors)), readonly=True),
                "ConnectionTimeOut": _Setting("60", kind=int),
                "ResetRetries": _Setting("3", kind=int),
                "AuthorizeRemoteTxRequests": _Setting("false", kind=bool),
                "StopTransactionOnInvalidId": _Setting("true", kind=bool),
                "SecurityProfile": _Setting(profile, readonly=True),
                "SupportedFeatureProfiles": _Setting(
                    "Core,FirmwareManagement,SmartCharging,RemoteTrigger", readonly=True
                ),
            }
        return {
            "OCPPCommCtrlr/HeartbeatInterval": _Setting(heartbeat, kind=int),
            "OCPPCommCtrlr/ResetRetries": _Setting("3", kind=int),
            "SampledDataCtrlr/TxUpdatedInterval": _Setting(meter, kind=int),
            "SampledDataCtrlr/TxUpdatedMeasurands": _Setting(measurands),
            "AuthCtrlr/AuthorizeRemoteStart": _Setting("false", kind=bool),
            "SecurityCtrlr/SecurityProfile": _Setting(profile, readonly=True),
            "SecurityCtrlr/Identity": _Setting(self.id, readonly=True),
            "ChargingStation/Model": _Setting(self.model, readonly=True),
            "ChargingStation/VendorName": _Setting(self.vendor, readonly=True),
        }

    def _variable(self, component: str, variable: str) -> tuple[str, _Setting | None]:
        """Find a 2.0.1 variable (names are case-insensitive); return (status, setting)."""
        component_known = False
        for key, setting in self._settings.items():
            comp, var = key.split("/", 1)
            if comp.lower() == component.lower():
                component_known = True
                if var.lower() == variable.lower():
                    return key, setting
        return ("UnknownVariable" if component_known else "UnknownComponent"), None

    # -- scenarios ----------------------------------------------------------------------

    def _scenario(self, name: str) -> Coroutine[Any, Any, None] | None:
        if name == SCENARIO_NORMAL:
            return self._play_normal()
        if name == SCENARIO_FAULT:
            return self._play_fault()
        if name == SCENARIO_OFFLINE:
            return self._play_offline()
        if name == SCENARIO_REBOOT:
            return self._play_reboot()
        if name == SCENARIO_TAMPER:
            return self._play_tamper()
        return None

    async def _play_normal(self) -> None:
        """Sessions start by themselves on free connectors and end after a while."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            for connector in self._connectors.values():
                session = connector.session
                if session is not None:
                    if session.ends_at is not None and now >= session.ends_at:
                        await self._stop_session(connector, "Local")
                        connector.next_start = None
                    continue
                if connector.next_start is None:
                    connector.next_start = now + self._rng.uniform(*NORMAL_IDLE) / self.speed
                elif now >= connector.next_start and connector.status == STATUS_AVAILABLE:
                    connector.next_start = None
                    if self.failed_start_rate and self._rng.random() < self.failed_start_rate:
                        await self._failed_start(connector)
                        continue
                    self._reserve(connector, f"TAG-{self._rng.randint(1, 9999):04d}")
                    await self._start_session(connector)
                    if connector.session is not None:
                        duration = self._rng.uniform(*NORMAL_SESSION) / self.speed
                        connector.session.ends_at = loop.time() + duration
            await self._sleep(SCENARIO_TICK)

    async def _failed_start(self, connector: _Connector) -> None:
        """A driver plugs in, no transaction starts (say the card is not read), and leaves."""
        _LOGGER.info("%s: connector %s plugged in, no session starts", self.id, connector.id)
        await self._set_status(connector, STATUS_PREPARING)
        await self._sleep(FAILED_START_TIME)
        if connector.session is None and connector.status == STATUS_PREPARING:
            await self._set_status(connector, self._idle_status(connector))

    async def _wait_due(self, name: str, first: float, every: float) -> None:
        """Sleep until the scenario step is due, then schedule the next one.

        The due times outlive connections, so scenarios combine (offline,reboot) and a
        reconnection does not restart their clocks.
        """
        loop = asyncio.get_running_loop()
        due = self._due.setdefault(name, loop.time() + first / self.speed)
        await asyncio.sleep(max(due - loop.time(), 0.0))
        self._due[name] = loop.time() + every / self.speed

    async def _play_fault(self) -> None:
        """A free connector goes Faulted now and then, and recovers."""
        for connector in self._connectors.values():
            if connector.status == STATUS_FAULTED:
                await self._recover(connector)
        while True:
            await self._wait_due(SCENARIO_FAULT, FAULT_FIRST, FAULT_EVERY + FAULT_FOR)
            free: list[_Connector] = []
            while not free:
                # Busy charging (with the normal scenario): fault the next one to come free.
                free = [
                    c
                    for c in self._connectors.values()
                    if c.session is None and c.status == STATUS_AVAILABLE
                ]
                if not free:
                    await self._sleep(SCENARIO_TICK)
            connector = self._rng.choice(free)
            code = FAULT_CODES[self._fault_count % len(FAULT_CODES)]
            self._fault_count += 1
            await self._set_status(connector, STATUS_FAULTED, code)
            if self._link is not None:
                await self._link.send_problem(connector, code, active=True)
            await self._sleep(FAULT_FOR)
            await self._recover(connector)

    async def _recover(self, connector: _Connector) -> None:
        code = connector.error_code
        await self._set_status(connector, self._idle_status(connector))
        if self._link is not None:
            await self._link.send_problem(connector, code, active=False)

    async def _play_offline(self) -> None:
        """The network goes away now and then; the charge point comes back without a reboot."""
        await self._wait_due(SCENARIO_OFFLINE, OFFLINE_EVERY, OFFLINE_EVERY + OFFLINE_FOR)
        _LOGGER.info("%s: going off line for %ss", self.id, OFFLINE_FOR)
        self._disconnect(reconnect_after=OFFLINE_FOR, code=aiohttp.WSCloseCode.GOING_AWAY)

    async def _play_reboot(self) -> None:
        """The charge point reboots now and then (a watchdog), booting again."""
        await self._wait_due(SCENARIO_REBOOT, REBOOT_EVERY, REBOOT_EVERY + REBOOT_TIME)
        await self._reboot(REBOOT_REASON)

    async def _play_tamper(self) -> None:
        """Someone opens the enclosure now and then."""
        while True:
            await self._wait_due(SCENARIO_TAMPER, TAMPER_FIRST, TAMPER_EVERY)
            if self._link is not None:
                _LOGGER.warning("%s: tamper detected", self.id)
                await self._link.send_security_event(TAMPER_EVENT, "enclosure opened")


def _sampled_values_16(sample: _Sample, context: str, full: bool = True) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = [
        {
            "value": str(sample.energy_wh),
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        }
    ]
    if not full:
        return values
    values.append(
        {
            "value": f"{sample.power_w:.1f}",
            "context": context,
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        }
    )
    for phase, current in zip(("L1", "L2", "L3"), sample.currents, strict=True):
        values.append(
            {
                "value": f"{current:.2f}",
                "context": context,
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unit": "A",
            }
        )
    for phase, voltage in zip(("L1-N", "L2-N", "L3-N"), sample.voltages, strict=True):
        values.append(
            {
                "value": f"{voltage:.1f}",
                "context": context,
                "measurand": "Voltage",
                "phase": phase,
                "location": "Outlet",
                "unit": "V",
            }
        )
    if sample.soc is not None:
        values.append(
            {
                "value": f"{sample.soc:.1f}",
                "context": context,
                "measurand": "SoC",
                "location": "EV",
                "unit": "Percent",
            }
        )
    return values


def _sampled_values_201(sample: _Sample, context: str, full: bool = True) -> list[dict[str, Any]]:
    def value(
        number: float, measurand: str, unit: str, phase: str | None = None, location: str = "Outlet"
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "value": number,
            "context": context,
            "measurand": measurand,
            "location": location,
            "unitOfMeasure": {"unit": unit},
        }
        if phase is not None:
            item["phase"] = phase
        return item

    values = [value(sample.energy_wh, "Energy.Active.Import.Register", "Wh")]
    if not full:
        return values
    values.append(value(sample.power_w, "Power.Active.Import", "W"))
    for phase, current in zip(("L1", "L2", "L3"), sample.currents, strict=True):
        values.append(value(current, "Current.Import", "A", phase))
    for phase, voltage in zip(("L1-N", "L2-N", "L3-N"), sample.voltages, strict=True):
        values.append(value(voltage, "Voltage", "V", phase))
    if sample.soc is not None:
        values.append(value(sample.soc, "SoC", "Percent", location="EV"))
    return values


class _V16Link(_V16ChargePoint):  # type: ignore[misc]
    """The OCPP 1.6 wire of a SimulatedChargePoint: one per websocket connection."""

    def __init__(self, sim: SimulatedChargePoint, connection: WebSocketAdapter) -> None:
        super().__init__(sim.id, connection, response_timeout=RESPONSE_TIMEOUT, logger=WIRE_LOGGER)
        self.sim = sim
        self._reported: dict[int, tuple[str, str]] = {}

    async def route_message(self, raw_msg: str) -> None:
        """Record the central system's calls and run follow-ups once answered."""
        self.sim._note_call(raw_msg)
        await super().route_message(raw_msg)
        self.sim._run_followups()

    # -- to the central system ----------------------------------------------------------

    async def send_boot(self, reason: str) -> tuple[str, int]:
        sim = self.sim
        result = await self.call(
            v16_call.BootNotification(
                charge_point_vendor=sim.vendor,
                charge_point_model=sim.model,
                charge_point_serial_number=sim.serial,
                charge_box_serial_number=sim.serial,
                firmware_version=sim.firmware_version,
            ),
            suppress=False,
        )
        return str(result.status), int(result.interval)

    async def send_heartbeat(self) -> None:
        await self.call(v16_call.Heartbeat(), suppress=False)

    async def send_station_status(self, operative: bool) -> None:
        status = STATUS_AVAILABLE if operative else STATUS_UNAVAILABLE
        await self._send_status(0, status, ERROR_NONE, force=True)

    async def send_status(self, connector: _Connector, force: bool = False) -> None:
        await self._send_status(connector.id, connector.status, connector.error_code, force)

    async def _send_status(self, number: int, status: str, error_code: str, force: bool) -> None:
        if not force and self._reported.get(number) == (status, error_code):
            return
        self._reported[number] = (status, error_code)
        await self.call(
            v16_call.StatusNotification(
                connector_id=number, error_code=error_code, status=status, timestamp=_now()
            ),
            suppress=False,
        )

    async def start_transaction(self, connector: _Connector, trigger: str) -> bool:
        session = connector.session
        assert session is not None
        result = await self.call(
            v16_call.StartTransaction(
                connector_id=connector.id,
                id_tag=session.id_tag,
                meter_start=session.meter_start,
                timestamp=_now(),
            ),
            suppress=False,
        )
        session.transaction_id = int(result.transaction_id)
        return bool(result.id_tag_info.get("status") == "Accepted")

    async def send_meter_values(self, connector: _Connector, context: str) -> None:
        sample = self.sim._sample(connector)
        session = connector.session
        await self.call(
            v16_call.MeterValues(
                connector_id=connector.id,
                transaction_id=None if session is None else session.transaction_id,
                meter_value=[
                    {"timestamp": _now(), "sampledValue": _sampled_values_16(sample, context)}
                ],
            ),
            suppress=False,
        )

    async def stop_transaction(self, connector: _Connector, reason: str) -> None:
        session = connector.session
        assert session is not None
        sample = self.sim._sample(connector, stopped=True)
        await self.call(
            v16_call.StopTransaction(
                meter_stop=sample.energy_wh,
                timestamp=_now(),
                transaction_id=int(session.transaction_id or 0),
                reason=reason,
                id_tag=session.id_tag,
                transaction_data=[
                    {
                        "timestamp": _now(),
                        "sampledValue": _sampled_values_16(sample, "Transaction.End"),
                    }
                ],
            ),
            suppress=False,
        )

    async def send_firmware_status(self, status: str, request_id: int | None) -> None:
        await self.call(v16_call.FirmwareStatusNotification(status=status), suppress=False)

    async def send_upload_status(
        self, status: str, request_id: int | None, diagnostics: bool
    ) -> None:
        if diagnostics:
            message: Any = v16_call.DiagnosticsStatusNotification(status=status)
        else:
            message = v16_call.LogStatusNotification(status=status, request_id=request_id or 0)
        await self.call(message, suppress=False)

    async def send_security_event(self, event_type: str, tech_info: str) -> None:
        await self.call(
            v16_call.SecurityEventNotification(
                type=event_type, timestamp=_now(), tech_info=tech_info
            ),
            suppress=False,
        )

    async def send_problem(self, connector: _Connector, code: str, *, active: bool) -> None:
        """1.6 carries the error code in StatusNotification; nothing more to send."""

    # -- from the central system ----------------------------------------------------------

    @_on("Reset")
    def on_reset(self, type: str, **kwargs: Any) -> Any:
        reason = "HardReset" if type == "Hard" else "SoftReset"
        self.sim._later(lambda: self.sim._reboot("RemoteReset", stop_reason=reason))
        return v16_result.Reset(status="Accepted")

    @_on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **kwargs: Any) -> Any:
        status = self.sim._change_availability(connector_id, type == "Operative")
        return v16_result.ChangeAvailability(status=status)

    @_on("RemoteStartTransaction")
    def on_remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        profile = None
        if charging_profile is not None:
            profile = _Profile(
                id=int(charging_profile["charging_profile_id"]),
                connector=connector_id or 0,
                purpose="Tx",
                stack_level=int(charging_profile["stack_level"]),
                limit_w=_limit_w(charging_profile["charging_schedule"]),
            )
        accepted = self.sim._remote_start(connector_id, id_tag, profile=profile)
        return v16_result.RemoteStartTransaction(status="Accepted" if accepted else "Rejected")

    @_on("RemoteStopTransaction")
    def on_remote_stop_transaction(self, transaction_id: int, **kwargs: Any) -> Any:
        accepted = self.sim._remote_stop(transaction_id)
        return v16_result.RemoteStopTransaction(status="Accepted" if accepted else "Rejected")

    @_on("UnlockConnector")
    def on_unlock_connector(self, connector_id: int, **kwargs: Any) -> Any:
        status = self.sim._unlock(connector_id, stop_session=True)
        return v16_result.UnlockConnector(
            status="NotSupported" if status == "UnknownConnector" else status
        )

    @_on("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **kwargs: Any
    ) -> Any:
        sim = self.sim
        connectors = sim._targets(connector_id)
        if connectors is None:
            return v16_result.TriggerMessage(status="Rejected")
        followup: _FollowUp
        if requested_message == "BootNotification":
            followup = self._triggered_boot
        elif requested_message == "Heartbeat":
            followup = self.send_heartbeat
        elif requested_message == "StatusNotification":
            station = not connector_id
            followup = functools.partial(self._triggered_statuses, connectors, station=station)
        elif requested_message == "MeterValues":
            followup = functools.partial(self._triggered_meter_values, connectors)
        elif requested_message == "FirmwareStatusNotification":
            followup = self._triggered_firmware_status
        elif requested_message == "DiagnosticsStatusNotification":
            followup = self._triggered_upload_status
        else:
            return v16_result.TriggerMessage(status="NotImplemented")
        sim._later(followup)
        return v16_result.TriggerMessage(status="Accepted")

    async def _triggered_boot(self) -> None:
        status, interval = await self.send_boot("Triggered")
        self.sim.boot_count += 1
        self.sim.boot_status = status
        if status == "Accepted" and interval:
            self.sim._set_heartbeat_interval(interval)

    async def _triggered_statuses(self, connectors: list[_Connector], *, station: bool) -> None:
        if station:
            await self.send_station_status(self.sim._station_operative)
        for connector in connectors:
            await self.send_status(connector, force=True)

    async def _triggered_meter_values(self, connectors: list[_Connector]) -> None:
        for connector in connectors:
            await self.send_meter_values(connector, "Trigger")

    async def _triggered_firmware_status(self) -> None:
        await self.send_firmware_status(self.sim._firmware_report(), None)

    async def _triggered_upload_status(self) -> None:
        status = "Uploading" if self.sim._uploading else "Idle"
        await self.send_upload_status(status, None, diagnostics=True)

    @_on("SetChargingProfile")
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kwargs: Any
    ) -> Any:
        purposes = {"ChargePointMaxProfile": "Max", "TxDefaultProfile": "TxDefault"}
        purpose = purposes.get(cs_charging_profiles["charging_profile_purpose"], "Tx")
        if purpose == "Max" and connector_id != 0:
            return v16_result.SetChargingProfile(status="Rejected")
        profile = _Profile(
            id=int(cs_charging_profiles["charging_profile_id"]),
            connector=connector_id,
            purpose=purpose,
            stack_level=int(cs_charging_profiles["stack_level"]),
            limit_w=_limit_w(cs_charging_profiles["charging_schedule"]),
        )
        return v16_result.SetChargingProfile(status=self.sim._set_profile(profile))

    @_on("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **kwargs: Any,
    ) -> Any:
        purposes = {"ChargePointMaxProfile": "Max", "TxDefaultProfile": "TxDefault"}
        purpose = None
        if charging_profile_purpose is not None:
            purpose = purposes.get(charging_profile_purpose, "Tx")
        status = self.sim._clear_profiles(id, connector_id, purpose, stack_level)
        return v16_result.ClearChargingProfile(status=status)

    @_on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **kwargs: Any) -> Any:
        settings = self.sim._settings
        names = key or list(settings)
        known = [
            {"key": name, "readonly": settings[name].readonly, "value": settings[name].value}
            for name in names
            if name in settings
        ]
        unknown = [name for name in names if name not in settings]
        return v16_result.GetConfiguration(
            configuration_key=known or None, unknown_key=unknown or None
        )

    @_on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **kwargs: Any) -> Any:
        return v16_result.ChangeConfiguration(status=self.sim._apply_setting(key, value))

    @_on("UpdateFirmware")
    def on_update_firmware(self, location: str, retrieve_date: str, **kwargs: Any) -> Any:
        self.sim._later(lambda: self.sim._update_firmware(None, retrieve_date))
        return v16_result.UpdateFirmware()

    @_on("GetDiagnostics")
    def on_get_diagnostics(self, location: str, **kwargs: Any) -> Any:
        self.sim._later(lambda: self.sim._upload(None, diagnostics=True))
        return v16_result.GetDiagnostics(file_name=self.sim._upload_name("diagnostics"))

    @_on("GetLog")
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, **kwargs: Any) -> Any:
        self.sim._later(lambda: self.sim._upload(request_id, diagnostics=False))
        return v16_result.GetLog(status="Accepted", filename=self.sim._upload_name("log"))

    @_on("ClearCache")
    def on_clear_cache(self, **kwargs: Any) -> Any:
        return v16_result.ClearCache(status="Accepted")

    @_on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, data: str | None = None, **kwargs: Any) -> Any:
        return v16_result.DataTransfer(status="Accepted", data=data)


class _V201Link(_V201ChargePoint):  # type: ignore[misc]
    """The OCPP 2.0.1 wire of a SimulatedChargePoint: one per websocket connection."""

    def __init__(self, sim: SimulatedChargePoint, connection: WebSocketAdapter) -> None:
        super().__init__(sim.id, connection, response_timeout=RESPONSE_TIMEOUT, logger=WIRE_LOGGER)
        self.sim = sim
        self._reported: dict[int, str] = {}
        self._event_seq = itertools.count()

    async def route_message(self, raw_msg: str) -> None:
        """Record the central system's calls and run follow-ups once answered."""
        self.sim._note_call(raw_msg)
        await super().route_message(raw_msg)
        self.sim._run_followups()

    # -- to the central system ----------------------------------------------------------

    async def send_boot(self, reason: str) -> tuple[str, int]:
        sim = self.sim
        result = await self.call(
            v201_call.BootNotification(
                charging_station={
                    "model": sim.model,
                    "vendorName": sim.vendor,
                    "serialNumber": sim.serial,
                    "firmwareVersion": sim.firmware_version,
                },
                reason=reason,
            ),
            suppress=False,
        )
        return str(result.status), int(result.interval)

    async def send_heartbeat(self) -> None:
        await self.call(v201_call.Heartbeat(), suppress=False)

    async def send_status(self, connector: _Connector, force: bool = False) -> None:
        status = _STATUS_201.get(connector.status, "Occupied")
        if not force and self._reported.get(connector.id) == status:
            return
        self._reported[connector.id] = status
        await self.call(
            v201_call.StatusNotification(
                timestamp=_now(), connector_status=status, evse_id=connector.id, connector_id=1
            ),
            suppress=False,
        )

    async def _transaction_event(
        self,
        connector: _Connector,
        event_type: str,
        trigger: str,
        charging_state: str,
        meter_value: list[dict[str, Any]],
        **extra: Any,
    ) -> Any:
        session = connector.session
        assert session is not None
        info: dict[str, Any] = {
            "transactionId": session.transaction_id,
            "chargingState": charging_state,
        }
        if "stopped_reason" in extra:
            info["stoppedReason"] = extra.pop("stopped_reason")
        if event_type == "Started" and session.remote_start_id is not None:
            info["remoteStartId"] = session.remote_start_id
        seq_no = session.seq_no
        session.seq_no += 1
        return await self.call(
            v201_call.TransactionEvent(
                event_type=event_type,
                timestamp=_now(),
                trigger_reason=trigger,
                seq_no=seq_no,
                transaction_info=info,
                meter_value=meter_value,
                evse={"id": connector.id, "connectorId": 1},
                **extra,
            ),
            suppress=False,
        )

    async def start_transaction(self, connector: _Connector, trigger: str) -> bool:
        session = connector.session
        assert session is not None
        session.transaction_id = str(uuid.uuid4())
        sample = self.sim._sample(connector)
        result = await self._transaction_event(
            connector,
            "Started",
            trigger,
            "Charging",
            [
                {
                    "timestamp": _now(),
                    "sampledValue": _sampled_values_201(sample, "Transaction.Begin", full=False),
                }
            ],
            id_token={"idToken": session.id_tag, "type": "ISO14443"},
        )
        info = result.id_token_info
        return info is None or info.get("status") == "Accepted"

    async def send_meter_values(self, connector: _Connector, context: str) -> None:
        sample = self.sim._sample(connector)
        meter_value = [{"timestamp": _now(), "sampledValue": _sampled_values_201(sample, context)}]
        if connector.session is not None and connector.session.transaction_id is not None:
            trigger = "Trigger" if context == "Trigger" else "MeterValuePeriodic"
            state = "Charging" if connector.status == STATUS_CHARGING else "EVConnected"
            await self._transaction_event(connector, "Updated", trigger, state, meter_value)
            return
        await self.call(
            v201_call.MeterValues(evse_id=connector.id, meter_value=meter_value), suppress=False
        )

    async def stop_transaction(self, connector: _Connector, reason: str) -> None:
        stopped_reason, trigger = _STOP_REASONS_201.get(reason, ("Other", "AbnormalCondition"))
        sample = self.sim._sample(connector, stopped=True)
        meter_value = [
            {"timestamp": _now(), "sampledValue": _sampled_values_201(sample, "Transaction.End")}
        ]
        await self._transaction_event(
            connector,
            "Ended",
            trigger,
            "EVConnected",
            meter_value,
            stopped_reason=stopped_reason,
        )

    async def send_firmware_status(self, status: str, request_id: int | None) -> None:
        await self.call(
            v201_call.FirmwareStatusNotification(status=status, request_id=request_id),
            suppress=False,
        )

    async def send_upload_status(
        self, status: str, request_id: int | None, diagnostics: bool
    ) -> None:
        await self.call(
            v201_call.LogStatusNotification(status=status, request_id=request_id), suppress=False
        )

    async def send_security_event(self, event_type: str, tech_info: str) -> None:
        await self.call(
            v201_call.SecurityEventNotification(
                type=event_type, timestamp=_now(), tech_info=tech_info
            ),
            suppress=False,
        )

    async def send_problem(self, connector: _Connector, code: str, *, active: bool) -> None:
        """Report a connector fault (or its end) as a NotifyEvent with the error code."""
        await self.call(
            v201_call.NotifyEvent(
                generated_at=_now(),
                seq_no=0,
                event_data=[
                    {
                        "eventId": next(self.sim._events),
                        "timestamp": _now(),
                        "trigger": "Delta",
                        "actualValue": "true" if active else "false",
                        "techCode": code,
                        "cleared": not active,
                        "eventNotificationType": "HardWiredNotification",
                        "component": {
                            "name": "Connector",
                            "evse": {"id": connector.id, "connectorId": 1},
                        },
                        "variable": {"name": "Problem"},
                    }
                ],
            ),
            suppress=False,
        )

    # -- from the central system ----------------------------------------------------------

    @_on("Reset")
    def on_reset(self, type: str, evse_id: int | None = None, **kwargs: Any) -> Any:
        sim = self.sim
        if evse_id:
            return v201_result.Reset(status="Rejected")
        if type == "OnIdle" and any(c.session for c in sim._connectors.values()):
            sim._reset_scheduled = True
            return v201_result.Reset(status="Scheduled")
        sim._later(lambda: sim._reboot("RemoteReset", stop_reason="HardReset"))
        return v201_result.Reset(status="Accepted")

    @_on("ChangeAvailability")
    def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        target = int(evse["id"]) if evse else 0
        status = self.sim._change_availability(target, operational_status == "Operative")
        return v201_result.ChangeAvailability(status=status)

    @_on("RequestStartTransaction")
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        profile = None
        if charging_profile is not None:
            profile = self._profile(evse_id or 0, charging_profile)
        accepted = self.sim._remote_start(
            evse_id, str(id_token["id_token"]), remote_start_id, profile
        )
        return v201_result.RequestStartTransaction(status="Accepted" if accepted else "Rejected")

    @_on("RequestStopTransaction")
    def on_request_stop_transaction(self, transaction_id: str, **kwargs: Any) -> Any:
        accepted = self.sim._remote_stop(transaction_id)
        return v201_result.RequestStopTransaction(status="Accepted" if accepted else "Rejected")

    @_on("UnlockConnector")
    def on_unlock_connector(self, evse_id: int, connector_id: int, **kwargs: Any) -> Any:
        if connector_id != 1:
            return v201_result.UnlockConnector(status="UnknownConnector")
        return v201_result.UnlockConnector(status=self.sim._unlock(evse_id, stop_session=False))

    @_on("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        sim = self.sim
        connectors = sim._targets(int(evse["id"]) if evse else None)
        if connectors is None:
            return v201_result.TriggerMessage(status="Rejected")
        followup: _FollowUp
        if requested_message == "BootNotification":
            if sim._registered:
                # F06.FR.17: once accepted, a BootNotification on request is rejected.
                return v201_result.TriggerMessage(status="Rejected")
            followup = self._triggered_boot
        elif requested_message == "Heartbeat":
            followup = self.send_heartbeat
        elif requested_message == "StatusNotification":
            followup = functools.partial(self._triggered_statuses, connectors)
        elif requested_message in ("MeterValues", "TransactionEvent"):
            if requested_message == "TransactionEvent":
                connectors = [c for c in connectors if c.session and c.session.transaction_id]
                if not connectors:
                    return v201_result.TriggerMessage(status="Rejected")
            followup = functools.partial(self._triggered_meter_values, connectors)
        elif requested_message == "FirmwareStatusNotification":
            followup = self._triggered_firmware_status
        elif requested_message == "LogStatusNotification":
            followup = self._triggered_upload_status
        else:
            return v201_result.TriggerMessage(status="NotImplemented")
        sim._later(followup)
        return v201_result.TriggerMessage(status="Accepted")

    async def _triggered_boot(self) -> None:
        status, _interval = await self.send_boot("Triggered")
        self.sim.boot_count += 1
        self.sim.boot_status = status

    async def _triggered_statuses(self, connectors: list[_Connector]) -> None:
        for connector in connectors:
            await self.send_status(connector, force=True)

    async def _triggered_meter_values(self, connectors: list[_Connector]) -> None:
        for connector in connectors:
            await self.send_meter_values(connector, "Trigger")

    async def _triggered_firmware_status(self) -> None:
        await self.send_firmware_status(self.sim._firmware_report(), None)

    async def _triggered_upload_status(self) -> None:
        status = "Uploading" if self.sim._uploading else "Idle"
        await self.send_upload_status(status, None, diagnostics=False)

    def _profile(self, evse_id: int, profile: dict[str, Any]) -> _Profile:
        purposes = {
            "ChargingStationMaxProfile": "Max",
            "ChargingStationExternalConstraints": "Max",
            "TxDefaultProfile": "TxDefault",
        }
        return _Profile(
            id=int(profile["id"]),
            connector=evse_id,
            purpose=purposes.get(profile["charging_profile_purpose"], "Tx"),
            stack_level=int(profile["stack_level"]),
            limit_w=_limit_w(profile["charging_schedule"][0]),
        )

    @_on("SetChargingProfile")
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **kwargs: Any
    ) -> Any:
        profile = self._profile(evse_id, charging_profile)
        if profile.purpose == "Max" and evse_id != 0:
            return v201_result.SetChargingProfile(status="Rejected")
        return v201_result.SetChargingProfile(status=self.sim._set_profile(profile))

    @_on("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        criteria = charging_profile_criteria or {}
        purposes = {
            "ChargingStationMaxProfile": "Max",
            "ChargingStationExternalConstraints": "Max",
            "TxDefaultProfile": "TxDefault",
            "TxProfile": "Tx",
        }
        purpose = criteria.get("charging_profile_purpose")
        status = self.sim._clear_profiles(
            charging_profile_id,
            criteria.get("evse_id"),
            None if purpose is None else purposes[purpose],
            criteria.get("stack_level"),
        )
        return v201_result.ClearChargingProfile(status=status)

    @_on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        results = []
        for item in get_variable_data:
            key, setting = self.sim._variable(item["component"]["name"], item["variable"]["name"])
            result: dict[str, Any] = {
                "component": item["component"],
                "variable": item["variable"],
                "attribute_type": item.get("attribute_type", "Actual"),
            }
            if setting is None:
                result["attribute_status"] = key
            elif result["attribute_type"] != "Actual":
                result["attribute_status"] = "NotSupportedAttributeType"
            else:
                result["attribute_status"] = "Accepted"
                result["attribute_value"] = setting.value
            results.append(result)
        return v201_result.GetVariables(get_variable_result=results)

    @_on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        results = []
        for item in set_variable_data:
            key, setting = self.sim._variable(item["component"]["name"], item["variable"]["name"])
            attribute_type = item.get("attribute_type", "Actual")
            if setting is None:
                status = key
            elif attribute_type != "Actual":
                status = "NotSupportedAttributeType"
            else:
                status = self.sim._apply_setting(key, str(item["attribute_value"]))
                status = "Rejected" if status == "NotSupported" else status
            results.append(
                {
                    "attribute_type": attribute_type,
                    "attribute_status": status,
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return v201_result.SetVariables(set_variable_result=results)

    @_on("UpdateFirmware")
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **kwargs: Any) -> Any:
        retrieve = firmware.get("retrieve_date_time")
        self.sim._later(lambda: self.sim._update_firmware(request_id, retrieve))
        return v201_result.UpdateFirmware(status="Accepted")

    @_on("GetLog")
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, **kwargs: Any) -> Any:
        self.sim._later(lambda: self.sim._upload(request_id, diagnostics=False))
        return v201_result.GetLog(status="Accepted", filename=self.sim._upload_name("log"))

    @_on("ClearCache")
    def on_clear_cache(self, **kwargs: Any) -> Any:
        return v201_result.ClearCache(status="Accepted")

    @_on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, data: Any = None, **kwargs: Any) -> Any:
        return v201_result.DataTransfer(status="Accepted", data=data)


async def run_simulation(
    url: str,
    count: int,
    version: str = VERSION_16,
    scenario: str = SCENARIO_NORMAL,
    password: str | None = None,
    ssl: ssl_lib.SSLContext | None = None,
    duration: float | None = None,
    id_prefix: str = "SIM-",
    speed: float = 1.0,
    *,
    connectors: int = 2,
    meter_interval: float = 10.0,
) -> list[SimulatedChargePoint]:
    """Run count charge points (ids id_prefix + 0001…) until cancelled or duration elapsed.

    ``duration`` is in real seconds. Returns the charge points, stopped.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    # No connection limit: every charge point holds its websocket for good.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15),
    )
    try:
        charge_points = [
            SimulatedChargePoint(
                f"{id_prefix}{number:04d}",
                url,
                version=version,
                connectors=connectors,
                scenario=scenario,
                password=password,
                ssl=ssl,
                meter_interval=meter_interval,
                speed=speed,
                # Spread the first connections so a big fleet does not arrive in one burst.
                start_delay=(number - 1) * RAMP_STEP * speed,
                session=session,
            )
            for number in range(1, count + 1)
        ]
    except ValueError:
        await session.close()
        raise
    _LOGGER.info(
        "simulating %s OCPP %s charge point(s) at %s, scenario %s, speed %s",
        count,
        version,
        url,
        scenario,
        speed,
    )
    try:
        for charge_point in charge_points:
            charge_point.start()
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
    finally:
        await asyncio.gather(*(cp.stop() for cp in charge_points), return_exceptions=True)
        await session.close()
    return charge_points


async def simulate_until_signalled(
    url: str,
    count: int,
    version: str = VERSION_16,
    scenario: str = SCENARIO_NORMAL,
    **kwargs: Any,
) -> int:
    """Run run_simulation until SIGINT or SIGTERM (or its duration); return an exit status."""
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(run_simulation(url, count, version, scenario, **kwargs))
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, runner.cancel)
    try:
        await asyncio.wait({runner})
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    if runner.cancelled():
        _LOGGER.info("simulation stopped")
        return 0
    runner.result()
    _LOGGER.info("simulation finished")
    return 0


__all__ = [
    "SCENARIOS",
    "SUBPROTOCOLS",
    "ConnectionClosedError",
    "SimulatedChargePoint",
    "SimulatorError",
    "SubprotocolError",
    "WebSocketAdapter",
    "basic_auth_header",
    "run_simulation",
    "simulate_until_signalled",
]
