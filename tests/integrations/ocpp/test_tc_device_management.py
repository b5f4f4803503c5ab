"""Advanced Device Management (N) as the OCA's CSMS test cases describe it, and the 1.6
security whitepaper's GetLog: the test plays the charging station over a real websocket and
checks the frames the hub sends and its answers."""

from __future__ import annotations

from typing import Any

import pytest

from hub.core import Hub
from hub.exceptions import ServiceValidationError
from integrations.alerts import alert_manager
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    ErrorAnswer,
    HubFactory,
    RawChargePoint,
    ws_url,
)
from tests.integrations.ocpp.test_central_system import NOW, OPEN, boot16

TARGET = {"charge_point_id": "CP-2"}
EVSE_AVAILABILITY = {
    "component": {"name": "EVSE", "evse": {"id": 1}},
    "variable": {"name": "AvailabilityState"},
}
STATION_AVAILABILITY = {
    "component": {"name": "ChargingStation"},
    "variable": {"name": "AvailabilityState"},
}
STATION_POWER = {"component": {"name": "ChargingStation"}, "variable": {"name": "Power"}}


async def station201(hub: Hub, connect: Connect) -> RawChargePoint:
    """CP-2 (Bay 2) booted over 2.0.1, its EVSE 1 available."""
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    answer = await cp.call(
        "BootNotification",
        {"chargingStation": {"model": "W", "vendorName": "V"}, "reason": "PowerUp"},
    )
    assert answer["status"] == "Accepted"
    await cp.call(
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    )
    return cp


async def ocpp(hub: Hub, service: str, data: dict[str, Any]) -> Any:
    return await hub.services.call("ocpp", service, {**TARGET, **data})


def calls(cp: RawChargePoint, action: str) -> list[dict[str, Any]]:
    return [payload for name, payload in cp.received if name == action]


def items_per_message(limit: int | None) -> Any:
    """A station's answer to GetVariables MonitoringCtrlr.ItemsPerMessage."""

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        asked = payload["getVariableData"][0]
        result: dict[str, Any] = {
            "attributeStatus": "Accepted" if limit else "UnknownVariable",
            "component": asked["component"],
            "variable": asked["variable"],
        }
        if limit:
            result["attributeValue"] = str(limit)
        return {"getVariableResult": [result]}

    return answer


def monitoring_results(payload: dict[str, Any], status: str = "Accepted") -> dict[str, Any]:
    return {
        "setMonitoringResult": [
            {
                "id": 100 + index,
                "status": status,
                "type": item["type"],
                "severity": item["severity"],
                "component": item["component"],
                "variable": item["variable"],
            }
            for index, item in enumerate(payload["setMonitoringData"])
        ]
    }


def delta(target: dict[str, Any]) -> dict[str, Any]:
    return {"value": 1, "type": "Delta", "severity": 8, **target}


# N02 GetMonitoringReport ----------------------------------------------------------------


async def _report(cp: RawChargePoint, request_id: int, monitors: list[dict[str, Any]]) -> None:
    """The station's NotifyMonitoringReport in two parts (tbc), each answered empty."""
    for seq_no, part in enumerate((monitors[:1], monitors[1:])):
        payload: dict[str, Any] = {
            "requestId": request_id,
            "seqNo": seq_no,
            "generatedAt": NOW,
            "tbc": seq_no == 0,
        }
        if part:
            payload["monitor"] = part
        assert await cp.call("NotifyMonitoringReport", payload) == {}


def _monitor(target: dict[str, Any], monitor_id: int, kind: str = "UpperThreshold") -> Any:
    return {
        **target,
        "variableMonitoring": [
            {"id": monitor_id, "transaction": False, "value": 100.0, "type": kind, "severity": 5}
        ],
    }


