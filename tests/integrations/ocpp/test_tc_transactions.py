"""OCA test cases for the CSMS, functional blocks E (transactions) and J (meter values),
played from the charging station's side over a real websocket (OCPP 2.0.1), with the 1.6
equivalents where 1.6 has them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.core import Hub
from hub.testing import RawChargePoint
from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp.connection import InvalidCallError, OcppCallError
from tests.integrations.ocpp.conftest import Connect, HubFactory, wait_state, ws_url

CONFIG = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
id_tags: [TAG-1]
chargers:
  - id: CS-1
    name: Bay 1
  - id: CP-16
    name: Bay 16
"""

BASE = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


def at(minutes: float) -> str:
    """A charger timestamp: minutes after the test's base time (two hours ago)."""
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def energy(wh: float, when: str, context: str = "Sample.Periodic") -> dict[str, Any]:
    return {
        "timestamp": when,
        "sampledValue": [
            {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}
        ],
    }


class Station201:
    """The station's side of the scenario: seqNo kept, events built as the OCTT sends them."""

    def __init__(self, cp: RawChargePoint) -> None:
        self.cp = cp
        self.seq = 0

    async def boot(self) -> None:
        answer = await self.cp.call(
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"model": "X", "vendorName": "ACME"}},
        )
        assert answer["status"] == "Accepted"
        await self.status("Available")

    async def status(self, connector_status: str, when: str | None = None) -> None:
        await self.cp.call(
            "StatusNotification",
            {
                "timestamp": when or at(0),
                "connectorStatus": connector_status,
                "evseId": 1,
                "connectorId": 1,
            },
        )

    async def event(
        self,
        event_type: str,
        trigger: str,
        tx: str,
        when: str,
        *,
        state: str | None = None,
        seq_skip: int = 0,
        **extra: Any,
    ) -> dict[str, Any]:
        self.seq += seq_skip
        info: dict[str, Any] = {"transactionId": tx}
        if state is not None:
            info["chargingState"] = state
        info.update(extra.pop("info", {}))
        payload = {
            "eventType": event_type,
            "timestamp": when,
            "triggerReason": trigger,
            "seqNo": self.seq,
            "transactionInfo": info,
            "evse": {"id": 1, "connectorId": 1},
            **extra,
        }
        self.seq += 1
        return await self.cp.call("TransactionEvent", payload)


async def start(ocpp_hub: HubFactory, connect: Connect) -> tuple[Hub, Station201]:
    hub = await ocpp_hub(CONFIG)
    station = Station201(await connect(ws_url(hub, "CS-1"), protocol="ocpp2.0.1"))
    await station.boot()
    return hub, station


def port_of(hub: Hub, number: int = 1, cp_id: str = "CS-1") -> Any:
    return hub.data[DATA_SYSTEM].stations[cp_id].ports[number]


async def stored(hub: Hub, ocpp_id: str, cp_id: str = "CS-1") -> Any:
    store = hub.data[DATA_SYSTEM].transactions
    found = await store.get_by_ocpp_id(cp_id, ocpp_id)
    assert found is not None, ocpp_id
    return found


# E: transactions ------------------------------------------------------------------------


