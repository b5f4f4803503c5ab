"""The simulated charger's side of the hub's smart charging feature (features/smart_charging.py).

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint.

The charger keeps its profiles reduced to a power limit (model.Profile; SetChargingProfile
and ClearChargingProfile are answered by the links). Here: GetCompositeSchedule (the lowest
limit in force on the connector, for the asked duration) and, in 2.0.1, GetChargingProfiles
answered by ReportChargingProfiles.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from ocpp.v16 import call_result as v16_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.simulator.link import on_call
from integrations.ocpp.simulator.model import now_iso

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint
    from integrations.ocpp.simulator.model import Profile

# The charger's purposes (model.Profile.purpose) in each version's words.
PURPOSES_16: Final = {
    "Max": "ChargePointMaxProfile",
    "TxDefault": "TxDefaultProfile",
    "Tx": "TxProfile",
}
PURPOSES_201: Final = {
    "Max": "ChargingStationMaxProfile",
    "TxDefault": "TxDefaultProfile",
    "Tx": "TxProfile",
}
# Profiles per ReportChargingProfiles: small, so that a report comes in several parts.
REPORT_PART_SIZE: Final = 2


def _profiles(sim: SimulatedChargePoint) -> list[Profile]:
    found: list[Profile] = getattr(sim, "_profiles", [])
    return found


def _limit_w(sim: SimulatedChargePoint, connector: int) -> float | None:
    """The lowest power limit in force on a connector (station-wide ones included)."""
    limits = [p.limit_w for p in _profiles(sim) if p.connector in (0, connector)]
    return min(limits) if limits else None


def _composite(
    sim: SimulatedChargePoint, connector: int, unit: str | None
) -> dict[str, Any] | None:
    if connector and sim.targets(connector) is None:
        return None
    limit = _limit_w(sim, connector)
    if limit is None:
        return {"unit": "W", "periods": [{"start_period": 0, "limit": 22080.0}]}
    if unit == "A":
        return {"unit": "A", "periods": [{"start_period": 0, "limit": round(limit / 690.0, 1)}]}
    return {"unit": "W", "periods": [{"start_period": 0, "limit": round(limit, 1)}]}


class SmartCharging16:
    """OCPP 1.6."""

    sim: SimulatedChargePoint

    @on_call("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **kwargs: Any
    ) -> Any:
        found = _composite(self.sim, connector_id, charging_rate_unit)
        if found is None:
            return v16_result.GetCompositeSchedule(status="Rejected")
        return v16_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=now_iso(),
            charging_schedule={
                "duration": duration,
                "charging_rate_unit": found["unit"],
                "charging_schedule_period": found["periods"],
            },
        )


class SmartCharging201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint
    # The ocpp ChargePoint's, later in the link's MRO.
    call: Callable[..., Awaitable[Any]]

    @on_call("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, evse_id: int, duration: int, charging_rate_unit: str | None = None, **kwargs: Any
    ) -> Any:
        found = _composite(self.sim, evse_id, charging_rate_unit)
        if found is None:
            return v201_result.GetCompositeSchedule(status="Rejected")
        return v201_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": now_iso(),
                "charging_rate_unit": found["unit"],
                "charging_schedule_period": found["periods"],
            },
        )

    @on_call("GetChargingProfiles")
    def on_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        evse_id: int | None = None,
        **kwargs: Any,
    ) -> Any:
        ids = charging_profile.get("charging_profile_id")
        purpose = charging_profile.get("charging_profile_purpose")
        level = charging_profile.get("stack_level")
        sources = charging_profile.get("charging_limit_source")
        found = [
            p
            for p in _profiles(self.sim)
            if (evse_id is None or p.connector == evse_id)
            and (not ids or p.id in ids)
            and (purpose is None or PURPOSES_201[p.purpose] == purpose)
            and (level is None or p.stack_level == level)
            and (not sources or "CSO" in sources)
        ]
        if not found:
            return v201_result.GetChargingProfiles(status="NoProfiles")
        self.sim.later(functools.partial(self._report_profiles, request_id, found))
        return v201_result.GetChargingProfiles(status="Accepted")

    async def _report_profiles(self, request_id: int, found: list[Profile]) -> None:
        by_evse: dict[int, list[Profile]] = {}
        for profile in found:
            by_evse.setdefault(profile.connector, []).append(profile)
        parts = [
            (evse, profiles[start : start + REPORT_PART_SIZE])
            for evse, profiles in sorted(by_evse.items())
            for start in range(0, len(profiles), REPORT_PART_SIZE)
        ]
        for index, (evse, part) in enumerate(parts):
            await self.call(
                v201_call.ReportChargingProfiles(
                    request_id=request_id,
                    charging_limit_source="CSO",
                    evse_id=evse,
                    tbc=index < len(parts) - 1,
                    charging_profile=[
                        {
                            "id": p.id,
                            "stack_level": p.stack_level,
                            "charging_profile_purpose": PURPOSES_201[p.purpose],
                            "charging_profile_kind": "Absolute",
                            "charging_schedule": [
                                {
                                    "id": p.id,
                                    "start_schedule": now_iso(),
                                    "charging_rate_unit": "W",
                                    "charging_schedule_period": [
                                        {"start_period": 0, "limit": round(p.limit_w, 1)}
                                    ],
                                }
                            ],
                        }
                        for p in part
                    ],
                ),
                suppress=False,
            )
