"""OCPP 1.6J: the messages a 1.6 charge point sends, and the calls the hub sends it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from hub.charger import ResetType
from hub.core import Context
from hub.registry import async_sync_registries
from hub.security import Severity
from integrations.ocpp.const import SEC_FOREIGN_TRANSACTION
from integrations.ocpp.features import authorization, firmware, smart_charging
from integrations.ocpp.features.base import MessageHandler, answer_status
from integrations.ocpp.limits import LimitError
from integrations.ocpp.station.common import (
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
    station._record_boot(
        ctx,
        payload.get("chargePointVendor"),
        payload.get("chargePointModel"),
        payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
        payload.get("firmwareVersion"),
        "PowerUp",
    )
    # The charger's device and entities are on disk before it hears Accepted.
    await async_sync_registries(station.hub)
    return station._boot_response()


async def on_status(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    number = station._port_number("connectorId", payload["connectorId"])
    at = (
        station._charger_time("timestamp", payload["timestamp"])
        if payload.get("timestamp")
        else None
    )
    station._touch(context=ctx)
    info = {
        key: payload[source]
        for key, source in (
            ("vendor_error_code", "vendorErrorCode"),
            ("info", "info"),
            ("vendor_id", "vendorId"),
        )
        if payload.get(source)
    }
    station._set_status(number, payload["status"], payload.get("errorCode"), info, ctx, at)
    return {}


async def on_meter_values(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    number = station._port_number("connectorId", payload["connectorId"])
    samples = station._samples("meterValue", payload["meterValue"])
    station._touch(context=ctx)
    station._apply_meter_values(number, samples, ctx)
    return {}


async def on_authorize(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"idTagInfo": authorization.start_tag_info(station, payload["idTag"], None)}


async def on_start_transaction(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    connector = station._port_number("connectorId", payload["connectorId"])
    if connector == 0:
        raise LimitError("connectorId", "connectorId 0 is the station, not a connector")
    started_at = station._charger_time("timestamp", payload["timestamp"])
    station._touch(context=ctx)
    id_tag = payload["idTag"]
    # Asked before this transaction runs: ConcurrentTx when the tag runs one elsewhere.
    tag_info = authorization.start_tag_info(station, id_tag, connector)
    key = f"{station.cp_id}|{connector}|{id_tag}|{payload['timestamp']}|{payload['meterStart']}"
    # On disk before the charger hears Accepted.
    transaction = await station.system.transactions.start_transaction(
        charge_point_id=station.cp_id,
        connector_id=connector,
        id_tag=id_tag,
        meter_start_wh=float(payload["meterStart"]),
        started_at=started_at,
        ocpp_version="1.6",
        replay_key=key,
    )
    port = station.port(connector)
    if not transaction.replayed or port.transaction is None:
        await _end_superseded(station, port, transaction, ctx)
        station._session_started(port, transaction, id_tag, ctx)
    return {"transactionId": int(transaction.ocpp_id), "idTagInfo": tag_info}


async def _end_superseded(station: Station, port: Port, new: Transaction, ctx: Context) -> None:
    """End the port's open 1.6 transaction when another starts on it (one at a time).

    A charger that lost power mid-session often never sends that session's
    StopTransaction; the new start is the proof it is over. It ends, at the latest, when
    the new one began, at the meter reading the new one starts from (the connector's
    register), so it does not stay open forever in the store, the recorder and the API.
    """
    old = port.transaction
    if old is None or old.ocpp_id == new.ocpp_id or old.ocpp_version != "1.6":
        return
    meter = new.meter_start_wh
    if meter is None or old.meter_start_wh is None or meter < old.meter_start_wh:
        meter = old.meter_start_wh or 0.0
    stopped = await station.system.transactions.stop_transaction(
        charge_point_id=station.cp_id,
        transaction_id=int(old.ocpp_id),
        meter_stop_wh=meter,
        stopped_at=max(old.started_at, new.started_at),
        reason="Other",
        id_tag=None,
        replay_key=f"{station.cp_id}|superseded|{old.ocpp_id}|by|{new.ocpp_id}",
    )
    if stopped is not None:
        station._session_ended(port, stopped, ctx)


async def on_stop_transaction(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    stopped_at = station._charger_time("timestamp", payload["timestamp"])
    samples = station._samples("transactionData", payload.get("transactionData", ()))
    station._touch(context=ctx)
    ocpp_id = payload["transactionId"]
    key = f"{station.cp_id}|stop|{ocpp_id}|{payload['timestamp']}|{payload['meterStop']}"
    transaction = await station.system.transactions.stop_transaction(
        charge_point_id=station.cp_id,
        transaction_id=ocpp_id,
        meter_stop_wh=float(payload["meterStop"]),
        stopped_at=stopped_at,
        reason=payload.get("reason", "Local"),
        id_tag=payload.get("idTag"),
        replay_key=key,
    )
    if transaction is None:
        await _check_foreign_stop(station, ocpp_id)
    number = transaction.connector_id if transaction is not None else None
    if transaction is not None and number:
        # The port may not be known yet in this run: a stop queued while the hub was
        # down is often the charger's first message after a restart.
        port = station.port(number)
        if not transaction.replayed or port.transaction is not None:
            station._session_ended(port, transaction, ctx)
        station._apply_meter_values(number, samples, ctx)
    response: dict[str, Any] = {}
    if payload.get("idTag"):
        response["idTagInfo"] = authorization.stop_tag_info(station, payload["idTag"], transaction)
    return response


async def _check_foreign_stop(station: Station, ocpp_id: int) -> None:
    """A StopTransaction for a transaction this station never had: if another station's,
    a security event (a charger that stops, or impersonates, another's sessions); the
    other's transaction stays as it is."""
    other = await station.system.transactions.get(ocpp_id)
    if other is None or other.charge_point_id == station.cp_id:
        return
    station.system.security_event(
        SEC_FOREIGN_TRANSACTION,
        f"{station.cp_id} sent StopTransaction for transaction {ocpp_id} of"
        f" {other.charge_point_id}",
        station.connection,
        {"transaction_id": ocpp_id, "owner": other.charge_point_id},
        severity=Severity.WARNING,
    )


async def on_diagnostics_status(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    station._write_station("diagnostics_status", payload["status"], ctx)
    return {}


HANDLERS: dict[str, MessageHandler] = {
    "BootNotification": on_boot,
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status,
    "MeterValues": on_meter_values,
    "Authorize": on_authorize,
    "StartTransaction": on_start_transaction,
    "StopTransaction": on_stop_transaction,
    "DiagnosticsStatusNotification": on_diagnostics_status,
    "FirmwareStatusNotification": on_firmware_status,
    "SignedFirmwareStatusNotification": on_firmware_status,
    "LogStatusNotification": on_log_status,
    "SecurityEventNotification": on_security_event,
}

# Outbound calls (common.OcppCalls) ----------------------------------------------------


async def reset(station: Station, reset_type: ResetType) -> Any:
    payload = {"type": "Hard" if reset_type is ResetType.HARD else "Soft"}
    return answer_status(await station.call("Reset", payload))


async def set_availability(station: Station, available: bool, connector_id: int | None) -> Any:
    kind = "Operative" if available else "Inoperative"
    payload = {"connectorId": connector_id or 0, "type": kind}
    return answer_status(await station.call("ChangeAvailability", payload))


async def unlock_connector(station: Station, connector_id: int) -> Any:
    return answer_status(await station.call("UnlockConnector", {"connectorId": connector_id}))


async def set_current_limit(station: Station, limit: float, connector_id: int | None) -> Any:
    # An Absolute profile with its start and validity (features/smart_charging.py).
    return await smart_charging.set_current_limit(station, limit, connector_id)


async def start_charging(station: Station, connector_id: int | None, tag: str) -> Any:
    payload: dict[str, Any] = {"idTag": tag}
    if connector_id:
        payload["connectorId"] = connector_id
    return answer_status(await station.call("RemoteStartTransaction", payload))


async def stop_charging(station: Station, transaction: Transaction) -> Any:
    payload = {"transactionId": int(transaction.ocpp_id)}
    return answer_status(await station.call("RemoteStopTransaction", payload))


async def trigger_message(station: Station, message: str, connector_id: int | None) -> Any:
    payload: dict[str, Any] = {"requestedMessage": message}
    if connector_id:
        payload["connectorId"] = connector_id
    return answer_status(await station.call("TriggerMessage", payload))


async def update_firmware(station: Station, location: str, when: str) -> Any:
    # UpdateFirmware.conf is empty in 1.6: the answer is {"status": None, "requestId": None}.
    retrieve = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return await firmware.send_update(station, location, retrieve)
