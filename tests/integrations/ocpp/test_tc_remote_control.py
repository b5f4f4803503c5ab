"""OCA test cases of blocks F (remote control), G (availability) and P (data transfer), CSMS
side, and their OCPP 1.6 equivalents: this test plays the charging station over a real
websocket and checks what the hub sends and answers."""

from __future__ import annotations

from typing import Any

import pytest

from hub.exceptions import ServiceValidationError
from integrations.ocpp.features.provisioning import (
    TRIGGERS_16,
    TRIGGERS_201,
    register_data_transfer,
)
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    HubFactory,
    RawChargePoint,
    wait_state,
    ws_url,
)
from tests.integrations.ocpp.test_central_system import NOW, OPEN, boot16
from tests.integrations.ocpp.test_tc_provisioning import CP, _sent, station201

CP16 = {"charge_point_id": "CP-1"}
EVSE1 = {"entity_id": "sensor.bay_2_1_status"}


async def station16(ocpp_hub: HubFactory, connect: Connect) -> tuple[Any, RawChargePoint]:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    assert (await boot16(cp))["status"] == "Accepted"
    return hub, cp


async def _evse_available(cp: RawChargePoint) -> None:
    status = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    await cp.call("StatusNotification", status)


def _event(event_type: str, trigger: str, seq_no: int, **info: Any) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "timestamp": NOW,
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": "TX-9", **info},
        "evse": {"id": 1, "connectorId": 1},
    }


# F01-F04: remote start / stop -------------------------------------------------------


async def test_tc_f_01_csms_remote_start_cable_plugin_first(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await _evse_available(cp)
    # EVConnectedPreSession: the transaction started when the cable was plugged in.
    assert await cp.call("TransactionEvent", _event("Started", "CablePluggedIn", 0)) == {}
    cp.handlers["RequestStartTransaction"] = lambda p: {
        "status": "Accepted",
        "transactionId": "TX-9",
    }
    answer = await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, EVSE1)
    assert list(answer.values()) == ["Accepted"]
    request = await cp.wait_for_call("RequestStartTransaction")
    assert request["idToken"] == {"idToken": "TAG-OK", "type": "Central"}
    assert request["evseId"] == 1
    remote_start_id = request["remoteStartId"]
    updated = _event("Updated", "RemoteStart", 1, remoteStartId=remote_start_id)
    updated["idToken"] = {"idToken": "TAG-OK", "type": "Central"}
    answer = await cp.call("TransactionEvent", updated)
    assert answer["idTokenInfo"]["status"] == "Accepted"
    charging = _event("Updated", "ChargingStateChanged", 2, chargingState="Charging")
    assert await cp.call("TransactionEvent", charging) == {}
    await wait_state(hub, "sensor.bay_2_1_transaction_id", "TX-9")


async def test_tc_f_02_csms_remote_start_first_authorize_remote_start(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await _evse_available(cp)
    await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, EVSE1)
    request = await cp.wait_for_call("RequestStartTransaction")
    assert request["idToken"] == {"idToken": "TAG-OK", "type": "Central"}
    authorized = await cp.call("Authorize", {"idToken": request["idToken"]})
    assert authorized["idTokenInfo"]["status"] == "Accepted"
    started = _event("Started", "RemoteStart", 0, remoteStartId=request["remoteStartId"])
    started["idToken"] = request["idToken"]
    assert (await cp.call("TransactionEvent", started))["idTokenInfo"]["status"] == "Accepted"
    await wait_state(hub, "sensor.bay_2_1_transaction_id", "TX-9")


