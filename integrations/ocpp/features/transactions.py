"""Transactions (E): asking a station about a transaction and the messages it still queues
(GetTransactionStatus, 2.0.1). The station's transaction messages themselves are handled by
station/v16.py and v201.py and kept by the transaction store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol

from hub.auth import Role
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
    """Register ocpp.get_transaction_status."""
    hub = ctx.hub

    async def get_transaction_status(call: ServiceCall) -> Any:
        """E14: whether a transaction is ongoing and whether the station still queues
        transaction messages (of that transaction, or of any without an id)."""
        payload: dict[str, Any] = {}
        if "transaction_id" in call.data:
            payload["transactionId"] = call.data["transaction_id"]
        station = station_for(hub, call)
        answer = await station.call("GetTransactionStatus", payload)
        return {
            "charge_point_id": station.cp_id,
            "transaction_id": call.data.get("transaction_id"),
            "ongoing": answer.get("ongoingIndicator"),
            "messages_in_queue": answer["messagesInQueue"],
        }

    register_station_services(
        ctx,
        {
            "get_transaction_status": (
                get_transaction_status,
                {vol.Optional("transaction_id"): vol.All(str, vol.Length(min=1, max=36))},
            )
        },
        role=Role.OPERATOR,
    )