async def _empty_then_accepted(
    hub: Hub, cp: RawChargePoint, first: dict[str, Any], second: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Ask twice: the station has nothing for the first, a report for the second."""
    answers = iter(({"status": "EmptyResultSet"}, {"status": "Accepted"}))
    cp.handlers["GetMonitoringReport"] = lambda payload: next(answers)
    result = await ocpp(hub, "get_monitoring_report", first)
    assert result["status"] == "EmptyResultSet"
    result = await ocpp(hub, "get_monitoring_report", second)
    assert result["status"] == "Accepted"
    sent = calls(cp, "GetMonitoringReport")
    assert len(sent) == 2
    assert sent[1]["requestId"] == result["requestId"] != sent[0]["requestId"]
    return sent[0], sent[1], result["requestId"]


async def test_tc_n_01_csms_get_monitoring_report_with_monitoring_criteria(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    first, second, request_id = await _empty_then_accepted(
        hub,
        cp,
        {"monitoring_criteria": ["DeltaMonitoring"]},
        {"monitoring_criteria": ["ThresholdMonitoring"]},
    )
    assert first["monitoringCriteria"] == ["DeltaMonitoring"]
    assert second["monitoringCriteria"] == ["ThresholdMonitoring"]
    assert "componentVariable" not in first
    assert "componentVariable" not in second
    reported = [_monitor(STATION_POWER, 1), _monitor(EVSE_AVAILABILITY, 2, "LowerThreshold")]
    await _report(cp, request_id, reported)
    kept = await ocpp(hub, "get_monitors", {})
    assert kept["last_report"]["request_id"] == request_id
    assert [m["id"] for m in kept["last_report"]["monitors"]] == [1, 2]
    assert {m["id"] for m in kept["monitors"]} == {1, 2}


async def test_tc_n_02_csms_get_monitoring_report_with_component_variable(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    first, second, request_id = await _empty_then_accepted(
        hub,
        cp,
        {"component_variables": [STATION_POWER]},
        {"component_variables": [STATION_POWER, EVSE_AVAILABILITY]},
    )
    assert first["componentVariable"] == [STATION_POWER]
    assert second["componentVariable"][1] == EVSE_AVAILABILITY
    assert "monitoringCriteria" not in first
    assert "monitoringCriteria" not in second
    await _report(cp, request_id, [_monitor(EVSE_AVAILABILITY, 1, "Delta")])
    kept = await ocpp(hub, "get_monitors", {})
    assert kept["monitors"][0]["component"] == EVSE_AVAILABILITY["component"]


async def test_tc_n_03_csms_get_monitoring_report_with_criteria_and_component_variable(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    first, second, request_id = await _empty_then_accepted(
        hub,
        cp,
        {"monitoring_criteria": ["DeltaMonitoring"], "component_variables": [EVSE_AVAILABILITY]},
        {"monitoring_criteria": ["ThresholdMonitoring"], "component_variables": [STATION_POWER]},
    )
    assert (first["monitoringCriteria"], first["componentVariable"]) == (
        ["DeltaMonitoring"],
        [EVSE_AVAILABILITY],
    )
    assert (second["monitoringCriteria"], second["componentVariable"]) == (
        ["ThresholdMonitoring"],
        [STATION_POWER],
    )
    await _report(cp, request_id, [_monitor(STATION_POWER, 1)])


async def test_tc_n_60_csms_get_monitoring_report_with_criteria_and_component_list(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    both = [STATION_AVAILABILITY, EVSE_AVAILABILITY]
    first, second, request_id = await _empty_then_accepted(
        hub,
        cp,
        {"monitoring_criteria": ["DeltaMonitoring"], "component_variables": both},
        {"monitoring_criteria": ["ThresholdMonitoring"], "component_variables": both},
    )
    assert first["componentVariable"] == second["componentVariable"] == both
    await _report(
        cp, request_id, [_monitor(STATION_AVAILABILITY, 1), _monitor(EVSE_AVAILABILITY, 2)]
    )
    kept = await ocpp(hub, "get_monitors", {})
    assert len(kept["last_report"]["monitors"]) == 2


async def test_tc_n_47_csms_get_monitoring_report_all(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    result = await ocpp(hub, "get_monitoring_report", {})
    assert result["status"] == "Accepted"
    sent = await cp.wait_for_call("GetMonitoringReport")
    assert set(sent) == {"requestId"}
    await _report(cp, sent["requestId"], [_monitor(STATION_POWER, 1), _monitor(STATION_POWER, 3)])
    kept = await ocpp(hub, "get_monitors", {})
    assert [m["id"] for m in kept["last_report"]["monitors"]] == [1, 3]


# N03 SetMonitoringBase, N05 SetMonitoringLevel ------------------------------------------


async def test_tc_n_05_csms_set_monitoring_base(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    for base in ("All", "FactoryDefault", "HardWiredOnly"):
        answer = await ocpp(hub, "set_monitoring_base", {"monitoring_base": base})
        assert answer["status"] == "Accepted"
    assert [p["monitoringBase"] for p in calls(cp, "SetMonitoringBase")] == [
        "All",
        "FactoryDefault",
        "HardWiredOnly",
    ]
    with pytest.raises(ServiceValidationError):
        await ocpp(hub, "set_monitoring_base", {"monitoring_base": "Everything"})


async def test_tc_n_16_csms_set_monitoring_level(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    assert (await ocpp(hub, "set_monitoring_level", {"severity": 4}))["status"] == "Accepted"
    assert calls(cp, "SetMonitoringLevel") == [{"severity": 4}]


async def test_tc_n_17_csms_set_monitoring_level_out_of_range(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["SetMonitoringLevel"] = lambda payload: {"status": "Rejected"}
    assert (await ocpp(hub, "set_monitoring_level", {"severity": 4}))["status"] == "Rejected"
    assert calls(cp, "SetMonitoringLevel") == [{"severity": 4}]
    # A severity outside 0..9 never leaves the hub.
    with pytest.raises(ServiceValidationError):
        await ocpp(hub, "set_monitoring_level", {"severity": 10})
    assert len(calls(cp, "SetMonitoringLevel")) == 1


# N04 SetVariableMonitoring ---------------------------------------------------------------


async def test_tc_n_08_csms_set_variable_monitoring_one_element(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["GetVariables"] = items_per_message(None)
    cp.handlers["SetVariableMonitoring"] = monitoring_results
    answer = await ocpp(hub, "set_variable_monitoring", {"monitors": [delta(EVSE_AVAILABILITY)]})
    assert [r["status"] for r in answer["setMonitoringResult"]] == ["Accepted"]
    (sent,) = calls(cp, "SetVariableMonitoring")
    assert sent["setMonitoringData"] == [
        {"value": 1.0, "type": "Delta", "severity": 8, **EVSE_AVAILABILITY}
    ]
    kept = await ocpp(hub, "get_monitors", {})
    assert kept["monitors"][0]["id"] == 100
    assert kept["monitors"][0]["severity"] == 8


async def test_tc_n_09_csms_set_variable_monitoring_multiple_elements(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["GetVariables"] = items_per_message(None)
    cp.handlers["SetVariableMonitoring"] = monitoring_results
    monitors = [delta(EVSE_AVAILABILITY), delta(STATION_AVAILABILITY)]
    answer = await ocpp(hub, "set_variable_monitoring", {"monitors": monitors})
    assert len(answer["setMonitoringResult"]) == 2
    (sent,) = calls(cp, "SetVariableMonitoring")
    assert [item["component"] for item in sent["setMonitoringData"]] == [
        EVSE_AVAILABILITY["component"],
        STATION_AVAILABILITY["component"],
    ]
    assert {item["severity"] for item in sent["setMonitoringData"]} == {8}


async def test_set_variable_monitoring_is_split_by_items_per_message(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["GetVariables"] = items_per_message(2)
    cp.handlers["SetVariableMonitoring"] = monitoring_results
    monitors = [delta(EVSE_AVAILABILITY)] * 5
    answer = await ocpp(hub, "set_variable_monitoring", {"monitors": monitors})
    assert len(answer["setMonitoringResult"]) == 5
    asked = (await cp.wait_for_call("GetVariables"))["getVariableData"][0]
    assert asked["component"] == {"name": "MonitoringCtrlr"}
    assert asked["variable"] == {"name": "ItemsPerMessage", "instance": "SetVariableMonitoring"}
    assert [len(p["setMonitoringData"]) for p in calls(cp, "SetVariableMonitoring")] == [2, 2, 1]


async def test_set_variable_monitoring_input_is_checked(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    bad = [
        {"monitors": []},
        {"monitors": [{**delta(EVSE_AVAILABILITY), "severity": 12}]},
        {"monitors": [{**delta(EVSE_AVAILABILITY), "type": "Sometimes"}]},
        {"monitors": [{**delta(EVSE_AVAILABILITY), "component": {"name": "x" * 51}}]},
        {"monitors": [{**delta(EVSE_AVAILABILITY), "value": "hot"}]},
    ]
    for data in bad:
        with pytest.raises(ServiceValidationError):
            await ocpp(hub, "set_variable_monitoring", data)
    assert calls(cp, "SetVariableMonitoring") == []


# N06 ClearVariableMonitoring -------------------------------------------------------------


async def test_tc_n_18_csms_clear_monitoring_too_many_elements(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["GetVariables"] = items_per_message(3)
    cp.handlers["ClearVariableMonitoring"] = lambda payload: {
        "clearMonitoringResult": [{"id": i, "status": "Accepted"} for i in payload["id"]]
    }
    ids = list(range(1, 8))
    answer = await ocpp(hub, "clear_variable_monitoring", {"ids": ids})
    assert [r["id"] for r in answer["clearMonitoringResult"]] == ids
    asked = (await cp.wait_for_call("GetVariables"))["getVariableData"][0]
    assert asked["variable"] == {"name": "ItemsPerMessage", "instance": "ClearVariableMonitoring"}
    sent = calls(cp, "ClearVariableMonitoring")
    assert len(sent) >= 2
    assert all(len(p["id"]) <= 3 for p in sent)
    assert [i for p in sent for i in p["id"]] == ids


async def test_tc_n_44_csms_clear_monitoring_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["GetVariables"] = items_per_message(None)
    cp.handlers["SetVariableMonitoring"] = monitoring_results
    await ocpp(hub, "set_variable_monitoring", {"monitors": [delta(EVSE_AVAILABILITY)]})
    cp.handlers["ClearVariableMonitoring"] = lambda payload: {
        "clearMonitoringResult": [{"id": i, "status": "Rejected"} for i in payload["id"]]
    }
    answer = await ocpp(hub, "clear_variable_monitoring", {"ids": [100]})
    assert answer["clearMonitoringResult"] == [{"id": 100, "status": "Rejected"}]
    assert calls(cp, "ClearVariableMonitoring") == [{"id": [100]}]
    # Rejected: the monitor is still there.
    assert [m["id"] for m in (await ocpp(hub, "get_monitors", {}))["monitors"]] == [100]


# N07, N08 NotifyEvent ---------------------------------------------------------------------


def _event(event_id: int, target: dict[str, Any], value: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "timestamp": NOW,
        "trigger": "Alerting",
        "actualValue": value,
        "eventNotificationType": "HardWiredMonitor",
        **target,
        **extra,
    }


async def _notify(cp: RawChargePoint, *events: dict[str, Any]) -> Any:
    return await cp.call("NotifyEvent", {"generatedAt": NOW, "seqNo": 0, "eventData": list(events)})


async def test_tc_n_21_csms_alert_event_hard_wired_monitor(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    assert await _notify(cp, _event(1, EVSE_AVAILABILITY, "1")) == {}
    state = hub.states.get("sensor.bay_2_1_evse_availabilitystate")
    assert state is not None
    assert state.state == "1"
    assert state.attributes["event_notification_type"] == "HardWiredMonitor"


async def test_tc_n_24_csms_periodic_event(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    temperature = {
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Temperature"},
    }
    for index in range(3):
        event = _event(index + 1, temperature, str(30 + index), trigger="Periodic")
        assert await _notify(cp, event) == {}
    state = hub.states.get("sensor.bay_2_1_evse_temperature")
    assert state is not None
    assert state.state == "32"
    assert state.attributes["unit_of_measurement"] == "°C"
    assert state.attributes["trigger"] == "Periodic"


async def test_grave_monitor_event_raises_and_resolves_an_alert(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A monitored over-temperature at severity 2 (≤ monitor_alert_severity) is an alert the
    alerts and automations see; its clearing resolves it. A door contact is a binary sensor."""
    hub = await ocpp_hub(OPEN + "monitor_alert_severity: 3\n")
    cp = await station201(hub, connect)
    seen: list[dict[str, Any]] = []
    hub.bus.listen("ocpp_monitor_alert", lambda event: seen.append(dict(event.data)))
    temperature = {
        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
        "variable": {"name": "Temperature"},
    }
    door = {"component": {"name": "AccessBarrier"}, "variable": {"name": "Active"}}
    cp.handlers["GetVariables"] = items_per_message(None)
    cp.handlers["SetVariableMonitoring"] = monitoring_results
    await ocpp(
        hub,
        "set_variable_monitoring",
        {
            "monitors": [
                {"value": 80, "type": "UpperThreshold", "severity": 2, **temperature},
                {"value": 1, "type": "Delta", "severity": 7, **door},
            ]
        },
    )
    hot = _event(5, temperature, "91.5", variableMonitoringId=100)
    opened = _event(6, door, "true", variableMonitoringId=101, trigger="Delta")
    assert await _notify(cp, hot, opened) == {}
    state = hub.states.get("sensor.bay_2_1_connector_c1_temperature")
    assert state is not None
    assert state.state == "91.5"
    assert state.attributes["severity"] == 2
    assert hub.states.get("binary_sensor.bay_2_accessbarrier_active").state == "on"
    # Only the grave one (2 ≤ 3) is an alert; the door (7) is a state change.
    assert [(e["monitor_id"], e["severity"], e["cleared"]) for e in seen] == [(100, 2, False)]
    alerts = [a for a in alert_manager(hub).open() if a.key.startswith("ocpp_monitor:")]
    assert [(a.key, a.severity) for a in alerts] == [("ocpp_monitor:CP-2:100", "critical")]
    cleared = _event(7, temperature, "70", variableMonitoringId=100, cleared=True)
    assert await _notify(cp, cleared) == {}
    assert not [a for a in alert_manager(hub).open() if a.key.startswith("ocpp_monitor:")]
    assert seen[-1]["cleared"] is True


async def test_notify_event_keeps_connector_status_and_problem(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    connector = {"component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}}
    await _notify(
        cp,
        _event(1, {**connector, "variable": {"name": "AvailabilityState"}}, "Faulted"),
        _event(2, {**connector, "variable": {"name": "Problem"}}, "true", techCode="E12"),
    )
    assert hub.states.get("sensor.bay_2_1_status").state == "Faulted"
    assert hub.states.get("sensor.bay_2_1_error_code").state == "E12"


async def test_hostile_notify_event_is_refused_and_bounded(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN + "max_monitor_entities: 3\n")
    cp = await station201(hub, connect)
    far = {"component": {"name": "EVSE", "evse": {"id": 99999}}, "variable": {"name": "X"}}
    with pytest.raises(ChargerCallError):
        await _notify(cp, _event(1, far, "1"))
    before = len(hub.states.all())
    events = [
        _event(i, {"component": {"name": f"C{i}"}, "variable": {"name": "V"}}, "1")
        for i in range(10)
    ]
    assert await _notify(cp, *events) == {}
    assert len(hub.states.all()) - before == 3  # at most max_monitor_entities new entities
    long_value = _event(20, {"component": {"name": "C0"}, "variable": {"name": "V"}}, "x" * 2500)
    assert await _notify(cp, long_value) == {}
    assert len(hub.states.get("sensor.bay_2_c0_v").state) == 255


# N01 GetLog (2.0.1) and the 1.6 security whitepaper's GetLog -------------------------------


async def _log_upload(
    hub: Hub, cp: RawChargePoint, log_type: str, entity: str = "sensor.bay_2_diagnostics_status"
) -> None:
    cp.handlers["GetLog"] = lambda payload: {"status": "Accepted", "filename": "log.tgz"}
    answer = await ocpp(
        hub, "get_log", {"location": "https://logs.example.com/upload", "log_type": log_type}
    )
    assert answer["status"] == "Accepted"
    sent = await cp.wait_for_call("GetLog")
    assert sent["logType"] == log_type
    assert sent["log"] == {"remoteLocation": "https://logs.example.com/upload"}
    assert sent["requestId"] == answer["requestId"]
    for status in ("Uploading", "Uploaded"):
        assert (
            await cp.call(
                "LogStatusNotification", {"status": status, "requestId": sent["requestId"]}
            )
            == {}
        )
        state = hub.states.get(entity)
        assert state is not None
        assert state.state == status
        assert state.attributes["request_id"] == sent["requestId"]
        assert state.attributes["log_type"] == log_type
    logs = (await ocpp(hub, "get_monitors", {}))["logs"]
    assert logs[str(sent["requestId"])]["status"] == "Uploaded"


async def test_tc_n_25_csms_retrieve_log_diagnostics_log_success(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    await _log_upload(hub, cp, "DiagnosticsLog")


async def test_tc_n_35_csms_retrieve_log_security_log_success(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    await _log_upload(hub, cp, "SecurityLog")


async def test_tc_n_34_csms_retrieve_log_rejected(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    cp.handlers["GetLog"] = lambda payload: {"status": "Rejected"}
    answer = await ocpp(hub, "get_log", {"location": "https://logs.example.com/upload"})
    assert answer["status"] == "Rejected"
    assert calls(cp, "GetLog")[0]["logType"] == "DiagnosticsLog"
    with pytest.raises(ServiceValidationError):
        await ocpp(hub, "get_log", {"location": "not a url"})
    with pytest.raises(ServiceValidationError):
        await ocpp(hub, "get_log", {"location": "https://x.example.com/" + "a" * 600})


async def test_tc_079_csms_get_security_log_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 security whitepaper: GetLog SecurityLog, LogStatusNotification by requestId."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-2"))
    await boot16(cp)
    await _log_upload(hub, cp, "SecurityLog")


# N09, N10 CustomerInformation ---------------------------------------------------------------


async def _customer(hub: Hub, cp: RawChargePoint, data: dict[str, Any]) -> dict[str, Any]:
    answer = await ocpp(hub, "customer_information", data)
    assert answer["status"] == "Accepted"
    sent = calls(cp, "CustomerInformation")[-1]
    assert sent["requestId"] == answer["requestId"]
    return sent


async def test_tc_n_28_csms_get_customer_information_accepted_no_data(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    sent = await _customer(hub, cp, {"id_token": "TAG-OK", "id_token_type": "ISO14443"})
    assert sent["report"] is True
    assert sent["clear"] is False
    assert sent["idToken"] == {"idToken": "TAG-OK", "type": "ISO14443"}
    notify = {"data": "", "seqNo": 0, "generatedAt": NOW, "requestId": sent["requestId"]}
    assert await cp.call("NotifyCustomerInformation", notify) == {}
    kept = await ocpp(hub, "get_customer_information", {"request_id": sent["requestId"]})
    assert kept["customer_information"][0]["data"] == ""


async def test_tc_n_32_csms_clear_customer_information_no_report(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    sent = await _customer(hub, cp, {"id_token": "TAG-OK", "report": False, "clear": True})
    assert (sent["report"], sent["clear"]) == (False, True)
    assert sent["idToken"] == {"idToken": "TAG-OK", "type": "Central"}
    notify = {"data": "cleared", "seqNo": 0, "generatedAt": NOW, "requestId": sent["requestId"]}
    assert await cp.call("NotifyCustomerInformation", notify) == {}


async def test_customer_information_is_assembled_and_checked(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    seen: list[dict[str, Any]] = []
    hub.bus.listen("ocpp_customer_information", lambda event: seen.append(dict(event.data)))
    certificate = {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "ab" * 32,
        "issuerKeyHash": "cd" * 32,
        "serialNumber": "0123",
    }
    sent = await _customer(hub, cp, {"customer_certificate": certificate})
    assert sent["customerCertificate"] == certificate
    parts = ("name: A. Driver; ", "sessions: 12")
    # Two parts: kept whole once the last (tbc false) came.
    await cp.call(
        "NotifyCustomerInformation",
        {
            "data": parts[0],
            "seqNo": 0,
            "tbc": True,
            "generatedAt": NOW,
            "requestId": sent["requestId"],
        },
    )
    assert seen == []
    await cp.call(
        "NotifyCustomerInformation",
        {"data": parts[1], "seqNo": 1, "generatedAt": NOW, "requestId": sent["requestId"]},
    )
    kept = (await ocpp(hub, "get_customer_information", {}))["customer_information"]
    assert kept[-1]["data"] == "".join(parts)
    # The bus hears that it came, never the personal data.
    assert seen == [{"charge_point_id": "CP-2", "request_id": sent["requestId"], "length": 29}]
    identifier = await _customer(hub, cp, {"customer_identifier": "driver-42"})
    assert identifier["customerIdentifier"] == "driver-42"
    for data in ({}, {"id_token": "TAG-OK", "report": False}):
        with pytest.raises(ServiceValidationError):
            await ocpp(hub, "customer_information", data)
    with pytest.raises(ServiceValidationError):
        await ocpp(hub, "customer_information", {"customer_identifier": "x" * 65})


async def test_monitoring_services_need_a_201_station(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-2"))
    await boot16(cp)
    cp.handlers["SetMonitoringLevel"] = lambda payload: ErrorAnswer("NotImplemented", "1.6")
    for service, data in (
        ("set_monitoring_level", {"severity": 4}),
        ("get_monitoring_report", {}),
        ("customer_information", {"id_token": "TAG-OK"}),
    ):
        with pytest.raises(ServiceValidationError, match=r"2\.0\.1"):
            await ocpp(hub, service, data)
    assert calls(cp, "SetMonitoringLevel") == []


async def test_simulator_keeps_monitors_and_reports_them_in_parts(ocpp_hub: HubFactory) -> None:
    """The simulated 2.0.1 station takes monitors, reports them in NotifyMonitoringReport
    parts the hub assembles, clears them, and answers CustomerInformation."""
    import asyncio

    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    reported = asyncio.Event()
    hub.bus.listen("ocpp_monitoring_report", lambda event: reported.set())
    customer = asyncio.Event()
    hub.bus.listen("ocpp_customer_information", lambda event: customer.set())
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="2.0.1", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        monitors = [
            delta(EVSE_AVAILABILITY),
            {"value": 80, "type": "UpperThreshold", "severity": 2, **STATION_POWER},
            {"value": 1, "type": "LowerThreshold", "severity": 4, **STATION_POWER},
            delta({"component": {"name": "Nowhere"}, "variable": {"name": "X"}}),
        ]
        answer = await ocpp(hub, "set_variable_monitoring", {"monitors": monitors})
        assert [r["status"] for r in answer["setMonitoringResult"]] == [
            "Accepted",
            "Accepted",
            "Accepted",
            "UnknownComponent",
        ]
        empty = await ocpp(
            hub, "get_monitoring_report", {"monitoring_criteria": ["PeriodicMonitoring"]}
        )
        assert empty["status"] == "EmptyResultSet"
        answer = await ocpp(hub, "get_monitoring_report", {})
        assert answer["status"] == "Accepted"
        await asyncio.wait_for(reported.wait(), 10)
        kept = await ocpp(hub, "get_monitors", {})
        assert kept["last_report"]["request_id"] == answer["requestId"]
        assert len(kept["last_report"]["monitors"]) == 3
        ids = [m["id"] for m in kept["last_report"]["monitors"]]
        cleared = await ocpp(hub, "clear_variable_monitoring", {"ids": [*ids, 999]})
        assert [r["status"] for r in cleared["clearMonitoringResult"]] == [
            "Accepted",
            "Accepted",
            "Accepted",
            "NotFound",
        ]
        assert (await ocpp(hub, "get_monitors", {}))["monitors"] == []
        assert (await ocpp(hub, "set_monitoring_level", {"severity": 4}))["status"] == "Accepted"
        info = await ocpp(hub, "customer_information", {"id_token": "TAG-OK"})
        assert info["status"] == "Accepted"
        await asyncio.wait_for(customer.wait(), 10)
        kept_info = await ocpp(hub, "get_customer_information", {})
        assert "TAG-OK" in kept_info["customer_information"][-1]["data"]


async def test_tc_045_1_csms_get_diagnostics_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-2"))
    await boot16(cp)
    cp.handlers["GetDiagnostics"] = lambda payload: {"fileName": "diag.zip"}
    answer = await ocpp(
        hub,
        "get_diagnostics",
        {"location": "ftp://diag.example.com/in", "retries": 2, "start_time": NOW},
    )
    assert answer == {"fileName": "diag.zip"}
    assert calls(cp, "GetDiagnostics") == [
        {"location": "ftp://diag.example.com/in", "retries": 2, "startTime": NOW}
    ]
    for status in ("Uploading", "Uploaded"):
        assert await cp.call("DiagnosticsStatusNotification", {"status": status}) == {}
        state = hub.states.get("sensor.bay_2_diagnostics_status")
        assert state is not None
        assert state.state == status


async def test_tc_045_2_csms_get_diagnostics_upload_failed_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_045_2: GetDiagnostics answered, then Uploading and UploadFailed, each answered
    and shown."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-2"))
    await boot16(cp)
    cp.handlers["GetDiagnostics"] = lambda payload: {"fileName": "diag.zip"}
    await ocpp(hub, "get_diagnostics", {"location": "ftp://diag.example.com/in"})
    assert calls(cp, "GetDiagnostics") == [{"location": "ftp://diag.example.com/in"}]
    for status in ("Uploading", "UploadFailed"):
        assert await cp.call("DiagnosticsStatusNotification", {"status": status}) == {}
        state = hub.states.get("sensor.bay_2_diagnostics_status")
        assert state is not None
        assert state.state == status


async def _customer_flow(
    hub: Hub, cp: RawChargePoint, data: dict[str, Any], answer: str, notify: str | None
) -> dict[str, Any]:
    """The hub asks; the station answers and, when it accepted, notifies with notify."""
    cp.handlers["CustomerInformation"] = lambda payload: {"status": answer}
    result = await ocpp(hub, "customer_information", {"id_token": "TAG-OK", **data})
    assert result["status"] == answer
    sent = calls(cp, "CustomerInformation")[-1]
    assert sent["idToken"] == {"idToken": "TAG-OK", "type": "Central"}
    if notify is not None:
        message = {"data": notify, "seqNo": 0, "generatedAt": NOW, "requestId": sent["requestId"]}
        assert await cp.call("NotifyCustomerInformation", message) == {}
        kept = await ocpp(hub, "get_customer_information", {"request_id": sent["requestId"]})
        assert kept["customer_information"][0]["data"] == notify
    return sent


async def test_tc_n_27_csms_get_customer_information_accepted_with_data(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    sent = await _customer_flow(hub, cp, {}, "Accepted", "card TAG-OK: 12 sessions")
    assert sent["report"] is True
    assert sent["clear"] is False


async def test_tc_n_29_csms_get_customer_information_not_accepted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    sent = await _customer_flow(hub, cp, {}, "Rejected", None)
    assert sent["report"] is True
    kept = await ocpp(hub, "get_customer_information", {"request_id": sent["requestId"]})
    assert kept["customer_information"] == []


async def test_tc_n_30_csms_clear_customer_information_clear_and_report_with_data(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    sent = await _customer_flow(hub, cp, {"clear": True}, "Accepted", "card TAG-OK: cleared")
    assert (sent["report"], sent["clear"]) == (True, True)


async def test_tc_n_31_csms_clear_customer_information_clear_and_report_no_data(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    sent = await _customer_flow(hub, cp, {"clear": True}, "Accepted", "")
    assert (sent["report"], sent["clear"]) == (True, True)


async def test_tc_n_36_csms_retrieve_log_second_request(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    location = {"location": "https://logs.example.com/upload"}
    first = await ocpp(hub, "get_log", location)
    assert first["status"] == "Accepted"
    status = {"status": "Uploading", "requestId": first["requestId"]}
    assert await cp.call("LogStatusNotification", status) == {}
    cp.handlers["GetLog"] = lambda payload: {"status": "AcceptedCanceled"}
    second = await ocpp(hub, "get_log", location)
    assert second["status"] == "AcceptedCanceled"
    assert second["requestId"] != first["requestId"]
    for request_id, status_text in (
        (first["requestId"], "AcceptedCanceled"),
        (second["requestId"], "Uploading"),
        (second["requestId"], "Uploaded"),
    ):
        message = {"status": status_text, "requestId": request_id}
        assert await cp.call("LogStatusNotification", message) == {}
    logs = (await ocpp(hub, "get_monitors", {}))["logs"]
    assert logs[str(first["requestId"])]["status"] == "AcceptedCanceled"
    assert logs[str(second["requestId"])]["status"] == "Uploaded"
    state = hub.states.get("sensor.bay_2_diagnostics_status")
    assert state is not None
    assert state.attributes["request_id"] == second["requestId"]


async def test_tc_n_48_csms_alert_event_write_only_variable(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    assert await _notify(cp, _event(1, EVSE_AVAILABILITY, "")) == {}
    state = hub.states.get("sensor.bay_2_1_evse_availabilitystate")
    assert state is not None
    assert state.state == ""


async def test_tc_n_49_csms_alert_event_threshold_cleared_after_reboot(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    assert await _notify(cp, _event(1, EVSE_AVAILABILITY, "0", cleared=True)) == {}
    state = hub.states.get("sensor.bay_2_1_evse_availabilitystate")
    assert state is not None
    assert state.attributes["cleared"] is True


async def test_tc_n_50_csms_alert_event_periodic_triggered(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    assert await _notify(cp, _event(1, EVSE_AVAILABILITY, "42", trigger="Periodic")) == {}
    state = hub.states.get("sensor.bay_2_1_evse_availabilitystate")
    assert state is not None
    assert (state.state, state.attributes["trigger"]) == ("42", "Periodic")


async def test_tc_n_62_csms_clear_customer_information_customer_identifier(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    data = {"customer_identifier": "OpenChargeAlliance", "clear": True}
    sent = await _customer(hub, cp, data)
    assert (sent["report"], sent["clear"]) == (True, True)
    assert sent["customerIdentifier"] == "OpenChargeAlliance"
    assert "idToken" not in sent
    assert "customerCertificate" not in sent
    notify = {
        "data": "OCA: 3 sessions",
        "seqNo": 0,
        "generatedAt": NOW,
        "requestId": sent["requestId"],
    }
    assert await cp.call("NotifyCustomerInformation", notify) == {}


async def test_tc_n_63_csms_clear_customer_information_customer_certificate(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await station201(hub, connect)
    certificate = {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "ab" * 32,
        "issuerKeyHash": "cd" * 32,
        "serialNumber": "0123",
    }
    sent = await _customer(hub, cp, {"customer_certificate": certificate, "clear": True})
    assert (sent["report"], sent["clear"]) == (True, True)
    assert sent["customerCertificate"] == certificate
    assert "idToken" not in sent
    notify = {
        "data": "cert 0123: cleared",
        "seqNo": 0,
        "generatedAt": NOW,
        "requestId": sent["requestId"],
    }
    assert await cp.call("NotifyCustomerInformation", notify) == {}


async def test_simulator_threshold_monitor_fires_notify_event(ocpp_hub: HubFactory) -> None:
    """The simulated 2.0.1 station's threshold monitors fire: a LowerThreshold on the
    station's power (idle: 0 W, below 1 W) sends a NotifyEvent (Alerting, CustomMonitor,
    the monitor's id); an UpperThreshold it stays under, and a monitor above the
    monitoring level, send nothing."""
    import asyncio

    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    events: list[dict[str, Any]] = []
    fired = asyncio.Event()

    def seen(event: Any) -> None:
        if event.data.get("eventNotificationType") == "CustomMonitor":
            events.append(event.data)
            fired.set()

    hub.bus.listen("ocpp_notify_event", seen)
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="2.0.1", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        assert (await ocpp(hub, "set_monitoring_level", {"severity": 5}))["status"] == "Accepted"
        monitors = [
            {"value": 1, "type": "LowerThreshold", "severity": 2, **STATION_POWER},
            {"value": 80, "type": "UpperThreshold", "severity": 2, **STATION_POWER},
            {"value": 1, "type": "LowerThreshold", "severity": 8, **STATION_POWER},
        ]
        answer = await ocpp(hub, "set_variable_monitoring", {"monitors": monitors})
        low, _high, quiet = [r["id"] for r in answer["setMonitoringResult"]]
        await asyncio.wait_for(fired.wait(), 10)
        [event] = events
        assert event["variableMonitoringId"] == low
        assert (event["trigger"], event["cleared"], event["actualValue"]) == (
            "Alerting",
            False,
            "0",
        )
        assert event["component"] == {"name": "ChargingStation"}
        assert event["variable"] == {"name": "Power"}
        # Later checks send nothing more: no monitor crossed again, the quiet one never.
        await asyncio.sleep(0.5)
        assert [e["variableMonitoringId"] for e in events] == [low]
        assert quiet not in [e["variableMonitoringId"] for e in events]
