"""The security event log: refused connections, protocol abuse, events chargers report.

Each event is fired on the bus as ``security_event`` (automations and alerts react to it) and
kept in a persisted ring of the most recent events in ``.storage/core.security_events``.
"""

from __future__ import annotations

import enum
import itertools
import json
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

from hub.core import Context, Hub, HubKey
from hub.redact import Path as SecretPath
from hub.redact import redact, redact_text
from hub.storage import Store

EVENT_SECURITY: Final = "security_event"
DATA_SECURITY_LOG: Final[HubKey[SecurityLog]] = HubKey("security.log")
STORAGE_KEY: Final = "core.security_events"
STORAGE_VERSION: Final = 1
MAX_KEPT: Final = 10_000
# Keys of a security event's data shown to admins only: what a person typed at a failed
# login is often a password typed into the wrong field.
ATTR_USERNAME: Final = "username"
PRIVATE_DATA: Final = frozenset({ATTR_USERNAME})


class Severity(enum.StrEnum):
    """How bad a security event is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# Where a security event comes from: a charger said it, the hub saw it, or the API did.
SOURCE_CHARGER: Final = "charger"
SOURCE_HUB: Final = "hub"
SOURCE_API: Final = "api"

# The security events a charger reports (SecurityEventNotification) that are critical: the
# OCPP 1.6 security whitepaper (edition 3) and OCPP 2.0.1 Part 2 Appendix 1. Critical ones
# are pushed by the charger at once; the others are only logged on the charger.
CRITICAL_CHARGER_EVENTS: Final = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
        "InvalidCentralSystemCertificate",
        "InvalidCsmsCertificate",
        "InvalidChargePointCertificate",
        "InvalidChargingStationCertificate",
        "InvalidTLSVersion",
        "InvalidTLSCipherSuite",
        # 2.0.1 only.
        "MaintenanceLoginAccepted",
        "MaintenanceLoginFailed",
    }
)
# The non-critical ones both editions name; any other type is a vendor's own.
STANDARD_CHARGER_EVENTS: Final = frozenset(
    {
        "FailedToAuthenticateAtCentralSystem",
        "CentralSystemFailedToAuthenticate",
        "FailedToAuthenticateAtCsms",
        "CsmsFailedToAuthenticate",
        "ReconfigurationOfSecurityParameters",
        "InvalidMessages",
        "AttemptedReplayAttacks",
    }
)


def charger_event_severity(event_type: str) -> Severity:
    """How grave a SecurityEventNotification type is: critical as OCPP classifies it.

    The standard non-critical types are warnings; a vendor's own type is a warning too,
    unless its name says tamper or attack (then critical: better a false alarm than none).
    """
    if event_type in CRITICAL_CHARGER_EVENTS:
        return Severity.CRITICAL
    if event_type in STANDARD_CHARGER_EVENTS:
        return Severity.WARNING
    lowered = event_type.lower()
    if "tamper" in lowered or "attack" in lowered:
        return Severity.CRITICAL
    return Severity.WARNING


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityEvent:
    """One security event."""

    id: int
    time: float
    kind: str
    severity: Severity
    source: str
    message: str
    remote: str | None = None
    charge_point_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form (everything: for admins and the store)."""
        return asdict(self)

    def public_dict(self) -> dict[str, Any]:
        """The form shown to viewers and operators: without the admin-only data."""
        return public_event(self.as_dict())


SEVERITY_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityQuery:
    """Which security events to find: by kind, charger, source, least severity and time."""

    kind: str | None = None
    charge_point_id: str | None = None
    source: str | None = None
    min_severity: Severity | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100

    def severities(self) -> list[str]:
        """The severities at or above min_severity (all of them without one)."""
        least = SEVERITY_RANK[self.min_severity] if self.min_severity is not None else 0
        return [str(s) for s, rank in SEVERITY_RANK.items() if rank >= least]

    def matches(self, event: SecurityEvent) -> bool:
        """Whether event is one this query finds (limit aside)."""
        return (
            (self.kind is None or event.kind == self.kind)
            and (self.charge_point_id is None or event.charge_point_id == self.charge_point_id)
            and (self.source is None or event.source == self.source)
            and (
                self.min_severity is None
                or SEVERITY_RANK.get(event.severity, 0) >= SEVERITY_RANK[self.min_severity]
            )
            and (self.since is None or event.time >= self.since)
            and (self.until is None or event.time < self.until)
        )


def public_event(event: dict[str, Any]) -> dict[str, Any]:
    """A security event's dict without its admin-only data (PRIVATE_DATA keys)."""
    data = event.get("data")
    if not isinstance(data, dict) or PRIVATE_DATA.isdisjoint(data):
        return event
    return {**event, "data": {k: v for k, v in data.items() if k not in PRIVATE_DATA}}


