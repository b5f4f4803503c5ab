"""The OCPP central system over real websockets: admission, messages, errors, control."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from hub.bootstrap import new_hub
from hub.charger import EVENT_CHARGER, ResetType
from hub.registry import device_registry, entity_registry
from hub.security import security_log
from hub.testing import manual_clock_of
from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp.connection import OcppCallError
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    ErrorAnswer,
    HubFactory,
    wait_state,
    ws_url,
)

OPEN = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
heartbeat_interval: 30
call_timeout: 2
id_tags: [TAG-OK]
chargers:
  - id: CP-1
    name: Bay 1
    site: Depot
  - id: CP-2
    name: Bay 2
"""

# Yesterday: charger times must lie within the window around the hub clock.
DAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
NOW = f"{DAY}T10:00:00Z"


async def boot16(cp: object) -> dict[str, object]:
    return await cp.call(  # type: ignore[attr-defined,no-any-return]
        "BootNotification",
        {
            "chargePointVendor": "ACME",
            "chargePointModel": "DC50",
            "chargePointSerialNumber": "SN-9",
            "firmwareVersion": "1.2.3",
        },
    )


async def test_identity_entities_of_earlier_versions_are_removed_at_start(
    ocpp_hub: HubFactory, tmp_path: Path
) -> None:
    """Vendor, model, serial and firmware were entities once: a restart drops them."""
    hub = await ocpp_hub(OPEN)
    device = device_registry(hub).get_by_identifier(("ocpp", "CP-2"))
    assert device is not None
    old = entity_registry(hub).get_or_create(
        "sensor", "ocpp", "CP-2-vendor", suggested_object_id="Bay 2 vendor", device_id=device.id
    )
    hub.states.set(old.entity_id, "ACME")
    await hub.stop()

    again = await ocpp_hub(OPEN, tmp_path)
    assert entity_registry(again).get(old.entity_id) is None
    assert again.states.get(old.entity_id) is None
    assert entity_registry(again).get("sensor.bay_2_connectivity") is not None


async def test_boot_status_and_meter_values_become_states(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await wait_state(hub, "sensor.bay_1_connectivity", "online")
    answer = await boot16(cp)
    assert answer["status"] == "Accepted"
    assert answer["interval"] == 30
    # What the station says of itself is the device's, not an entity per field.
    device = device_registry(hub).get_by_identifier(("ocpp", "CP-1"))
    assert device is not None
    assert (device.manufacturer, device.model, device.serial_number, device.sw_version) == (
        "ACME",
        "DC50",
        "SN-9",
        "1.2.3",
    )
    assert hub.states.get("sensor.bay_1_vendor") is None
    assert hub.states.get("sensor.bay_1_boot_reason") is not None
    await cp.call(
        "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}
    )
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    await cp.call(
        "StatusNotification",
        {
            "connectorId": 2,
            "errorCode": "GroundFailure",
            "status": "Faulted",
            "vendorErrorCode": "E42",
            "info": "RCD tripped",
        },
    )
    assert hub.states.get("sensor.bay_1_status").state == "Available"
    assert hub.states.get("sensor.bay_1_1_status").state == "Available"
    assert hub.states.get("sensor.bay_1_2_status").state == "Faulted"
    error = hub.states.get("sensor.bay_1_2_error_code")
    assert error.state == "GroundFailure"
    assert error.attributes["vendor_error_code"] == "E42"
    assert error.attributes["info"] == "RCD tripped"
    await cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": NOW,
                    "sampledValue": [
                        {
                            "value": "12.345",
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "kWh",
                        },
                        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                        {
                            "value": "16.1",
                            "measurand": "Current.Import",
                            "phase": "L1",
                            "unit": "A",
                        },
                        {
                            "value": "15.9",
                            "measurand": "Current.Import",
                            "phase": "L2",
                            "unit": "A",
                        },
                        {"value": "231.0", "measurand": "Voltage", "phase": "L3-N", "unit": "V"},
                        {"value": "64", "measurand": "SoC", "unit": "Percent"},
                    ],
                }
            ],
        },
    )
    assert hub.states.get("sensor.bay_1_1_energy").state == "12345.0"
    assert hub.states.get("sensor.bay_1_1_power").state == "7200.0"
    assert hub.states.get("sensor.bay_1_1_current_l1").state == "16.1"
    assert hub.states.get("sensor.bay_1_1_current_l2").state == "15.9"
    assert hub.states.get("sensor.bay_1_1_voltage_l3").state == "231.0"
    assert hub.states.get("sensor.bay_1_1_state_of_charge").state == "64.0"
    heartbeat = await cp.call("Heartbeat", {})
    assert "currentTime" in heartbeat


