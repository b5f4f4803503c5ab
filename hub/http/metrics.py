"""Prometheus metrics at /metrics, collected from the hub's own state at scrape time.

Protocol integrations count their messages in a ProtocolStats (plain dict increments on the
hot path) registered with register_protocol_stats; nothing is converted until a scrape.
Other integrations add their own collectors through the set-up context
(``ctx.register_metrics``), collected here at every scrape.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterator
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hub.charger import DATA_CHARGERS, ConnectorStatus
from hub.core import Hub, HubKey, Unsubscribe
from hub.http.extensions import extensions
from hub.http.view import KEY_HUB
from hub.registry import DeviceKind, device_registry, entity_registry

DATA_PROTOCOL_STATS: Final[HubKey[dict[str, ProtocolStats]]] = HubKey("metrics.protocols")
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_INTERVAL: Final = 1.0
UPTIME_SUFFIX: Final = "_uptime"


class ProtocolStats:
    """Messages, errors and outbound call latency of one protocol, by action."""

    __slots__ = ("errors", "latency", "messages")

    def __init__(self) -> None:
        self.messages: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        # action -> [bucket counts..., +Inf count, sum]
        self.latency: dict[str, list[float]] = {}

    def message(self, action: str) -> None:
        """Count one message received or sent."""
        self.messages[action] = self.messages.get(action, 0) + 1

    def error(self, action: str) -> None:
        """Count one failed message (a CALLERROR either way, a timeout, a bad frame)."""
        self.errors[action] = self.errors.get(action, 0) + 1

    def observe(self, action: str, seconds: float) -> None:
        """Record the round trip of one call to a device."""
        row = self.latency.get(action)
        if row is None:
            row = self.latency[action] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        row[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        row[-1] += seconds


def register_protocol_stats(hub: Hub, protocol: str, stats: ProtocolStats) -> Unsubscribe:
    """Expose a protocol's counters at /metrics."""
    found = hub.data.setdefault(DATA_PROTOCOL_STATS, {})
    found[protocol] = stats

    def unregister() -> None:
        if found.get(protocol) is stats:
            del found[protocol]

    return unregister


