"""OCA test cases of block B (provisioning), CSMS side, and their OCPP 1.6 equivalents: this
test plays the charging station over a real websocket and checks what the hub sends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.exceptions import ServiceValidationError
from integrations.ocpp import DATA_SYSTEM
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    HubFactory,
    RawChargePoint,
    wait_state,
    ws_url,
)
from tests.integrations.ocpp.test_central_system import NOW, OPEN, boot16

CP = {"charge_point_id": "CP-2"}


async def boot201(cp: RawChargePoint, reason: str = "PowerUp") -> dict[str, Any]:
    return await cp.call(
        "BootNotification",
        {"chargingStation": {"model": "W", "vendorName": "V"}, "reason": reason},
    )


async def station201(ocpp_hub: HubFactory, connect: Connect) -> tuple[Any, RawChargePoint]:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    assert (await boot201(cp))["status"] == "Accepted"
    return hub, cp


def _sent(cp: RawChargePoint, action: str) -> list[dict[str, Any]]:
    return [payload for name, payload in cp.received if name == action]


async def _started(cp: RawChargePoint, transaction_id: str = "TX-1") -> None:
    await cp.call(
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": NOW,
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1},
            "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
        },
    )


# B01-B03: boot ----------------------------------------------------------------------


async def test_tc_b_01_csms_cold_boot_accepted(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    answer = await boot201(cp)
    assert answer["status"] == "Accepted"
    assert answer["interval"] == 30
    assert answer["currentTime"].endswith("Z")
    status = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    assert await cp.call("StatusNotification", status) == {}
    assert "currentTime" in await cp.call("Heartbeat", {})
    await wait_state(hub, "sensor.bay_2_1_status", "Available")


async def test_tc_b_02_csms_cold_boot_pending(ocpp_hub: HubFactory, connect: Connect) -> None:
    """Pending until approved: while Pending the hub may read the station's variables, the
    station may send nothing but BootNotification; after approval the next boot is Accepted."""
    hub = await ocpp_hub(OPEN + "unknown_chargers: pending\n")
    cp = await connect(ws_url(hub, "NEWBIE"), protocol="ocpp2.0.1")
    assert (await boot201(cp))["status"] == "Pending"
    with pytest.raises(ChargerCallError) as info:
        await cp.call(
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
        )
    assert info.value.code == "SecurityError"
    cp.handlers["GetVariables"] = lambda payload: {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "300",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "OfflineThreshold"},
            }
        ]
    }
    answer = await hub.services.call(
        "ocpp",
        "get_variables",
        {
            "charge_point_id": "NEWBIE",
            "variables": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}
            ],
        },
    )
    assert answer["getVariableResult"][0]["attributeValue"] == "300"
    await hub.data[DATA_SYSTEM].approve("NEWBIE")
    # The hub asks for a new boot at once (TriggerMessage), and accepts it.
    trigger = await cp.wait_for_call("TriggerMessage")
    assert trigger == {"requestedMessage": "BootNotification"}
    assert (await boot201(cp, "Triggered"))["status"] == "Accepted"


async def test_tc_b_30_csms_pending_station_sends_unauthorized_messages(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """B02.FR.09 / B03.FR.07: answered Pending, a station that reports its connectors
    anyway (StatusNotification, NotifyEvent) gets CALLERROR SecurityError, and nothing it
    said is taken."""
    hub = await ocpp_hub(OPEN + "unknown_chargers: pending\n")
    cp = await connect(ws_url(hub, "NEWBIE"), protocol="ocpp2.0.1")
    assert (await boot201(cp))["status"] == "Pending"
    status = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    notify = {
        "generatedAt": NOW,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": NOW,
                "trigger": "Delta",
                "actualValue": "Available",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    }
    for action, payload in (("StatusNotification", status), ("NotifyEvent", notify)):
        with pytest.raises(ChargerCallError) as info:
            await cp.call(action, payload)
        assert info.value.code == "SecurityError", action
    assert hub.states.get("sensor.newbie_1_status") is None
    # The connection stays open: BootNotification may be sent again.
    assert (await boot201(cp))["status"] == "Pending"


async def test_tc_b_31_csms_pending_station_triggered_to_boot(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Pending, then approved before the station's interval expires: the hub sends
    TriggerMessage BootNotification at once, accepts the triggered boot and takes the
    connectors' state."""
    hub = await ocpp_hub(OPEN + "unknown_chargers: pending\n")
    cp = await connect(ws_url(hub, "NEWBIE"), protocol="ocpp2.0.1")
    pending = await boot201(cp)
    assert pending["status"] == "Pending"
    await hub.data[DATA_SYSTEM].approve("NEWBIE")
    assert await cp.wait_for_call("TriggerMessage") == {"requestedMessage": "BootNotification"}
    assert (await boot201(cp, "Triggered"))["status"] == "Accepted"
    status = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    assert await cp.call("StatusNotification", status) == {}
    await wait_state(hub, "sensor.newbie_1_status", "Available")


