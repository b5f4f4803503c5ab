"""Local Authorization List Management (D), CSMS side: the OCA test cases TC_D_*_CSMS of
OCPP 2.0.1 and the 1.6 equivalents (TC_042_*_CSMS, TC_043_*_CSMS), played by a raw charge
point over a websocket; and the simulated charger's side of the same messages.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hub.exceptions import ServiceValidationError
from hub.testing import Connect
from integrations.ocpp.simulator import SimulatedChargePoint
from tests.integrations.ocpp.conftest import HubFactory, wait_state, ws_url

LISTS = """
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
  - id: SIM-16
  - id: SIM-201
id_tags: [PLAIN-1]
id_tokens:
  - id: VALID-1
    group: FAMILY
  - id: BLOCKED-1
    status: Blocked
  - id: LATER-1
    expiry: "2099-06-01T12:00:00Z"
  - id: A-TOKEN-TOO-LONG-FOR-ONE-SIX
"""

CP16 = {"charge_point_id": "CP-16"}
CP201 = {"charge_point_id": "CP-201"}


async def station(
    ocpp_hub: HubFactory, connect: Connect, version: str, config: str = LISTS
) -> tuple[Any, Any]:
    hub = await ocpp_hub(config)
    if version == "2.0.1":
        cp = await connect(ws_url(hub, "CP-201"), protocol="ocpp2.0.1")
        answer = await cp.call(
            "BootNotification",
            {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"},
        )
    else:
        cp = await connect(ws_url(hub, "CP-16"))
        answer = await cp.call(
            "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
    assert answer["status"] == "Accepted"
    return hub, cp


def recorder(cp: Any, action: str, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answer each call of action with the next answer (the last one repeats); keep them."""
    seen: list[dict[str, Any]] = []

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(payload)
        return answers[min(len(seen), len(answers)) - 1]

    cp.handlers[action] = handle
    return seen


def ids_201(payload: dict[str, Any]) -> list[str]:
    return [entry["idToken"]["idToken"] for entry in payload.get("localAuthorizationList", ())]


# OCPP 2.0.1 ------------------------------------------------------------------------------


