"""The pytest plugin integrations test with: ``pytest_plugins = ["hub.testing"]``.

Fixtures:

- ``hub_factory``: ``await hub_factory(config_yaml, manual_clock=True)`` starts a hub on a
  config dir of its own (HTTP on a free loopback port, ``http_url(hub)``), with the manual
  clock installed before start, and stops it after the test.
- ``api_user``: ``await api_user(hub, role)`` makes a user and returns a bearer token.
- ``verify_cleanup`` (autouse): fails a test that leaves tasks, timers or threads behind.
- ``ocpp_charge_point``: ``await ocpp_charge_point(url)`` opens a raw OCPP-J websocket
  (real frames, no library in between) to the hub's central system: ``call`` sends a CALL,
  ``handlers`` answer the hub's calls, ``send_frame`` sends anything (hostile frames too).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from hub.bootstrap import new_hub
from hub.clock import ManualClock, use_manual_clock
from hub.core import Hub
from hub.exceptions import HubError

HubFactory = Callable[..., Awaitable[Hub]]
# ``await api_user(hub, "operator")``: the api_user fixture's function.
ApiUser = Callable[[Hub, str], Awaitable[str]]
DEFAULT_CONFIG = "hub:\n  time_zone: UTC\n"
HTTP_CONFIG = "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
# Threads the interpreter, the executor and aiohttp's resolver keep for reuse.
_KEPT_THREADS = ("MainThread", "asyncio_", "ThreadPoolExecutor", "pydevd", "waitress")


@pytest.fixture(autouse=True)
async def verify_cleanup() -> AsyncIterator[None]:
    """Fail a test that leaves tasks, timers or threads running."""
    loop = asyncio.get_running_loop()
    tasks_before = asyncio.all_tasks(loop)
    threads_before = set(threading.enumerate())
    yield
    for _ in range(3):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks(loop) - tasks_before if t is not current and not t.done()]
    timers = [
        handle
        for handle in getattr(loop, "_scheduled", [])
        if not handle.cancelled() and "aiohttp" not in repr(handle)
    ]
    for task in tasks:
        task.cancel()
    for handle in timers:
        handle.cancel()
    threads = [
        thread
        for thread in set(threading.enumerate()) - threads_before
        if thread.is_alive() and not thread.daemon and not thread.name.startswith(_KEPT_THREADS)
    ]
    assert not tasks, f"test left tasks behind: {tasks}"
    assert not timers, f"test left timers behind: {timers}"
    assert not threads, f"test left threads behind: {threads}"


@pytest.fixture
async def hub_factory(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HubFactory]:
    """Start hubs on config dirs of their own; every one is stopped after the test."""
    started: list[Hub] = []

    async def start(
        config: str = "",
        *,
        manual_clock: bool = True,
        clock_start: float = 1_800_000_000.0,
    ) -> Hub:
        config_dir = tmp_path_factory.mktemp("evhub")
        # A hub with a configuration.yaml serves HTTP: on a free loopback port here.
        text = DEFAULT_CONFIG + HTTP_CONFIG + config
        (config_dir / "configuration.yaml").write_text(text)
        hub = new_hub(config_dir)
        if manual_clock:
            use_manual_clock(hub, clock_start)
        await hub.start()
        started.append(hub)
        return hub

    yield start
    for hub in reversed(started):
        await hub.stop()


def manual_clock_of(hub: Hub) -> ManualClock:
    """The manual clock hub_factory installed (advance it with ``await clock.advance(s)``)."""
    from hub.clock import clock

    found = clock(hub)
    assert isinstance(found, ManualClock), "the hub was started without manual_clock"
    return found


def http_url(hub: Hub) -> str:
    """The base URL of a hub hub_factory started."""
    from hub.http import DATA_HTTP

    server = hub.data[DATA_HTTP]
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def api_user() -> ApiUser:
    """``await api_user(hub, "operator")``: a new user of that role; returns a bearer token."""

    async def make(hub: Hub, role: str) -> str:
        from hub.auth import Role, auth_manager

        auth = auth_manager(hub)
        user = await auth.add_user(f"{role}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex, Role(role))
        token, _ = await auth.create_token(user, f"{role} test token")
        return token

    return make


_IDS = itertools.count(1)


class ChargerCallError(HubError):
    """The hub answered a call with a CALLERROR."""

    def __init__(self, frame: list[Any]) -> None:
        super().__init__(f"{frame[2]}: {frame[3]}")
        self.code = frame[2]
        self.description = frame[3]


class ErrorAnswer:
    """What a test handler returns to answer the hub with a CALLERROR."""

    def __init__(self, code: str, description: str = "") -> None:
        self.code = code
        self.description = description


class RawChargePoint:
    """A charge point speaking OCPP-J frames over a real websocket, frame by frame."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.handlers: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.received_event = asyncio.Event()
        self._waiters: dict[str, asyncio.Future[list[Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame[0] == 2:
                _, message_id, action, payload = frame
                self.received.append((action, payload))
                self.received_event.set()
                handler = self.handlers.get(action)
                if handler is None:
                    answer: Any = {"status": "Accepted"}
                else:
                    answer = handler(payload)
                    if asyncio.iscoroutine(answer):
                        answer = await answer
                if answer is None:
                    continue  # simulate a charger that never answers
                if isinstance(answer, ErrorAnswer):
                    await self.ws.send_str(
                        json.dumps([4, message_id, answer.code, answer.description, {}])
                    )
                    continue
                await self.ws.send_str(json.dumps([3, message_id, answer]))
            else:
                waiter = self._waiters.pop(frame[1], None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)

    async def send_frame(self, text: str, message_id: str | None = None) -> list[Any] | None:
        """Send raw text; wait for the answer to message_id if given."""
        waiter: asyncio.Future[list[Any]] | None = None
        if message_id is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[message_id] = waiter
        await self.ws.send_str(text)
        if waiter is None:
            return None
        return await asyncio.wait_for(waiter, 10)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload (raise on CALLERROR)."""
        message_id = f"m{next(_IDS)}"
        frame = await self.send_frame(json.dumps([2, message_id, action, payload]), message_id)
        assert frame is not None
        if frame[0] == 4:
            raise ChargerCallError(frame)
        result: dict[str, Any] = frame[2]
        return result

    async def wait_for_call(self, action: str, timeout: float = 10) -> dict[str, Any]:
        """Wait until the hub sent a call of action; return its payload."""

        async def find() -> dict[str, Any]:
            while True:
                for name, payload in self.received:
                    if name == action:
                        return payload
                self.received_event.clear()
                await self.received_event.wait()

        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.session.close()


async def open_charge_point(
    url: str,
    protocol: str = "ocpp1.6",
    password: str | None = None,
    user: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> RawChargePoint:
    """Connect a raw charge point to url (the listener's URL and the charge point id)."""
    session = aiohttp.ClientSession()
    headers = {}
    if password is not None:
        login = user or url.rsplit("/", 1)[-1]
        token = base64.b64encode(f"{login}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        ws = await session.ws_connect(
            url, protocols=(protocol,), headers=headers, ssl=ssl_context or False, autoping=True
        )
    except BaseException:
        await session.close()
        raise
    return RawChargePoint(session, ws)


Connect = Callable[..., Awaitable[RawChargePoint]]


@pytest.fixture
async def ocpp_charge_point() -> AsyncIterator[Connect]:
    """``await ocpp_charge_point(url, protocol="ocpp1.6", password=None)``: a raw charge point;
    all are closed after the test."""
    opened: list[RawChargePoint] = []

    async def connect(*args: Any, **kwargs: Any) -> RawChargePoint:
        client = await open_charge_point(*args, **kwargs)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.close()
