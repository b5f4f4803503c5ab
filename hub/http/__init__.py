"""The hub's HTTP server: aiohttp, configured by the ``http:`` section.

REST views, the WebSocket API, /metrics, the OpenAPI document and the built frontend, each
route with the least role it needs (hub.http.view.Route).
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from pathlib import Path
from typing import Any, Final

import voluptuous as vol
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hub import __version__, logbuffer
from hub.auth import Role, async_load_auth
from hub.const import CONF_SERVER_HOST, CONF_SERVER_PORT, DEFAULT_HTTP_PORT, EVENT_HUB_STARTED
from hub.core import CoreState, Hub, HubKey, Unsubscribe
from hub.http import (
    auth_views,
    devices_view,
    monitoring,
    notifications_view,
    openapi,
    rest,
    static,
    websocket_api,
)
from hub.http.discovery import Advertiser
from hub.http.extensions import dispatch_view, list_panels, panel_module
from hub.http.metrics import KEY_METRICS, LoopLag, make_registry, metrics
from hub.http.schemas import array, json_ok, ref, text_ok
from hub.http.view import (
    KEY_HUB,
    KEY_ROUTES,
    KEY_SECURE,
    KEY_TRUSTED_PROXIES,
    IPNetwork,
    Route,
    auth_middleware,
    error_middleware,
    guard,
    json_response,
    request_middleware,
    security_headers,
)
from hub.util import bind_error

_LOGGER = logging.getLogger(__name__)

DATA_HTTP: Final[HubKey[HttpServer]] = HubKey("http")
CONF_SSL_CERTIFICATE: Final = "ssl_certificate"
CONF_SSL_KEY: Final = "ssl_key"
CONF_METRICS_OPEN: Final = "metrics_open"
CONF_IP_BAN_ENABLED: Final = "ip_ban_enabled"
CONF_LOGIN_ATTEMPTS: Final = "login_attempts_threshold"
CONF_BAN_DURATION: Final = "ban_duration"
CONF_ZEROCONF: Final = "zeroconf"
CONF_FRONTEND_DIR: Final = "frontend_dir"
CONF_TRUSTED_PROXIES: Final = "trusted_proxies"

# aiohttp's limits, named: a request line or header line longer than this, or more headers
# than this, is answered 400 before any handler runs.
MAX_LINE_SIZE: Final = 8190
MAX_FIELD_SIZE: Final = 8190
MAX_HEADERS: Final = 128
# A connection must send a whole request within this long (slow-header attacks), and an idle
# keep-alive connection is closed after it.
KEEPALIVE_TIMEOUT: Final = 30.0
# How much of a refused request is quoted in the log line.
_LOGGED_REASON: Final = 160

__all__ = ["DATA_HTTP", "HTTP_SCHEMA", "KEY_HUB", "HttpServer", "ListenError", "async_start_http"]


def _both_or_neither(config: dict[str, Any]) -> dict[str, Any]:
    if (CONF_SSL_CERTIFICATE in config) != (CONF_SSL_KEY in config):
        raise vol.Invalid("ssl_certificate and ssl_key go together", path=[CONF_SSL_KEY])
    return config


def _network(value: Any) -> IPNetwork:
    """A CIDR network or a single address."""
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise vol.Invalid(f"not an IP address or CIDR network: {value!r}") from None


class _ServerLog(logging.Filter):
    """One line, no traceback, for a request aiohttp could not parse: the client's fault.

    A bad request line, an over-long line or too many headers arrive from scanners all the
    time; a traceback each would flood the log. Other errors keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = " ".join(str(exc.message).split())
            if len(reason) > _LOGGED_REASON:
                reason = reason[:_LOGGED_REASON] + "..."
            record.msg = "Refused a bad HTTP request from %s (%s): %s"
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.args = (peer, exc.code, reason)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return SERVER_LOGGER.isEnabledFor(logging.INFO)
        return True


SERVER_LOGGER: Final = logging.getLogger("hub.http.server")
SERVER_LOGGER.addFilter(_ServerLog())


HTTP_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional(CONF_SERVER_HOST, default="0.0.0.0"): str,
            vol.Optional(CONF_SERVER_PORT, default=DEFAULT_HTTP_PORT): vol.All(
                vol.Coerce(int), vol.Range(min=0, max=65535)
            ),
            vol.Optional(CONF_SSL_CERTIFICATE): str,
            vol.Optional(CONF_SSL_KEY): str,
            vol.Optional(CONF_METRICS_OPEN, default=False): bool,
            vol.Optional(CONF_IP_BAN_ENABLED, default=True): bool,
            vol.Optional(CONF_LOGIN_ATTEMPTS, default=5): vol.All(int, vol.Range(min=1)),
            vol.Optional(CONF_BAN_DURATION, default=3600): vol.All(
                vol.Coerce(float), vol.Range(min=1)
            ),
            vol.Optional(CONF_ZEROCONF, default=True): bool,
            vol.Optional(CONF_FRONTEND_DIR): str,
            vol.Optional(CONF_TRUSTED_PROXIES, default=list): vol.All(
                vol.Any(list, vol.All(str, lambda v: [v])), [_network]
            ),
        }
    ),
    _both_or_neither,
)


async def health(request: web.Request) -> web.Response:
    """Answer whether the hub runs, how each integration fares, and which ones do not work."""
    hub = request.app[KEY_HUB]
    from hub.plugins import plugin_registry

    statuses = plugin_registry(hub).statuses()
    integrations = {domain: status.as_dict() for domain, status in statuses.items()}
    problems = sorted(domain for domain, status in statuses.items() if not status.working)
    running = hub.state is CoreState.running
    status = ("degraded" if problems else "ok") if running else str(hub.state).lower()
    # 503 only while the hub itself does not run: a hub whose history database is full still
    # serves its chargers, and a liveness probe restarting it would drop every charger
    # connection and fix nothing. Monitors read status and problems.
    body: dict[str, Any] = {
        "status": status,
        "version": __version__,
        "state": str(hub.state),
        "uptime_s": round(time.time() - hub.started_at, 3) if hub.started_at else 0,
        "problems": problems,
        "integrations": integrations,
    }
    return json_response(body, status=200 if running else 503)


