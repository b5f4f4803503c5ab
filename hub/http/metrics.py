"""Prometheus metrics at /metrics, collected from the hub's own state at scrape time.

Protocol integrations count their messages in a ProtocolStats (plain dict increments on the
hot path) registered with register_protocol_stats; nothing is converted until a scrape.
Other integrations add their own collectors through the set-up context
(``ctx.register_metrics``), collected here at every scrape.

Stations and ports are labelled by id and by name (``station_id``, ``name``; ``device_id``,
``port_name``): ids for joins that survive a rename, names for people reading a dashboard.
The station figures of the uptime integration (its sensors) are metrics of their own.
"""

from __future__ import annotations

import asyncio
import bisect
import math
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
from hub.registry import DeviceEntry, DeviceKind, device_registry, entity_registry

DATA_PROTOCOL_STATS: Final[HubKey[dict[str, ProtocolStats]]] = HubKey("metrics.protocols")
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_INTERVAL: Final = 1.0
UPTIME_SUFFIX: Final = "_uptime"
# Who a metric is about, by id and by name (names change; ids do not).
STATION_LABELS: Final = ["station_id", "name"]
PORT_LABELS: Final = ["device_id", "port_name", "station_id", "name"]
# A station's uptime sensor's figures (the state, then attributes): metric name and help.
STATION_UPTIME: Final = {
    "uptime": (
        "evhub_station_uptime_percent",
        "NEVI uptime of each station over the trailing 12 months (mean of its ports)",
    ),
    "cec_uptime": (
        "evhub_station_cec_uptime_percent",
        "CEC uptime of each station over the trailing 12 months",
    ),
    "month_to_date": (
        "evhub_station_uptime_month_to_date_percent",
        "NEVI uptime of each station this month so far",
    ),
    "t_outage_min": (
        "evhub_station_outage_minutes",
        "Outage minutes of each station's ports over the trailing 12 months",
    ),
    "t_excluded_min": (
        "evhub_station_excluded_minutes",
        "Excluded outage minutes of each station's ports over the trailing 12 months",
    ),
}
_IN_SESSION: Final = frozenset(
    {ConnectorStatus.CHARGING, ConnectorStatus.SUSPENDED_EV, ConnectorStatus.SUSPENDED_EVSE}
)


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

        yield from _uptime_metrics(hub)
        yield from _station_metrics(hub)

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


def _name(device: DeviceEntry | None, fallback: str) -> str:
    return (device.name if device is not None else None) or fallback


def _uptime_metrics(hub: Hub) -> Iterator[Metric]:
    """The uptime integration's figures, from its sensors: per port and per station."""
    devices = device_registry(hub)
    registry = entity_registry(hub)
    port_uptime = GaugeMetricFamily(
        "evhub_port_uptime_percent",
        "NEVI uptime of each port over the trailing 12 months, as its uptime sensor says",
        labels=["entity_id", *PORT_LABELS],
    )
    station_families = {
        key: GaugeMetricFamily(name, text, labels=STATION_LABELS)
        for key, (name, text) in STATION_UPTIME.items()
    }
    for state in hub.states.all("sensor"):
        if not state.entity_id.endswith(UPTIME_SUFFIX):
            continue
        attributes = state.attributes
        entry = registry.get(state.entity_id)
        device_id = entry.device_id if entry is not None and entry.device_id else ""
        station_id = str(attributes.get("station_id") or "")
        station_name = _name(devices.get(station_id), station_id) if station_id else ""
        if "ports" in attributes:  # a station's figure: the mean of its ports'
            labels = [station_id or device_id, station_name or _name(devices.get(device_id), "")]
            for key, family in station_families.items():
                value = _float(state.state if key == "uptime" else attributes.get(key))
                if value is not None:
                    family.add_metric(labels, value)
            continue
        value = _float(state.state)
        if value is None:
            continue
        port_name = _name(devices.get(device_id), device_id) if device_id else ""
        port_uptime.add_metric(
            [state.entity_id, device_id, port_name, station_id, station_name], value
        )
    yield port_uptime
    yield from station_families.values()


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _port_entities(hub: Hub, device_id: str) -> dict[str, str]:
    """A port's entities by their name ("status", "power", "energy"...)."""
    found: dict[str, str] = {}
    for entry in entity_registry(hub).entities_for_device(device_id):
        if entry.original_name:
            found.setdefault(entry.original_name, entry.entity_id)
    return found


