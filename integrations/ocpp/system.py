"""The central system: websocket listeners, security profiles, admission, liveness."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.core import Hub
from hub.http.metrics import ProtocolStats, register_protocol_stats
from hub.security import Severity, security_log
from hub.storage import Store
from hub.util import freeze_long_lived
from integrations.ocpp.connection import Connection
from integrations.ocpp.const import (
    CONF_AUTHORIZE_UNKNOWN,
    CONF_BURST,
    CONF_CA_CERTS,
    CONF_CALL_TIMEOUT,
    CONF_CERTFILE,
    CONF_CHARGERS,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HOST,
    CONF_ID,
    CONF_ID_TAGS,
    CONF_KEYFILE,
    CONF_LISTENERS,
    CONF_MAX_FRAME_SIZE,
    CONF_NAME,
    CONF_OFFLINE_AFTER,
    CONF_PASSWORD,
    CONF_PASSWORD_HASH,
    CONF_PATH,
    CONF_PORT,
    CONF_RATE,
    CONF_RATE_LIMIT,
    CONF_SECURITY_PROFILE,
    CONF_SITE,
    CONF_UNKNOWN_CHARGERS,
    SEC_BAD_CERTIFICATE,
    SEC_BAD_PASSWORD,
    SEC_NO_CREDENTIALS,
    SEC_NO_SUBPROTOCOL,
    SEC_UNKNOWN_CHARGER,
    UNKNOWN_ACCEPT,
    UNKNOWN_PENDING,
)
from integrations.ocpp.protocol import OcppVersion
from integrations.ocpp.station import Station
from integrations.ocpp.transactions import TransactionStore

_LOGGER = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0
# A burst of at least this many connections, quiet for this long, freezes long-lived objects.
BURST_CONNECTS = 200
BURST_SETTLED = 2.0
CHARGERS_STORE_KEY = "ocpp.chargers"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Hash a charger's authorization key for storage.

    Charger keys are machine-made (OCPP asks for 16 to 40 random characters), so a salted
    SHA-256 resists guessing; a memory-hard hash would cost every reconnect of thousands of
    chargers tens of milliseconds of CPU for nothing.
    """
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.sha256(salt + password.encode()).hexdigest()
    return f"sha256${salt.hex()}${digest}"


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a stored hash in constant time."""
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    candidate = hashlib.sha256(salt + password.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


class ChargerConfig:
    """What the hub knows of one admitted charger."""

    __slots__ = ("cp_id", "name", "password_hash", "site")

    def __init__(
        self, cp_id: str, name: str | None, site: str | None, password_hash: str | None
    ) -> None:
        self.cp_id = cp_id
        self.name = name
        self.site = site
        self.password_hash = password_hash


class Listener:
    """One websocket endpoint with its security profile."""

    def __init__(self, system: CentralSystem, config: dict[str, Any]) -> None:
        self.system = system
        self.host: str = config[CONF_HOST]
        self.port: int = config[CONF_PORT]
        self.path: str = config[CONF_PATH].rstrip("/")
        self.profile: int = config[CONF_SECURITY_PROFILE]
        self.ssl_context = self._ssl_context(config) if self.profile >= 2 else None
        self.app = web.Application()
        self.app.router.add_get(self.path + "/{tail:.*}", self.handle)
        self.app.router.add_get(self.path, self.handle)
        self._runner: web.AppRunner | None = None

    @staticmethod
    def _ssl_context(config: dict[str, Any]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(config[CONF_CERTFILE], config[CONF_KEYFILE])
        if config[CONF_SECURITY_PROFILE] == 3:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=config[CONF_CA_CERTS])
        return context

    async def start(self) -> None:
        """Listen; port 0 picks a free port, readable from .port afterwards."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=self.ssl_context, backlog=4096
        )
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        scheme = "wss" if self.ssl_context else "ws"
        _LOGGER.info(
            "OCPP listening on %s://%s:%d%s/<charge point id> (security profile %d)",
            scheme,
            self.host,
            self.port,
            self.path,
            self.profile,
        )

    async def stop(self) -> None:
        """Stop listening and close connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Admit or refuse a charger, then run its connection."""
        system = self.system
        remote = request.remote
        cp_id = request.match_info.get("tail", "").rstrip("/").rsplit("/", 1)[-1]
        offered = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        version = next((OcppVersion(p) for p in offered if p in system.versions), None)
        if not cp_id:
            return await _refuse_ws(request, 1008, "no charge point id in the URL")
        if version is None:
            system.security_event(
                SEC_NO_SUBPROTOCOL,
                f"{cp_id} offered no supported OCPP subprotocol ({', '.join(offered) or 'none'})",
                None,
                {"offered": offered},
                remote=remote,
                cp_id=cp_id,
                severity=Severity.INFO,
            )
            return await _refuse_ws(
                request,
                1002,
                f"no supported OCPP subprotocol offered; use one of {', '.join(system.versions)}",
            )
        refusal = self._authenticate(request, cp_id, remote)
        if refusal is not None:
            return refusal
        known = system.chargers.get(cp_id)
        if known is None and system.unknown_policy not in (UNKNOWN_ACCEPT, UNKNOWN_PENDING):
            system.security_event(
                SEC_UNKNOWN_CHARGER,
                f"unknown charge point {cp_id!r} refused",
                None,
                {},
                remote=remote,
                cp_id=cp_id,
            )
            raise web.HTTPNotFound(text=f"unknown charge point {cp_id}")
        if cp_id in system.rejected:
            system.security_event(
                SEC_UNKNOWN_CHARGER,
                f"rejected charge point {cp_id!r} tried again",
                None,
                {},
                remote=remote,
                cp_id=cp_id,
            )
            raise web.HTTPForbidden(text=f"charge point {cp_id} was rejected")
        ws = web.WebSocketResponse(
            protocols=(version.value,),
            autoping=False,
            max_msg_size=max(system.max_frame_size * 4, 1024 * 1024),
            compress=False,
        )
        await ws.prepare(request)
        station = system.station(
            cp_id, pending=known is None and system.unknown_policy == UNKNOWN_PENDING
        )
        connection = Connection(system, station, ws, version, remote)
        system.note_connect()
        await station.attach(connection, self.profile)
        try:
            await connection.run()
        finally:
            await station.detach(connection)
        return ws

    def _authenticate(
        self, request: web.Request, cp_id: str, remote: str | None
    ) -> web.StreamResponse | None:
        """Check Basic auth (profiles 1, 2) or the client certificate (profile 3)."""
        system = self.system
        if self.profile == 3:
            peercert = request.transport.get_extra_info("peercert") if request.transport else None
            common_name = _common_name(peercert)
            if common_name != cp_id:
                system.security_event(
                    SEC_BAD_CERTIFICATE,
                    f"client certificate CN {common_name!r} does not match {cp_id!r}",
                    None,
                    {"cn": common_name},
                    remote=remote,
                    cp_id=cp_id,
                    severity=Severity.CRITICAL,
                )
                raise web.HTTPForbidden(text="client certificate does not match charge point id")
            return None
        if self.profile == 0:
            return None
        header = request.headers.get("Authorization", "")
        user, password = _basic_credentials(header)
        if user is None or password is None:
            system.security_event(
                SEC_NO_CREDENTIALS,
                f"{cp_id} connected without Basic credentials",
                None,
                {},
                remote=remote,
                cp_id=cp_id,
            )
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="evhub OCPP"'},
                text="Basic authentication required",
            )
        known = system.chargers.get(cp_id)
        if known is None:
            # Unknown charger: judged by the admission policy; a pending one's key becomes
            # its password when it is approved.
            if system.unknown_policy == UNKNOWN_PENDING and cp_id not in system.rejected:
                system.offered_keys[cp_id] = hash_password(password)
            return None
        if (
            user != cp_id
            or known.password_hash is None
            or not verify_password(password, known.password_hash)
        ):
            system.security_event(
                SEC_BAD_PASSWORD,
                f"wrong credentials for {cp_id}",
                None,
                {"user": user},
                remote=remote,
                cp_id=cp_id,
                severity=Severity.CRITICAL,
            )
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="evhub OCPP"'},
                text="wrong charge point id or password",
            )
        return None


