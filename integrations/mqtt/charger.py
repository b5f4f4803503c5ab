"""One charger that publishes over MQTT: its topics become entities, its commands charger.*.

Each message on one of the charger's topics is decoded once (JSON, size-capped), each
value the profile reads from that topic is extracted (JSON path or jinja2 value template,
scale, range) and written to its entity; the connector status follows the profile's map
or status template and fires the same charger events an OCPP charger's would (status,
fault/recovered, session started/ended), so history, uptime, alerts and automations count
it alike. A message that does not fit is counted and logged with its topic, never more.

A charger is online while it publishes: its last will (the availability topic) saying
offline, or silence longer than ``silent_after``, makes it offline (an ``offline`` charger
event: an outage in uptime). Retained messages the broker hands over on subscribing fill
the entities but are no sign of life: they may be days old. While the hub's own broker
connection is down nothing is judged: the silence clock starts again on reconnection.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any, Final, Literal

import orjson

from hub.charger import (
    Charger,
    ChargerCapability,
    ChargerEventKind,
    ConnectorStatus,
    SessionData,
    fire_charger_event,
    register_single_port_station,
)
from hub.clock import clock
from hub.core import Hub
from hub.entity import WALLBOX_PORT_ENTITIES, EntityDescription, EntityGroup, entity_table
from hub.exceptions import HubError, ServiceValidationError, TemplateError
from hub.plugins import SetupContext
from hub.template import Template
from integrations.mqtt.connection import MqttConnection
from integrations.mqtt.profile import Profile, Value, ValueDecodeError, parse_status

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "mqtt"
ONLINE: Final = "online"
OFFLINE: Final = "offline"
PORT: Final = 1
# A topic's malformed payloads are logged at most once per this many seconds.
LOG_EVERY: Final = 60.0

_PLUGGED: Final = frozenset(
    {
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
    }
)


class ChargerUnavailableError(HubError):
    """The charger (or the broker) cannot be reached now."""

    http_status = 503
    error_code = "unavailable"


class CommandNotConfirmedError(HubError):
    """The charger did not publish the commanded value back in time."""

    http_status = 504
    error_code = "timeout"


STATION_ENTITIES: Final = entity_table(
    EntityDescription(key="connectivity", name="connectivity", device_class="connectivity"),
    EntityDescription(key="last_error", name="last error"),
)
PORT_ENTITIES: Final = entity_table(
    *WALLBOX_PORT_ENTITIES,
    EntityDescription(key="phases", name="phases"),
    EntityDescription(key="enabled", name="charging enabled"),
    EntityDescription(key="cable", name="cable state"),
    EntityDescription(
        key="temperature", name="temperature", unit_of_measurement="°C", device_class="temperature"
    ),
)


def entity_text(value: Any) -> Any:
    """A value as an entity's state: booleans on/off, structures as short JSON."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()[:255]
    if isinstance(value, str):
        return value[:255]
    return value


def _same(got: Any, expected: Any) -> bool:
    if isinstance(got, bool) or isinstance(expected, bool):
        return bool(got == expected)
    if isinstance(got, int | float) and isinstance(expected, int | float):
        return math.isclose(float(got), float(expected), abs_tol=0.05)
    return bool(got == expected)