def _station_metrics(hub: Hub) -> Iterator[Metric]:
    """Each station and port by id and name: connected, status, power, energy, sessions."""
    devices = device_registry(hub)
    chargers = hub.data.get(DATA_CHARGERS, {})
    online = GaugeMetricFamily(
        "evhub_charger_online",
        "1 while the charger is connected, else 0",
        labels=[*STATION_LABELS, "charge_point_id"],
    )
    port_status = GaugeMetricFamily(
        "evhub_port_status",
        "1 for each port's current status (OCPP 1.6 vocabulary)",
        labels=[*PORT_LABELS, "status"],
    )
    port_power = GaugeMetricFamily(
        "evhub_port_power_watts", "Power each port delivers now", labels=PORT_LABELS
    )
    port_energy = GaugeMetricFamily(
        "evhub_port_energy_wh", "Each port's energy meter reading", labels=PORT_LABELS
    )
    station_power = GaugeMetricFamily(
        "evhub_station_power_watts", "Power each station delivers now", labels=STATION_LABELS
    )
    station_energy = GaugeMetricFamily(
        "evhub_station_energy_wh",
        "The sum of each station's port energy meters",
        labels=STATION_LABELS,
    )
    sessions = GaugeMetricFamily(
        "evhub_station_sessions_active",
        "Ports of each station in a charging session now (Charging or Suspended)",
        labels=STATION_LABELS,
    )
    for station in sorted(devices.devices(kind=DeviceKind.STATION), key=lambda d: d.id):
        name = _name(station, station.id)
        labels = [station.id, name]
        charger = chargers.get(station.id)
        ident = next(
            (v for domain, v in sorted(station.identifiers) if domain == station.integration), ""
        )
        if charger is not None:
            online.add_metric([*labels, ident], 1.0 if charger.online else 0.0)
        power_sum: float | None = None
        energy_sum: float | None = None
        active = 0
        ports = [d for d in devices.descendants(station.id) if d.kind is DeviceKind.CONNECTOR]
        for port in sorted(ports, key=lambda d: (d.connector_id or d.evse_id or 0, d.id)):
            number = port.connector_id if port.connector_id is not None else port.evse_id
            port_labels = [port.id, _name(port, f"{name} {number or ''}".strip()), *labels]
            entities = _port_entities(hub, port.id)
            status = hub.states.get(entities.get("status", ""))
            if status is not None and status.state not in ("unknown", "unavailable"):
                port_status.add_metric([*port_labels, status.state], 1.0)
                if status.state in _IN_SESSION:
                    active += 1
            power = _entity_value(hub, entities.get("power"))
            if power is not None:
                port_power.add_metric(port_labels, power)
                power_sum = (power_sum or 0.0) + power
            energy = _entity_value(hub, entities.get("energy"))
            if energy is not None:
                port_energy.add_metric(port_labels, energy)
                energy_sum = (energy_sum or 0.0) + energy
        if power_sum is not None:
            station_power.add_metric(labels, power_sum)
        if energy_sum is not None:
            station_energy.add_metric(labels, energy_sum)
        sessions.add_metric(labels, float(active))
    yield online
    yield port_status
    yield port_power
    yield port_energy
    yield station_power
    yield station_energy
    yield sessions


def _entity_value(hub: Hub, entity_id: str | None) -> float | None:
    state = hub.states.get(entity_id) if entity_id else None
    return _float(state.state) if state is not None else None


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
