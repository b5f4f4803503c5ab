"""Advanced device management (N), diagnostics and logs, firmware (L): monitors and their
events, GetLog, customer information, signed firmware and its publication."""

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
    """Register the diagnostics and log services."""
    hub = ctx.hub

    async def get_diagnostics(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        if station.version is not None and station.version.value == "ocpp2.0.1":
            return await station.call(
                "GetLog",
                {
                    "logType": "DiagnosticsLog",
                    "requestId": 1,
                    "log": {"remoteLocation": call.data["location"]},
                },
            )
        return await station.call("GetDiagnostics", {"location": call.data["location"]})

    async def get_log(call: ServiceCall) -> Any:
        return await station_for(hub, call).call(
            "GetLog",
            {
                "logType": call.data["log_type"],
                "requestId": call.data["request_id"],
                "log": {"remoteLocation": call.data["location"]},
            },
        )

    register_station_services(
        ctx,
        {
            "get_diagnostics": (get_diagnostics, {vol.Required("location"): vol.Url()}),
            "get_log": (
                get_log,
                {
                    vol.Required("location"): vol.Url(),
                    vol.Optional("log_type", default="DiagnosticsLog"): vol.In(
                        ["DiagnosticsLog", "SecurityLog"]
                    ),
                    vol.Optional("request_id", default=1): int,
                },
            ),
        },
    )