class LoopLag:
    """How late the event loop runs a timer due every second."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.last = 0.0
        self.max = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start measuring."""
        self._due = self.loop.time() + LAG_INTERVAL
        self._handle = self.loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        """Stop measuring."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = self.loop.time()
        self.last = max(0.0, now - self._due)
        self.max = max(self.max, self.last)
        self._due = now + LAG_INTERVAL
        self._handle = self.loop.call_at(self._due, self._tick)

    def take_max(self) -> float:
        """The largest lag since the last call."""
        found, self.max = self.max, self.last
        return found


def _faulted(hub: Hub, station_id: str) -> bool:
    entities = entity_registry(hub)
    for device in device_registry(hub).descendants(station_id):
        if device.kind is not DeviceKind.CONNECTOR:
            continue
        for entry in entities.entities_for_device(device.id):
            if entry.original_name == "status":
                state = hub.states.get(entry.entity_id)
                if state is not None and state.state == ConnectorStatus.FAULTED:
                    return True
    return False


class HubCollector(Collector):
    """Reads the hub's state when Prometheus scrapes."""

    def __init__(self, hub: Hub, lag: LoopLag, sockets: set[Any]) -> None:
        self.hub = hub
        self.lag = lag
        self.sockets = sockets

    def collect(self) -> Iterator[Metric]:
        """Build every metric family from the current state."""
        hub = self.hub
        chargers = hub.data.get(DATA_CHARGERS, {})
        online = sum(1 for c in chargers.values() if c.online)
        faulted = sum(1 for station_id in chargers if _faulted(hub, station_id))
        totals: tuple[tuple[str, float, str], ...] = (
            ("evhub_chargers_online", online, "Chargers connected now"),
            ("evhub_chargers_offline", len(chargers) - online, "Chargers not connected now"),
            ("evhub_chargers_faulted", faulted, "Chargers with at least one faulted port"),
        )
        for name, total, text in totals:
            yield GaugeMetricFamily(name, text, value=total)

        uptime = GaugeMetricFamily(
            "evhub_port_uptime_percent",
            "Uptime of each port as its uptime sensor reports it",
            labels=["entity_id", "device_id"],
        )
        registry = entity_registry(hub)
        for state in hub.states.all("sensor"):
            if not state.entity_id.endswith(UPTIME_SUFFIX):
                continue
            try:
                value = float(state.state)
            except ValueError:
                continue
            entry = registry.get(state.entity_id)
            device_id = entry.device_id if entry is not None and entry.device_id else ""
            uptime.add_metric([state.entity_id, device_id], value)
        yield uptime

        protocols = hub.data.get(DATA_PROTOCOL_STATS, {})
        messages = CounterMetricFamily(
            "evhub_protocol_messages",
            "Messages by protocol and action",
            labels=["protocol", "action"],
        )
        errors = CounterMetricFamily(
            "evhub_protocol_errors",
            "Failed messages by protocol and action",
            labels=["protocol", "action"],
        )
        latency = HistogramMetricFamily(
            "evhub_protocol_call_latency_seconds",
            "Round trip of calls to devices",
            labels=["protocol", "action"],
        )
        for protocol, stats in sorted(protocols.items()):
            for action, count in sorted(stats.messages.items()):
                messages.add_metric([protocol, action], count)
            for action, count in sorted(stats.errors.items()):
                errors.add_metric([protocol, action], count)
            for action, row in sorted(stats.latency.items()):
                buckets: list[tuple[str, float]] = []
                running = 0.0
                for bound, in_bucket in zip(LATENCY_BUCKETS, row, strict=False):
                    running += in_bucket
                    buckets.append((repr(bound), running))
                running += row[len(LATENCY_BUCKETS)]
                buckets.append(("+Inf", running))
                latency.add_metric([protocol, action], buckets, row[-1])
        yield messages
        yield errors
        yield latency

        yield from _extension_metrics(hub)
        yield from _integration_metrics(hub)
        yield GaugeMetricFamily(
            "evhub_event_loop_lag_seconds",
            "Lateness of the last 1 s loop timer",
            value=self.lag.last,
        )
        yield GaugeMetricFamily(
            "evhub_event_loop_lag_max_seconds",
            "Largest loop timer lateness since the previous scrape",
            value=self.lag.take_max(),
        )
        yield GaugeMetricFamily(
            "evhub_states", "Entities with a state", value=len(hub.states.all())
        )
        yield GaugeMetricFamily(
            "evhub_websocket_clients", "Open WebSocket API connections", value=len(self.sockets)
        )


def _extension_metrics(hub: Hub) -> Iterator[Metric]:
    """What integrations added through their set-up context (ctx.register_metrics)."""
    for collector in list(extensions(hub).collectors):
        yield from collector.collect()


def _integration_metrics(hub: Hub) -> Iterator[Metric]:
    """Whether each integration does its job (set up, every part working), as /api/health."""
    from hub.plugins import plugin_registry

    working = GaugeMetricFamily(
        "evhub_integration_working",
        "1 while an integration is set up and all its parts work, else 0",
        labels=["domain"],
    )
    for domain, status in sorted(plugin_registry(hub).statuses().items()):
        working.add_metric([domain], 1.0 if status.working else 0.0)
    yield working


KEY_METRICS: Final[web.AppKey[CollectorRegistry]] = web.AppKey("metrics", CollectorRegistry)


def make_registry(hub: Hub, lag: LoopLag, sockets: set[Any]) -> CollectorRegistry:
    """A Prometheus registry holding only the hub's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub, lag, sockets))
    return registry


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition."""
    assert request.app[KEY_HUB] is not None
    body = generate_latest(request.app[KEY_METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
