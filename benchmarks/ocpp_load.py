"""OCPP 1.6 load generator: N simulated chargers over real websockets, one call outstanding each.

Each charger opens ws://HOST:PORT/PATH/<prefix><i> with subprotocol ocpp1.6, sends a
BootNotification, one StatusNotification and one MeterValues (so its entities exist), then
runs Heartbeat, StatusNotification (connector 1, Available/Charging in turn) and MeterValues
(connector 1: energy register, power, current L1-L3) in turn, timing each call from the send
to its CALLRESULT.

    closed loop: every charger sends its next call as soon as the last one is answered;
    open loop:   --rate calls/s in total, paced by the clock, each to the next idle charger.

The client is a plain asyncio Protocol speaking RFC 6455 itself (handshake, masked frames,
ping/pong, close): no per-message task, no schema validation, frames built from byte templates,
answers read with orjson. On a 2-core machine the central system under test gets one core and
this client must stay well under the other; it reports its own CPU share to prove it.

Prints one JSON object on stdout. With --control it prints {"event": "ready", ...} once all
chargers are connected, waits for a line "go" on stdin, prints {"event": "result", ...}, then
waits for "close" (or EOF) before it closes the sockets: so an orchestrator can measure the
server between the phases.

    .venv/bin/python benchmarks/ocpp_load.py --port 9000 --chargers 1000 --duration 15
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import math
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure Python fallback is slower, not wrong

    def apply_mask(data: bytes, mask: bytes) -> bytes:
        """XOR data with the 4-byte mask."""
        n = len(data)
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
CALLRESULT, CALLERROR = 3, 4
STEP_TIMEOUT = 30.0  # connect, handshake and each priming call
DRAIN_TIMEOUT = 20.0  # after the window: answers still missing then count as errors
LOG_STEP = math.log(1.01)  # latency histogram buckets: 1 % wide

_TS = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z").encode()
BOOT = (
    b'","BootNotification",{"chargePointVendor":"evhub-bench","chargePointModel":"LoadGen",'
    b'"chargePointSerialNumber":"%s","firmwareVersion":"1.0.0"}]'
)
HEARTBEAT = b'","Heartbeat",{}]'
STATUS = (
    b'","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"%s",'
    b'"timestamp":"' + _TS + b'"}]'
)
STATUS_BY_TURN = (STATUS % b"Available", STATUS % b"Charging")
METER = (
    b'","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"' + _TS + b'",'
    b'"sampledValue":['
    b'{"value":"%d","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register",'
    b'"unit":"Wh"},'
    b'{"value":"%d","measurand":"Power.Active.Import","unit":"W"},'
    b'{"value":"%d.%d","measurand":"Current.Import","phase":"L1","unit":"A"},'
    b'{"value":"%d.%d","measurand":"Current.Import","phase":"L2","unit":"A"},'
    b'{"value":"%d.%d","measurand":"Current.Import","phase":"L3","unit":"A"}]}]}]'
)


def ws_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.3), unfragmented."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    return head + mask + apply_mask(payload, mask)


class Stats:
    """What the chargers of this process saw."""

    def __init__(self) -> None:
        self.window_start = math.inf
        self.window_end = math.inf
        self.latencies: list[float] = []
        self.callerrors = 0
        self.disconnects = 0
        self.protocol_errors = 0
        self.server_calls = 0
        self.connect_errors = 0
        self.boot_rejected = 0
        self.busy_skips = 0
        self.unsent = 0
        self.warmup_max = 0.0
        self.max_pace_lag = 0.0
        self.first_errors: list[str] = []

    def note(self, text: str) -> None:
        if len(self.first_errors) < 5:
            self.first_errors.append(text)


class Charger(asyncio.Protocol):
    """One simulated charge point on one socket."""

    def __init__(self, run: Run, cp_id: str, path: str) -> None:
        self.run = run
        self.stats = run.stats
        self.cp_id = cp_id
        self.path = path
        self.transport: asyncio.Transport | None = None
        self.mask = os.urandom(4)
        self.key = base64.b64encode(os.urandom(16))
        self.buffer = b""
        self.fragments: list[bytes] | None = None
        self.handshaken = False
        self.closed = False
        self.waiter: asyncio.Future[Any] | None = None
        self.pending_id = b""
        self.in_loop = False  # the pending call is a workload call, counted in run.outstanding
        self.sent_at = 0.0
        self.seq = 0
        self.turn = 0
        self.energy = 10_000 + int.from_bytes(os.urandom(2), "big")

    # Transport callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host = self.run.host.encode()
        transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
            % (self.path.encode(), host, self.run.port, self.key)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed = self.closed
        self.closed = True
        self.transport = None
        self._wake(ConnectionError(f"{self.cp_id}: connection lost ({exc})"))
        if not was_closed and not self.run.closing:
            self.stats.disconnects += 1
            self.stats.note(f"{self.cp_id}: disconnected ({exc})")
        self.pending_id = b""
        if self.in_loop:
            self.in_loop = False
            self.run.answered()

    def data_received(self, data: bytes) -> None:
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        if not self.handshaken:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = data
                return
            self._handshake(data[:end])
            data = data[end + 4 :]
            if self.closed:
                return
        pos = 0
        size = len(data)
        while size - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            pos = end
            opcode = b0 & 0x0F
            if opcode == OP_TEXT and b0 & 0x80:
                self._on_message(data[start:end])
            else:
                self._on_control(opcode, b0 & 0x80, data[start:end])
        if pos < size:
            self.buffer = data[pos:]

    # Frames -----------------------------------------------------------------------------

    def _handshake(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
        if not lines[0].startswith(b"HTTP/1.1 101"):
            self._fail(f"handshake refused: {lines[0].decode(errors='replace')}")
        elif headers.get(b"sec-websocket-accept") != accept:
            self._fail("handshake: wrong Sec-WebSocket-Accept")
        elif headers.get(b"sec-websocket-protocol") != b"ocpp1.6":
            self._fail("handshake: server did not select ocpp1.6")
        else:
            self.handshaken = True
            self._wake(None)

    def _on_control(self, opcode: int, fin: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._write(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            if not self.closed:
                self.closed = True
                if not self.run.closing:
                    self.stats.disconnects += 1
                    self.stats.note(f"{self.cp_id}: server closed ({payload[2:]!r})")
                self._write(OP_CLOSE, payload[:2])
                if self.transport is not None:
                    self.transport.close()
        elif opcode == OP_TEXT:  # first fragment of a fragmented message
            self.fragments = [payload]
        elif opcode == OP_CONT and self.fragments is not None:
            self.fragments.append(payload)
            if fin:
                message = b"".join(self.fragments)
                self.fragments = None
                self._on_message(message)
        elif opcode != OP_PONG:
            self.stats.protocol_errors += 1
            self.stats.note(f"{self.cp_id}: unexpected opcode {opcode}")

    def _on_message(self, payload: bytes) -> None:
        now = time.perf_counter()
        try:
            message = orjson.loads(payload)
            kind, message_id = message[0], message[1]
        except (orjson.JSONDecodeError, IndexError, TypeError, KeyError):
            self.stats.protocol_errors += 1
            self.stats.note(f"{self.cp_id}: unreadable frame {payload[:80]!r}")
            return
        if kind == 2:  # the server calls us: not part of the workload, answer and count it
            self.stats.server_calls += 1
            self._write(OP_TEXT, orjson.dumps([CALLRESULT, message_id, {}]))
            return
        if not self.pending_id or message_id.encode() != self.pending_id:
            self.stats.protocol_errors += 1
            self.stats.note(f"{self.cp_id}: answer to a call not made: {payload[:80]!r}")
            return
        self.pending_id = b""
        stats = self.stats
        if kind == CALLERROR:
            stats.callerrors += 1
            stats.note(f"{self.cp_id}: CALLERROR {payload[:200]!r}")
        if self.waiter is not None:
            self._wake(message)
            return
        run = self.run
        self.in_loop = False
        run.answered()
        # A call counts in the window it was sent in, however late its answer comes: a stall
        # at the window's edge is measured, not half hidden.
        sent_at = self.sent_at
        if stats.window_start <= sent_at < stats.window_end:
            stats.latencies.append(now - sent_at)
        elif sent_at < stats.window_start:
            stats.warmup_max = max(stats.warmup_max, now - sent_at)
        if run.closed_loop and now < stats.window_end:
            self.send_next()

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(opcode, payload, self.mask))

    def _fail(self, reason: str) -> None:
        self.stats.note(f"{self.cp_id}: {reason}")
        self.closed = True
        self._wake(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    def _wake(self, value: Any) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.waiter = None
        if isinstance(value, BaseException):
            waiter.set_exception(value)
        else:
            waiter.set_result(value)

    # Calls ------------------------------------------------------------------------------

    def _send_call(self, body: bytes) -> None:
        """Send [2,"<id> + body: body starts with the quote that closes the message id."""
        self.seq += 1
        message_id = b"%x" % self.seq
        self.pending_id = message_id
        self.sent_at = time.perf_counter()
        self._write(OP_TEXT, b'[2,"' + message_id + body)

    def send_next(self) -> None:
        """Send the next call of the Heartbeat, StatusNotification, MeterValues cycle."""
        turn = self.turn
        self.turn = turn + 1
        step = turn % 3
        if step == 0:
            body = HEARTBEAT
        elif step == 1:
            body = STATUS_BY_TURN[(turn // 3) & 1]
        else:
            body = self._meter()
        self.run.outstanding += 1
        self.in_loop = True
        self._send_call(body)

    def _meter(self) -> bytes:
        self.energy += 7 + (self.seq & 7)
        amps = 300 + (self.seq & 15) * 2
        return METER % (
            self.energy,
            amps * 23,
            amps // 10,
            amps % 10,
            amps // 10,
            (amps + 1) % 10,
            amps // 10,
            (amps + 2) % 10,
        )

    async def _await_answer(self, body: bytes) -> Any:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self._send_call(body)
        return await asyncio.wait_for(self.waiter, STEP_TIMEOUT)

    async def start(self) -> None:
        """Handshake, boot, and one StatusNotification and MeterValues."""
        # The server's 101 may have been read before create_connection returned to us.
        if self.closed:
            raise ConnectionError(f"{self.cp_id}: handshake failed")
        if not self.handshaken:
            self.waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiter, STEP_TIMEOUT)
        answer = await self._await_answer(BOOT % self.cp_id.encode())
        status = answer[2].get("status") if answer[0] == CALLRESULT else None
        if status != "Accepted":
            self.stats.boot_rejected += 1
            raise ConnectionError(f"{self.cp_id}: BootNotification answered {answer!r}")
        await self._await_answer(STATUS_BY_TURN[0])
        await self._await_answer(self._meter())
        self.turn = 0

    def close(self) -> None:
        """Send a close frame and close the socket."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self._write(OP_CLOSE, (1000).to_bytes(2, "big"))
            self.transport.close()


class Run:
    """The chargers of this process and the phases they go through."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host: str = args.host
        self.port: int = args.port
        self.stats = Stats()
        self.chargers: list[Charger] = []
        self.outstanding = 0
        self.idle: asyncio.Event | None = None
        self.closed_loop = False
        self.closing = False
        self.connect_s = 0.0

    async def connect_all(self) -> None:
        """Connect and prime every charger, at most --wave at a time."""
        loop = asyncio.get_running_loop()
        args = self.args
        gate = asyncio.Semaphore(args.wave)
        path = args.path.rstrip("/")

        async def one(index: int) -> None:
            cp_id = f"{args.prefix}{index}"
            async with gate:
                try:
                    _, charger = await asyncio.wait_for(
                        loop.create_connection(
                            lambda: Charger(self, cp_id, f"{path}/{cp_id}"), self.host, self.port
                        ),
                        STEP_TIMEOUT,
                    )
                    await charger.start()
                except (OSError, TimeoutError, ConnectionError) as err:
                    self.stats.connect_errors += 1
                    self.stats.note(f"{cp_id}: {type(err).__name__}: {err}")
                    return
                self.chargers.append(charger)

        begin = time.perf_counter()
        numbers = range(args.first, args.first + args.chargers)
        tasks = [asyncio.ensure_future(one(i)) for i in numbers]
        _, late = await asyncio.wait(tasks, timeout=args.connect_timeout)
        for task in late:
            task.cancel()
        if late:
            self.stats.connect_errors += len(late)
            self.stats.note(f"{len(late)} chargers not connected within {args.connect_timeout:g} s")
            await asyncio.wait(late)
        self.connect_s = time.perf_counter() - begin

    def ready(self) -> dict[str, Any]:
        return {
            "chargers": self.args.chargers,
            "connected": sum(1 for c in self.chargers if not c.closed),
            "connect_s": round(self.connect_s, 3),
            "connect_errors": self.stats.connect_errors,
            "boot_rejected": self.stats.boot_rejected,
            "first_errors": self.stats.first_errors,
        }

    async def closed(self, warmup: float, duration: float) -> None:
        """Every charger keeps one call outstanding."""
        now = time.perf_counter()
        self.stats.window_start = now + warmup
        self.stats.window_end = now + warmup + duration
        self.closed_loop = True
        for charger in self.chargers:
            if not charger.closed:
                charger.send_next()
        await asyncio.sleep(warmup + duration)
        self.closed_loop = False

    async def open(self, rate: float, warmup: float, duration: float) -> None:
        """rate calls/s in total, each to the next idle charger, on the clock."""
        loop = asyncio.get_running_loop()
        stats = self.stats
        chargers = [c for c in self.chargers if not c.closed]
        if not chargers:
            return
        begin = time.perf_counter()
        stats.window_start = begin + warmup
        stats.window_end = begin + warmup + duration
        done = loop.create_future()
        sent = 0
        cursor = 0
        count = len(chargers)

        def tick() -> None:
            nonlocal sent, cursor
            now = time.perf_counter()
            if now >= stats.window_end:
                done.set_result(None)
                return
            due = int((now - begin) * rate) - sent
            if due > 0:
                lag = now - (begin + (sent + 1) / rate)
                stats.max_pace_lag = max(stats.max_pace_lag, lag)
            for left in range(due, 0, -1):
                for _ in range(count):
                    charger = chargers[cursor]
                    cursor = (cursor + 1) % count
                    if not charger.pending_id and not charger.closed:
                        charger.send_next()
                        break
                    stats.busy_skips += 1
                else:
                    # Every charger waits for an answer: the server stalls. Not sent, not owed.
                    stats.unsent += left
                    sent += left
                    break
                sent += 1
            loop.call_later(0.002, tick)

        tick()
        await done

    async def drain(self) -> int:
        """Wait for the answers still outstanding; return how many never came."""
        self.idle = asyncio.Event()
        if self.outstanding > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), DRAIN_TIMEOUT)
        return max(self.outstanding, 0)

    def answered(self) -> None:
        """A workload call got its answer, or never will."""
        self.outstanding -= 1
        if self.outstanding <= 0 and self.idle is not None:
            self.idle.set()

    def result(self, duration: float, cpu: float, wall: float, timeouts: int) -> dict[str, Any]:
        stats = self.stats
        lat = sorted(stats.latencies)
        hist: dict[int, int] = {}
        for value in lat:
            bucket = int(math.log(max(value * 1e6, 1.0)) / LOG_STEP)
            hist[bucket] = hist.get(bucket, 0) + 1
        calls = len(lat)
        errors = (
            stats.callerrors
            + stats.disconnects
            + stats.protocol_errors
            + stats.connect_errors
            + stats.boot_rejected
            + timeouts
        )
        return {
            "connected": sum(1 for c in self.chargers if not c.closed),
            "calls": calls,
            "duration": duration,
            "calls_per_s": round(calls / duration, 1),
            "p50_ms": round(percentile(lat, 0.50) * 1000, 3),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 3),
            "max_ms": round(lat[-1] * 1000, 3) if lat else 0.0,
            "errors": errors,
            "callerrors": stats.callerrors,
            "disconnects": stats.disconnects,
            "timeouts": timeouts,
            "protocol_errors": stats.protocol_errors,
            "server_calls": stats.server_calls,
            "busy_skips": stats.busy_skips,
            "unsent": stats.unsent,
            "warmup_max_ms": round(stats.warmup_max * 1000, 3),
            "max_pace_lag_ms": round(stats.max_pace_lag * 1000, 3),
            "client_cpu": round(cpu / wall, 3) if wall else 0.0,
            "first_errors": stats.first_errors,
            "hist": hist,
        }

    def close_all(self) -> None:
        self.closing = True
        for charger in self.chargers:
            charger.close()


