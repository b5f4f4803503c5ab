"""OCPP 2.0.1: the messages a 2.0.1 charging station sends, and the calls the hub sends it."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hub.charger import ConnectorStatus, ResetType, status_from_ocpp201
from hub.core import Context
from hub.registry import async_sync_registries
from integrations.ocpp.features import authorization, firmware, smart_charging
from integrations.ocpp.features.base import MessageHandler, answer_status
from integrations.ocpp.station.common import (
    ENERGY_REGISTER,
    Sample,
    on_firmware_status,
    on_heartbeat,
    on_log_status,
    on_security_event,
)

if TYPE_CHECKING:
    from integrations.ocpp.station.station import Port, Station
    from integrations.ocpp.transactions import Transaction

# Inbound messages ---------------------------------------------------------------------


async def on_boot(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    described = payload.get("chargingStation", {})
    station._record_boot(
        ctx,
        described.get("vendorName"),
        described.get("model"),
        described.get("serialNumber"),
        described.get("firmwareVersion"),
        payload.get("reason", "Unknown"),
    )
    await async_sync_registries(station.hub)
    return station._boot_response()


async def on_status(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    number = station._port_number("evseId", payload["evseId"])
    at = station._charger_time("timestamp", payload["timestamp"])
    station._touch(context=ctx)
    port = station.ports.get(number)
    charging_state = None
    if port is not None and port.transaction is not None:
        charging_state = "Charging"
    status = status_from_ocpp201(payload["connectorStatus"], charging_state)
    error = "NoError" if status is not ConnectorStatus.FAULTED else "Faulted"
    station._set_status(
        number, str(status), error, {"connector_id": payload["connectorId"]}, ctx, at
    )
    return {}


async def on_meter_values(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    number = station._port_number("evseId", payload["evseId"])
    samples = station._samples("meterValue", payload["meterValue"])
    station._touch(context=ctx)
    station._apply_meter_values(number, samples, ctx)
    return {}


async def on_authorize(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    token = payload["idToken"]
    return {"idTokenInfo": authorization.id_token_info(station, token)}


async def on_transaction_event(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    timestamp = station._charger_time("timestamp", payload["timestamp"])
    evse = payload.get("evse", {}).get("id")
    if evse is not None:
        station._port_number("evse.id", evse)
    samples = station._samples("meterValue", payload.get("meterValue", ()))
    station._touch(context=ctx)
    info = payload["transactionInfo"]
    transaction, replayed = await station.system.transactions.upsert_event(
        charge_point_id=station.cp_id,
        transaction_id=info["transactionId"],
        seq_no=payload["seqNo"],
        event_type=payload["eventType"],
        timestamp=timestamp,
        offline=bool(payload.get("offline", False)),
        meter_wh=_energy_of(samples),
        data=payload,
        evse_id=evse,
        connector_id=payload.get("evse", {}).get("connectorId"),
        id_tag=payload.get("idToken", {}).get("idToken"),
        stop_reason=info.get("stoppedReason"),
    )
    number = evse if evse is not None else transaction.evse_id
    if number and not replayed:
        port = station.port(number)
        id_tag = payload.get("idToken", {}).get("idToken")
        current = port.transaction
        stale = False
        if payload["eventType"] == "Ended":
            station._session_ended(port, transaction, ctx)
        elif current is not None and current.ocpp_id == transaction.ocpp_id:
            # The stored record moves on (a start reading that came late, the id tag).
            port.transaction = transaction
        elif transaction.stopped_at is not None:
            # A late (offline-queued) event of a transaction whose Ended came first.
            stale = True
        elif current is None or transaction.started_at >= current.started_at:
            if current is not None:
                _supersede(station, port, current, transaction, ctx)
            station._session_started(port, transaction, id_tag or transaction.id_tag, ctx)
        else:
            # A late event of an older transaction: the port keeps the newer one.
            stale = True
        # A stale event is stored (its readings count in its transaction's record) but
        # says nothing of the port now.
        state = info.get("chargingState")
        if not stale and state is not None and payload["eventType"] != "Ended":
            status = status_from_ocpp201("Occupied", state)
            if port.status != str(status):
                station._set_status(number, str(status), "NoError", {}, ctx)
        if not stale:
            station._apply_meter_values(number, samples, ctx)
    response: dict[str, Any] = {}
    token = payload.get("idToken")
    if token is not None:
        response["idTokenInfo"] = authorization.transaction_token_info(
            station, payload, transaction
        )
    return response


def _supersede(
    station: Station, port: Port, old: Transaction, new: Transaction, ctx: Context
) -> None:
    """A new 2.0.1 transaction on an EVSE that still had one open: the old one is over.

    An EVSE runs one transaction at a time. The old one ended, at the latest, when the
    new one began; history and the port say so now. The transaction store keeps it open
    until the charger's own Ended arrives (2.0.1 chargers queue it over a power loss),
    which then records the real end and energy.
    """
    ended = dataclasses.replace(
        old, stopped_at=max(old.started_at, new.started_at), stop_reason="Other"
    )
    station._session_ended(port, ended, ctx)


def _energy_of(samples: list[Sample]) -> float | None:
    """The latest energy register reading (all phases) among checked samples, in Wh."""
    found = None
    for measurand, phase, value in samples:
        if measurand == ENERGY_REGISTER and not phase:
            found = value
    return found


HANDLERS: dict[str, MessageHandler] = {
    "BootNotification": on_boot,
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status,
    "MeterValues": on_meter_values,
    "Authorize": on_authorize,
    "TransactionEvent": on_transaction_event,
    "SecurityEventNotification": on_security_event,
    "FirmwareStatusNotification": on_firmware_status,
    "LogStatusNotification": on_log_status,
}

# Outbound calls (common.OcppCalls) ----------------------------------------------------


async def reset(station: Station, reset_type: ResetType) -> Any:
    payload = {"type": "Immediate" if reset_type is ResetType.HARD else "OnIdle"}
    return answer_status(await station.call("Reset", payload))


async def set_availability(station: Station, available: bool, connector_id: int | None) -> Any:
    payload: dict[str, Any] = {"operationalStatus": "Operative" if available else "Inoperative"}
    if connector_id:
        payload["evse"] = {"id": connector_id}
    return answer_status(await station.call("ChangeAvailability", payload))


async def unlock_connector(station: Station, connector_id: int) -> Any:
    payload = {"evseId": connector_id, "connectorId": 1}
    return answer_status(await station.call("UnlockConnector", payload))


async def set_current_limit(station: Station, limit: float, connector_id: int | None) -> Any:
    # An Absolute profile with its start and validity (features/smart_charging.py).
    return await smart_charging.set_current_limit(station, limit, connector_id)


async def start_charging(station: Station, connector_id: int | None, tag: str) -> Any:
    station._profile_ids += 1
    payload: dict[str, Any] = {
        "idToken": {"idToken": tag, "type": "Central"},
        "remoteStartId": station._profile_ids,
    }
    if connector_id:
        payload["evseId"] = connector_id
    return answer_status(await station.call("RequestStartTransaction", payload))


async def stop_charging(station: Station, transaction: Transaction) -> Any:
    payload = {"transactionId": transaction.ocpp_id}
    return answer_status(await station.call("RequestStopTransaction", payload))


async def trigger_message(station: Station, message: str, connector_id: int | None) -> Any:
    payload: dict[str, Any] = {"requestedMessage": message}
    if connector_id:
        payload["evse"] = {"id": connector_id}
    return answer_status(await station.call("TriggerMessage", payload))


async def update_firmware(station: Station, location: str, when: str) -> Any:
    # Tracked by requestId with the signed updates (features/firmware.py).
    retrieve = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return answer_status(await firmware.send_update(station, location, retrieve))
