"""OCA test cases of block K (smart charging), CSMS side, and their OCPP 1.6 equivalents:
the test plays the charging station over a real websocket and checks the frames the hub
sends and its answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.core import Hub
from hub.exceptions import ServiceValidationError
from integrations.ocpp import DATA_SYSTEM
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    ErrorAnswer,
    HubFactory,
    RawChargePoint,
    ws_url,
)
from tests.integrations.ocpp.test_central_system import NOW, OPEN, boot16

CP2 = {"charge_point_id": "CP-2"}
CP1 = {"charge_point_id": "CP-1"}


async def station201(ocpp_hub: HubFactory, connect: Connect, extra: str = "") -> tuple[Hub, Any]:
    hub = await ocpp_hub(OPEN + extra)
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    boot = {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"}
    assert (await cp.call("BootNotification", boot))["status"] == "Accepted"
    status = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    await cp.call("StatusNotification", status)
    return hub, cp


async def station16(ocpp_hub: HubFactory, connect: Connect) -> tuple[Hub, Any]:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    assert (await boot16(cp))["status"] == "Accepted"
    return hub, cp


async def start_transaction_201(cp: RawChargePoint, transaction_id: str = "TX-K") -> None:
    event = {
        "eventType": "Started",
        "timestamp": NOW,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
        "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
    }
    await cp.call("TransactionEvent", event)


def sent(cp: RawChargePoint, action: str) -> list[dict[str, Any]]:
    """Every payload of action the hub sent, in order."""
    return [payload for name, payload in cp.received if name == action]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def device(hub: Hub, cp_id: str) -> dict[str, str]:
    return {"device_id": hub.data[DATA_SYSTEM].stations[cp_id].device_id}


async def call(hub: Hub, service: str, data: dict[str, Any]) -> Any:
    return await hub.services.call("ocpp", service, data)


TX_DEFAULT = {
    "profile_id": 11,
    "stack_level": 1,
    "purpose": "TxDefaultProfile",
    "kind": "Absolute",
    "duration": 3600,
    "periods": [{"start_period": 0, "limit": 6.0, "number_phases": 3}],
}


def assert_absolute_window(profile: dict[str, Any], schedule: dict[str, Any]) -> None:
    """validFrom now, validTo now + duration, startSchedule now, duration (TC_K_01)."""
    now = datetime.now(UTC)
    start = when(schedule["startSchedule"])
    assert abs((start - now).total_seconds()) < 5
    assert when(profile["validFrom"]) == start
    assert when(profile["validTo"]) - start == timedelta(seconds=schedule["duration"])


# K01: SetChargingProfile ------------------------------------------------------------------


async def test_tc_k_01_csms_set_charging_profile_tx_default_specific_evse(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    status = await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT, "evse_id": 1})
    assert status == "Accepted"
    request = await cp.wait_for_call("SetChargingProfile")
    assert request["evseId"] == 1
    profile = request["chargingProfile"]
    assert (profile["id"], profile["stackLevel"]) == (11, 1)
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
    assert profile["chargingProfileKind"] == "Absolute"
    assert "transactionId" not in profile
    assert "recurrencyKind" not in profile
    (schedule,) = profile["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "A"
    assert schedule["duration"] == 3600
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 6.0, "numberPhases": 3}
    ]
    assert_absolute_window(profile, schedule)
    # The station accepted it: the hub shows what it set.
    shown = hub.states.get("sensor.bay_2_charging_profiles")
    assert shown.state == "1"
    assert shown.attributes["profiles"] == [
        {"id": 11, "evse_id": 1, "purpose": "TxDefaultProfile", "stack_level": 1}
    ]


async def test_tc_k_02_csms_tx_profile_without_transaction_is_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A Relative TxProfile with no transaction on the EVSE: sent without startSchedule
    or transactionId; the station's Rejected is the answer and nothing is kept."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["SetChargingProfile"] = lambda payload: {"status": "Rejected"}
    status = await call(
        hub,
        "set_charging_profile",
        {
            **CP2,
            "evse_id": 1,
            "profile_id": 12,
            "purpose": "TxProfile",
            "kind": "Relative",
            "periods": [{"start_period": 0, "limit": 7.0}],
        },
    )
    assert status == "Rejected"
    profile = (await cp.wait_for_call("SetChargingProfile"))["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["chargingProfileKind"] == "Relative"
    assert "transactionId" not in profile
    (schedule,) = profile["chargingSchedule"]
    assert "startSchedule" not in schedule
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 7.0}]
    assert hub.states.get("sensor.bay_2_charging_profiles") is None


async def test_tc_k_03_csms_charging_station_max_profile(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await call(
        hub,
        "set_charging_profile",
        {
            **CP2,
            **TX_DEFAULT,
            "purpose": "ChargingStationMaxProfile",
            "periods": [{"start_period": 0, "limit": 8.0}],
        },
    )
    request = await cp.wait_for_call("SetChargingProfile")
    assert request["evseId"] == 0
    profile = request["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    assert profile["chargingProfileKind"] == "Absolute"
    (schedule,) = profile["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 8.0}]
    assert_absolute_window(profile, schedule)
    # K01.FR.38 and the station-wide scope: refused before anything is sent.
    cp.received.clear()
    for bad in ({"kind": "Relative"}, {"evse_id": 1}):
        with pytest.raises(ServiceValidationError):
            await call(
                hub,
                "set_charging_profile",
                {**CP2, **TX_DEFAULT, "purpose": "ChargingStationMaxProfile", **bad},
            )
    assert sent(cp, "SetChargingProfile") == []


async def test_tc_k_04_csms_replace_charging_profile_with_same_id(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    for limit in (8.0, 6.0):
        await call(
            hub,
            "set_charging_profile",
            {**CP2, **TX_DEFAULT, "evse_id": 1, "periods": [{"start_period": 0, "limit": limit}]},
        )
    first, second = (p["chargingProfile"] for p in sent(cp, "SetChargingProfile"))
    assert first["id"] == second["id"] == 11
    assert first["stackLevel"] == second["stackLevel"]
    assert first["chargingProfilePurpose"] == second["chargingProfilePurpose"]
    assert [s["chargingSchedulePeriod"] for s in first["chargingSchedule"]] == [
        [{"startPeriod": 0, "limit": 8.0}]
    ]
    assert [s["chargingSchedulePeriod"] for s in second["chargingSchedule"]] == [
        [{"startPeriod": 0, "limit": 6.0}]
    ]
    assert all("startSchedule" in s for s in second["chargingSchedule"])
    # Replaced, not added.
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "1"


async def test_tc_k_10_csms_tx_default_profile_all_evse(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT})
    request = await cp.wait_for_call("SetChargingProfile")
    assert request["evseId"] == 0
    profile = request["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
    assert_absolute_window(profile, profile["chargingSchedule"][0])


async def test_tc_k_15_csms_set_charging_profile_not_supported(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The station answers CALLERROR NotSupported: the caller hears it, nothing is kept."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["SetChargingProfile"] = lambda payload: ErrorAnswer("NotSupported", "no")
    with pytest.raises(Exception, match="NotSupported"):
        await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT, "evse_id": 1})
    profile = (await cp.wait_for_call("SetChargingProfile"))["chargingProfile"]
    assert "startSchedule" in profile["chargingSchedule"][0]
    assert hub.states.get("sensor.bay_2_charging_profiles") is None


async def test_tc_k_19_csms_recurring_profile(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await call(
        hub,
        "set_charging_profile",
        {
            **CP2,
            **TX_DEFAULT,
            "evse_id": 1,
            "kind": "Recurring",
            "recurrency_kind": "Daily",
            "duration": 86400,
            "start_schedule": "2026-01-01T00:00:00+00:00",
            "periods": [
                {"start_period": 0, "limit": 6.0},
                {"start_period": 8 * 3600, "limit": 16.0},
            ],
        },
    )
    profile = (await cp.wait_for_call("SetChargingProfile"))["chargingProfile"]
    assert profile["chargingProfileKind"] == "Recurring"
    assert profile["recurrencyKind"] == "Daily"
    (schedule,) = profile["chargingSchedule"]
    assert schedule["startSchedule"] == "2026-01-01T00:00:00Z"
    assert [p["startPeriod"] for p in schedule["chargingSchedulePeriod"]] == [0, 28800]
    # Recurring without its recurrency, or a recurrency without Recurring: refused.
    for bad in ({"kind": "Recurring"}, {"recurrency_kind": "Weekly"}):
        with pytest.raises(ServiceValidationError, match="recurrency_kind"):
            await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT, **bad})


async def test_tc_k_60_csms_tx_profile_for_the_running_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K01.FR.03: a TxProfile names its transaction (the EVSE's running one, unless given)."""
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    await call(
        hub,
        "set_charging_profile",
        {
            **CP2,
            "evse_id": 1,
            "profile_id": 21,
            "purpose": "TxProfile",
            "kind": "Absolute",
            "duration": 1800,
            "periods": [{"start_period": 0, "limit": 10.0}],
        },
    )
    request = await cp.wait_for_call("SetChargingProfile")
    assert request["evseId"] == 1
    profile = request["chargingProfile"]
    assert profile["transactionId"] == "TX-K"
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert_absolute_window(profile, profile["chargingSchedule"][0])
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "1"
    # A TxProfile ends with its transaction.
    ended = {
        "eventType": "Ended",
        "timestamp": NOW,
        "triggerReason": "EVDeparted",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "TX-K", "stoppedReason": "EVDisconnected"},
        "evse": {"id": 1, "connectorId": 1},
    }
    await cp.call("TransactionEvent", ended)
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "0"
    # A TxProfile is one EVSE's.
    with pytest.raises(ServiceValidationError, match="one EVSE"):
        await call(
            hub,
            "set_charging_profile",
            {**CP2, **TX_DEFAULT, "purpose": "TxProfile", "evse_id": 0},
        )


