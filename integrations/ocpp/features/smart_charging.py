"""Smart charging (K), reservation (H) and display messages (O): charging profiles and
composite schedules, reservations, and the messages a station shows its drivers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol

from hub.core import ServiceCall
from integrations.ocpp.features.base import (
    MessageHandler,
    register_station_services,
    station_for,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.system import CentralSystem

HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {}
CONFIG: dict[Any, Any] = {}


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the smart charging services."""
    hub = ctx.hub

    async def clear_charging_profile(call: ServiceCall) -> Any:
        payload: dict[str, Any] = {}
        if "profile_id" in call.data:
            payload["chargingProfileId"] = call.data["profile_id"]
        return await station_for(hub, call).call("ClearChargingProfile", payload)

    register_station_services(
        ctx, {"clear_charging_profile": (clear_charging_profile, {vol.Optional("profile_id"): int})}
    )