class SecurityLog:
    """The most recent security events, persisted."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.events: deque[SecurityEvent] = deque(maxlen=MAX_KEPT)
        self._store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY, private=True)
        self._ids = itertools.count(1)

    async def load(self) -> None:
        """Read the events kept at the last stop."""
        data = await self._store.load()
        for raw in (data or {}).get("events", []):
            try:
                event = SecurityEvent(**{**raw, "severity": Severity(raw["severity"])})
            except (TypeError, ValueError, KeyError):
                continue
            self.events.append(event)
        last = self.events[-1].id if self.events else 0
        self._ids = itertools.count(last + 1)

    def record(
        self,
        kind: str,
        message: str,
        *,
        severity: Severity = Severity.WARNING,
        source: str = "hub",
        remote: str | None = None,
        charge_point_id: str | None = None,
        data: dict[str, Any] | None = None,
        context: Context | None = None,
    ) -> SecurityEvent:
        """Keep a security event and fire it on the bus."""
        event = SecurityEvent(
            id=next(self._ids),
            time=time.time(),
            kind=kind,
            severity=severity,
            source=source,
            message=message,
            remote=remote,
            charge_point_id=charge_point_id,
            data=dict(data or {}),
        )
        self.events.append(event)
        self._store.delay_save(self._data, 2.0)
        self.hub.bus.fire(EVENT_SECURITY, event.as_dict(), context)
        return event

    def query(
        self,
        *,
        kind: str | None = None,
        charge_point_id: str | None = None,
        source: str | None = None,
        min_severity: Severity | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SecurityEvent]:
        """Return kept events, oldest first, filtered as SecurityQuery says."""
        query = SecurityQuery(
            kind=kind,
            charge_point_id=charge_point_id,
            source=source,
            min_severity=min_severity,
            since=since,
            until=until,
        )
        return [event for event in self.events if query.matches(event)]

    def _data(self) -> dict[str, Any]:
        return {"events": [event.as_dict() for event in self.events]}


async def async_load_security_log(hub: Hub) -> SecurityLog:
    """Load the hub's security log once."""
    log = hub.data.get(DATA_SECURITY_LOG)
    if log is None:
        log = SecurityLog(hub)
        await log.load()
        hub.data[DATA_SECURITY_LOG] = log
    return log


async def search_security_events(hub: Hub, query: SecurityQuery) -> list[dict[str, Any]]:
    """Security events query finds, newest first: from the history store when one runs
    (everything kept there, for long_keep_days), else from the log's recent ring."""
    from hub.history import history_of

    history = history_of(hub)
    if history is not None:
        await history.flush()  # include what happened in the last second
        return await history.security_events(query)
    found = [event for event in security_log(hub).events if query.matches(event)]
    return [event.as_dict() for event in reversed(found[-query.limit :])]


def security_log(hub: Hub) -> SecurityLog:
    """Return the hub's security log (loaded at start)."""
    log = hub.data.get(DATA_SECURITY_LOG)
    if log is None:
        log = hub.data[DATA_SECURITY_LOG] = SecurityLog(hub)
    return log


# Audit --------------------------------------------------------------------------------

DATA_AUDIT_RING: Final[HubKey[deque[dict[str, Any]]]] = HubKey("security.audit_ring")
AUDIT_RING_SIZE: Final = 1000
# The most an audit entry keeps of the data sent (JSON bytes); more keeps only the keys.
AUDIT_DATA_MAX: Final = 4096


class AuditUser(Protocol):
    """Who did something: anything with an id and a username (hub.auth.User)."""

    @property
    def id(self) -> str: ...

    @property
    def username(self) -> str: ...


def audit(
    hub: Hub,
    action: str,
    *,
    user: AuditUser | None,
    source: str,
    target: str | None = None,
    result: str = "ok",
    context: Context | None = None,
    at: float | None = None,
    data: Mapping[str, Any] | None = None,
    secret_paths: Collection[SecretPath] = (),
) -> dict[str, Any]:
    """Record who did what to what from where, with what result: fires ``audit_entry``.

    at: when it happened, if not now (a CLI command run while the hub was stopped).
    data: what was sent (a service call's data: the limit, the reset type, ...), kept with
    its secrets (secret-named keys, and secret_paths) redacted and its size bounded.

    The entry follows the contract in hub.const (EVENT_AUDIT); the most recent entries are
    also kept in memory for a hub without a recorder.
    """
    from hub.const import EVENT_AUDIT

    entry: dict[str, Any] = {
        "time": at if at is not None else time.time(),
        "user_id": user.id if user is not None else None,
        "username": user.username if user is not None else None,
        "source": source,
        "action": action,
        # Whatever wrote them, credentials in URLs never reach the audit log.
        "target": redact_text(target) if target is not None else None,
        "result": redact_text(result),
        "context_id": context.id if context is not None else None,
        "data": audit_data(data, secret_paths),
    }
    ring = hub.data.get(DATA_AUDIT_RING)
    if ring is None:
        ring = hub.data[DATA_AUDIT_RING] = deque(maxlen=AUDIT_RING_SIZE)
    ring.append(entry)
    hub.bus.fire(EVENT_AUDIT, entry, context)
    return entry


def audit_data(
    data: Mapping[str, Any] | None, secret_paths: Collection[SecretPath] = ()
) -> dict[str, Any] | None:
    """The data an audit entry keeps: redacted, JSON-safe, at most AUDIT_DATA_MAX bytes."""
    if not data:
        return None
    kept = redact(dict(data), secret_paths)
    try:
        size = len(json.dumps(kept, default=str))
    except (TypeError, ValueError):  # a circular structure: only its keys
        size = AUDIT_DATA_MAX + 1
    if size > AUDIT_DATA_MAX:
        return {"truncated": True, "keys": sorted(str(key) for key in kept)[:50]}
    result: dict[str, Any] = json.loads(json.dumps(kept, default=str))
    return result


def recent_audit(hub: Hub, limit: int = 100) -> list[dict[str, Any]]:
    """Return the most recent audit entries kept in memory, newest first."""
    ring: deque[dict[str, Any]] = hub.data.get(DATA_AUDIT_RING) or deque()
    return list(itertools.islice(reversed(ring), max(limit, 0)))