async def test_unknown_charger_is_refused_and_logged(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(ws_url(hub, "INTRUDER"))
    assert info.value.status == 404
    events = security_log(hub).query(charge_point_id="INTRUDER")
    assert [e.kind for e in events] == ["ocpp_unknown_charger"]
    assert events[0].remote == "127.0.0.1"


async def test_no_subprotocol_is_closed_with_a_reason(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(OPEN)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url(hub, "CP-1"), protocols=("ocpp0.9",))
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == 1002
        assert "no supported OCPP subprotocol" in msg.extra
        await ws.close()
    assert security_log(hub).query(kind="ocpp_no_subprotocol")


async def test_bad_frames_get_callerrors_and_the_connection_stays(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    cases = {
        '[2, "e1", "Heartbeat", "not an object"]': "FormationViolation",
        '[2, "e2", "StatusNotification", {"connectorId": 1,'
        ' "status": "Available"}]': "ProtocolError",
        '[2, "e3", "StatusNotification", {"connectorId": "one", "errorCode": "NoError",'
        ' "status": "Available"}]': "TypeConstraintViolation",
        '[2, "e4", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",'
        ' "status": "Sleeping"}]': "PropertyConstraintViolation",
        '[2, "e5", "Heartbeat", {"surprise": 1}]': "FormationViolation",
        '[2, "e6", "NoSuchAction", {}]': "NotImplemented",
        '[2, "e7", "CancelReservation", {"reservationId": 1}]': "NotSupported",
        '[2, "e8", "Heartbeat", {]': "FormationViolation",
    }
    for text, code in cases.items():
        message_id = json.loads(text.replace("{]", "{}]"))[1]
        frame = await cp.send_frame(text, message_id)
        assert frame is not None
        assert frame[0] == 4, frame
        assert frame[2] == code, (text, frame)
    # Unreadable: no answer, counted; the connection still works.
    await cp.send_frame("garbage")
    assert (await cp.call("Heartbeat", {}))["currentTime"]
    system = hub.data[DATA_SYSTEM]
    assert system.unreadable_frames == 1


async def test_oversized_frame_and_rate_limit_are_security_events(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN + "max_frame_size: 2048\nrate_limit:\n  rate: 1\n  burst: 5\n")
    cp = await connect(ws_url(hub, "CP-1"))
    big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "x", "data": "A" * 5000}])
    frame = await cp.send_frame(big, "big1")
    assert frame is not None
    assert frame[2] == "FormationViolation"
    codes = []
    for _ in range(8):
        try:
            await cp.call("Heartbeat", {})
            codes.append("ok")
        except ChargerCallError as err:
            codes.append(err.code)
    assert "GenericError" in codes
    kinds = {e.kind for e in security_log(hub).query(charge_point_id="CP-1")}
    assert {"ocpp_frame_too_large", "ocpp_rate_limit"} <= kinds


