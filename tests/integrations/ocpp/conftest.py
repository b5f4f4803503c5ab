"""Fixtures for the OCPP tests: a hub with the OCPP integration, and charge point clients."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import ssl
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.core import Hub

_IDS = itertools.count(1)


class ChargerCallError(Exception):
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


Connect = Callable[..., Awaitable[RawChargePoint]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Open charge point connections; all are closed after the test."""
    opened: list[RawChargePoint] = []

    async def open_one(
        url: str,
        protocol: str = "ocpp1.6",
        password: str | None = None,
        user: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> RawChargePoint:
        session = aiohttp.ClientSession()
        headers = {}
        if password is not None:
            login = user or url.rsplit("/", 1)[-1]
            token = base64.b64encode(f"{login}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            ws = await session.ws_connect(
                url,
                protocols=(protocol,),
                headers=headers,
                ssl=ssl_context or False,
                autoping=True,
            )
        except BaseException:
            await session.close()
            raise
        client = RawChargePoint(session, ws)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        await client.close()


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def ocpp_hub(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Start a hub whose configuration.yaml holds the given ocpp section."""
    hubs: list[Hub] = []

    async def start(section: str, config_dir: Path | None = None, extra: str = "") -> Hub:
        directory = config_dir or tmp_path
        directory.joinpath("configuration.yaml").write_text(
            "http:\n  server_host: 127.0.0.1\n  server_port: 0\n"
            + "ocpp:\n"
            + textwrap.indent(textwrap.dedent(section).strip() + "\n", "  ")
            + textwrap.dedent(extra)
        )
        hub = Hub(directory)
        await hub.start()
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        await hub.stop()


def ws_url(hub: Hub, cp_id: str, index: int = 0, scheme: str = "ws") -> str:
    """The URL a charger with cp_id connects to."""
    listener = hub.data["ocpp.system"].listeners[index]
    return f"{scheme}://127.0.0.1:{listener.port}{listener.path}/{cp_id}"


async def wait_state(hub: Hub, entity_id: str, state: str, timeout: float = 5.0) -> None:
    """Wait until an entity has a state."""

    async def poll() -> None:
        while True:
            found = hub.states.get(entity_id)
            if found is not None and found.state == state:
                return
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        found = hub.states.get(entity_id)
        raise AssertionError(
            f"{entity_id} is {found.state if found else None!r}, expected {state!r}"
        ) from None