async def _refuse_ws(request: web.Request, code: int, reason: str) -> web.WebSocketResponse:
    """Open the websocket only to close it with a reason the client can read."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=code, message=reason.encode()[:120])
    return ws


def _basic_credentials(header: str) -> tuple[str | None, str | None]:
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None, None
    return user, password


def _common_name(peercert: Any) -> str | None:
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class CentralSystem:
    """All listeners, stations and their connections."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self.hub = hub
        self.config = config
        self.versions = tuple(v.value for v in OcppVersion)
        self.unknown_policy: str = config[CONF_UNKNOWN_CHARGERS]
        self.heartbeat_interval: int = config[CONF_HEARTBEAT_INTERVAL]
        self.offline_after: float = config[CONF_OFFLINE_AFTER]
        self.call_timeout: float = config[CONF_CALL_TIMEOUT]
        self.max_frame_size: int = config[CONF_MAX_FRAME_SIZE]
        self.rate: float = config[CONF_RATE_LIMIT][CONF_RATE]
        self.burst: float = config[CONF_RATE_LIMIT][CONF_BURST]
        self.id_tags: set[str] = set(config[CONF_ID_TAGS])
        self.authorize_unknown: bool = config[CONF_AUTHORIZE_UNKNOWN]
        self.chargers: dict[str, ChargerConfig] = {}
        for entry in config[CONF_CHARGERS]:
            password = entry.get(CONF_PASSWORD)
            stored = entry.get(CONF_PASSWORD_HASH) or (
                hash_password(password) if password is not None else None
            )
            self.chargers[entry[CONF_ID]] = ChargerConfig(
                entry[CONF_ID], entry.get(CONF_NAME), entry.get(CONF_SITE), stored
            )
        self.configured_ids = frozenset(self.chargers)
        self.offered_keys: dict[str, str] = {}
        self.rejected: set[str] = set()
        self.stations: dict[str, Station] = {}
        self.listeners = [Listener(self, listener) for listener in config[CONF_LISTENERS]]
        self.transactions = TransactionStore(Path(hub.path("ocpp_transactions.db")))
        self.unreadable_frames = 0
        self.stats = ProtocolStats()
        self._unregister_stats: Callable[[], None] | None = None
        self._store: Store[dict[str, Any]] = Store(hub, 1, CHARGERS_STORE_KEY, private=True)
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._connects_since_freeze = 0
        self._last_connect = 0.0

    async def start(self) -> None:
        """Open the transaction store, load approved chargers, create stations, listen."""
        await self.transactions.open()
        stored = await self._store.load() or {}
        for cp_id, entry in stored.get("approved", {}).items():
            if cp_id not in self.chargers:
                self.chargers[cp_id] = ChargerConfig(
                    cp_id, entry.get("name"), entry.get("site"), entry.get("password_hash")
                )
        self.rejected = set(stored.get("rejected", []))
        for cp_id in self.chargers:
            self.station(cp_id, pending=False)
        for listener in self.listeners:
            await listener.start()
        self._schedule_sweep()
        self._unregister_stats = register_protocol_stats(self.hub, "ocpp", self.stats)

    async def stop(self) -> None:
        """Close listeners and connections, then the transaction store."""
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        if self._unregister_stats is not None:
            self._unregister_stats()
            self._unregister_stats = None
        for station in self.stations.values():
            await station.shutdown()
        for listener in self.listeners:
            await listener.stop()
        await self.transactions.close()
        await self._store.flush()

    def station(self, cp_id: str, pending: bool) -> Station:
        """Return the station of a charge point id, making it on first contact."""
        station = self.stations.get(cp_id)
        if station is None:
            known = self.chargers.get(cp_id)
            station = Station(
                self,
                cp_id,
                name=known.name if known else None,
                site=known.site if known else None,
                pending=pending,
            )
            self.stations[cp_id] = station
        elif pending and cp_id not in self.chargers:
            station.pending = True
        return station

    def is_admitted(self, cp_id: str) -> bool:
        """Whether BootNotification should be accepted."""
        return cp_id in self.chargers or self.unknown_policy == UNKNOWN_ACCEPT

    def pending(self) -> list[str]:
        """Charge point ids waiting for approval."""
        return sorted(cp_id for cp_id, station in self.stations.items() if station.pending)

    async def approve(self, cp_id: str) -> None:
        """Admit a pending charger; it is accepted at its next BootNotification."""
        station = self.stations.get(cp_id)
        if station is None or not station.pending:
            raise ValueError(f"charge point {cp_id} is not pending approval")
        self.chargers[cp_id] = ChargerConfig(cp_id, None, None, self.offered_keys.get(cp_id))
        self.rejected.discard(cp_id)
        self._save()
        await station.approved()

    async def reject(self, cp_id: str) -> None:
        """Refuse a pending charger now and whenever it comes back."""
        station = self.stations.get(cp_id)
        if station is None or not station.pending:
            raise ValueError(f"charge point {cp_id} is not pending approval")
        self.rejected.add(cp_id)
        self._save()
        await station.rejected()
        del self.stations[cp_id]

    def _save(self) -> None:
        def data() -> dict[str, Any]:
            return {
                "approved": {
                    cp_id: {"name": c.name, "site": c.site, "password_hash": c.password_hash}
                    for cp_id, c in self.chargers.items()
                    if cp_id not in self.configured_ids
                },
                "rejected": sorted(self.rejected),
            }

        self._store.delay_save(data, 0.5)

    def security_event(
        self,
        kind: str,
        message: str,
        connection: Connection | None,
        data: dict[str, Any],
        *,
        remote: str | None = None,
        cp_id: str | None = None,
        severity: Severity = Severity.WARNING,
    ) -> None:
        """Record a security event about a charger or a connection attempt."""
        security_log(self.hub).record(
            kind,
            message,
            severity=severity,
            source="ocpp",
            remote=remote if remote is not None else (connection.remote if connection else None),
            charge_point_id=cp_id
            if cp_id is not None
            else (connection.cp_id if connection else None),
            data=data,
        )

    def _schedule_sweep(self) -> None:
        self._sweep_handle = self.hub.loop.call_later(SWEEP_INTERVAL, self._sweep)

    def note_connect(self) -> None:
        """Count a new connection, for freezing long-lived objects after a burst."""
        self._connects_since_freeze += 1
        self._last_connect = time.monotonic()

    def _sweep(self) -> None:
        """Mark silent chargers offline and ping idle ones: one timer for all connections."""
        now = time.monotonic()
        for station in self.stations.values():
            station.check_liveness(now)
        if (
            self._connects_since_freeze >= BURST_CONNECTS
            and now - self._last_connect >= BURST_SETTLED
        ):
            self._connects_since_freeze = 0
            freeze_long_lived(f"a burst of charger connections ({len(self.stations)} stations)")
        self._schedule_sweep()