# B05/B06: get and set variables -----------------------------------------------------


async def test_tc_b_06_csms_get_variables_single_value(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["GetVariables"] = lambda payload: {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeType": "Actual",
                "attributeValue": "300",
                **payload["getVariableData"][0],
            }
        ]
    }
    wanted = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}
    answer = await hub.services.call("ocpp", "get_variables", {**CP, "variables": [wanted]})
    # One item: no question about the station's limits, one request as asked.
    assert _sent(cp, "GetVariables") == [{"getVariableData": [wanted]}]
    assert answer["getVariableResult"][0]["attributeValue"] == "300"


async def test_tc_b_07_csms_get_variables_multiple_values(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        results = []
        for item in payload["getVariableData"]:
            known = item["component"]["name"] != "DeviceDataCtrlr"
            results.append(
                {
                    "attributeStatus": "Accepted" if known else "UnknownComponent",
                    **({"attributeValue": "true"} if known else {}),
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return {"getVariableResult": results}

    cp.handlers["GetVariables"] = answer
    wanted = [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}},
        {"component": {"name": "AuthCtrlr"}, "variable": {"name": "AuthorizeRemoteStart"}},
    ]
    result = await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted})
    requests = _sent(cp, "GetVariables")
    # The hub asked the station's limits once; none known, the two go in one request.
    assert requests[0]["getVariableData"][0]["component"] == {"name": "DeviceDataCtrlr"}
    assert requests[1:] == [{"getVariableData": wanted}]
    assert [r["variable"]["name"] for r in result["getVariableResult"]] == [
        "OfflineThreshold",
        "AuthorizeRemoteStart",
    ]


async def test_get_variables_split_by_items_and_bytes_per_message(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """B06: a request larger than the station's ItemsPerMessage / BytesPerMessage goes in
    several calls whose answers are merged in order; the limits are asked for once."""
    hub, cp = await station201(ocpp_hub, connect)
    limits = {"ItemsPerMessage": "2", "BytesPerMessage": "4000"}

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        items = payload["getVariableData"]
        assert len(items) <= 2
        return {
            "getVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "attributeValue": limits.get(
                        item["variable"]["name"], item["variable"]["name"]
                    ),
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in items
            ]
        }

    cp.handlers["GetVariables"] = answer
    wanted = [{"component": {"name": "Ctrlr"}, "variable": {"name": f"Var{n}"}} for n in range(5)]
    result = await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted})
    assert [r["attributeValue"] for r in result["getVariableResult"]] == [
        f"Var{n}" for n in range(5)
    ]
    assert [len(p["getVariableData"]) for p in _sent(cp, "GetVariables")] == [2, 2, 2, 1]
    # Asked once: the next request is split at once.
    cp.received.clear()
    await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted[:3]})
    assert [len(p["getVariableData"]) for p in _sent(cp, "GetVariables")] == [2, 1]
    # Bytes per message, learnt from a report, split too.
    await cp.call(
        "NotifyReport",
        {
            "requestId": 99,
            "generatedAt": NOW,
            "seqNo": 0,
            "reportData": [
                {
                    "component": {"name": "DeviceDataCtrlr"},
                    "variable": {"name": "BytesPerMessage", "instance": "GetVariables"},
                    "variableAttribute": [{"value": "230"}],
                }
            ],
        },
    )
    cp.received.clear()
    await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted[:2]})
    assert [len(p["getVariableData"]) for p in _sent(cp, "GetVariables")] == [1, 1]


