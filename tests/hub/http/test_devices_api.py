"""Chargers from the page, against a real hub and real OCPP chargers: the pending list with
what each charger said at boot, reject that leaves the list, and an operator's name and site
for a station, kept when the integration registers it again (after a restart too)."""

# ruff: noqa: F811 - the OCPP fixtures are imported, and named by the tests that use them

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.core import Hub
from hub.http import DATA_HTTP
from hub.registry import DeviceKind, device_registry
from hub.security import recent_audit
from tests.hub.http.conftest import Api, api_of, request
from tests.integrations.ocpp.conftest import (  # noqa: F401 - fixtures
    Connect,
    HubFactory,
    RawChargePoint,
    connect,
    ocpp_hub,
    plain_ocpp,
    ws_url,
)

PENDING = plain_ocpp(
    """
    unknown_chargers: pending
    chargers:
      - {id: KNOWN-1, name: Bay 1, site: Example depot}
    """
)
BOOT16 = {
    "chargePointVendor": "ACME",
    "chargePointModel": "AC22",
    "chargePointSerialNumber": "SN-0042",
}
BOOT201 = {
    "reason": "PowerUp",
    "chargingStation": {"vendorName": "Volta", "model": "DC150", "serialNumber": "VX-9"},
}


async def start(
    ocpp_hub: HubFactory, before: Api | None = None, config_dir: Path | None = None
) -> Api:
    """Start the hub (again: in the same config dir, with the users and tokens made before)."""
    hub = await ocpp_hub(PENDING, config_dir=config_dir)
    if before is None:
        return await api_of(hub)
    return Api(hub, hub.data[DATA_HTTP].url, before.tokens, before.user_ids)


async def booted(
    connect: Connect,
    api: Api,
    cp_id: str,
    status: str = "Pending",
    boot: dict[str, Any] = BOOT16,
    **options: Any,
) -> RawChargePoint:
    """A charger connected (options go to connect) that boots and is answered with status."""
    cp = await connect(ws_url(api.hub, cp_id), **options)
    assert (await cp.call("BootNotification", boot))["status"] == status
    return cp


async def pending_ids(session: aiohttp.ClientSession, api: Api) -> list[str]:
    status, listed = await request(session, api, "GET", "/api/pending_chargers", "operator")
    assert status == 200
    return [p["charge_point_id"] for p in listed]


def devices_of(hub: Hub, cp_id: str) -> list[str]:
    return [d.id for d in device_registry(hub).devices() if ("ocpp", cp_id) in d.identifiers]


