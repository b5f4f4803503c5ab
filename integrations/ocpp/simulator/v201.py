"""The OCPP 2.0.1 link of a simulated charger: its calls out, its answers to the central system."""

from __future__ import annotations

import functools
import itertools
import uuid
from typing import TYPE_CHECKING, Any, Final

from ocpp.v201 import ChargePoint as _V201ChargePoint  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from .features import MIXINS_201
from .link import RESPONSE_TIMEOUT, WIRE_LOGGER, on_call
from .model import (
    DEFAULT_HEARTBEAT_INTERVAL,
    MEASURANDS,
    STATUS_AVAILABLE,
    STATUS_CHARGING,
    STATUS_FAULTED,
    STATUS_UNAVAILABLE,
    Connector,
    FollowUp,
    Profile,
    Sample,
    Setting,
    limit_w,
    now_iso,
)

if TYPE_CHECKING:
    from .charger import SimulatedChargePoint
    from .websocket import WebSocketAdapter

HEARTBEAT_KEY: Final = "OCPPCommCtrlr/HeartbeatInterval"

# A 1.6 StopTransaction reason → (2.0.1 stoppedReason, 2.0.1 triggerReason).
_STOP_REASONS: Final[dict[str, tuple[str, str]]] = {
    "Remote": ("Remote", "RemoteStop"),
    "Local": ("Local", "StopAuthorized"),
    "HardReset": ("ImmediateReset", "ResetCommand"),
    "SoftReset": ("ImmediateReset", "ResetCommand"),
    "Reboot": ("Reboot", "AbnormalCondition"),
    "UnlockCommand": ("Other", "UnlockCommand"),
    "DeAuthorized": ("DeAuthorized", "Deauthorized"),
    "EVDisconnected": ("EVDisconnected", "EVCommunicationLost"),
    "PowerLoss": ("PowerLoss", "AbnormalCondition"),
    "Other": ("Other", "AbnormalCondition"),
}
# 1.6 connector statuses (evhub's vocabulary) → 2.0.1 connector statuses.
_STATUSES: Final[dict[str, str]] = {
    STATUS_AVAILABLE: "Available",
    STATUS_UNAVAILABLE: "Unavailable",
    STATUS_FAULTED: "Faulted",
    "Reserved": "Reserved",
}


def default_settings(
    *,
    connectors: int,
    meter_interval: float,
    security_profile: str,
    identity: str,
    vendor: str,
    model: str,
) -> dict[str, Setting]:
    """Return a fresh 2.0.1 device model: component/variable → setting."""
    return {
        HEARTBEAT_KEY: Setting(str(DEFAULT_HEARTBEAT_INTERVAL), kind=int),
        "OCPPCommCtrlr/ResetRetries": Setting("3", kind=int),
        "SampledDataCtrlr/TxUpdatedInterval": Setting(str(int(meter_interval)), kind=int),
        "SampledDataCtrlr/TxUpdatedMeasurands": Setting(MEASURANDS),
        "AuthCtrlr/AuthorizeRemoteStart": Setting("false", kind=bool),
        "SecurityCtrlr/SecurityProfile": Setting(security_profile, readonly=True),
        "SecurityCtrlr/Identity": Setting(identity, readonly=True),
        "ChargingStation/Model": Setting(model, readonly=True),
        "ChargingStation/VendorName": Setting(vendor, readonly=True),
    }


def _sampled_values_201(sample: Sample, context: str, full: bool = True) -> list[dict[str, Any]]:
    def value(
        number: float, measurand: str, unit: str, phase: str | None = None, location: str = "Outlet"
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "value": number,
            "context": context,
            "measurand": measurand,
            "location": location,
            "unitOfMeasure": {"unit": unit},
        }
        if phase is not None:
            item["phase"] = phase
        return item

    values = [value(sample.energy_wh, "Energy.Active.Import.Register", "Wh")]
    if not full:
        return values
    values.append(value(sample.power_w, "Power.Active.Import", "W"))
    for phase, current in zip(("L1", "L2", "L3"), sample.currents, strict=True):
        values.append(value(current, "Current.Import", "A", phase))
    for phase, voltage in zip(("L1-N", "L2-N", "L3-N"), sample.voltages, strict=True):
        values.append(value(voltage, "Voltage", "V", phase))
    if sample.soc is not None:
        values.append(value(sample.soc, "SoC", "Percent", location="EV"))
    return values


