"""What every OCPP feature module uses: finding the station a service call targets, the
target keys of a service schema, and the inbound handler type.

Feature modules import nothing of ``integrations.ocpp.station`` at run time (the station
imports the features); they get the Station as the handlers' first argument.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.core import Context, Hub, ServiceCall
from hub.exceptions import DeviceNotFoundError, ServiceValidationError
from hub.registry import device_registry, entity_registry
from integrations.ocpp.const import DOMAIN

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station

# 2.0.1 IdTokenEnumType: the kinds of id token a station or a service may name.
ID_TOKEN_TYPES: Final = (
    "Central",
    "eMAID",
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Local",
    "MacAddress",
    "NoAuthorization",
)

# An inbound message's handler, unbound: (station, payload, context) -> the CALLRESULT payload.
MessageHandler = Callable[["Station", dict[str, Any], Context], Awaitable[dict[str, Any]]]
ServiceHandler = Callable[[ServiceCall], Awaitable[Any]]


def valid_cp_id(value: Any) -> str:
    """A charge point id, as the listeners accept it."""
    from integrations.ocpp.system import identity_problem

    text = str(value) if isinstance(value, str) else None
    if text is None:
        raise vol.Invalid("a charge point id is a string")
    problem = identity_problem(text)
    if problem is not None:
        raise vol.Invalid(f"charge point id {text!r} {problem}")
    return text


# The keys every station-targeted service accepts: the charge point, or a device/entity of it.
TARGET: dict[Any, Any] = {
    vol.Optional("charge_point_id"): valid_cp_id,
    vol.Optional("device_id"): vol.Any(str, [str]),
    vol.Optional("entity_id"): vol.Any(str, [str]),
}


def answer_status(answer: Any) -> Any:
    """A call's answer as its status, when it has one."""
    if isinstance(answer, dict) and "status" in answer:
        return answer["status"]
    return answer


def station_for(hub: Hub, call: ServiceCall) -> Station:
    """The station a service call targets: by charge_point_id, device or entity."""
    from integrations.ocpp import DATA_SYSTEM

    system = hub.data[DATA_SYSTEM]
    cp_id = call.data.get("charge_point_id") or call.target.get("charge_point_id")
    if cp_id is None:
        device_ids = list(call.target.get("device_id", []) or [])
        if isinstance(call.target.get("device_id"), str):
            device_ids = [call.target["device_id"]]
        for entity_id in call.target.get("entity_id", []) or []:
            entry = entity_registry(hub).get(entity_id)
            if entry is not None and entry.device_id:
                device_ids.append(entry.device_id)
        devices = device_registry(hub)
        for device_id in device_ids:
            device = devices.station_of(device_id)
            if device is not None:
                for domain, ident in device.identifiers:
                    if domain == DOMAIN:
                        cp_id = ident
        if cp_id is None:
            raise ServiceValidationError("give charge_point_id or a target device")
    station = system.stations.get(cp_id)
    if station is None:
        raise DeviceNotFoundError(f"no OCPP charge point {cp_id}")
    return station


def register_station_services(
    ctx: SetupContext,
    services: dict[str, tuple[ServiceHandler, dict[Any, Any]]],
    role: Role = Role.ADMIN,
) -> None:
    """Register services that target one station: name -> (handler, extra schema keys).

    Raw protocol calls change a charger's configuration: an admin's, unless told otherwise.
    """
    for name, (handler, extra) in services.items():
        ctx.register_service(name, handler, vol.Schema({**TARGET, **extra}), role=role)