async def test_pending_list_shows_what_the_charger_said_at_boot(
    ocpp_hub: HubFactory, connect: Connect, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    api = await start(ocpp_hub)
    cp16 = await booted(connect, api, "NEW-16")
    cp201 = await booted(connect, api, "NEW-201", boot=BOOT201, protocol="ocpp2.0.1")
    status, listed = await request(session, api, "GET", "/api/pending_chargers", "viewer")
    assert status == 200
    by_id = {p["charge_point_id"]: p for p in listed}
    assert set(by_id) == {"NEW-16", "NEW-201"}
    first = by_id["NEW-16"]
    assert (first["vendor"], first["model"], first["serial"]) == ("ACME", "AC22", "SN-0042")
    assert first["remote"] == "127.0.0.1"
    assert first["integration"] == "ocpp"
    assert first["device_id"] in devices_of(api.hub, "NEW-16")
    second = by_id["NEW-201"]
    assert (second["vendor"], second["model"], second["serial"]) == ("Volta", "DC150", "VX-9")

    # Kept across a restart, while the chargers are away.
    await cp16.close()
    await cp201.close()
    await api.hub.stop()
    again = await start(ocpp_hub, api, tmp_path)
    status, listed = await request(session, again, "GET", "/api/pending_chargers", "viewer")
    by_id = {p["charge_point_id"]: p for p in listed}
    assert (by_id["NEW-16"]["vendor"], by_id["NEW-16"]["serial"]) == ("ACME", "SN-0042")
    assert by_id["NEW-16"]["remote"] is None  # not connected now


@pytest.mark.parametrize("when", ["connected", "gone", "after_restart"])
async def test_a_rejected_charger_leaves_the_list_for_good(
    ocpp_hub: HubFactory,
    connect: Connect,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    when: str,
) -> None:
    api = await start(ocpp_hub)
    cp = await booted(connect, api, "ROGUE-1")
    if when != "connected":
        await cp.close()
    if when == "after_restart":  # listed from what the hub kept, never seen since
        await api.hub.stop()
        api = await start(ocpp_hub, api, tmp_path)
    assert await pending_ids(session, api) == ["ROGUE-1"]
    status, chargers = await request(session, api, "GET", "/api/chargers", "operator")
    assert [c["charge_point_id"] for c in chargers] == ["KNOWN-1", "ROGUE-1"]

    status, body = await request(
        session, api, "POST", "/api/pending_chargers/ROGUE-1/reject", "operator"
    )
    assert (status, body["result"]) == (200, {"charge_point_id": "ROGUE-1", "rejected": True})
    assert await pending_ids(session, api) == []
    status, chargers = await request(session, api, "GET", "/api/chargers", "operator")
    assert [c["charge_point_id"] for c in chargers] == ["KNOWN-1"]
    assert devices_of(api.hub, "ROGUE-1") == []
    assert not [s for s in api.hub.states.all() if s.entity_id.startswith("sensor.rogue_1")]
    # Once more: not pending any longer, a clear 404.
    status, body = await request(
        session, api, "POST", "/api/pending_chargers/ROGUE-1/reject", "operator"
    )
    assert (status, body["error"]) == (404, "not_found")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(ws_url(api.hub, "ROGUE-1"))
    assert refused.value.status == 403
    assert await pending_ids(session, api) == []

    await api.hub.stop()
    again = await start(ocpp_hub, api, tmp_path)
    assert await pending_ids(session, again) == []
    assert devices_of(again.hub, "ROGUE-1") == []


async def test_an_operator_names_an_approved_charger_and_files_it_under_a_site(
    ocpp_hub: HubFactory, connect: Connect, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    api = await start(ocpp_hub)
    cp = await booted(connect, api, "NEW-7")
    status, listed = await request(session, api, "GET", "/api/pending_chargers", "operator")
    device_id = listed[0]["device_id"]
    path = f"/api/devices/{device_id}"
    cp.handlers["TriggerMessage"] = lambda payload: {"status": "Accepted"}
    status, _ = await request(
        session, api, "POST", "/api/pending_chargers/NEW-7/approve", "operator"
    )
    assert status == 200

    rename = {"name": "Bay 7", "site": "North depot"}
    status, body = await request(session, api, "PATCH", path, "viewer", rename)
    assert (status, body["error"]) == (403, "forbidden")
    status, station = await request(session, api, "PATCH", path, "operator", body=rename)
    assert status == 200
    assert (station["name"], station["site"], station["charge_point_id"]) == (
        "Bay 7",
        "North depot",
        "NEW-7",
    )
    status, sites = await request(session, api, "GET", "/api/sites", "viewer")
    assert {(s["name"], s["stations"]) for s in sites} == {
        ("Example depot", 1),
        ("North depot", 1),
    }
    [entry] = [e for e in recent_audit(api.hub) if e["action"] == "device.update"]
    assert (entry["username"], entry["target"], entry["result"]) == (
        "operator_user",
        "NEW-7: name 'Bay 7', site 'North depot'",
        "ok",
    )

    # The charger boots again (the integration registers its station again): name and site
    # stay the operator's.
    assert (await cp.call("BootNotification", BOOT16))["status"] == "Accepted"
    status, station = await request(session, api, "GET", f"/api/chargers/{device_id}", "operator")
    assert (station["name"], station["site"]) == ("Bay 7", "North depot")

    # A site named as an existing one (case aside) is that site; the emptied one goes.
    status, station = await request(
        session, api, "PATCH", path, "operator", body={"site": "example DEPOT"}
    )
    assert station["site"] == "Example depot"
    status, sites = await request(session, api, "GET", "/api/sites", "operator")
    assert {(s["name"], s["stations"]) for s in sites} == {("Example depot", 2)}

    # And after a restart, where the integration files its stations anew.
    await cp.close()
    await api.hub.stop()
    again = await start(ocpp_hub, api, tmp_path)
    status, station = await request(session, again, "GET", f"/api/chargers/{device_id}", "operator")
    assert (station["name"], station["site"]) == ("Bay 7", "Example depot")
    # No site at all, also kept.
    status, station = await request(session, again, "PATCH", path, "operator", body={"site": None})
    assert (status, station["site"]) == (200, None)
    await again.hub.stop()
    third = await start(ocpp_hub, api, tmp_path)
    station_entry = device_registry(third.hub).get(device_id)
    assert station_entry is not None
    assert (station_entry.name, station_entry.via_device_id) == ("Bay 7", None)


async def test_bad_device_updates_get_a_clear_4xx_and_are_audited(
    ocpp_hub: HubFactory, connect: Connect, session: aiohttp.ClientSession
) -> None:
    api = await start(ocpp_hub)
    cp = await booted(connect, api, "KNOWN-1", "Accepted")
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    devices = device_registry(api.hub)
    [station] = devices.devices(kind=DeviceKind.STATION)
    [port] = devices.devices(kind=DeviceKind.CONNECTOR)
    path = f"/api/devices/{station.id}"
    for body, reason in (
        ({}, "give a name, a site or both"),
        ({"name": ""}, "name must be 1 to 100 characters"),
        ({"name": "   "}, "name must be 1 to 100 characters"),
        ({"name": "x" * 101}, "name must be 1 to 100 characters"),
        ({"name": 7}, "name must be a string"),
        ({"name": "Bay\x001"}, "name must not contain control characters"),
        ({"site": ["a"]}, "site must be a string"),
        ({"colour": "red"}, "unknown fields: colour"),
    ):
        status, answer = await request(session, api, "PATCH", path, "operator", body=body)
        assert (status, answer["message"]) == (400, reason), body
    status, answer = await request(
        session, api, "PATCH", f"/api/devices/{port.id}", "operator", body={"site": "Depot"}
    )
    assert (status, answer["message"]) == (400, "only a station has a site, not a connector")
    # A connector may be named, though.
    status, answer = await request(
        session, api, "PATCH", f"/api/devices/{port.id}", "operator", body={"name": "Left socket"}
    )
    assert (status, answer["name"]) == (200, "Left socket")
    status, answer = await request(
        session, api, "PATCH", "/api/devices/nope", "operator", body={"name": "x"}
    )
    assert (status, answer["error"]) == (404, "not_found")
    async with session.patch(
        api.url + path, data=b"[1, 2]", headers=api.headers("operator")
    ) as resp:
        assert resp.status == 400
    assert devices.get(station.id).name == "Bay 1"  # type: ignore[union-attr]
    results = [e["result"] for e in recent_audit(api.hub, 100) if e["action"] == "device.update"]
    assert results.count("ok") == 1
    assert "error: not found" in results
    assert "error: unknown fields: colour" in results
