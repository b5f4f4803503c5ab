"""Export: the hub's states, devices, alerts and events on the broker; Home Assistant discovery.

The topic layout, version 1 (``<prefix>`` is ``export.prefix``, ``<node>`` this hub's node id;
payloads are UTF-8 JSON objects carrying ``"v": 1``):

``<prefix>/status``                    ``online`` / ``offline`` (plain text, retained; the
                                       hub's last will)
``<prefix>/v1/<node>/info``            retained: layout version, node, evhub version
``<prefix>/v1/<node>/state/<entity>``  retained: one entity's state, as ``State.as_dict``
                                       gives it (``entity_id``, ``state``, ``attributes``,
                                       ``last_changed_ts``, ``last_updated_ts``,
                                       ``last_reported_ts``) plus ``device_id``; an empty
                                       retained payload when the entity is removed
``<prefix>/v1/<node>/device/<device>`` retained: a device of an exported entity, as the
                                       device registry's ``as_dict`` (kind, name, via_device_id,
                                       connector_id, manufacturer, model, identifiers ...)
``<prefix>/v1/<node>/alert``           not retained: ``{"v", "event", "alert"}`` for each alert
                                       raised, updated, acknowledged or resolved
``<prefix>/v1/<node>/security``        not retained: ``{"v", "event"}``, a security event
``<prefix>/v1/<node>/charger_event``   not retained: ``{"v", "event"}``, a charger event

Subscribing to ``<prefix>/v1/<node>/#`` gives another evhub (or any consumer) every charger's
devices and states from the retained topics alone: ``State.from_dict`` rebuilds each state.

State changes are coalesced: an entity's latest state is published at most once per
``interval`` seconds, so a burst of changes becomes one message per entity. Everything
retained is published again on each (re)connection, so a broker that restarted without
persistence is whole again.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any, Final

import orjson

from hub import __version__
from hub.const import EVENT_DEVICE_REGISTRY_UPDATED, EVENT_STATE_CHANGED
from hub.core import Event, State
from hub.plugins import SetupContext
from hub.registry import DeviceEntry, DeviceKind, device_registry, entity_registry
from hub.security import EVENT_SECURITY, public_event
from integrations.mqtt.connection import OFFLINE, ONLINE, MqttConnection

LAYOUT_VERSION: Final = 1
EVENT_CHARGER: Final = "charger_event"
# The alerts integration's events (by name: the export does not need alerts to run).
ALERT_EVENTS: Final = ("alert_raised", "alert_updated", "alert_acknowledged", "alert_resolved")
CHARGER_KINDS: Final = frozenset({DeviceKind.STATION, DeviceKind.EVSE, DeviceKind.CONNECTOR})
# Home Assistant's sensor device classes the hub's entities use.
HA_SENSOR_CLASSES: Final = frozenset(
    {"power", "energy", "current", "voltage", "temperature", "duration"}
)
SLICE: Final = 200
_NODE_ID = re.compile(r"[^A-Za-z0-9_-]")


def _json(data: Any) -> bytes:
    return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)


class Exporter:
    """Publishes the hub's states, devices, alerts and events; and HA discovery configs."""

    def __init__(
        self,
        ctx: SetupContext,
        connection: MqttConnection,
        *,
        prefix: str,
        node: str,
        interval: float,
        include: Iterable[str] = ("*",),
        exclude: Iterable[str] = (),
        states: bool = True,
        alerts: bool = True,
        security: bool = True,
        events: bool = True,
        discovery_prefix: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.hub = ctx.hub
        self.connection = connection
        self.prefix = prefix
        self.node = node
        self.root = f"{prefix}/v{LAYOUT_VERSION}/{node}"
        self.interval = interval
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.states = states
        self.alerts = alerts
        self.security = security
        self.events = events
        self.discovery_prefix = discovery_prefix
        self.ha_node = "evhub_" + _NODE_ID.sub("_", node)
        self.pending: dict[str, State | None] = {}
        self._scheduled = False
        self._wanted: dict[str, bool] = {}
        self._devices_sent: set[str] = set()
        self._discovered: set[str] = set()
        # Counters.
        self.state_messages = 0
        self.coalesced = 0

    @property
    def status_topic(self) -> str:
        """The hub's availability topic (its last will)."""
        return f"{self.prefix}/status"

    def state_topic(self, entity_id: str) -> str:
        """Where an entity's state is retained."""
        return f"{self.root}/state/{entity_id}"

    def start(self) -> None:
        """Listen to what is exported; publish everything on each connection."""
        ctx = self.ctx
        if self.states:
            ctx.listen(EVENT_STATE_CHANGED, self._state_changed)
        if self.alerts:
            for event_type in ALERT_EVENTS:
                ctx.listen(event_type, self._alert)
        if self.security:
            ctx.listen(EVENT_SECURITY, self._security)
        if self.events:
            ctx.listen(EVENT_CHARGER, self._charger_event)
        if self.states:
            ctx.listen(EVENT_DEVICE_REGISTRY_UPDATED, self._device_updated)
        self.connection.on_connect.append(self.snapshot)
        ctx.on_unload(lambda: self.connection.on_connect.remove(self.snapshot))

    def _device_updated(self, event: Event) -> None:
        """A device that was published changed (renamed, moved): publish it again."""
        device_id = event.data.get("device_id")
        if device_id not in self._devices_sent or not self.connection.connected.is_set():
            return
        self._devices_sent.discard(device_id)
        if device_registry(self.hub).get(device_id) is None:
            self.connection.publish(f"{self.root}/device/{device_id}", b"", retain=True)
        else:
            self._publish_device(device_id)

    def wanted(self, entity_id: str) -> bool:
        """Whether an entity is exported (include and exclude patterns, cached)."""
        found = self._wanted.get(entity_id)
        if found is None:
            found = any(fnmatch.fnmatchcase(entity_id, p) for p in self.include) and not any(
                fnmatch.fnmatchcase(entity_id, p) for p in self.exclude
            )
            if len(self._wanted) > 200_000:
                self._wanted.clear()
            self._wanted[entity_id] = found
        return found

    # States ---------------------------------------------------------------------------

    def _state_changed(self, event: Event) -> None:
        entity_id = event.data["entity_id"]
        if not self.wanted(entity_id):
            return
        if entity_id in self.pending:
            self.coalesced += 1
        self.pending[entity_id] = event.data.get("new_state")
        if not self._scheduled:
            self._scheduled = True
            self.ctx.call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Publish the latest state of each entity that changed since the last flush."""
        self._scheduled = False
        pending, self.pending = self.pending, {}
        if not self.connection.connected.is_set():
            return  # the snapshot on reconnection publishes the states as they are then
        self._publish_some(list(pending.items()))

    def _publish_some(self, items: list[tuple[str, State | None]]) -> None:
        # A slice per loop turn: a fleet's second of changes never holds the loop at once.
        for entity_id, state in items[:SLICE]:
            if entity_id not in self.pending:  # a newer one waits for the next flush
                self._publish_state(entity_id, state)
        if len(items) > SLICE:
            self.hub.loop.call_soon(self._publish_some, items[SLICE:])

    def _publish_state(self, entity_id: str, state: State | None) -> None:
        topic = self.state_topic(entity_id)
        if state is None:
            self.connection.publish(topic, b"", retain=True)
            if entity_id in self._discovered:
                self._discovered.discard(entity_id)
                for component in ("sensor", "binary_sensor"):
                    self.connection.publish(
                        self._discovery_topic(component, entity_id), b"", retain=True
                    )
            return
        entry = entity_registry(self.hub).get(entity_id)
        device_id = entry.device_id if entry is not None else None
        payload = {
            "v": LAYOUT_VERSION,
            "entity_id": entity_id,
            "state": state.state,
            "attributes": dict(state.attributes),
            "last_changed_ts": state.last_changed_ts,
            "last_updated_ts": state.last_updated_ts,
            "last_reported_ts": state.last_reported_ts,
            "device_id": device_id,
        }
        self.connection.publish(topic, _json(payload), retain=True)
        self.state_messages += 1
        if device_id is not None and device_id not in self._devices_sent:
            self._publish_device(device_id)
        if (
            self.discovery_prefix is not None
            and device_id is not None
            and entity_id not in self._discovered
        ):
            self._discover(entity_id, state, device_id)

    def _publish_device(self, device_id: str) -> None:
        devices = device_registry(self.hub)
        current: str | None = device_id
        while current is not None and current not in self._devices_sent:
            device = devices.get(current)
            if device is None:
                return
            self._devices_sent.add(current)
            self.connection.publish(
                f"{self.root}/device/{current}",
                _json({"v": LAYOUT_VERSION, **device.as_dict()}),
                retain=True,
            )
            current = device.via_device_id

    def snapshot(self) -> None:
        """Publish everything retained again (each connection: the broker may have lost it)."""
        self._devices_sent.clear()
        self._discovered.clear()
        self.connection.publish(
            f"{self.root}/info",
            _json(
                {
                    "v": LAYOUT_VERSION,
                    "node": self.node,
                    "evhub": __version__,
                    "status_topic": self.status_topic,
                    "states": f"{self.root}/state/<entity_id>",
                    "devices": f"{self.root}/device/<device_id>",
                }
            ),
            retain=True,
        )
        if not self.states:
            return
        self.pending.clear()
        self._publish_some(
            [
                (state.entity_id, state)
                for state in self.hub.states.all()
                if self.wanted(state.entity_id)
            ]
        )

    # Home Assistant discovery ---------------------------------------------------------

    def _discovery_topic(self, component: str, entity_id: str) -> str:
        object_id = entity_id.replace(".", "_")
        return f"{self.discovery_prefix}/{component}/{self.ha_node}/{object_id}/config"

    def _station(self, device_id: str) -> DeviceEntry | None:
        devices = device_registry(self.hub)
        device = devices.get(device_id)
        for _ in range(8):
            if device is None or device.kind not in CHARGER_KINDS:
                return None
            if device.kind == DeviceKind.STATION:
                return device
            device = devices.get(device.via_device_id) if device.via_device_id else None
        return None

    def _discover(self, entity_id: str, state: State, device_id: str) -> None:
        station = self._station(device_id)
        if station is None:
            return
        self._discovered.add(entity_id)
        attributes = state.attributes
        device_class = attributes.get("device_class")
        unit = attributes.get("unit_of_measurement")
        friendly = str(attributes.get("friendly_name") or entity_id)
        station_name = station.name or station.id
        name = (
            friendly[len(station_name) :].strip() if friendly.startswith(station_name) else friendly
        )
        config: dict[str, Any] = {
            "name": name or friendly,
            "object_id": f"{self.ha_node}_{entity_id.replace('.', '_')}",
            "unique_id": f"{self.ha_node}_{entity_id}",
            "state_topic": self.state_topic(entity_id),
            "value_template": "{{ value_json.state }}",
            "json_attributes_topic": self.state_topic(entity_id),
            "json_attributes_template": "{{ value_json.attributes | tojson }}",
            "availability_topic": self.status_topic,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": {
                "identifiers": [f"{self.ha_node}_{station.id}"],
                "name": station_name,
                **{
                    key: value
                    for key, value in (
                        ("manufacturer", station.manufacturer),
                        ("model", station.model),
                        ("serial_number", station.serial_number),
                        ("sw_version", station.sw_version),
                    )
                    if value
                },
            },
            "origin": {"name": "evhub", "sw_version": __version__},
        }
        if device_class == "connectivity":
            component = "binary_sensor"
            config.update(device_class="connectivity", payload_on=ONLINE, payload_off=OFFLINE)
        else:
            component = "sensor"
            if device_class in HA_SENSOR_CLASSES:
                config["device_class"] = device_class
            if unit:
                config["unit_of_measurement"] = unit
                config["state_class"] = (
                    "total_increasing" if device_class == "energy" else "measurement"
                )
        self.connection.publish(
            self._discovery_topic(component, entity_id), _json(config), retain=True
        )

    # Alerts, security and charger events ----------------------------------------------

    def _alert(self, event: Event) -> None:
        self.connection.publish(
            f"{self.root}/alert",
            _json({"v": LAYOUT_VERSION, "event": event.event_type, "alert": dict(event.data)}),
            qos=1,
        )

    def _security(self, event: Event) -> None:
        self.connection.publish(
            f"{self.root}/security",
            _json({"v": LAYOUT_VERSION, "event": public_event(dict(event.data))}),
            qos=1,
        )

    def _charger_event(self, event: Event) -> None:
        self.connection.publish(
            f"{self.root}/charger_event",
            _json({"v": LAYOUT_VERSION, "event": dict(event.data)}),
        )
