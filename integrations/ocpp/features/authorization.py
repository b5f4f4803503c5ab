"""Authorization (C) and the local authorization list (D): what an id token's status is,
with expiry and group, the authorization cache, and the list sent to stations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.core import ServiceCall
from integrations.ocpp.features.base import (
    MessageHandler,
    register_station_services,
    station_for,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {}
CONFIG: dict[Any, Any] = {}


def _status(station: Station, id_tag: str | None) -> str:
    system = station.system
    if id_tag is None:
        return "Invalid"
    if id_tag in system.id_tags or system.authorize_unknown:
        return "Accepted"
    return "Invalid"


def id_tag_info(station: Station, id_tag: str | None) -> dict[str, Any]:
    """OCPP 1.6 IdTagInfo for an idTag (Authorize, StartTransaction, StopTransaction)."""
    return {"status": _status(station, id_tag)}


def id_token_info(station: Station, token: dict[str, Any] | None) -> dict[str, Any]:
    """OCPP 2.0.1 IdTokenInfo for an IdToken (Authorize, TransactionEvent)."""
    return {"status": _status(station, None if token is None else token.get("idToken"))}


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the authorization services."""
    hub = ctx.hub

    async def clear_cache(call: ServiceCall) -> Any:
        return await station_for(hub, call).call("ClearCache", {})

    register_station_services(ctx, {"clear_cache": (clear_cache, {})})
