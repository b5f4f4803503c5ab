"""The ranges a real charger can send, field by field.

A frame that passes its JSON schema can still carry values no charger sends: connector ids of
2^63, a unit multiplier of ten million (whose power of ten stalls the loop), an energy
register of ``"inf"``, a timestamp in year 1. They are refused here, with the CALLERROR the
OCPP-J specification names for a value outside its range (PropertyConstraintViolation), and
recorded as a security event by the connection; nothing of such a message is applied.

Two layers:
- static bounds, merged into the JSON schemas when they are compiled (so they cost nothing
  extra per message): every integer is a 32-bit integer, as OCPP defines its ``integer``
  type (2.0.1 Part 2, primitive datatypes; 1.6 section 4), and a few fields are narrower;
- semantic checks that need context (the station's port count, the hub clock, the unit a
  sampled value is in), made by the station through `Limits`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from hub.exceptions import HubError

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1

# Field name -> (minimum, maximum), for integer fields wherever they appear in a schema.
# Ids and counters are never negative; a unit multiplier is a power of ten that real meters
# keep within kilo/mega/giga and milli/micro (OCPP 2.0.1 UnitOfMeasureType).
INTEGER_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "connectorId": (0, INT32_MAX),
    "evseId": (0, INT32_MAX),
    "seqNo": (0, INT32_MAX),
    "meterStart": (0, INT32_MAX),
    "meterStop": (0, INT32_MAX),
    "multiplier": (-9, 9),
    "numberOfPhasesUsed": (0, 3),
    "numberPhases": (0, 3),
}
# The `id` of an EVSEType (`"evse": {"id": ...}`) is an EVSE id like evseId; keyed by the
# enclosing property or definition name.
NESTED_BOUNDS: Final[dict[tuple[str, str], tuple[int, int]]] = {
    ("evse", "id"): (0, INT32_MAX),
    ("EVSEType", "id"): (0, INT32_MAX),
}

# Plausible magnitudes, after the unit and multiplier are applied, by measurand family.
ENERGY_MAX_WH: Final = 1e12  # 1 TWh: beyond any charger's lifetime register
POWER_MAX_W: Final = 1e7  # 10 MW
CURRENT_MAX_A: Final = 1e4
VOLTAGE_MAX_V: Final = 1e4
OTHER_MAX: Final = 1e12

DEFAULT_MAX_PORTS: Final = 32
DEFAULT_PAST_DAYS: Final = 366.0
DEFAULT_FUTURE_MINUTES: Final = 1440.0

_DAY: Final = 86400.0


class LimitError(HubError, ValueError):
    """A value outside the range a charger can send; carries the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def tighten(schema: Any) -> None:
    """Add the static bounds to a schema in place (before it is compiled)."""
    _tighten(schema, None)


def _tighten(node: Any, name: str | None, parent: str | None = None) -> None:
    if isinstance(node, list):
        for item in node:
            _tighten(item, name, parent)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer" and name is not None:
        low, high = NESTED_BOUNDS.get((parent or "", name)) or INTEGER_BOUNDS.get(
            name, (INT32_MIN, INT32_MAX)
        )
        # Keep a schema's own narrower bound (a state of charge of 0..100).
        node["minimum"] = max(low, node.get("minimum", low))
        node["maximum"] = min(high, node.get("maximum", high))
    for key, sub in node.get("properties", {}).items():
        _tighten(sub, key, name)
    if "items" in node:
        _tighten(node["items"], name, parent)
    for definition, sub in node.get("definitions", {}).items():
        _tighten(sub, definition)


def _measurand_range(measurand: str) -> tuple[float, float]:
    if measurand.startswith("Energy."):
        # Registers and interval figures count up from zero; only a net figure has a sign.
        return (-ENERGY_MAX_WH if ".Net" in measurand else 0.0, ENERGY_MAX_WH)
    if measurand.startswith("Power."):
        return (-POWER_MAX_W, POWER_MAX_W)
    if measurand.startswith("Current."):
        return (-CURRENT_MAX_A, CURRENT_MAX_A)
    if measurand == "Voltage":
        return (-VOLTAGE_MAX_V, VOLTAGE_MAX_V)
    if measurand == "SoC":
        return (0.0, 100.0)
    return (-OTHER_MAX, OTHER_MAX)


@dataclass(frozen=True, slots=True)
class Limits:
    """The context-dependent limits of one central system (from its config)."""

    max_ports: int = DEFAULT_MAX_PORTS
    past_s: float = DEFAULT_PAST_DAYS * _DAY
    future_s: float = DEFAULT_FUTURE_MINUTES * 60.0

    def port_number(self, field: str, number: int) -> int:
        """Check a connector/EVSE id that names a port (1..max_ports; 0 is the station)."""
        if not 0 <= number <= self.max_ports:
            raise LimitError(
                field,
                f"{field} {number} is outside 0..{self.max_ports}: this central system takes "
                f"at most {self.max_ports} connectors/EVSEs per station",
            )
        return number

    def timestamp(self, field: str, value: Any, now: float) -> float:
        """Parse a charger's timestamp and check it lies within the window around now."""
        if not value:
            return now
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise LimitError(field, f"{field} is not a date-time") from None
        # OCPP times are UTC; a charger that leaves the offset off means UTC, not our zone.
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            ts = moment.timestamp()
        except (OverflowError, ValueError):
            raise LimitError(field, f"{field} is not a representable time") from None
        if ts < now - self.past_s or ts > now + self.future_s:
            raise LimitError(
                field,
                f"{field} {value} is outside the accepted window of the central system's clock"
                f" ({self.past_s / _DAY:g} days before to {self.future_s / 60:g} minutes after"
                f" {datetime.fromtimestamp(now, UTC).isoformat(timespec='seconds')})",
            )
        return ts

    @staticmethod
    def sample(field: str, measurand: str, value: float) -> float:
        """Check a sampled value, in its base unit (Wh, W, A, V, %), against its measurand."""
        low, high = _measurand_range(measurand)
        if not math.isfinite(value) or not low <= value <= high:
            raise LimitError(
                field, f"{field} {value!r} is outside the range of {measurand} ({low:g}..{high:g})"
            )
        return value
