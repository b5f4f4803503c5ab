"""Provisioning (B), remote control (F), availability (G) and data transfer (P): the
station's configuration and variables, reports, resets, triggers and vendor data."""

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
    """Register the provisioning services."""
    hub = ctx.hub

    async def raw_call(call: ServiceCall, action: str, payload: dict[str, Any]) -> Any:
        return await station_for(hub, call).call(action, payload)

    async def get_configuration(call: ServiceCall) -> Any:
        keys = call.data.get("key")
        return await raw_call(call, "GetConfiguration", {"key": keys} if keys else {})

    async def change_configuration(call: ServiceCall) -> Any:
        return await raw_call(
            call, "ChangeConfiguration", {"key": call.data["key"], "value": call.data["value"]}
        )

    async def get_variables(call: ServiceCall) -> Any:
        return await raw_call(call, "GetVariables", {"getVariableData": call.data["variables"]})

    async def set_variables(call: ServiceCall) -> Any:
        return await raw_call(call, "SetVariables", {"setVariableData": call.data["variables"]})

    async def data_transfer(call: ServiceCall) -> Any:
        payload = {"vendorId": call.data["vendor_id"]}
        if "message_id" in call.data:
            payload["messageId"] = call.data["message_id"]
        if "data" in call.data:
            payload["data"] = call.data["data"]
        return await raw_call(call, "DataTransfer", payload)

    async def trigger_message(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        return await station.trigger_message(
            call.data["requested_message"], call.data.get("connector_id")
        )

    variable = vol.Schema(
        {vol.Required("component"): dict, vol.Required("variable"): dict},
        extra=vol.ALLOW_EXTRA,
    )
    register_station_services(
        ctx,
        {
            "get_configuration": (get_configuration, {vol.Optional("key"): [str]}),
            "change_configuration": (
                change_configuration,
                {vol.Required("key"): str, vol.Required("value"): vol.Coerce(str)},
            ),
            "get_variables": (get_variables, {vol.Required("variables"): [variable]}),
            "set_variables": (set_variables, {vol.Required("variables"): [variable]}),
            "data_transfer": (
                data_transfer,
                {
                    vol.Required("vendor_id"): str,
                    vol.Optional("message_id"): str,
                    vol.Optional("data"): str,
                },
            ),
            "trigger_message": (
                trigger_message,
                {
                    vol.Required("requested_message"): str,
                    vol.Optional("connector_id"): vol.All(int, vol.Range(min=0)),
                },
            ),
        },
    )
