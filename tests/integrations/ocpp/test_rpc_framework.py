"""The RPC framework of both versions, as the OCA test cases hold a CSMS to it: unreadable
message ids (2.0.1), what a Pending station may send, and calls of ours checked against the
official schemas before they leave."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from hub.http import DATA_HTTP
from hub.testing import ApiUser, api_user  # noqa: F401 (the fixture)
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    HubFactory,
    ws_url,
)

OPEN = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
unknown_chargers: pending
chargers:
  - id: CP-16
  - id: CP-201
"""

BOOT_201 = {"reason": "PowerUp", "chargingStation": {"model": "X", "vendorName": "ACME"}}
BOOT_16 = {"chargePointVendor": "ACME", "chargePointModel": "X"}
STATUS_201 = {
    "timestamp": "2026-12-01T10:00:00Z",
    "connectorStatus": "Available",
    "evseId": 1,
    "connectorId": 1,
}
STATUS_16 = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}


@pytest.mark.parametrize(
    "frame",
    [
        "this is not JSON",
        '{"not": "an array"}',
        "[]",
        '[2, 17, "Heartbeat", {}]',
        '[2, null, "Heartbeat", {}]',
    ],
)
async def test_unreadable_message_id_gets_rpc_framework_error_201(
    ocpp_hub: HubFactory, connect: Connect, frame: str
) -> None:
    """OCPP 2.0.1 Part 4 4.2.3: a frame whose message id cannot be read is answered with
    CALLERROR id "-1", RpcFrameworkError; the connection stays usable."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-201"), protocol="ocpp2.0.1")
    answer = await cp.send_frame(frame, message_id="-1")
    assert answer is not None
    assert answer[:3] == [4, "-1", "RpcFrameworkError"]
    assert (await cp.call("BootNotification", BOOT_201))["status"] == "Accepted"


async def test_unreadable_message_id_is_not_answered_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """OCPP 1.6 has no answer for a frame without a readable id: nothing comes back, and the
    next frame is answered as usual."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-16"))
    await cp.send_frame("[]")
    assert (await cp.call("BootNotification", BOOT_16))["status"] == "Accepted"
    assert not [frame for frame in cp.received if frame[0] == "-1"]


async def test_tc_b_02_csms_pending_station_sends_only_boot_and_triggered_201(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """B02.FR.09: while Pending, a station's CALLs other than BootNotification get
    SecurityError, Heartbeat too, unless the CSMS triggered them (once per trigger)."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "NEWBIE-201"), protocol="ocpp2.0.1")
    assert (await cp.call("BootNotification", BOOT_201))["status"] == "Pending"
    for action, payload in (("Heartbeat", {}), ("StatusNotification", STATUS_201)):
        with pytest.raises(ChargerCallError) as info:
            await cp.call(action, payload)
        assert info.value.code == "SecurityError", action
    await hub.services.call(
        "ocpp",
        "trigger_message",
        {"charge_point_id": "NEWBIE-201", "requested_message": "StatusNotification"},
    )
    assert (await cp.wait_for_call("TriggerMessage"))["requestedMessage"] == "StatusNotification"
    assert await cp.call("StatusNotification", STATUS_201) == {}
    with pytest.raises(ChargerCallError) as info:
        await cp.call("StatusNotification", STATUS_201)
    assert info.value.code == "SecurityError"
    # BootNotification is always allowed: the station asks again.
    assert (await cp.call("BootNotification", BOOT_201))["status"] == "Pending"


async def test_pending_station_sends_only_boot_and_triggered_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """OCPP 1.6 4.2: a Pending charge point sends nothing but BootNotification and what the
    central system triggered; Heartbeat is refused too."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "NEWBIE-16"))
    assert (await cp.call("BootNotification", BOOT_16))["status"] == "Pending"
    with pytest.raises(ChargerCallError) as info:
        await cp.call("Heartbeat", {})
    assert info.value.code == "SecurityError"
    await hub.services.call(
        "ocpp",
        "trigger_message",
        {"charge_point_id": "NEWBIE-16", "requested_message": "Heartbeat"},
    )
    await cp.wait_for_call("TriggerMessage")
    assert "currentTime" in await cp.call("Heartbeat", {})
    with pytest.raises(ChargerCallError):
        await cp.call("Heartbeat", {})


@pytest.mark.parametrize(
    ("protocol", "cp_id", "service", "data", "reason"),
    [
        (
            "ocpp1.6",
            "CP-16",
            "change_configuration",
            {"key": "K" * 60, "value": "1"},
            "key",
        ),
        (
            "ocpp1.6",
            "CP-16",
            "data_transfer",
            {"vendor_id": "V" * 300},
            "vendorId",
        ),
        (
            "ocpp1.6",
            "CP-16",
            "trigger_message",
            {"requested_message": "NoSuchMessage"},
            "requestedMessage",
        ),
        (
            "ocpp2.0.1",
            "CP-201",
            "get_variables",
            {"variables": [{"component": {}, "variable": {"name": "Enabled"}}]},
            "name",
        ),
    ],
)
async def test_calls_that_break_the_schema_never_leave(
    ocpp_hub: HubFactory,
    connect: Connect,
    api_user: ApiUser,  # noqa: F811
    protocol: str,
    cp_id: str,
    service: str,
    data: dict[str, Any],
    reason: str,
) -> None:
    """API input that would make a schema-invalid CALL is a 400 with the schema's reason;
    the charger receives nothing."""
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, cp_id), protocol=protocol)
    await cp.call("BootNotification", BOOT_16 if protocol == "ocpp1.6" else BOOT_201)
    token = await api_user(hub, "admin")
    url = hub.data[DATA_HTTP].url
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/api/services/ocpp/{service}",
            json={"data": {"charge_point_id": cp_id, **data}},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        text = await resp.text()
    assert resp.status == 400, text
    assert reason in json.loads(text)["message"]
    assert cp.received == []