async def test_tc_e_09_csms_start_transaction_options_ev_connected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The station starts the transaction when the cable is plugged in (TxStartPoint
    EVConnected), without an id token: the hub opens the session on that EVSE."""
    hub, station = await start(ocpp_hub, connect)
    await station.status("Occupied", at(1))
    await station.cp.call(
        "NotifyEvent",
        {
            "generatedAt": at(1),
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": at(1),
                    "trigger": "Delta",
                    "actualValue": "Occupied",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                    "variable": {"name": "AvailabilityState"},
                }
            ],
        },
    )
    answer = await station.event("Started", "CablePluggedIn", "TX-E09", at(1), state="EVConnected")
    assert answer == {}  # no idToken sent: no idTokenInfo owed
    transaction = port_of(hub).transaction
    assert transaction is not None
    assert transaction.ocpp_id == "TX-E09"
    assert transaction.started_at == datetime.fromisoformat(at(1)).timestamp()


@pytest.mark.parametrize(
    ("test_case", "trigger", "reason"),
    [
        ("TC_E_17", "EVCommunicationLost", "EVDisconnected"),
        ("TC_E_20", "EVCommunicationLost", "EVDisconnected"),
        ("TC_E_15", "StopAuthorized", "Local"),
    ],
)
async def test_tc_e_17_20_csms_stop_transaction_options(
    ocpp_hub: HubFactory, connect: Connect, test_case: str, trigger: str, reason: str
) -> None:
    """TC_E_17/20 (EV side disconnected) and a local stop: the Ended event closes the
    session with the station's reason, its final reading and the energy between."""
    hub, station = await start(ocpp_hub, connect)
    tx = f"TX-{test_case}"
    await station.event(
        "Started",
        "Authorized",
        tx,
        at(0),
        state="Charging",
        idToken={"idToken": "TAG-1", "type": "ISO14443"},
        meterValue=[energy(1000, at(0), "Transaction.Begin")],
    )
    await station.event("Updated", "ChargingStateChanged", tx, at(30), state="SuspendedEV")
    answer = await station.event(
        "Ended",
        trigger,
        tx,
        at(40),
        state="Idle",
        info={"stoppedReason": reason},
        meterValue=[energy(8500, at(40), "Transaction.End")],
    )
    assert answer == {}
    record = await stored(hub, tx)
    assert record.stopped_at == datetime.fromisoformat(at(40)).timestamp()
    assert record.stop_reason == reason
    assert (record.meter_start_wh, record.meter_stop_wh) == (1000, 8500)
    assert port_of(hub).transaction is None


