"""The hub's HTTP server: aiohttp, configured by the ``http:`` section."""

from __future__ import annotations

import logging
import time
from typing import Any

import voluptuous as vol
from aiohttp import web

from hub import __version__
from hub.const import CONF_SERVER_HOST, CONF_SERVER_PORT, DEFAULT_HTTP_PORT
from hub.core import CoreState, Hub

_LOGGER = logging.getLogger(__name__)

DATA_HTTP = "http"
KEY_HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)

HTTP_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_SERVER_HOST, default="0.0.0.0"): str,
        vol.Optional(CONF_SERVER_PORT, default=DEFAULT_HTTP_PORT): vol.All(
            vol.Coerce(int), vol.Range(min=0, max=65535)
        ),
    }
)


class HttpServer:
    """The aiohttp application and its listening site."""

    def __init__(self, hub: Hub, host: str, port: int) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.app = web.Application()
        self.app[KEY_HUB] = hub
        self.app.router.add_get("/api/health", health)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; port 0 picks a free port, readable from .port afterwards."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        _LOGGER.info("HTTP server listening on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def health(request: web.Request) -> web.Response:
    """Answer whether the hub runs, and how each integration fares."""
    hub = request.app[KEY_HUB]
    from hub.plugins import plugin_registry

    integrations = {
        domain: status.as_dict() for domain, status in plugin_registry(hub).statuses().items()
    }
    running = hub.state is CoreState.running
    body: dict[str, Any] = {
        "status": "ok" if running else str(hub.state).lower(),
        "version": __version__,
        "state": str(hub.state),
        "uptime_s": round(time.time() - hub.started_at, 3) if hub.started_at else 0,
        "integrations": integrations,
    }
    return web.json_response(body, status=200 if running else 503)


async def async_start_http(hub: Hub, config: dict[str, Any]) -> HttpServer:
    """Start the HTTP server of a hub."""
    server = HttpServer(hub, config[CONF_SERVER_HOST], config[CONF_SERVER_PORT])
    await server.start()
    hub.data[DATA_HTTP] = server
    return server
