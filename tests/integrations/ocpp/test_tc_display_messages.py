"""OCA test cases of block O (display messages, OCPP 2.0.1 only), CSMS side: the test plays
the charging station over a real websocket and checks the frames the hub sends and its
answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.core import Hub
from hub.exceptions import ServiceValidationError
from hub.testing import manual_clock_of
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    HubFactory,
    RawChargePoint,
    ws_url,
)
from tests.integrations.ocpp.test_central_system import NOW, OPEN
from tests.integrations.ocpp.test_tc_smart_charging import (
    CP1,
    CP2,
    call,
    sent,
    start_transaction_201,
    station16,
    station201,
)

OUT_OF_ORDER = {"message": "Out of order, use bay 2", "state": "Faulted", "priority": "InFront"}


def _messages(cp: RawChargePoint, infos: list[list[dict[str, Any]]]) -> None:
    """Answer GetDisplayMessages with Accepted, then send the infos (tbc until the last)."""

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        async def send() -> None:
            for index, batch in enumerate(infos):
                await cp.call(
                    "NotifyDisplayMessages",
                    {
                        "requestId": payload["requestId"],
                        "messageInfo": batch,
                        "tbc": index < len(infos) - 1,
                    },
                )

        asyncio.get_running_loop().create_task(send())
        return {"status": "Accepted"}

    cp.handlers["GetDisplayMessages"] = answer


def _info(mid: int, text: str = "hello") -> dict[str, Any]:
    return {"id": mid, "priority": "NormalCycle", "message": {"format": "UTF8", "content": text}}


async def test_tc_o_01_csms_set_display_message(ocpp_hub: HubFactory, connect: Connect) -> None:
    """An operator shows "out of order, use bay 2" while the station is faulted; no
    transactionId for a message of no transaction (O01.FR.04)."""
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(hub, "set_display_message", {**CP2, **OUT_OF_ORDER, "language": "en"})
    assert answer["status"] == "Accepted"
    request = await cp.wait_for_call("SetDisplayMessage")
    assert request == {
        "message": {
            "id": answer["message_id"],
            "priority": "InFront",
            "state": "Faulted",
            "message": {"format": "UTF8", "content": "Out of order, use bay 2", "language": "en"},
        }
    }
    shown = hub.states.get("sensor.bay_2_display_messages")
    assert shown.state == "1"
    assert shown.attributes["messages"][0]["message"]["content"] == "Out of order, use bay 2"


async def test_tc_o_02_csms_get_all_display_messages(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    _messages(cp, [[_info(1), _info(2)], [_info(3, "third")]])
    result = await call(hub, "get_display_messages", CP2)
    request = await cp.wait_for_call("GetDisplayMessages")
    assert set(request) == {"requestId"}
    assert result["status"] == "Accepted"
    assert result["complete"] is True
    assert [item["id"] for item in result["messages"]] == [1, 2, 3]


async def test_tc_o_03_csms_get_display_messages_none_configured(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["GetDisplayMessages"] = lambda payload: {"status": "Unknown"}
    result = await call(hub, "get_display_messages", CP2)
    assert result["status"] == "Unknown"
    assert result["messages"] == []
    assert "requestId" in await cp.wait_for_call("GetDisplayMessages")


async def test_tc_o_04_csms_clear_display_message(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(hub, "set_display_message", {**CP2, **OUT_OF_ORDER})
    mid = answer["message_id"]
    assert await call(hub, "clear_display_message", {**CP2, "message_id": mid}) == "Accepted"
    assert await cp.wait_for_call("ClearDisplayMessage") == {"id": mid}
    assert hub.states.get("sensor.bay_2_display_messages").state == "0"
    cp.handlers["ClearDisplayMessage"] = lambda payload: {"status": "Unknown"}
    assert await call(hub, "clear_display_message", {**CP2, "message_id": 999}) == "Unknown"


async def test_tc_o_06_csms_display_message_for_a_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    await call(
        hub,
        "set_display_message",
        {**CP2, "message": "Charging at 11 kW", "transaction_id": "TX-K"},
    )
    request = await cp.wait_for_call("SetDisplayMessage")
    assert request["message"]["transactionId"] == "TX-K"
    assert request["message"]["priority"] == "NormalCycle"


async def test_tc_o_09_csms_get_display_messages_by_state_and_priority(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    _messages(cp, [[_info(4)]])
    result = await call(
        hub,
        "get_display_messages",
        {**CP2, "state": "Charging", "priority": "AlwaysFront", "message_ids": [4]},
    )
    request = await cp.wait_for_call("GetDisplayMessages")
    assert (request["state"], request["priority"], request["id"]) == (
        "Charging",
        "AlwaysFront",
        [4],
    )
    assert [item["id"] for item in result["messages"]] == [4]


async def test_tc_o_10_csms_display_message_unknown_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["SetDisplayMessage"] = lambda payload: {"status": "UnknownTransaction"}
    answer = await call(
        hub, "set_display_message", {**CP2, "message": "hello", "transaction_id": "TX-NONE"}
    )
    assert answer["status"] == "UnknownTransaction"
    assert hub.states.get("sensor.bay_2_display_messages") is None


async def test_tc_o_12_csms_replace_display_message(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    first = await call(hub, "set_display_message", {**CP2, **OUT_OF_ORDER})
    await call(
        hub,
        "set_display_message",
        {
            **CP2,
            "message": "Back soon",
            "priority": "AlwaysFront",
            "message_id": first["message_id"],
        },
    )
    one, two = sent(cp, "SetDisplayMessage")
    assert one["message"]["id"] == two["message"]["id"]
    assert two["message"]["message"]["content"] == "Back soon"
    shown = hub.states.get("sensor.bay_2_display_messages")
    assert shown.state == "1"
    assert shown.attributes["messages"][0]["priority"] == "AlwaysFront"


async def test_tc_o_13_csms_display_message_with_a_time_window(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    end = start + timedelta(hours=2)
    await call(
        hub,
        "set_display_message",
        {
            **CP2,
            "message": "Maintenance",
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
        },
    )
    info = (await cp.wait_for_call("SetDisplayMessage"))["message"]
    assert datetime.fromisoformat(info["startDateTime"]) == start
    assert datetime.fromisoformat(info["endDateTime"]) == end


async def test_tc_o_05_csms_clear_display_message_unknown_key(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The station does not know the id: Unknown is the answer; what the hub shows of its
    own messages stays."""
    hub, cp = await station201(ocpp_hub, connect)
    kept = await call(hub, "set_display_message", {**CP2, **OUT_OF_ORDER})
    cp.handlers["ClearDisplayMessage"] = lambda payload: {"status": "Unknown"}
    assert await call(hub, "clear_display_message", {**CP2, "message_id": 4711}) == "Unknown"
    assert await cp.wait_for_call("ClearDisplayMessage") == {"id": 4711}
    shown = hub.states.get("sensor.bay_2_display_messages")
    assert shown.state == "1"
    assert shown.attributes["messages"][0]["id"] == kept["message_id"]
    for bad in (0, -1, 2**31):
        with pytest.raises(ServiceValidationError):
            await call(hub, "clear_display_message", {**CP2, "message_id": bad})
    assert len(sent(cp, "ClearDisplayMessage")) == 1


