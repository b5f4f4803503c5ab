"""Hostile and absurd input over real websockets: refused whole, recorded, never applied."""

from __future__ import annotations

import asyncio
import gc
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from hub.core import Hub
from hub.registry import device_registry
from hub.security import security_log
from integrations.ocpp import DATA_SYSTEM
from tests.integrations.ocpp.conftest import (
    ChargerCallError,
    Connect,
    HubFactory,
    RawChargePoint,
    wait_state,
    ws_url,
)

OPEN = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
heartbeat_interval: 30
call_timeout: 2
authorize_unknown_id_tags: true
chargers:
  - id: CP-1
    name: Bay 1
"""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_iso(**delta: float) -> str:
    return iso(datetime.now(UTC) + timedelta(**delta))


def events_of(hub: Hub, kind: str) -> list[Any]:
    return [event for event in security_log(hub).events if event.kind == kind]


async def refused(cp: RawChargePoint, action: str, payload: dict[str, Any]) -> ChargerCallError:
    with pytest.raises(ChargerCallError) as caught:
        await cp.call(action, payload)
    return caught.value


async def booted(hub: Hub, connect: Connect, cp_id: str = "CP-1", version: str = "ocpp1.6") -> Any:
    cp = await connect(ws_url(hub, cp_id), protocol=version)
    if version == "ocpp1.6":
        await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    else:
        await cp.call(
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M"}},
        )
    return cp


def ports_of(hub: Hub) -> list[int]:
    return sorted(hub.data[DATA_SYSTEM].stations["CP-1"].ports)


@pytest.mark.parametrize("connector", [2**63, 2**32, 2**31, -1])
async def test_absurd_connector_ids_are_refused_and_recorded(
    ocpp_hub: HubFactory, connect: Connect, connector: int
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await booted(hub, connect)
    error = await refused(
        cp,
        "StatusNotification",
        {"connectorId": connector, "errorCode": "NoError", "status": "Available"},
    )
    assert error.code == "PropertyConstraintViolation"
    assert "connectorId" in error.description
    assert ports_of(hub) == []
    [event] = events_of(hub, "ocpp_value_out_of_range")
    assert event.charge_point_id == "CP-1"
    assert event.data["field"] == "connectorId"
    # The connection carries on.
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    assert ports_of(hub) == [1]


async def test_ports_per_station_are_capped(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN + "max_ports: 4\n")
    cp = await booted(hub, connect)
    codes: list[str | None] = []
    for number in range(1, 40):
        try:
            await cp.call(
                "StatusNotification",
                {"connectorId": number, "errorCode": "NoError", "status": "Available"},
            )
            codes.append(None)
        except ChargerCallError as err:
            codes.append(err.code)
    assert codes[:4] == [None] * 4
    assert set(codes[4:]) == {"PropertyConstraintViolation"}
    assert ports_of(hub) == [1, 2, 3, 4]
    ports = [d for d in device_registry(hub).devices() if d.connector_id is not None]
    assert len(ports) == 4
    # Many offences, one security event per interval: the log is not flooded.
    assert len(events_of(hub, "ocpp_value_out_of_range")) == 1


async def test_huge_unit_multiplier_is_refused_at_once(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await booted(hub, connect, version="ocpp2.0.1")
    for multiplier in (10_000_000, 20_000_000, 10**9, -(10**9)):
        error = await refused(
            cp,
            "MeterValues",
            {
                "evseId": 1,
                "meterValue": [
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [
                            {
                                "value": 1.0,
                                "unitOfMeasure": {"unit": "Wh", "multiplier": multiplier},
                            }
                        ],
                    }
                ],
            },
        )
        assert error.code == "PropertyConstraintViolation"
        assert "multiplier" in error.description
    # A real multiplier (kWh as 3) still works.
    await cp.call(
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {"value": 12.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}
                    ],
                }
            ],
        },
    )
    assert hub.states.get("sensor.bay_1_1_energy").state == "12500.0"


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e309", "Infinity", "2e12", "-5", "abc"])
async def test_impossible_energy_readings_are_refused(
    ocpp_hub: HubFactory, connect: Connect, value: str
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await booted(hub, connect)
    await cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": now_iso(), "sampledValue": [{"value": "1500"}]}],
        },
    )
    error = await refused(
        cp,
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"},
                        {"value": value},
                    ],
                }
            ],
        },
    )
    assert error.code == "PropertyConstraintViolation"
    # Nothing of the refused message was applied, not even its good power sample.
    assert hub.states.get("sensor.bay_1_1_energy").state == "1500.0"
    assert hub.states.get("sensor.bay_1_1_power") is None


async def test_power_beyond_any_charger_is_refused(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await booted(hub, connect, version="ocpp2.0.1")
    error = await refused(
        cp,
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {
                            "value": 1e300,
                            "measurand": "Power.Active.Import",
                            "unitOfMeasure": {"unit": "W"},
                        }
                    ],
                }
            ],
        },
    )
    assert error.code == "PropertyConstraintViolation"
    assert "Power.Active.Import" in error.description


@pytest.mark.parametrize(
    "timestamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]
)
async def test_timestamps_far_from_the_hub_clock_are_refused(
    ocpp_hub: HubFactory, connect: Connect, timestamp: str
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await booted(hub, connect)
    error = await refused(
        cp,
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": timestamp},
    )
    assert error.code == "PropertyConstraintViolation"
    assert "window" in error.description
    system = hub.data[DATA_SYSTEM]
    assert await system.transactions.transactions("CP-1") == []
    assert events_of(hub, "ocpp_value_out_of_range")


async def test_a_charger_clock_a_few_hours_off_is_accepted(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await booted(hub, connect)
    answer = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": now_iso(hours=3)},
    )
    assert answer["idTagInfo"]["status"] == "Accepted"


async def test_201_session_without_a_start_reading_counts_from_its_first(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await booted(hub, connect, version="ocpp2.0.1")
    base = {"transactionInfo": {"transactionId": "T-1"}, "evse": {"id": 1, "connectorId": 1}}
    await cp.call(
        "TransactionEvent",
        {
            **base,
            "eventType": "Started",
            "timestamp": now_iso(minutes=-10),
            "triggerReason": "Authorized",
            "seqNo": 0,
            "idToken": {"idToken": "TAG", "type": "ISO14443"},
        },
    )

    def energy(wh: float) -> list[dict[str, Any]]:
        return [
            {
                "timestamp": now_iso(),
                "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register"}],
            }
        ]

    await cp.call("MeterValues", {"evseId": 1, "meterValue": energy(1000)})
    await cp.call(
        "TransactionEvent",
        {
            **base,
            "eventType": "Updated",
            "timestamp": now_iso(),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 1,
            "meterValue": energy(1600),
        },
    )
    assert hub.states.get("sensor.bay_1_1_session_energy").state == "600.0"
    await cp.call("MeterValues", {"evseId": 1, "meterValue": energy(1750)})
    assert hub.states.get("sensor.bay_1_1_session_energy").state == "750.0"


# Charge point identity at the handshake


async def _handshake(hub: Hub, raw_tail: str, protocol: str = "ocpp1.6") -> int:
    """Open a websocket to a raw (undecoded) path; return the HTTP status of the answer."""
    listener = hub.data[DATA_SYSTEM].listeners[0]
    url = f"http://127.0.0.1:{listener.port}{listener.path}/{raw_tail}"
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                aiohttp.client.URL(url, encoded=True), protocols=(protocol,)
            )
        except aiohttp.WSServerHandshakeError as err:
            return err.status
        await ws.close()
        return 101


@pytest.mark.parametrize(
    "tail",
    [
        "CP16-POS%2F..%2FCP-1",
        "..%2F..%2Fetc%2Fpasswd",
        "CP%00-1",
        "CP%201",
        "CP%3A1",
        "CP%E2%80%AE1",
        "%2E%2E",
        "A" * 49,
        "CP%FF1",
    ],
)
async def test_invalid_identities_are_refused_at_the_handshake(
    ocpp_hub: HubFactory, tail: str
) -> None:
    hub = await ocpp_hub(OPEN.replace("chargers:", "unknown_chargers: pending\nchargers:"))
    assert await _handshake(hub, tail) == 400
    system = hub.data[DATA_SYSTEM]
    assert set(system.stations) == {"CP-1"}
    assert system.pending() == []
    [event] = events_of(hub, "ocpp_bad_identity")
    assert event.remote == "127.0.0.1"
    # The id is shown escaped: no control or bidirectional characters reach logs or pages.
    assert event.data["id"].isascii()
    assert "\x00" not in event.message
    assert "\u202e" not in event.message


async def test_an_encoded_slash_is_never_a_path(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(
        OPEN.replace("security_profile: 0", "security_profile: 0\n    path: /ocpp")
    )
    # Two raw segments do not reach the id at all.
    assert await _handshake(hub, "CP-X/CP-1") == 400
    assert hub.data[DATA_SYSTEM].stations["CP-1"].connection is None


async def test_a_valid_identity_with_every_allowed_character_connects(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    cp_id = "aZ09*-_=+|@.x"
    hub = await ocpp_hub(OPEN + f"  - id: '{cp_id}'\n")
    await connect(ws_url(hub, cp_id))
    assert hub.data[DATA_SYSTEM].stations[cp_id].online


# Security profile downgrades

TWO_LISTENERS = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
  - port: 0
    host: 127.0.0.1
    security_profile: 1
chargers:
  - id: CP-1
    password: correct-horse-battery-1
  - id: CP-OLD
    password: correct-horse-battery-2
    security_profile: 0
"""