async def test_tc_k_70_csms_multiple_profiles(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT, "evse_id": 1})
    await call(
        hub,
        "set_charging_profile",
        {**CP2, **TX_DEFAULT, "profile_id": 12, "purpose": "ChargingStationMaxProfile"},
    )
    first, second = (p["chargingProfile"] for p in sent(cp, "SetChargingProfile"))
    assert first["id"] != second["id"]
    assert first["chargingProfilePurpose"] == "TxDefaultProfile"
    assert second["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    assert second["chargingProfileKind"] == "Absolute"
    assert "startSchedule" in first["chargingSchedule"][0]
    assert "startSchedule" in second["chargingSchedule"][0]
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "2"


async def test_profile_input_is_checked_before_it_is_sent(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Periods ascending from 0, limits >= 0 and within range, a window that ends after it
    starts: hostile or careless input is a 400, and no frame leaves."""
    hub, cp = await station201(ocpp_hub, connect)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"periods": [{"start_period": 10, "limit": 6.0}]}, "starts at 0"),
        (
            {"periods": [{"start_period": 0, "limit": 6}, {"start_period": 0, "limit": 8}]},
            "ascending",
        ),
        ({"periods": [{"start_period": 0, "limit": -1}]}, "limit"),
        ({"periods": [{"start_period": 0, "limit": 20_000}]}, "above"),
        ({"periods": []}, "periods"),
        ({"purpose": "ChargingStationExternalConstraints"}, "purpose"),
        ({"kind": "Relative", "start_schedule": NOW}, "Relative"),
        ({"valid_from": NOW, "valid_to": "2020-01-01T00:00:00Z"}, "valid_to"),
        ({"start_schedule": "2026-01-01T00:00:00"}, "zone"),
        ({"profile_id": 0}, "profile_id"),
        ({"stack_level": -1}, "stack_level"),
        ({"evse_id": 5000}, "evse_id"),
        ({"transaction_id": "TX-1"}, "only a TxProfile"),
        (
            {
                "duration": 60,
                "periods": [{"start_period": 0, "limit": 6}, {"start_period": 90, "limit": 8}],
            },
            "after",
        ),
    ]
    for bad, reason in cases:
        with pytest.raises(ServiceValidationError, match=reason):
            await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT, **bad})
    assert sent(cp, "SetChargingProfile") == []


# charger.set_current_limit: what it sends now --------------------------------------------


async def test_set_current_limit_sends_an_absolute_profile_with_its_window(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await hub.services.call("charger", "set_current_limit", {"limit": 16}, device(hub, "CP-2"))
    request = await cp.wait_for_call("SetChargingProfile")
    assert request["evseId"] == 0
    profile = request["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    assert profile["chargingProfileKind"] == "Absolute"
    (schedule,) = profile["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
    assert_absolute_window(profile, schedule)


async def test_tc_056_csms_set_current_limit_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 TC_056 (TxDefaultProfile): one connector's limit is an Absolute TxDefaultProfile
    with startSchedule, validFrom, validTo and duration."""
    hub, cp = await station16(ocpp_hub, connect)
    await hub.services.call(
        "charger", "set_current_limit", {"limit": 10, "connector_id": 1}, device(hub, "CP-1")
    )
    request = await cp.wait_for_call("SetChargingProfile")
    assert request["connectorId"] == 1
    profile = request["csChargingProfiles"]
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
    assert profile["chargingProfileKind"] == "Absolute"
    schedule = profile["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]
    assert_absolute_window(profile, schedule)


async def test_tc_057_csms_tx_profile_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 TC_057: a TxProfile for the running transaction, with its transactionId, no
    recurrencyKind, and the Absolute window."""
    hub, cp = await station16(ocpp_hub, connect)
    started = await cp.call(
        "StartTransaction", {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 0, "timestamp": NOW}
    )
    await call(
        hub,
        "set_charging_profile",
        {**CP1, **TX_DEFAULT, "purpose": "TxProfile", "evse_id": 1, "profile_id": 31},
    )
    request = await cp.wait_for_call("SetChargingProfile")
    assert request["connectorId"] == 1
    profile = request["csChargingProfiles"]
    assert profile["chargingProfileId"] == 31
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["transactionId"] == started["transactionId"]
    assert "recurrencyKind" not in profile
    assert_absolute_window(profile, profile["chargingSchedule"])
    # The 1.6 name of the station-wide maximum goes out in 1.6 words.
    await call(
        hub,
        "set_charging_profile",
        {**CP1, **TX_DEFAULT, "purpose": "ChargingStationMaxProfile", "profile_id": 32},
    )
    last = sent(cp, "SetChargingProfile")[-1]
    assert last["connectorId"] == 0
    assert last["csChargingProfiles"]["chargingProfilePurpose"] == "ChargePointMaxProfile"


# K10: ClearChargingProfile ----------------------------------------------------------------


async def test_tc_k_05_csms_clear_charging_profile_by_id(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT, "evse_id": 1})
    assert await call(hub, "clear_charging_profile", {**CP2, "profile_id": 11}) == "Accepted"
    assert await cp.wait_for_call("ClearChargingProfile") == {"chargingProfileId": 11}
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "0"


async def test_tc_k_06_csms_clear_charging_profile_by_criteria(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT, "evse_id": 1})
    await call(
        hub,
        "clear_charging_profile",
        {**CP2, "purpose": "TxDefaultProfile", "evse_id": 1, "stack_level": 1},
    )
    assert await cp.wait_for_call("ClearChargingProfile") == {
        "chargingProfileCriteria": {
            "evseId": 1,
            "chargingProfilePurpose": "TxDefaultProfile",
            "stackLevel": 1,
        }
    }
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "0"


async def test_tc_k_08_csms_clear_charging_profile_unknown(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["ClearChargingProfile"] = lambda payload: {"status": "Unknown"}
    answer = await call(
        hub,
        "clear_charging_profile",
        {**CP2, "purpose": "TxDefaultProfile", "evse_id": 1, "stack_level": 0},
    )
    assert answer == "Unknown"
    criteria = (await cp.wait_for_call("ClearChargingProfile"))["chargingProfileCriteria"]
    assert criteria == {"evseId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0}


async def test_clear_charging_profile_never_clears_everything_by_accident(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """An empty request clears every profile: it takes an explicit all: true (K10.FR.02)."""
    hub, cp = await station201(ocpp_hub, connect)
    for bad in (
        {},
        {"all": False},
        {"all": True, "profile_id": 3},
        {"profile_id": 3, "evse_id": 1},
    ):
        with pytest.raises(ServiceValidationError):
            await call(hub, "clear_charging_profile", {**CP2, **bad})
    assert sent(cp, "ClearChargingProfile") == []
    await call(hub, "set_charging_profile", {**CP2, **TX_DEFAULT})
    assert await call(hub, "clear_charging_profile", {**CP2, "all": True}) == "Accepted"
    assert sent(cp, "ClearChargingProfile") == [{}]
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "0"


async def test_tc_067_csms_clear_charging_profile_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 TC_067: clear by id, by criteria, then all the rest."""
    hub, cp = await station16(ocpp_hub, connect)
    await call(hub, "clear_charging_profile", {**CP1, "profile_id": 5})
    await call(
        hub,
        "clear_charging_profile",
        {**CP1, "evse_id": 1, "purpose": "TxDefaultProfile", "stack_level": 2},
    )
    await call(hub, "clear_charging_profile", {**CP1, "purpose": "ChargingStationMaxProfile"})
    await call(hub, "clear_charging_profile", {**CP1, "all": True})
    assert sent(cp, "ClearChargingProfile") == [
        {"id": 5},
        {"connectorId": 1, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile"},
        {"chargingProfilePurpose": "ChargePointMaxProfile"},
        {},
    ]


# K05 / F01: a remote start carrying its TxProfile ------------------------------------------


RELATIVE_TX = {
    "profile_id": 50,
    "stack_level": 2,
    "duration": 7200,
    "periods": [{"start_period": 0, "limit": 6.0, "number_phases": 3}],
}


async def test_tc_k_37_csms_remote_start_with_charging_profile(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """RequestStartTransaction with a TxProfile: purpose TxProfile, no transactionId (the
    transaction does not exist yet), Relative without startSchedule; the station starts."""
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(
        hub,
        "start_transaction_with_profile",
        {**CP2, "evse_id": 1, "id_token": "TAG-OK", "id_token_type": "ISO14443", **RELATIVE_TX},
    )
    assert answer["status"] == "Accepted"
    request = await cp.wait_for_call("RequestStartTransaction")
    assert request["evseId"] == 1
    assert request["idToken"] == {"idToken": "TAG-OK", "type": "ISO14443"}
    assert request["remoteStartId"] == answer["remote_start_id"]
    profile = request["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["chargingProfileKind"] == "Relative"
    assert (profile["id"], profile["stackLevel"]) == (50, 2)
    assert "transactionId" not in profile
    (schedule,) = profile["chargingSchedule"]
    assert "startSchedule" not in schedule
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 6.0, "numberPhases": 3}
    ]
    # The station starts the transaction it was asked for (remoteStartId), and is answered.
    event = {
        "eventType": "Started",
        "timestamp": NOW,
        "triggerReason": "RemoteStart",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "TX-37", "remoteStartId": request["remoteStartId"]},
        "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
    }
    assert "idTokenInfo" in await cp.call("TransactionEvent", event)
    # Input a profile of a remote start cannot have: refused before anything is sent.
    cp.received.clear()
    for bad in (
        {"evse_id": 0},
        {"transaction_id": "TX-1"},
        {"purpose": "TxDefaultProfile"},
        {"periods": [{"start_period": 5, "limit": 6.0}]},
        {"id_token": "x" * 37},
        {"id_token_type": "Password"},
        {"kind": "Relative", "start_schedule": NOW},
    ):
        with pytest.raises(ServiceValidationError):
            await call(
                hub,
                "start_transaction_with_profile",
                {**CP2, "id_token": "TAG-OK", **RELATIVE_TX, **bad},
            )
    assert sent(cp, "RequestStartTransaction") == []


async def test_remote_start_with_an_absolute_profile_carries_its_window(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """An Absolute TxProfile in a remote start has startSchedule, validFrom and validTo; a
    station that refuses is heard."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["RequestStartTransaction"] = lambda payload: {"status": "Rejected"}
    answer = await call(
        hub,
        "start_transaction_with_profile",
        {**CP2, "id_token": "TAG-OK", **RELATIVE_TX, "kind": "Absolute"},
    )
    assert answer["status"] == "Rejected"
    request = await cp.wait_for_call("RequestStartTransaction")
    assert "evseId" not in request
    profile = request["chargingProfile"]
    assert "transactionId" not in profile
    assert_absolute_window(profile, profile["chargingSchedule"][0])
    assert hub.states.get("sensor.bay_2_charging_profiles") is None


async def test_tc_059_csms_remote_start_with_charging_profile_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 TC_059: RemoteStartTransaction with a TxProfile chargingProfile (no
    transactionId); idTag at most 20 characters."""
    hub, cp = await station16(ocpp_hub, connect)
    answer = await call(
        hub,
        "start_transaction_with_profile",
        {**CP1, "evse_id": 1, "id_token": "TAG-OK", **RELATIVE_TX},
    )
    assert answer == {"status": "Accepted"}
    request = await cp.wait_for_call("RemoteStartTransaction")
    assert (request["connectorId"], request["idTag"]) == (1, "TAG-OK")
    profile = request["chargingProfile"]
    assert profile["chargingProfileId"] == 50
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["chargingProfileKind"] == "Relative"
    assert "transactionId" not in profile
    assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 6.0, "numberPhases": 3}
    ]
    with pytest.raises(ServiceValidationError, match="20"):
        await call(
            hub,
            "start_transaction_with_profile",
            {**CP1, "id_token": "T" * 21, **RELATIVE_TX},
        )
    assert len(sent(cp, "RemoteStartTransaction")) == 1


# K08: GetCompositeSchedule -----------------------------------------------------------------


async def test_tc_k_43_csms_get_composite_schedule(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    schedule = {
        "evseId": 1,
        "duration": 300,
        "scheduleStart": NOW,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}],
    }
    cp.handlers["GetCompositeSchedule"] = lambda payload: {
        "status": "Accepted",
        "schedule": schedule,
    }
    answer = await call(
        hub, "get_composite_schedule", {**CP2, "evse_id": 1, "duration": 300, "rate_unit": "A"}
    )
    assert await cp.wait_for_call("GetCompositeSchedule") == {
        "evseId": 1,
        "duration": 300,
        "chargingRateUnit": "A",
    }
    assert answer == {"status": "Accepted", "schedule": schedule}
    with pytest.raises(ServiceValidationError):
        await call(hub, "get_composite_schedule", {**CP2, "evse_id": 1, "duration": 0})


async def test_tc_066_csms_get_composite_schedule_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    cp.handlers["GetCompositeSchedule"] = lambda payload: {"status": "Rejected"}
    answer = await call(hub, "get_composite_schedule", {**CP1, "evse_id": 1, "duration": 600})
    assert answer == {"status": "Rejected"}
    assert await cp.wait_for_call("GetCompositeSchedule") == {"connectorId": 1, "duration": 600}


async def test_tc_k_44_csms_get_composite_schedule_charging_station(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """evseId 0: the station's expected consumption from the grid connection."""
    hub, cp = await station201(ocpp_hub, connect)
    schedule = {
        "evseId": 0,
        "duration": 3600,
        "scheduleStart": NOW,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 22000.0},
            {"startPeriod": 1800, "limit": 11000.0},
        ],
    }
    cp.handlers["GetCompositeSchedule"] = lambda payload: {
        "status": "Accepted",
        "schedule": schedule,
    }
    answer = await call(
        hub, "get_composite_schedule", {**CP2, "evse_id": 0, "duration": 3600, "rate_unit": "W"}
    )
    assert await cp.wait_for_call("GetCompositeSchedule") == {
        "evseId": 0,
        "duration": 3600,
        "chargingRateUnit": "W",
    }
    assert answer == {"status": "Accepted", "schedule": schedule}
    # An EVSE beyond the port limit, a rate unit OCPP does not know: refused, nothing sent.
    cp.received.clear()
    for bad in ({"evse_id": 5000}, {"rate_unit": "kW"}, {"duration": 400 * 86400}):
        with pytest.raises(ServiceValidationError):
            await call(hub, "get_composite_schedule", {**CP2, "evse_id": 0, "duration": 60, **bad})
    assert sent(cp, "GetCompositeSchedule") == []


