"""One charger's websocket: frames in, CALLERRORs for bad ones, calls out one at a time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from hub.core import Context
from hub.exceptions import HubError, ServiceValidationError
from integrations.ocpp.const import (
    EVENT_INVALID_MESSAGE,
    SEC_FRAME_TOO_LARGE,
    SEC_OUT_OF_RANGE,
    SEC_RATE_LIMIT,
)
from integrations.ocpp.limits import LimitError
from integrations.ocpp.protocol import (
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameError,
    OcppVersion,
    call_frame,
    error_code,
    error_frame,
    parse_frame,
    result_frame,
    validate_call,
    validate_outbound_call,
    validate_result,
)

if TYPE_CHECKING:
    from cryptography import x509

    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Context], Awaitable[dict[str, Any]]]

_IDS = itertools.count(1)
# A connection's repeated offences of one kind become one security event per interval.
REPORT_INTERVAL = 10.0
# How long a ping waits for its pong, in real time: the socket's round trip, not hub time. A
# pong later than this still counts as a sign of life when it comes; waiting for it makes a
# test's manual clock see a live charger as alive before it moves on to its silence limit.
PONG_WAIT = 2.0


class OcppCallError(HubError):
    """A call to a charger failed: CALLERROR, timeout or offline."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class InvalidCallError(ServiceValidationError):
    """A call of ours would break its OCPP schema: it is not sent."""


class HandlerError(HubError):
    """A handler's refusal, answered with a CALLERROR of the given code."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class _TokenBucket:
    """A per-charger message rate limit: rate per second with a burst allowance."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