def all_routes(metrics_open: bool) -> list[Route]:
    """Every route of the server, the frontend's catch-all last."""
    return [
        Route(
            "GET",
            "/api/health",
            health,
            None,
            "Whether the hub runs",
            # 503 with the same body while the hub starts or stops.
            responses={**json_ok(ref("Health")), **json_ok(ref("Health"), "503")},
        ),
        *auth_views.ROUTES,
        *rest.ROUTES,
        *devices_view.ROUTES,
        *notifications_view.ROUTES,
        *monitoring.ROUTES,
        *websocket_api.ROUTES,
        *openapi.ROUTES,
        Route(
            "GET",
            "/api/panels",
            list_panels,
            Role.VIEWER,
            "Dashboard panels of integrations",
            responses=json_ok(array(ref("Panel"))),
        ),
        Route(
            "GET",
            "/api/panels/{domain}/{module}",
            panel_module,
            Role.VIEWER,
            "The JavaScript module of an integration's dashboard panel",
            responses=text_ok("text/javascript"),
        ),
        Route(
            "GET",
            "/metrics",
            metrics,
            None if metrics_open else Role.ADMIN,
            "Prometheus metrics",
            tag="metrics",
            responses=text_ok(),
        ),
        # Integrations' views, each under /api/<domain>/ (hub.http.extensions); after every
        # core route, so none can shadow one.
        Route("*", "/api/{tail:.*}", dispatch_view, None, "Views of integrations", tag="ext"),
        *static.ROUTES,
    ]


def _ssl_context(certificate: str, key: str) -> ssl.SSLContext:
    """A server TLS context (blocking: reads the files)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    return context


class ListenError(OSError):
    """The server could not listen; the message says where and why in one line."""


class HttpServer:
    """The aiohttp application and its listening site."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self.hub = hub
        self.config = config
        self.host: str = config[CONF_SERVER_HOST]
        self.port: int = config[CONF_SERVER_PORT]
        self.secure = CONF_SSL_CERTIFICATE in config
        self.app = web.Application(
            middlewares=[request_middleware, error_middleware, auth_middleware]
        )
        self.app[KEY_HUB] = hub
        self.app[KEY_SECURE] = self.secure
        self.app[KEY_TRUSTED_PROXIES] = tuple(config.get(CONF_TRUSTED_PROXIES, ()))
        self.app.on_response_prepare.append(security_headers)
        self.app[websocket_api.KEY_SOCKETS] = set()
        self.app[static.KEY_DIST] = (
            hub.path(config[CONF_FRONTEND_DIR]) if CONF_FRONTEND_DIR in config else static.DIST
        )
        self.routes = all_routes(config[CONF_METRICS_OPEN])
        self.app[KEY_ROUTES] = self.routes
        for route in self.routes:
            self.app.router.add_route(route.method, route.path, guard(route))
        self.lag = LoopLag(hub.loop)
        self.app[KEY_METRICS] = make_registry(hub, self.lag, self.app[websocket_api.KEY_SOCKETS])
        self.app.on_shutdown.append(websocket_api.close_all)
        self.advertiser: Advertiser | None = None
        self._unsub_started: Unsubscribe | None = None
        self._runner: web.AppRunner | None = None
        self._log_attached = False

    @property
    def url(self) -> str:
        """The base URL of the server."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{'https' if self.secure else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; port 0 picks a free port, readable from .port afterwards."""
        context: ssl.SSLContext | None = None
        if self.secure:
            context = await self.hub.run_in_executor(
                _ssl_context, self.config[CONF_SSL_CERTIFICATE], self.config[CONF_SSL_KEY]
            )
        await async_load_auth(self.hub, self.config)
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5,
            logger=SERVER_LOGGER,
            max_line_size=MAX_LINE_SIZE,
            max_field_size=MAX_FIELD_SIZE,
            max_headers=MAX_HEADERS,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, ssl_context=context
        )
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            reason = bind_error(err, "HTTP", self.host, self.port)
            if reason is None:
                raise
            raise ListenError(reason) from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.lag.start()
        logbuffer.attach()  # GET /api/error_log
        self._log_attached = True
        if self.config[CONF_ZEROCONF]:
            advertiser = self.advertiser = Advertiser(self.hub, self.host, self.port, self.secure)
            if self.hub.state is CoreState.running:
                advertiser.start()
            else:
                # What integrations advertise is known once they are set up.
                self._unsub_started = self.hub.bus.listen_once(
                    EVENT_HUB_STARTED, lambda _event: advertiser.start()
                )
        _LOGGER.info("HTTP server listening on %s", self.url)

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        self.lag.stop()
        if self._log_attached:
            logbuffer.detach()
            self._log_attached = False
        if self._unsub_started is not None:
            self._unsub_started()
            self._unsub_started = None
        if self.advertiser is not None:
            await self.advertiser.stop()
            self.advertiser = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        from hub.auth import DATA_AUTH

        auth = self.hub.data.get(DATA_AUTH)
        if auth is not None:
            await auth.flush()


async def async_start_http(hub: Hub, config: dict[str, Any]) -> HttpServer:
    """Start the HTTP server of a hub."""
    server = HttpServer(hub, config)
    await server.start()
    hub.data[DATA_HTTP] = server
    return server


def frontend_dist() -> Path:
    """Where the built frontend is looked for by default."""
    return static.DIST