async def test_tc_f_03_csms_remote_start_first_authorize_remote_start_false(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The station starts at once, without an Authorize, with the remoteStartId it was given."""
    hub, cp = await station201(ocpp_hub, connect)
    await _evse_available(cp)
    await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, EVSE1)
    request = await cp.wait_for_call("RequestStartTransaction")
    assert request["idToken"] == {"idToken": "TAG-OK", "type": "Central"}
    started = _event("Started", "RemoteStart", 0, remoteStartId=request["remoteStartId"])
    started["idToken"] = request["idToken"]
    assert (await cp.call("TransactionEvent", started))["idTokenInfo"]["status"] == "Accepted"
    charging = _event("Updated", "ChargingStateChanged", 1, chargingState="Charging")
    assert await cp.call("TransactionEvent", charging) == {}
    await wait_state(hub, "sensor.bay_2_1_transaction_id", "TX-9")
    # Each remote start has its own remoteStartId.
    await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, EVSE1)
    ids = [p["remoteStartId"] for p in _sent(cp, "RequestStartTransaction")]
    assert len(set(ids)) == 2


async def test_remote_stop_transaction_201(ocpp_hub: HubFactory, connect: Connect) -> None:
    """F03 (its CSMS test case is TC_E_21_CSMS, block E): RequestStopTransaction."""
    hub, cp = await station201(ocpp_hub, connect)
    started = _event("Started", "Authorized", 0, chargingState="Charging")
    started["idToken"] = {"idToken": "TAG-OK", "type": "ISO14443"}
    await cp.call("TransactionEvent", started)
    await wait_state(hub, "sensor.bay_2_1_transaction_id", "TX-9")
    answer = await hub.services.call("charger", "stop_charging", {}, EVSE1)
    assert list(answer.values()) == ["Accepted"]
    assert await cp.wait_for_call("RequestStopTransaction") == {"transactionId": "TX-9"}
    ended = _event("Ended", "RemoteStop", 1, chargingState="EVConnected", stoppedReason="Remote")
    assert await cp.call("TransactionEvent", ended) == {}
    await wait_state(hub, "sensor.bay_2_1_transaction_id", "unknown")


async def test_tc_f_04_csms_remote_start_cable_plugin_timeout(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await _evse_available(cp)
    await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, EVSE1)
    request = await cp.wait_for_call("RequestStartTransaction")
    started = _event("Started", "RemoteStart", 0, remoteStartId=request["remoteStartId"])
    assert await cp.call("TransactionEvent", started) == {}
    timeout = _event("Updated", "EVConnectTimeout", 1)
    assert await cp.call("TransactionEvent", timeout) == {}
    ended = _event("Ended", "EVConnectTimeout", 2, stoppedReason="Timeout")
    assert await cp.call("TransactionEvent", ended) == {}


async def test_tc_011_1_csms_remote_start_first_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    await hub.services.call(
        "charger", "start_charging", {"id_tag": "TAG-OK"}, {"entity_id": "sensor.bay_1_1_status"}
    )
    assert await cp.wait_for_call("RemoteStartTransaction") == {"idTag": "TAG-OK", "connectorId": 1}
    assert (await cp.call("Authorize", {"idTag": "TAG-OK"}))["idTagInfo"]["status"] == "Accepted"
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 0, "timestamp": NOW},
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    await hub.services.call("charger", "stop_charging", {}, {"entity_id": "sensor.bay_1_1_status"})
    assert await cp.wait_for_call("RemoteStopTransaction") == {
        "transactionId": started["transactionId"]
    }


# F05: unlock ------------------------------------------------------------------------


async def test_tc_f_06_csms_unlock_connector_without_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["UnlockConnector"] = lambda payload: {"status": "Unlocked"}
    answer = await hub.services.call(
        "ocpp", "unlock_connector", {**CP, "evse_id": 1, "connector_id": 1}
    )
    assert answer == {"status": "Unlocked"}
    assert await cp.wait_for_call("UnlockConnector") == {"evseId": 1, "connectorId": 1}
    with pytest.raises(ServiceValidationError, match=r"evse_id"):
        await hub.services.call("ocpp", "unlock_connector", {**CP, "connector_id": 1})
    with pytest.raises(ServiceValidationError, match=r"connector_id"):
        await hub.services.call("ocpp", "unlock_connector", {**CP, "evse_id": 1, "connector_id": 0})


async def test_tc_017_1_csms_unlock_connector_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    cp.handlers["UnlockConnector"] = lambda payload: {"status": "Unlocked"}
    answer = await hub.services.call("ocpp", "unlock_connector", {**CP16, "connector_id": 2})
    assert answer == {"status": "Unlocked"}
    assert await cp.wait_for_call("UnlockConnector") == {"connectorId": 2}


# F06: trigger message ---------------------------------------------------------------


async def test_tc_f_12_csms_trigger_meter_values_all_evse(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp", "trigger_message", {**CP, "requested_message": "MeterValues"}
    )
    assert answer == "Accepted"
    assert await cp.wait_for_call("TriggerMessage") == {"requestedMessage": "MeterValues"}
    for evse in (1, 2):
        meter = {
            "evseId": evse,
            "meterValue": [
                {
                    "timestamp": NOW,
                    "sampledValue": [
                        {"value": 1200.0, "context": "Trigger", "measurand": "Power.Active.Import"}
                    ],
                }
            ],
        }
        assert await cp.call("MeterValues", meter) == {}
    await wait_state(hub, "sensor.bay_2_2_power", "1200.0")


async def test_tc_f_20_csms_trigger_heartbeat(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await hub.services.call("ocpp", "trigger_message", {**CP, "requested_message": "Heartbeat"})
    assert await cp.wait_for_call("TriggerMessage") == {"requestedMessage": "Heartbeat"}
    assert "currentTime" in await cp.call("Heartbeat", {})


async def test_trigger_message_201_for_an_evse_and_a_connector(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_F_11/13/15 kind: the triggered message of one EVSE, or of one of its connectors."""
    hub, cp = await station201(ocpp_hub, connect)
    await hub.services.call(
        "ocpp", "trigger_message", {**CP, "requested_message": "StatusNotification", "evse_id": 1}
    )
    await hub.services.call(
        "ocpp",
        "trigger_message",
        {**CP, "requested_message": "StatusNotification", "evse_id": 1, "connector_id": 1},
    )
    assert _sent(cp, "TriggerMessage") == [
        {"requestedMessage": "StatusNotification", "evse": {"id": 1}},
        {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
    ]


async def test_trigger_message_every_type_of_each_version(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Every MessageTrigger (1.6) and MessageTriggerEnumType (2.0.1) value goes out as asked;
    one of the other version, or none at all, is a 400 and nothing is sent."""
    hub, cp = await station201(ocpp_hub, connect)
    cp16 = await connect(ws_url(hub, "CP-1"))
    await boot16(cp16)
    for message in TRIGGERS_201:
        await hub.services.call("ocpp", "trigger_message", {**CP, "requested_message": message})
    for message in TRIGGERS_16:
        await hub.services.call("ocpp", "trigger_message", {**CP16, "requested_message": message})
    assert [p["requestedMessage"] for p in _sent(cp, "TriggerMessage")] == list(TRIGGERS_201)
    assert [p["requestedMessage"] for p in _sent(cp16, "TriggerMessage")] == list(TRIGGERS_16)
    with pytest.raises(ServiceValidationError, match=r"2.0.1 cannot trigger"):
        await hub.services.call(
            "ocpp", "trigger_message", {**CP, "requested_message": "DiagnosticsStatusNotification"}
        )
    with pytest.raises(ServiceValidationError, match=r"1.6 cannot trigger"):
        await hub.services.call(
            "ocpp", "trigger_message", {**CP16, "requested_message": "TransactionEvent"}
        )
    with pytest.raises(ServiceValidationError, match=r"requested_message"):
        await hub.services.call(
            "ocpp", "trigger_message", {**CP16, "requested_message": "NoSuchMessage"}
        )
    assert len(_sent(cp, "TriggerMessage")) == len(TRIGGERS_201)


async def test_tc_054_csms_trigger_message_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    for message, connector, answer in (
        ("MeterValues", 1, {"connectorId": 1, "meterValue": []}),
        ("Heartbeat", None, {}),
        (
            "StatusNotification",
            1,
            {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        ),
        ("DiagnosticsStatusNotification", None, {"status": "Idle"}),
        ("FirmwareStatusNotification", None, {"status": "Idle"}),
    ):
        data: dict[str, Any] = {**CP16, "requested_message": message}
        if connector is not None:
            data["connector_id"] = connector
        assert await hub.services.call("ocpp", "trigger_message", data) == "Accepted"
        request = _sent(cp, "TriggerMessage")[-1]
        assert request["requestedMessage"] == message
        assert request.get("connectorId") == connector
        if message != "MeterValues":  # an empty meterValue list is below its schema
            await cp.call(message, answer)


def _meter(context: str, power: float) -> list[dict[str, Any]]:
    sampled = [
        {"value": 4200.0, "context": context, "measurand": "Energy.Active.Import.Register"},
        {"value": power, "context": context, "measurand": "Power.Active.Import"},
    ]
    return [{"timestamp": NOW, "sampledValue": sampled}]


async def test_tc_f_11_csms_trigger_meter_values_specific_evse(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """F06: TriggerMessage MeterValues for one EVSE; the station's MeterValues (context
    Trigger) of that EVSE is answered and read."""
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp", "trigger_message", {**CP, "requested_message": "MeterValues", "evse_id": 2}
    )
    assert answer == "Accepted"
    assert await cp.wait_for_call("TriggerMessage") == {
        "requestedMessage": "MeterValues",
        "evse": {"id": 2},
    }
    assert await cp.call("MeterValues", {"evseId": 2, "meterValue": _meter("Trigger", 900)}) == {}
    await wait_state(hub, "sensor.bay_2_2_power", "900.0")


@pytest.mark.parametrize(("test_case", "evse"), [("TC_F_13", {"evse_id": 1}), ("TC_F_14", {})])
async def test_tc_f_13_14_csms_trigger_transaction_event(
    ocpp_hub: HubFactory, connect: Connect, test_case: str, evse: dict[str, int]
) -> None:
    """F06: TriggerMessage TransactionEvent for one EVSE (TC_F_13) or all of them (TC_F_14,
    evse omitted) while energy flows; the station's TransactionEvent Updated with
    triggerReason Trigger and its meter values is answered and updates the session."""
    hub, cp = await station201(ocpp_hub, connect)
    started = _event("Started", "Authorized", 0, chargingState="Charging")
    started["idToken"] = {"idToken": "TAG-1", "type": "ISO14443"}
    await cp.call("TransactionEvent", started)
    answer = await hub.services.call(
        "ocpp", "trigger_message", {**CP, "requested_message": "TransactionEvent", **evse}
    )
    assert answer == "Accepted"
    expected: dict[str, Any] = {"requestedMessage": "TransactionEvent"}
    if evse:
        expected["evse"] = {"id": evse["evse_id"]}
    assert await cp.wait_for_call("TriggerMessage") == expected
    updated = _event("Updated", "Trigger", 1, chargingState="Charging")
    updated["meterValue"] = _meter("Trigger", 7400)
    assert "idTokenInfo" not in await cp.call("TransactionEvent", updated)
    await wait_state(hub, "sensor.bay_2_1_power", "7400.0")
    await wait_state(hub, "sensor.bay_2_1_status", "Charging")


@pytest.mark.parametrize(
    ("test_case", "message"),
    [("TC_F_15", "LogStatusNotification"), ("TC_F_18", "FirmwareStatusNotification")],
)
async def test_tc_f_15_18_csms_trigger_status_notification_idle(
    ocpp_hub: HubFactory, connect: Connect, test_case: str, message: str
) -> None:
    """F06: TriggerMessage LogStatusNotification (TC_F_15) / FirmwareStatusNotification
    (TC_F_18); with nothing going on the station answers status Idle without a requestId,
    which the hub accepts (no request of its own is touched)."""
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp", "trigger_message", {**CP, "requested_message": message}
    )
    assert answer == "Accepted"
    assert await cp.wait_for_call("TriggerMessage") == {"requestedMessage": message}
    assert await cp.call(message, {"status": "Idle"}) == {}
    # A second, untriggered one is answered as well: the station is Accepted.
    assert await cp.call(message, {"status": "Idle"}) == {}


@pytest.mark.parametrize(
    ("test_case", "status", "shown"),
    [("TC_F_23", "Available", "Available"), ("TC_F_24", "Occupied", "Preparing")],
)
async def test_tc_f_23_24_csms_trigger_status_notification_specific_evse(
    ocpp_hub: HubFactory, connect: Connect, test_case: str, status: str, shown: str
) -> None:
    """F06: the station reports a connector (StatusNotification and NotifyEvent
    AvailabilityState); the hub triggers StatusNotification for that EVSE and connector and
    takes the repeated report (an Occupied connector without a transaction is shown in the
    hub's vocabulary as Preparing)."""
    hub, cp = await station201(ocpp_hub, connect)
    report = {"timestamp": NOW, "connectorStatus": status, "evseId": 1, "connectorId": 1}
    notify = {
        "generatedAt": NOW,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": NOW,
                "trigger": "Delta",
                "actualValue": status,
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    }
    assert await cp.call("StatusNotification", report) == {}
    assert await cp.call("NotifyEvent", notify) == {}
    answer = await hub.services.call(
        "ocpp",
        "trigger_message",
        {**CP, "requested_message": "StatusNotification", "evse_id": 1, "connector_id": 1},
    )
    assert answer == "Accepted"
    assert await cp.wait_for_call("TriggerMessage") == {
        "requestedMessage": "StatusNotification",
        "evse": {"id": 1, "connectorId": 1},
    }
    assert await cp.call("StatusNotification", report) == {}
    assert (
        await cp.call(
            "NotifyEvent", {**notify, "eventData": [{**notify["eventData"][0], "eventId": 2}]}
        )
        == {}
    )
    await wait_state(hub, "sensor.bay_2_1_status", shown)


async def test_tc_f_27_csms_trigger_message_not_implemented(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """F06.FR.08: a station that cannot send the requested message answers NotImplemented;
    the hub reports that to the caller, keeps the station and sends nothing more."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["TriggerMessage"] = lambda payload: {"status": "NotImplemented"}
    answer = await hub.services.call(
        "ocpp", "trigger_message", {**CP, "requested_message": "PublishFirmwareStatusNotification"}
    )
    assert answer == "NotImplemented"
    assert _sent(cp, "TriggerMessage") == [
        {"requestedMessage": "PublishFirmwareStatusNotification"}
    ]
    assert "currentTime" in await cp.call("Heartbeat", {})


async def test_tc_055_csms_trigger_message_rejected_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6: TriggerMessage MeterValues that the charge point rejects (a connector it does
    not have): the hub reports Rejected and sends nothing more."""
    hub, cp = await station16(ocpp_hub, connect)
    cp.handlers["TriggerMessage"] = lambda payload: {"status": "Rejected"}
    answer = await hub.services.call(
        "ocpp",
        "trigger_message",
        {**CP16, "requested_message": "MeterValues", "connector_id": 3},
    )
    assert answer == "Rejected"
    assert _sent(cp, "TriggerMessage") == [{"requestedMessage": "MeterValues", "connectorId": 3}]
    assert "currentTime" in await cp.call("Heartbeat", {})


# G03/G04: availability --------------------------------------------------------------


async def test_tc_g_03_csms_change_availability_evse_operative_to_inoperative(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp", "change_availability", {**CP, "operational_status": "Inoperative", "evse_id": 1}
    )
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ChangeAvailability") == {
        "operationalStatus": "Inoperative",
        "evse": {"id": 1},
    }
    status = {"timestamp": NOW, "connectorStatus": "Unavailable", "evseId": 1, "connectorId": 1}
    await cp.call("StatusNotification", status)
    await wait_state(hub, "sensor.bay_2_1_status", "Unavailable")


async def test_tc_g_07_csms_change_availability_connector_operative_to_inoperative(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await hub.services.call(
        "ocpp",
        "change_availability",
        {**CP, "operational_status": "Inoperative", "evse_id": 1, "connector_id": 1},
    )
    assert await cp.wait_for_call("ChangeAvailability") == {
        "operationalStatus": "Inoperative",
        "evse": {"id": 1, "connectorId": 1},
    }
    with pytest.raises(ServiceValidationError, match=r"evse_id"):
        await hub.services.call(
            "ocpp",
            "change_availability",
            {**CP, "operational_status": "Operative", "connector_id": 1},
        )


@pytest.mark.parametrize(
    ("test_case", "status", "reported"),
    [("TC_G_05", "Inoperative", "Unavailable"), ("TC_G_06", "Operative", "Available")],
)
async def test_tc_g_05_06_csms_change_availability_charging_station(
    ocpp_hub: HubFactory, connect: Connect, test_case: str, status: str, reported: str
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp", "change_availability", {**CP, "operational_status": status}
    )
    assert answer == {"status": "Accepted"}
    # evseId and connectorId omitted: the whole station.
    assert await cp.wait_for_call("ChangeAvailability") == {"operationalStatus": status}
    notify = {
        "generatedAt": NOW,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": NOW,
                "trigger": "Delta",
                "actualValue": reported,
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    }
    assert await cp.call("NotifyEvent", notify) == {}
    await wait_state(hub, "sensor.bay_2_1_status", reported)


async def test_tc_g_14_csms_change_availability_with_ongoing_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    started = _event("Started", "Authorized", 0, chargingState="Charging")
    await cp.call("TransactionEvent", started)
    cp.handlers["ChangeAvailability"] = lambda payload: {"status": "Scheduled"}
    answer = await hub.services.call(
        "ocpp", "change_availability", {**CP, "operational_status": "Inoperative"}
    )
    assert answer == {"status": "Scheduled"}
    assert await cp.wait_for_call("ChangeAvailability") == {"operationalStatus": "Inoperative"}
    ended = _event("Ended", "StopAuthorized", 1, chargingState="Idle", stoppedReason="Local")
    await cp.call("TransactionEvent", ended)
    status = {"timestamp": NOW, "connectorStatus": "Unavailable", "evseId": 1, "connectorId": 1}
    await cp.call("StatusNotification", status)
    await wait_state(hub, "sensor.bay_2_1_status", "Unavailable")


async def test_tc_g_04_csms_change_availability_evse_inoperative_to_operative(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """G03: an Unavailable EVSE is made Operative again: ChangeAvailability with evse.id and
    no connectorId; the station reports its connectors Available."""
    hub, cp = await station201(ocpp_hub, connect)
    unavailable = {
        "timestamp": NOW,
        "connectorStatus": "Unavailable",
        "evseId": 1,
        "connectorId": 1,
    }
    await cp.call("StatusNotification", unavailable)
    await wait_state(hub, "sensor.bay_2_1_status", "Unavailable")
    answer = await hub.services.call(
        "ocpp", "change_availability", {**CP, "operational_status": "Operative", "evse_id": 1}
    )
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ChangeAvailability") == {
        "operationalStatus": "Operative",
        "evse": {"id": 1},
    }
    await cp.call("StatusNotification", {**unavailable, "connectorStatus": "Available"})
    await wait_state(hub, "sensor.bay_2_1_status", "Available")


async def test_tc_g_08_csms_change_availability_connector_inoperative_to_operative(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """G03: one Unavailable connector is made Operative: evse.id and evse.connectorId."""
    hub, cp = await station201(ocpp_hub, connect)
    unavailable = {
        "timestamp": NOW,
        "connectorStatus": "Unavailable",
        "evseId": 1,
        "connectorId": 1,
    }
    await cp.call("StatusNotification", unavailable)
    await wait_state(hub, "sensor.bay_2_1_status", "Unavailable")
    answer = await hub.services.call(
        "ocpp",
        "change_availability",
        {**CP, "operational_status": "Operative", "evse_id": 1, "connector_id": 1},
    )
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ChangeAvailability") == {
        "operationalStatus": "Operative",
        "evse": {"id": 1, "connectorId": 1},
    }
    await cp.call("StatusNotification", {**unavailable, "connectorStatus": "Available"})
    await wait_state(hub, "sensor.bay_2_1_status", "Available")


@pytest.mark.parametrize(
    ("test_case", "target", "evse"),
    [
        ("TC_G_11", {"evse_id": 1}, {"id": 1}),
        ("TC_G_17", {"evse_id": 1, "connector_id": 1}, {"id": 1, "connectorId": 1}),
    ],
)
async def test_tc_g_11_17_csms_change_availability_with_ongoing_transaction(
    ocpp_hub: HubFactory,
    connect: Connect,
    test_case: str,
    target: dict[str, int],
    evse: dict[str, int],
) -> None:
    """G03: Inoperative for the EVSE (TC_G_11) or connector (TC_G_17) of a running
    transaction: the station answers Scheduled, the transaction ends, the cable goes, and
    the connector is reported Unavailable."""
    hub, cp = await station201(ocpp_hub, connect)
    started = _event("Started", "Authorized", 0, chargingState="Charging")
    await cp.call("TransactionEvent", started)
    cp.handlers["ChangeAvailability"] = lambda payload: {"status": "Scheduled"}
    answer = await hub.services.call(
        "ocpp", "change_availability", {**CP, "operational_status": "Inoperative", **target}
    )
    assert answer == {"status": "Scheduled"}
    assert await cp.wait_for_call("ChangeAvailability") == {
        "operationalStatus": "Inoperative",
        "evse": evse,
    }
    # StopAuthorized, EVConnectedPostSession, EVDisconnected.
    await cp.call(
        "TransactionEvent", _event("Updated", "StopAuthorized", 1, chargingState="EVConnected")
    )
    ended = _event(
        "Ended", "EVCommunicationLost", 2, chargingState="Idle", stoppedReason="EVDisconnected"
    )
    await cp.call("TransactionEvent", ended)
    status = {"timestamp": NOW, "connectorStatus": "Unavailable", "evseId": 1, "connectorId": 1}
    assert await cp.call("StatusNotification", status) == {}
    await wait_state(hub, "sensor.bay_2_1_status", "Unavailable")


async def test_change_availability_16_station_and_connector(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    await hub.services.call(
        "ocpp", "change_availability", {**CP16, "operational_status": "Inoperative"}
    )
    await hub.services.call(
        "ocpp",
        "change_availability",
        {**CP16, "operational_status": "Operative", "connector_id": 2},
    )
    assert _sent(cp, "ChangeAvailability") == [
        {"connectorId": 0, "type": "Inoperative"},
        {"connectorId": 2, "type": "Operative"},
    ]
    with pytest.raises(ServiceValidationError, match=r"operational_status"):
        await hub.services.call(
            "ocpp", "change_availability", {**CP16, "operational_status": "Off"}
        )


# P01/P02: data transfer -------------------------------------------------------------


async def test_p01_data_transfer_to_the_charging_station(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["DataTransfer"] = lambda payload: {"status": "UnknownVendorId"}
    answer = await hub.services.call(
        "ocpp",
        "data_transfer",
        {**CP, "vendor_id": "org.example.evhub", "message_id": "Ping", "data": {"n": 1}},
    )
    assert answer == {"status": "UnknownVendorId"}
    assert await cp.wait_for_call("DataTransfer") == {
        "vendorId": "org.example.evhub",
        "messageId": "Ping",
        "data": {"n": 1},
    }
    cp.received.clear()
    for bad in ({"vendor_id": "v" * 256}, {"vendor_id": "v", "message_id": "m" * 51}):
        with pytest.raises(ServiceValidationError, match=r"vendor_id|message_id"):
            await hub.services.call("ocpp", "data_transfer", {**CP, **bad})
    assert _sent(cp, "DataTransfer") == []


async def test_tc_p_02_csms_data_transfer_to_the_csms(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Unknown vendors get UnknownVendorId; a vendor an integration registered is answered
    by it (both versions), until it unregisters."""
    hub, cp = await station201(ocpp_hub, connect)
    request = {"vendorId": "org.openchargealliance.octt", "messageId": "TestMessage"}
    assert await cp.call("DataTransfer", request) == {"status": "UnknownVendorId"}
    seen: list[tuple[str, str | None, Any]] = []

    async def acme(cp_id: str, message_id: str | None, data: Any) -> dict[str, Any]:
        seen.append((cp_id, message_id, data))
        if message_id != "Temperature":
            return {"status": "UnknownMessageId"}
        return {"status": "Accepted", "data": {"ok": True}}

    undo = register_data_transfer(hub, "com.acme", acme)
    answer = await cp.call(
        "DataTransfer", {"vendorId": "com.acme", "messageId": "Temperature", "data": {"c": 41}}
    )
    assert answer == {"status": "Accepted", "data": {"ok": True}}
    assert await cp.call("DataTransfer", {"vendorId": "com.acme", "messageId": "Other"}) == {
        "status": "UnknownMessageId"
    }
    cp16 = await connect(ws_url(hub, "CP-1"))
    await boot16(cp16)
    answer = await cp16.call(
        "DataTransfer", {"vendorId": "com.acme", "messageId": "Temperature", "data": "41"}
    )
    assert answer == {"status": "Accepted", "data": '{"ok": true}'}
    assert seen[0] == ("CP-2", "Temperature", {"c": 41})
    assert seen[-1] == ("CP-1", "Temperature", "41")
    with pytest.raises(ValueError, match=r"already handled"):
        register_data_transfer(hub, "com.acme", acme)
    undo()
    assert await cp.call("DataTransfer", {"vendorId": "com.acme"}) == {"status": "UnknownVendorId"}


async def test_data_transfer_handler_with_a_bad_answer_is_an_internal_error(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)

    async def broken(cp_id: str, message_id: str | None, data: Any) -> dict[str, Any]:
        return {"status": "Maybe"}

    register_data_transfer(hub, "com.broken", broken)
    with pytest.raises(ChargerCallError) as info:
        await cp.call("DataTransfer", {"vendorId": "com.broken"})
    assert info.value.code == "InternalError"
    # The connection carries on.
    assert "currentTime" in await cp.call("Heartbeat", {})


async def test_tc_064_csms_data_transfer_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    assert await cp.call("DataTransfer", {"vendorId": "com.unknown", "messageId": "x"}) == {
        "status": "UnknownVendorId"
    }
    cp.handlers["DataTransfer"] = lambda payload: {"status": "Accepted", "data": "pong"}
    answer = await hub.services.call(
        "ocpp", "data_transfer", {**CP16, "vendor_id": "com.acme", "data": "ping"}
    )
    assert answer == {"status": "Accepted", "data": "pong"}
    with pytest.raises(ServiceValidationError, match=r"string"):
        await hub.services.call(
            "ocpp", "data_transfer", {**CP16, "vendor_id": "com.acme", "data": {"a": 1}}
        )
    assert _sent(cp, "DataTransfer") == [{"vendorId": "com.acme", "data": "ping"}]