async def test_transactions_are_durable_and_replays_idempotent(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Path
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    start = {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 1000, "timestamp": NOW}
    first = await cp.call("StartTransaction", start)
    assert first["idTagInfo"]["status"] == "Accepted"
    replay = await cp.call("StartTransaction", start)
    assert replay["transactionId"] == first["transactionId"]
    tx_id = first["transactionId"]
    assert hub.states.get("sensor.bay_1_1_transaction_id").state == str(tx_id)
    assert hub.states.get("sensor.bay_1_1_id_tag").state == "TAG-OK"
    stop = {
        "transactionId": tx_id,
        "meterStop": 8500,
        "timestamp": f"{DAY}T11:00:00Z",
        "reason": "EVDisconnected",
    }
    await cp.call("StopTransaction", stop)
    await cp.call("StopTransaction", stop)
    assert hub.states.get("sensor.bay_1_1_session_energy").state == "7500.0"
    assert hub.states.get("sensor.bay_1_1_session_duration").state == "3600"
    stored = await hub.data[DATA_SYSTEM].transactions.transactions(charge_point_id="CP-1")
    assert len(stored) == 1
    assert stored[0].energy_wh == 7500.0
    unknown = await cp.call(
        "StartTransaction", {**start, "idTag": "TAG-BAD", "timestamp": f"{DAY}T12:00:00Z"}
    )
    assert unknown["idTagInfo"]["status"] == "Invalid"
    assert (await cp.call("Authorize", {"idTag": "TAG-OK"}))["idTagInfo"]["status"] == ("Accepted")


async def test_status_and_sessions_are_told_as_vendor_neutral_charger_events(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    seen: list[dict[str, object]] = []
    hub.bus.listen(EVENT_CHARGER, lambda event: seen.append(dict(event.data)))
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    start = {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 1000, "timestamp": NOW}
    tx_id = (await cp.call("StartTransaction", start))["transactionId"]
    await cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx_id,
            "meterValue": [
                {
                    "timestamp": NOW,
                    "sampledValue": [
                        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"}
                    ],
                }
            ],
        },
    )
    await cp.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"},
    )
    stop = {
        "transactionId": tx_id,
        "meterStop": 8500,
        "timestamp": f"{DAY}T11:00:00Z",
        "reason": "Other",
    }
    await cp.call("StopTransaction", stop)
    await hub.block_till_done()
    statuses = [(e["status"], e["previous"]) for e in seen if e["kind"] == "status"]
    assert statuses == [("Available", None), ("Faulted", "Available")]
    started = next(e for e in seen if e["kind"] == "session_started")
    ended = next(e for e in seen if e["kind"] == "session_ended")
    assert started["transaction_id"] == ended["transaction_id"] == str(tx_id)
    assert started["device_id"] == ended["device_id"] != started["station_id"]
    assert ended["energy_wh"] == 7500.0
    assert ended["stopped_at"] - ended["started_at"] == 3600
    assert ended["peak_power_w"] == 7200.0
    assert ended["error_code"] == "GroundFailure"
    assert ended["stop_reason"] == "Other"