async def test_learnt_message_limits_are_forgotten_at_the_next_boot(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A station that boots again (new firmware, new configuration) may have other
    ItemsPerMessage: the hub asks again instead of splitting by what it learnt before."""
    hub, cp = await station201(ocpp_hub, connect)
    limits = {"ItemsPerMessage": "2", "BytesPerMessage": "65536"}

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        items = payload["getVariableData"]
        return {
            "getVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "attributeValue": limits.get(item["variable"]["name"], "1"),
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in items
            ]
        }

    cp.handlers["GetVariables"] = answer
    wanted = [{"component": {"name": "Ctrlr"}, "variable": {"name": f"Var{n}"}} for n in range(4)]
    await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted})
    assert [len(p["getVariableData"]) for p in _sent(cp, "GetVariables")] == [2, 2, 2]
    cp.received.clear()
    await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted})
    assert [len(p["getVariableData"]) for p in _sent(cp, "GetVariables")] == [2, 2]
    # The station reboots with a firmware that takes 10 items a message.
    assert (await boot201(cp, "FirmwareUpdate"))["status"] == "Accepted"
    limits["ItemsPerMessage"] = "10"
    cp.received.clear()
    await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted})
    sent = _sent(cp, "GetVariables")
    assert [item["variable"]["name"] for item in sent[0]["getVariableData"]] == [
        "ItemsPerMessage",
        "BytesPerMessage",
    ]
    assert [len(p["getVariableData"]) for p in sent[1:]] == [4]


async def test_get_and_set_variables_input_out_of_range_is_refused(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    for bad in (
        {"variables": [{"component": {}, "variable": {"name": "X"}}]},
        {"variables": [{"component": {"name": "C" * 51}, "variable": {"name": "X"}}]},
        {"variables": []},
    ):
        with pytest.raises(ServiceValidationError, match=r"component|variables|length|name"):
            await hub.services.call("ocpp", "get_variables", {**CP, **bad})
    with pytest.raises(ServiceValidationError, match=r"attributeValue|length"):
        await hub.services.call(
            "ocpp",
            "set_variables",
            {
                **CP,
                "variables": [
                    {
                        "component": {"name": "C"},
                        "variable": {"name": "X"},
                        "attributeValue": "v" * 1001,
                    }
                ],
            },
        )
    assert _sent(cp, "GetVariables") == []
    assert _sent(cp, "SetVariables") == []


async def test_tc_b_09_csms_set_variables_single_value(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["SetVariables"] = lambda payload: {
        "setVariableResult": [
            {
                "attributeStatus": "Accepted",
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in payload["setVariableData"]
        ]
    }
    item = {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "OfflineThreshold"},
        "attributeValue": "300",
        "attributeType": "Actual",
    }
    result = await hub.services.call("ocpp", "set_variables", {**CP, "variables": [item]})
    assert _sent(cp, "SetVariables") == [{"setVariableData": [item]}]
    assert result["setVariableResult"][0]["attributeStatus"] == "Accepted"


async def test_tc_b_10_csms_set_variables_multiple_values(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted"
                    if item["component"]["name"] != "DeviceDataCtrlr"
                    else "UnknownComponent",
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in payload.get("setVariableData", [])
            ]
        }

    cp.handlers["SetVariables"] = answer
    cp.handlers["GetVariables"] = lambda payload: {
        "getVariableResult": [
            {
                "attributeStatus": "UnknownComponent",
                "component": i["component"],
                "variable": i["variable"],
            }
            for i in payload["getVariableData"]
        ]
    }
    items = [
        {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "OfflineThreshold"},
            "attributeValue": "300",
        },
        {
            "component": {"name": "AuthCtrlr"},
            "variable": {"name": "LocalAuthorizeOffline"},
            "attributeValue": "true",
        },
    ]
    result = await hub.services.call("ocpp", "set_variables", {**CP, "variables": items})
    assert _sent(cp, "SetVariables") == [{"setVariableData": items}]
    assert [r["attributeStatus"] for r in result["setVariableResult"]] == ["Accepted"] * 2


# B07/B08: reports -------------------------------------------------------------------


def _report_part(request_id: int, seq_no: int, tbc: bool, names: list[str]) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "generatedAt": NOW,
        "seqNo": seq_no,
        "tbc": tbc,
        "reportData": [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": name},
                "variableAttribute": [{"type": "Actual", "value": "60", "mutability": "ReadWrite"}],
                "variableCharacteristics": {"dataType": "integer", "supportsMonitoring": False},
            }
            for name in names
        ],
    }


@pytest.mark.parametrize(
    ("test_case", "report_base"),
    [("TC_B_12", "ConfigurationInventory"), ("TC_B_13", "FullInventory")],
)
async def test_tc_b_12_13_csms_get_base_report(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Any, test_case: str, report_base: str
) -> None:
    """TC_B_12_CSMS (ConfigurationInventory) and TC_B_13_CSMS (FullInventory): the hub asks,
    the parts of the requestId are assembled in seqNo order into one stored report, kept
    across a restart."""
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call("ocpp", "get_base_report", {**CP, "report_base": report_base})
    request = await cp.wait_for_call("GetBaseReport")
    assert request == {"requestId": answer["requestId"], "reportBase": report_base}
    assert answer["status"] == "Accepted"
    request_id = request["requestId"]
    completed: list[Any] = []
    hub.bus.listen("ocpp_report_complete", completed.append)
    # Out of order on purpose: seqNo decides.
    assert await cp.call("NotifyReport", _report_part(request_id, 1, True, ["B"])) == {}
    assert await cp.call("NotifyReport", _report_part(request_id, 0, True, ["A"])) == {}
    with pytest.raises(ServiceValidationError):
        # Not complete yet: nothing stored.
        await hub.services.call("ocpp", "get_stored_report", CP)
    assert await cp.call("NotifyReport", _report_part(request_id, 2, False, ["C"])) == {}
    await hub.block_till_done()
    assert completed[0].data["variables"] == 3
    report = await hub.services.call("ocpp", "get_stored_report", CP)
    assert report["request_id"] == request_id
    assert report["kind"] == report_base
    assert report["missing_seq_nos"] == []
    assert [d["variable"]["name"] for d in report["report_data"]] == ["A", "B", "C"]
    assert report["variables"]["OCPPCommCtrlr/A"] == {"Actual": "60"}
    await hub.stop()
    again = await ocpp_hub(OPEN, tmp_path)
    stored = await again.services.call(
        "ocpp", "get_stored_report", {**CP, "request_id": request_id}
    )
    assert stored["variables"]["OCPPCommCtrlr/C"] == {"Actual": "60"}


async def test_get_custom_report_and_report_bounds(ocpp_hub: HubFactory, connect: Connect) -> None:
    """B08 GetReport with criteria; a report with a gap says so; refused criteria are a 400."""
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp",
        "get_report",
        {
            **CP,
            "component_criteria": ["Problem"],
            "component_variable": [{"component": {"name": "Connector", "evse": {"id": 1}}}],
        },
    )
    request = await cp.wait_for_call("GetReport")
    assert request == {
        "requestId": answer["requestId"],
        "componentCriteria": ["Problem"],
        "componentVariable": [{"component": {"name": "Connector", "evse": {"id": 1}}}],
    }
    await cp.call("NotifyReport", _report_part(answer["requestId"], 1, False, ["X"]))
    report = await hub.services.call("ocpp", "get_stored_report", CP)
    assert report["kind"] == "Custom"
    assert report["missing_seq_nos"] == [0]
    with pytest.raises(
        ServiceValidationError, match=r"component_criteria|value must be one of|length"
    ):
        await hub.services.call(
            "ocpp", "get_report", {**CP, "component_criteria": ["A", "B", "C", "D", "E"]}
        )


# B11/B12: reset ---------------------------------------------------------------------


async def test_tc_b_20_csms_reset_without_ongoing_transaction_onidle(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    assert await hub.services.call("ocpp", "reset", {**CP, "type": "OnIdle"}) == {
        "status": "Accepted"
    }
    assert await cp.wait_for_call("Reset") == {"type": "OnIdle"}
    assert (await boot201(cp, "RemoteReset"))["status"] == "Accepted"
    status = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    assert await cp.call("StatusNotification", status) == {}


async def test_tc_b_21_csms_reset_with_ongoing_transaction_onidle(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await _started(cp)
    cp.handlers["Reset"] = lambda payload: {"status": "Scheduled"}
    answer = await hub.services.call("ocpp", "reset", {**CP, "type": "OnIdle"})
    assert answer == {"status": "Scheduled"}
    assert await cp.wait_for_call("Reset") == {"type": "OnIdle"}
    ended = {
        "eventType": "Ended",
        "timestamp": NOW,
        "triggerReason": "EVCommunicationLost",
        "seqNo": 1,
        "transactionInfo": {
            "transactionId": "TX-1",
            "chargingState": "Idle",
            "stoppedReason": "EVDisconnected",
        },
        "evse": {"id": 1, "connectorId": 1},
    }
    assert await cp.call("TransactionEvent", ended) == {}


async def test_tc_b_22_csms_reset_with_ongoing_transaction_immediate(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await _started(cp)
    await hub.services.call("ocpp", "reset", {**CP, "type": "Immediate"})
    assert await cp.wait_for_call("Reset") == {"type": "Immediate"}
    ended = {
        "eventType": "Ended",
        "timestamp": NOW,
        "triggerReason": "ResetCommand",
        "seqNo": 1,
        "transactionInfo": {
            "transactionId": "TX-1",
            "chargingState": "EVConnected",
            "stoppedReason": "ImmediateReset",
        },
    }
    assert await cp.call("TransactionEvent", ended) == {}
    assert (await boot201(cp, "RemoteReset"))["status"] == "Accepted"
    await wait_state(hub, "sensor.bay_2_1_transaction_id", "unknown")


async def test_tc_b_25_csms_reset_evse_without_ongoing_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await hub.services.call("ocpp", "reset", {**CP, "type": "OnIdle", "evse_id": 1})
    assert await cp.wait_for_call("Reset") == {"type": "OnIdle", "evseId": 1}


@pytest.mark.parametrize(
    ("test_case", "reset_type", "answer"),
    [("TC_B_26", "OnIdle", "Scheduled"), ("TC_B_27", "Immediate", "Accepted")],
)
async def test_tc_b_26_27_csms_reset_evse_with_ongoing_transaction(
    ocpp_hub: HubFactory, connect: Connect, test_case: str, reset_type: str, answer: str
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await _started(cp)
    cp.handlers["Reset"] = lambda payload: {"status": answer}
    result = await hub.services.call("ocpp", "reset", {**CP, "type": reset_type, "evse_id": 1})
    assert result == {"status": answer}
    assert await cp.wait_for_call("Reset") == {"type": reset_type, "evseId": 1}


async def test_reset_16_hard_and_soft(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 Reset Hard / Soft; an EVSE reset is 2.0.1 only: a 400, nothing sent."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    target = {"charge_point_id": "CP-1"}
    assert await hub.services.call("ocpp", "reset", {**target, "type": "Hard"}) == {
        "status": "Accepted"
    }
    assert await hub.services.call("ocpp", "reset", {**target, "type": "OnIdle"}) == {
        "status": "Accepted"
    }
    assert _sent(cp, "Reset") == [{"type": "Hard"}, {"type": "Soft"}]
    with pytest.raises(ServiceValidationError, match=r"whole charge point"):
        await hub.services.call("ocpp", "reset", {**target, "evse_id": 1})
    with pytest.raises(ServiceValidationError, match=r"value must be one of|type"):
        await hub.services.call("ocpp", "reset", {**target, "type": "Sideways"})


# B09: network profile ---------------------------------------------------------------


async def test_tc_b_42_csms_set_network_profile_accepted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    data = {
        "configuration_slot": 1,
        "connection_data": {
            "ocpp_csms_url": "wss://csms.example.com/ocpp",
            "security_profile": 2,
            "ocpp_interface": "Wired0",
            "message_timeout": 30,
        },
    }
    assert await hub.services.call("ocpp", "set_network_profile", {**CP, **data}) == {
        "status": "Accepted"
    }
    assert await cp.wait_for_call("SetNetworkProfile") == {
        "configurationSlot": 1,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": "wss://csms.example.com/ocpp",
            "messageTimeout": 30,
            "securityProfile": 2,
            "ocppInterface": "Wired0",
        },
    }
    cp.received.clear()
    plain = {**data["connection_data"], "ocpp_csms_url": "ws://csms.example.com/ocpp"}
    with pytest.raises(ServiceValidationError, match=r"wss"):
        await hub.services.call(
            "ocpp", "set_network_profile", {**CP, **data, "connection_data": plain}
        )
    for bad in ({"security_profile": 7}, {"ocpp_interface": "Pigeon"}, {"ocpp_csms_url": "x"}):
        with pytest.raises(ServiceValidationError, match=r"connection_data"):
            await hub.services.call(
                "ocpp",
                "set_network_profile",
                {**CP, **data, "connection_data": {**data["connection_data"], **bad}},
            )
    assert _sent(cp, "SetNetworkProfile") == []


async def test_tc_b_44_csms_set_network_profile_failed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """B09: the station cannot store the profile (Failed): the caller is told, nothing is
    retried and no upgrade is expected of the station."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["SetNetworkProfile"] = lambda payload: {"status": "Failed"}
    data = {
        "configuration_slot": 2,
        "connection_data": {
            "ocpp_csms_url": "wss://csms.example.com/ocpp",
            "security_profile": 2,
            "ocpp_interface": "Wireless0",
        },
    }
    assert await hub.services.call("ocpp", "set_network_profile", {**CP, **data}) == {
        "status": "Failed"
    }
    [sent] = _sent(cp, "SetNetworkProfile")
    assert sent["configurationSlot"] == 2
    assert sent["connectionData"]["securityProfile"] == 2
    assert sent["connectionData"]["messageTimeout"] == 30
    assert hub.data[DATA_SYSTEM].profile_upgrades == {}


# 1.6: configuration -----------------------------------------------------------------


async def test_tc_021_csms_change_configuration_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot16(cp)
    answer = await hub.services.call(
        "ocpp",
        "change_configuration",
        {"charge_point_id": "CP-1", "key": "MeterValueSampleInterval", "value": 60},
    )
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ChangeConfiguration") == {
        "key": "MeterValueSampleInterval",
        "value": "60",
    }
    with pytest.raises(ServiceValidationError, match=r"key|length"):
        await hub.services.call(
            "ocpp", "change_configuration", {"charge_point_id": "CP-1", "key": "K" * 51, "value": 1}
        )
    # A 2.0.1 station has variables, not keys: a 400 that says so.
    cp2 = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    await boot201(cp2)
    with pytest.raises(ServiceValidationError, match=r"V16 only"):
        await hub.services.call("ocpp", "get_configuration", CP)
    await asyncio.sleep(0)
    assert _sent(cp2, "GetConfiguration") == []


