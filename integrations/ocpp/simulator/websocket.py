"""The websocket under a simulated charge point: the ocpp package's send/recv over aiohttp."""

from __future__ import annotations

import base64
from typing import Any, Protocol, cast

import aiohttp

from hub.exceptions import HubError


class SimulatorError(HubError):
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


def basic_auth_header(login: str, password: str) -> str:
    """Return the value of an HTTP Basic ``Authorization`` header."""
    token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