async def test_tc_e_02_csms_start_transaction_options_energy_transfer(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_02 (E01.FR.06): Authorize, the connector Occupied, then Started with
    ChargingStateChanged and the token while Charging: the hub accepts the token both
    times and the session runs, charging."""
    hub, station = await start(ocpp_hub, connect)
    token = {"idToken": "TAG-1", "type": "ISO14443"}
    authorized = await station.cp.call("Authorize", {"idToken": token})
    assert authorized["idTokenInfo"]["status"] == "Accepted"
    await station.status("Occupied", at(1))
    answer = await station.event(
        "Started", "ChargingStateChanged", "TX-E02", at(2), state="Charging", idToken=token
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"
    assert port_of(hub).transaction.ocpp_id == "TX-E02"
    assert port_of(hub).transaction.id_tag == "TAG-1"
    await wait_state(hub, "sensor.bay_1_1_status", "Charging")


async def test_tc_e_12_csms_start_transaction_options_parking_bay_occupied(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_12 (E01.FR.01): Started with EVDetected, no token, no charging state: the hub
    answers (no idTokenInfo owed) and the session is open on the EVSE."""
    hub, station = await start(ocpp_hub, connect)
    answer = await station.event("Started", "EVDetected", "TX-E12", at(1))
    assert answer == {}
    transaction = port_of(hub).transaction
    assert transaction.ocpp_id == "TX-E12"
    assert transaction.id_tag is None


async def test_tc_e_07_csms_stop_transaction_options_power_path_closed_local_stop(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_07 (E06.FR.06): from EnergyTransferStarted, Ended with StopAuthorized and
    stoppedReason Local: answered, the session ends with that reason."""
    hub, station = await start(ocpp_hub, connect)
    token = {"idToken": "TAG-1", "type": "ISO14443"}
    await station.event("Started", "Authorized", "TX-E07", at(0), state="Charging", idToken=token)
    answer = await station.event(
        "Ended",
        "StopAuthorized",
        "TX-E07",
        at(10),
        state="EVConnected",
        idToken=token,
        info={"stoppedReason": "Local"},
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"
    record = await stored(hub, "TX-E07")
    assert (record.stop_reason, record.stopped_at) == (
        "Local",
        datetime.fromisoformat(at(10)).timestamp(),
    )
    assert port_of(hub).transaction is None


async def test_tc_e_16_csms_stop_transaction_options_deauthorized_invalid_id_token(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_16 (E06.FR.04, E01.FR.11/12): Started with an unknown token answered Unknown
    (not Accepted); the station then ends it, Deauthorized / DeAuthorized, and the hub
    records that end."""
    hub, station = await start(ocpp_hub, connect)
    token = {"idToken": "NOBODY-KNOWS", "type": "ISO14443"}
    answer = await station.event("Started", "Authorized", "TX-E16", at(0), idToken=token)
    assert answer["idTokenInfo"]["status"] in ("Invalid", "Unknown")
    ended = await station.event(
        "Ended", "Deauthorized", "TX-E16", at(1), info={"stoppedReason": "DeAuthorized"}
    )
    assert ended == {}
    record = await stored(hub, "TX-E16")
    assert record.stop_reason == "DeAuthorized"
    assert port_of(hub).transaction is None


async def test_tc_e_39_csms_stop_transaction_options_deauthorized_timeout(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_39 (E03.FR.05): from the Authorized state (a transaction started on the
    token, no cable), Ended with EVConnectTimeout and stoppedReason Timeout."""
    hub, station = await start(ocpp_hub, connect)
    token = {"idToken": "TAG-1", "type": "ISO14443"}
    started = await station.event("Started", "Authorized", "TX-E39", at(0), idToken=token)
    assert started["idTokenInfo"]["status"] == "Accepted"
    answer = await station.event(
        "Ended", "EVConnectTimeout", "TX-E39", at(2), info={"stoppedReason": "Timeout"}
    )
    assert answer == {}
    record = await stored(hub, "TX-E39")
    assert record.stop_reason == "Timeout"
    assert port_of(hub).transaction is None


async def occupied(station: Station201, when: str) -> None:
    """The connector goes Occupied: StatusNotification and its NotifyEvent (Delta)."""
    await station.status("Occupied", when)
    answer = await station.cp.call(
        "NotifyEvent",
        {
            "generatedAt": when,
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": when,
                    "trigger": "Delta",
                    "actualValue": "Occupied",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                    "variable": {"name": "AvailabilityState"},
                }
            ],
        },
    )
    assert answer == {}


TOKEN = {"idToken": "TAG-1", "type": "ISO14443"}


async def test_tc_e_10_csms_start_transaction_options_authorized_local(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_10 (E01.FR.03): Authorize, then Started with triggerReason Authorized and the
    token: both answers Accepted; the session is the token's."""
    hub, station = await start(ocpp_hub, connect)
    authorized = await station.cp.call("Authorize", {"idToken": TOKEN})
    assert authorized["idTokenInfo"]["status"] == "Accepted"
    answer = await station.event("Started", "Authorized", "TX-E10", at(1), idToken=TOKEN)
    assert answer["idTokenInfo"]["status"] == "Accepted"
    assert port_of(hub).transaction.id_tag == "TAG-1"


async def test_tc_e_11_csms_start_transaction_options_data_signed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_11 (E01.FR.04): Authorize, Occupied, then Started with SignedDataReceived, the
    token and a signed Transaction.Begin reading of 0.0: accepted, the start reading is
    0 Wh and the signed data is kept with the event."""
    hub, station = await start(ocpp_hub, connect)
    assert (await station.cp.call("Authorize", {"idToken": TOKEN}))["idTokenInfo"][
        "status"
    ] == "Accepted"
    await occupied(station, at(1))
    signed = {
        "signedMeterData": "T0NNRl9TSUdORURfREFUQQ==",
        "signingMethod": "ECDSA-secp256r1-SHA256",
        "encodingMethod": "OCMF",
        "publicKey": "UFVCTElDLUtFWQ==",
    }
    reading = {
        "timestamp": at(2),
        "sampledValue": [
            {"value": 0.0, "context": "Transaction.Begin", "signedMeterValue": signed}
        ],
    }
    answer = await station.event(
        "Started", "SignedDataReceived", "TX-E11", at(2), idToken=TOKEN, meterValue=[reading]
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"
    record = await stored(hub, "TX-E11")
    assert record.meter_start_wh == 0
    store = hub.data[DATA_SYSTEM].transactions
    [event] = await store.events("CS-1", "TX-E11")
    assert event.data["meterValue"][0]["sampledValue"][0]["signedMeterValue"] == signed


@pytest.mark.parametrize("test_case", ["TC_E_03", "TC_E_04"])
async def test_tc_e_03_04_csms_local_start_cable_first_or_authorization_first(
    ocpp_hub: HubFactory, connect: Connect, test_case: str
) -> None:
    """TC_E_03 (E02.FR.02): cable first (Started CablePluggedIn), then Authorized (an
    Updated event with the token), then energy transfer. TC_E_04 (E03.FR.02): the token
    first (Started Authorized), then the cable and energy transfer. Each token answer is
    Accepted; the session is one transaction, the token's, charging."""
    hub, station = await start(ocpp_hub, connect)
    tx = f"TX-{test_case}"
    if test_case == "TC_E_03":
        await occupied(station, at(0))
        await station.event("Started", "CablePluggedIn", tx, at(0), state="EVConnected")
        assert (await station.cp.call("Authorize", {"idToken": TOKEN}))["idTokenInfo"][
            "status"
        ] == "Accepted"
        answer = await station.event("Updated", "Authorized", tx, at(1), idToken=TOKEN)
    else:
        assert (await station.cp.call("Authorize", {"idToken": TOKEN}))["idTokenInfo"][
            "status"
        ] == "Accepted"
        answer = await station.event("Started", "Authorized", tx, at(0), idToken=TOKEN)
        await occupied(station, at(1))
        await station.event("Updated", "CablePluggedIn", tx, at(1), state="EVConnected")
    assert answer["idTokenInfo"]["status"] == "Accepted"
    await station.event("Updated", "ChargingStateChanged", tx, at(2), state="Charging")
    await wait_state(hub, "sensor.bay_1_1_status", "Charging")
    transaction = port_of(hub).transaction
    assert (transaction.ocpp_id, transaction.id_tag) == (tx, "TAG-1")
    assert len(await hub.data[DATA_SYSTEM].transactions.open_transactions("CS-1")) == 1


async def test_tc_e_26_csms_disconnect_cable_on_ev_side_suspend_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_26 (E10.FR.01): from EnergyTransferSuspended, EVCommunicationLost (Idle), the
    connector Available, then CablePluggedIn (EVConnected) and charging again: the same
    transaction stays open throughout and charges again."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-E26"
    await station.event("Started", "Authorized", tx, at(0), state="Charging", idToken=TOKEN)
    await station.event("Updated", "ChargingStateChanged", tx, at(5), state="SuspendedEV")
    lost = await station.event("Updated", "EVCommunicationLost", tx, at(6), state="Idle")
    assert lost == {}
    await station.status("Available", at(6))
    back = await station.event("Updated", "CablePluggedIn", tx, at(8), state="EVConnected")
    assert back == {}
    await station.event("Updated", "ChargingStateChanged", tx, at(9), state="Charging")
    await wait_state(hub, "sensor.bay_1_1_status", "Charging")
    assert port_of(hub).transaction.ocpp_id == tx
    assert (await stored(hub, tx)).stopped_at is None


async def test_tc_e_22_csms_stop_transaction_options_energy_transfer_stopped_suspended_ev(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_22 (E06.FR.07): from EnergyTransferStarted, Ended with ChargingStateChanged,
    SuspendedEV and stoppedReason StoppedByEV: answered, the session ends so."""
    hub, station = await start(ocpp_hub, connect)
    await station.event("Started", "Authorized", "TX-E22", at(0), state="Charging", idToken=TOKEN)
    answer = await station.event(
        "Ended",
        "ChargingStateChanged",
        "TX-E22",
        at(20),
        state="SuspendedEV",
        info={"stoppedReason": "StoppedByEV"},
    )
    assert answer == {}
    assert (await stored(hub, "TX-E22")).stop_reason == "StoppedByEV"
    assert port_of(hub).transaction is None


async def test_tc_e_38_csms_local_start_ev_not_ready(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The EV is not ready yet (chargingState SuspendedEV): the port says so, the session
    stays open."""
    hub, station = await start(ocpp_hub, connect)
    await station.event(
        "Started",
        "Authorized",
        "TX-E38",
        at(0),
        idToken={"idToken": "TAG-1", "type": "ISO14443"},
    )
    answer = await station.event(
        "Updated", "ChargingStateChanged", "TX-E38", at(1), state="SuspendedEV"
    )
    assert answer == {}
    await wait_state(hub, "sensor.bay_1_1_status", "SuspendedEV")
    assert port_of(hub).transaction.ocpp_id == "TX-E38"


async def test_tc_e_29_31_csms_transaction_status_with_queued_messages(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_29: the station was offline during a transaction; the hub asks for its status
    (ongoing, messages queued) and takes the queued, offline events. TC_E_31: it ended while
    offline, the Ended event comes first with seqNo skipping two, the skipped ones after:
    the session stays ended with the Ended event's figures."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-E29"
    await station.event(
        "Started",
        "Authorized",
        tx,
        at(0),
        state="Charging",
        idToken={"idToken": "TAG-1", "type": "ISO14443"},
        meterValue=[energy(0, at(0), "Transaction.Begin")],
    )
    station.cp.handlers["GetTransactionStatus"] = lambda payload: {
        "ongoingIndicator": True,
        "messagesInQueue": True,
    }
    status = await hub.services.call(
        "ocpp", "get_transaction_status", {"charge_point_id": "CS-1", "transaction_id": tx}
    )
    assert await station.cp.wait_for_call("GetTransactionStatus") == {"transactionId": tx}
    assert (status["ongoing"], status["messages_in_queue"]) == (True, True)
    answer = await station.event(
        "Updated",
        "MeterValuePeriodic",
        tx,
        at(10),
        state="Charging",
        offline=True,
        meterValue=[energy(2000, at(10))],
    )
    assert answer == {}
    assert hub.states.get("sensor.bay_1_1_session_energy").state == "2000.0"

    # TC_E_31: ended while offline; the Ended event first, two seqNos skipped.
    skipped = station.seq
    await station.event(
        "Ended",
        "EVCommunicationLost",
        tx,
        at(50),
        state="Idle",
        seq_skip=2,
        offline=True,
        info={"stoppedReason": "EVDisconnected"},
        meterValue=[energy(9000, at(50), "Transaction.End")],
    )
    station.cp.handlers["GetTransactionStatus"] = lambda payload: {
        "ongoingIndicator": False,
        "messagesInQueue": True,
    }
    status = await hub.services.call(
        "ocpp", "get_transaction_status", {"charge_point_id": "CS-1", "transaction_id": tx}
    )
    assert (status["ongoing"], status["messages_in_queue"]) == (False, True)
    # The two queued events arrive late, in seqNo order.
    for index, minute in enumerate((20, 30)):
        station.seq = skipped + index
        await station.event(
            "Updated",
            "MeterValuePeriodic",
            tx,
            at(minute),
            state="Charging",
            offline=True,
            meterValue=[energy(3000 + index * 3000, at(minute))],
        )
    record = await stored(hub, tx)
    assert record.stopped_at == datetime.fromisoformat(at(50)).timestamp()
    assert (record.meter_start_wh, record.meter_stop_wh) == (0, 9000)
    assert port_of(hub).transaction is None, "a late event must not reopen an ended session"
    events = await hub.data[DATA_SYSTEM].transactions.events("CS-1", tx)
    assert [event.seq_no for event in events] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("answer", "ongoing", "queued"),
    [
        ({"ongoingIndicator": True, "messagesInQueue": False}, True, False),  # TC_E_30
        ({"messagesInQueue": False}, None, False),  # TC_E_34
        ({"messagesInQueue": True}, None, True),  # TC_E_33
    ],
)
async def test_tc_e_30_33_34_csms_transaction_status(
    ocpp_hub: HubFactory,
    connect: Connect,
    answer: dict[str, Any],
    ongoing: bool | None,
    queued: bool,
) -> None:
    """With a transaction id (TC_E_30) and without one (TC_E_33/34, ongoingIndicator
    omitted): the request carries the id only when asked, the answer is passed on."""
    hub, station = await start(ocpp_hub, connect)
    station.cp.handlers["GetTransactionStatus"] = lambda payload: answer
    data: dict[str, Any] = {"charge_point_id": "CS-1"}
    if ongoing is not None:
        data["transaction_id"] = "TX-E30"
    status = await hub.services.call("ocpp", "get_transaction_status", data)
    sent = await station.cp.wait_for_call("GetTransactionStatus")
    assert sent == ({"transactionId": "TX-E30"} if ongoing is not None else {})
    assert (status["ongoing"], status["messages_in_queue"]) == (ongoing, queued)


async def test_get_transaction_status_is_not_sent_to_a_16_charger(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """OCPP 1.6 has no GetTransactionStatus: refused before anything is sent."""
    hub = await ocpp_hub(CONFIG)
    cp = await connect(ws_url(hub, "CP-16"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    with pytest.raises(InvalidCallError, match=r"not an OCPP 1\.6 action"):
        await hub.services.call("ocpp", "get_transaction_status", {"charge_point_id": "CP-16"})
    assert cp.received == []


async def test_tc_005_1_csms_ev_side_disconnected_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """OCPP 1.6 TC_005_1_CSMS: SuspendedEV, StopTransaction with reason EVDisconnected and
    its transactionData, Finishing, Available: each answered, the session closed."""
    hub = await ocpp_hub(CONFIG)
    cp = await connect(ws_url(hub, "CP-16"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})

    async def status(value: str) -> None:
        answer = await cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": value}
        )
        assert answer == {}

    await status("Preparing")
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": 100, "timestamp": at(0)},
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    await status("Charging")
    await status("SuspendedEV")
    stopped = await cp.call(
        "StopTransaction",
        {
            "transactionId": started["transactionId"],
            "meterStop": 5100,
            "timestamp": at(30),
            "reason": "EVDisconnected",
            "transactionData": [
                {
                    "timestamp": at(15),
                    "sampledValue": [{"value": "2600", "context": "Sample.Periodic"}],
                },
                {
                    "timestamp": at(30),
                    "sampledValue": [{"value": "5100", "context": "Transaction.End"}],
                },
            ],
        },
    )
    assert stopped == {}
    await status("Finishing")
    await status("Available")
    record = await stored(hub, str(started["transactionId"]), "CP-16")
    assert (record.stop_reason, record.energy_wh) == ("EVDisconnected", 5000)
    assert hub.states.get("sensor.bay_16_1_energy").state == "5100.0"


# J: meter values -------------------------------------------------------------------------


async def test_tc_j_01_csms_clock_aligned_meter_values_no_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Clock-aligned MeterValues for the main meter (evseId 0) and the EVSE, three rounds,
    and the FiscalMetering NotifyEvent: each answered; the EVSE's register is shown."""
    hub, station = await start(ocpp_hub, connect)
    for round_ in range(3):
        when = at(15 * round_)
        for evse in (0, 1):
            answer = await station.cp.call(
                "MeterValues",
                {"evseId": evse, "meterValue": [energy(500 + round_ * 10, when, "Sample.Clock")]},
            )
            assert answer == {}
        answer = await station.cp.call(
            "NotifyEvent",
            {
                "generatedAt": when,
                "seqNo": round_,
                "eventData": [
                    {
                        "eventId": round_ + 1,
                        "timestamp": when,
                        "trigger": "Periodic",
                        "actualValue": str(500 + round_ * 10),
                        "eventNotificationType": "HardWiredMonitor",
                        "component": {"name": "FiscalMetering"},
                        "variable": {"name": "EnergyImport"},
                    }
                ],
            },
        )
        assert answer == {}
    assert hub.states.get("sensor.bay_1_1_energy").state == "520.0"


async def test_tc_j_02_csms_clock_aligned_meter_values_transaction_ongoing(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """During a transaction, clock-aligned readings in Updated events (several meterValue
    entries, sent newest first) move the session's energy to the latest reading."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-J02"
    await station.event(
        "Started",
        "Authorized",
        tx,
        at(0),
        state="Charging",
        idToken={"idToken": "TAG-1", "type": "ISO14443"},
        meterValue=[energy(1000, at(0), "Transaction.Begin")],
    )
    await station.event(
        "Updated",
        "MeterValueClock",
        tx,
        at(30),
        state="Charging",
        meterValue=[energy(3000, at(30), "Sample.Clock"), energy(2000, at(15), "Sample.Clock")],
    )
    assert hub.states.get("sensor.bay_1_1_energy").state == "3000.0"
    assert hub.states.get("sensor.bay_1_1_session_energy").state == "2000.0"


async def test_tc_j_03_csms_clock_aligned_meter_values_event_type_ended(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The Ended event carries the clock-aligned readings of the whole transaction, the
    last with context Transaction.End: the session's final reading is that last one."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-J03"
    await station.event(
        "Started",
        "Authorized",
        tx,
        at(0),
        state="Charging",
        idToken={"idToken": "TAG-1", "type": "ISO14443"},
        meterValue=[energy(100, at(0), "Transaction.Begin")],
    )
    readings = [energy(100 + 1000 * step, at(15 * step), "Sample.Clock") for step in range(4)]
    readings.append(energy(4600, at(50), "Transaction.End"))
    await station.event(
        "Ended",
        "EVCommunicationLost",
        tx,
        at(50),
        state="Idle",
        info={"stoppedReason": "EVDisconnected"},
        meterValue=readings,
    )
    record = await stored(hub, tx)
    assert (record.meter_start_wh, record.meter_stop_wh, record.energy_wh) == (100, 4600, 4500)
    assert hub.states.get("sensor.bay_1_1_energy").state == "4600.0"


async def test_tc_j_08_csms_sampled_meter_values_transaction_begin_evse_not_known(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_J_08 (J02.FR.19): the transaction starts on the token before the EVSE is known
    (no evse); the cable then names it, with a Transaction.Begin reading: the session is
    on that EVSE and starts from that reading."""
    hub, station = await start(ocpp_hub, connect)
    token_answer = await station.cp.call(
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": at(0),
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "TX-J08"},
            "idToken": TOKEN,
        },
    )
    assert token_answer["idTokenInfo"]["status"] == "Accepted"
    station.seq = 1
    answer = await station.event(
        "Updated",
        "CablePluggedIn",
        "TX-J08",
        at(1),
        state="EVConnected",
        meterValue=[energy(4200, at(1), "Transaction.Begin")],
    )
    assert answer == {}
    await station.event("Updated", "ChargingStateChanged", "TX-J08", at(2), state="Charging")
    transaction = port_of(hub).transaction
    assert transaction is not None
    assert transaction.ocpp_id == "TX-J08"
    assert (await stored(hub, "TX-J08")).meter_start_wh == 4200


async def test_tc_j_09_csms_sampled_meter_values_event_type_updated(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_J_09 (J02.FR.19): three Updated events with MeterValuePeriodic readings
    (Sample.Periodic), each answered; the register follows the newest."""
    hub, station = await start(ocpp_hub, connect)
    await station.event(
        "Started",
        "Authorized",
        "TX-J09",
        at(0),
        state="Charging",
        idToken=TOKEN,
        meterValue=[energy(1000, at(0), "Transaction.Begin")],
    )
    for step, wh in enumerate((1500, 2000, 2500), start=1):
        answer = await station.event(
            "Updated",
            "MeterValuePeriodic",
            "TX-J09",
            at(step),
            state="Charging",
            meterValue=[energy(wh, at(step))],
        )
        assert answer == {}
    assert port_of(hub).transaction.ocpp_id == "TX-J09"
    assert hub.states.get("sensor.bay_1_1_energy").state == "2500.0"
    assert hub.states.get("sensor.bay_1_1_session_energy").state == "1500.0"


async def test_meter_values_for_an_unknown_transaction_do_not_open_one(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 MeterValues naming a transaction the hub never started: stored on the port's
    meter, no session appears."""
    hub = await ocpp_hub(CONFIG)
    cp = await connect(ws_url(hub, "CP-16"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    answer = await cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 999_999,
            "meterValue": [{"timestamp": at(0), "sampledValue": [{"value": "42"}]}],
        },
    )
    assert answer == {}
    assert port_of(hub, 1, "CP-16").transaction is None
    await asyncio.sleep(0)


async def test_call_to_offline_station_fails_clearly(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(CONFIG)
    with pytest.raises(OcppCallError, match="offline"):
        await hub.services.call("ocpp", "get_transaction_status", {"charge_point_id": "CS-1"})