async def test_simulator_reports_its_device_model_in_parts(ocpp_hub: HubFactory) -> None:
    """The simulated 2.0.1 station answers GetBaseReport with NotifyReport parts (tbc) that
    the hub assembles into one stored report; it keeps a network profile in a slot."""
    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    completed = asyncio.Event()
    hub.bus.listen("ocpp_report_complete", lambda event: completed.set())
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="2.0.1", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        answer = await hub.services.call(
            "ocpp", "get_base_report", {**CP, "report_base": "FullInventory"}
        )
        assert answer["status"] == "Accepted"

        await asyncio.wait_for(completed.wait(), 10)
        report = await hub.services.call("ocpp", "get_stored_report", CP)
        assert report["request_id"] == answer["requestId"]
        assert report["parts"] > 1
        assert report["missing_seq_nos"] == []
        assert report["variables"]["SecurityCtrlr/Identity"] == {"Actual": "CP-2"}
        summary = await hub.services.call(
            "ocpp", "get_base_report", {**CP, "report_base": "SummaryInventory"}
        )
        assert summary["status"] == "NotSupported"
        profile = {
            "configuration_slot": 1,
            "connection_data": {
                "ocpp_csms_url": "ws://127.0.0.1:1/ocpp",
                "security_profile": 0,
                "ocpp_interface": "Wired0",
            },
        }
        assert await hub.services.call("ocpp", "set_network_profile", {**CP, **profile}) == {
            "status": "Accepted"
        }
        rejected = {**profile, "configuration_slot": 99}
        assert await hub.services.call("ocpp", "set_network_profile", {**CP, **rejected}) == {
            "status": "Rejected"
        }


