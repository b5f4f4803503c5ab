"""What a simulated charger is, whatever OCPP it speaks: connectors, sessions, meters, profiles.

The plain data the charger keeps and the links report, with the scenario names, the timings
the scenarios play and the electrical model the meters follow.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

VERSION_16: Final = "1.6"
VERSION_201: Final = "2.0.1"
SUBPROTOCOLS: Final[dict[str, str]] = {VERSION_16: "ocpp1.6", VERSION_201: "ocpp2.0.1"}

SCENARIO_IDLE: Final = "idle"
SCENARIO_NORMAL: Final = "normal"
SCENARIO_FAULT: Final = "fault"
SCENARIO_OFFLINE: Final = "offline"
SCENARIO_REBOOT: Final = "reboot"
SCENARIO_WRONG_PASSWORD: Final = "wrong-password"
SCENARIO_TAMPER: Final = "tamper"
SCENARIOS: Final = (
    SCENARIO_IDLE,
    SCENARIO_NORMAL,
    SCENARIO_FAULT,
    SCENARIO_OFFLINE,
    SCENARIO_REBOOT,
    SCENARIO_WRONG_PASSWORD,
    SCENARIO_TAMPER,
)

# Timings in simulated seconds (divided by speed).
BACKOFF_INITIAL: Final = 1.0
BACKOFF_MAX: Final = 60.0
DEFAULT_HEARTBEAT_INTERVAL: Final = 300
BOOT_RETRY_INTERVAL: Final = 30
REBOOT_TIME: Final = 2.0
FINISHING_TIME: Final = 2.0
STEP_TIME: Final = 1.0
SCENARIO_TICK: Final = 1.0
NORMAL_IDLE: Final = (5.0, 15.0)
NORMAL_SESSION: Final = (30.0, 120.0)
# A failed start (normal scenario, failed_start_rate): a driver plugs in, no transaction
# starts, and the connector is free again after this long.
FAILED_START_TIME: Final = 5.0
FAULT_FIRST: Final = 5.0
FAULT_EVERY: Final = 30.0
FAULT_FOR: Final = 10.0
FAULT_CODES: Final = (
    "GroundFailure",
    "OverCurrentFailure",
    "HighTemperature",
    "EVCommunicationError",
)
OFFLINE_EVERY: Final = 30.0
OFFLINE_FOR: Final = 15.0
REBOOT_EVERY: Final = 60.0
REBOOT_REASON: Final = "Watchdog"
TAMPER_FIRST: Final = 5.0
TAMPER_EVERY: Final = 60.0
TAMPER_EVENT: Final = "TamperDetectionActivated"

# The electrical model: three phases, 230 V, 32 A, an EV with a 60 kWh battery.
PHASES: Final = 3
NOMINAL_VOLTAGE: Final = 230.0
MAX_POWER_W: Final = PHASES * NOMINAL_VOLTAGE * 32
EV_CAPACITY_WH: Final = 60_000.0
# What the meters measure, as 1.6 MeterValuesSampledData and 2.0.1 TxUpdatedMeasurands.
MEASURANDS: Final = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"

STATUS_AVAILABLE: Final = "Available"
STATUS_PREPARING: Final = "Preparing"
STATUS_CHARGING: Final = "Charging"
STATUS_FINISHING: Final = "Finishing"
STATUS_UNAVAILABLE: Final = "Unavailable"
STATUS_FAULTED: Final = "Faulted"
ERROR_NONE: Final = "NoError"

# Work to do once the answer to the central system's call is sent.
FollowUp = Callable[[], Coroutine[Any, Any, None]]


def now_iso() -> str:
    """Return the current UTC time as OCPP writes it (milliseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Setting:
    """One configuration key (1.6) or device model variable (2.0.1)."""

    value: str
    readonly: bool = False
    kind: type = str


@dataclass(slots=True)
class Profile:
    """A charging profile reduced to what the simulator honours: a power limit."""

    id: int
    connector: int  # 0 = the whole station
    purpose: str
    stack_level: int
    limit_w: float


@dataclass(slots=True)
class Session:
    """A charging session on one connector."""

    id_tag: str
    remote_start_id: int | None = None
    transaction_id: int | str | None = None
    meter_start: int = 0
    ends_at: float | None = None
    seq_no: int = 0


@dataclass(slots=True)
class Connector:
    """One connector (1.6) or EVSE with one connector (2.0.1)."""

    id: int
    energy_wh: float
    status: str = STATUS_AVAILABLE
    error_code: str = ERROR_NONE
    operative: bool = True
    pending_operative: bool | None = None
    session: Session | None = None
    power_w: float = 0.0
    soc: float = 0.0
    last_sample: float = 0.0
    next_start: float | None = None
    voltages: tuple[float, float, float] = (NOMINAL_VOLTAGE,) * 3


@dataclass(slots=True)
class Sample:
    """One set of measurements on a connector."""

    energy_wh: int
    power_w: float
    currents: tuple[float, float, float]
    voltages: tuple[float, float, float]
    soc: float | None


def limit_w(schedule: dict[str, Any]) -> float:
    """Return the first period's limit of a charging schedule in W."""
    period = schedule["charging_schedule_period"][0]
    limit = float(period["limit"])
    if schedule["charging_rate_unit"] == "A":
        return limit * NOMINAL_VOLTAGE * int(period.get("number_phases") or PHASES)
    return limit
