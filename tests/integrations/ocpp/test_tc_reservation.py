"""OCA test cases of block H (reservation), CSMS side, and their OCPP 1.6 equivalents: the
test plays the charging station over a real websocket and checks the frames the hub sends
and its answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.exceptions import ServiceValidationError
from hub.testing import manual_clock_of
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    HubFactory,
    wait_state,
    ws_url,
)
from tests.integrations.ocpp.test_central_system import NOW, OPEN, boot16
from tests.integrations.ocpp.test_tc_smart_charging import (
    CP1,
    CP2,
    call,
    sent,
    start_transaction_201,
    station16,
    station201,
)

TOKEN = {"id_token": "TAG-OK", "id_token_type": "ISO14443"}


def _expiry(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def test_tc_h_01_csms_reserve_specific_evse(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1, "expires_in": 600})
    assert answer["status"] == "Accepted"
    request = await cp.wait_for_call("ReserveNow")
    assert request["evseId"] == 1
    assert "connectorType" not in request
    assert request["idToken"] == {"idToken": "TAG-OK", "type": "ISO14443"}
    assert request["id"] == answer["reservation_id"]
    assert abs(_expiry(request["expiryDateTime"]) - (datetime.now(UTC).timestamp() + 600)) < 5
    # The port shows it reserved; the station's Reserved status and its event are taken.
    shown = hub.states.get("sensor.bay_2_1_reservation")
    assert shown.state == "reserved"
    assert shown.attributes["reservation_id"] == request["id"]
    assert shown.attributes["id_token"] == "TAG-OK"
    status = {"timestamp": NOW, "connectorStatus": "Reserved", "evseId": 1, "connectorId": 1}
    assert await cp.call("StatusNotification", status) == {}
    assert hub.states.get("sensor.bay_2_1_status").state == "Reserved"
    listed = await call(hub, "reservations", CP2)
    assert [item["reservation_id"] for item in listed] == [request["id"]]


async def test_tc_h_07_csms_reservation_expired(ocpp_hub: HubFactory, connect: Connect) -> None:
    """The driver did not come: the station says Expired (H04); the hub's own clock ends it
    too, whether or not the station says so."""
    hub = await ocpp_hub(OPEN, manual_clock=True)
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    boot = {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"}
    await cp.call("BootNotification", boot)
    events: list[Any] = []
    hub.bus.listen("ocpp_reservation_status", events.append)
    first = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1, "expires_in": 300})
    second = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 2, "expires_in": 300})
    assert first["reservation_id"] != second["reservation_id"]
    assert hub.states.get("sensor.bay_2_1_reservation").state == "reserved"
    update = {"reservationId": first["reservation_id"], "reservationUpdateStatus": "Expired"}
    assert await cp.call("ReservationStatusUpdate", update) == {}
    assert hub.states.get("sensor.bay_2_1_reservation").state == "none"
    assert events[0].data["status"] == "Expired"
    assert events[0].data["known"] is True
    # The second one is not reported by the station: the hub clock expires it.
    assert hub.states.get("sensor.bay_2_2_reservation").state == "reserved"
    await manual_clock_of(hub).advance(301)
    assert hub.states.get("sensor.bay_2_2_reservation").state == "none"
    assert await call(hub, "reservations", CP2) == []
    # An update of a reservation the hub does not know is answered and reported.
    unknown = {"reservationId": 4242, "reservationUpdateStatus": "Removed"}
    assert await cp.call("ReservationStatusUpdate", unknown) == {}
    assert events[-1].data["known"] is False
    with pytest.raises(ChargerCallError):
        await cp.call(
            "ReservationStatusUpdate", {"reservationId": 1, "reservationUpdateStatus": "Gone"}
        )


async def test_tc_h_08_csms_reserve_unspecified_evse(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(hub, "reserve_now", {**CP2, **TOKEN})
    assert answer["status"] == "Accepted"
    request = await cp.wait_for_call("ReserveNow")
    assert "evseId" not in request
    # 15 minutes unless told.
    assert abs(_expiry(request["expiryDateTime"]) - (datetime.now(UTC).timestamp() + 900)) < 5
    assert hub.states.get("sensor.bay_2_reservation").state == "reserved"


async def test_tc_h_14_csms_reserve_unspecified_evse_all_evses_reserved(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """As many reservations as EVSEs: one of EVSE 1, one of no EVSE; the station reports
    every EVSE Reserved, which the hub answers and shows."""
    hub, cp = await station201(ocpp_hub, connect)
    status = {"timestamp": NOW, "connectorStatus": "Available", "evseId": 2, "connectorId": 1}
    await cp.call("StatusNotification", status)
    specific = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1})
    anywhere = await call(
        hub, "reserve_now", {**CP2, "id_token": "TAG-2", "id_token_type": "ISO14443"}
    )
    assert (specific["status"], anywhere["status"]) == ("Accepted", "Accepted")
    first, second = sent(cp, "ReserveNow")
    assert first["evseId"] == 1
    assert "evseId" not in second
    assert second["idToken"] == {"idToken": "TAG-2", "type": "ISO14443"}
    assert second["id"] == anywhere["reservation_id"] != specific["reservation_id"]
    for evse in (1, 2):
        reserved = {**status, "connectorStatus": "Reserved", "evseId": evse}
        assert await cp.call("StatusNotification", reserved) == {}
    assert hub.states.get("sensor.bay_2_1_status").state == "Reserved"
    assert hub.states.get("sensor.bay_2_2_status").state == "Reserved"
    assert hub.states.get("sensor.bay_2_1_reservation").state == "reserved"
    assert hub.states.get("sensor.bay_2_reservation").attributes["id_token"] == "TAG-2"
    listed = await call(hub, "reservations", CP2)
    assert sorted(item["reservation_id"] for item in listed) == sorted(
        [specific["reservation_id"], anywhere["reservation_id"]]
    )


async def test_tc_h_15_csms_reserve_connector_type(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await call(hub, "reserve_now", {**CP2, **TOKEN, "connector_type": "cType2"})
    assert (await cp.wait_for_call("ReserveNow"))["connectorType"] == "cType2"
    with pytest.raises(ServiceValidationError):
        await call(hub, "reserve_now", {**CP2, **TOKEN, "connector_type": "cType99"})


async def test_tc_h_17_csms_cancel_reservation(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1})
    assert (
        await call(hub, "cancel_reservation", {**CP2, "reservation_id": answer["reservation_id"]})
        == "Accepted"
    )
    assert await cp.wait_for_call("CancelReservation") == {
        "reservationId": answer["reservation_id"]
    }
    assert hub.states.get("sensor.bay_2_1_reservation").state == "none"
    # H02: the station does not know it: Rejected, passed on.
    cp.handlers["CancelReservation"] = lambda payload: {"status": "Rejected"}
    assert await call(hub, "cancel_reservation", {**CP2, "reservation_id": 77}) == "Rejected"


async def test_tc_h_19_csms_reserve_with_group_id_token(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1, "group_id_token": "FLEET-7"})
    request = await cp.wait_for_call("ReserveNow")
    assert request["groupIdToken"] == {"idToken": "FLEET-7", "type": "ISO14443"}
    assert hub.states.get("sensor.bay_2_1_reservation").attributes["group_id_token"] == "FLEET-7"


async def test_tc_h_20_csms_station_cancels_reservation_when_faulted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The reserved EVSE goes Faulted; the station removes the reservation
    (ReservationStatusUpdate Removed): answered, and the hub's reservation is gone."""
    hub, cp = await station201(ocpp_hub, connect)
    events: list[Any] = []
    hub.bus.listen("ocpp_reservation_ended", events.append)
    answer = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1, "expires_in": 600})
    rid = (await cp.wait_for_call("ReserveNow"))["id"]
    assert rid == answer["reservation_id"]
    status = {"timestamp": NOW, "connectorStatus": "Reserved", "evseId": 1, "connectorId": 1}
    assert await cp.call("StatusNotification", status) == {}
    faulted = {**status, "connectorStatus": "Faulted"}
    assert await cp.call("StatusNotification", faulted) == {}
    assert hub.states.get("sensor.bay_2_1_status").state == "Faulted"
    update = {"reservationId": rid, "reservationUpdateStatus": "Removed"}
    assert await cp.call("ReservationStatusUpdate", update) == {}
    assert hub.states.get("sensor.bay_2_1_reservation").state == "none"
    assert await call(hub, "reservations", CP2) == []
    assert [(e.data["reservation_id"], e.data["reason"]) for e in events] == [(rid, "Removed")]
    # Told again (a repeated message): answered, nothing more happens.
    assert await cp.call("ReservationStatusUpdate", update) == {}
    assert len(events) == 1
    # Nothing is cancelled by the hub: the station did it.
    assert sent(cp, "CancelReservation") == []