class MqttCharger(Charger):
    """A charger whose profile says which topics it publishes and which it takes commands on."""

    def __init__(
        self,
        hub: Hub,
        connection: MqttConnection,
        key: str,
        profile: Profile,
        *,
        name: str,
        serial: str | None,
        base: str | None = None,
        silent_after: float | None = None,
        site: str | None = None,
        max_payload: int = 65536,
    ) -> None:
        self.hub = hub
        self.connection = connection
        self.key = key
        self.profile = profile
        self.name = name
        self.serial = serial
        self.base = base if base is not None else profile.base_for(serial)
        self.silent_after = silent_after if silent_after is not None else profile.silent_after
        self.max_payload = max_payload
        station, port_device = register_single_port_station(
            hub,
            DOMAIN,
            key,
            name,
            site=(f"site:{site}", site) if site else None,
            port=PORT,
            manufacturer=profile.manufacturer,
            model=profile.model,
            serial_number=serial,
        )
        super().__init__(station.id)
        self.port_device_id = port_device.id
        self.station_entities = EntityGroup(DOMAIN, STATION_ENTITIES, station.id, key, name)
        self.port_entities = EntityGroup(
            DOMAIN, PORT_ENTITIES, port_device.id, f"{key}-{PORT}", f"{name} {PORT}"
        )
        capabilities = ChargerCapability.TRIGGER_STATUS
        for kind, capability in (
            ("current_limit", ChargerCapability.SET_CURRENT_LIMIT),
            ("enable", ChargerCapability.SET_AVAILABILITY),
            ("phases", ChargerCapability.SET_PHASES),
            ("start_stop", ChargerCapability.START_STOP),
            ("reset", ChargerCapability.RESET),
        ):
            if kind in profile.commands:
                capabilities |= capability
        self.capabilities = capabilities
        # Topics: the full topic of each value, availability and alive topic.
        self.topics: dict[str, list[Value]] = {}
        for value in profile.values.values():
            self.topics.setdefault(f"{self.base}/{value.topic}", []).append(value)
        for topic in profile.alive:
            self.topics.setdefault(f"{self.base}/{topic}", [])
        availability = profile.availability
        self.availability_topic = (
            f"{self.base}/{availability['topic']}" if availability is not None else None
        )
        self.templates: dict[str, Template] = {
            value.name: Template(value.template, hub)
            for value in profile.values.values()
            if value.template is not None
        }
        status_template = profile.status.get("template")
        self.status_template = Template(status_template, hub) if status_template else None
        status_inputs = {profile.status.get("value"), profile.status.get("error")}
        enable = profile.commands.get("enable")
        if enable is not None and "readback" in enable:
            status_inputs.add(enable["readback"])
        self._status_inputs = frozenset(name for name in status_inputs if name)
        # State.
        self.values: dict[str, Any] = {}
        self.is_online: bool | None = None
        self.available: bool | None = None  # what the last will says (None: no such topic)
        self.last_seen: float | None = None
        self.status: str | None = None
        self.error_code: str | None = None
        self.last_error: str | None = None
        self.session: dict[str, Any] | None = None
        self.on_session: Callable[[], None] = lambda: None
        self._waiting: dict[str, list[tuple[Any, asyncio.Future[None]]]] = {}
        self._logged: dict[str, float] = {}
        self._undo: list[Callable[[], Any]] = []
        # Counters.
        self.messages = 0
        self.malformed = 0

    def __repr__(self) -> str:
        return f"<MqttCharger {self.key} {self.profile.key} {self.base}>"

    @property
    def online(self) -> bool:
        """Whether the charger publishes (and its last will does not say offline)."""
        return bool(self.is_online)

    # Life cycle -----------------------------------------------------------------------

    def start(self, ctx: SetupContext) -> None:
        """Register the charger and subscribe to its topics."""
        self._undo.append(ctx.register_charger(self))
        for topic in self.topics:
            self._undo.append(self.connection.subscribe(topic, self.on_message))
        if self.availability_topic is not None:
            self._undo.append(self.connection.subscribe(self.availability_topic, self.on_message))
        if self.hub.states.get(self.station_entities.entity_id(self.hub, "connectivity")) is None:
            self._write_station("connectivity", OFFLINE)

    def stop(self) -> None:
        """Unsubscribe and forget the charger (it is removed while the integration runs)."""
        while self._undo:
            self._undo.pop()()

    def broker_connected(self) -> None:
        """The hub's broker connection is back: the silence clock starts again."""
        if self.last_seen is not None:
            self.last_seen = clock(self.hub).time()

    def check_silence(self, now: float) -> None:
        """Offline when nothing was heard for longer than silent_after."""
        if self.is_online and self.last_seen is not None:
            silent = now - self.last_seen
            if silent > self.silent_after:
                self._went_offline(f"silent for {silent:.0f} s")

    # Messages -------------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes, retain: bool) -> None:
        """A message on one of the charger's topics."""
        self.messages += 1
        if len(payload) > self.max_payload:
            self._malformed(topic, f"payload of {len(payload)} bytes (at most {self.max_payload})")
            return
        if topic == self.availability_topic:
            self._on_availability(topic, payload)
            if topic not in self.topics:
                return
        values = self.topics.get(topic)
        if values is None:
            return
        if not retain:
            self.last_seen = clock(self.hub).time()
            if self.is_online is not True and self.available is not False:
                self._went_online()
        if not values:
            return
        decoded: Any = None
        text: str | None = None
        try:
            text = payload.decode("utf-8")
            if any(value.json for value in values):
                decoded = orjson.loads(payload)
        except (UnicodeDecodeError, orjson.JSONDecodeError) as err:
            self._malformed(topic, f"not JSON: {str(err)[:80]}")
            return
        changed: set[str] = set()
        bad: list[str] = []
        for value in values:
            try:
                if value.template is not None:
                    found = value.check(
                        self.templates[value.name].render(
                            {"value": text, "value_json": decoded}, parse_result=True
                        )
                    )
                else:
                    found = value.extract(decoded if value.json else text)
            except (ValueDecodeError, TemplateError) as err:
                bad.append(str(err))
                continue
            if self.values.get(value.name, _MISSING) != found:
                self.values[value.name] = found
                changed.add(value.name)
                if value.entity is not None:
                    self._write_port(value.entity, entity_text(found))
            waiting = self._waiting.get(value.name)
            if waiting:
                for expected, future in list(waiting):
                    if _same(found, expected) and not future.done():
                        future.set_result(None)
        if bad:
            self._malformed(topic, "; ".join(bad[:3]))
        if changed:
            if self.status_template is not None or changed & self._status_inputs:
                self._update_status(topic)
            self._follow_session()

    def _on_availability(self, topic: str, payload: bytes) -> None:
        spec = self.profile.availability
        assert spec is not None
        try:
            said: Any = orjson.loads(payload) if spec["json"] else payload.decode("utf-8")
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            said = payload.decode("utf-8", "replace")
        if said == spec["online"] or str(said) == str(spec["online"]):
            self.available = True
            self.last_seen = clock(self.hub).time()
            if self.is_online is not True:
                self._went_online()
        elif said == spec["offline"] or str(said) == str(spec["offline"]):
            self.available = False
            if self.is_online is not False:
                self._went_offline("its last will says offline")
        else:
            self._malformed(topic, f"availability {payload[:40]!r} is neither online nor offline")

    def _malformed(self, topic: str, reason: str) -> None:
        self.malformed += 1
        self.last_error = f"{topic}: {reason}"
        now = clock(self.hub).time()
        # One line per topic and kind of fault a minute, however fast the garbage comes.
        kind = f"{topic} {reason[:24]}"
        if now - self._logged.get(kind, -math.inf) >= LOG_EVERY:
            self._logged[kind] = now
            if len(self._logged) > 1000:
                self._logged.clear()
            _LOGGER.warning(
                "MQTT charger %s: malformed payload on %s: %s (%d so far)",
                self.key,
                topic,
                reason,
                self.malformed,
            )
            self._write_station("last_error", self.last_error[:250])

    # Status and sessions --------------------------------------------------------------

    def _update_status(self, topic: str) -> None:
        status: str | None
        try:
            status = self._status_of()
        except (ValueDecodeError, TemplateError) as err:
            self._malformed(topic, str(err))
            return
        if status is None:
            return
        self._set_status(self._locked(status), self._error_of())

    def _status_of(self) -> str | None:
        spec = self.profile.status
        if spec.get("fault_on_error") and self._error_of() is not None:
            return str(ConnectorStatus.FAULTED)
        if self.status_template is not None:
            rendered = str(self.status_template.render({"values": dict(self.values)})).strip()
            if not rendered:
                return None
            try:
                return parse_status(rendered)
            except Exception as err:
                raise ValueDecodeError(f"status template: {err}") from None
        raw = self.values.get(spec["value"])
        if raw is None:
            return None
        found = spec["map"].get(raw)
        if found is None and isinstance(raw, float) and raw.is_integer():
            found = spec["map"].get(int(raw))
        if found is None:
            raise ValueDecodeError(f"{spec['value']} = {raw!r} is not a known status code")
        return str(found)

    def _error_of(self) -> str | None:
        name = self.profile.status.get("error")
        if name is None:
            return None
        value = self.values.get(name)
        if value in self.profile.status["error_ok"]:
            return None
        return str(value)

    def _locked(self, status: str) -> str:
        """A charger its enable command disabled is Unavailable, whatever else it says."""
        command = self.profile.commands.get("enable")
        if command is None or "readback" not in command:
            return status
        if not _same(self.values.get(command["readback"]), command["disabled"]):
            return status
        if status in (ConnectorStatus.FAULTED,):
            return status
        if status in (ConnectorStatus.AVAILABLE, ConnectorStatus.UNAVAILABLE):
            return str(ConnectorStatus.UNAVAILABLE)
        return str(ConnectorStatus.SUSPENDED_EVSE)

    def _set_status(self, status: str, error_code: str | None) -> None:
        previous = self.status
        if previous == status and error_code == self.error_code:
            return
        self.status = status
        self.error_code = error_code
        self._write_port("status", status)
        self._write_port("error_code", error_code)
        if previous == status:
            return
        if ConnectorStatus.FAULTED in (status, previous):
            kind: Literal[ChargerEventKind.FAULT, ChargerEventKind.RECOVERED] = (
                ChargerEventKind.FAULT
                if status == ConnectorStatus.FAULTED
                else ChargerEventKind.RECOVERED
            )
            fire_charger_event(
                self.hub,
                kind,
                station_id=self.device_id,
                device_id=self.port_device_id,
                data={
                    "charge_point_id": self.key,
                    "port": PORT,
                    "status": status,
                    "error_code": error_code,
                },
            )
        self._fire_status(previous)

    def _fire_status(self, previous: str | None) -> None:
        if self.status is None:
            return
        fire_charger_event(
            self.hub,
            ChargerEventKind.STATUS,
            station_id=self.device_id,
            device_id=self.port_device_id,
            data={
                "charge_point_id": self.key,
                "port": PORT,
                "status": self.status,
                "previous": previous,
                "error_code": None,
                "vendor_error_code": self.error_code,
                "time": None,
            },
        )

    def _entity_value(self, entity: str) -> float | None:
        for value in self.profile.values.values():
            if value.entity == entity:
                found = self.values.get(value.name)
                if isinstance(found, int | float) and not isinstance(found, bool):
                    return float(found)
        return None

    def _follow_session(self) -> None:
        """A session opens when the connector charges and ends when it is unplugged (or
        faults), as the Modbus wallboxes': MQTT chargers have no transactions either."""
        status, session = self.status, self.session
        power = self._entity_value("power")
        if session is None:
            if status == ConnectorStatus.CHARGING:
                now = clock(self.hub).time()
                self.session = {
                    "transaction_id": f"{self.key}-{int(now)}",
                    "started_at": now,
                    "energy_start": self._entity_value("energy"),
                    "peak_power_w": power or 0.0,
                    "error_code": None,
                }
                fire_charger_event(
                    self.hub,
                    ChargerEventKind.SESSION_STARTED,
                    station_id=self.device_id,
                    device_id=self.port_device_id,
                    data={**self._session_data(None, None), "energy_wh": 0.0},
                )
                self.on_session()
            return
        if power is not None and power > session["peak_power_w"]:
            session["peak_power_w"] = power
        if self.error_code is not None and status == ConnectorStatus.FAULTED:
            session["error_code"] = self.error_code
        if status in _PLUGGED or status is None:
            session["energy_wh"] = self._session_energy()
            return
        reason = {
            ConnectorStatus.AVAILABLE: "EVDisconnected",
            ConnectorStatus.UNAVAILABLE: "Remote",
        }.get(ConnectorStatus(status), "Other")
        readings = [
            energy
            for energy in (self._session_energy(), session.get("energy_wh"))
            if isinstance(energy, int | float)
        ]
        fire_charger_event(
            self.hub,
            ChargerEventKind.SESSION_ENDED,
            station_id=self.device_id,
            device_id=self.port_device_id,
            data=self._session_data(reason, max(readings) if readings else None),
        )
        self.session = None
        self.on_session()

    def _session_energy(self) -> float | None:
        session = self.session
        if session is None:
            return None
        counted = self._entity_value("session_energy")
        if counted is not None:
            return counted
        energy, start = self._entity_value("energy"), session.get("energy_start")
        if energy is None or not isinstance(start, int | float):
            last = session.get("energy_wh")
            return float(last) if isinstance(last, int | float) else None
        return max(0.0, energy - start)

    def _session_data(self, reason: str | None, energy: float | None) -> SessionData:
        session = self.session or {}
        return {
            "charge_point_id": self.key,
            "port": PORT,
            "transaction_id": session.get("transaction_id"),
            "id_tag": None,
            "started_at": session.get("started_at"),
            "stopped_at": clock(self.hub).time() if reason is not None else None,
            "energy_wh": energy,
            "peak_power_w": session.get("peak_power_w"),
            "stop_reason": reason,
            "error_code": session.get("error_code"),
        }

    # Online and offline ---------------------------------------------------------------

    def _went_online(self) -> None:
        self.is_online = True
        self._write_station(
            "connectivity", ONLINE, {"topic": self.base, "profile": self.profile.key}
        )
        fire_charger_event(
            self.hub,
            ChargerEventKind.ONLINE,
            station_id=self.device_id,
            data={"charge_point_id": self.key},
        )
        _LOGGER.info("MQTT charger %s publishes on %s", self.key, self.base)

    def _went_offline(self, reason: str) -> None:
        self.is_online = False
        self._write_station("connectivity", OFFLINE, {"reason": reason[:250]})
        fire_charger_event(
            self.hub,
            ChargerEventKind.OFFLINE,
            station_id=self.device_id,
            data={"charge_point_id": self.key, "reason": reason[:250]},
        )
        _LOGGER.warning("MQTT charger %s is offline: %s", self.key, reason)

    def _write_station(self, key: str, value: Any, extra: dict[str, Any] | None = None) -> None:
        self.station_entities.write(self.hub, key, value, None, extra)

    def _write_port(self, key: str, value: Any) -> None:
        self.port_entities.write(self.hub, key, value)

    # Commands -------------------------------------------------------------------------

    async def _command(self, kind: str, value: Any) -> dict[str, Any]:
        """Publish a command and wait for its readback; the answer or a clear error."""
        command = self.profile.commands[kind]
        if not self.connection.connected.is_set():
            raise ChargerUnavailableError(
                f"{self.name}: the MQTT broker {self.connection.where} is not connected"
            )
        if self.is_online is False:
            raise ChargerUnavailableError(f"{self.name} is offline")
        readback = command.get("readback")
        future: asyncio.Future[None] | None = None
        if readback is not None and not _same(self.values.get(readback), value):
            future = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(readback, []).append((value, future))
        topic = f"{self.base}/{command['topic']}"
        try:
            if not self.connection.publish(
                topic, orjson.dumps(value), retain=command["retain"], qos=1
            ):
                raise ChargerUnavailableError(f"{self.name}: the command could not be queued")
            if future is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(future), self.profile.command_timeout)
                except TimeoutError:
                    raise CommandNotConfirmedError(
                        f"{self.name} did not confirm {kind} = {value!r} on {self.base}/"
                        f"{self.profile.values[str(readback)].topic} within"
                        f" {self.profile.command_timeout:g} s"
                    ) from None
        finally:
            if future is not None:
                waiting = self._waiting.get(readback or "", [])
                if (value, future) in waiting:
                    waiting.remove((value, future))
                future.cancel()
        return {"result": "Accepted", "confirmed": readback is not None, "topic": topic}

    async def set_current_limit(self, limit: float, connector_id: int | None) -> Any:
        """Publish the current limit (A); below the minimum pauses, where the profile can."""
        command = self.profile.commands["current_limit"]
        value = float(limit)
        if value < command["min"]:
            if "pause" not in command:
                raise ServiceValidationError(
                    f"{self.name} takes {command['min']:g} to {command['max']:g} A, not {limit:g}"
                )
            value = float(command["pause"])
        elif value > command["max"]:
            raise ServiceValidationError(
                f"{self.name} takes at most {command['max']:g} A, not {limit:g}"
            )
        number: float | int = round(value) if command["integer"] else value
        if command["integer"] and not math.isclose(number, value):
            raise ServiceValidationError(f"{self.name} takes whole amperes, not {limit:g}")
        return await self._command("current_limit", number)

    async def set_availability(self, available: bool, connector_id: int | None) -> Any:
        """Enable (unlock) or disable (lock) charging."""
        command = self.profile.commands["enable"]
        return await self._command("enable", command["enabled" if available else "disabled"])

    async def set_phases(self, phases: int, connector_id: int | None) -> Any:
        """Charge on one or three phases."""
        values = self.profile.commands["phases"]["values"]
        if phases not in values:
            raise ServiceValidationError(f"{self.name} cannot charge on {phases} phase(s)")
        return await self._command("phases", values[phases])

    async def start_charging(self, connector_id: int | None, id_tag: str | None) -> Any:
        """Start (force) charging."""
        return await self._command("start_stop", self.profile.commands["start_stop"]["start"])

    async def stop_charging(self, connector_id: int | None) -> Any:
        """Stop (pause) charging."""
        return await self._command("start_stop", self.profile.commands["start_stop"]["stop"])

    async def reset(self, reset_type: Any) -> Any:
        """Restart the charger."""
        return await self._command("reset", self.profile.commands["reset"]["payload"])

    async def trigger_status(self, connector_id: int | None) -> Any:
        """Report the port's last status again (an MQTT charger publishes on its own)."""
        if not self.online:
            raise ChargerUnavailableError(f"{self.name} is offline")
        self._fire_status(self.status)
        return "Accepted"

    def as_dict(self) -> dict[str, Any]:
        """What the API shows of the charger."""
        return {
            "id": self.key,
            "name": self.name,
            "device_id": self.device_id,
            "profile": self.profile.key,
            "product": self.profile.name,
            "base_topic": self.base,
            "serial": self.serial,
            "online": self.is_online,
            "available": self.available,
            "last_seen": self.last_seen,
            "status": self.status,
            "error_code": self.error_code,
            "last_error": self.last_error,
            "messages": self.messages,
            "malformed": self.malformed,
            "capabilities": [
                (capability.name or "").lower()
                for capability in ChargerCapability
                if capability and capability in self.capabilities
            ],
            "session": None
            if self.session is None
            else {
                key: self.session.get(key)
                for key in ("transaction_id", "started_at", "energy_wh", "peak_power_w")
            },
        }


class _Missing:
    """No value yet (None is a value a charger may publish)."""


_MISSING: Final = _Missing()
