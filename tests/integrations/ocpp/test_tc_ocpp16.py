"""OCPP 1.6 Central System cases of the OCA's 1.6 Compliancy Testing Tool test case document
(TC_<nnn>_CSMS): core sessions, remote control, reset, unlock, configuration, offline
transactions, local list refusals, security events, Basic auth, TLS and the subprotocol.

Each test plays the charge point over a real websocket (TLS where the case needs it) and
checks what the hub sends and answers, step by step as the case describes them.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from hub.core import Hub
from hub.exceptions import ServiceValidationError
from hub.security import security_log
from hub.testing import Connect, ErrorAnswer, RawChargePoint
from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp.connection import OcppCallError
from integrations.ocpp.features.authorization_local_list import DATA_LOCAL_LISTS
from tests.integrations.ocpp.conftest import HubFactory, wait_state, ws_url
from tests.integrations.ocpp.test_tc_security import (
    PASSWORD,
    Pki,
    client_context,
    csr_for,
    make_pki,
    profile_1,
    profile_3,
)

CONFIG = """
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
"""
CP = {"charge_point_id": "CP-1"}
PORT_1 = {"entity_id": "sensor.bay_1_1_status"}
BOOT = {
    "chargePointVendor": "ACME",
    "chargePointModel": "DC50",
    "chargePointSerialNumber": "SN-9",
    "firmwareVersion": "1.2.3",
}
# Charger timestamps lie within the window around the hub clock: two hours ago and on.
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def at(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki-16"))


async def booted(ocpp_hub: HubFactory, connect: Connect) -> tuple[Hub, RawChargePoint]:
    hub = await ocpp_hub(CONFIG)
    cp = await connect(ws_url(hub, "CP-1"))
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    return hub, cp


async def status(
    cp: RawChargePoint, value: str, connector: int = 1, error: str = "NoError"
) -> None:
    """A StatusNotification.req; the Central System answers an empty .conf."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payload = {"connectorId": connector, "errorCode": error, "status": value, "timestamp": now}
    assert await cp.call("StatusNotification", payload) == {}


async def authorize(cp: RawChargePoint, tag: str = "TAG-OK") -> str:
    return str((await cp.call("Authorize", {"idTag": tag}))["idTagInfo"]["status"])


async def start(
    cp: RawChargePoint, tag: str = "TAG-OK", minutes: float = 1, meter: int = 0
) -> dict[str, Any]:
    return await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": tag, "meterStart": meter, "timestamp": at(minutes)},
    )


async def stop(
    cp: RawChargePoint, transaction_id: int, reason: str, minutes: float = 30, **extra: Any
) -> dict[str, Any]:
    payload = {
        "transactionId": transaction_id,
        "meterStop": 4000,
        "timestamp": at(minutes),
        "reason": reason,
        **extra,
    }
    return await cp.call("StopTransaction", payload)


async def charging(hub: Hub, cp: RawChargePoint) -> int:
    """Reusable state Charging: Preparing, Authorize, StartTransaction, Charging."""
    await status(cp, "Preparing")
    assert await authorize(cp) == "Accepted"
    started = await start(cp)
    assert started["idTagInfo"]["status"] == "Accepted"
    await status(cp, "Charging")
    transaction_id = started["transactionId"]
    assert isinstance(transaction_id, int)
    await wait_state(hub, "sensor.bay_1_1_transaction_id", str(transaction_id))
    return transaction_id


async def record(hub: Hub, transaction_id: int) -> Any:
    found = await hub.data[DATA_SYSTEM].transactions.get_by_ocpp_id("CP-1", str(transaction_id))
    assert found is not None
    return found


def state(hub: Hub, entity_id: str) -> str | None:
    found = hub.states.get(entity_id)
    return None if found is None else found.state


def no_transaction(hub: Hub) -> bool:
    found = hub.states.get("sensor.bay_1_1_transaction_id")
    return found is None or found.state == "unknown"


