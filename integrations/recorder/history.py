"""What the recorder gives the core: the history store (hub.history) and its own metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.core import Hub
from hub.security import SecurityQuery
from integrations.recorder.core import Recorder


class RecorderHistory:
    """The recorder as the hub's history store (hub.history.History)."""

    __slots__ = ("_hub", "_recorder")

    def __init__(self, hub: Hub, recorder: Recorder) -> None:
        self._hub = hub
        self._recorder = recorder

    async def flush(self) -> None:
        """Return once everything queued before the call is committed."""
        await self._recorder.flush()

    async def history(
        self, entity_ids: Iterable[str], start: float, end: float
    ) -> dict[str, list[dict[str, Any]]]:
        """Each entity's states from start to end, oldest first."""
        return await self._recorder.history(entity_ids, start, end)

    async def sessions(
        self,
        start: float,
        end: float,
        station_ids: Iterable[str] | None = None,
        port_ids: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Charging sessions overlapping [start, end), by start."""
        return await self._recorder.sessions(start, end, station_ids, port_ids)

    async def statistics(
        self,
        device_ids: Iterable[str],
        start: float,
        end: float,
        period: Literal["hour", "day"],
    ) -> dict[str, dict[str, Any]]:
        """Per device: totals and per-period figures over [start, end)."""
        from integrations.recorder.statistics import statistics

        return await statistics(self._hub, device_ids, start, end, period)

    async def events(
        self, event_types: Iterable[str], start: float, end: float, limit: int
    ) -> list[dict[str, Any]]:
        """Events of the given types fired in [start, end), oldest first, at most limit."""
        return await self._recorder.events(event_types, start, end, limit)

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        """The audit log, newest first."""
        return await self._recorder.audit(limit=limit)

    async def security_events(self, query: SecurityQuery) -> list[dict[str, Any]]:
        """The security events query finds, newest first."""
        return await self._recorder.security_events(query)


class RecorderMetrics:
    """The recorder's queue and what it could not write, for /metrics."""

    __slots__ = ("_recorder",)

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterator[Metric]:
        """The recorder's metric families."""
        recorder = self._recorder
        yield GaugeMetricFamily(
            "evhub_recorder_backlog", "Rows waiting to be written", value=recorder.backlog
        )
        yield CounterMetricFamily(
            "evhub_recorder_rows_committed",
            "Rows written to the database",
            value=recorder.committed,
        )
        yield CounterMetricFamily(
            "evhub_recorder_rows_dropped",
            "State changes and events dropped because the database could not keep up",
            value=recorder.dropped,
        )
        yield CounterMetricFamily(
            "evhub_recorder_commit_failures",
            "Commits that failed and were retried",
            value=recorder.failed_commits,
        )
        skipped = CounterMetricFamily(
            "evhub_recorder_rows_skipped",
            "Rows left out of their commit because the database cannot hold them",
            labels=["table", "reason"],
        )
        for (table, reason), count in sorted(recorder.skipped.items()):
            skipped.add_metric([table, reason], count)
        yield skipped
