"""The simulated charger: its connectors, sessions, meters and scenarios, and its connection.

SimulatedChargePoint keeps what a charger is and does whatever OCPP it speaks; its link (see
link.py, v16.py, v201.py), one per websocket connection, turns that into OCPP and the central
system's calls into its methods. Every wait is divided by ``speed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

import aiohttp
from ocpp.exceptions import OCPPError  # type: ignore[import-untyped, unused-ignore]

from . import v16, v201
from .features.provisioning import device_model_201
from .features.security import PASSWORD_KEYS, parse_password, password_settings
from .link import Link
from .model import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    BOOT_RETRY_INTERVAL,
    DEFAULT_HEARTBEAT_INTERVAL,
    ERROR_NONE,
    EV_CAPACITY_WH,
    FAILED_START_TIME,
    FAULT_CODES,
    FAULT_EVERY,
    FAULT_FIRST,
    FAULT_FOR,
    FINISHING_TIME,
    MAX_POWER_W,
    NOMINAL_VOLTAGE,
    NORMAL_IDLE,
    NORMAL_SESSION,
    OFFLINE_EVERY,
    OFFLINE_FOR,
    PHASES,
    REBOOT_EVERY,
    REBOOT_REASON,
    REBOOT_TIME,
    SCENARIO_FAULT,
    SCENARIO_IDLE,
    SCENARIO_NORMAL,
    SCENARIO_OFFLINE,
    SCENARIO_REBOOT,
    SCENARIO_TAMPER,
    SCENARIO_TICK,
    SCENARIO_WRONG_PASSWORD,
    SCENARIOS,
    STATUS_AVAILABLE,
    STATUS_CHARGING,
    STATUS_FAULTED,
    STATUS_FINISHING,
    STATUS_PREPARING,
    STATUS_UNAVAILABLE,
    STEP_TIME,
    SUBPROTOCOLS,
    TAMPER_EVENT,
    TAMPER_EVERY,
    TAMPER_FIRST,
    VERSION_16,
    VERSION_201,
    Connector,
    FollowUp,
    Profile,
    Sample,
    Session,
    Setting,
)
from .websocket import (
    ConnectionClosedError,
    SimulatorError,
    SubprotocolError,
    WebSocketAdapter,
    basic_auth_header,
)

if TYPE_CHECKING:
    import ssl as ssl_lib

_LOGGER = logging.getLogger(__name__)


class _SettingsFactory(Protocol):
    def __call__(
        self,
        *,
        connectors: int,
        meter_interval: float,
        security_profile: str,
        identity: str,
        vendor: str,
        model: str,
    ) -> dict[str, Setting]: ...


class _LinkFactory(Protocol):
    def __call__(self, sim: SimulatedChargePoint, connection: WebSocketAdapter) -> Link: ...


@dataclass(frozen=True, slots=True)
class _Ocpp:
    """What the charger takes from its OCPP version."""

    link: _LinkFactory
    heartbeat_key: str
    default_settings: _SettingsFactory


_VERSIONS: Final = {
    VERSION_16: _Ocpp(v16.V16Link, v16.HEARTBEAT_KEY, v16.default_settings),
    VERSION_201: _Ocpp(v201.V201Link, v201.HEARTBEAT_KEY, v201.default_settings),
}


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


def _bump_version(version: str) -> str:
    """Return the version with its last number incremented (1.0.0 → 1.0.1)."""
    match = re.search(r"(\d+)(?!.*\d)", version)
    if match is None:
        return f"{version}.1"
    return f"{version[: match.start()]}{int(match.group(1)) + 1}{version[match.end() :]}"


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
            n: Connector(n, energy_wh=float(self._rng.randint(100_000, 5_000_000)))
            for n in range(1, connectors + 1)
        }
        self._station_operative = True
        self._profiles: list[Profile] = []
        self._ocpp = _VERSIONS[version]
        self._settings = self._ocpp.default_settings(
            connectors=connectors,
            meter_interval=meter_interval,
            security_profile=self._security_profile(),
            identity=cp_id,
            vendor=vendor,
            model=model,
        )
        self._settings.update(password_settings(version))
        if version == VERSION_201:
            self._settings.update(device_model_201())
        self._registered = False  # BootNotification accepted since the last (re)boot
        self._boot_reason = "PowerUp"
        self._reset_scheduled = False
        self._uploading = False
        self._events = itertools.count(1)
        self._due: dict[str, float] = {}
        self._fault_count = 0
        self._task: asyncio.Task[None] | None = None
        self._link: Link | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._followups: list[FollowUp] = []
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

    @property
    def station_operative(self) -> bool:
        """Whether the station as a whole is operative (ChangeAvailability of 0 or no EVSE)."""
        return self._station_operative

    @property
    def registered(self) -> bool:
        """Whether a BootNotification was accepted since the last (re)boot."""
        return self._registered

    @property
    def uploading(self) -> bool:
        """Whether a diagnostics or log upload is under way."""
        return self._uploading

    @property
    def settings(self) -> Mapping[str, Setting]:
        """Configuration key (1.6) or component/variable (2.0.1) → setting."""
        return self._settings

    def next_event_id(self) -> int:
        """Return a new id for an event the charge point reports (2.0.1 NotifyEvent)."""
        return next(self._events)

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
        link: Link = self._ocpp.link(self, adapter)
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
            # A task that finished its step despite the cancellation (see _cancel_and_wait)
            # may have spawned others meanwhile: none outlives the connection.
            while late := [task for task in self._tasks if not task.done()]:
                await _cancel_and_wait(late)
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

    def later(self, followup: FollowUp) -> None:
        """Run followup once the answer to the call being handled is sent."""
        self._followups.append(followup)

    def run_followups(self) -> None:
        """Run the follow-ups of the call just answered."""
        followups, self._followups = self._followups, []
        for followup in followups:
            self._spawn(followup(), "follow-up")

    def record_call(self, raw: str) -> None:
        """Note a frame from the central system in received_calls if it is a call."""
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

    async def _online(self, link: Link) -> None:
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

    async def _boot(self, link: Link) -> None:
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
                self.set_heartbeat_interval(interval or DEFAULT_HEARTBEAT_INTERVAL)
                self._registered = True
                self._boot_reason = "PowerUp"
                _LOGGER.info(
                    "%s: boot accepted, heartbeat every %ss", self.id, self.heartbeat_interval
                )
                return
            retry = interval or BOOT_RETRY_INTERVAL
            _LOGGER.info("%s: boot %s, retrying in %ss", self.id, status, retry)
            await self._sleep(retry)

    async def _heartbeats(self, link: Link) -> None:
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
            # 2.0.1: the threshold monitors the central system set (NotifyEvent on a crossing).
            check = getattr(self._link, "check_monitors", None)
            if check is not None:
                try:
                    await check()
                except (OCPPError, TimeoutError) as err:
                    _LOGGER.warning("%s: monitor events failed: %r", self.id, err)

    def monitored_value(self, component: str, evse: int | None, variable: str) -> float | None:
        """A value a monitor may watch, now (None: not measured here): the power of an
        EVSE or of the whole station, in W."""
        if variable != "Power":
            return None
        if component == "ChargingStation":
            connectors = list(self._connectors.values())
        elif component == "EVSE" and evse in self._connectors:
            connectors = [self._connectors[evse]]
        else:
            return None
        for connector in connectors:
            self._advance(connector)
        return round(sum(connector.power_w for connector in connectors), 1)

    def set_heartbeat_interval(self, seconds: float) -> None:
        """Heartbeat every seconds (simulated), as the central system said."""
        self.heartbeat_interval = seconds
        self._settings[self._ocpp.heartbeat_key].value = str(int(seconds))

    # -- statuses -----------------------------------------------------------------------

    async def _report_all_statuses(self, link: Link) -> None:
        await link.send_station_status(self._station_operative)
        for connector in self._connectors.values():
            await link.send_status(connector, force=True)

    async def _set_status(
        self, connector: Connector, status: str, error_code: str = ERROR_NONE
    ) -> None:
        if (connector.status, connector.error_code) != (status, error_code):
            # Faults at INFO; the routine round (Preparing, Charging, Finishing, Available)
            # is the hub's own states already, and was most of what was left of the log.
            routine = status != STATUS_FAULTED and error_code == ERROR_NONE
            _LOGGER.log(
                logging.DEBUG if routine else logging.INFO,
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

    def _idle_status(self, connector: Connector) -> str:
        operative = connector.operative and self._station_operative
        return STATUS_AVAILABLE if operative else STATUS_UNAVAILABLE

    def _connector(self, number: int | None) -> Connector | None:
        if number is None:
            return None
        return self._connectors.get(int(number))

    # -- sessions -----------------------------------------------------------------------

    def targets(self, number: int | None) -> list[Connector] | None:
        """Return the connectors a request means (none or 0: all), None if it is unknown."""
        if not number:
            return list(self._connectors.values())
        connector = self._connector(number)
        return None if connector is None else [connector]

    def _free_connector(self, number: int | None) -> Connector | None:
        """Return the connector a session may start on (the given one or the first free)."""
        for connector in self.targets(number) or []:
            if connector.session is None and connector.status == STATUS_AVAILABLE:
                return connector
        return None

    def _reserve(
        self, connector: Connector, id_tag: str, remote_start_id: int | None = None
    ) -> Session:
        """Claim the connector for a session at once, before its transaction starts."""
        session = Session(
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

    async def _start_session(self, connector: Connector, trigger: str = "Authorized") -> None:
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
        self, connector: Connector, reason: str, *, finishing: bool = True
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

    def _power_limit(self, connector: Connector) -> float:
        limit = MAX_POWER_W
        for profile in self._profiles:
            if profile.connector in (0, connector.id):
                limit = min(limit, profile.limit_w)
        return max(limit, 0.0)

    def _advance(self, connector: Connector) -> None:
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

    def sample(self, connector: Connector, *, stopped: bool = False) -> Sample:
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
        return Sample(
            energy_wh=int(connector.energy_wh),
            power_w=round(connector.power_w, 1),
            currents=currents,
            voltages=voltages,
            soc=round(connector.soc, 1) if connector.session is not None else None,
        )

    # -- what the central system asks ----------------------------------------------------

    def reset(self, stop_reason: str, *, on_idle: bool = False) -> str:
        """Reboot once the answer is sent (on_idle: once no session runs); return the status."""
        if on_idle and any(c.session for c in self._connectors.values()):
            self._reset_scheduled = True
            return "Scheduled"
        self.later(lambda: self._reboot("RemoteReset", stop_reason=stop_reason))
        return "Accepted"

    def change_availability(self, target: int, operative: bool) -> str:
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
        self.later(lambda: self._report_availability(target, connectors))
        return "Scheduled" if busy and not operative else "Accepted"

    async def _report_availability(self, target: int, connectors: list[Connector]) -> None:
        link = self._link
        if link is not None and target == 0:
            await link.send_station_status(self._station_operative)
        for connector in connectors:
            if connector.session is None and connector.status != STATUS_FAULTED:
                await self._set_status(connector, self._idle_status(connector))

    def remote_start(
        self,
        number: int | None,
        id_tag: str,
        remote_start_id: int | None = None,
        profile: Profile | None = None,
    ) -> bool:
        connector = self._free_connector(number)
        if connector is None:
            return False
        if profile is not None:
            profile.connector = connector.id
            self._profiles.append(profile)
        self._reserve(connector, id_tag, remote_start_id)
        self.later(lambda: self._start_session(connector, "RemoteStart"))
        return True

    def remote_stop(self, transaction_id: int | str) -> bool:
        found = [
            c
            for c in self._connectors.values()
            if c.session is not None and c.session.transaction_id == transaction_id
        ]
        if not found:
            return False
        self.later(lambda: self._stop_session(found[0], "Remote"))
        return True

    def firmware_report(self) -> str:
        """The firmware status to report on request: Idle unless an update is under way."""
        busy = self.firmware_status in (
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
        )
        return self.firmware_status if busy else "Idle"

    def set_profile(self, profile: Profile) -> str:
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

    def clear_profiles(
        self,
        profile_id: int | None,
        connector: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        def matches(profile: Profile) -> bool:
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

    def update_firmware(
        self, request_id: int | None, retrieve: str | None, *, signed: bool = False
    ) -> None:
        """Download and install a new firmware once the answer is sent (at retrieve), reboot.
        A signed firmware's signature is verified after the download (SignatureVerified,
        2.0.1 L01.FR.04 and the 1.6 whitepaper's signed update)."""
        self.later(lambda: self._update_firmware(request_id, retrieve, signed))

    async def _update_firmware(
        self, request_id: int | None, retrieve: str | None, signed: bool = False
    ) -> None:
        link = self._link
        if link is None:
            return
        if retrieve:
            with contextlib.suppress(ValueError):
                start = datetime.fromisoformat(retrieve.replace("Z", "+00:00"))
                wait = (start - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    await self._sleep(wait)
        verified = ["SignatureVerified"] if signed else []
        try:
            for status in ["Downloading", "Downloaded", *verified, "Installing"]:
                self.firmware_status = status
                _LOGGER.info("%s: firmware %s", self.id, status)
                await link.send_firmware_status(status, request_id)
                await self._sleep(STEP_TIME)
        except (asyncio.CancelledError, ConnectionClosedError):
            # The central system went away mid-update: a station installs all the same and
            # boots with the new firmware once it is back.
            self.firmware_version = _bump_version(self.firmware_version)
            self.firmware_status = "Installed"
            self._registered = False
            self._boot_reason = "FirmwareUpdate"
            raise
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

    def upload(self, request_id: int | None, *, diagnostics: bool) -> str:
        """Upload diagnostics (1.6) or a log once the answer is sent; return the file name."""
        self.later(lambda: self._upload(request_id, diagnostics))
        return self._upload_name("diagnostics" if diagnostics else "log")

    def _upload_name(self, kind: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{kind}-{self.id}-{stamp}.log"

    def unlock(self, number: int, *, stop_session: bool) -> str:
        connector = self._connector(number)
        if connector is None:
            return "UnknownConnector"
        if connector.session is not None:
            if not stop_session:
                return "OngoingAuthorizedTransaction"
            self.later(lambda: self._stop_session(connector, "UnlockCommand"))
        return "Unlocked"

    def apply_setting(self, key: str, value: str) -> str:
        """Change a setting; return Accepted, Rejected or NotSupported."""
        setting = self._settings.get(key)
        if setting is None:
            return "NotSupported"
        if setting.readonly:
            return "Rejected"
        if key in PASSWORD_KEYS:
            return self._rotate_password(key, value)
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

    def _rotate_password(self, key: str, value: str) -> str:
        """A01 / 1.6 AuthorizationKey: take the new Basic auth password (never stored in
        the device model) and reconnect with it once the answer is sent."""
        password = parse_password(key, value)
        if password is None:
            return "Rejected"
        if self._password is None:
            return "Rejected"  # security profile 0: no Basic auth to rotate
        self._password = password
        self.later(self._reconnect_with_new_password)
        return "Accepted"

    async def _reconnect_with_new_password(self) -> None:
        _LOGGER.info("%s: reconnecting with its new password", self.id)
        self._disconnect(reconnect_after=STEP_TIME, code=aiohttp.WSCloseCode.GOING_AWAY)

    def _security_profile(self) -> str:
        """The OCPP security profile: 0 = none, 1 = Basic auth, 2 = Basic auth over TLS."""
        if self._password is None:
            return "0"
        return "1" if self.url.startswith("ws://") else "2"

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

    async def _failed_start(self, connector: Connector) -> None:
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
            free: list[Connector] = []
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

    async def _recover(self, connector: Connector) -> None:
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