class Connection:
    """The websocket of one connected charger."""

    def __init__(
        self,
        system: CentralSystem,
        station: Station,
        ws: web.WebSocketResponse,
        version: OcppVersion,
        remote: str | None,
    ) -> None:
        self.system = system
        self.station = station
        self.ws = ws
        self.version = version
        self.remote = remote
        self.clock = system.clock
        self.connected_at = self.clock.time()
        # When the last frame or pong came, on the hub's monotonic clock (the liveness sweep
        # compares it with the heartbeat interval).
        self.last_seen = self.clock.monotonic()
        self.ping_sent_at: float | None = None
        self.unreadable_frames = 0
        self.bad_frames = 0
        self._bucket = _TokenBucket(system.rate, system.burst)
        self._rate_reported_at = 0.0
        self._range_reported_at = -REPORT_INTERVAL
        self.out_of_range = 0
        self._call_lock = asyncio.Lock()
        self._pending: tuple[str, str, asyncio.Future[Any]] | None = None
        # Resolved by any frame while a probe or a ping waits for a sign of life.
        self._activity: asyncio.Future[None] | None = None
        self.closed = False
        # The client certificate (security profile 3), parsed.
        self.certificate: x509.Certificate | None = None

    @property
    def cp_id(self) -> str:
        """The charge point id."""
        return self.station.cp_id

    async def run(self) -> None:
        """Read frames until the socket closes."""
        ws = self.ws
        clock = self.clock
        async for msg in ws:
            self.last_seen = clock.monotonic()
            if self._activity is not None and not self._activity.done():
                self._activity.set_result(None)
            if msg.type is WSMsgType.TEXT:
                await self._on_text(msg.data)
            elif msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                if self.ping_sent_at is not None:
                    self.station.set_latency((time.monotonic() - self.ping_sent_at) * 1000)
                    self.ping_sent_at = None
            elif msg.type is WSMsgType.BINARY:
                self.unreadable_frames += 1
                _LOGGER.warning("%s sent a binary frame; OCPP-J frames are text", self.cp_id)
            elif msg.type is WSMsgType.ERROR:
                _LOGGER.info("%s websocket error: %s", self.cp_id, ws.exception())
                break
        self.closed = True
        if self._activity is not None and not self._activity.done():
            self._activity.set_result(None)
        self._fail_pending(OcppCallError(f"charger {self.cp_id} disconnected"))

    def start_ping(self) -> None:
        """Send a websocket ping; the pong (any frame) counts as a sign of life.

        The ping is out from now on (the liveness sweep reads ``ping_sent_at``). The task
        waits a moment for the answer, so whoever waits for the hub to settle (a test moving
        its manual clock) sees a live charger's pong before its silence limit.
        """
        if self.closed or self.ws.closed:
            return
        # The round trip is measured in real time: it is the socket's latency.
        self.ping_sent_at = time.monotonic()
        self.system.hub.create_task(self._ping(), f"ping {self.cp_id}")

    async def _ping(self) -> None:
        activity = self._activity
        if activity is None or activity.done():
            activity = self._activity = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(ConnectionError):
                await self.ws.ping()
            await asyncio.wait((activity,), timeout=PONG_WAIT)
        finally:
            if self._activity is activity:
                self._activity = None

    async def probe(self, timeout: float) -> bool:
        """Tell whether the charger still answers on this socket (a pong or any frame)."""
        if self.closed or self.ws.closed:
            return False
        activity = self._activity = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(ConnectionError):
                await self.ws.ping()
            if not await self._within(activity, timeout):
                return False
        finally:
            if self._activity is activity:
                self._activity = None
        return not self.closed

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        """Close the socket."""
        self.closed = True
        await self.ws.close(code=code, message=message)

    async def _send(self, text: str) -> None:
        try:
            await self.ws.send_str(text)
        except ConnectionError as err:
            _LOGGER.debug("%s: send failed: %s", self.cp_id, err)

    async def _on_text(self, raw: str) -> None:
        system = self.system
        if len(raw) > system.max_frame_size:
            self.bad_frames += 1
            system.security_event(
                SEC_FRAME_TOO_LARGE,
                f"{self.cp_id} sent a frame of {len(raw)} bytes (limit {system.max_frame_size})",
                self,
                {"size": len(raw)},
            )
            message_id = _recover_id(raw[:200])
            if message_id is not None:
                await self._send(
                    error_frame(
                        message_id,
                        _formation(self.version),
                        f"frame of {len(raw)} bytes exceeds the limit of {system.max_frame_size}",
                        {},
                    )
                )
            return
        now = time.monotonic()
        if not self._bucket.take(now):
            self.bad_frames += 1
            if now - self._rate_reported_at > 10.0:
                self._rate_reported_at = now
                system.security_event(
                    SEC_RATE_LIMIT,
                    f"{self.cp_id} exceeds {system.rate:g} messages/s",
                    self,
                    {"rate": system.rate, "burst": system.burst},
                )
            message_id = _recover_id(raw[:200])
            if message_id is not None and raw.lstrip("[ ").startswith("2"):
                await self._send(
                    error_frame(message_id, "GenericError", "rate limit exceeded, retry later", {})
                )
            return
        action = None
        try:
            frame = parse_frame(raw, self.version)
            if type(frame) is Call:
                action = frame.action
                validate_call(self.version, frame)
        except FrameError as err:
            self._on_frame_error(err, raw, action)
            if err.message_id is not None and err.should_reply:
                await self._send(
                    error_frame(err.message_id, err.code, err.description, err.details)
                )
            elif err.message_id is None and self.version is OcppVersion.V201:
                # 2.0.1 Part 4 4.2.3: a frame whose message id cannot be read is answered
                # with the id "-1" (1.6 has no such answer: silence).
                await self._send(
                    error_frame("-1", ErrorCode.RPC_FRAMEWORK_ERROR.value, err.description, {})
                )
            return
        if type(frame) is Call:
            await self._on_call(frame)
        elif type(frame) is CallResult:
            self._on_result(frame.message_id, frame, None)
        elif type(frame) is CallError:
            self._on_result(frame.message_id, None, frame)

    def _on_frame_error(self, err: FrameError, raw: str, action: str | None) -> None:
        self._invalid_message(action, err.code)
        if err.out_of_range:
            self._report_out_of_range(action or "?", err.description, err.details.get("field"))
        if err.message_id is None:
            self.unreadable_frames += 1
            self.system.unreadable_frames += 1
            _LOGGER.warning("%s sent an unreadable frame: %s: %.200r", self.cp_id, err, raw)
        else:
            self.bad_frames += 1
            _LOGGER.info("%s sent a bad frame (%s): %s", self.cp_id, err.code, err.description)

    async def _on_call(self, call: Call) -> None:
        stats = self.system.stats
        stats.message(call.action)
        handler = self.station.handler(self.version, call.action)
        if handler is None:
            stats.error(call.action)
            await self._send(
                error_frame(
                    call.message_id,
                    "NotSupported",
                    f"{call.action} is not supported by this central system",
                    {},
                )
            )
            return
        context = Context()
        try:
            response = await handler(call.payload, context)
        except HandlerError as err:
            stats.error(call.action)
            await self._send(error_frame(call.message_id, err.code, err.description, {}))
            return
        except LimitError as err:
            stats.error(call.action)
            self._invalid_message(call.action, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION.value)
            self._report_out_of_range(call.action, str(err), err.field)
            code = error_code(self.version, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
            await self._send(error_frame(call.message_id, code, str(err), {"field": err.field}))
            return
        except Exception as err:
            stats.error(call.action)
            _LOGGER.exception("%s: error handling %s", self.cp_id, call.action)
            await self._send(
                error_frame(call.message_id, "InternalError", f"{type(err).__name__}", {})
            )
            return
        await self._send(result_frame(call.message_id, response))

    def _invalid_message(self, action: str | None, code: str) -> None:
        """Tell the bus of each invalid message (the security monitor counts their rate);
        the security log gets the throttled reports only."""
        self.system.hub.bus.fire(
            EVENT_INVALID_MESSAGE,
            {"charge_point_id": self.cp_id, "remote": self.remote, "action": action, "code": code},
        )

    def _report_out_of_range(self, action: str, description: str, field: str | None) -> None:
        """Count a value no real charger sends; a security event at most every interval."""
        self.out_of_range += 1
        self.bad_frames += 1
        now = time.monotonic()
        if now - self._range_reported_at < REPORT_INTERVAL:
            return
        self._range_reported_at = now
        self.system.security_event(
            SEC_OUT_OF_RANGE,
            f"{self.cp_id} sent {action} with {description}",
            self,
            {"action": action, "field": field, "count": self.out_of_range},
        )

    def _on_result(
        self, message_id: str, result: CallResult | None, error: CallError | None
    ) -> None:
        pending = self._pending
        if pending is None or pending[0] != message_id:
            _LOGGER.info(
                "%s answered a call we did not make or gave up on: %s", self.cp_id, message_id
            )
            return
        _, action, future = pending
        self._pending = None
        if future.done():
            return
        if error is not None:
            future.set_exception(
                OcppCallError(
                    f"{self.cp_id} answered {action} with {error.code}: {error.description}",
                    error.code,
                )
            )
            return
        assert result is not None
        try:
            validate_result(self.version, action, result)
        except FrameError as err:
            future.set_exception(
                OcppCallError(f"{self.cp_id} gave an invalid {action} response: {err}", err.code)
            )
            return
        future.set_result(result.payload)

    async def call(self, action: str, payload: dict[str, Any], timeout: float) -> Any:
        """Send a call and return the charger's answer; one outstanding call at a time.

        The call is checked against its official schema first: what would break it never
        leaves (InvalidCallError, an HTTP 400 with the schema's reason, for the API).
        """
        try:
            validate_outbound_call(self.version, action, payload)
        except FrameError as err:
            raise InvalidCallError(
                f"{action} for {self.cp_id} (OCPP {self.version.value.removeprefix('ocpp')})"
                f" is not valid: {err.description}"
            ) from None
        async with self._call_lock:
            if self.closed or self.ws.closed:
                raise OcppCallError(f"charger {self.cp_id} is offline")
            message_id = f"{next(_IDS):x}"
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending = (message_id, action, future)
            started = time.monotonic()
            stats = self.system.stats
            stats.message(action)
            await self._send(call_frame(message_id, action, payload))
            try:
                if not await self._within(future, timeout):
                    raise TimeoutError
                result = future.result()
            except TimeoutError:
                stats.error(action)
                raise OcppCallError(
                    f"{self.cp_id} did not answer {action} within {timeout:g} s"
                ) from None
            except OcppCallError:
                stats.error(action)
                raise
            finally:
                if self._pending is not None and self._pending[0] == message_id:
                    self._pending = None
            elapsed = time.monotonic() - started
            stats.observe(action, elapsed)
            self.station.set_latency(elapsed * 1000)
            return result

    async def _within(self, future: asyncio.Future[Any], timeout: float) -> bool:
        """Wait for future up to timeout seconds of hub time; tell whether it resolved.

        On the hub clock, so a test moves a charger's silence past a timeout by advancing
        its manual clock, without sleeping.
        """

        def settle(resolved: bool) -> None:
            if not waiter.done():
                waiter.set_result(resolved)

        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: settle(True))
        timer = self.clock.call_later(timeout, lambda: settle(False))
        try:
            return await waiter
        finally:
            timer.cancel()

    def _fail_pending(self, error: Exception) -> None:
        pending = self._pending
        self._pending = None
        if pending is not None and not pending[2].done():
            pending[2].set_exception(error)


def _formation(version: OcppVersion) -> str:
    return "FormationViolation" if version is OcppVersion.V16 else "FormatViolation"


def _recover_id(head: str) -> str | None:
    """Find the message id at the start of a frame we will not parse in full."""
    start = head.find('"')
    if start < 0:
        return None
    end = head.find('"', start + 1)
    if end < 0 or end - start - 1 > 36:
        return None
    return head[start + 1 : end] or None