def percentile(ordered: list[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


async def stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def amain(args: argparse.Namespace) -> int:
    run = Run(args)
    reader = await stdin_reader() if args.control else None
    try:
        await run.connect_all()
        ready = run.ready()
        if reader is not None:
            emit({"event": "ready", **ready})
            line = await asyncio.wait_for(reader.readline(), args.max_wait)
            if line.strip() != b"go":
                return 1
        # The chargers live to the end: keep the collector from walking them while we time.
        gc.collect()
        gc.freeze()
        gc.disable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if args.rate:
            await run.open(args.rate, args.warmup, args.duration)
        else:
            await run.closed(args.warmup, args.duration)
        timeouts = await run.drain()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        result = run.result(args.duration, cpu, wall, timeouts)
        result["connect_s"] = ready["connect_s"]
        result["mode"] = f"open {args.rate:g}/s" if args.rate else "closed"
        if reader is not None:
            emit({"event": "result", **result})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.readline(), args.max_wait)
        else:
            result.pop("hist")
            emit(result)
        return 0
    finally:
        run.close_all()
        await asyncio.sleep(0.2)  # let the close frames go out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ocpp")
    parser.add_argument("--prefix", default="BENCH-", help="charge point id prefix")
    parser.add_argument("--first", type=int, default=0, help="number of the first charger")
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--wave", type=int, default=500, help="at most this many connecting")
    parser.add_argument(
        "--connect-timeout", type=float, default=600.0, help="longest time to connect them all"
    )
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="open loop at this many calls/s (0: closed)"
    )
    parser.add_argument("--control", action="store_true", help="ready/go/close over stdio")
    parser.add_argument(
        "--max-wait", type=float, default=600.0, help="longest wait for a control line"
    )
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("loopback only")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
