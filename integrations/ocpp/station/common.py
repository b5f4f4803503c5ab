"""What OCPP 1.6 and 2.0.1 share: the messages both send alike, meter units, call answers.

Message handlers here and in v16/v201 are the Station's methods kept by version: each takes
the station first and is bound to it per message (Station.handler).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from hub.charger import ChargerEventKind, ResetType, fire_charger_event
from hub.core import Context
from hub.security import SOURCE_CHARGER, charger_event_severity
from integrations.ocpp.const import SEC_CHARGER_REPORTED
from integrations.ocpp.features import device_management, firmware

if TYPE_CHECKING:
    from integrations.ocpp.station.station import Station
    from integrations.ocpp.transactions import Transaction


ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_ACTIVE = "Power.Active.Import"

# A sampled value read and checked: (measurand, phase, value in Wh / W / A / V / %).
Sample = tuple[str, str, float]


class OcppCalls(Protocol):
    """The calls the hub sends a charger, in its OCPP version's words (modules v16, v201)."""

    async def reset(self, station: Station, reset_type: ResetType) -> Any: ...

    async def set_availability(
        self, station: Station, available: bool, connector_id: int | None
    ) -> Any: ...

    async def unlock_connector(self, station: Station, connector_id: int) -> Any: ...

    async def set_current_limit(
        self, station: Station, limit: float, connector_id: int | None
    ) -> Any: ...

    async def start_charging(self, station: Station, connector_id: int | None, tag: str) -> Any: ...

    async def stop_charging(self, station: Station, transaction: Transaction) -> Any: ...

    async def trigger_message(
        self, station: Station, message: str, connector_id: int | None
    ) -> Any: ...

    async def update_firmware(self, station: Station, location: str, when: str) -> Any: ...


def now_iso(now: float) -> str:
    """The hub's time (POSIX seconds of the hub clock) as OCPP writes it (UTC, seconds, Z)."""
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def on_heartbeat(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    station._touch(context=ctx)
    return {"currentTime": now_iso(station.now())}


async def on_firmware_status(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    # Tracked by requestId; a bad signature is a security event (features/firmware.py).
    extra = firmware.note_status(station, payload, ctx)
    station._write_station("firmware_status", payload["status"], ctx, extra or None)
    station.hub.bus.fire(
        "ocpp_firmware_status",
        {"charge_point_id": station.cp_id, "status": payload["status"], **extra},
        ctx,
    )
    fire_charger_event(
        station.hub,
        ChargerEventKind.FIRMWARE,
        station_id=station.device_id,
        context=ctx,
        data={"charge_point_id": station.cp_id, "status": payload["status"]},
    )
    return {}


async def on_log_status(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    # Tracked by requestId (features/device_management.py).
    device_management.note_log_status(station, payload, ctx)
    return {}


async def on_security_event(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    station._charger_time("timestamp", payload["timestamp"])
    kind = payload["type"]
    # Critical as the 1.6 security whitepaper and 2.0.1 Appendix 1 classify it.
    severity = charger_event_severity(kind)
    station.system.security_event(
        SEC_CHARGER_REPORTED,
        f"{station.cp_id} reported {kind}",
        station.connection,
        {"type": kind, "tech_info": payload.get("techInfo"), "timestamp": payload["timestamp"]},
        cp_id=station.cp_id,
        severity=severity,
        source=SOURCE_CHARGER,
    )
    fire_charger_event(
        station.hub,
        ChargerEventKind.SECURITY_EVENT,
        station_id=station.device_id,
        context=ctx,
        data={"charge_point_id": station.cp_id, "type": kind, "severity": str(severity)},
    )
    return {}
