"""The OCPP 1.6J link of a simulated charger: its calls out, its answers to the central system."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final

from ocpp.v16 import ChargePoint as _V16ChargePoint  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call as v16_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call_result as v16_result  # type: ignore[import-untyped, unused-ignore]

from .features import MIXINS_16
from .link import RESPONSE_TIMEOUT, WIRE_LOGGER, on_call
from .model import (
    DEFAULT_HEARTBEAT_INTERVAL,
    ERROR_NONE,
    MEASURANDS,
    STATUS_AVAILABLE,
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

HEARTBEAT_KEY: Final = "HeartbeatInterval"


def default_settings(
    *,
    connectors: int,
    meter_interval: float,
    security_profile: str,
    identity: str,
    vendor: str,
    model: str,
) -> dict[str, Setting]:
    """Return a fresh 1.6 configuration: key → setting."""
    return {
        HEARTBEAT_KEY: Setting(str(DEFAULT_HEARTBEAT_INTERVAL), kind=int),
        "MeterValueSampleInterval": Setting(str(int(meter_interval)), kind=int),
        "MeterValuesSampledData": Setting(MEASURANDS),
        "NumberOfConnectors": Setting(str(connectors), readonly=True),
        "ConnectionTimeOut": Setting("60", kind=int),
        "ResetRetries": Setting("3", kind=int),
        "AuthorizeRemoteTxRequests": Setting("false", kind=bool),
        "StopTransactionOnInvalidId": Setting("true", kind=bool),
        "SecurityProfile": Setting(security_profile, readonly=True),
        "SupportedFeatureProfiles": Setting(
            "Core,FirmwareManagement,SmartCharging,RemoteTrigger", readonly=True
        ),
    }


def _sampled_values_16(sample: Sample, context: str, full: bool = True) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = [
        {
            "value": str(sample.energy_wh),
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        }
    ]
    if not full:
        return values
    values.append(
        {
            "value": f"{sample.power_w:.1f}",
            "context": context,
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        }
    )
    for phase, current in zip(("L1", "L2", "L3"), sample.currents, strict=True):
        values.append(
            {
                "value": f"{current:.2f}",
                "context": context,
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unit": "A",
            }
        )
    for phase, voltage in zip(("L1-N", "L2-N", "L3-N"), sample.voltages, strict=True):
        values.append(
            {
                "value": f"{voltage:.1f}",
                "context": context,
                "measurand": "Voltage",
                "phase": phase,
                "location": "Outlet",
                "unit": "V",
            }
        )
    if sample.soc is not None:
        values.append(
            {
                "value": f"{sample.soc:.1f}",
                "context": context,
                "measurand": "SoC",
                "location": "EV",
                "unit": "Percent",
            }
        )
    return values


class V16Link(*MIXINS_16, _V16ChargePoint):  # type: ignore[misc]
    """The OCPP 1.6 wire of a SimulatedChargePoint: one per websocket connection."""

    def __init__(self, sim: SimulatedChargePoint, connection: WebSocketAdapter) -> None:
        super().__init__(sim.id, connection, response_timeout=RESPONSE_TIMEOUT, logger=WIRE_LOGGER)
        self.sim = sim
        self._reported: dict[int, tuple[str, str]] = {}

    async def route_message(self, raw_msg: str) -> None:
        """Record the central system's calls and run follow-ups once answered."""
        self.sim.record_call(raw_msg)
        await super().route_message(raw_msg)
        self.sim.run_followups()

    # -- to the central system ----------------------------------------------------------

    async def send_boot(self, reason: str) -> tuple[str, int]:
        sim = self.sim
        result = await self.call(
            v16_call.BootNotification(
                charge_point_vendor=sim.vendor,
                charge_point_model=sim.model,
                charge_point_serial_number=sim.serial,
                charge_box_serial_number=sim.serial,
                firmware_version=sim.firmware_version,
            ),
            suppress=False,
        )
        return str(result.status), int(result.interval)

    async def send_heartbeat(self) -> None:
        await self.call(v16_call.Heartbeat(), suppress=False)

    async def send_station_status(self, operative: bool) -> None:
        status = STATUS_AVAILABLE if operative else STATUS_UNAVAILABLE
        await self._send_status(0, status, ERROR_NONE, force=True)

    async def send_status(self, connector: Connector, force: bool = False) -> None:
        await self._send_status(connector.id, connector.status, connector.error_code, force)

    async def _send_status(self, number: int, status: str, error_code: str, force: bool) -> None:
        if not force and self._reported.get(number) == (status, error_code):
            return
        self._reported[number] = (status, error_code)
        await self.call(
            v16_call.StatusNotification(
                connector_id=number, error_code=error_code, status=status, timestamp=now_iso()
            ),
            suppress=False,
        )

    async def start_transaction(self, connector: Connector, trigger: str) -> bool:
        session = connector.session
        assert session is not None
        result = await self.call(
            v16_call.StartTransaction(
                connector_id=connector.id,
                id_tag=session.id_tag,
                meter_start=session.meter_start,
                timestamp=now_iso(),
            ),
            suppress=False,
        )
        session.transaction_id = int(result.transaction_id)
        return bool(result.id_tag_info.get("status") == "Accepted")

    async def send_meter_values(self, connector: Connector, context: str) -> None:
        sample = self.sim.sample(connector)
        session = connector.session
        await self.call(
            v16_call.MeterValues(
                connector_id=connector.id,
                transaction_id=None if session is None else session.transaction_id,
                meter_value=[
                    {"timestamp": now_iso(), "sampledValue": _sampled_values_16(sample, context)}
                ],
            ),
            suppress=False,
        )

    async def stop_transaction(self, connector: Connector, reason: str) -> None:
        session = connector.session
        assert session is not None
        sample = self.sim.sample(connector, stopped=True)
        await self.call(
            v16_call.StopTransaction(
                meter_stop=sample.energy_wh,
                timestamp=now_iso(),
                transaction_id=int(session.transaction_id or 0),
                reason=reason,
                id_tag=session.id_tag,
                transaction_data=[
                    {
                        "timestamp": now_iso(),
                        "sampledValue": _sampled_values_16(sample, "Transaction.End"),
                    }
                ],
            ),
            suppress=False,
        )

    async def send_firmware_status(self, status: str, request_id: int | None) -> None:
        if request_id is not None:  # a signed update's (SignedUpdateFirmware's request id)
            await self.call(
                v16_call.SignedFirmwareStatusNotification(status=status, request_id=request_id),
                suppress=False,
            )
            return
        await self.call(v16_call.FirmwareStatusNotification(status=status), suppress=False)

    async def send_upload_status(
        self, status: str, request_id: int | None, diagnostics: bool
    ) -> None:
        if diagnostics:
            message: Any = v16_call.DiagnosticsStatusNotification(status=status)
        else:
            message = v16_call.LogStatusNotification(status=status, request_id=request_id or 0)
        await self.call(message, suppress=False)

    async def send_security_event(self, event_type: str, tech_info: str) -> None:
        await self.call(
            v16_call.SecurityEventNotification(
                type=event_type, timestamp=now_iso(), tech_info=tech_info
            ),
            suppress=False,
        )

    async def send_problem(self, connector: Connector, code: str, *, active: bool) -> None:
        """1.6 carries the error code in StatusNotification; nothing more to send."""

    # -- from the central system ----------------------------------------------------------

    @on_call("Reset")
    def on_reset(self, type: str, **kwargs: Any) -> Any:
        reason = "HardReset" if type == "Hard" else "SoftReset"
        return v16_result.Reset(status=self.sim.reset(reason))

    @on_call("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **kwargs: Any) -> Any:
        status = self.sim.change_availability(connector_id, type == "Operative")
        return v16_result.ChangeAvailability(status=status)

    @on_call("RemoteStartTransaction")
    def on_remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        profile = None
        if charging_profile is not None:
            profile = Profile(
                id=int(charging_profile["charging_profile_id"]),
                connector=connector_id or 0,
                purpose="Tx",
                stack_level=int(charging_profile["stack_level"]),
                limit_w=limit_w(charging_profile["charging_schedule"]),
            )
        accepted = self.sim.remote_start(connector_id, id_tag, profile=profile)
        return v16_result.RemoteStartTransaction(status="Accepted" if accepted else "Rejected")

    @on_call("RemoteStopTransaction")
    def on_remote_stop_transaction(self, transaction_id: int, **kwargs: Any) -> Any:
        accepted = self.sim.remote_stop(transaction_id)
        return v16_result.RemoteStopTransaction(status="Accepted" if accepted else "Rejected")

    @on_call("UnlockConnector")
    def on_unlock_connector(self, connector_id: int, **kwargs: Any) -> Any:
        status = self.sim.unlock(connector_id, stop_session=True)
        return v16_result.UnlockConnector(
            status="NotSupported" if status == "UnknownConnector" else status
        )

    @on_call("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **kwargs: Any
    ) -> Any:
        sim = self.sim
        connectors = sim.targets(connector_id)
        if connectors is None:
            return v16_result.TriggerMessage(status="Rejected")
        followup: FollowUp
        if requested_message == "BootNotification":
            followup = self._triggered_boot
        elif requested_message == "Heartbeat":
            followup = self.send_heartbeat
        elif requested_message == "StatusNotification":
            station = not connector_id
            followup = functools.partial(self._triggered_statuses, connectors, station=station)
        elif requested_message == "MeterValues":
            followup = functools.partial(self._triggered_meter_values, connectors)
        elif requested_message == "FirmwareStatusNotification":
            followup = self._triggered_firmware_status
        elif requested_message == "DiagnosticsStatusNotification":
            followup = self._triggered_upload_status
        else:
            return v16_result.TriggerMessage(status="NotImplemented")
        sim.later(followup)
        return v16_result.TriggerMessage(status="Accepted")

    async def _triggered_boot(self) -> None:
        status, interval = await self.send_boot("Triggered")
        self.sim.boot_count += 1
        self.sim.boot_status = status
        if status == "Accepted" and interval:
            self.sim.set_heartbeat_interval(interval)

    async def _triggered_statuses(self, connectors: list[Connector], *, station: bool) -> None:
        if station:
            await self.send_station_status(self.sim.station_operative)
        for connector in connectors:
            await self.send_status(connector, force=True)

    async def _triggered_meter_values(self, connectors: list[Connector]) -> None:
        for connector in connectors:
            await self.send_meter_values(connector, "Trigger")

    async def _triggered_firmware_status(self) -> None:
        await self.send_firmware_status(self.sim.firmware_report(), None)

    async def _triggered_upload_status(self) -> None:
        status = "Uploading" if self.sim.uploading else "Idle"
        await self.send_upload_status(status, None, diagnostics=True)

    @on_call("SetChargingProfile")
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kwargs: Any
    ) -> Any:
        purposes = {"ChargePointMaxProfile": "Max", "TxDefaultProfile": "TxDefault"}
        purpose = purposes.get(cs_charging_profiles["charging_profile_purpose"], "Tx")
        if purpose == "Max" and connector_id != 0:
            return v16_result.SetChargingProfile(status="Rejected")
        profile = Profile(
            id=int(cs_charging_profiles["charging_profile_id"]),
            connector=connector_id,
            purpose=purpose,
            stack_level=int(cs_charging_profiles["stack_level"]),
            limit_w=limit_w(cs_charging_profiles["charging_schedule"]),
        )
        return v16_result.SetChargingProfile(status=self.sim.set_profile(profile))

    @on_call("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **kwargs: Any,
    ) -> Any:
        purposes = {"ChargePointMaxProfile": "Max", "TxDefaultProfile": "TxDefault"}
        purpose = None
        if charging_profile_purpose is not None:
            purpose = purposes.get(charging_profile_purpose, "Tx")
        status = self.sim.clear_profiles(id, connector_id, purpose, stack_level)
        return v16_result.ClearChargingProfile(status=status)

    @on_call("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **kwargs: Any) -> Any:
        settings = self.sim.settings
        names = key or list(settings)
        known = [
            {"key": name, "readonly": settings[name].readonly, "value": settings[name].value}
            for name in names
            if name in settings
        ]
        unknown = [name for name in names if name not in settings]
        return v16_result.GetConfiguration(
            configuration_key=known or None, unknown_key=unknown or None
        )

    @on_call("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **kwargs: Any) -> Any:
        return v16_result.ChangeConfiguration(status=self.sim.apply_setting(key, value))

    @on_call("UpdateFirmware")
    def on_update_firmware(self, location: str, retrieve_date: str, **kwargs: Any) -> Any:
        self.sim.update_firmware(None, retrieve_date)
        return v16_result.UpdateFirmware()

    @on_call("GetDiagnostics")
    def on_get_diagnostics(self, location: str, **kwargs: Any) -> Any:
        return v16_result.GetDiagnostics(file_name=self.sim.upload(None, diagnostics=True))

    @on_call("GetLog")
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, **kwargs: Any) -> Any:
        filename = self.sim.upload(request_id, diagnostics=False)
        return v16_result.GetLog(status="Accepted", filename=filename)

    @on_call("DataTransfer")
    def on_data_transfer(self, vendor_id: str, data: str | None = None, **kwargs: Any) -> Any:
        return v16_result.DataTransfer(status="Accepted", data=data)