async def test_timestamps_without_an_offset_are_read_as_utc(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    start = {
        "connectorId": 1,
        "idTag": "TAG-OK",
        "meterStart": 0,
        "timestamp": f"{DAY}T10:00:00",
    }
    tx_id = (await cp.call("StartTransaction", start))["transactionId"]
    stop = {"transactionId": tx_id, "meterStop": 500, "timestamp": f"{DAY}T10:30:00.5"}
    await cp.call("StopTransaction", stop)
    (stored,) = await hub.data[DATA_SYSTEM].transactions.transactions(charge_point_id="CP-1")
    assert stored.started_at == datetime.fromisoformat(f"{DAY}T10:00:00+00:00").timestamp()
    assert stored.stopped_at == stored.started_at + 1800.5


async def test_transaction_survives_a_hub_restart(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Path
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    start = {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 0, "timestamp": NOW}
    tx_id = (await cp.call("StartTransaction", start))["transactionId"]
    await cp.close()
    await hub.stop()
    again = new_hub(tmp_path)
    await again.start()
    try:
        cp2 = await connect(ws_url(again, "CP-1"))
        # The charger resends the start it may not have seen answered: same id.
        assert (await cp2.call("StartTransaction", start))["transactionId"] == tx_id
        stored = await again.data["ocpp.system"].transactions.transactions(charge_point_id="CP-1")
        assert [t.ocpp_id for t in stored] == [str(tx_id)]
    finally:
        await again.stop()


async def test_charger_services_reach_the_charger(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    target = {"entity_id": "sensor.bay_1_1_status"}
    result = await hub.services.call("charger", "reset", {"type": "hard"}, target)
    assert list(result.values()) == ["Accepted"]
    assert (await cp.wait_for_call("Reset")) == {"type": "Hard"}
    await hub.services.call("charger", "set_availability", {"available": False}, target)
    assert await cp.wait_for_call("ChangeAvailability") == {"connectorId": 1, "type": "Inoperative"}
    cp.handlers["UnlockConnector"] = lambda payload: {"status": "Unlocked"}
    result = await hub.services.call("charger", "unlock_connector", {}, target)
    assert list(result.values()) == ["Unlocked"]
    await hub.services.call("charger", "set_current_limit", {"limit": 16}, target)
    profile = await cp.wait_for_call("SetChargingProfile")
    assert profile["connectorId"] == 1
    schedule = profile["csChargingProfiles"]["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
    await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, target)
    assert (await cp.wait_for_call("RemoteStartTransaction"))["idTag"] == "TAG-OK"
    await hub.services.call("charger", "trigger_status", {}, target)
    assert (await cp.wait_for_call("TriggerMessage"))["requestedMessage"] == ("StatusNotification")
    cp.handlers["UpdateFirmware"] = lambda payload: {}
    await hub.services.call(
        "charger", "update_firmware", {"location": "https://fw.example.com/2.0.bin"}, target
    )
    assert (await cp.wait_for_call("UpdateFirmware"))["location"] == (
        "https://fw.example.com/2.0.bin"
    )
    cp.handlers["GetConfiguration"] = lambda payload: {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "30"}]
    }
    answer = await hub.services.call(
        "ocpp", "get_configuration", {"charge_point_id": "CP-1", "key": ["HeartbeatInterval"]}
    )
    assert answer["configurationKey"][0]["value"] == "30"


async def test_call_errors_timeouts_and_offline(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    target = {"charge_point_id": "CP-1"}
    cp.handlers["ClearCache"] = lambda payload: None  # never answers
    with pytest.raises(OcppCallError, match="did not answer ClearCache within 2 s"):
        await hub.services.call("ocpp", "clear_cache", {}, target)
    cp.received.clear()
    station = hub.data[DATA_SYSTEM].stations["CP-1"]
    cp.handlers["ClearCache"] = lambda payload: ErrorAnswer("NotSupported", "no cache here")
    with pytest.raises(OcppCallError, match="ClearCache with NotSupported") as info:
        await hub.services.call("ocpp", "clear_cache", {}, target)
    assert info.value.code == "NotSupported"
    cp.handlers["Reset"] = lambda payload: {"status": "Maybe"}
    with pytest.raises(OcppCallError, match="invalid Reset response"):
        await station.reset(ResetType.SOFT)
    await cp.close()
    await wait_state(hub, "sensor.bay_1_connectivity", "offline")
    with pytest.raises(OcppCallError, match="offline"):
        await hub.services.call("charger", "reset", {}, {"device_id": station.device_id})


async def test_ocpp_201_boot_status_and_transaction_events(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    answer = await cp.call(
        "BootNotification",
        {
            "chargingStation": {"model": "W22", "vendorName": "ACME", "firmwareVersion": "4.0"},
            "reason": "PowerUp",
        },
    )
    assert answer["status"] == "Accepted"
    assert hub.states.get("sensor.bay_2_boot_reason").state == "PowerUp"
    await cp.call(
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
    )
    assert hub.states.get("sensor.bay_2_1_status").state == "Preparing"
    event = {
        "eventType": "Started",
        "timestamp": NOW,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "TX-201", "chargingState": "Charging"},
        "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": NOW,
                "sampledValue": [{"value": 500.0, "measurand": "Energy.Active.Import.Register"}],
            }
        ],
    }
    started = await cp.call("TransactionEvent", event)
    assert started["idTokenInfo"]["status"] == "Accepted"
    assert hub.states.get("sensor.bay_2_1_status").state == "Charging"
    assert hub.states.get("sensor.bay_2_1_transaction_id").state == "TX-201"
    await cp.call("TransactionEvent", event)  # replay
    ended = {
        **event,
        "eventType": "Ended",
        "seqNo": 1,
        "triggerReason": "EVDeparted",
        "timestamp": f"{DAY}T10:30:00Z",
        "transactionInfo": {"transactionId": "TX-201", "stoppedReason": "EVDisconnected"},
        "meterValue": [
            {
                "timestamp": f"{DAY}T10:30:00Z",
                "sampledValue": [
                    {
                        "value": 4.5,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "kWh"},
                    }
                ],
            }
        ],
    }
    await cp.call("TransactionEvent", ended)
    assert hub.states.get("sensor.bay_2_1_transaction_id").state == "unknown"
    stored = await hub.data[DATA_SYSTEM].transactions.transactions(charge_point_id="CP-2")
    assert len(stored) == 1
    assert stored[0].stopped_at is not None
    await cp.call(
        "SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": NOW}
    )
    assert security_log(hub).query(kind="ocpp_charger_security_event")[0].severity == "critical"
    target = {"charge_point_id": "CP-2"}
    await hub.services.call(
        "charger",
        "reset",
        {"type": "soft"},
        {"device_id": hub.data[DATA_SYSTEM].stations["CP-2"].device_id},
    )
    assert await cp.wait_for_call("Reset") == {"type": "OnIdle"}
    await hub.services.call("ocpp", "trigger_message", {"requested_message": "Heartbeat", **target})
    assert (await cp.wait_for_call("TriggerMessage"))["requestedMessage"] == "Heartbeat"