async def test_a_charger_is_refused_below_its_minimum_profile(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(TWO_LISTENERS)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await connect(ws_url(hub, "CP-1", index=0))
    assert caught.value.status == 403
    [event] = events_of(hub, "ocpp_security_profile_downgrade")
    assert event.severity == "critical"
    assert event.data == {"profile": 0, "required": 1}
    # Over the profile it needs, it connects; one configured for profile 0 may use 0.
    await connect(ws_url(hub, "CP-1", index=1), password="correct-horse-battery-1")
    await connect(ws_url(hub, "CP-OLD", index=0))


async def test_the_highest_profile_seen_is_never_given_up(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Any
) -> None:
    hub = await ocpp_hub(TWO_LISTENERS)
    cp = await connect(ws_url(hub, "CP-1", index=1), password="correct-horse-battery-1")
    await cp.close()
    await hub.stop()
    # The profile 1 listener is gone from the config: CP-1 must not fall back to profile 0.
    only_open = TWO_LISTENERS.replace(
        "  - port: 0\n    host: 127.0.0.1\n    security_profile: 1\n", ""
    )
    hub = await ocpp_hub(only_open, config_dir=tmp_path)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await connect(ws_url(hub, "CP-1"))
    assert caught.value.status == 403


# A second connection with the id of an online charger


async def test_a_second_socket_for_a_live_charger_is_refused(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    real = await booted(hub, connect)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await connect(ws_url(hub, "CP-1"))
    assert caught.value.status == 409
    [event] = events_of(hub, "ocpp_duplicate_connection")
    assert event.severity == "critical"
    assert event.data["old_alive"] is True
    # The real station is still the one connected and still heard.
    assert await real.call("Heartbeat", {})
    assert hub.data[DATA_SYSTEM].stations["CP-1"].connection is not None


async def test_a_second_socket_replaces_a_dead_one(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN)
    system = hub.data[DATA_SYSTEM]
    system.probe_timeout = 0.5
    # A socket that is open but never reads: it answers no ping (a charger gone silently).
    session = aiohttp.ClientSession()
    try:
        listener = system.listeners[0]
        dead = await session.ws_connect(
            f"ws://127.0.0.1:{listener.port}/ocpp/CP-1", protocols=("ocpp1.6",), autoping=False
        )
        await wait_state(hub, "sensor.bay_1_connectivity", "online")
        fresh = await booted(hub, connect)
        assert await fresh.call("Heartbeat", {})
        [event] = events_of(hub, "ocpp_duplicate_connection")
        assert event.data["old_alive"] is False
        await dead.close()
    finally:
        await session.close()


async def test_refuse_both_closes_both(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(OPEN + "duplicate_connection: refuse_both\n")
    real = await booted(hub, connect)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await connect(ws_url(hub, "CP-1"))
    await asyncio.wait_for(real._reader, 5)
    assert real.ws.closed
    await wait_state(hub, "sensor.bay_1_connectivity", "offline")


# Slow handshakes


async def test_slow_handshakes_are_closed(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(OPEN + "handshake_timeout: 1\n")
    listener = hub.data[DATA_SYSTEM].listeners[0]
    sockets = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await writer.drain()
        sockets.append((reader, writer))
    started = time.monotonic()
    for reader, writer in sockets:
        # The server closes each, without the request ever being completed.
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    assert time.monotonic() - started < 10


# Pending chargers: bounded, persisted, rejectable, expiring

PENDING = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
unknown_chargers: pending
max_pending: 3
"""


async def test_pending_chargers_are_capped(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(PENDING)
    waiting = [await connect(ws_url(hub, f"NEW-{index}")) for index in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await connect(ws_url(hub, "NEW-3"))
    assert caught.value.status == 503
    assert hub.data[DATA_SYSTEM].pending() == ["NEW-0", "NEW-1", "NEW-2"]
    assert events_of(hub, "ocpp_pending_list_full")
    # One already waiting may come back.
    await waiting[1].close()
    await wait_state(hub, "sensor.new_1_connectivity", "pending")
    await connect(ws_url(hub, "NEW-1"))


async def test_pending_list_survives_a_restart_and_rejected_ones_leave(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Any
) -> None:
    hub = await ocpp_hub(PENDING)
    cp = await connect(ws_url(hub, "NEW-0"))
    await cp.call(
        "BootNotification",
        {"chargePointVendor": "Acme", "chargePointModel": "X1", "chargePointSerialNumber": "S1"},
    )
    await connect(ws_url(hub, "NEW-1"))
    await hub.stop()

    hub = await ocpp_hub(PENDING, config_dir=tmp_path)
    system = hub.data[DATA_SYSTEM]
    assert system.pending() == ["NEW-0", "NEW-1"]
    assert system.pending_info["NEW-0"]["model"] == "X1"
    stations = {d.name for d in device_registry(hub).devices() if d.kind == "station"}
    assert stations == {"NEW-0", "NEW-1"}
    await hub.services.call("ocpp", "reject_charger", {"charge_point_id": "NEW-1"})
    assert system.pending() == ["NEW-0"]
    stations = {d.name for d in device_registry(hub).devices() if d.kind == "station"}
    assert stations == {"NEW-0"}
    assert not [s for s in hub.states.all() if s.entity_id.startswith("sensor.new_1")]


async def test_pending_chargers_expire(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(PENDING + "pending_expiry_hours: 1\n")
    cp = await connect(ws_url(hub, "NEW-0"))
    await cp.close()
    system = hub.data[DATA_SYSTEM]
    await wait_state(hub, "sensor.new_0_connectivity", "pending")
    await system._expire_pending(time.time() + 1800)
    assert system.pending() == ["NEW-0"]
    await system._expire_pending(time.time() + 7200)
    assert system.pending() == []
    assert "NEW-0" not in system.pending_info
    assert not [d for d in device_registry(hub).devices() if d.name == "NEW-0"]


# After a restart


async def test_accepted_unknown_chargers_are_known_after_a_restart(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Any
) -> None:
    config = OPEN.replace("chargers:", "unknown_chargers: accept\nchargers:")
    hub = await ocpp_hub(config)
    stranger = await booted(hub, connect, "STRANGER")
    await wait_state(hub, "sensor.stranger_connectivity", "online")
    await stranger.close()
    await hub.stop()
    hub = await ocpp_hub(config, config_dir=tmp_path)
    assert "STRANGER" in hub.data[DATA_SYSTEM].stations
    assert hub.states.get("sensor.stranger_connectivity").state == "offline"


async def test_a_restored_online_station_is_offline_until_it_connects(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Any
) -> None:
    hub = await ocpp_hub(OPEN)
    await booted(hub, connect)
    await wait_state(hub, "sensor.bay_1_connectivity", "online")
    # A stop with the socket still open keeps "online" in the restored states.
    await hub.stop()
    hub = await ocpp_hub(OPEN, config_dir=tmp_path)
    assert hub.states.get("sensor.bay_1_connectivity").state == "offline"
    cp = await connect(ws_url(hub, "CP-1"))
    await wait_state(hub, "sensor.bay_1_connectivity", "online")
    await cp.close()


# Memory: what a peer makes the hub hold must not stay after it leaves

MANY = OPEN + "".join(f"  - id: CP-M{index}\n" for index in range(30))


async def test_connections_that_come_and_go_freeze_nothing(
    ocpp_hub: HubFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub import util
    from integrations.ocpp import system as system_module

    # As `evhub run` tunes the collector; a burst of 20 settled for 0.2 s freezes.
    monkeypatch.setitem(util._GC_STATE, "tuned", True)
    monkeypatch.setattr(system_module, "BURST_CONNECTS", 20)
    monkeypatch.setattr(system_module, "BURST_SETTLED", 0.2)
    hub = await ocpp_hub(MANY)
    before = gc.get_freeze_count()
    try:
        # A peer connecting and dropping again and again leaves nothing long-lived: a freeze
        # now would keep its garbage cycles forever.
        for index in range(60):
            cp = await connect(ws_url(hub, f"CP-M{index % 30}"))
            await cp.close()
        await asyncio.sleep(1.5)
        assert gc.get_freeze_count() == before
        # Chargers that stay are a burst of long-lived objects: frozen, once.
        stay = [await connect(ws_url(hub, f"CP-M{index}")) for index in range(30)]
        for _ in range(50):
            if gc.get_freeze_count() > before:
                break
            await asyncio.sleep(0.1)
        assert gc.get_freeze_count() > before
        assert len(stay) == 30
    finally:
        gc.unfreeze()
