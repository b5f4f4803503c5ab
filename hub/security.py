"""The security event log: refused connections, protocol abuse, events chargers report.

Each event is fired on the bus as ``security_event`` (automations and alerts react to it) and
kept in a persisted ring of the most recent events in ``.storage/core.security_events``.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

from hub.core import Context, Hub, HubKey
from hub.redact import redact_text
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
        self, *, kind: str | None = None, charge_point_id: str | None = None
    ) -> list[SecurityEvent]:
        """Return kept events, oldest first, optionally of one kind or charger."""
        return [
            event
            for event in self.events
            if (kind is None or event.kind == kind)
            and (charge_point_id is None or event.charge_point_id == charge_point_id)
        ]

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


def security_log(hub: Hub) -> SecurityLog:
    """Return the hub's security log (loaded at start)."""
    log = hub.data.get(DATA_SECURITY_LOG)
    if log is None:
        log = hub.data[DATA_SECURITY_LOG] = SecurityLog(hub)
    return log


# Audit --------------------------------------------------------------------------------

DATA_AUDIT_RING: Final[HubKey[deque[dict[str, Any]]]] = HubKey("security.audit_ring")
AUDIT_RING_SIZE: Final = 1000


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
) -> dict[str, Any]:
    """Record who did what to what from where, with what result: fires ``audit_entry``.

    at: when it happened, if not now (a CLI command run while the hub was stopped).

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
    }
    ring = hub.data.get(DATA_AUDIT_RING)
    if ring is None:
        ring = hub.data[DATA_AUDIT_RING] = deque(maxlen=AUDIT_RING_SIZE)
    ring.append(entry)
    hub.bus.fire(EVENT_AUDIT, entry, context)
    return entry


def recent_audit(hub: Hub, limit: int = 100) -> list[dict[str, Any]]:
    """Return the most recent audit entries kept in memory, newest first."""
    ring: deque[dict[str, Any]] = hub.data.get(DATA_AUDIT_RING) or deque()
    return list(itertools.islice(reversed(ring), max(limit, 0)))
