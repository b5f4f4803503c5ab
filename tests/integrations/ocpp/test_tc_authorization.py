"""Authorization (C), CSMS side: the OCA test cases TC_C_*_CSMS of OCPP 2.0.1 and their 1.6
equivalents (TC_023_*_CSMS, TC_061_CSMS), played by a raw charge point over a websocket.

The hub holds tokens with statuses, expiries and groups (configuration and services); the
charger's Authorize, TransactionEvent, StartTransaction and StopTransaction get the token's
IdTokenInfo / IdTagInfo.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import voluptuous as vol

from hub.exceptions import ServiceValidationError
from hub.security import security_log
from hub.testing import Connect, ErrorAnswer
from integrations.ocpp.connection import OcppCallError
from tests.integrations.ocpp.conftest import HubFactory, ws_url

TOKENS = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
call_timeout: 2
chargers:
  - id: CP-16
    name: Bay 16
  - id: CP-201
    name: Bay 201
id_tags: [PLAIN-1]
master_pass_group: POLICE
id_tokens:
  - id: VALID-1
    group: FAMILY
  - id: VALID-2
    group: FAMILY
    type: ISO15693
  - id: STRANGER
  - id: BLOCKED-1
    status: Blocked
  - id: EXPIRED-1
    expiry: "2020-01-01T00:00:00Z"
  - id: LATER-1
    expiry: "2099-06-01T12:00:00Z"
  - id: EXPIRED-2
    status: Expired
  - id: INVALID-1
    status: Invalid
  - id: NO-CREDIT
    status: NoCredit
  - id: MASTER-1
    group: POLICE
    type: Central
  - id: LONG-GROUP
    group: GROUP-NAME-LONGER-THAN-TWENTY
"""

NOW = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
_SEQ = itertools.count()


async def boot201(cp: Any) -> None:
    answer = await cp.call(
        "BootNotification",
        {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"},
    )
    assert answer["status"] == "Accepted"


async def boot16(cp: Any) -> None:
    answer = await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    assert answer["status"] == "Accepted"


async def authorize201(cp: Any, token: str, kind: str = "ISO14443") -> dict[str, Any]:
    answer = await cp.call("Authorize", {"idToken": {"idToken": token, "type": kind}})
    info: dict[str, Any] = answer["idTokenInfo"]
    return info


async def authorize16(cp: Any, tag: str) -> dict[str, Any]:
    info: dict[str, Any] = (await cp.call("Authorize", {"idTag": tag}))["idTagInfo"]
    return info


def event201(
    tx: str,
    event_type: str,
    trigger: str,
    token: str | None,
    evse: int = 1,
    stopped_reason: str | None = None,
) -> dict[str, Any]:
    info: dict[str, Any] = {"transactionId": tx, "chargingState": "Charging"}
    if stopped_reason is not None:
        info["stoppedReason"] = stopped_reason
        info["chargingState"] = "Idle"
    event: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": NOW,
        "triggerReason": trigger,
        "seqNo": next(_SEQ),
        "transactionInfo": info,
        "evse": {"id": evse, "connectorId": 1},
    }
    if token is not None:
        event["idToken"] = {"idToken": token, "type": "ISO14443"}
    return event


async def station201(ocpp_hub: HubFactory, connect: Connect) -> tuple[Any, Any]:
    hub = await ocpp_hub(TOKENS)
    cp = await connect(ws_url(hub, "CP-201"), protocol="ocpp2.0.1")
    await boot201(cp)
    return hub, cp


async def station16(ocpp_hub: HubFactory, connect: Connect) -> tuple[Any, Any]:
    hub = await ocpp_hub(TOKENS)
    cp = await connect(ws_url(hub, "CP-16"))
    await boot16(cp)
    return hub, cp


# OCPP 2.0.1 ------------------------------------------------------------------------------