# K09: GetChargingProfiles and ReportChargingProfiles ------------------------------------


def _reported(profile_id: int) -> dict[str, Any]:
    return {
        "id": profile_id,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}],
            }
        ],
    }


async def test_tc_k_29_csms_get_charging_profiles_evse_0(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The request names a purpose and evseId 0; the reports (tbc, then the last) are
    assembled into the service's answer."""
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    events: list[Any] = []
    hub.bus.listen("ocpp_charging_profiles_report", events.append)

    async def report(payload: dict[str, Any]) -> None:
        async def send() -> None:
            for index, tbc in ((1, True), (2, False)):
                await cp.call(
                    "ReportChargingProfiles",
                    {
                        "requestId": payload["requestId"],
                        "chargingLimitSource": "CSO",
                        "chargingProfile": [_reported(index)],
                        "evseId": 0,
                        "tbc": tbc,
                    },
                )

        asyncio.get_running_loop().create_task(send())

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(report(payload)))
        return {"status": "Accepted"}

    cp.handlers["GetChargingProfiles"] = answer
    result = await call(
        hub, "get_charging_profiles", {**CP2, "evse_id": 0, "purpose": "TxDefaultProfile"}
    )
    request = await cp.wait_for_call("GetChargingProfiles")
    assert request["evseId"] == 0
    assert request["chargingProfile"] == {"chargingProfilePurpose": "TxDefaultProfile"}
    assert result["status"] == "Accepted"
    assert result["request_id"] == request["requestId"]
    assert result["complete"] is True
    assert [item["profile"]["id"] for item in result["profiles"]] == [1, 2]
    assert result["profiles"][0]["charging_limit_source"] == "CSO"
    assert len(events) == 2


