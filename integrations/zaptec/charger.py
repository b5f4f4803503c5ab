"""One Zaptec charger: its devices and entities, its state from observations, its commands.

The account polls (``integrations.zaptec.account``); each answer is applied here. The
cloud's IsOnline says whether the charger is connected to it: false is an ``offline``
charger event (an outage in uptime). When the cloud itself cannot be reached the charger's
state is unknown: an ``unknown`` charger event, which uptime does not count as an outage.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from hub.charger import (
    Charger,
    ChargerCapability,
    ChargerEventKind,
    ConnectorStatus,
    ResetType,
    SessionData,
    fire_charger_event,
    register_single_port_station,
)
from hub.clock import clock
from hub.core import Hub
from hub.entity import WALLBOX_PORT_ENTITIES, EntityDescription, EntityGroup, entity_table
from hub.exceptions import ServiceValidationError
from integrations.zaptec.api import (
    COMMAND_RESTART,
    COMMAND_RESUME_CHARGING,
    COMMAND_STOP_CHARGING,
    ChargerInfo,
    Observation,
)

if TYPE_CHECKING:
    from integrations.zaptec.account import Account

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "zaptec"
PORT: Final = 1
ONLINE: Final = "online"
OFFLINE: Final = "offline"

# State observation ids (Zaptec's /api/constants, Smart and Go chargers alike).
OBS_IS_ONLINE: Final = -2
OBS_VOLTAGE: Final = (501, 502, 503)
OBS_CURRENT: Final = (507, 508, 509)
OBS_MAX_CURRENT: Final = 510
OBS_TOTAL_POWER: Final = 513
OBS_SESSION_ENERGY: Final = 553  # kWh
OBS_SIGNED_METER: Final = 554  # OCMF, the meter reading inside
OBS_CURRENT_SET: Final = 708
OBS_OPERATION_MODE: Final = 710
OBS_IS_ENABLED: Final = 711
OBS_FINAL_STOP: Final = 718
OBS_WARNINGS: Final = 804

# ChargerOperationMode: 0 unknown, 1 disconnected, 2 connected and requesting, 3 charging,
# 5 connected and finished (or paused).
MODE_UNKNOWN: Final = 0
MODE_DISCONNECTED: Final = 1
MODE_REQUESTING: Final = 2
MODE_CHARGING: Final = 3
MODE_FINISHED: Final = 5

_PLUGGED: Final = frozenset(
    {
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
    }
)

# What a reading may be; outside it is garbage (a problem, the entity unknown).
_RANGES: Final = {
    "power": (0.0, 1_000_000.0),
    "energy": (0.0, 1e10),
    "session_energy": (0.0, 1e7),
    "current": (0.0, 1000.0),
    "voltage": (0.0, 1000.0),
}


STATION_ENTITIES: Final = entity_table(
    EntityDescription(key="connectivity", name="connectivity", device_class="connectivity"),
    EntityDescription(key="last_error", name="last error"),
)
PORT_ENTITIES: Final = entity_table(
    *WALLBOX_PORT_ENTITIES,
    # Zaptec reports warnings where others have an error code.
    EntityDescription(key="error_code", name="warnings"),
    EntityDescription(key="enabled", name="charging enabled"),
)

_OCMF_READING: Final = re.compile(r"^OCMF\|(\{.*?\})\|", re.DOTALL)


def meter_wh(signed: str | None) -> float | None:
    """The import register (1-0:1.8.0) of an OCMF signed meter value, in Wh; None if absent."""
    if not signed or len(signed) > 4096:
        return None
    found = _OCMF_READING.match(signed)
    if found is None:
        return None
    try:
        payload = json.loads(found.group(1))
    except ValueError:
        return None
    readings = payload.get("RD") if isinstance(payload, dict) else None
    if not isinstance(readings, list):
        return None
    for reading in reversed(readings):
        if not isinstance(reading, dict) or reading.get("RI") != "1-0:1.8.0":
            continue
        value, unit = reading.get("RV"), reading.get("RU")
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        factor = {"kWh": 1000.0, "Wh": 1.0}.get(unit) if isinstance(unit, str) else None
        if factor is None or not math.isfinite(value):
            return None
        return float(value) * factor
    return None


class ZaptecCharger(Charger):
    """A Zaptec charger seen through the cloud; one port."""

    def __init__(self, hub: Hub, account: Account, info: ChargerInfo) -> None:
        self.hub = hub
        self.account = account
        self.key = info.charger_id
        self.name = info.name
        self.installation_id = info.installation_id
        installation = info.installation_id
        station, port = register_single_port_station(
            hub,
            DOMAIN,
            self.key,
            info.name,
            site=(
                (f"installation:{installation}", f"Zaptec installation {installation[:8]}")
                if installation
                else None
            ),
            port=PORT,
            manufacturer="Zaptec",
            model=None,
        )
        super().__init__(station.id)
        self.port_device_id = port.id
        self.serial = info.serial
        self.station_entities = EntityGroup(
            DOMAIN, STATION_ENTITIES, station.id, self.key, info.name
        )
        self.port_entities = EntityGroup(
            DOMAIN, PORT_ENTITIES, port.id, f"{self.key}-{PORT}", f"{info.name} {PORT}"
        )
        capabilities = (
            ChargerCapability.RESET
            | ChargerCapability.START_STOP
            | ChargerCapability.TRIGGER_STATUS
        )
        if info.installation_id:
            capabilities |= ChargerCapability.SET_CURRENT_LIMIT
        self.capabilities = capabilities
        # None: not known (before the first answer, or while the cloud is away).
        self.is_online: bool | None = None
        self.status: str | None = None
        self.error_code: str | None = None
        self.last_error: str | None = None
        self.values: dict[str, float | None] = {}
        self.max_current: float | None = None
        self.problems: list[str] = []
        self._bad: set[str] = set()
        self.session: dict[str, Any] | None = None
        self.last_answer: float | None = None
        # The cloud cannot be reached (an unknown event was fired).
        self.unknown = False

    def __repr__(self) -> str:
        return f"<ZaptecCharger {self.key} {self.name}>"

    @property
    def online(self) -> bool:
        """Whether the cloud answers and says the charger is connected."""
        return self.is_online is True

    # Applying what the cloud says -------------------------------------------------------

    def apply(self, observations: Mapping[int, Observation]) -> None:
        """Apply one answer of GET /api/chargers/{id}/state."""
        self.last_answer = clock(self.hub).time()
        self.unknown = False
        problems: list[str] = []
        online_flag = self._flag(observations, OBS_IS_ONLINE, problems)
        online = True if online_flag is None else online_flag
        if not online:
            if self.is_online is not False:
                self._went_offline("the Zaptec cloud reports the charger offline")
            self._report(problems)
            return
        if self.is_online is not True:
            self._went_online()
        values: dict[str, float | None] = {
            "power": self._number(observations, OBS_TOTAL_POWER, "power", problems),
            "session_energy": self._kwh(observations, problems),
            "energy": self._meter(observations),
            "current_limit": self._number(observations, OBS_CURRENT_SET, "current", problems),
            "max_current": self._number(observations, OBS_MAX_CURRENT, "current", problems),
        }
        pairs = zip(OBS_VOLTAGE, OBS_CURRENT, strict=True)
        for phase, (volt, amp) in zip(("l1", "l2", "l3"), pairs, strict=True):
            values[f"voltage_{phase}"] = self._number(observations, volt, "voltage", problems)
            values[f"current_{phase}"] = self._number(observations, amp, "current", problems)
        for key, value in values.items():
            if value is not None or key in self.values:
                self._write_port(key, None if value is None else round(value, 3))
        self.values = values
        if values["max_current"] is not None:
            self.max_current = values["max_current"]
        enabled = self._flag(observations, OBS_IS_ENABLED, problems)
        if enabled is not None:
            self._write_port("enabled", "on" if enabled else "off")
        warnings = self._warnings(observations, problems)
        status = self._status_of(observations, enabled, problems)
        if status is not None:
            self._set_status(status, warnings)
        elif warnings != self.error_code:
            self.error_code = warnings
            self._write_port("error_code", warnings)
        self._follow_session(values)
        self._report(problems)

    def set_unknown(self, reason: str) -> None:
        """The cloud cannot be reached: what the charger does is unknown (no outage)."""
        if self.unknown:
            return
        self.unknown = True
        self.is_online = None
        self.status = None
        self.last_error = reason
        self._write_station("connectivity", None, {"reason": reason[:250]})
        self._write_station("last_error", reason[:250])
        self._write_port("status", None)
        fire_charger_event(
            self.hub,
            ChargerEventKind.UNKNOWN,
            station_id=self.device_id,
            data={"charge_point_id": self.key, "reason": reason[:250]},
        )

    def _flag(
        self, observations: Mapping[int, Observation], state_id: int, problems: list[str]
    ) -> bool | None:
        found = observations.get(state_id)
        if found is None or found.value is None:
            return None
        text = found.value.strip().lower()
        if text in ("1", "true"):
            return True
        if text in ("0", "false"):
            return False
        problems.append(f"observation {state_id} = {found.value[:40]!r} is not 0 or 1")
        return None

    def _number(
        self,
        observations: Mapping[int, Observation],
        state_id: int,
        kind: str,
        problems: list[str],
        scale: float = 1.0,
    ) -> float | None:
        found = observations.get(state_id)
        if found is None or found.value is None or not found.value.strip():
            return None
        try:
            value = float(found.value.strip()[:64]) * scale
        except ValueError:
            problems.append(f"observation {state_id} = {found.value[:40]!r} is not a number")
            return None
        low, high = _RANGES[kind]
        if not math.isfinite(value) or not low <= value <= high:
            problems.append(f"observation {state_id} = {found.value[:40]!r} is out of range")
            return None
        return value

    def _kwh(self, observations: Mapping[int, Observation], problems: list[str]) -> float | None:
        return self._number(observations, OBS_SESSION_ENERGY, "session_energy", problems, 1000.0)

    def _meter(self, observations: Mapping[int, Observation]) -> float | None:
        found = observations.get(OBS_SIGNED_METER)
        value = meter_wh(found.value if found is not None else None)
        low, high = _RANGES["energy"]
        return value if value is not None and low <= value <= high else None

    def _warnings(self, observations: Mapping[int, Observation], problems: list[str]) -> str | None:
        found = observations.get(OBS_WARNINGS)
        if found is None or found.value is None:
            return None
        text = found.value.strip()
        try:
            code = int(text[:20])
        except ValueError:
            problems.append(f"observation {OBS_WARNINGS} = {text[:40]!r} is not a number")
            return None
        return None if code == 0 else str(code)

    def _status_of(
        self,
        observations: Mapping[int, Observation],
        enabled: bool | None,
        problems: list[str],
    ) -> str | None:
        found = observations.get(OBS_OPERATION_MODE)
        if found is None or found.value is None:
            return None
        try:
            mode = int(float(found.value.strip()[:20]))
        except ValueError:
            problems.append(f"operation mode {found.value[:40]!r} is not a number")
            return None
        paused = self._flag(observations, OBS_FINAL_STOP, problems)
        if mode == MODE_DISCONNECTED:
            status = ConnectorStatus.AVAILABLE
        elif mode == MODE_REQUESTING:
            status = ConnectorStatus.PREPARING
        elif mode == MODE_CHARGING:
            status = ConnectorStatus.CHARGING
        elif mode == MODE_FINISHED:
            # Paused by a stop command (FinalStopActive) or finished by the car.
            status = ConnectorStatus.SUSPENDED_EVSE if paused else ConnectorStatus.SUSPENDED_EV
        elif mode == MODE_UNKNOWN:
            return None
        else:
            problems.append(f"operation mode {mode} is not one Zaptec documents")
            return None
        if enabled is False:
            # A disabled charger is not available for use, whatever the car does.
            if status == ConnectorStatus.AVAILABLE:
                return str(ConnectorStatus.UNAVAILABLE)
            return str(ConnectorStatus.SUSPENDED_EVSE)
        return str(status)

    def _report(self, problems: list[str]) -> None:
        for problem in problems:
            if problem not in self._bad:
                _LOGGER.warning("Zaptec %s: %s", self.name, problem)
        self._bad = set(problems)
        self.problems = problems
        if problems:
            self.last_error = problems[0]
            self._write_station("last_error", problems[0][:250])

    def _went_online(self) -> None:
        self.is_online = True
        self._write_station("connectivity", ONLINE, {"source": "zaptec cloud"})
        fire_charger_event(
            self.hub,
            ChargerEventKind.ONLINE,
            station_id=self.device_id,
            data={"charge_point_id": self.key},
        )

    def _went_offline(self, reason: str) -> None:
        self.is_online = False
        self.last_error = reason
        self._write_station("connectivity", OFFLINE, {"reason": reason})
        fire_charger_event(
            self.hub,
            ChargerEventKind.OFFLINE,
            station_id=self.device_id,
            data={"charge_point_id": self.key, "reason": reason},
        )

    def _set_status(self, status: str, error_code: str | None) -> None:
        previous = self.status
        if previous == status and error_code == self.error_code:
            return
        self.status = status
        self.error_code = error_code
        self._write_port("status", status)
        self._write_port("error_code", error_code)
        if previous != status and ConnectorStatus.FAULTED in (status, previous):
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
                data={"charge_point_id": self.key, "port": PORT, "status": status},
            )
        if previous != status:
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

    # Sessions ---------------------------------------------------------------------------

    def _follow_session(self, values: Mapping[str, float | None]) -> None:
        """A session opens when the charger charges and closes when the car leaves.

        The cloud's session counter (observation 553) gives its energy, so history, charge
        success and reports count Zaptec sessions as an OCPP charger's.
        """
        status, session = self.status, self.session
        power = values.get("power")
        now = clock(self.hub).time()
        if session is None:
            if status == ConnectorStatus.CHARGING:
                self.session = {
                    "transaction_id": f"{self.key}-{int(now)}",
                    "started_at": now,
                    "peak_power_w": power or 0.0,
                    "energy_wh": values.get("session_energy"),
                }
                fire_charger_event(
                    self.hub,
                    ChargerEventKind.SESSION_STARTED,
                    station_id=self.device_id,
                    device_id=self.port_device_id,
                    data={**self._session_data(None), "energy_wh": 0.0},
                )
            return
        if power is not None and power > session["peak_power_w"]:
            session["peak_power_w"] = power
        energy = values.get("session_energy")
        if energy is not None:
            session["energy_wh"] = max(energy, session.get("energy_wh") or 0.0)
        if status in _PLUGGED or status is None:
            return
        reason = "EVDisconnected" if status == ConnectorStatus.AVAILABLE else "Other"
        fire_charger_event(
            self.hub,
            ChargerEventKind.SESSION_ENDED,
            station_id=self.device_id,
            device_id=self.port_device_id,
            data=self._session_data(reason),
        )
        self.session = None

    def _session_data(self, reason: str | None) -> SessionData:
        session = self.session or {}
        return {
            "charge_point_id": self.key,
            "port": PORT,
            "transaction_id": session.get("transaction_id"),
            "id_tag": None,
            "started_at": session.get("started_at"),
            "stopped_at": clock(self.hub).time() if reason is not None else None,
            "energy_wh": session.get("energy_wh"),
            "peak_power_w": session.get("peak_power_w"),
            "stop_reason": reason,
            "error_code": None,
        }

    def _write_station(self, key: str, value: Any, extra: dict[str, Any] | None = None) -> None:
        self.station_entities.write(self.hub, key, value, None, extra)

    def _write_port(self, key: str, value: Any) -> None:
        self.port_entities.write(self.hub, key, value)

    # Commands ---------------------------------------------------------------------------

    async def reset(self, reset_type: ResetType) -> Any:
        """Restart the charger (Zaptec has one restart, soft and hard alike)."""
        await self.account.api.send_command(self.key, COMMAND_RESTART)
        return "Accepted"

    async def start_charging(self, connector_id: int | None, id_tag: str | None) -> Any:
        """Resume charging (Zaptec's command 507)."""
        await self.account.api.send_command(self.key, COMMAND_RESUME_CHARGING)
        return "Accepted"

    async def stop_charging(self, connector_id: int | None) -> Any:
        """Stop (pause) charging (Zaptec's command 506)."""
        await self.account.api.send_command(self.key, COMMAND_STOP_CHARGING)
        return "Accepted"

    async def set_current_limit(self, limit: float, connector_id: int | None) -> Any:
        """Set the installation's available current: it is shared by its every charger."""
        if self.installation_id is None:
            raise ServiceValidationError(f"{self.name} belongs to no installation")
        if self.max_current is not None and limit > self.max_current:
            raise ServiceValidationError(
                f"{self.name} takes at most {self.max_current:g} A, not {limit:g}"
            )
        await self.account.api.set_available_current(self.installation_id, float(limit))
        return {"result": "Accepted", "installation_id": self.installation_id}

    async def trigger_status(self, connector_id: int | None) -> Any:
        """Poll the cloud now and report the port's status again."""
        await self.account.poll_charger(self)
        self._fire_status(self.status)
        return "Accepted"

    def as_dict(self) -> dict[str, Any]:
        """What the API shows of the charger."""
        return {
            "id": self.key,
            "name": self.name,
            "device_id": self.device_id,
            "installation_id": self.installation_id,
            "serial": self.serial,
            "online": self.is_online,
            "status": self.status,
            "warnings": self.error_code,
            "last_error": self.last_error,
            "values": dict(self.values),
            "session": None
            if self.session is None
            else {
                key: self.session.get(key)
                for key in ("transaction_id", "started_at", "energy_wh", "peak_power_w")
            },
        }