async def test_tc_h_22_csms_reservation_rejected(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    for status in ("Rejected", "Occupied", "Faulted", "Unavailable"):
        cp.handlers["ReserveNow"] = lambda payload, status=status: {"status": status}
        answer = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1})
        assert answer["status"] == status
    assert hub.states.get("sensor.bay_2_1_reservation") is None
    assert await call(hub, "reservations", CP2) == []


async def test_reservation_input_is_checked(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    far = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    for bad in (
        {"id_token": ""},
        {"id_token": "x" * 37},
        {"id_token_type": "Magic"},
        {"expiry_date_time": past},
        {"expiry_date_time": far},
        {"expires_in": 5},
        {"expires_in": 600, "expiry_date_time": far},
        {"evse_id": -1},
        {"evse_id": 0},
        {"reservation_id": 0},
    ):
        with pytest.raises(ServiceValidationError):
            await call(hub, "reserve_now", {**CP2, **TOKEN, **bad})
    assert sent(cp, "ReserveNow") == []


async def test_reservations_survive_a_restart(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Path
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1, "expires_in": 3600})
    await cp.close()
    await hub.stop()
    again = await ocpp_hub(OPEN, tmp_path)
    listed = await call(again, "reservations", CP2)
    assert [item["reservation_id"] for item in listed] == [answer["reservation_id"]]
    # Ids go on from where they were.
    cp2 = await connect(ws_url(again, "CP-2"), protocol="ocpp2.0.1")
    boot = {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"}
    await cp2.call("BootNotification", boot)
    later = await call(again, "reserve_now", {**CP2, **TOKEN, "evse_id": 2})
    assert later["reservation_id"] > answer["reservation_id"]


async def test_tc_046_csms_reserve_connector_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 TC_046: ReserveNow names the connector, expiryDate, idTag (and parentIdTag); the
    connector shows reserved; the transaction of that idTag uses the reservation up."""
    hub, cp = await station16(ocpp_hub, connect)
    answer = await call(
        hub, "reserve_now", {**CP1, **TOKEN, "evse_id": 1, "group_id_token": "FLEET-7"}
    )
    assert answer["status"] == "Accepted"
    request = await cp.wait_for_call("ReserveNow")
    assert request["connectorId"] == 1
    assert request["idTag"] == "TAG-OK"
    assert request["parentIdTag"] == "FLEET-7"
    assert request["reservationId"] == answer["reservation_id"]
    assert abs(_expiry(request["expiryDate"]) - (datetime.now(UTC).timestamp() + 900)) < 5
    assert hub.states.get("sensor.bay_1_1_reservation").state == "reserved"
    await cp.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "TAG-OK",
            "meterStart": 0,
            "timestamp": NOW,
            "reservationId": answer["reservation_id"],
        },
    )
    assert hub.states.get("sensor.bay_1_1_reservation").state == "none"
    for bad in (
        {},
        {"evse_id": 1, "connector_type": "cType2"},
        {"evse_id": 1, "id_token": "x" * 21},
    ):
        with pytest.raises(ServiceValidationError):
            await call(hub, "reserve_now", {**CP1, **TOKEN, **bad})
    assert len(sent(cp, "ReserveNow")) == 1


async def test_tc_047_csms_reservation_expires_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 TC_047: the driver does not come; the reservation ends at its expiryDate on the
    hub clock (1.6 has no ReservationStatusUpdate) and the connector's Available is taken."""
    hub = await ocpp_hub(OPEN, manual_clock=True)
    cp = await connect(ws_url(hub, "CP-1"))
    assert (await boot16(cp))["status"] == "Accepted"
    answer = await call(hub, "reserve_now", {**CP1, **TOKEN, "evse_id": 1, "expires_in": 120})
    request = await cp.wait_for_call("ReserveNow")
    assert request["connectorId"] == 1
    assert request["idTag"] == "TAG-OK"
    assert _expiry(request["expiryDate"]) == _expiry(answer["expires"])
    reserved = {"connectorId": 1, "errorCode": "NoError", "status": "Reserved"}
    assert await cp.call("StatusNotification", reserved) == {}
    assert hub.states.get("sensor.bay_1_1_reservation").state == "reserved"
    await manual_clock_of(hub).advance(121)
    assert hub.states.get("sensor.bay_1_1_reservation").state == "none"
    assert await cp.call("StatusNotification", {**reserved, "status": "Available"}) == {}
    assert hub.states.get("sensor.bay_1_1_status").state == "Available"
    assert await call(hub, "reservations", CP1) == []


async def test_tc_049_csms_reserve_charge_point_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    """1.6 TC_049: an unspecified connector is connectorId 0; the station shows reserved."""
    hub, cp = await station16(ocpp_hub, connect)
    answer = await call(hub, "reserve_now", {**CP1, **TOKEN, "evse_id": 0})
    assert answer["status"] == "Accepted"
    request = await cp.wait_for_call("ReserveNow")
    assert request["connectorId"] == 0
    assert request["reservationId"] == answer["reservation_id"]
    reserved = {"connectorId": 1, "errorCode": "NoError", "status": "Reserved"}
    assert await cp.call("StatusNotification", reserved) == {}
    assert hub.states.get("sensor.bay_1_reservation").state == "reserved"


async def test_tc_048_1_2_3_4_csms_reserve_connector_refused_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 TC_048_1..4: Faulted, Occupied, Unavailable, Rejected are passed on; nothing is
    kept."""
    hub, cp = await station16(ocpp_hub, connect)
    for status in ("Faulted", "Occupied", "Unavailable", "Rejected"):
        cp.handlers["ReserveNow"] = lambda payload, status=status: {"status": status}
        assert (await call(hub, "reserve_now", {**CP1, **TOKEN, "evse_id": 1}))["status"] == status
    assert [payload["connectorId"] for payload in sent(cp, "ReserveNow")] == [1, 1, 1, 1]
    assert await call(hub, "reservations", CP1) == []
    assert hub.states.get("sensor.bay_1_1_reservation") is None


async def test_tc_051_052_csms_cancel_reservation_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 TC_051 and TC_052 (the charge point rejects)."""
    hub, cp = await station16(ocpp_hub, connect)
    answer = await call(hub, "reserve_now", {**CP1, **TOKEN, "evse_id": 1})
    rid = answer["reservation_id"]
    assert await call(hub, "cancel_reservation", {**CP1, "reservation_id": rid}) == "Accepted"
    assert await cp.wait_for_call("CancelReservation") == {"reservationId": rid}
    assert hub.states.get("sensor.bay_1_1_reservation").state == "none"
    cp.handlers["CancelReservation"] = lambda payload: {"status": "Rejected"}
    assert await call(hub, "cancel_reservation", {**CP1, "reservation_id": rid}) == "Rejected"


async def test_tc_053_csms_reserved_connector_used_with_parent_id_tag_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 TC_053: ReserveNow with idTag and parentIdTag on a connector (not 0); another
    idTag of that parent authorizes and starts on it: the reservation is used up."""
    hub = await ocpp_hub(OPEN + "id_tokens:\n  - id: TAG-2\n    group: FLEET-7\n")
    cp = await connect(ws_url(hub, "CP-1"))
    assert (await boot16(cp))["status"] == "Accepted"
    ended: list[Any] = []
    hub.bus.listen("ocpp_reservation_ended", ended.append)
    answer = await call(
        hub, "reserve_now", {**CP1, **TOKEN, "evse_id": 1, "group_id_token": "FLEET-7"}
    )
    request = await cp.wait_for_call("ReserveNow")
    assert request["connectorId"] == 1
    assert (request["idTag"], request["parentIdTag"]) == ("TAG-OK", "FLEET-7")
    reserved = {"connectorId": 1, "errorCode": "NoError", "status": "Reserved"}
    assert await cp.call("StatusNotification", reserved) == {}
    authorized = await cp.call("Authorize", {"idTag": "TAG-2"})
    assert authorized["idTagInfo"]["status"] == "Accepted"
    assert authorized["idTagInfo"]["parentIdTag"] == "FLEET-7"
    started = await cp.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "TAG-2",
            "meterStart": 0,
            "timestamp": NOW,
            "reservationId": answer["reservation_id"],
        },
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    assert hub.states.get("sensor.bay_1_1_reservation").state == "none"
    assert [(e.data["reservation_id"], e.data["reason"]) for e in ended] == [
        (answer["reservation_id"], "Used")
    ]


@pytest.mark.parametrize(("version", "cp_id"), [("1.6", "CP-1"), ("2.0.1", "CP-2")])
async def test_simulator_reserves_and_cancels(
    ocpp_hub: HubFactory, version: str, cp_id: str
) -> None:
    """The simulated station turns the connector Reserved, refuses a second reservation of
    it (Occupied) and frees it when cancelled."""
    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(OPEN)
    target = {"charge_point_id": cp_id}
    status_entity = f"sensor.bay_{cp_id[-1]}_1_status"
    base = ws_url(hub, cp_id).rsplit("/", 1)[0]
    async with SimulatedChargePoint(cp_id, base, version=version, speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        answer = await call(hub, "reserve_now", {**target, **TOKEN, "evse_id": 1})
        assert answer["status"] == "Accepted"
        await wait_state(hub, status_entity, "Reserved")
        again = await call(hub, "reserve_now", {**target, **TOKEN, "evse_id": 1})
        assert again["status"] == "Occupied"
        rid = answer["reservation_id"]
        assert (
            await call(hub, "cancel_reservation", {**target, "reservation_id": rid}) == "Accepted"
        )
        await wait_state(hub, status_entity, "Available")
        assert (
            await call(hub, "cancel_reservation", {**target, "reservation_id": rid}) == "Rejected"
        )


async def test_h03_reservation_is_used_by_its_group(ocpp_hub: HubFactory, connect: Connect) -> None:
    """H03: a session started on the reserved EVSE by the reservation's group (or token)
    uses the reservation up; another token's session on another EVSE does not."""
    hub, cp = await station201(ocpp_hub, connect)
    ended: list[Any] = []
    hub.bus.listen("ocpp_reservation_ended", ended.append)
    answer = await call(
        hub, "reserve_now", {**CP2, **TOKEN, "evse_id": 1, "group_id_token": "TAG-OK"}
    )
    other = await call(hub, "reserve_now", {**CP2, "id_token": "SOMEONE", "evse_id": 2})
    await start_transaction_201(cp)
    assert hub.states.get("sensor.bay_2_1_reservation").state == "none"
    assert [(e.data["reservation_id"], e.data["reason"]) for e in ended] == [
        (answer["reservation_id"], "Used")
    ]
    listed = await call(hub, "reservations", CP2)
    assert [item["reservation_id"] for item in listed] == [other["reservation_id"]]


async def test_reservation_roles(ocpp_hub: HubFactory) -> None:
    """Reserving and cancelling are an operator's daily job; listing is a viewer's."""
    hub = await ocpp_hub(OPEN)
    roles = {
        name: hub.services.role("ocpp", name)
        for name in ("reserve_now", "cancel_reservation", "reservations")
    }
    assert roles == {
        "reserve_now": "operator",
        "cancel_reservation": "operator",
        "reservations": "viewer",
    }