class V201Link(*MIXINS_201, _V201ChargePoint):  # type: ignore[misc]
    """The OCPP 2.0.1 wire of a SimulatedChargePoint: one per websocket connection."""

    def __init__(self, sim: SimulatedChargePoint, connection: WebSocketAdapter) -> None:
        super().__init__(sim.id, connection, response_timeout=RESPONSE_TIMEOUT, logger=WIRE_LOGGER)
        self.sim = sim
        self._reported: dict[int, str] = {}
        self._event_seq = itertools.count()

    async def route_message(self, raw_msg: str) -> None:
        """Record the central system's calls and run follow-ups once answered."""
        self.sim.record_call(raw_msg)
        await super().route_message(raw_msg)
        self.sim.run_followups()

    # -- to the central system ----------------------------------------------------------

    async def send_boot(self, reason: str) -> tuple[str, int]:
        sim = self.sim
        result = await self.call(
            v201_call.BootNotification(
                charging_station={
                    "model": sim.model,
                    "vendorName": sim.vendor,
                    "serialNumber": sim.serial,
                    "firmwareVersion": sim.firmware_version,
                },
                reason=reason,
            ),
            suppress=False,
        )
        return str(result.status), int(result.interval)

    async def send_heartbeat(self) -> None:
        await self.call(v201_call.Heartbeat(), suppress=False)

    async def send_station_status(self, operative: bool) -> None:
        """2.0.1 reports each EVSE's availability; the station has no status of its own."""

    async def send_status(self, connector: Connector, force: bool = False) -> None:
        status = _STATUSES.get(connector.status, "Occupied")
        if not force and self._reported.get(connector.id) == status:
            return
        self._reported[connector.id] = status
        await self.call(
            v201_call.StatusNotification(
                timestamp=now_iso(), connector_status=status, evse_id=connector.id, connector_id=1
            ),
            suppress=False,
        )

    async def _transaction_event(
        self,
        connector: Connector,
        event_type: str,
        trigger: str,
        charging_state: str,
        meter_value: list[dict[str, Any]],
        **extra: Any,
    ) -> Any:
        session = connector.session
        assert session is not None
        info: dict[str, Any] = {
            "transactionId": session.transaction_id,
            "chargingState": charging_state,
        }
        if "stopped_reason" in extra:
            info["stoppedReason"] = extra.pop("stopped_reason")
        if event_type == "Started" and session.remote_start_id is not None:
            info["remoteStartId"] = session.remote_start_id
        seq_no = session.seq_no
        session.seq_no += 1
        return await self.call(
            v201_call.TransactionEvent(
                event_type=event_type,
                timestamp=now_iso(),
                trigger_reason=trigger,
                seq_no=seq_no,
                transaction_info=info,
                meter_value=meter_value,
                evse={"id": connector.id, "connectorId": 1},
                **extra,
            ),
            suppress=False,
        )

    async def start_transaction(self, connector: Connector, trigger: str) -> bool:
        session = connector.session
        assert session is not None
        session.transaction_id = str(uuid.uuid4())
        sample = self.sim.sample(connector)
        result = await self._transaction_event(
            connector,
            "Started",
            trigger,
            "Charging",
            [
                {
                    "timestamp": now_iso(),
                    "sampledValue": _sampled_values_201(sample, "Transaction.Begin", full=False),
                }
            ],
            id_token={"idToken": session.id_tag, "type": "ISO14443"},
        )
        info = result.id_token_info
        return info is None or info.get("status") == "Accepted"

    async def send_meter_values(self, connector: Connector, context: str) -> None:
        sample = self.sim.sample(connector)
        meter_value = [
            {"timestamp": now_iso(), "sampledValue": _sampled_values_201(sample, context)}
        ]
        if connector.session is not None and connector.session.transaction_id is not None:
            trigger = "Trigger" if context == "Trigger" else "MeterValuePeriodic"
            state = "Charging" if connector.status == STATUS_CHARGING else "EVConnected"
            await self._transaction_event(connector, "Updated", trigger, state, meter_value)
            return
        await self.call(
            v201_call.MeterValues(evse_id=connector.id, meter_value=meter_value), suppress=False
        )

    async def stop_transaction(self, connector: Connector, reason: str) -> None:
        stopped_reason, trigger = _STOP_REASONS.get(reason, ("Other", "AbnormalCondition"))
        sample = self.sim.sample(connector, stopped=True)
        meter_value = [
            {"timestamp": now_iso(), "sampledValue": _sampled_values_201(sample, "Transaction.End")}
        ]
        await self._transaction_event(
            connector,
            "Ended",
            trigger,
            "EVConnected",
            meter_value,
            stopped_reason=stopped_reason,
        )

    async def send_firmware_status(self, status: str, request_id: int | None) -> None:
        await self.call(
            v201_call.FirmwareStatusNotification(status=status, request_id=request_id),
            suppress=False,
        )

    async def send_upload_status(
        self, status: str, request_id: int | None, diagnostics: bool
    ) -> None:
        await self.call(
            v201_call.LogStatusNotification(status=status, request_id=request_id), suppress=False
        )

    async def send_security_event(self, event_type: str, tech_info: str) -> None:
        await self.call(
            v201_call.SecurityEventNotification(
                type=event_type, timestamp=now_iso(), tech_info=tech_info
            ),
            suppress=False,
        )

    async def send_problem(self, connector: Connector, code: str, *, active: bool) -> None:
        """Report a connector fault (or its end) as a NotifyEvent with the error code."""
        await self.call(
            v201_call.NotifyEvent(
                generated_at=now_iso(),
                seq_no=0,
                event_data=[
                    {
                        "eventId": self.sim.next_event_id(),
                        "timestamp": now_iso(),
                        "trigger": "Delta",
                        "actualValue": "true" if active else "false",
                        "techCode": code,
                        "cleared": not active,
                        "eventNotificationType": "HardWiredNotification",
                        "component": {
                            "name": "Connector",
                            "evse": {"id": connector.id, "connectorId": 1},
                        },
                        "variable": {"name": "Problem"},
                    }
                ],
            ),
            suppress=False,
        )

    # -- from the central system ----------------------------------------------------------

    @on_call("Reset")
    def on_reset(self, type: str, evse_id: int | None = None, **kwargs: Any) -> Any:
        if evse_id:
            return v201_result.Reset(status="Rejected")
        return v201_result.Reset(status=self.sim.reset("HardReset", on_idle=type == "OnIdle"))

    @on_call("ChangeAvailability")
    def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        target = int(evse["id"]) if evse else 0
        status = self.sim.change_availability(target, operational_status == "Operative")
        return v201_result.ChangeAvailability(status=status)

    @on_call("RequestStartTransaction")
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        profile = None
        if charging_profile is not None:
            profile = self._profile(evse_id or 0, charging_profile)
        accepted = self.sim.remote_start(
            evse_id, str(id_token["id_token"]), remote_start_id, profile
        )
        return v201_result.RequestStartTransaction(status="Accepted" if accepted else "Rejected")

    @on_call("RequestStopTransaction")
    def on_request_stop_transaction(self, transaction_id: str, **kwargs: Any) -> Any:
        accepted = self.sim.remote_stop(transaction_id)
        return v201_result.RequestStopTransaction(status="Accepted" if accepted else "Rejected")

    @on_call("UnlockConnector")
    def on_unlock_connector(self, evse_id: int, connector_id: int, **kwargs: Any) -> Any:
        if connector_id != 1:
            return v201_result.UnlockConnector(status="UnknownConnector")
        return v201_result.UnlockConnector(status=self.sim.unlock(evse_id, stop_session=False))

    @on_call("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        sim = self.sim
        connectors = sim.targets(int(evse["id"]) if evse else None)
        if connectors is None:
            return v201_result.TriggerMessage(status="Rejected")
        followup: FollowUp
        if requested_message == "BootNotification":
            if sim.registered:
                # F06.FR.17: once accepted, a BootNotification on request is rejected.
                return v201_result.TriggerMessage(status="Rejected")
            followup = self._triggered_boot
        elif requested_message == "Heartbeat":
            followup = self.send_heartbeat
        elif requested_message == "StatusNotification":
            followup = functools.partial(self._triggered_statuses, connectors)
        elif requested_message in ("MeterValues", "TransactionEvent"):
            if requested_message == "TransactionEvent":
                connectors = [c for c in connectors if c.session and c.session.transaction_id]
                if not connectors:
                    return v201_result.TriggerMessage(status="Rejected")
            followup = functools.partial(self._triggered_meter_values, connectors)
        elif requested_message == "FirmwareStatusNotification":
            followup = self._triggered_firmware_status
        elif requested_message == "LogStatusNotification":
            followup = self._triggered_upload_status
        elif requested_message == "SignChargingStationCertificate":
            followup = self.send_sign_certificate  # features/security.py
        else:
            return v201_result.TriggerMessage(status="NotImplemented")
        sim.later(followup)
        return v201_result.TriggerMessage(status="Accepted")

    async def _triggered_boot(self) -> None:
        status, _interval = await self.send_boot("Triggered")
        self.sim.boot_count += 1
        self.sim.boot_status = status

    async def _triggered_statuses(self, connectors: list[Connector]) -> None:
        for connector in connectors:
            await self.send_status(connector, force=True)

    async def _triggered_meter_values(self, connectors: list[Connector]) -> None:
        for connector in connectors:
            await self.send_meter_values(connector, "Trigger")

    async def _triggered_firmware_status(self) -> None:
        await self.send_firmware_status(self.sim.firmware_report(), None)

    async def _triggered_upload_status(self) -> None:
        status = "Uploading" if self.sim.uploading else "Idle"
        await self.send_upload_status(status, None, diagnostics=False)

    def _profile(self, evse_id: int, profile: dict[str, Any]) -> Profile:
        purposes = {
            "ChargingStationMaxProfile": "Max",
            "ChargingStationExternalConstraints": "Max",
            "TxDefaultProfile": "TxDefault",
        }
        return Profile(
            id=int(profile["id"]),
            connector=evse_id,
            purpose=purposes.get(profile["charging_profile_purpose"], "Tx"),
            stack_level=int(profile["stack_level"]),
            limit_w=limit_w(profile["charging_schedule"][0]),
        )

    @on_call("SetChargingProfile")
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **kwargs: Any
    ) -> Any:
        profile = self._profile(evse_id, charging_profile)
        if profile.purpose == "Max" and evse_id != 0:
            return v201_result.SetChargingProfile(status="Rejected")
        return v201_result.SetChargingProfile(status=self.sim.set_profile(profile))

    @on_call("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        criteria = charging_profile_criteria or {}
        purposes = {
            "ChargingStationMaxProfile": "Max",
            "ChargingStationExternalConstraints": "Max",
            "TxDefaultProfile": "TxDefault",
            "TxProfile": "Tx",
        }
        purpose = criteria.get("charging_profile_purpose")
        status = self.sim.clear_profiles(
            charging_profile_id,
            criteria.get("evse_id"),
            None if purpose is None else purposes[purpose],
            criteria.get("stack_level"),
        )
        return v201_result.ClearChargingProfile(status=status)

    def _variable(self, component: str, variable: str) -> tuple[str, Setting | None]:
        """Find a variable (names are case-insensitive); return (key or status, setting)."""
        component_known = False
        for key, setting in self.sim.settings.items():
            comp, var = key.split("/", 1)
            if comp.lower() == component.lower():
                component_known = True
                if var.lower() == variable.lower():
                    return key, setting
        return ("UnknownVariable" if component_known else "UnknownComponent"), None

    @on_call("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        results = []
        for item in get_variable_data:
            key, setting = self._variable(item["component"]["name"], item["variable"]["name"])
            result: dict[str, Any] = {
                "component": item["component"],
                "variable": item["variable"],
                "attribute_type": item.get("attribute_type", "Actual"),
            }
            if setting is None:
                result["attribute_status"] = key
            elif result["attribute_type"] != "Actual":
                result["attribute_status"] = "NotSupportedAttributeType"
            else:
                result["attribute_status"] = "Accepted"
                result["attribute_value"] = setting.value
            results.append(result)
        return v201_result.GetVariables(get_variable_result=results)

    @on_call("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        results = []
        for item in set_variable_data:
            key, setting = self._variable(item["component"]["name"], item["variable"]["name"])
            attribute_type = item.get("attribute_type", "Actual")
            if setting is None:
                status = key
            elif attribute_type != "Actual":
                status = "NotSupportedAttributeType"
            else:
                status = self.sim.apply_setting(key, str(item["attribute_value"]))
                status = "Rejected" if status == "NotSupported" else status
            results.append(
                {
                    "attribute_type": attribute_type,
                    "attribute_status": status,
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return v201_result.SetVariables(set_variable_result=results)

    @on_call("UpdateFirmware")
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **kwargs: Any) -> Any:
        retrieve = firmware.get("retrieve_date_time")
        signed = bool(firmware.get("signature"))
        self.sim.update_firmware(request_id, retrieve, signed=signed)
        return v201_result.UpdateFirmware(status="Accepted")

    @on_call("GetLog")
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, **kwargs: Any) -> Any:
        filename = self.sim.upload(request_id, diagnostics=False)
        return v201_result.GetLog(status="Accepted", filename=filename)

    @on_call("DataTransfer")
    def on_data_transfer(self, vendor_id: str, data: Any = None, **kwargs: Any) -> Any:
        return v201_result.DataTransfer(status="Accepted", data=data)
