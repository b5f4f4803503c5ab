"""OCA test cases of block O (display messages, OCPP 2.0.1 only), CSMS side: the test plays
the charging station over a real websocket and checks the frames the hub sends and its
answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.exceptions import ServiceValidationError
from tests.integrations.ocpp.conftest import ChargerCallError, Connect, HubFactory, RawChargePoint
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


async def test_display_message_roles(ocpp_hub: HubFactory) -> None:
    from tests.integrations.ocpp.test_central_system import OPEN

    hub = await ocpp_hub(OPEN)
    names = ("set_display_message", "get_display_messages", "clear_display_message")
    assert [hub.services.role("ocpp", name) for name in names] == ["operator", "viewer", "operator"]
