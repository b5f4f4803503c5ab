"""The central system: websocket listeners, security profiles, admission, liveness."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import math
import os
import re
import ssl
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.charger import PendingCharger
from hub.clock import Timer, clock
from hub.const import EVENT_HUB_STARTED
from hub.core import CoreState, Hub
from hub.http.metrics import ProtocolStats, register_protocol_stats
from hub.plugins import IntegrationNotReadyError, health_reporter
from hub.security import SOURCE_HUB, Severity, security_log
from hub.storage import Store
from hub.util import bind_error, freeze_long_lived
from integrations.ocpp.connection import Connection
from integrations.ocpp.const import (
    CONF_AUTHORIZE_UNKNOWN,
    CONF_BURST,
    CONF_CALL_TIMEOUT,
    CONF_CHARGERS,
    CONF_DUPLICATE_CONNECTION,
    CONF_FUTURE_MINUTES,
    CONF_HANDSHAKE_TIMEOUT,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HOST,
    CONF_ID,
    CONF_ID_TAGS,
    CONF_LISTENERS,
    CONF_MAX_FRAME_SIZE,
    CONF_MAX_PENDING,
    CONF_MAX_PORTS,
    CONF_NAME,
    CONF_OFFLINE_AFTER,
    CONF_PASSWORD,
    CONF_PASSWORD_HASH,
    CONF_PAST_DAYS,
    CONF_PATH,
    CONF_PENDING_EXPIRY,
    CONF_PORT,
    CONF_RATE,
    CONF_RATE_LIMIT,
    CONF_SECURITY_PROFILE,
    CONF_SITE,
    CONF_TIMESTAMP_WINDOW,
    CONF_UNKNOWN_CHARGERS,
    DOMAIN,
    DUPLICATE_REFUSE_BOTH,
    DUPLICATE_REFUSE_NEW,
    EVENT_CLIENT_CERTIFICATE,
    PROBE_TIMEOUT,
    SEC_BAD_CERTIFICATE,
    SEC_BAD_IDENTITY,
    SEC_BAD_PASSWORD,
    SEC_DOWNGRADE,
    SEC_DUPLICATE_CONNECTION,
    SEC_NO_CREDENTIALS,
    SEC_NO_SUBPROTOCOL,
    SEC_PENDING_FULL,
    SEC_UNKNOWN_CHARGER,
    UNKNOWN_ACCEPT,
    UNKNOWN_PENDING,
)
from integrations.ocpp.ledger import SessionLedger
from integrations.ocpp.limits import Limits
from integrations.ocpp.protocol import OcppVersion
from integrations.ocpp.station import Station
from integrations.ocpp.tls import (
    SEC_CERTIFICATE_REVOKED,
    TlsFailure,
    TlsFiles,
    TlsServer,
    peer_certificate,
    revoked,
)
from integrations.ocpp.transactions import TransactionStore

_LOGGER = logging.getLogger(__name__)

# A05: a charger's minimum security profile was raised after its upgrade.
SEC_PROFILE_RAISED = "ocpp_security_profile_raised"

SWEEP_INTERVAL = 1.0
# How often the TLS listeners' files are checked for a change, in seconds.
TLS_WATCH_INTERVAL = 60.0
# At least this many more open connections than at the last freeze, quiet for this long,
# freezes long-lived objects (connections that come and go are not long-lived).
BURST_CONNECTS = 200
BURST_SETTLED = 2.0
CHARGERS_STORE_KEY = "ocpp.chargers"


def _text(value: Any) -> str | None:
    """A BootNotification field as kept for a pending charger: a string, or None."""
    return value if isinstance(value, str) and value else None


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

    __slots__ = ("cp_id", "name", "password_hash", "security_profile", "site")

    def __init__(
        self,
        cp_id: str,
        name: str | None,
        site: str | None,
        password_hash: str | None,
        security_profile: int | None = None,
    ) -> None:
        self.cp_id = cp_id
        self.name = name
        self.site = site
        self.password_hash = password_hash
        self.security_profile = security_profile


class Listener:
    """One websocket endpoint with its security profile."""

    def __init__(self, system: CentralSystem, config: dict[str, Any]) -> None:
        self.system = system
        self.host: str = config[CONF_HOST]
        self.port: int = config[CONF_PORT]
        self.path: str = config[CONF_PATH].rstrip("/")
        self.profile: int = config[CONF_SECURITY_PROFILE]
        # Profiles 2 and 3: the files are read here, so a bad one fails the set-up.
        self._tls_files = TlsFiles.of(config) if self.profile >= 2 else None
        self.tls: TlsServer | None = None
        if self._tls_files is not None:
            self.tls = TlsServer(self._tls_files, self._protocol, 0.0, self._tls_failure)
        self.app = web.Application()
        self.app.router.add_get(self.path + "/{tail:.*}", self.handle)
        self.app.router.add_get(self.path, self.handle)
        self._runner: web.AppRunner | None = None
        self._server: asyncio.base_events.Server | None = None

    def _protocol(self) -> asyncio.Protocol:
        assert self._runner is not None
        assert self._runner.server is not None
        return self._runner.server()

    def _tls_failure(self, failure: TlsFailure, remote: str | None, data: dict[str, Any]) -> None:
        self.system.security_event(
            failure.kind,
            f"TLS handshake from {remote} failed on port {self.port}: {failure.reason}",
            None,
            {**data, "port": self.port, "security_profile": self.profile},
            remote=remote,
            severity=failure.severity,
        )

    async def start(self) -> None:
        """Listen; port 0 picks a free port, readable from .port afterwards."""
        timeout = self.system.handshake_timeout
        # keepalive_timeout also bounds how long a new connection may take to send its
        # upgrade request: slow (slowloris) handshakes are closed after it, not after an hour.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, keepalive_timeout=timeout
        )
        await self._runner.setup()
        assert self._runner.server is not None
        if self.tls is not None:
            # TLS: the listener runs each handshake itself, to see the ones that fail.
            self.tls.timeout = timeout
            factory: Callable[[], asyncio.Protocol] = self.tls.factory
        else:
            factory = self._runner.server
        try:
            self._server = await asyncio.get_running_loop().create_server(
                factory, self.host, self.port, backlog=4096
            )
        except OSError as err:
            reason = bind_error(err, "OCPP", self.host, self.port)
            if reason is None:
                raise
            # One line per attempt, no traceback: the set-up is retried with backoff.
            raise IntegrationNotReadyError(reason) from None
        if self._server.sockets:
            self.port = self._server.sockets[0].getsockname()[1]
        scheme = "wss" if self.tls else "ws"
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
        if self.tls is not None:
            self.tls.stop()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Admit or refuse a charger, then run its connection."""
        system = self.system
        remote = request.remote
        cp_id = self._identity(request, remote)
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
                {"offered": offered[:10]},
                remote=remote,
                cp_id=cp_id,
                severity=Severity.INFO,
            )
            return await _refuse_ws(
                request,
                1002,
                f"no supported OCPP subprotocol offered; use one of {', '.join(system.versions)}",
            )
        self._check_profile(cp_id, remote)
        offered_key = self._authenticate(request, cp_id, remote)
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
        pending = known is None and system.unknown_policy == UNKNOWN_PENDING
        if pending:
            system.admit_pending(cp_id, remote, offered_key)
        elif known is None:
            system.note_accepted(cp_id)
        await self._check_duplicate(cp_id, remote)
        ws = web.WebSocketResponse(
            protocols=(version.value,),
            autoping=False,
            max_msg_size=max(system.max_frame_size * 4, 1024 * 1024),
            compress=False,
        )
        await ws.prepare(request)
        station = system.station(cp_id, pending=pending)
        connection = Connection(system, station, ws, version, remote)
        if self.profile == 3:
            # Kept to close the connection should a CRL revoke the certificate later.
            connection.certificate = peer_certificate(request.transport)
        system.note_connect(station.heartbeat_interval)
        system.note_profile(cp_id, self.profile)
        await station.attach(connection, self.profile)
        try:
            await connection.run()
        finally:
            await station.detach(connection)
        return ws

    def _identity(self, request: web.Request, remote: str | None) -> str:
        """The charge point id from the URL's last segment, decoded once and validated.

        The raw path is read, not the decoded one: an encoded slash is data (RFC 3986 2.2),
        so ``CP-1%2F..%2FCP-2`` names the id ``CP-1/../CP-2``, which is refused, never CP-2.
        """
        raw = request.raw_path.partition("?")[0]
        tail = raw[len(self.path) :].lstrip("/") if raw.startswith(self.path) else raw
        if tail.endswith("/"):
            tail = tail[:-1]
        if not tail:
            return ""
        problem: str | None = None
        try:
            cp_id = urllib.parse.unquote(tail, errors="strict")
        except UnicodeDecodeError:
            cp_id, problem = tail, "is not UTF-8 once percent-decoded"
        if problem is None and "/" in tail:
            problem = "has more than one path segment"
        problem = problem or identity_problem(cp_id)
        if problem is None:
            return cp_id
        shown = ascii(cp_id[:60])
        self.system.security_event(
            SEC_BAD_IDENTITY,
            f"connection with an invalid charge point id {shown} refused: it {problem}",
            None,
            {"id": shown, "problem": problem},
            remote=remote,
            severity=Severity.WARNING,
        )
        raise web.HTTPBadRequest(text=f"invalid charge point id: it {problem}")

    def _check_profile(self, cp_id: str, remote: str | None) -> None:
        """Refuse a charger on a listener below its minimum security profile."""
        required = self.system.minimum_profile(cp_id)
        if self.profile >= required:
            return
        self.system.security_event(
            SEC_DOWNGRADE,
            f"{cp_id} tried security profile {self.profile}; it needs at least {required}",
            None,
            {"profile": self.profile, "required": required},
            remote=remote,
            cp_id=cp_id,
            severity=Severity.CRITICAL,
        )
        raise web.HTTPForbidden(
            text=f"charge point {cp_id} must connect with security profile {required} or higher"
        )

    async def _check_duplicate(self, cp_id: str, remote: str | None) -> None:
        """A second socket for an id that is online: the known OCPP hijack pattern."""
        system = self.system
        station = system.stations.get(cp_id)
        current = station.connection if station is not None else None
        if current is None or current.closed:
            return
        policy = system.duplicate_policy
        alive = True
        if policy == DUPLICATE_REFUSE_NEW:
            # The station may have lost its old socket without a close (a network change):
            # refuse the newcomer only if the old socket still answers.
            alive = await current.probe(system.probe_timeout)
        system.security_event(
            SEC_DUPLICATE_CONNECTION,
            f"second connection for {cp_id} from {remote} while it is online from "
            f"{current.remote}: "
            + (
                "both closed"
                if policy == DUPLICATE_REFUSE_BOTH
                else "new one refused"
                if alive and policy == DUPLICATE_REFUSE_NEW
                else "old one replaced"
            ),
            None,
            {"policy": policy, "current_remote": current.remote, "old_alive": alive},
            remote=remote,
            cp_id=cp_id,
            severity=Severity.CRITICAL,
        )
        if policy == DUPLICATE_REFUSE_BOTH:
            await current.close(code=1008, message=b"duplicate connection")
            raise web.HTTPConflict(text=f"charge point {cp_id} is already connected")
        if policy == DUPLICATE_REFUSE_NEW and alive:
            raise web.HTTPConflict(text=f"charge point {cp_id} is already connected")

    def _authenticate(self, request: web.Request, cp_id: str, remote: str | None) -> str | None:
        """Check Basic auth (profiles 1, 2) or the client certificate (profile 3).

        Returns the password an unknown charger offered (its key if it is approved later).
        """
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
            _announce_certificate(system.hub, cp_id, common_name, peercert)
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
            # Unknown charger: judged by the admission policy.
            return password
        if user != cp_id or not system.check_password(cp_id, known, password):
            system.security_event(
                SEC_BAD_PASSWORD,
                f"wrong credentials for {cp_id}",
                None,
                {"user": ascii(user[:60])},
                remote=remote,
                cp_id=cp_id,
                severity=Severity.CRITICAL,
            )
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="evhub OCPP"'},
                text="wrong charge point id or password",
            )
        return None


