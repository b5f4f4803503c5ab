"""What the core's monitoring API needs of a history store: the recorder behind an interface.

The HTTP API (/api/history, /api/sessions, /api/statistics, /api/logbook, /api/audit and the
integrations' reports) reads recorded history through this protocol, never through the
recorder itself; the recorder integration provides it through its set-up context
(``ctx.provide_history``), and another store (a PostgreSQL cluster, a remote node) could
provide it instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from hub.core import Hub, HubKey, Unsubscribe
from hub.exceptions import HubError

if TYPE_CHECKING:
    from hub.security import SecurityQuery


class HistoryError(HubError):
    """No history store is provided, or another one is provided already."""

    http_status = 503
    error_code = "unavailable"


class History(Protocol):
    """Recorded history: states, charging sessions, statistics and the audit log."""

    async def flush(self) -> None:
        """Return once everything recorded before the call can be read back."""

    async def history(
        self, entity_ids: Iterable[str], start: float, end: float
    ) -> dict[str, list[dict[str, Any]]]:
        """Each entity's states from start to end, oldest first (state, attributes, times)."""

    async def sessions(
        self,
        start: float,
        end: float,
        station_ids: Iterable[str] | None = None,
        port_ids: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Charging sessions overlapping [start, end), by start."""

    async def statistics(
        self,
        device_ids: Iterable[str],
        start: float,
        end: float,
        period: Literal["hour", "day"],
    ) -> dict[str, dict[str, Any]]:
        """Per device: totals and per-period figures over [start, end)."""

    async def events(
        self, event_types: Iterable[str], start: float, end: float, limit: int
    ) -> list[dict[str, Any]]:
        """Events of the given types fired in [start, end), oldest first, at most limit.

        Rows: event_type, data, origin, time_fired (POSIX seconds), context_id,
        context_user_id.
        """

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        """The audit log, newest first."""

    async def security_events(self, query: SecurityQuery) -> list[dict[str, Any]]:
        """The security events query finds, newest first, shaped as SecurityEvent.as_dict()."""


DATA_HISTORY: Final[HubKey[History]] = HubKey("history")


def provide_history(hub: Hub, history: History) -> Unsubscribe:
    """Make history the hub's history store until the returned callable is called."""
    return hub.data.provide(
        DATA_HISTORY, history, HistoryError("a history store is provided already")
    )


def history_of(hub: Hub) -> History | None:
    """The hub's history store, or None when none runs."""
    return hub.data.get(DATA_HISTORY)