async def test_tc_c_02_csms_local_start_authorization_invalid_unknown(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """C01.FR.07 / C06.FR.04: a token the hub does not know is Unknown; one it holds as
    Invalid is Invalid."""
    _, cp = await station201(ocpp_hub, connect)
    assert await authorize201(cp, "NOBODY-KNOWS") == {"status": "Unknown"}
    assert (await authorize201(cp, "INVALID-1"))["status"] == "Invalid"
    # A transaction started with it anyway is told the same (TC_E_16's first step).
    answer = await cp.call("TransactionEvent", event201("TX-U", "Started", "Authorized", "NOBODY"))
    assert answer["idTokenInfo"]["status"] == "Unknown"


async def test_tc_c_06_csms_local_start_authorization_blocked(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    _, cp = await station201(ocpp_hub, connect)
    assert await authorize201(cp, "BLOCKED-1") == {"status": "Blocked"}
    # Ids are case-insensitive (IdTokenType: "case insensitive").
    assert (await authorize201(cp, "blocked-1"))["status"] == "Blocked"


async def test_tc_c_07_csms_local_start_authorization_expired(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """An accepted token past its expiry is Expired, and says since when; one set Expired
    is Expired; one whose expiry is ahead is Accepted with its cacheExpiryDateTime."""
    _, cp = await station201(ocpp_hub, connect)
    assert await authorize201(cp, "EXPIRED-1") == {
        "status": "Expired",
        "cacheExpiryDateTime": "2020-01-01T00:00:00Z",
    }
    assert (await authorize201(cp, "EXPIRED-2"))["status"] == "Expired"
    assert await authorize201(cp, "LATER-1") == {
        "status": "Accepted",
        "cacheExpiryDateTime": "2099-06-01T12:00:00Z",
    }
    # A 2.0.1-only status goes out as it is.
    assert (await authorize201(cp, "NO-CREDIT"))["status"] == "NoCredit"


async def test_tc_c_08_csms_authorization_through_authorization_cache_accepted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """C12.FR.03: a station that authorized from its cache sends TransactionEvent with
    triggerReason Authorized; the hub answers the token's status."""
    _, cp = await station201(ocpp_hub, connect)
    await cp.call("TransactionEvent", event201("TX-C8", "Started", "CablePluggedIn", None))
    answer = await cp.call(
        "TransactionEvent", event201("TX-C8", "Updated", "Authorized", "PLAIN-1")
    )
    assert answer["idTokenInfo"] == {"status": "Accepted"}


async def test_tc_c_20_csms_authorization_through_authorization_cache_invalid(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """C12.FR.03: the hub checks a token the station took from its cache: Invalid at the
    hub is Invalid, unknown is Unknown."""
    _, cp = await station201(ocpp_hub, connect)
    await cp.call("TransactionEvent", event201("TX-C20", "Started", "CablePluggedIn", None))
    answer = await cp.call(
        "TransactionEvent", event201("TX-C20", "Updated", "Authorized", "INVALID-1")
    )
    assert answer["idTokenInfo"] == {"status": "Invalid"}
    answer = await cp.call(
        "TransactionEvent", event201("TX-C20", "Updated", "Authorized", "CACHED-ONLY")
    )
    assert answer["idTokenInfo"] == {"status": "Unknown"}


async def test_tc_c_37_csms_clear_authorization_cache_accepted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await hub.services.call("ocpp", "clear_cache", {"charge_point_id": "CP-201"})
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ClearCache") == {}


async def test_tc_c_38_csms_clear_authorization_cache_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["ClearCache"] = lambda payload: {"status": "Rejected"}
    answer = await hub.services.call("ocpp", "clear_cache", {"charge_point_id": "CP-201"})
    assert answer == {"status": "Rejected"}
    assert await cp.wait_for_call("ClearCache") == {}


async def test_tc_c_39_csms_authorization_by_group_id_success(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """C09.FR.02/03: both tokens of a group carry the group in groupIdToken; the second
    may stop what the first started (no foreign-stop record)."""
    hub, cp = await station201(ocpp_hub, connect)
    group = {"idToken": "FAMILY", "type": "Central"}
    assert await authorize201(cp, "VALID-2", "ISO15693") == {
        "status": "Accepted",
        "groupIdToken": group,
    }
    started = await cp.call(
        "TransactionEvent", event201("TX-C39", "Started", "Authorized", "VALID-1")
    )
    assert started["idTokenInfo"] == {"status": "Accepted", "groupIdToken": group}
    assert (await authorize201(cp, "VALID-2", "ISO15693"))["groupIdToken"] == group
    stop = await cp.call(
        "TransactionEvent", event201("TX-C39", "Updated", "StopAuthorized", "VALID-2")
    )
    assert stop["idTokenInfo"] == {"status": "Accepted", "groupIdToken": group}
    ended = await cp.call(
        "TransactionEvent",
        event201("TX-C39", "Ended", "StopAuthorized", "VALID-2", stopped_reason="Local"),
    )
    assert ended["idTokenInfo"]["status"] == "Accepted"
    assert not security_log(hub).query(kind="ocpp_foreign_stop")
    # 2.0.1 carries a group of up to 36 characters (1.6's parentIdTag: 20).
    long_group = (await authorize201(cp, "LONG-GROUP"))["groupIdToken"]
    assert long_group["idToken"] == "GROUP-NAME-LONGER-THAN-TWENTY"


async def test_tc_c_40_csms_authorization_by_group_id_with_local_authorization_list(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Both tokens of the group are in the station's local list (sent by the hub, with
    their group); the station starts and stops from it without Authorize, and the hub
    answers each TransactionEvent with the token's group."""
    hub, cp = await station201(ocpp_hub, connect)
    await hub.services.call(
        "ocpp",
        "send_local_list",
        {"charge_point_id": "CP-201", "update_type": "full", "id_tokens": ["VALID-1", "VALID-2"]},
    )
    sent = await cp.wait_for_call("SendLocalList")
    group = {"idToken": "FAMILY", "type": "Central"}
    assert [e["idTokenInfo"]["groupIdToken"] for e in sent["localAuthorizationList"]] == [
        group,
        group,
    ]
    started = await cp.call(
        "TransactionEvent", event201("TX-C40", "Started", "Authorized", "VALID-1")
    )
    assert started["idTokenInfo"] == {"status": "Accepted", "groupIdToken": group}
    stop = await cp.call(
        "TransactionEvent", event201("TX-C40", "Updated", "StopAuthorized", "VALID-2")
    )
    assert stop["idTokenInfo"] == {"status": "Accepted", "groupIdToken": group}
    assert not security_log(hub).query(kind="ocpp_foreign_stop")


async def test_tc_c_43_csms_authorization_by_group_id_second_token_authorizes_the_stop(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Started with the first token; the second of its group is authorized (Authorize) and
    stops it; each answer carries the group."""
    hub, cp = await station201(ocpp_hub, connect)
    group = {"idToken": "FAMILY", "type": "Central"}
    started = await cp.call(
        "TransactionEvent", event201("TX-C43", "Started", "Authorized", "VALID-1")
    )
    assert started["idTokenInfo"] == {"status": "Accepted", "groupIdToken": group}
    assert await authorize201(cp, "VALID-2", "ISO15693") == {
        "status": "Accepted",
        "groupIdToken": group,
    }
    stop = await cp.call(
        "TransactionEvent", event201("TX-C43", "Updated", "StopAuthorized", "VALID-2")
    )
    assert stop["idTokenInfo"] == {"status": "Accepted", "groupIdToken": group}
    assert not security_log(hub).query(kind="ocpp_foreign_stop")


async def test_stop_by_a_token_outside_the_group_is_recorded(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The station decides; the hub answers the stopper's own status and records that a
    token outside the starter's group stopped the transaction."""
    hub, cp = await station201(ocpp_hub, connect)
    await cp.call("TransactionEvent", event201("TX-F", "Started", "Authorized", "VALID-1"))
    await cp.call("TransactionEvent", event201("TX-F", "Updated", "StopAuthorized", "STRANGER"))
    ended = await cp.call(
        "TransactionEvent",
        event201("TX-F", "Ended", "StopAuthorized", "STRANGER", stopped_reason="Local"),
    )
    assert ended["idTokenInfo"] == {"status": "Accepted"}
    [record] = security_log(hub).query(kind="ocpp_foreign_stop")
    assert record.charge_point_id == "CP-201"
    assert record.data["started_by"] == "VALID-1"
    assert record.data["stopped_by"] == "STRANGER"


async def test_tc_c_47_csms_stop_transaction_with_master_pass_all_transactions(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """C16.FR.01: the master pass is Accepted with its group; it ends every transaction."""
    hub, cp = await station201(ocpp_hub, connect)
    await cp.call("TransactionEvent", event201("TX-M1", "Started", "Authorized", "VALID-1", 1))
    await cp.call("TransactionEvent", event201("TX-M2", "Started", "Authorized", "STRANGER", 2))
    police = {"idToken": "POLICE", "type": "Central"}
    assert await authorize201(cp, "MASTER-1", "Central") == {
        "status": "Accepted",
        "groupIdToken": police,
    }
    for tx, evse in (("TX-M1", 1), ("TX-M2", 2)):
        answer = await cp.call(
            "TransactionEvent",
            event201(tx, "Ended", "StopAuthorized", "MASTER-1", evse, stopped_reason="MasterPass"),
        )
        assert answer["idTokenInfo"] == {"status": "Accepted", "groupIdToken": police}
    assert not security_log(hub).query(kind="ocpp_foreign_stop")


async def test_tc_c_48_csms_stop_transaction_with_master_pass_specific_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await cp.call("TransactionEvent", event201("TX-S1", "Started", "Authorized", "VALID-1", 1))
    await cp.call("TransactionEvent", event201("TX-S2", "Started", "Authorized", "VALID-2", 2))
    assert (await authorize201(cp, "MASTER-1", "Central"))["groupIdToken"]["idToken"] == "POLICE"
    answer = await cp.call(
        "TransactionEvent",
        event201("TX-S1", "Ended", "StopAuthorized", "MASTER-1", 1, stopped_reason="MasterPass"),
    )
    assert answer["idTokenInfo"] == {
        "status": "Accepted",
        "groupIdToken": {"idToken": "POLICE", "type": "Central"},
    }
    station = hub.data["ocpp.system"].stations["CP-201"]
    assert station.ports[1].transaction is None
    assert station.ports[2].transaction.ocpp_id == "TX-S2"


async def test_tc_c_49_csms_stop_transaction_with_master_pass_without_ui(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """C16.FR.02: a station without a UI ends every transaction with each one's own token
    and stoppedReason MasterPass; each is answered with that token's info."""
    hub, cp = await station201(ocpp_hub, connect)
    await cp.call("TransactionEvent", event201("TX-N1", "Started", "Authorized", "VALID-1", 1))
    await cp.call("TransactionEvent", event201("TX-N2", "Started", "Authorized", "STRANGER", 2))
    assert (await authorize201(cp, "MASTER-1", "Central"))["status"] == "Accepted"
    first = await cp.call(
        "TransactionEvent",
        event201("TX-N1", "Ended", "StopAuthorized", "VALID-1", 1, stopped_reason="MasterPass"),
    )
    assert first["idTokenInfo"] == {
        "status": "Accepted",
        "groupIdToken": {"idToken": "FAMILY", "type": "Central"},
    }
    second = await cp.call(
        "TransactionEvent",
        event201("TX-N2", "Ended", "StopAuthorized", "STRANGER", 2, stopped_reason="MasterPass"),
    )
    assert second["idTokenInfo"] == {"status": "Accepted"}
    assert not security_log(hub).query(kind="ocpp_foreign_stop")


# OCPP 1.6 --------------------------------------------------------------------------------


async def test_tc_023_1_csms_authorize_invalid(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 has no Unknown: a tag nobody knows is Invalid."""
    _, cp = await station16(ocpp_hub, connect)
    assert await authorize16(cp, "NOBODY") == {"status": "Invalid"}
    assert await authorize16(cp, "INVALID-1") == {"status": "Invalid"}
    assert await authorize16(cp, "PLAIN-1") == {"status": "Accepted"}


async def test_tc_023_2_csms_authorize_expired(ocpp_hub: HubFactory, connect: Connect) -> None:
    _, cp = await station16(ocpp_hub, connect)
    assert await authorize16(cp, "EXPIRED-1") == {
        "status": "Expired",
        "expiryDate": "2020-01-01T00:00:00Z",
    }
    assert await authorize16(cp, "LATER-1") == {
        "status": "Accepted",
        "expiryDate": "2099-06-01T12:00:00Z",
    }
    # 2.0.1-only statuses are Invalid to a 1.6 charge point.
    assert await authorize16(cp, "NO-CREDIT") == {"status": "Invalid"}


async def test_tc_023_3_csms_authorize_blocked(ocpp_hub: HubFactory, connect: Connect) -> None:
    _, cp = await station16(ocpp_hub, connect)
    assert await authorize16(cp, "BLOCKED-1") == {"status": "Blocked"}


async def test_tc_061_csms_clear_authorization_cache(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    answer = await hub.services.call("ocpp", "clear_cache", {"charge_point_id": "CP-16"})
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ClearCache") == {}


async def test_1_6_parent_id_tag_and_stop_by_the_group(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6's group is parentIdTag (at most 20 characters: a longer group is left out); a
    StopTransaction by a tag of the starter's group is not a foreign stop, one by another
    tag is recorded."""
    hub, cp = await station16(ocpp_hub, connect)
    assert await authorize16(cp, "VALID-2") == {"status": "Accepted", "parentIdTag": "FAMILY"}
    assert await authorize16(cp, "LONG-GROUP") == {"status": "Accepted"}
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "VALID-1", "meterStart": 0, "timestamp": NOW},
    )
    assert started["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FAMILY"}
    stopped = await cp.call(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "idTag": "VALID-2",
            "meterStop": 10,
            "timestamp": NOW,
        },
    )
    assert stopped["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FAMILY"}
    assert not security_log(hub).query(kind="ocpp_foreign_stop")

    again = await cp.call(
        "StartTransaction",
        {"connectorId": 2, "idTag": "VALID-1", "meterStart": 0, "timestamp": NOW},
    )
    await cp.call(
        "StopTransaction",
        {
            "transactionId": again["transactionId"],
            "idTag": "STRANGER",
            "meterStop": 5,
            "timestamp": NOW,
        },
    )
    [record] = security_log(hub).query(kind="ocpp_foreign_stop")
    assert record.data["stopped_by"] == "STRANGER"


async def test_authorize_unknown_accepts_unknown_tokens_but_not_blocked_ones(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(TOKENS + "authorize_unknown_id_tags: true\n")
    cp = await connect(ws_url(hub, "CP-201"), protocol="ocpp2.0.1")
    await boot201(cp)
    assert await authorize201(cp, "NOBODY") == {"status": "Accepted"}
    assert (await authorize201(cp, "BLOCKED-1"))["status"] == "Blocked"
    cp16 = await connect(ws_url(hub, "CP-16"))
    await boot16(cp16)
    assert await authorize16(cp16, "NOBODY") == {"status": "Accepted"}
    assert await authorize16(cp16, "EXPIRED-1") == {
        "status": "Expired",
        "expiryDate": "2020-01-01T00:00:00Z",
    }


# Tokens at run time ---------------------------------------------------------------------


async def test_id_tokens_added_updated_and_removed_at_run_time_survive_a_restart(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Any
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    assert await authorize201(cp, "NEW-CARD") == {"status": "Unknown"}
    added = await hub.services.call(
        "ocpp", "add_id_token", {"id": "NEW-CARD", "group": "FAMILY", "expiry": "2099-01-01"}
    )
    assert added["expiry"] == "2099-01-01T00:00:00Z"
    assert await authorize201(cp, "new-card") == {
        "status": "Accepted",
        "cacheExpiryDateTime": "2099-01-01T00:00:00Z",
        "groupIdToken": {"idToken": "FAMILY", "type": "Central"},
    }
    await hub.services.call("ocpp", "update_id_token", {"id": "NEW-CARD", "status": "Blocked"})
    assert (await authorize201(cp, "NEW-CARD"))["status"] == "Blocked"
    await hub.services.call("ocpp", "add_id_token", {"id": "GONE-SOON"})
    await hub.services.call("ocpp", "remove_id_token", {"id": "GONE-SOON"})
    listed = await hub.services.call("ocpp", "get_id_tokens", {"id": "NEW-CARD"})
    assert [(t["id"], t["status"], t["configured"]) for t in listed["id_tokens"]] == [
        ("NEW-CARD", "Blocked", False)
    ]
    await cp.close()
    await hub.stop()

    again = await ocpp_hub(TOKENS, tmp_path)
    cp2 = await connect(ws_url(again, "CP-201"), protocol="ocpp2.0.1")
    await boot201(cp2)
    assert (await authorize201(cp2, "NEW-CARD"))["status"] == "Blocked"
    assert await authorize201(cp2, "GONE-SOON") == {"status": "Unknown"}


@pytest.mark.parametrize(
    ("service", "data", "reason"),
    [
        ("add_id_token", {"id": ""}, "1 to 36"),
        ("add_id_token", {"id": "X" * 37}, "1 to 36"),
        ("add_id_token", {"id": "TAB\tTAB"}, "printable"),
        ("add_id_token", {"id": "OK", "status": "Unknown"}, "status"),
        ("add_id_token", {"id": "OK", "type": "Magic"}, "type"),
        ("add_id_token", {"id": "OK", "expiry": "tomorrow"}, "ISO 8601"),
        ("add_id_token", {"id": "OK", "expiry": "1970-01-01T00:00:00Z"}, "2000 and 2100"),
        ("add_id_token", {"id": "OK", "group": "G" * 40}, "1 to 36"),
        ("add_id_token", {"id": "VALID-1"}, "exists"),
        ("update_id_token", {"id": "VALID-1", "status": "Blocked"}, "configuration.yaml"),
        ("update_id_token", {"id": "NOBODY", "status": "Blocked"}, "no id token"),
        ("remove_id_token", {"id": "PLAIN-1"}, "configuration.yaml"),
        ("remove_id_token", {"id": "NOBODY"}, "no id token"),
    ],
)
async def test_bad_token_service_input_is_refused(
    ocpp_hub: HubFactory, service: str, data: dict[str, Any], reason: str
) -> None:
    hub = await ocpp_hub(TOKENS)
    with pytest.raises(ServiceValidationError, match=reason) as info:
        await hub.services.call("ocpp", service, data)
    assert info.value.http_status == 400


async def test_token_services_roles(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(TOKENS)
    assert hub.services.role("ocpp", "add_id_token") == "operator"
    assert hub.services.role("ocpp", "update_id_token") == "operator"
    assert hub.services.role("ocpp", "remove_id_token") == "operator"
    assert hub.services.role("ocpp", "get_id_tokens") == "viewer"
    assert hub.services.role("ocpp", "clear_cache") == "admin"


async def test_bad_id_tokens_config_is_refused(ocpp_hub: HubFactory) -> None:
    from integrations.ocpp import CONFIG_SCHEMA

    base = {"listeners": [{"port": 0, "security_profile": 0}]}
    for tokens in (
        [{"id": "A"}, {"id": "a"}],
        [{"id": "A", "status": "Maybe"}],
        [{"id": "A", "expiry": "soon"}],
        [{"id": ""}],
    ):
        with pytest.raises(vol.Invalid):
            CONFIG_SCHEMA({**base, "id_tokens": tokens})
    checked = CONFIG_SCHEMA({**base, "id_tokens": [{"id": "A", "expiry": "2030-01-01T00:00:00"}]})
    assert checked["id_tokens"][0]["expiry"] == datetime(2030, 1, 1, tzinfo=UTC)


async def test_clear_cache_callerror_is_reported(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["ClearCache"] = lambda payload: ErrorAnswer("NotSupported", "no cache")
    with pytest.raises(OcppCallError, match="NotSupported"):
        await hub.services.call("ocpp", "clear_cache", {"charge_point_id": "CP-201"})


async def test_1_6_concurrent_tx_on_another_connector_and_station(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 AuthorizationStatus ConcurrentTx: an idTag already running a transaction on one
    connector is answered ConcurrentTx when it starts on another connector or authorizes
    at another charge point; the running transaction's own station may authorize it (the
    driver's stop); once it stops, the tag is Accepted again."""
    hub = await ocpp_hub(TOKENS.replace("chargers:\n", "chargers:\n  - id: CP-16B\n"))
    cp = await connect(ws_url(hub, "CP-16"))
    await boot16(cp)
    other = await connect(ws_url(hub, "CP-16B"))
    await boot16(other)
    first = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "VALID-1", "meterStart": 0, "timestamp": NOW},
    )
    assert first["idTagInfo"]["status"] == "Accepted"
    second = await cp.call(
        "StartTransaction",
        {"connectorId": 2, "idTag": "valid-1", "meterStart": 0, "timestamp": NOW},
    )
    assert second["idTagInfo"] == {"status": "ConcurrentTx", "parentIdTag": "FAMILY"}
    assert second["transactionId"] != first["transactionId"]
    assert (await authorize16(other, "VALID-1"))["status"] == "ConcurrentTx"
    assert (await authorize16(cp, "VALID-1"))["status"] == "Accepted"
    # Another tag of the same group is not concurrent; a blocked tag stays Blocked.
    assert (await authorize16(other, "VALID-2"))["status"] == "Accepted"
    assert (await authorize16(other, "BLOCKED-1"))["status"] == "Blocked"
    for started in (first, second):
        await cp.call(
            "StopTransaction",
            {"transactionId": started["transactionId"], "meterStop": 10, "timestamp": NOW},
        )
    assert (await authorize16(other, "VALID-1"))["status"] == "Accepted"


async def test_1_6_concurrent_tx_allowed_by_configuration(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(TOKENS + "allow_concurrent_tx: true\n")
    cp = await connect(ws_url(hub, "CP-16"))
    await boot16(cp)
    for connector in (1, 2):
        started = await cp.call(
            "StartTransaction",
            {"connectorId": connector, "idTag": "PLAIN-1", "meterStart": 0, "timestamp": NOW},
        )
        assert started["idTagInfo"] == {"status": "Accepted"}