# OCPP 2.0.1 identifierString (Part 2, primitive datatypes), without ':' which Basic
# authentication reserves (Part 4, 3.1.1): what a charging station identity may hold.
_IDENTITY = re.compile(r"[A-Za-z0-9*\-_=+|@.]{1,48}")
MAX_IDENTITY_LENGTH = 48


def identity_problem(cp_id: str) -> str | None:
    """Why cp_id is not a valid charge point identity, or None if it is."""
    if len(cp_id) > MAX_IDENTITY_LENGTH:
        return f"is longer than {MAX_IDENTITY_LENGTH} characters"
    if _IDENTITY.fullmatch(cp_id) is None:
        return "holds characters outside a-z A-Z 0-9 * - _ = + | @ ."
    if cp_id in (".", ".."):
        return "is a path segment, not a name"
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


def _announce_certificate(hub: Hub, cp_id: str, subject: str | None, peercert: Any) -> None:
    """Tell the bus when the client certificate a charger presented ends (expiry watch)."""
    raw = peercert.get("notAfter") if isinstance(peercert, dict) else None
    try:
        not_after = ssl.cert_time_to_seconds(raw) if isinstance(raw, str) else None
    except ValueError:
        not_after = None
    if not_after is not None:
        hub.bus.fire(
            EVENT_CLIENT_CERTIFICATE,
            {"charge_point_id": cp_id, "subject": subject, "not_after": float(not_after)},
        )


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
        self.handshake_timeout: float = config[CONF_HANDSHAKE_TIMEOUT]
        self.duplicate_policy: str = config[CONF_DUPLICATE_CONNECTION]
        self.probe_timeout = min(self.call_timeout, PROBE_TIMEOUT)
        self.max_pending: int = config[CONF_MAX_PENDING]
        self.pending_expiry: float = config[CONF_PENDING_EXPIRY] * 3600.0
        window = config[CONF_TIMESTAMP_WINDOW]
        self.limits = Limits(
            max_ports=config[CONF_MAX_PORTS],
            past_s=window[CONF_PAST_DAYS] * 86400.0,
            future_s=window[CONF_FUTURE_MINUTES] * 60.0,
        )
        self.chargers: dict[str, ChargerConfig] = {}
        for entry in config[CONF_CHARGERS]:
            password = entry.get(CONF_PASSWORD)
            stored = entry.get(CONF_PASSWORD_HASH) or (
                hash_password(password) if password is not None else None
            )
            self.chargers[entry[CONF_ID]] = ChargerConfig(
                entry[CONF_ID],
                entry.get(CONF_NAME),
                entry.get(CONF_SITE),
                stored,
                entry.get(CONF_SECURITY_PROFILE),
            )
        self.configured_ids = frozenset(self.chargers)
        # Unknown chargers waiting for approval: first and last contact, address, offered key.
        self.pending_info: dict[str, dict[str, Any]] = {}
        # Unknown chargers admitted under `unknown_chargers: accept`, kept so that one that
        # never comes back after a restart is still seen (and counted) offline.
        self.accepted: dict[str, float] = {}
        # The highest security profile each charger has connected with: never less again.
        self.profiles_seen: dict[str, int] = {}
        # A05: the profile a charger was told to move up to (SetNetworkProfile, 1.6
        # SecurityProfile) and has not connected with yet; once it has, its minimum is raised
        # to it, whatever it was configured with (raised_profiles, kept on disk).
        self.profile_upgrades: dict[str, int] = {}
        self.raised_profiles: dict[str, int] = {}
        # The profile of each charger's current (or last) connection.
        self.current_profiles: dict[str, int] = {}
        self.rejected: set[str] = set()
        # Rotated passwords (features/security.py): (cp_id, password) -> verdict, or None
        # when the charger has none and its configured password decides.
        self.password_check: Callable[[str, str], bool | None] | None = None
        self.stations: dict[str, Station] = {}
        self.listeners = [Listener(self, listener) for listener in config[CONF_LISTENERS]]
        self.highest_profile = max(listener.profile for listener in self.listeners)
        self.transactions = TransactionStore(Path(hub.path("ocpp_transactions.db")))
        self.unreadable_frames = 0
        self.stats = ProtocolStats()
        self._unregister_stats: Callable[[], None] | None = None
        self._store: Store[dict[str, Any]] = Store(hub, 1, CHARGERS_STORE_KEY, private=True)
        self.clock = clock(hub)
        self._sweep_timer: Timer | None = None
        self._sweep_due = math.inf
        self._open_at_freeze = 0
        self._last_connect = 0.0
        self._unsub_started: Callable[[], None] | None = None
        self._tls_watch: asyncio.Task[None] | None = None
        self.ledger: SessionLedger | None = None

    def _transactions_health(self, problem: str | None) -> None:
        reporter = health_reporter(self.hub, DOMAIN, "transactions")
        if problem is None:
            reporter.ok()
        else:
            # Chargers are told InternalError instead of Accepted: charging is not recorded.
            reporter.failed(f"transaction store: {problem}")

    async def start(self) -> None:
        """Open the transaction store, load approved chargers, create stations, listen."""
        self.transactions.on_health = self._transactions_health
        await self.transactions.open()
        stored = await self._store.load() or {}
        for cp_id, entry in stored.get("approved", {}).items():
            if cp_id not in self.chargers:
                self.chargers[cp_id] = ChargerConfig(
                    cp_id, entry.get("name"), entry.get("site"), entry.get("password_hash")
                )
        self.rejected = set(stored.get("rejected", []))
        self.profiles_seen = {
            str(cp_id): int(profile)
            for cp_id, profile in stored.get("profiles", {}).items()
            if isinstance(profile, int)
        }
        self.raised_profiles = {
            str(cp_id): int(profile)
            for cp_id, profile in stored.get("raised_profiles", {}).items()
            if isinstance(profile, int) and 0 <= profile <= 3
        }
        self.profile_upgrades = {
            str(cp_id): int(profile)
            for cp_id, profile in stored.get("profile_upgrades", {}).items()
            if isinstance(profile, int) and 0 <= profile <= 3
        }
        if self.unknown_policy == UNKNOWN_PENDING:
            self.pending_info = {
                cp_id: dict(entry)
                for cp_id, entry in stored.get("pending", {}).items()
                if cp_id not in self.chargers and cp_id not in self.rejected
            }
        if self.unknown_policy == UNKNOWN_ACCEPT:
            self.accepted = {
                cp_id: float(first)
                for cp_id, first in stored.get("accepted", {}).items()
                if cp_id not in self.chargers
            }
        for cp_id in (*self.chargers, *self.accepted):
            self.station(cp_id, pending=False)
        for cp_id in self.pending_info:
            self.station(cp_id, pending=True)
        # Not connected to this hub (yet): offline, whatever the last run left.
        for station in self.stations.values():
            station.not_connected()
        await self._restore_open_transactions()
        self.ledger = SessionLedger(self)
        for listener in self.listeners:
            await listener.start()
        self._schedule_sweep()
        if any(listener.tls is not None for listener in self.listeners):
            self._tls_watch = asyncio.get_running_loop().create_task(self._watch_tls())
        self._unregister_stats = register_protocol_stats(self.hub, "ocpp", self.stats)
        # Rebuild history once every integration (the recorder included) listens.
        if self.hub.state is CoreState.running:
            self.ledger.start()
        else:
            self._unsub_started = self.hub.bus.listen_once(
                EVENT_HUB_STARTED, lambda _event: self._start_ledger()
            )

    async def _watch_tls(self) -> None:
        """Re-read a TLS listener's files within a minute of one changing (a renewed
        certificate, a new CRL); real time, since files change in real time."""
        while True:
            await asyncio.sleep(TLS_WATCH_INTERVAL)
            try:
                await self.reload_tls(force=False)
            except Exception:
                _LOGGER.exception("Checking the TLS files failed")

    async def reload_tls(self, *, force: bool) -> list[dict[str, Any]]:
        """Re-read the TLS listeners' files (all of them, or those changed), then close the
        connections whose client certificate a CRL now revokes."""
        results: list[dict[str, Any]] = []
        for listener in self.listeners:
            tls = listener.tls
            if tls is None:
                continue
            result: dict[str, Any] = {"port": listener.port, "reloaded": False}
            results.append(result)
            if not force and not await self.hub.run_in_executor(tls.changed):
                continue
            try:
                await self.hub.run_in_executor(tls.reload)
            except (OSError, ValueError, ssl.SSLError) as err:
                # The old context stays: a half-copied file must not stop the listener.
                result["error"] = str(err)
                _LOGGER.warning(
                    "OCPP listener on port %d kept its TLS files: %s", listener.port, err
                )
                continue
            result["reloaded"] = True
            _LOGGER.info("OCPP listener on port %d re-read its TLS files", listener.port)
            if tls.crls:
                result["closed"] = await self._close_revoked(tls.crls)
        return results

    async def _close_revoked(self, crls: list[Any]) -> list[str]:
        """Close the connections whose client certificate a CRL lists."""
        closed = []
        for cp_id, station in list(self.stations.items()):
            connection = station.connection
            certificate = connection.certificate if connection is not None else None
            if connection is None or certificate is None:
                continue
            if not revoked(crls, certificate.issuer, certificate.serial_number):
                continue
            self.security_event(
                SEC_CERTIFICATE_REVOKED,
                f"the client certificate of {cp_id} was revoked: connection closed",
                connection,
                {"serial": format(certificate.serial_number, "x"), "connected": True},
                severity=Severity.CRITICAL,
            )
            await connection.close(code=1008, message=b"client certificate revoked")
            closed.append(cp_id)
        return closed

    def _start_ledger(self) -> None:
        self._unsub_started = None
        if self.ledger is not None:
            self.ledger.start()

    async def stop(self) -> None:
        """Close listeners and connections, then the transaction store."""
        if self._unsub_started is not None:
            self._unsub_started()
            self._unsub_started = None
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        if self._tls_watch is not None:
            self._tls_watch.cancel()
            self._tls_watch = None
        if self._unregister_stats is not None:
            self._unregister_stats()
            self._unregister_stats = None
        for station in self.stations.values():
            await station.shutdown()
        for listener in self.listeners:
            await listener.stop()
        if self.ledger is not None:
            await self.ledger.stop()
            self.ledger = None
        await self.transactions.close()
        await self._store.flush()

    async def _restore_open_transactions(self) -> None:
        """Give ports back the sessions that were open when the hub stopped."""
        for transaction in await self.transactions.open_transactions_all():
            station = self.stations.get(transaction.charge_point_id)
            number = (
                transaction.evse_id if transaction.evse_id is not None else transaction.connector_id
            )
            if station is None or not number or number > self.limits.max_ports:
                continue
            station.resume_transaction(number, transaction)

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

    def check_password(self, cp_id: str, known: ChargerConfig, password: str) -> bool:
        """Whether a known charger's Basic auth password is right: a rotated password
        (features/security.py) first, else the one it was configured or approved with."""
        if self.password_check is not None:
            verdict = self.password_check(cp_id, password)
            if verdict is not None:
                return verdict
        return known.password_hash is not None and verify_password(password, known.password_hash)

    # Security profiles ------------------------------------------------------------------

    def minimum_profile(self, cp_id: str) -> int:
        """The lowest security profile a charger may connect with.

        Its configured ``security_profile`` if given; otherwise the highest profile any
        listener offers, and never below the highest it ever connected with (no downgrade).
        """
        known = self.chargers.get(cp_id)
        if known is not None and known.security_profile is not None:
            base = known.security_profile
        else:
            base = max(self.highest_profile, self.profiles_seen.get(cp_id, 0))
        # Upgraded (A05) and connected with the new profile: never below it again.
        return max(base, self.raised_profiles.get(cp_id, 0))

    def note_profile(self, cp_id: str, profile: int) -> None:
        """Remember the highest profile a charger connected with; complete an upgrade."""
        self.current_profiles[cp_id] = profile
        if profile > self.profiles_seen.get(cp_id, -1) and (
            cp_id in self.chargers or cp_id in self.accepted or cp_id in self.pending_info
        ):
            self.profiles_seen[cp_id] = profile
            self._save()
        target = self.profile_upgrades.get(cp_id)
        if target is not None and profile >= target:
            del self.profile_upgrades[cp_id]
            self.raised_profiles[cp_id] = max(target, self.raised_profiles.get(cp_id, 0))
            self._save()
            self.security_event(
                SEC_PROFILE_RAISED,
                f"{cp_id} connected with security profile {profile}: it may no longer connect"
                f" below {target}",
                None,
                {"profile": profile, "minimum": target},
                cp_id=cp_id,
                severity=Severity.INFO,
            )

    def request_profile_upgrade(self, cp_id: str, profile: int) -> None:
        """A charger accepted a higher security profile (A05): the hub raises its minimum
        once it connects with it; until then the current profile still opens (the charger
        falls back to it if the new one fails)."""
        if profile <= self.minimum_profile(cp_id):
            return
        self.profile_upgrades[cp_id] = profile
        self._save()

    # Admission --------------------------------------------------------------------------

    def admit_pending(self, cp_id: str, remote: str | None, offered_key: str | None) -> None:
        """Let an unknown charger wait for approval, if the pending list has room."""
        now = self.clock.time()
        entry = self.pending_info.get(cp_id)
        if entry is None:
            if len(self.pending_info) >= self.max_pending:
                self.security_event(
                    SEC_PENDING_FULL,
                    f"unknown charge point {cp_id!r} refused: {self.max_pending} chargers"
                    " already wait for approval",
                    None,
                    {"max_pending": self.max_pending},
                    remote=remote,
                    cp_id=cp_id,
                )
                raise web.HTTPServiceUnavailable(
                    text="too many charge points wait for approval; try again later",
                    headers={"Retry-After": "3600"},
                )
            entry = self.pending_info[cp_id] = {"first_seen": now}
            self.security_event(
                SEC_UNKNOWN_CHARGER,
                f"unknown charge point {cp_id!r} waits for approval",
                None,
                {},
                remote=remote,
                cp_id=cp_id,
                severity=Severity.INFO,
            )
        entry["last_seen"] = now
        entry["remote"] = remote
        if offered_key is not None:
            entry["password_hash"] = hash_password(offered_key)
        self._save()

    def note_boot(self, cp_id: str, vendor: Any, model: Any, serial: Any) -> None:
        """Keep what a pending charger says of itself, for whoever approves it."""
        entry = self.pending_info.get(cp_id)
        if entry is not None:
            entry.update(vendor=vendor, model=model, serial=serial)
            self._save()

    def note_accepted(self, cp_id: str) -> None:
        """An unknown charger admitted by `unknown_chargers: accept`: keep it from now on."""
        if cp_id not in self.accepted:
            self.accepted[cp_id] = self.clock.time()
            self._save()

    def pending(self) -> list[str]:
        """Charge point ids waiting for approval."""
        return sorted(cp_id for cp_id, station in self.stations.items() if station.pending)

    def pending_chargers(self) -> list[PendingCharger]:
        """The chargers waiting for approval, as the hub lists them (hub.charger.Admission)."""
        now = self.clock.time()
        found = []
        for cp_id in self.pending():
            station = self.stations[cp_id]
            connection = station.connection
            entry = self.pending_info.get(cp_id, {})
            first_seen = entry.get("first_seen", now)
            remote = None if connection is None else connection.remote
            found.append(
                PendingCharger(
                    cp_id,
                    DOMAIN,
                    remote,
                    float(first_seen),
                    vendor=_text(entry.get("vendor")),
                    model=_text(entry.get("model")),
                    serial=_text(entry.get("serial")),
                    device_id=station.device_id,
                )
            )
        return found

    async def approve(self, cp_id: str) -> None:
        """Admit a pending charger; it is accepted at its next BootNotification."""
        station = self.stations.get(cp_id)
        if station is None or not station.pending:
            raise ValueError(f"charge point {cp_id} is not pending approval")
        entry = self.pending_info.pop(cp_id, {})
        self.chargers[cp_id] = ChargerConfig(cp_id, None, None, entry.get("password_hash"))
        self.rejected.discard(cp_id)
        self._save()
        await station.approved()

    async def reject(self, cp_id: str) -> None:
        """Refuse a pending charger now and whenever it comes back; forget its devices."""
        station = self.stations.get(cp_id)
        if station is None or not station.pending:
            raise ValueError(f"charge point {cp_id} is not pending approval")
        self.rejected.add(cp_id)
        self.pending_info.pop(cp_id, None)
        self._save()
        del self.stations[cp_id]
        await station.rejected()

    async def _expire_pending(self, now: float) -> None:
        for cp_id, entry in list(self.pending_info.items()):
            station = self.stations.get(cp_id)
            if station is not None and station.online:
                entry["last_seen"] = now
                continue
            if now - float(entry.get("last_seen", now)) < self.pending_expiry:
                continue
            _LOGGER.info("%s waited for approval too long without contact: forgotten", cp_id)
            del self.pending_info[cp_id]
            self._save()
            if station is not None and station.pending:
                del self.stations[cp_id]
                await station.forget()

    def _save(self) -> None:
        def data() -> dict[str, Any]:
            return {
                "approved": {
                    cp_id: {"name": c.name, "site": c.site, "password_hash": c.password_hash}
                    for cp_id, c in self.chargers.items()
                    if cp_id not in self.configured_ids
                },
                "rejected": sorted(self.rejected),
                "pending": {cp_id: dict(entry) for cp_id, entry in self.pending_info.items()},
                "accepted": dict(self.accepted),
                "profiles": dict(self.profiles_seen),
                "raised_profiles": dict(self.raised_profiles),
                "profile_upgrades": dict(self.profile_upgrades),
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
        source: str = SOURCE_HUB,
    ) -> None:
        """Record a security event about a charger or a connection attempt.

        source: SOURCE_HUB when the hub saw it, SOURCE_CHARGER when the charger reported it.
        """
        security_log(self.hub).record(
            kind,
            message,
            severity=severity,
            source=source,
            remote=remote if remote is not None else (connection.remote if connection else None),
            charge_point_id=cp_id
            if cp_id is not None
            else (connection.cp_id if connection else None),
            data=data,
        )

    def _schedule_sweep(self, due: float | None = None) -> None:
        """Arm the one liveness timer, on the hub clock, for the next thing falling due.

        With ``due``, only bring an armed timer forward (a new connection's first deadline).
        The sweep runs at most once a second, and only when something can fall due (a ping, a
        silence limit, a pending charger's expiry, a burst settling), so a test's clock can
        jump a month in a few hundred steps, not 2.6 million.
        """
        now = self.clock.monotonic()
        if due is None:
            due = self._next_due(now)
        elif self._sweep_timer is not None and self._sweep_due <= max(due, now + SWEEP_INTERVAL):
            return
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        if due == math.inf:
            return
        self._sweep_due = max(due, now + SWEEP_INTERVAL)
        self._sweep_timer = self.clock.call_later(self._sweep_due - now, self._sweep)

    def _next_due(self, now: float) -> float:
        """When the sweep next has something to do, on the monotonic hub clock."""
        due = math.inf
        for station in self.stations.values():
            connection = station.connection
            if connection is None:
                continue
            interval = station.heartbeat_interval
            limit = connection.last_seen + interval * self.offline_after
            if connection.ping_sent_at is None:
                limit = min(limit, connection.last_seen + interval)
            due = min(due, limit)
        if self.pending_info:
            wall = self.clock.time()
            for entry in self.pending_info.values():
                last = float(entry.get("last_seen", wall))
                due = min(due, now + last + self.pending_expiry - wall)
        if self._connected_since_freeze():
            due = min(due, self._last_connect + BURST_SETTLED)
        return due

    def _connected_since_freeze(self) -> bool:
        """Whether a burst of connections is open that has not been frozen yet."""
        return self._open_at_freeze + BURST_CONNECTS <= sum(
            1 for station in self.stations.values() if station.connection is not None
        )

    def note_connect(self, heartbeat_interval: float) -> None:
        """A charger connected: watch its silence, and whether a burst of them settles."""
        self._last_connect = now = self.clock.monotonic()
        self._schedule_sweep(now + min(heartbeat_interval, BURST_SETTLED))

    def _sweep(self) -> None:
        """Mark silent chargers offline and ping idle ones: one timer for all connections."""
        self._sweep_timer = None
        now = self.clock.monotonic()
        connected = 0
        for station in self.stations.values():
            station.check_liveness(now)
            connected += station.connection is not None
        if self.pending_info:
            self.hub.create_task(self._expire_pending(self.clock.time()), "expire pending chargers")
        if connected < self._open_at_freeze:
            self._open_at_freeze = connected
        elif (
            connected - self._open_at_freeze >= BURST_CONNECTS
            and now - self._last_connect >= BURST_SETTLED
        ):
            # Counting open connections, not connection attempts: a peer that connects and
            # drops again and again (a fuzzer, a flapping charger) leaves nothing long-lived,
            # and freezing then would keep its garbage cycles for good.
            self._open_at_freeze = connected
            freeze_long_lived(f"a burst of charger connections ({connected} connected)")
        self._schedule_sweep()