async def test_simulator_device_model_has_message_limits(ocpp_hub: HubFactory) -> None:
    """The simulated 2.0.1 station reports DeviceDataCtrlr ItemsPerMessage / BytesPerMessage
    per instance; the hub learns them from the report and splits a larger GetVariables by
    them. Its write-only password is reported without a value."""
    from integrations.ocpp.features.provisioning import DATA_PROVISIONING
    from integrations.ocpp.simulator import SimulatedChargePoint
    from integrations.ocpp.simulator.features.provisioning import ITEMS_PER_MESSAGE

    hub = await ocpp_hub(OPEN)
    completed = asyncio.Event()
    hub.bus.listen("ocpp_report_complete", lambda event: completed.set())
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="2.0.1", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        await hub.services.call("ocpp", "get_base_report", {**CP, "report_base": "FullInventory"})
        await asyncio.wait_for(completed.wait(), 10)
        report = await hub.services.call("ocpp", "get_stored_report", CP)
        values = report["variables"]
        for instance in ("GetReport", "GetVariables", "SetVariables"):
            assert values[f"DeviceDataCtrlr/ItemsPerMessage:{instance}"] == {
                "Actual": str(ITEMS_PER_MESSAGE)
            }
            assert values[f"DeviceDataCtrlr/BytesPerMessage:{instance}"]["Actual"].isdigit()
        assert values["SecurityCtrlr/BasicAuthPassword"] == {"Actual": None}
        limits = hub.data[DATA_PROVISIONING].limits["CP-2"]
        assert limits["GetVariables"]["items"] == ITEMS_PER_MESSAGE
        sim.received_calls.clear()
        wanted = [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ] * (ITEMS_PER_MESSAGE + 2)
        result = await hub.services.call("ocpp", "get_variables", {**CP, "variables": wanted})
        assert len(result["getVariableResult"]) == ITEMS_PER_MESSAGE + 2
        sizes = [
            len(payload["getVariableData"])
            for action, payload in sim.received_calls
            if action == "GetVariables"
        ]
        assert sizes == [ITEMS_PER_MESSAGE, 2]