async def test_get_charging_profiles_no_profiles(ocpp_hub: HubFactory, connect: Connect) -> None:
    """NoProfiles is an answer, not an error: no report is waited for."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["GetChargingProfiles"] = lambda payload: {"status": "NoProfiles"}
    result = await call(hub, "get_charging_profiles", {**CP2, "profile_ids": [7]})
    assert result["status"] == "NoProfiles"
    assert result["profiles"] == []
    assert (await cp.wait_for_call("GetChargingProfiles"))["chargingProfile"] == {
        "chargingProfileId": [7]
    }
    # K09.FR.03: a criterion is named; an id list goes alone; sources are the four OCPP
    # names, each at most once.
    for bad in (
        {},
        {"evse_id": 1},
        {"profile_ids": [1], "stack_level": 1},
        {"limit_source": ["Grid"]},
        {"limit_source": ["CSO", "CSO"]},
        {"limit_source": []},
    ):
        with pytest.raises(ServiceValidationError):
            await call(hub, "get_charging_profiles", {**CP2, **bad})


def _report_when_asked(
    cp: RawChargePoint, parts: list[tuple[int, str, list[dict[str, Any]]]]
) -> None:
    """Answer GetChargingProfiles Accepted, then send ReportChargingProfiles: one per part
    (evseId, chargingLimitSource, profiles), tbc until the last."""

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        async def send() -> None:
            for index, (evse, source, profiles) in enumerate(parts):
                await cp.call(
                    "ReportChargingProfiles",
                    {
                        "requestId": payload["requestId"],
                        "chargingLimitSource": source,
                        "chargingProfile": profiles,
                        "evseId": evse,
                        "tbc": index < len(parts) - 1,
                    },
                )

        asyncio.get_running_loop().create_task(send())
        return {"status": "Accepted"}

    cp.handlers["GetChargingProfiles"] = answer


async def _get_profiles_case(
    ocpp_hub: HubFactory,
    connect: Connect,
    asked: dict[str, Any],
    parts: list[tuple[int, str, list[dict[str, Any]]]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask with the service's criteria; return (the request sent, the service's answer)."""
    hub, cp = await station201(ocpp_hub, connect)
    _report_when_asked(cp, parts)
    result = await call(hub, "get_charging_profiles", {**CP2, **asked})
    request = await cp.wait_for_call("GetChargingProfiles")
    assert result["status"] == "Accepted"
    assert result["request_id"] == request["requestId"]
    assert result["complete"] is True
    return request, result