async def test_tc_o_07_csms_get_display_message_by_id(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    _messages(cp, [[_info(7, "seven")]])
    result = await call(hub, "get_display_messages", {**CP2, "message_ids": [7]})
    request = await cp.wait_for_call("GetDisplayMessages")
    assert set(request) == {"requestId", "id"}
    assert request["id"] == [7]
    assert result["request_id"] == request["requestId"]
    assert result["status"] == "Accepted"
    assert [(item["id"], item["message"]["content"]) for item in result["messages"]] == [
        (7, "seven")
    ]


async def test_tc_o_08_csms_get_display_messages_by_priority(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    front = {**_info(8, "front"), "priority": "AlwaysFront"}
    _messages(cp, [[front]])
    result = await call(hub, "get_display_messages", {**CP2, "priority": "AlwaysFront"})
    request = await cp.wait_for_call("GetDisplayMessages")
    assert set(request) == {"requestId", "priority"}
    assert request["priority"] == "AlwaysFront"
    assert [item["priority"] for item in result["messages"]] == ["AlwaysFront"]
    assert result["complete"] is True


async def test_tc_o_11_csms_get_display_messages_unknown_parameters(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Criteria no message matches: the station answers Unknown and sends no report; the
    hub does not wait for one."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["GetDisplayMessages"] = lambda payload: {"status": "Unknown"}
    result = await call(
        hub,
        "get_display_messages",
        {**CP2, "message_ids": [404], "priority": "InFront", "state": "Unavailable"},
    )
    request = await cp.wait_for_call("GetDisplayMessages")
    assert (request["id"], request["priority"], request["state"]) == (
        [404],
        "InFront",
        "Unavailable",
    )
    assert result == {
        "status": "Unknown",
        "request_id": request["requestId"],
        "messages": [],
        "complete": True,
    }


async def _manual_station(ocpp_hub: HubFactory, connect: Connect) -> tuple[Hub, RawChargePoint]:
    hub = await ocpp_hub(OPEN, manual_clock=True)
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    boot = {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"}
    await cp.call("BootNotification", boot)
    return hub, cp


async def test_tc_o_14_csms_message_removed_after_end_time(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The station stops showing a message at its end time; the hub's list and entity drop
    it then too, on the hub clock."""
    hub, cp = await _manual_station(ocpp_hub, connect)
    ended: list[Any] = []
    hub.bus.listen("ocpp_display_message_ended", ended.append)
    now = datetime.fromtimestamp(manual_clock_of(hub).time(), UTC).replace(microsecond=0)
    end = now + timedelta(hours=1)
    short = await call(
        hub, "set_display_message", {**CP2, "message": "Closing soon", "end_time": end.isoformat()}
    )
    lasting = await call(hub, "set_display_message", {**CP2, "message": "Welcome"})
    info = sent(cp, "SetDisplayMessage")[0]["message"]
    assert datetime.fromisoformat(info["endDateTime"]) == end
    assert hub.states.get("sensor.bay_2_display_messages").state == "2"
    await manual_clock_of(hub).advance(3599)
    assert hub.states.get("sensor.bay_2_display_messages").state == "2"
    await manual_clock_of(hub).advance(2)
    shown = hub.states.get("sensor.bay_2_display_messages")
    assert shown.state == "1"
    assert [item["id"] for item in shown.attributes["messages"]] == [lasting["message_id"]]
    assert [(e.data["message_id"], e.data["reason"]) for e in ended] == [
        (short["message_id"], "Expired")
    ]
    # Nothing is sent for it: the station removes it itself.
    assert sent(cp, "ClearDisplayMessage") == []


async def test_kept_messages_still_end_after_a_restart(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """Kept messages come back with a hub restart, and one with an end time still ends on
    time (on the new hub's clock)."""
    hub, cp = await station201(ocpp_hub, connect)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    await call(hub, "set_display_message", {**CP2, "message": "later", "end_time": end.isoformat()})
    await call(hub, "set_display_message", {**CP2, "message": "always"})
    await cp.close()
    await hub.stop()
    second = await ocpp_hub(OPEN, manual_clock=True)
    cp2 = await connect(ws_url(second, "CP-2"), protocol="ocpp2.0.1")
    boot = {"chargingStation": {"model": "W22", "vendorName": "ACME"}, "reason": "PowerUp"}
    await cp2.call("BootNotification", boot)
    await call(second, "set_display_message", {**CP2, "message": "third"})
    assert second.states.get("sensor.bay_2_display_messages").state == "3"
    await manual_clock_of(second).advance(3601)
    shown = second.states.get("sensor.bay_2_display_messages")
    assert [item["message"]["content"] for item in shown.attributes["messages"]] == [
        "always",
        "third",
    ]


@pytest.mark.parametrize(
    ("case", "status", "extra"),
    [
        ("tc_o_17", "NotSupportedPriority", {"priority": "AlwaysFront"}),
        ("tc_o_18", "NotSupportedState", {"state": "Unavailable"}),
        ("tc_o_19", "NotSupportedMessageFormat", {"format": "HTML"}),
    ],
)
async def test_tc_o_17_18_19_csms_set_display_message_not_supported(
    ocpp_hub: HubFactory, connect: Connect, case: str, status: str, extra: dict[str, Any]
) -> None:
    """TC_O_17 priority, TC_O_18 state, TC_O_19 message format the station does not
    support: its status is the answer, and the hub keeps nothing."""
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["SetDisplayMessage"] = lambda payload: {"status": status}
    answer = await call(hub, "set_display_message", {**CP2, "message": "<b>hi</b>", **extra})
    assert answer["status"] == status
    info = (await cp.wait_for_call("SetDisplayMessage"))["message"]
    for key, value in extra.items():
        assert (info["message"]["format"] if key == "format" else info[key]) == value
    assert hub.states.get("sensor.bay_2_display_messages") is None


async def test_tc_o_25_csms_set_display_message_specific_state(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    answer = await call(
        hub, "set_display_message", {**CP2, "message": "Charging, thank you", "state": "Charging"}
    )
    assert answer["status"] == "Accepted"
    info = (await cp.wait_for_call("SetDisplayMessage"))["message"]
    assert info["state"] == "Charging"
    assert "transactionId" not in info
    shown = hub.states.get("sensor.bay_2_display_messages")
    assert shown.attributes["messages"][0]["state"] == "Charging"


async def test_tc_o_26_csms_set_display_message_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    cp.handlers["SetDisplayMessage"] = lambda payload: {"status": "Rejected"}
    answer = await call(hub, "set_display_message", {**CP2, **OUT_OF_ORDER})
    assert answer["status"] == "Rejected"
    assert (await cp.wait_for_call("SetDisplayMessage"))["message"]["id"] == answer["message_id"]
    assert hub.states.get("sensor.bay_2_display_messages") is None


async def test_tc_o_27_csms_message_for_a_transaction_with_start_time(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    await call(
        hub,
        "set_display_message",
        {
            **CP2,
            "message": "10 min left",
            "transaction_id": "TX-K",
            "start_time": start.isoformat(),
        },
    )
    info = (await cp.wait_for_call("SetDisplayMessage"))["message"]
    assert info["transactionId"] == "TX-K"
    assert datetime.fromisoformat(info["startDateTime"]) == start
    assert "endDateTime" not in info


async def test_tc_o_28_csms_message_for_a_transaction_with_end_time(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A message of a transaction with an end time; it goes when its transaction ends,
    before its end time (the station drops it too)."""
    hub, cp = await station201(ocpp_hub, connect)
    await start_transaction_201(cp)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    answer = await call(
        hub,
        "set_display_message",
        {
            **CP2,
            "message": "Session ends 18:00",
            "transaction_id": "TX-K",
            "end_time": end.isoformat(),
        },
    )
    info = (await cp.wait_for_call("SetDisplayMessage"))["message"]
    assert info["transactionId"] == "TX-K"
    assert datetime.fromisoformat(info["endDateTime"]) == end
    assert "startDateTime" not in info
    await call(hub, "set_display_message", {**CP2, "message": "Welcome"})
    assert hub.states.get("sensor.bay_2_display_messages").state == "2"
    ended = {
        "eventType": "Ended",
        "timestamp": NOW,
        "triggerReason": "EVDeparted",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "TX-K", "stoppedReason": "EVDisconnected"},
        "evse": {"id": 1, "connectorId": 1},
    }
    await cp.call("TransactionEvent", ended)
    shown = hub.states.get("sensor.bay_2_display_messages")
    assert shown.state == "1"
    assert answer["message_id"] not in [item["id"] for item in shown.attributes["messages"]]


async def test_display_message_input_is_checked_and_201_only(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await station201(ocpp_hub, connect)
    now = datetime.now(UTC)
    for bad in (
        {"message": ""},
        {"message": "x" * 513},
        {"message": "hi", "priority": "Urgent"},
        {"message": "hi", "state": "Broken"},
        {"message": "hi", "format": "PDF"},
        {"message": "hi", "transaction_id": "t" * 37},
        {"message": "hi", "end_time": (now - timedelta(hours=1)).isoformat()},
        {
            "message": "hi",
            "start_time": (now + timedelta(hours=2)).isoformat(),
            "end_time": (now + timedelta(hours=1)).isoformat(),
        },
        {"message": "hi", "message_id": 0},
    ):
        with pytest.raises(ServiceValidationError):
            await call(hub, "set_display_message", {**CP2, **bad})
    assert sent(cp, "SetDisplayMessage") == []
    with pytest.raises(ChargerCallError):
        await cp.call("NotifyDisplayMessages", {"requestId": 1, "messageInfo": []})
    # An unsolicited report is answered.
    assert await cp.call("NotifyDisplayMessages", {"requestId": 5, "messageInfo": [_info(1)]}) == {}


async def test_display_messages_are_refused_for_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, cp = await station16(ocpp_hub, connect)
    with pytest.raises(ServiceValidationError, match=r"2\.0\.1"):
        await call(hub, "set_display_message", {**CP1, "message": "hello"})
    assert sent(cp, "SetDisplayMessage") == []


async def test_simulator_shows_lists_and_clears_messages(ocpp_hub: HubFactory) -> None:
    from integrations.ocpp.simulator import SimulatedChargePoint
    from tests.integrations.ocpp.conftest import ws_url
    from tests.integrations.ocpp.test_central_system import OPEN

    hub = await ocpp_hub(OPEN)
    base = ws_url(hub, "CP-2").rsplit("/", 1)[0]
    async with SimulatedChargePoint("CP-2", base, version="2.0.1", speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        ids = []
        for text in ("one", "two", "three"):
            answer = await call(hub, "set_display_message", {**CP2, "message": text})
            assert answer["status"] == "Accepted"
            ids.append(answer["message_id"])
        listed = await call(hub, "get_display_messages", CP2)
        assert listed["complete"] is True
        assert [item["message"]["content"] for item in listed["messages"]] == [
            "one",
            "two",
            "three",
        ]
        assert await call(hub, "clear_display_message", {**CP2, "message_id": ids[0]}) == "Accepted"
        html = await call(
            hub, "set_display_message", {**CP2, "message": "<b>x</b>", "format": "HTML"}
        )
        assert html["status"] == "NotSupportedMessageFormat"
        unknown = await call(
            hub, "set_display_message", {**CP2, "message": "x", "transaction_id": "T"}
        )
        assert unknown["status"] == "UnknownTransaction"
        assert (await call(hub, "get_display_messages", {**CP2, "message_ids": [ids[0]]}))[
            "status"
        ] == "Unknown"
        assert hub.states.get("sensor.bay_2_display_messages").state == "2"
        # A message's end time passes: the station and the hub both drop it.
        end = datetime.now(UTC) + timedelta(seconds=1)
        brief = await call(
            hub, "set_display_message", {**CP2, "message": "brief", "end_time": end.isoformat()}
        )
        assert brief["status"] == "Accepted"
        assert hub.states.get("sensor.bay_2_display_messages").state == "3"
        await asyncio.sleep(max(end.timestamp() - datetime.now(UTC).timestamp(), 0) + 0.2)
        assert hub.states.get("sensor.bay_2_display_messages").state == "2"
        gone = await call(
            hub, "get_display_messages", {**CP2, "message_ids": [brief["message_id"]]}
        )
        assert gone["status"] == "Unknown"


async def test_display_message_roles(ocpp_hub: HubFactory) -> None:
    from tests.integrations.ocpp.test_central_system import OPEN

    hub = await ocpp_hub(OPEN)
    names = ("set_display_message", "get_display_messages", "clear_display_message")
    assert [hub.services.role("ocpp", name) for name in names] == ["operator", "viewer", "operator"]