def calls(cp: RawChargePoint, action: str) -> list[dict[str, Any]]:
    return [payload for name, payload in cp.received if name == action]


# Core: boot and sessions ----------------------------------------------------------------


async def test_tc_001_csms_cold_boot_charge_point(ocpp_hub: HubFactory, connect: Connect) -> None:
    """BootNotification Accepted with the heartbeat interval and the time, a
    StatusNotification per connector and for connectorId 0, then Heartbeats."""
    hub = await ocpp_hub(CONFIG)
    cp = await connect(ws_url(hub, "CP-1"))
    answer = await cp.call("BootNotification", BOOT)
    assert answer["status"] == "Accepted"
    assert answer["interval"] == 30
    assert datetime.fromisoformat(answer["currentTime"].replace("Z", "+00:00"))
    for connector in (0, 1, 2):
        await status(cp, "Available", connector)
    assert state(hub, "sensor.bay_1_status") == "Available"
    assert state(hub, "sensor.bay_1_2_status") == "Available"
    for _ in range(2):
        beat = await cp.call("Heartbeat", {})
        assert datetime.fromisoformat(beat["currentTime"].replace("Z", "+00:00"))
    await wait_state(hub, "sensor.bay_1_connectivity", "online")


async def test_tc_003_csms_regular_charging_session_plugin_first(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await booted(ocpp_hub, connect)
    await status(cp, "Preparing")  # the cable is plugged in
    assert state(hub, "sensor.bay_1_1_status") == "Preparing"
    assert await authorize(cp) == "Accepted"
    started = await start(cp)
    assert started["idTagInfo"]["status"] == "Accepted"
    await status(cp, "Charging")
    await wait_state(hub, "sensor.bay_1_1_transaction_id", str(started["transactionId"]))
    assert state(hub, "sensor.bay_1_1_status") == "Charging"


async def test_tc_004_1_csms_regular_charging_session_identification_first(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Reusable state Authorized first, then the cable: StartTransaction and Charging."""
    hub, cp = await booted(ocpp_hub, connect)
    assert await authorize(cp) == "Accepted"
    started = await start(cp)
    assert started["idTagInfo"]["status"] == "Accepted"
    await status(cp, "Charging")
    await wait_state(hub, "sensor.bay_1_1_transaction_id", str(started["transactionId"]))


async def test_tc_004_2_csms_identification_first_connection_timeout(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Authorized, Preparing, and Available again when ConnectionTimeOut expired: both
    answered, no transaction opened."""
    hub, cp = await booted(ocpp_hub, connect)
    assert await authorize(cp) == "Accepted"
    await status(cp, "Preparing")
    await status(cp, "Available")
    assert state(hub, "sensor.bay_1_1_status") == "Available"
    assert no_transaction(hub)
    assert await hub.data[DATA_SYSTEM].transactions.open_transactions("CP-1") == []


async def test_tc_007_csms_regular_start_charging_session_cached_id(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The charge point found the idTag in its cache: StartTransaction without Authorize."""
    hub, cp = await booted(ocpp_hub, connect)
    await status(cp, "Preparing")
    started = await start(cp)
    assert started["idTagInfo"]["status"] == "Accepted"
    await status(cp, "Charging")
    await wait_state(hub, "sensor.bay_1_1_transaction_id", str(started["transactionId"]))
    assert not any(name == "Authorize" for name, _ in cp.received)


async def test_tc_024_csms_start_charging_session_lock_failure(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Authorized, Preparing, then Faulted with ConnectorLockFailure: answered and shown."""
    hub, cp = await booted(ocpp_hub, connect)
    assert await authorize(cp) == "Accepted"
    await status(cp, "Preparing")
    await status(cp, "Faulted", error="ConnectorLockFailure")
    assert state(hub, "sensor.bay_1_1_status") == "Faulted"
    assert state(hub, "sensor.bay_1_1_error_code") == "ConnectorLockFailure"


# Core: remote start / stop --------------------------------------------------------------


async def test_tc_010_csms_remote_start_cable_plugged_in_first(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await booted(ocpp_hub, connect)
    await status(cp, "Preparing")
    answer = await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, PORT_1)
    assert list(answer.values()) == ["Accepted"]
    assert await cp.wait_for_call("RemoteStartTransaction") == {
        "idTag": "TAG-OK",
        "connectorId": 1,
    }
    assert await authorize(cp) == "Accepted"
    started = await start(cp)
    assert started["idTagInfo"]["status"] == "Accepted"
    await status(cp, "Charging")
    await wait_state(hub, "sensor.bay_1_1_transaction_id", str(started["transactionId"]))


async def test_tc_011_2_csms_remote_start_time_out(ocpp_hub: HubFactory, connect: Connect) -> None:
    """Remote start accepted and authorized, Preparing, but no cable within the connection
    timeout: Available again, no transaction."""
    hub, cp = await booted(ocpp_hub, connect)
    await status(cp, "Available")
    answer = await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, PORT_1)
    assert list(answer.values()) == ["Accepted"]
    assert (await cp.wait_for_call("RemoteStartTransaction"))["idTag"] == "TAG-OK"
    assert await authorize(cp) == "Accepted"
    await status(cp, "Preparing")
    await status(cp, "Available")
    assert state(hub, "sensor.bay_1_1_status") == "Available"
    assert no_transaction(hub)


async def test_tc_012_csms_remote_stop_charging_session(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await booted(ocpp_hub, connect)
    transaction_id = await charging(hub, cp)
    answer = await hub.services.call("charger", "stop_charging", {}, PORT_1)
    assert list(answer.values()) == ["Accepted"]
    assert await cp.wait_for_call("RemoteStopTransaction") == {"transactionId": transaction_id}
    assert await stop(cp, transaction_id, "Remote") == {}
    await status(cp, "Finishing")
    await status(cp, "Available")  # the driver unplugs
    await wait_state(hub, "sensor.bay_1_1_transaction_id", "unknown")
    stored = await record(hub, transaction_id)
    assert (stored.stop_reason, stored.energy_wh) == ("Remote", 4000)


async def test_tc_026_csms_remote_start_charging_session_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await booted(ocpp_hub, connect)
    await status(cp, "Available")
    cp.handlers["RemoteStartTransaction"] = lambda payload: {"status": "Rejected"}
    answer = await hub.services.call("charger", "start_charging", {"id_tag": "TAG-OK"}, PORT_1)
    assert list(answer.values()) == ["Rejected"]
    assert (await cp.wait_for_call("RemoteStartTransaction"))["idTag"] == "TAG-OK"
    assert no_transaction(hub)
    # The charge point stays connected and is answered as before.
    assert (await cp.call("Heartbeat", {}))["currentTime"]


async def test_tc_028_csms_remote_stop_transaction_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Charging; the charge point rejects the RemoteStopTransaction: the session goes on."""
    hub, cp = await booted(ocpp_hub, connect)
    transaction_id = await charging(hub, cp)
    cp.handlers["RemoteStopTransaction"] = lambda payload: {"status": "Rejected"}
    answer = await hub.services.call("charger", "stop_charging", {}, PORT_1)
    assert list(answer.values()) == ["Rejected"]
    assert await cp.wait_for_call("RemoteStopTransaction") == {"transactionId": transaction_id}
    assert state(hub, "sensor.bay_1_1_transaction_id") == str(transaction_id)
    assert (await record(hub, transaction_id)).stopped_at is None


# Core: reset ------------------------------------------------------------------------------


async def _reset(ocpp_hub: HubFactory, connect: Connect, kind: str) -> None:
    """Connector 1 made Inoperative, Reset of the kind, the reboot (BootNotification and a
    StatusNotification per connector and connectorId 0, connector 1 still Unavailable),
    then Operative again."""
    hub, cp = await booted(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp",
        "change_availability",
        {**CP, "operational_status": "Inoperative", "connector_id": 1},
    )
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ChangeAvailability") == {"connectorId": 1, "type": "Inoperative"}
    await status(cp, "Unavailable")
    answer = await hub.services.call("ocpp", "reset", {**CP, "type": kind})
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("Reset") == {"type": kind}
    await cp.close()
    await wait_state(hub, "sensor.bay_1_connectivity", "offline")
    rebooted = await connect(ws_url(hub, "CP-1"))
    assert (await rebooted.call("BootNotification", BOOT))["status"] == "Accepted"
    await status(rebooted, "Available", 0)
    await status(rebooted, "Unavailable", 1)
    await status(rebooted, "Available", 2)
    assert state(hub, "sensor.bay_1_1_status") == "Unavailable"
    answer = await hub.services.call(
        "ocpp", "change_availability", {**CP, "operational_status": "Operative", "connector_id": 1}
    )
    assert answer == {"status": "Accepted"}
    assert await rebooted.wait_for_call("ChangeAvailability") == {
        "connectorId": 1,
        "type": "Operative",
    }
    await status(rebooted, "Available")
    assert state(hub, "sensor.bay_1_1_status") == "Available"


async def test_tc_013_csms_hard_reset(ocpp_hub: HubFactory, connect: Connect) -> None:
    await _reset(ocpp_hub, connect, "Hard")


async def test_tc_014_csms_soft_reset(ocpp_hub: HubFactory, connect: Connect) -> None:
    await _reset(ocpp_hub, connect, "Soft")


# Core: unlock connector -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "connector", "answer"),
    [
        ("TC_017_2: fixed cable", 1, "NotSupported"),
        ("TC_030: unlock failure", 1, "UnlockFailed"),
        ("TC_031: unknown connector", 9, "NotSupported"),
    ],
)
async def test_tc_017_2_030_031_csms_unlock_connector_refused(
    ocpp_hub: HubFactory, connect: Connect, case: str, connector: int, answer: str
) -> None:
    """UnlockConnector.req for the connector; the charge point's refusal is the service's
    answer, and the charge point stays connected."""
    hub, cp = await booted(ocpp_hub, connect)
    cp.handlers["UnlockConnector"] = lambda payload: {"status": answer}
    result = await hub.services.call("ocpp", "unlock_connector", {**CP, "connector_id": connector})
    assert result == {"status": answer}
    assert await cp.wait_for_call("UnlockConnector") == {"connectorId": connector}
    assert (await cp.call("Heartbeat", {}))["currentTime"]


async def test_tc_018_1_csms_unlock_connector_with_charging_session(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Charging; UnlockConnector: Unlocked, StopTransaction with reason UnlockCommand,
    Finishing, Available after unplugging."""
    hub, cp = await booted(ocpp_hub, connect)
    transaction_id = await charging(hub, cp)
    cp.handlers["UnlockConnector"] = lambda payload: {"status": "Unlocked"}
    result = await hub.services.call("ocpp", "unlock_connector", {**CP, "connector_id": 1})
    assert result == {"status": "Unlocked"}
    assert await cp.wait_for_call("UnlockConnector") == {"connectorId": 1}
    assert await stop(cp, transaction_id, "UnlockCommand") == {}
    await status(cp, "Finishing")
    await status(cp, "Available")
    await wait_state(hub, "sensor.bay_1_1_transaction_id", "unknown")
    assert (await record(hub, transaction_id)).stop_reason == "UnlockCommand"


# Core: configuration ----------------------------------------------------------------------

CORE_KEYS = [
    {"key": "HeartbeatInterval", "readonly": False, "value": "30"},
    {"key": "MeterValueSampleInterval", "readonly": False, "value": "60"},
    {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
    {"key": "SupportedFeatureProfiles", "readonly": True, "value": "Core,SmartCharging"},
]


async def test_tc_019_1_csms_retrieve_all_configuration_keys(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """GetConfiguration.req without keys (all of them); the answer is returned whole."""
    hub, cp = await booted(ocpp_hub, connect)
    cp.handlers["GetConfiguration"] = lambda payload: {"configurationKey": CORE_KEYS}
    answer = await hub.services.call("ocpp", "get_configuration", CP)
    assert await cp.wait_for_call("GetConfiguration") == {}
    assert answer == {"configurationKey": CORE_KEYS}


async def test_tc_019_2_csms_retrieve_specific_configuration_key(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """GetConfiguration.req for named keys; an unknown one comes back in unknownKey."""
    hub, cp = await booted(ocpp_hub, connect)

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        known = {entry["key"]: entry for entry in CORE_KEYS}
        return {
            "configurationKey": [known[k] for k in payload["key"] if k in known],
            "unknownKey": [k for k in payload["key"] if k not in known],
        }

    cp.handlers["GetConfiguration"] = answer
    result = await hub.services.call(
        "ocpp", "get_configuration", {**CP, "key": ["SupportedFeatureProfiles", "NoSuchKey"]}
    )
    assert await cp.wait_for_call("GetConfiguration") == {
        "key": ["SupportedFeatureProfiles", "NoSuchKey"]
    }
    assert result["configurationKey"] == [CORE_KEYS[3]]
    assert result["unknownKey"] == ["NoSuchKey"]
    # A key past CiString50 is a 400: nothing is sent.
    with pytest.raises(ServiceValidationError):
        await hub.services.call("ocpp", "get_configuration", {**CP, "key": ["K" * 51]})
    assert len(calls(cp, "GetConfiguration")) == 1


@pytest.mark.parametrize(
    ("case", "key", "value", "answer"),
    [
        ("TC_040_1: key not supported", "Testing", "true", "NotSupported"),
        ("TC_040_2: invalid value", "MeterValueSampleInterval", "-1", "Rejected"),
    ],
)
async def test_tc_040_1_2_csms_configuration_keys_refused(
    ocpp_hub: HubFactory, connect: Connect, case: str, key: str, value: str, answer: str
) -> None:
    hub, cp = await booted(ocpp_hub, connect)
    cp.handlers["ChangeConfiguration"] = lambda payload: {"status": answer}
    result = await hub.services.call(
        "ocpp", "change_configuration", {**CP, "key": key, "value": value}
    )
    assert result == {"status": answer}
    assert await cp.wait_for_call("ChangeConfiguration") == {"key": key, "value": value}
    assert (await cp.call("Heartbeat", {}))["currentTime"]


# Core: power failure and offline transactions --------------------------------------------


async def test_tc_032_1_csms_power_failure_boot_stop_transactions(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Charging; power lost and back: BootNotification Accepted, connector 0 Available,
    the transaction's connector Finishing, StopTransaction with reason PowerLoss."""
    hub, cp = await booted(ocpp_hub, connect)
    transaction_id = await charging(hub, cp)
    await cp.close()
    await wait_state(hub, "sensor.bay_1_connectivity", "offline")
    cp = await connect(ws_url(hub, "CP-1"))
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    await status(cp, "Available", 0)
    await status(cp, "Finishing", 1)
    await status(cp, "Available", 2)
    assert await stop(cp, transaction_id, "PowerLoss", idTag="TAG-OK") == {
        "idTagInfo": {"status": "Accepted"}
    }
    await wait_state(hub, "sensor.bay_1_1_transaction_id", "unknown")
    assert (await record(hub, transaction_id)).stop_reason == "PowerLoss"


async def _reconnect(hub: Hub, cp: RawChargePoint, connect: Connect) -> RawChargePoint:
    """Connectivity removed, then restored (the charge point does not reboot)."""
    await cp.close()
    await wait_state(hub, "sensor.bay_1_connectivity", "offline")
    restored = await connect(ws_url(hub, "CP-1"))
    await wait_state(hub, "sensor.bay_1_connectivity", "online")
    return restored


async def test_tc_037_1_csms_offline_start_transaction_valid_id_tag(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A transaction started offline with a valid idTag: its queued StartTransaction
    (an earlier timestamp) is Accepted, then Charging."""
    hub, cp = await booted(ocpp_hub, connect)
    cp = await _reconnect(hub, cp, connect)
    started = await start(cp, minutes=-20, meter=150)
    assert started["idTagInfo"]["status"] == "Accepted"
    await status(cp, "Charging")
    await wait_state(hub, "sensor.bay_1_1_transaction_id", str(started["transactionId"]))
    stored = await record(hub, started["transactionId"])
    assert stored.started_at == datetime.fromisoformat(at(-20)).timestamp()
    assert stored.meter_start_wh == 150


async def test_tc_037_3_csms_offline_start_transaction_invalid_id_tag(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Started offline with an idTag the Central System does not accept: the queued
    StartTransaction is answered Invalid; the charge point (StopTransactionOnInvalidId)
    stops it with reason DeAuthorized, which is answered and closes the session."""
    hub, cp = await booted(ocpp_hub, connect)
    cp = await _reconnect(hub, cp, connect)
    started = await start(cp, tag="TAG-UNKNOWN", minutes=-20)
    assert started["idTagInfo"]["status"] == "Invalid"
    transaction_id = started["transactionId"]
    await status(cp, "Charging")
    answer = await stop(cp, transaction_id, "DeAuthorized", minutes=-19, idTag="TAG-UNKNOWN")
    assert answer == {"idTagInfo": {"status": "Invalid"}}
    await status(cp, "Finishing")
    await wait_state(hub, "sensor.bay_1_1_transaction_id", "unknown")
    assert (await record(hub, transaction_id)).stop_reason == "DeAuthorized"


async def test_tc_039_csms_offline_transaction(ocpp_hub: HubFactory, connect: Connect) -> None:
    """Started and stopped while offline: the queued StartTransaction (Accepted) and
    StopTransaction (reason Local) arrive after the reconnection; the session is whole."""
    hub, cp = await booted(ocpp_hub, connect)
    cp = await _reconnect(hub, cp, connect)
    started = await start(cp, minutes=-40, meter=1000)
    assert started["idTagInfo"]["status"] == "Accepted"
    transaction_id = started["transactionId"]
    assert await stop(cp, transaction_id, "Local", minutes=-10, idTag="TAG-OK") == {
        "idTagInfo": {"status": "Accepted"}
    }
    stored = await record(hub, transaction_id)
    assert (stored.stop_reason, stored.energy_wh) == ("Local", 3000)
    assert stored.stopped_at == datetime.fromisoformat(at(-10)).timestamp()
    assert no_transaction(hub)


# Local Auth List Management: refusals ---------------------------------------------------


async def test_tc_042_1_csms_get_local_list_version_not_supported(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """GetLocalListVersion.req answered listVersion -1, or with a NotSupported CallError:
    the hub reports it unsupported / the CallError's code, and keeps the connection."""
    hub, cp = await booted(ocpp_hub, connect)
    cp.handlers["GetLocalListVersion"] = lambda payload: {"listVersion": -1}
    result = await hub.services.call("ocpp", "get_local_list_version", CP)
    assert await cp.wait_for_call("GetLocalListVersion") == {}
    assert (result["version"], result["supported"]) == (-1, False)
    cp.handlers["GetLocalListVersion"] = lambda payload: ErrorAnswer("NotSupported", "no list")
    with pytest.raises(OcppCallError) as info:
        await hub.services.call("ocpp", "get_local_list_version", CP)
    assert info.value.code == "NotSupported"
    assert (await cp.call("Heartbeat", {}))["currentTime"]


@pytest.mark.parametrize(
    ("case", "answer"),
    [
        ("TC_043_1: NotSupported", {"status": "NotSupported"}),
        ("TC_043_1: CallError", ErrorAnswer("NotSupported", "no local list")),
        ("TC_043_3: Failed", {"status": "Failed"}),
    ],
)
async def test_tc_043_1_3_csms_send_local_authorization_list_refused(
    ocpp_hub: HubFactory, connect: Connect, case: str, answer: Any
) -> None:
    """SendLocalList.req with updateType Full, every entry with an idTagInfo; a refusal
    (NotSupported, a NotSupported CallError, Failed) is reported and the charge point is
    not taken to hold the list."""
    hub, cp = await booted(ocpp_hub, connect)
    cp.handlers["SendLocalList"] = lambda payload: answer
    data = {**CP, "update_type": "full"}
    if isinstance(answer, ErrorAnswer):
        with pytest.raises(OcppCallError) as info:
            await hub.services.call("ocpp", "send_local_list", data)
        assert info.value.code == "NotSupported"
    else:
        result = await hub.services.call("ocpp", "send_local_list", data)
        assert result["status"] == answer["status"]
        assert result["sent"] == 0
    sent = await cp.wait_for_call("SendLocalList")
    assert sent["updateType"] == "Full"
    assert sent["listVersion"] == 1
    assert sent["localAuthorizationList"] == [
        {"idTag": "TAG-OK", "idTagInfo": {"status": "Accepted"}}
    ]
    assert "CP-1" not in hub.data[DATA_LOCAL_LISTS].lists
    assert (await cp.call("Heartbeat", {}))["currentTime"]


# Security whitepaper ----------------------------------------------------------------------


async def test_tc_077_csms_invalid_charge_point_certificate_security_event(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """ExtendedTriggerMessage SignChargePointCertificate (no connectorId), SignCertificate
    Accepted, CertificateSigned, which the charge point rejects, then its
    SecurityEventNotification InvalidChargePointCertificate: answered and logged."""
    hub = await ocpp_hub(profile_3(pki))
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"), ssl_context=client_context(pki, pki.clients["CP-1"])
    )
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    cp.handlers["CertificateSigned"] = lambda payload: {"status": "Rejected"}
    result = await hub.services.call("ocpp", "renew_certificate", CP)
    assert result == {"status": "Accepted"}
    assert await cp.wait_for_call("ExtendedTriggerMessage") == {
        "requestedMessage": "SignChargePointCertificate"
    }
    csr, _ = csr_for("CP-1")
    assert await cp.call("SignCertificate", {"csr": csr}) == {"status": "Accepted"}
    signed = await cp.wait_for_call("CertificateSigned")
    assert "BEGIN CERTIFICATE" in signed["certificateChain"]
    event = {"type": "InvalidChargePointCertificate", "timestamp": at(0)}
    assert await cp.call("SecurityEventNotification", event) == {}
    reported = [
        e.data["type"]
        for e in security_log(hub).query(kind="ocpp_charger_security_event")
        if e.data.get("type")
    ]
    assert reported == ["InvalidChargePointCertificate"]


async def test_tc_078_csms_invalid_central_system_certificate_security_event(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """InstallCertificate CentralSystemRootCertificate, Rejected by the charge point, then
    its SecurityEventNotification InvalidCentralSystemCertificate: answered and logged."""
    hub = await ocpp_hub(profile_1())
    cp = await connect(ws_url(hub, "CP-1"), password=PASSWORD)
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    cp.handlers["InstallCertificate"] = lambda payload: {"status": "Rejected"}
    pem = pki.ca.read_text()
    result = await hub.services.call(
        "ocpp",
        "install_certificate",
        {**CP, "certificate_type": "CSMSRootCertificate", "certificate": pem},
    )
    assert result == {"status": "Rejected"}
    assert await cp.wait_for_call("InstallCertificate") == {
        "certificateType": "CentralSystemRootCertificate",
        "certificate": pem,
    }
    event = {"type": "InvalidCentralSystemCertificate", "timestamp": at(0)}
    assert await cp.call("SecurityEventNotification", event) == {}
    [logged] = security_log(hub).query(kind="ocpp_charger_security_event")
    assert logged.data["type"] == "InvalidCentralSystemCertificate"


async def test_tc_085_csms_basic_authentication_valid(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Security profile 1: <ChargePointId>:<password> in the upgrade request opens the
    socket and the charge point boots; a wrong password or another id is a 401."""
    hub = await ocpp_hub(profile_1())
    cp = await connect(ws_url(hub, "CP-1"), password=PASSWORD)
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    await status(cp, "Available", 0)
    for user, password in ((None, "not-" + PASSWORD), ("CP-2", PASSWORD)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await connect(ws_url(hub, "CP-1"), password=password, user=user)
        assert info.value.status == 401


async def test_tc_086_csms_tls_server_side_certificate_valid(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """Security profile 2: TLS 1.2 or above with the suites OCPP lists, an X.509 server
    certificate with a serial number and the server's name as commonName; then Basic auth
    over it and the boot."""
    hub = await ocpp_hub(
        f"""
        listeners:
          - port: 0
            host: 127.0.0.1
            security_profile: 2
            certfile: [{pki.server_rsa[0]}, {pki.server_ec[0]}]
            keyfile: [{pki.server_rsa[1]}, {pki.server_ec[1]}]
        chargers:
          - id: CP-1
            password: {PASSWORD}
        """
    )
    port = hub.data[DATA_SYSTEM].listeners[0].port
    for suite in (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    ):
        context = client_context(pki)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(suite)
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
        )
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.cipher()[0] == suite
        assert ssl_object.version() == "TLSv1.2"
        certificate = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
        assert certificate.serial_number
        [cn] = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        assert cn.value == "127.0.0.1"
        writer.close()
        await writer.wait_closed()
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"), password=PASSWORD, ssl_context=client_context(pki)
    )
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"


async def test_tc_087_csms_tls_client_side_certificate_valid(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """Security profile 3: the charge point's certificate (commonName its id) opens the
    socket and it boots; without a client certificate the handshake fails."""
    hub = await ocpp_hub(profile_3(pki, ca=False))
    url = ws_url(hub, "CP-1", scheme="wss")
    cp = await connect(url, ssl_context=client_context(pki, pki.clients["CP-1"]))
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    await status(cp, "Available", 0)
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionResetError)):
        await connect(url, ssl_context=client_context(pki))


async def test_tc_088_csms_websocket_subprotocol_negotiation(ocpp_hub: HubFactory) -> None:
    """The charge point offers a version the Central System does not speak and ocpp1.6:
    the upgrade answer selects ocpp1.6 in Sec-WebSocket-Protocol and the charge point boots
    on it; offering no version it speaks is refused."""
    hub = await ocpp_hub(CONFIG)
    url = ws_url(hub, "CP-1")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=("ocpp1.2", "ocpp1.6")) as ws:
            assert ws.protocol == "ocpp1.6"
            await ws.send_json([2, "boot-1", "BootNotification", BOOT])
            answer = await asyncio.wait_for(ws.receive_json(), 10)
            assert answer[:2] == [3, "boot-1"]
            assert answer[2]["status"] == "Accepted"
        refused = await session.ws_connect(url, protocols=("ocpp1.2",))
        try:
            closed = await asyncio.wait_for(refused.receive(), 10)
            assert closed.type is aiohttp.WSMsgType.CLOSE
            assert closed.data == 1002  # protocol error: no OCPP version in common
        finally:
            await refused.close()