async def test_tc_k_30_csms_get_charging_profiles_evse_above_0(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    request, result = await _get_profiles_case(
        ocpp_hub,
        connect,
        {"evse_id": 1, "purpose": "TxDefaultProfile"},
        [(1, "CSO", [_reported(5)])],
    )
    assert request["evseId"] == 1
    assert request["chargingProfile"] == {"chargingProfilePurpose": "TxDefaultProfile"}
    assert [(item["evse_id"], item["profile"]["id"]) for item in result["profiles"]] == [(1, 5)]


async def test_tc_k_31_csms_get_charging_profiles_no_evse_id(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """No evseId: every profile of the station, reported per EVSE, assembled in one answer."""
    request, result = await _get_profiles_case(
        ocpp_hub,
        connect,
        {"purpose": "TxDefaultProfile"},
        [(0, "CSO", [_reported(1)]), (1, "CSO", [_reported(2), _reported(3)])],
    )
    assert "evseId" not in request
    assert request["chargingProfile"] == {"chargingProfilePurpose": "TxDefaultProfile"}
    assert [(item["evse_id"], item["profile"]["id"]) for item in result["profiles"]] == [
        (0, 1),
        (1, 2),
        (1, 3),
    ]


async def test_tc_k_32_csms_get_charging_profiles_by_id(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    request, result = await _get_profiles_case(
        ocpp_hub, connect, {"profile_ids": [7]}, [(1, "CSO", [_reported(7)])]
    )
    assert "evseId" not in request
    assert request["chargingProfile"] == {"chargingProfileId": [7]}
    assert [item["profile"]["id"] for item in result["profiles"]] == [7]


async def test_tc_k_33_csms_get_charging_profiles_evse_and_stack_level(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    request, result = await _get_profiles_case(
        ocpp_hub, connect, {"evse_id": 1, "stack_level": 1}, [(1, "CSO", [_reported(8)])]
    )
    assert request["evseId"] == 1
    assert request["chargingProfile"] == {"stackLevel": 1}
    assert result["profiles"][0]["profile"]["stackLevel"] == 1


async def test_tc_k_34_csms_get_charging_profiles_evse_and_limit_source(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    request, result = await _get_profiles_case(
        ocpp_hub, connect, {"evse_id": 1, "limit_source": ["CSO"]}, [(1, "CSO", [_reported(9)])]
    )
    assert request["evseId"] == 1
    assert request["chargingProfile"] == {"chargingLimitSource": ["CSO"]}
    assert result["profiles"][0]["charging_limit_source"] == "CSO"


async def test_tc_k_35_csms_get_charging_profiles_evse_and_purpose(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    request, result = await _get_profiles_case(
        ocpp_hub, connect, {"evse_id": 1, "purpose": "TxProfile"}, [(1, "CSO", [_reported(10)])]
    )
    assert request["evseId"] == 1
    assert request["chargingProfile"] == {"chargingProfilePurpose": "TxProfile"}
    assert len(result["profiles"]) == 1


async def test_tc_k_36_csms_get_charging_profiles_evse_purpose_and_stack_level(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    request, result = await _get_profiles_case(
        ocpp_hub,
        connect,
        {"evse_id": 1, "purpose": "TxDefaultProfile", "stack_level": 1},
        [(1, "CSO", [_reported(11)])],
    )
    assert request["evseId"] == 1
    assert request["chargingProfile"] == {
        "chargingProfilePurpose": "TxDefaultProfile",
        "stackLevel": 1,
    }
    assert [item["profile"]["id"] for item in result["profiles"]] == [11]


async def test_tc_k_52_csms_external_charging_limit_report(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K12: the hub asks for the external constraints; the station reports them with the
    source that set them (EMS)."""
    external = {
        **_reported(12),
        "chargingProfilePurpose": "ChargingStationExternalConstraints",
    }
    request, result = await _get_profiles_case(
        ocpp_hub,
        connect,
        {"purpose": "ChargingStationExternalConstraints"},
        [(0, "EMS", [external])],
    )
    assert request["chargingProfile"] == {
        "chargingProfilePurpose": "ChargingStationExternalConstraints"
    }
    (item,) = result["profiles"]
    assert (item["evse_id"], item["charging_limit_source"]) == (0, "EMS")
    assert item["profile"]["chargingProfilePurpose"] == "ChargingStationExternalConstraints"


async def test_get_charging_profiles_is_201_only_and_reports_are_checked(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, _cp16 = await station16(ocpp_hub, connect)
    with pytest.raises(ServiceValidationError, match=r"2\.0\.1"):
        await call(hub, "get_charging_profiles", {**CP1, "purpose": "TxProfile"})
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    boot = {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"}
    await cp.call("BootNotification", boot)
    # An unsolicited report is answered; an EVSE beyond the limit is refused.
    report = {"requestId": 99, "chargingLimitSource": "EMS", "chargingProfile": [_reported(1)]}
    assert await cp.call("ReportChargingProfiles", {**report, "evseId": 1}) == {}
    with pytest.raises(ChargerCallError) as err:
        await cp.call("ReportChargingProfiles", {**report, "evseId": 99_999})
    assert err.value.code == "PropertyConstraintViolation"


# K11-K13: external charging limits ----------------------------------------------------------


async def test_tc_k_48_csms_notify_charging_limit_and_cleared(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    events: list[Any] = []
    hub.bus.listen("ocpp_charging_limit", events.append)
    hub.bus.listen("ocpp_charging_limit_cleared", events.append)
    schedule = {
        "id": 1,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
    }
    answer = await cp.call(
        "NotifyChargingLimit",
        {
            "chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": True},
            "chargingSchedule": [schedule],
            "evseId": 1,
        },
    )
    assert answer == {}
    limit = hub.states.get("sensor.bay_2_external_charging_limit")
    assert limit.state == "EMS"
    assert limit.attributes["grid_critical"] is True
    assert limit.attributes["schedule"] == [schedule]
    assert await cp.call("ClearedChargingLimit", {"chargingLimitSource": "EMS", "evseId": 1}) == {}
    assert hub.states.get("sensor.bay_2_external_charging_limit").state == "none"
    assert [e.event_type for e in events] == ["ocpp_charging_limit", "ocpp_charging_limit_cleared"]
    assert events[0].data["charging_limit_source"] == "EMS"
    with pytest.raises(ChargerCallError):
        await cp.call("NotifyChargingLimit", {"chargingLimit": {"chargingLimitSource": "Grid"}})


async def test_tc_k_50_csms_cleared_charging_limit_without_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K13: the external limit is released; the hub answers and shows none."""
    hub, cp = await station201(ocpp_hub, connect)
    events: list[Any] = []
    hub.bus.listen("ocpp_charging_limit_cleared", events.append)
    limit = {"chargingLimit": {"chargingLimitSource": "EMS"}}
    assert await cp.call("NotifyChargingLimit", limit) == {}
    assert hub.states.get("sensor.bay_2_external_charging_limit").state == "EMS"
    assert await cp.call("ClearedChargingLimit", {"chargingLimitSource": "EMS"}) == {}
    assert hub.states.get("sensor.bay_2_external_charging_limit").state == "none"
    assert events[0].data == {
        "charge_point_id": "CP-2",
        "evse_id": None,
        "charging_limit_source": "EMS",
    }
    # A source OCPP does not know, an EVSE beyond the limit: a CALLERROR, nothing changes.
    for bad in ({"chargingLimitSource": "Grid"}, {"chargingLimitSource": "EMS", "evseId": 99_999}):
        with pytest.raises(ChargerCallError):
            await cp.call("ClearedChargingLimit", bad)
    assert len(events) == 1


async def test_tc_k_51_csms_cleared_charging_limit_with_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K13 during a transaction: ClearedChargingLimit, then the station's TransactionEvent
    (ChargingRateChanged) is answered and the transaction runs on."""
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    limit = {"chargingLimit": {"chargingLimitSource": "SO"}, "evseId": 1}
    assert await cp.call("NotifyChargingLimit", limit) == {}
    assert await cp.call("ClearedChargingLimit", {"chargingLimitSource": "SO", "evseId": 1}) == {}
    assert hub.states.get("sensor.bay_2_external_charging_limit").state == "none"
    updated = {
        "eventType": "Updated",
        "timestamp": NOW,
        "triggerReason": "ChargingRateChanged",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "TX-K", "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1},
    }
    assert "idTokenInfo" not in await cp.call("TransactionEvent", updated)
    port = hub.data[DATA_SYSTEM].stations["CP-2"].ports[1]
    assert port.transaction is not None
    assert port.transaction.ocpp_id == "TX-K"


# K15-K17: the EV's charging needs (ISO 15118) ------------------------------------------------


NEEDS = {
    "chargingNeeds": {
        "requestedEnergyTransfer": "AC_three_phase",
        "acChargingParameters": {
            "energyAmount": 50000,
            "evMinCurrent": 6,
            "evMaxCurrent": 32,
            "evMaxVoltage": 230,
        },
    },
    "evseId": 1,
    "maxScheduleTuples": 10,
}


PROCESSING = "ev_charging_needs_status: Processing\n"


async def _ev_profile(cp: RawChargePoint, count: int = 1) -> dict[str, Any]:
    """Wait until the hub sent count SetChargingProfile; return the last profile."""
    for _ in range(200):
        found = sent(cp, "SetChargingProfile")
        if len(found) >= count:
            return dict(found[count - 1])
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(sent(cp, 'SetChargingProfile'))} SetChargingProfile, not {count}")


async def test_tc_k_53_csms_load_leveling_with_high_level_communication(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K15: the needs are answered Processing (as configured) and fired as an event; the hub
    then sets the transaction's TxProfile within the EV's limits and its own station maximum
    (K15.FR.05); the EV's schedule within it is Accepted; no further profile comes."""
    hub, cp = await station201(ocpp_hub, connect, PROCESSING)
    await call(
        hub,
        "set_charging_profile",
        {
            **CP2,
            **TX_DEFAULT,
            "purpose": "ChargingStationMaxProfile",
            "profile_id": 1,
            "periods": [{"start_period": 0, "limit": 16.0}],
        },
    )
    await start_transaction_201(cp)
    needs: list[Any] = []
    hub.bus.listen("ocpp_ev_charging_needs", needs.append)
    assert await cp.call("NotifyEVChargingNeeds", NEEDS) == {"status": "Processing"}
    assert needs[0].data["evse_id"] == 1
    assert needs[0].data["charging_needs"]["acChargingParameters"]["evMaxCurrent"] == 32
    request = await _ev_profile(cp, 2)
    assert request["evseId"] == 1
    profile = request["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["transactionId"] == "TX-K"
    assert profile["chargingProfileKind"] == "Absolute"
    (schedule,) = profile["chargingSchedule"]
    # The EV may take 32 A; the station's maximum is 16 A: 16 A on three phases.
    assert schedule["chargingRateUnit"] == "A"
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 16.0, "numberPhases": 3}
    ]
    assert len(schedule["chargingSchedulePeriod"]) <= NEEDS["maxScheduleTuples"]
    assert_absolute_window(profile, schedule)
    ev = {**schedule, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 14.0}]}
    answer = await cp.call(
        "NotifyEVChargingSchedule",
        {"timeBase": schedule["startSchedule"], "chargingSchedule": ev, "evseId": 1},
    )
    assert answer == {"status": "Accepted"}
    await hub.block_till_done()
    assert len(sent(cp, "SetChargingProfile")) == 2
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "2"


async def test_ev_needs_without_a_transaction_or_limits_get_no_profile(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """No transaction on the EVSE (a TxProfile needs one), or needs with no maximum the hub
    can use: Rejected, and no profile is sent. DC needs with a power maximum get W."""
    hub, cp = await station201(ocpp_hub, connect, PROCESSING)
    assert await cp.call("NotifyEVChargingNeeds", NEEDS) == {"status": "Rejected"}
    await start_transaction_201(cp)
    no_max = {
        **NEEDS,
        "chargingNeeds": {"requestedEnergyTransfer": "AC_single_phase"},
    }
    assert await cp.call("NotifyEVChargingNeeds", no_max) == {"status": "Rejected"}
    negative = {
        **NEEDS,
        "chargingNeeds": {
            "requestedEnergyTransfer": "AC_three_phase",
            "acChargingParameters": {
                "energyAmount": 1,
                "evMinCurrent": 0,
                "evMaxCurrent": -5,
                "evMaxVoltage": 230,
            },
        },
    }
    assert await cp.call("NotifyEVChargingNeeds", negative) == {"status": "Rejected"}
    await hub.block_till_done()
    assert sent(cp, "SetChargingProfile") == []
    # A maximum beyond any charger is capped; the EV's departure ends the profile.
    departure = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    huge = {
        **negative,
        "chargingNeeds": {
            **negative["chargingNeeds"],  # type: ignore[dict-item]
            "departureTime": departure.isoformat(),
            "acChargingParameters": {
                "energyAmount": 1,
                "evMinCurrent": 0,
                "evMaxCurrent": 10**9,
                "evMaxVoltage": 230,
            },
        },
    }
    assert await cp.call("NotifyEVChargingNeeds", huge) == {"status": "Processing"}
    capped = (await _ev_profile(cp))["chargingProfile"]
    (schedule,) = capped["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"][0]["limit"] == 10_000.0
    assert abs(schedule["duration"] - 7200) <= 5
    assert when(capped["validTo"]) - when(schedule["startSchedule"]) == timedelta(
        seconds=schedule["duration"]
    )
    dc = {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "DC",
            "dcChargingParameters": {
                "evMaxCurrent": 200,
                "evMaxVoltage": 800,
                "evMaxPower": 150000,
            },
        },
    }
    assert await cp.call("NotifyEVChargingNeeds", dc) == {"status": "Processing"}
    (schedule,) = (await _ev_profile(cp, 2))["chargingProfile"]["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "W"
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 150000.0}]


async def test_tc_k_55_csms_ev_charging_profile_exceeds_limits(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The EV's schedule goes beyond the hub's TxProfile: the hub answers Rejected and sends
    its profile again (renegotiation), a few times a transaction at most; the station's
    TransactionEvent is answered."""
    hub, cp = await station201(ocpp_hub, connect, PROCESSING)
    await start_transaction_201(cp)
    assert await cp.call("NotifyEVChargingNeeds", NEEDS) == {"status": "Processing"}
    first = await _ev_profile(cp)
    (schedule,) = first["chargingProfile"]["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"][0]["limit"] == 32.0
    greedy = {
        "id": 2,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 100.0}],
    }
    notify = {"timeBase": schedule["startSchedule"], "chargingSchedule": greedy, "evseId": 1}
    assert await cp.call("NotifyEVChargingSchedule", notify) == {"status": "Rejected"}
    again = await _ev_profile(cp, 2)
    assert again["chargingProfile"]["id"] == first["chargingProfile"]["id"]
    assert again["chargingProfile"]["transactionId"] == "TX-K"
    assert (
        again["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        == (schedule["chargingSchedulePeriod"])
    )
    updated = {
        "eventType": "Updated",
        "timestamp": NOW,
        "triggerReason": "ChargingStateChanged",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "TX-K", "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1},
    }
    await cp.call("TransactionEvent", updated)
    # An EV that keeps asking for more is not answered with profiles for ever.
    for _ in range(5):
        assert await cp.call("NotifyEVChargingSchedule", notify) == {"status": "Rejected"}
    await hub.block_till_done()
    assert len(sent(cp, "SetChargingProfile")) == 1 + 3


async def test_tc_k_58_csms_renegotiation_initiated_by_csms(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K16: during an ISO 15118 transaction the hub sets a new TxProfile; the EV's new
    schedule within it is Accepted."""
    hub, cp = await station201(ocpp_hub, connect, PROCESSING)
    await start_transaction_201(cp)
    assert await cp.call("NotifyEVChargingNeeds", NEEDS) == {"status": "Processing"}
    await _ev_profile(cp)
    await call(
        hub,
        "set_charging_profile",
        {
            **CP2,
            "evse_id": 1,
            "profile_id": 2001,
            "purpose": "TxProfile",
            "duration": 3600,
            "periods": [{"start_period": 0, "limit": 10.0}],
        },
    )
    renegotiated = (await _ev_profile(cp, 2))["chargingProfile"]
    assert renegotiated["transactionId"] == "TX-K"
    (schedule,) = renegotiated["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]
    ev = {**schedule, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}
    answer = await cp.call(
        "NotifyEVChargingSchedule",
        {"timeBase": schedule["startSchedule"], "chargingSchedule": ev, "evseId": 1},
    )
    assert answer == {"status": "Accepted"}
    await hub.block_till_done()
    assert len(sent(cp, "SetChargingProfile")) == 2


async def test_tc_k_59_csms_renegotiation_with_new_charging_needs(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K16.FR.12: after the hub's profile, the station sends the EV's charging needs again;
    the hub answers and sets a new TxProfile (same id) within the new needs."""
    hub, cp = await station201(ocpp_hub, connect, PROCESSING)
    await start_transaction_201(cp)
    assert await cp.call("NotifyEVChargingNeeds", NEEDS) == {"status": "Processing"}
    first = (await _ev_profile(cp))["chargingProfile"]
    less = {
        **NEEDS,
        "chargingNeeds": {
            **NEEDS["chargingNeeds"],
            "acChargingParameters": {
                **NEEDS["chargingNeeds"]["acChargingParameters"],  # type: ignore[dict-item]
                "evMaxCurrent": 20,
            },
        },
    }
    assert await cp.call("NotifyEVChargingNeeds", less) == {"status": "Processing"}
    second = (await _ev_profile(cp, 2))["chargingProfile"]
    assert second["id"] == first["id"]
    assert second["transactionId"] == "TX-K"
    assert second["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 20.0
    # Replaced, not added.
    assert hub.states.get("sensor.bay_2_charging_profiles").state == "1"


async def test_tc_k_57_csms_ev_schedule_beyond_the_limits_is_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """K17 renegotiation by the EV: needs answered (Rejected by default: no schedule comes
    unless something sends one); an EV schedule above the hub's TxProfile is Rejected."""
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    assert await cp.call("NotifyEVChargingNeeds", NEEDS) == {"status": "Rejected"}
    await call(
        hub,
        "set_charging_profile",
        {
            **CP2,
            "evse_id": 1,
            "profile_id": 41,
            "purpose": "TxProfile",
            "duration": 3600,
            "periods": [{"start_period": 0, "limit": 16.0}, {"start_period": 600, "limit": 10.0}],
        },
    )
    ours = (await cp.wait_for_call("SetChargingProfile"))["chargingProfile"]["chargingSchedule"][0]
    greedy = {
        "id": 2,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    }
    answer = await cp.call(
        "NotifyEVChargingSchedule",
        {"timeBase": ours["startSchedule"], "chargingSchedule": greedy, "evseId": 1},
    )
    assert answer == {"status": "Rejected"}
    with pytest.raises(ChargerCallError):
        await cp.call("NotifyEVChargingNeeds", {**NEEDS, "evseId": 99_999})


@pytest.mark.parametrize(("version", "cp_id"), [("1.6", "CP-1"), ("2.0.1", "CP-2")])
async def test_simulator_keeps_profiles_and_reports_them(
    ocpp_hub: HubFactory, version: str, cp_id: str
) -> None:
    """The simulated station takes the hub's profiles, answers GetCompositeSchedule with the
    lowest limit in force, and (2.0.1) reports its profiles in parts the hub assembles."""
    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    target = {"charge_point_id": cp_id}
    base = ws_url(hub, cp_id).rsplit("/", 1)[0]
    async with SimulatedChargePoint(cp_id, base, version=version, speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        for profile_id, evse, limit in ((1, 0, 32.0), (2, 1, 10.0), (3, 2, 16.0)):
            purpose = "ChargingStationMaxProfile" if evse == 0 else "TxDefaultProfile"
            status = await call(
                hub,
                "set_charging_profile",
                {
                    **target,
                    **TX_DEFAULT,
                    "profile_id": profile_id,
                    "evse_id": evse,
                    "purpose": purpose,
                    "periods": [{"start_period": 0, "limit": limit}],
                },
            )
            assert status == "Accepted"
        composite = await call(
            hub,
            "get_composite_schedule",
            {**target, "evse_id": 1, "duration": 600, "rate_unit": "A"},
        )
        assert composite["status"] == "Accepted"
        schedule = composite["schedule"] if version == "2.0.1" else composite["chargingSchedule"]
        assert schedule["chargingSchedulePeriod"][0]["limit"] == 10.0
        if version == "2.0.1":
            found = await call(
                hub, "get_charging_profiles", {**target, "purpose": "TxDefaultProfile"}
            )
            assert found["complete"] is True
            assert sorted(item["profile"]["id"] for item in found["profiles"]) == [2, 3]
        assert await call(hub, "clear_charging_profile", {**target, "profile_id": 2}) == "Accepted"
        assert await call(hub, "clear_charging_profile", {**target, "profile_id": 2}) == "Unknown"
        assert hub.states.get(f"sensor.bay_{cp_id[-1]}_charging_profiles").state == "2"


@pytest.mark.parametrize(("version", "cp_id"), [("1.6", "CP-1"), ("2.0.1", "CP-2")])
async def test_simulator_starts_a_transaction_with_its_profile(
    ocpp_hub: HubFactory, version: str, cp_id: str
) -> None:
    """The simulated station takes a remote start with a TxProfile and starts charging."""
    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    base = ws_url(hub, cp_id).rsplit("/", 1)[0]
    async with SimulatedChargePoint(cp_id, base, version=version, speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        answer = await call(
            hub,
            "start_transaction_with_profile",
            {"charge_point_id": cp_id, "evse_id": 1, "id_token": "TAG-OK", **RELATIVE_TX},
        )
        assert answer["status"] == "Accepted"
        station = hub.data[DATA_SYSTEM].stations[cp_id]
        for _ in range(500):
            port = station.ports.get(1)
            if port is not None and port.transaction is not None:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("no transaction started")


async def test_smart_charging_roles(ocpp_hub: HubFactory) -> None:
    """Changing a station's profiles is an admin's; reading them a viewer's."""
    hub = await ocpp_hub(OPEN)
    names = (
        "set_charging_profile",
        "clear_charging_profile",
        "get_charging_profiles",
        "get_composite_schedule",
    )
    assert {name: hub.services.role("ocpp", name) for name in names} == {
        "set_charging_profile": "admin",
        "clear_charging_profile": "admin",
        "get_charging_profiles": "viewer",
        "get_composite_schedule": "viewer",
    }
    assert hub.services.role("ocpp", "start_transaction_with_profile") == "operator"