async def test_silence_is_measured_on_the_hub_clock(
    ocpp_hub: HubFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A charger that answers pings stays online however far the hub clock moves; one that
    falls silent is offline once heartbeat_interval x offline_after of hub time passed, with
    no sleeping; and the sweep wakes when something falls due, not every second."""
    from integrations.ocpp.system import CentralSystem

    sweeps = 0
    sweep = CentralSystem._sweep

    def counting(self: CentralSystem) -> None:
        nonlocal sweeps
        sweeps += 1
        sweep(self)

    monkeypatch.setattr(CentralSystem, "_sweep", counting)
    hub = await ocpp_hub(
        OPEN.replace("heartbeat_interval: 30", "heartbeat_interval: 60") + "offline_after: 2\n",
        manual_clock=True,
    )
    clock = manual_clock_of(hub)
    live = await connect(ws_url(hub, "CP-1"))
    await boot16(live)
    silent = await connect(ws_url(hub, "CP-2"))
    await boot16(silent)
    await wait_state(hub, "sensor.bay_2_connectivity", "online")
    # CP-2 stops reading: no pong, no frame. 60 s of silence is not yet 2 x 60.
    silent._reader.cancel()
    await clock.advance(119)
    assert hub.states.get("sensor.bay_2_connectivity").state == "online"
    await clock.advance(2)
    await wait_state(hub, "sensor.bay_2_connectivity", "offline")
    # A day: CP-1 is pinged each minute of hub time, answers and stays online.
    sweeps = 0
    await clock.advance(86_400)
    assert hub.states.get("sensor.bay_1_connectivity").state == "online"
    assert sweeps <= 86_400 / 60 + 10, sweeps  # once a heartbeat interval, not a second


async def test_call_timeouts_run_on_the_hub_clock(ocpp_hub: HubFactory, connect: Connect) -> None:
    """A charger that never answers: the call fails once call_timeout of hub time passed."""
    hub = await ocpp_hub(OPEN, manual_clock=True)
    clock = manual_clock_of(hub)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    cp.handlers["ClearCache"] = lambda payload: None  # never answers
    call = asyncio.ensure_future(
        hub.services.call("ocpp", "clear_cache", {}, {"charge_point_id": "CP-1"})
    )
    await cp.wait_for_call("ClearCache")
    await clock.advance(1.9)
    assert not call.done()
    await clock.advance(0.2)
    with pytest.raises(OcppCallError, match="did not answer ClearCache within 2 s"):
        await call


async def test_reconnects_are_counted(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    first = await connect(ws_url(hub, "CP-1"))
    await boot16(first)
    await first.close()
    await wait_state(hub, "sensor.bay_1_connectivity", "offline")
    second = await connect(ws_url(hub, "CP-1"))
    await boot16(second)
    await wait_state(hub, "sensor.bay_1_connectivity", "online")
    assert hub.states.get("sensor.bay_1_reconnects").state == "1"


async def test_every_other_message_is_handled(ocpp_hub: HubFactory, connect: Connect) -> None:
    """The remaining 1.6 and 2.0.1 messages are answered and leave their trace."""
    hub = await ocpp_hub(OPEN)
    seen: list[str] = []
    for event_type in (
        "ocpp_data_transfer",
        "ocpp_firmware_status",
        "ocpp_notify_event",
        "ocpp_notify_report",
    ):
        hub.bus.listen(event_type, lambda event: seen.append(event.event_type))
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    assert await cp.call("DataTransfer", {"vendorId": "ACME", "data": "x"}) == {
        "status": "UnknownVendorId"
    }
    assert await cp.call("DiagnosticsStatusNotification", {"status": "Uploaded"}) == {}
    assert hub.states.get("sensor.bay_1_diagnostics_status").state == "Uploaded"
    assert await cp.call("FirmwareStatusNotification", {"status": "Installing"}) == {}
    assert hub.states.get("sensor.bay_1_firmware_status").state == "Installing"
    assert await cp.call("SignedFirmwareStatusNotification", {"status": "Installed"}) == {}
    assert hub.states.get("sensor.bay_1_firmware_status").state == "Installed"
    assert await cp.call("LogStatusNotification", {"status": "Uploading"}) == {}
    assert (
        await cp.call("SecurityEventNotification", {"type": "SettingSystemTime", "timestamp": NOW})
        == {}
    )
    event = security_log(hub).query(kind="ocpp_charger_security_event")[-1]
    # Critical, as the 1.6 security whitepaper (edition 3) classifies SettingSystemTime.
    assert event.severity == "critical"
    assert event.data["type"] == "SettingSystemTime"

    cp2 = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    await cp2.call(
        "BootNotification",
        {"chargingStation": {"model": "W", "vendorName": "V"}, "reason": "ScheduledReset"},
    )
    await cp2.call(
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    )
    notify = {
        "generatedAt": NOW,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": NOW,
                "trigger": "Delta",
                "actualValue": "Faulted",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    }
    assert await cp2.call("NotifyEvent", notify) == {}
    assert hub.states.get("sensor.bay_2_1_status").state == "Faulted"
    report = {
        "requestId": 7,
        "generatedAt": NOW,
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "variableAttribute": [{"value": "60"}],
            }
        ],
    }
    assert await cp2.call("NotifyReport", report) == {}
    assert await cp2.call("FirmwareStatusNotification", {"status": "Downloaded"}) == {}
    assert await cp2.call("LogStatusNotification", {"status": "Uploaded"}) == {}
    assert (
        await cp2.call(
            "MeterValues",
            {
                "evseId": 1,
                "meterValue": [
                    {
                        "timestamp": NOW,
                        "sampledValue": [
                            {
                                "value": 11.0,
                                "measurand": "Power.Active.Import",
                                "unitOfMeasure": {"unit": "kW"},
                            }
                        ],
                    }
                ],
            },
        )
        == {}
    )
    assert hub.states.get("sensor.bay_2_1_power").state == "11000.0"
    assert (await cp2.call("Authorize", {"idToken": {"idToken": "NOPE", "type": "Local"}}))[
        "idTokenInfo"
    ]["status"] == "Unknown"
    assert sorted(set(seen)) == [
        "ocpp_data_transfer",
        "ocpp_firmware_status",
        "ocpp_notify_event",
        "ocpp_notify_report",
    ]


async def test_handler_failure_is_an_internal_error(
    ocpp_hub: HubFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.ocpp import station as station_module

    async def broken(self: object, payload: object, ctx: object) -> dict[str, object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(station_module._HANDLERS_16, "Heartbeat", broken)
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    with pytest.raises(ChargerCallError) as info:
        await cp.call("Heartbeat", {})
    assert info.value.code == "InternalError"
    # The connection and the other messages carry on.
    assert (await boot16(cp))["status"] == "Accepted"


async def test_pending_charger_may_only_boot(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN + "unknown_chargers: pending\n")
    cp = await connect(ws_url(hub, "NEWBIE"))
    assert (await boot16(cp))["status"] == "Pending"
    with pytest.raises(ChargerCallError) as info:
        await cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        )
    assert info.value.code == "SecurityError"