async def test_tc_d_01_csms_send_local_authorization_list_full(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """D01.FR.01/06/18: Full, versionNumber > 0, unique tokens, each with idTokenInfo."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    result = await hub.services.call("ocpp", "send_local_list", {**CP201, "update_type": "full"})
    assert result["status"] == "Accepted"
    [payload] = sent
    assert payload["updateType"] == "Full"
    assert payload["versionNumber"] == result["version"] == 1
    entries = {e["idToken"]["idToken"]: e for e in payload["localAuthorizationList"]}
    assert len(entries) == len(payload["localAuthorizationList"]) == 5
    assert all("idTokenInfo" in entry for entry in entries.values())
    assert entries["VALID-1"] == {
        "idToken": {"idToken": "VALID-1", "type": "ISO14443"},
        "idTokenInfo": {
            "status": "Accepted",
            "groupIdToken": {"idToken": "FAMILY", "type": "Central"},
        },
    }
    assert entries["BLOCKED-1"]["idTokenInfo"] == {"status": "Blocked"}
    assert entries["LATER-1"]["idTokenInfo"]["cacheExpiryDateTime"] == "2099-06-01T12:00:00Z"
    await wait_state(hub, "sensor.bay_201_local_list_version", "1")


async def test_tc_d_02_csms_send_local_authorization_list_differential_update(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """After the station reports its version, a differential carries only the new token,
    with a version above the station's."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    await hub.services.call("ocpp", "send_local_list", {**CP201, "update_type": "full"})
    await hub.services.call("ocpp", "add_id_token", {"id": "NEW-CARD", "type": "ISO15693"})
    cp.handlers["GetLocalListVersion"] = lambda payload: {"versionNumber": 1}
    reported = await hub.services.call("ocpp", "get_local_list_version", CP201)
    assert reported["version"] == 1
    assert reported["in_sync"] is True
    result = await hub.services.call(
        "ocpp", "send_local_list", {**CP201, "update_type": "differential"}
    )
    assert result["status"] == "Accepted"
    assert sent[1] == {
        "versionNumber": 2,
        "updateType": "Differential",
        "localAuthorizationList": [
            {
                "idToken": {"idToken": "NEW-CARD", "type": "ISO15693"},
                "idTokenInfo": {"status": "Accepted"},
            }
        ],
    }
    # A changed status goes as a differential of that token alone.
    await hub.services.call("ocpp", "update_id_token", {"id": "NEW-CARD", "status": "Blocked"})
    await hub.services.call("ocpp", "send_local_list", CP201)
    assert sent[2]["updateType"] == "Differential"
    assert sent[2]["versionNumber"] == 3
    assert sent[2]["localAuthorizationList"][0]["idTokenInfo"] == {"status": "Blocked"}
    # Nothing changed: nothing is sent.
    unchanged = await hub.services.call("ocpp", "send_local_list", CP201)
    assert unchanged["status"] == "Unchanged"
    assert len(sent) == 3


async def test_tc_d_03_csms_send_local_authorization_list_differential_remove(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """D01.FR.17: a removed token goes in a differential without idTokenInfo."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    await hub.services.call("ocpp", "add_id_token", {"id": "LEAVING"})
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    await hub.services.call("ocpp", "send_local_list", {**CP201, "update_type": "full"})
    assert "LEAVING" in ids_201(sent[0])
    await hub.services.call("ocpp", "remove_id_token", {"id": "LEAVING"})
    result = await hub.services.call(
        "ocpp", "send_local_list", {**CP201, "update_type": "differential"}
    )
    assert (result["status"], result["removed"]) == ("Accepted", 1)
    assert sent[1] == {
        "versionNumber": 2,
        "updateType": "Differential",
        "localAuthorizationList": [{"idToken": {"idToken": "LEAVING", "type": "ISO14443"}}],
    }


async def test_tc_d_04_csms_send_local_authorization_list_full_with_empty_list(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A Full update with no entries clears the station's list; the schema wants at least
    one item when the list is there, so it is left out."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    result = await hub.services.call(
        "ocpp", "send_local_list", {**CP201, "update_type": "full", "id_tokens": [], "version": 4}
    )
    assert result["status"] == "Accepted"
    assert sent == [{"versionNumber": 4, "updateType": "Full"}]


async def test_tc_d_08_csms_get_local_list_version_success(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    cp.handlers["GetLocalListVersion"] = lambda payload: {"versionNumber": 7}
    result = await hub.services.call("ocpp", "get_local_list_version", CP201)
    assert await cp.wait_for_call("GetLocalListVersion") == {}
    assert result == {"version": 7, "sent_version": 0, "in_sync": False, "supported": True}
    await wait_state(hub, "sensor.bay_201_local_list_version", "7")
    # The next list the hub sends goes above what the station holds.
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    await hub.services.call("ocpp", "send_local_list", CP201)
    assert (sent[0]["updateType"], sent[0]["versionNumber"]) == ("Full", 8)


async def test_tc_d_09_csms_get_local_list_version_no_list_available(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    cp.handlers["GetLocalListVersion"] = lambda payload: {"versionNumber": 0}
    result = await hub.services.call("ocpp", "get_local_list_version", CP201)
    assert result["version"] == 0
    await wait_state(hub, "sensor.bay_201_local_list_version", "0")


@pytest.mark.parametrize("refusal", ["VersionMismatch", "Failed"])
async def test_refused_differential_is_sent_again_as_full(
    ocpp_hub: HubFactory, connect: Connect, refusal: str
) -> None:
    """D01 / 1.6 §5.15: after a refused differential, the CSMS sends the full list."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    sent = recorder(
        cp, "SendLocalList", [{"status": "Accepted"}, {"status": refusal}, {"status": "Accepted"}]
    )
    await hub.services.call("ocpp", "send_local_list", CP201)
    await hub.services.call("ocpp", "add_id_token", {"id": "NEW-CARD"})
    result = await hub.services.call("ocpp", "send_local_list", CP201)
    assert [p["updateType"] for p in sent] == ["Full", "Differential", "Full"]
    assert sent[2]["versionNumber"] == sent[1]["versionNumber"] == 2
    assert "NEW-CARD" in ids_201(sent[2])
    assert result["status"] == "Accepted"
    assert result["retried_full_after"] == refusal


async def test_local_list_state_survives_a_restart(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Any
) -> None:
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    await hub.services.call("ocpp", "send_local_list", CP201)
    await cp.close()
    await hub.stop()

    hub2 = await ocpp_hub(LISTS, tmp_path)
    cp2 = await connect(ws_url(hub2, "CP-201"), protocol="ocpp2.0.1")
    await cp2.call(
        "BootNotification",
        {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"},
    )
    await hub2.services.call("ocpp", "add_id_token", {"id": "AFTER-RESTART"})
    sent = recorder(cp2, "SendLocalList", [{"status": "Accepted"}])
    await hub2.services.call("ocpp", "send_local_list", CP201)
    assert sent[0]["updateType"] == "Differential"
    assert sent[0]["versionNumber"] == 2
    assert ids_201(sent[0]) == ["AFTER-RESTART"]


async def test_sync_on_boot_sends_the_list_when_the_station_lacks_it(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """local_auth_list.sync_on_boot: after an accepted boot the hub asks the station's
    version (D02) and sends a Full list (D01) when it is not the last one the hub sent."""
    config = LISTS + "local_auth_list:\n  sync_on_boot: true\n"
    hub, cp = await station(ocpp_hub, connect, "2.0.1", config)
    cp.handlers["GetLocalListVersion"] = lambda payload: {"versionNumber": 0}
    payload = await cp.wait_for_call("SendLocalList")
    assert cp.received[0][0] == "GetLocalListVersion"
    assert (payload["updateType"], payload["versionNumber"]) == ("Full", 1)
    await wait_state(hub, "sensor.bay_201_local_list_version", "1")


def local_auth_limits(items: int | None, size: int | None = None) -> Any:
    """A 2.0.1 station's answer to GetVariables of LocalAuthListCtrlr's limits."""

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        results = []
        for item in payload["getVariableData"]:
            name = item["variable"]["name"]
            value = items if name == "ItemsPerMessage" else size
            result: dict[str, Any] = {
                "attributeStatus": "Accepted" if value is not None else "UnknownVariable",
                "component": item["component"],
                "variable": item["variable"],
            }
            if value is not None:
                result["attributeValue"] = str(value)
            results.append(result)
        return {"getVariableResult": results}

    return answer


async def test_d01_fr_11_long_list_is_sent_in_parts_by_items_per_message(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """D01.FR.11: no SendLocalList carries more than LocalAuthListCtrlr.ItemsPerMessage
    entries; a longer list goes as a Full part, then Differential parts, each with the next
    version. The limits are asked once per connection."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    cp.handlers["GetVariables"] = local_auth_limits(2)
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    result = await hub.services.call("ocpp", "send_local_list", {**CP201, "update_type": "full"})
    asked = await cp.wait_for_call("GetVariables")
    assert [item["component"]["name"] for item in asked["getVariableData"]] == [
        "LocalAuthListCtrlr",
        "LocalAuthListCtrlr",
    ]
    assert [(p["updateType"], p["versionNumber"], len(ids_201(p))) for p in sent] == [
        ("Full", 1, 2),
        ("Differential", 2, 2),
        ("Differential", 3, 1),
    ]
    assert sorted(token for p in sent for token in ids_201(p)) == sorted(
        ["PLAIN-1", "VALID-1", "BLOCKED-1", "LATER-1", "A-TOKEN-TOO-LONG-FOR-ONE-SIX"]
    )
    assert (result["status"], result["version"], result["parts"], result["sent"]) == (
        "Accepted",
        3,
        3,
        5,
    )
    await wait_state(hub, "sensor.bay_201_local_list_version", "3")
    # The next differential builds on version 3, without asking the limits again.
    await hub.services.call("ocpp", "add_id_token", {"id": "NEW-CARD"})
    await hub.services.call("ocpp", "send_local_list", CP201)
    assert (sent[3]["updateType"], sent[3]["versionNumber"]) == ("Differential", 4)
    assert [action for action, _ in cp.received].count("GetVariables") == 1


async def test_d01_fr_11_parts_keep_to_bytes_per_message(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """BytesPerMessage bounds each request's size too."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    cp.handlers["GetVariables"] = local_auth_limits(None, 400)
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    result = await hub.services.call("ocpp", "send_local_list", {**CP201, "update_type": "full"})
    assert result["status"] == "Accepted"
    assert len(sent) > 1
    assert all(len(json.dumps(payload)) + 64 <= 400 for payload in sent)
    assert [p["updateType"] for p in sent] == ["Full"] + ["Differential"] * (len(sent) - 1)
    assert sum(len(ids_201(p)) for p in sent) == 5


async def test_refused_part_keeps_what_the_station_accepted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A part the station refuses ends the update: the hub holds what was accepted, and
    the next differential sends the rest."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    cp.handlers["GetVariables"] = local_auth_limits(3)
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}, {"status": "Failed"}])
    result = await hub.services.call("ocpp", "send_local_list", {**CP201, "update_type": "full"})
    assert (result["status"], result["version"], result["sent"]) == ("Failed", 1, 3)
    cp.handlers["SendLocalList"] = lambda payload: sent.append(payload) or {"status": "Accepted"}
    again = await hub.services.call("ocpp", "send_local_list", CP201)
    assert (sent[2]["updateType"], sent[2]["versionNumber"]) == ("Differential", 2)
    assert len(ids_201(sent[2])) == 2
    assert again["status"] == "Accepted"


async def test_tc_n_46_csms_clear_customer_information_update_local_authorization_list(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_N_46 (N10.FR.02): the customer's data is cleared at a station whose local list
    holds the customer's token; the hub then takes the token off that list with a
    Differential SendLocalList, version + 1, the token without idTokenInfo."""
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    await hub.services.call("ocpp", "send_local_list", {**CP201, "update_type": "full"})
    version = sent[-1]["versionNumber"]
    result = await hub.services.call(
        "ocpp",
        "customer_information",
        {
            **CP201,
            "report": True,
            "clear": True,
            "id_token": "VALID-1",
            "id_token_type": "ISO14443",
        },
    )
    asked = await cp.wait_for_call("CustomerInformation")
    assert (asked["report"], asked["clear"]) == (True, True)
    assert asked["idToken"] == {"idToken": "VALID-1", "type": "ISO14443"}
    answer = await cp.call(
        "NotifyCustomerInformation",
        {
            "data": "customer data cleared",
            "seqNo": 0,
            "generatedAt": "2026-12-06T12:00:00Z",
            "requestId": asked["requestId"],
        },
    )
    assert answer == {}
    assert sent[-1] == {
        "versionNumber": version + 1,
        "updateType": "Differential",
        "localAuthorizationList": [{"idToken": {"idToken": "VALID-1", "type": "ISO14443"}}],
    }
    assert result["local_list"]["status"] == "Accepted"
    # A token not on the station's list sends nothing more.
    before = len(sent)
    await hub.services.call(
        "ocpp", "customer_information", {**CP201, "clear": True, "id_token": "NOT-LISTED"}
    )
    await cp.wait_for_call("CustomerInformation")
    assert len(sent) == before


# OCPP 1.6 --------------------------------------------------------------------------------


async def test_tc_042_2_csms_get_local_list_version_empty(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station(ocpp_hub, connect, "1.6")
    cp.handlers["GetLocalListVersion"] = lambda payload: {"listVersion": 0}
    result = await hub.services.call("ocpp", "get_local_list_version", CP16)
    assert await cp.wait_for_call("GetLocalListVersion") == {}
    assert result["version"] == 0
    # A charge point without the profile says -1.
    cp.handlers["GetLocalListVersion"] = lambda payload: {"listVersion": -1}
    assert (await hub.services.call("ocpp", "get_local_list_version", CP16))["supported"] is False


async def test_tc_043_4_csms_send_local_authorization_list_full(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Full, every entry with an idTagInfo; a token longer than 1.6's 20 characters cannot
    go and is reported as skipped."""
    hub, cp = await station(ocpp_hub, connect, "1.6")
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    result = await hub.services.call("ocpp", "send_local_list", {**CP16, "update_type": "full"})
    [payload] = sent
    assert payload["updateType"] == "Full"
    assert payload["listVersion"] == 1
    entries = {e["idTag"]: e for e in payload["localAuthorizationList"]}
    assert set(entries) == {"PLAIN-1", "VALID-1", "BLOCKED-1", "LATER-1"}
    assert all("idTagInfo" in entry for entry in entries.values())
    assert entries["VALID-1"]["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FAMILY"}
    assert entries["LATER-1"]["idTagInfo"]["expiryDate"] == "2099-06-01T12:00:00Z"
    assert result["skipped"] == ["A-TOKEN-TOO-LONG-FOR-ONE-SIX"]
    await wait_state(hub, "sensor.bay_16_local_list_version", "1")


async def test_tc_043_5_csms_send_local_authorization_list_differential(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station(ocpp_hub, connect, "1.6")
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    await hub.services.call("ocpp", "send_local_list", {**CP16, "update_type": "full"})
    cp.handlers["GetLocalListVersion"] = lambda payload: {"listVersion": 1}
    assert (await hub.services.call("ocpp", "get_local_list_version", CP16))["version"] == 1
    await hub.services.call("ocpp", "add_id_token", {"id": "NEW-TAG"})
    await hub.services.call("ocpp", "send_local_list", {**CP16, "update_type": "differential"})
    assert sent[1] == {
        "listVersion": 2,
        "updateType": "Differential",
        "localAuthorizationList": [{"idTag": "NEW-TAG", "idTagInfo": {"status": "Accepted"}}],
    }
    await hub.services.call("ocpp", "remove_id_token", {"id": "NEW-TAG"})
    await hub.services.call("ocpp", "send_local_list", CP16)
    assert sent[2]["localAuthorizationList"] == [{"idTag": "NEW-TAG"}]


async def test_tc_042_2_csms_step_1_full_list_omitted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_042_2's first step: listVersion 1, localAuthorizationList omitted, Full."""
    hub, cp = await station(ocpp_hub, connect, "1.6")
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    await hub.services.call(
        "ocpp", "send_local_list", {**CP16, "update_type": "full", "id_tokens": []}
    )
    assert sent == [{"listVersion": 1, "updateType": "Full"}]


async def test_1_6_long_list_is_split_by_send_local_list_max_length(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6: SendLocalListMaxLength (GetConfiguration) bounds the entries per message."""
    hub, cp = await station(ocpp_hub, connect, "1.6")
    cp.handlers["GetConfiguration"] = lambda payload: {
        "configurationKey": [{"key": "SendLocalListMaxLength", "readonly": True, "value": "3"}]
    }
    sent = recorder(cp, "SendLocalList", [{"status": "Accepted"}])
    result = await hub.services.call("ocpp", "send_local_list", {**CP16, "update_type": "full"})
    assert await cp.wait_for_call("GetConfiguration") == {"key": ["SendLocalListMaxLength"]}
    assert [
        (p["updateType"], p["listVersion"], len(p["localAuthorizationList"])) for p in sent
    ] == [
        ("Full", 1, 3),
        ("Differential", 2, 1),
    ]
    assert (result["status"], result["version"]) == ("Accepted", 2)


# Services --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"version": 0}, "version"),
        ({"version": 2**31}, "version"),
        ({"update_type": "half"}, "update_type"),
        ({"id_tokens": ["NOBODY"]}, "no id token"),
        ({"id_tokens": ["X" * 40]}, "1 to 36"),
    ],
)
async def test_bad_send_local_list_input_is_refused(
    ocpp_hub: HubFactory, connect: Connect, data: dict[str, Any], reason: str
) -> None:
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    with pytest.raises(ServiceValidationError, match=reason):
        await hub.services.call("ocpp", "send_local_list", {**CP201, **data})
    assert not [action for action, _ in cp.received if action == "SendLocalList"]


async def test_unreadable_list_version_is_refused(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station(ocpp_hub, connect, "2.0.1")
    cp.handlers["GetLocalListVersion"] = lambda payload: {"versionNumber": -5}
    with pytest.raises(ServiceValidationError, match="unreadable list version"):
        await hub.services.call("ocpp", "get_local_list_version", CP201)


async def test_local_list_services_roles(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(LISTS)
    assert hub.services.role("ocpp", "send_local_list") == "admin"
    assert hub.services.role("ocpp", "get_local_list_version") == "viewer"


# The simulated charger -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_simulator_keeps_the_local_list(ocpp_hub: HubFactory, version: str) -> None:
    hub = await ocpp_hub(LISTS)
    cp_id = "SIM-16" if version == "1.6" else "SIM-201"
    base = ws_url(hub, cp_id).rsplit("/", 1)[0]
    target = {"charge_point_id": cp_id}
    async with SimulatedChargePoint(cp_id, base, version=version, speed=50.0) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        assert (await hub.services.call("ocpp", "get_local_list_version", target))["version"] == 0
        full = await hub.services.call("ocpp", "send_local_list", {**target, "version": 5})
        assert (full["status"], full["update_type"]) == ("Accepted", "Full")
        assert (await hub.services.call("ocpp", "get_local_list_version", target))["version"] == 5
        await hub.services.call("ocpp", "add_id_token", {"id": "SIM-NEW"})
        diff = await hub.services.call("ocpp", "send_local_list", target)
        assert (diff["status"], diff["update_type"], diff["version"]) == (
            "Accepted",
            "Differential",
            6,
        )
        # A differential not above the charger's version is a VersionMismatch: the hub
        # then sends the full list.
        await hub.services.call("ocpp", "update_id_token", {"id": "SIM-NEW", "status": "Blocked"})
        again = await hub.services.call("ocpp", "send_local_list", {**target, "version": 6})
        assert again["retried_full_after"] == "VersionMismatch"
        assert again["status"] == "Accepted"
        cleared = await hub.services.call(
            "ocpp", "send_local_list", {**target, "update_type": "full", "id_tokens": []}
        )
        assert cleared["status"] == "Accepted"
        assert (await hub.services.call("ocpp", "get_local_list_version", target))["version"] == 0
        assert (await hub.services.call("ocpp", "clear_cache", target))["status"] == "Accepted"
