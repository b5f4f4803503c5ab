"""Simulated charge points against a small OCPP central system, over real websockets.

The central system here is the ocpp package's server side behind an aiohttp websocket
server; what the tests assert is what arrives on its sockets.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import itertools
import json
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from integrations.ocpp.simulator import (
    ConnectionClosedError,
    SimulatedChargePoint,
    WebSocketAdapter,
    run_simulation,
)

ROOT = Path(__file__).resolve().parents[3]
SPEED = 50.0
WAIT = 10.0
CP_ID = "CP-1"
VERSIONS = ["1.6", "2.0.1"]
MEASURANDS = {
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "SoC",
}


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Message:
    """A call a charge point sent to the central system."""

    cp_id: str
    action: str
    payload: dict[str, Any]


class CentralSystem:
    """A minimal OCPP 1.6 / 2.0.1 central system serving ws://127.0.0.1:<port>/ocpp/<id>."""

    def __init__(
        self,
        *,
        boot: Sequence[str] = ("Accepted",),
        interval: int = 10,
        passwords: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.boot = list(boot)
        self.ssl_context = ssl_context
        self.interval = interval
        self.passwords = passwords
        self.messages: list[Message] = []
        self.refused: list[str] = []
        self.connects: list[tuple[str, str | None]] = []
        self.connections: dict[str, ChargePoint16 | ChargePoint201] = {}
        self.url = ""
        self._changed = asyncio.Condition()
        self._transaction_ids = itertools.count(42)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> CentralSystem:
        app = web.Application()
        app.router.add_get("/ocpp/{cp_id}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "ws" if self.ssl_context is None else "wss"
        self.url = f"{scheme}://127.0.0.1:{port}/ocpp"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _authorized(self, request: web.Request, cp_id: str) -> bool:
        if self.passwords is None:
            return True
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return login == cp_id and self.passwords.get(cp_id) == password

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        cp_id = request.match_info["cp_id"]
        if not self._authorized(request, cp_id):
            self.refused.append(cp_id)
            await self._notify()
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="ocpp"'})
        ws = web.WebSocketResponse(protocols=("ocpp1.6", "ocpp2.0.1"))
        await ws.prepare(request)
        server = Server16 if ws.ws_protocol == "ocpp1.6" else Server201
        charge_point = server(cp_id, WebSocketAdapter(ws), self)
        self.connections[cp_id] = charge_point
        self.connects.append((cp_id, ws.ws_protocol))
        await self._notify()
        try:
            await charge_point.start()
        except ConnectionClosedError:
            pass
        finally:
            if self.connections.get(cp_id) is charge_point:
                del self.connections[cp_id]
        return ws

    async def record(self, cp_id: str, action: str, payload: dict[str, Any]) -> None:
        self.messages.append(Message(cp_id, action, payload))
        await self._notify()

    def next_boot_status(self) -> str:
        return self.boot.pop(0) if len(self.boot) > 1 else self.boot[0]

    def next_transaction_id(self) -> int:
        return next(self._transaction_ids)

    def mark(self) -> int:
        """Return a position in the message log to wait for newer messages from."""
        return len(self.messages)

    def find(
        self, action: str, where: Callable[[dict[str, Any]], bool] | None = None, after: int = 0
    ) -> list[Message]:
        return [
            m
            for m in self.messages[after:]
            if m.action == action and (where is None or where(m.payload))
        ]

    async def until(self, predicate: Callable[[], Any]) -> Any:
        """Wait until predicate() is truthy; return its value."""
        async with self._changed:
            return await asyncio.wait_for(self._changed.wait_for(predicate), WAIT)

    async def wait_for(
        self,
        action: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        *,
        after: int = 0,
    ) -> dict[str, Any]:
        """Wait for the first matching call (from position after on); return its payload."""
        found = await self.until(lambda: self.find(action, where, after))
        return dict(found[0].payload)

    async def call(self, payload: Any, cp_id: str = CP_ID) -> Any:
        """Send a call to a connected charge point; return its answer."""
        charge_point = await self.until(lambda: self.connections.get(cp_id))
        return await charge_point.call(payload, suppress=False)


class Server16(ChargePoint16):
    """The central system's side of one OCPP 1.6 connection."""

    def __init__(self, cp_id: str, connection: WebSocketAdapter, cs: CentralSystem) -> None:
        super().__init__(cp_id, connection)
        self.cs = cs

    async def route_message(self, raw_msg: str) -> None:
        message = json.loads(raw_msg)
        if message[0] == 2:
            await self.cs.record(self.id, message[2], message[3])
        await super().route_message(raw_msg)

    @on("BootNotification")
    def on_boot_notification(self, **kwargs: Any) -> Any:
        status = self.cs.next_boot_status()
        interval = 1 if status != "Accepted" else self.cs.interval
        return result16.BootNotification(current_time=now(), interval=interval, status=status)

    @on("Heartbeat")
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return result16.Heartbeat(current_time=now())

    @on("StatusNotification")
    def on_status_notification(self, **kwargs: Any) -> Any:
        return result16.StatusNotification()

    @on("StartTransaction")
    def on_start_transaction(self, **kwargs: Any) -> Any:
        return result16.StartTransaction(
            transaction_id=self.cs.next_transaction_id(), id_tag_info={"status": "Accepted"}
        )

    @on("StopTransaction")
    def on_stop_transaction(self, **kwargs: Any) -> Any:
        return result16.StopTransaction()

    @on("MeterValues")
    def on_meter_values(self, **kwargs: Any) -> Any:
        return result16.MeterValues()

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **kwargs: Any) -> Any:
        return result16.FirmwareStatusNotification()

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status_notification(self, **kwargs: Any) -> Any:
        return result16.DiagnosticsStatusNotification()

    @on("LogStatusNotification")
    def on_log_status_notification(self, **kwargs: Any) -> Any:
        return result16.LogStatusNotification()

    @on("SecurityEventNotification")
    def on_security_event_notification(self, **kwargs: Any) -> Any:
        return result16.SecurityEventNotification()


class Server201(ChargePoint201):
    """The central system's side of one OCPP 2.0.1 connection."""

    def __init__(self, cp_id: str, connection: WebSocketAdapter, cs: CentralSystem) -> None:
        super().__init__(cp_id, connection)
        self.cs = cs

    async def route_message(self, raw_msg: str) -> None:
        message = json.loads(raw_msg)
        if message[0] == 2:
            await self.cs.record(self.id, message[2], message[3])
        await super().route_message(raw_msg)

    @on("BootNotification")
    def on_boot_notification(self, **kwargs: Any) -> Any:
        status = self.cs.next_boot_status()
        interval = 1 if status != "Accepted" else self.cs.interval
        return result201.BootNotification(current_time=now(), interval=interval, status=status)

    @on("Heartbeat")
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return result201.Heartbeat(current_time=now())

    @on("StatusNotification")
    def on_status_notification(self, **kwargs: Any) -> Any:
        return result201.StatusNotification()

    @on("TransactionEvent")
    def on_transaction_event(self, id_token: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if id_token is None:
            return result201.TransactionEvent()
        return result201.TransactionEvent(id_token_info={"status": "Accepted"})

    @on("MeterValues")
    def on_meter_values(self, **kwargs: Any) -> Any:
        return result201.MeterValues()

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **kwargs: Any) -> Any:
        return result201.FirmwareStatusNotification()

    @on("LogStatusNotification")
    def on_log_status_notification(self, **kwargs: Any) -> Any:
        return result201.LogStatusNotification()

    @on("SecurityEventNotification")
    def on_security_event_notification(self, **kwargs: Any) -> Any:
        return result201.SecurityEventNotification()

    @on("NotifyEvent")
    def on_notify_event(self, **kwargs: Any) -> Any:
        return result201.NotifyEvent()


@asynccontextmanager
async def simulator(
    cs: CentralSystem, version: str, **kwargs: Any
) -> AsyncIterator[SimulatedChargePoint]:
    """A started simulated charge point CP-1, booted, stopped afterwards."""
    kwargs.setdefault("speed", SPEED)
    async with SimulatedChargePoint(CP_ID, cs.url, version=version, **kwargs) as cp:
        yield cp


async def booted(cp: SimulatedChargePoint) -> None:
    await asyncio.wait_for(cp.booted.wait(), WAIT)


def connector_of(version: str) -> Callable[[int], Callable[[dict[str, Any]], bool]]:
    """Return a factory of payload filters on a connector (1.6) or an EVSE (2.0.1)."""
    key = "connectorId" if version == "1.6" else "evseId"
    return lambda number: lambda p: p[key] == number


def status_of(version: str, payload: dict[str, Any]) -> str:
    return str(payload["status"] if version == "1.6" else payload["connectorStatus"])


def measurands(meter_value: list[dict[str, Any]]) -> set[str]:
    return {v.get("measurand", "Energy.Active.Import.Register") for v in sample(meter_value)}


def sample(meter_value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [value for item in meter_value for value in item["sampledValue"]]


def power_of(meter_value: list[dict[str, Any]]) -> float:
    (power,) = [v for v in sample(meter_value) if v.get("measurand") == "Power.Active.Import"]
    return float(power["value"])


# -- boot and status ----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_statuses_and_heartbeat(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        boot = await cs.wait_for("BootNotification")
        if version == "1.6":
            assert boot["chargePointVendor"] == "evhub"
            assert boot["chargePointModel"] == "Simulator"
            assert boot["chargePointSerialNumber"] == "SN-CP-1"
            assert boot["firmwareVersion"] == "1.0.0"
            expected = [0, 1, 2]
        else:
            assert boot["reason"] == "PowerUp"
            assert boot["chargingStation"] == {
                "model": "Simulator",
                "vendorName": "evhub",
                "serialNumber": "SN-CP-1",
                "firmwareVersion": "1.0.0",
            }
            expected = [1, 2]
        on_connector = connector_of(version)
        for number in expected:
            status = await cs.wait_for("StatusNotification", on_connector(number))
            assert status_of(version, status) == "Available"
        await cs.wait_for("Heartbeat")
        await booted(cp)
        assert cs.connects == [(CP_ID, f"ocpp{version}")]
        assert cp.boot_status == "Accepted"
        assert cp.heartbeat_interval == 10
        assert set(cp.status.values()) == {"Available"}
        assert sorted(cp.status) == expected


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("first", ["Pending", "Rejected"])
async def test_boot_retried_until_accepted(version: str, first: str) -> None:
    async with CentralSystem(boot=(first, "Accepted")) as cs, simulator(cs, version) as cp:
        await cs.until(lambda: len(cs.find("BootNotification")) == 2)
        await cs.wait_for("StatusNotification")
        await booted(cp)
        boots = [i for i, m in enumerate(cs.messages) if m.action == "BootNotification"]
        statuses = [i for i, m in enumerate(cs.messages) if m.action == "StatusNotification"]
        # Nothing but BootNotification until the central system accepted it.
        assert min(statuses) > boots[1]
        assert cp.boot_status == "Accepted"
        assert cp.boot_count == 2


# -- the central system's calls -----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_reset_reboots_with_a_new_boot(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        await booted(cp)
        mark = cs.mark()
        if version == "1.6":
            result = await cs.call(call16.Reset(type="Hard"))
        else:
            result = await cs.call(call201.Reset(type="Immediate"))
        assert result.status == "Accepted"
        boot = await cs.wait_for("BootNotification", after=mark)
        if version == "2.0.1":
            assert boot["reason"] == "RemoteReset"
        await cs.wait_for("StatusNotification", after=mark)
        await cs.until(lambda: len(cs.connects) == 2)
        assert cp.boot_count == 2
        assert cp.received_calls[0][0] == "Reset"


@pytest.mark.parametrize("version", VERSIONS)
async def test_change_availability(version: str) -> None:
    on_connector = connector_of(version)
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        await booted(cp)
        mark = cs.mark()
        if version == "1.6":
            result = await cs.call(call16.ChangeAvailability(connector_id=1, type="Inoperative"))
        else:
            result = await cs.call(
                call201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
            )
        assert result.status == "Accepted"
        status = await cs.wait_for("StatusNotification", on_connector(1), after=mark)
        assert status_of(version, status) == "Unavailable"
        assert cp.status[1] == "Unavailable"
        assert cp.status[2] == "Available"

        mark = cs.mark()
        if version == "1.6":
            result = await cs.call(call16.ChangeAvailability(connector_id=1, type="Operative"))
        else:
            result = await cs.call(
                call201.ChangeAvailability(operational_status="Operative", evse={"id": 1})
            )
        assert result.status == "Accepted"
        status = await cs.wait_for("StatusNotification", on_connector(1), after=mark)
        assert status_of(version, status) == "Available"
        assert cp.status[1] == "Available"


async def test_remote_start_and_stop_16() -> None:
    async with CentralSystem() as cs, simulator(cs, "1.6") as cp:
        await booted(cp)
        result = await cs.call(call16.RemoteStartTransaction(id_tag="TAG-1", connector_id=1))
        assert result.status == "Accepted"
        start = await cs.wait_for("StartTransaction")
        assert start["idTag"] == "TAG-1"
        assert start["connectorId"] == 1
        await cs.wait_for("StatusNotification", lambda p: p["status"] == "Charging")
        meter = await cs.wait_for("MeterValues", lambda p: p.get("transactionId") == 42)
        assert measurands(meter["meterValue"]) == MEASURANDS
        phases = {v.get("phase") for v in sample(meter["meterValue"])}
        assert {"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"} <= phases
        assert cp.transaction_ids == [42]
        assert cp.status[1] == "Charging"

        mark = cs.mark()
        result = await cs.call(call16.RemoteStopTransaction(transaction_id=42))
        assert result.status == "Accepted"
        stop = await cs.wait_for("StopTransaction", after=mark)
        assert stop["transactionId"] == 42
        assert stop["reason"] == "Remote"
        assert stop["meterStop"] > start["meterStart"]
        finishing = await cs.wait_for("StatusNotification", after=mark)
        assert finishing["status"] == "Finishing"
        await cs.wait_for("StatusNotification", lambda p: p["status"] == "Available", after=mark)
        assert cp.status[1] == "Available"

        result = await cs.call(call16.RemoteStopTransaction(transaction_id=42))
        assert result.status == "Rejected"


async def test_remote_start_and_stop_201() -> None:
    async with CentralSystem() as cs, simulator(cs, "2.0.1") as cp:
        await booted(cp)
        mark = cs.mark()
        result = await cs.call(
            call201.RequestStartTransaction(
                id_token={"idToken": "TAG-1", "type": "ISO14443"}, remote_start_id=7, evse_id=1
            )
        )
        assert result.status == "Accepted"

        def event(kind: str) -> Callable[[dict[str, Any]], bool]:
            return lambda p: p["eventType"] == kind

        started = await cs.wait_for("TransactionEvent", event("Started"))
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 7
        assert started["transactionInfo"]["chargingState"] == "Charging"
        assert started["idToken"] == {"idToken": "TAG-1", "type": "ISO14443"}
        assert started["evse"] == {"id": 1, "connectorId": 1}
        transaction_id = started["transactionInfo"]["transactionId"]
        occupied = await cs.wait_for("StatusNotification", lambda p: p["evseId"] == 1, after=mark)
        assert occupied["connectorStatus"] == "Occupied"
        updated = await cs.wait_for("TransactionEvent", event("Updated"))
        assert updated["triggerReason"] == "MeterValuePeriodic"
        assert measurands(updated["meterValue"]) == MEASURANDS
        assert cp.transaction_ids == [transaction_id]

        mark = cs.mark()
        result = await cs.call(call201.RequestStopTransaction(transaction_id=transaction_id))
        assert result.status == "Accepted"
        ended = await cs.wait_for("TransactionEvent", event("Ended"), after=mark)
        assert ended["transactionInfo"]["transactionId"] == transaction_id
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        assert ended["triggerReason"] == "RemoteStop"
        seq = [m.payload["seqNo"] for m in cs.find("TransactionEvent")]
        assert seq == list(range(len(seq)))
        status = await cs.wait_for("StatusNotification", lambda p: p["evseId"] == 1, after=mark)
        assert status["connectorStatus"] == "Available"
        assert cp.status[1] == "Available"


@pytest.mark.parametrize("version", VERSIONS)
async def test_trigger_message(version: str) -> None:
    on_connector = connector_of(version)
    async with CentralSystem(interval=3600) as cs, simulator(cs, version) as cp:
        await booted(cp)
        mark = cs.mark()
        if version == "1.6":
            result = await cs.call(
                call16.TriggerMessage(requested_message="StatusNotification", connector_id=2)
            )
        else:
            result = await cs.call(
                call201.TriggerMessage(
                    requested_message="StatusNotification", evse={"id": 2, "connectorId": 1}
                )
            )
        assert result.status == "Accepted"
        await cs.wait_for("StatusNotification", on_connector(2), after=mark)

        mark = cs.mark()
        trigger = call16.TriggerMessage if version == "1.6" else call201.TriggerMessage
        result = await cs.call(trigger(requested_message="Heartbeat"))
        assert result.status == "Accepted"
        await cs.wait_for("Heartbeat", after=mark)

        mark = cs.mark()
        result = await cs.call(trigger(requested_message="MeterValues"))
        assert result.status == "Accepted"
        meter = await cs.wait_for("MeterValues", on_connector(1), after=mark)
        assert "Energy.Active.Import.Register" in measurands(meter["meterValue"])
        await cs.wait_for("MeterValues", on_connector(2), after=mark)

        mark = cs.mark()
        result = await cs.call(trigger(requested_message="BootNotification"))
        if version == "1.6":
            assert result.status == "Accepted"
            await cs.wait_for("BootNotification", after=mark)
        else:
            # 2.0.1 F06.FR.17: rejected once the boot was accepted.
            assert result.status == "Rejected"


@pytest.mark.parametrize("version", VERSIONS)
async def test_update_firmware(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        await booted(cp)
        location = "https://firmware.example/evhub-1.0.1.bin"
        if version == "1.6":
            await cs.call(call16.UpdateFirmware(location=location, retrieve_date=now()))
        else:
            result = await cs.call(
                call201.UpdateFirmware(
                    request_id=5,
                    firmware={"location": location, "retrieveDateTime": now()},
                )
            )
            assert result.status == "Accepted"
        await cs.wait_for("FirmwareStatusNotification", lambda p: p["status"] == "Installed")
        notifications = [m.payload for m in cs.find("FirmwareStatusNotification")]
        assert [p["status"] for p in notifications] == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        if version == "2.0.1":
            assert {p["requestId"] for p in notifications} == {5}
        # The new firmware runs after a reboot.
        boot = (await cs.until(lambda: cs.find("BootNotification")[1:]))[0].payload
        if version == "1.6":
            assert boot["firmwareVersion"] == "1.0.1"
        else:
            assert boot["chargingStation"]["firmwareVersion"] == "1.0.1"
            assert boot["reason"] == "FirmwareUpdate"
        assert cp.firmware_version == "1.0.1"


@pytest.mark.parametrize("version", VERSIONS)
async def test_configuration(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        await booted(cp)
        if version == "1.6":
            result = await cs.call(call16.GetConfiguration(key=["HeartbeatInterval", "Nope"]))
            assert result.configuration_key == [
                {"key": "HeartbeatInterval", "readonly": False, "value": "10"}
            ]
            assert result.unknown_key == ["Nope"]
            change = call16.ChangeConfiguration
            assert (await cs.call(change(key="HeartbeatInterval", value="7"))).status == "Accepted"
            assert (await cs.call(change(key="NumberOfConnectors", value="3"))).status == (
                "Rejected"
            )
            assert (await cs.call(change(key="Nope", value="1"))).status == "NotSupported"
        else:
            heartbeat = {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
            result = await cs.call(
                call201.GetVariables(
                    get_variable_data=[
                        heartbeat,
                        {"component": {"name": "Nope"}, "variable": {"name": "X"}},
                    ]
                )
            )
            known, unknown = result.get_variable_result
            assert known["attribute_status"] == "Accepted"
            assert known["attribute_value"] == "10"
            assert unknown["attribute_status"] == "UnknownComponent"
            result = await cs.call(
                call201.SetVariables(set_variable_data=[{**heartbeat, "attributeValue": "7"}])
            )
            assert result.set_variable_result[0]["attribute_status"] == "Accepted"
        assert cp.heartbeat_interval == 7


@pytest.mark.parametrize("version", VERSIONS)
async def test_charging_profile_limits_power(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        await booted(cp)
        if version == "1.6":
            await cs.call(call16.RemoteStartTransaction(id_tag="TAG-1", connector_id=1))
            await cs.wait_for("StatusNotification", lambda p: p["status"] == "Charging")
            result = await cs.call(
                call16.SetChargingProfile(
                    connector_id=1,
                    cs_charging_profiles={
                        "chargingProfileId": 1,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": {
                            "chargingRateUnit": "A",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}],
                        },
                    },
                )
            )
            limit = 10 * 230 * 3
        else:
            await cs.call(
                call201.RequestStartTransaction(
                    id_token={"idToken": "TAG-1", "type": "ISO14443"}, remote_start_id=1
                )
            )
            await cs.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
            result = await cs.call(
                call201.SetChargingProfile(
                    evse_id=1,
                    charging_profile={
                        "id": 1,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": [
                            {
                                "id": 1,
                                "chargingRateUnit": "W",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3000}],
                            }
                        ],
                    },
                )
            )
            limit = 3000
        assert result.status == "Accepted"
        mark = cs.mark()
        action = "MeterValues" if version == "1.6" else "TransactionEvent"
        meter = await cs.wait_for(action, lambda p: "meterValue" in p, after=mark)
        assert 0 < power_of(meter["meterValue"]) <= limit
        assert 0 < cp.power_w[1] <= limit


@pytest.mark.parametrize("version", VERSIONS)
async def test_diagnostics_upload(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        await booted(cp)
        log = {"remoteLocation": "https://logs.example/upload"}
        if version == "1.6":
            result = await cs.call(call16.GetDiagnostics(location=log["remoteLocation"]))
            assert result.file_name.startswith("diagnostics-CP-1-")
            action = "DiagnosticsStatusNotification"
        else:
            result = await cs.call(call201.GetLog(log=log, log_type="DiagnosticsLog", request_id=3))
            assert result.status == "Accepted"
            action = "LogStatusNotification"
        await cs.wait_for(action, lambda p: p["status"] == "Uploaded")
        assert [m.payload["status"] for m in cs.find(action)] == ["Uploading", "Uploaded"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_unlock_clear_cache_data_transfer_clear_profile(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version) as cp:
        await booted(cp)
        if version == "1.6":
            result = await cs.call(call16.UnlockConnector(connector_id=1))
            assert result.status == "Unlocked"
            result = await cs.call(call16.UnlockConnector(connector_id=9))
            assert result.status == "NotSupported"
            result = await cs.call(call16.ClearCache())
            assert result.status == "Accepted"
            result = await cs.call(call16.DataTransfer(vendor_id="evhub", data="ping"))
            assert (result.status, result.data) == ("Accepted", "ping")
            result = await cs.call(call16.ClearChargingProfile(id=99))
            assert result.status == "Unknown"
        else:
            result = await cs.call(call201.UnlockConnector(evse_id=1, connector_id=1))
            assert result.status == "Unlocked"
            result = await cs.call(call201.UnlockConnector(evse_id=9, connector_id=1))
            assert result.status == "UnknownConnector"
            result = await cs.call(call201.ClearCache())
            assert result.status == "Accepted"
            result = await cs.call(call201.DataTransfer(vendor_id="evhub", data={"n": 1}))
            assert (result.status, result.data) == ("Accepted", {"n": 1})
            result = await cs.call(call201.ClearChargingProfile(charging_profile_id=99))
            assert result.status == "Unknown"
        assert [action for action, _ in cp.received_calls] == [
            "UnlockConnector",
            "UnlockConnector",
            "ClearCache",
            "DataTransfer",
            "ClearChargingProfile",
        ]


# -- scenarios ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_fault_scenario(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version, scenario="fault"):
        if version == "1.6":
            fault = await cs.wait_for("StatusNotification", lambda p: p["status"] == "Faulted")
            assert fault["errorCode"] == "GroundFailure"
            number = fault["connectorId"]
            key = "connectorId"
        else:
            fault = await cs.wait_for(
                "StatusNotification", lambda p: p["connectorStatus"] == "Faulted"
            )
            number = fault["evseId"]
            key = "evseId"
            event = await cs.wait_for("NotifyEvent")
            (data,) = event["eventData"]
            assert data["techCode"] == "GroundFailure"
            assert data["component"]["evse"]["id"] == number
        index = next(i for i, m in enumerate(cs.messages) if m.payload == fault)
        recovered = await cs.wait_for(
            "StatusNotification",
            lambda p: p[key] == number and status_of(version, p) == "Available",
            after=index + 1,
        )
        assert recovered


@pytest.mark.parametrize("version", VERSIONS)
async def test_tamper_scenario(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version, scenario="tamper"):
        event = await cs.wait_for("SecurityEventNotification")
        assert event["type"] == "TamperDetectionActivated"
        assert "timestamp" in event


async def test_scenarios_combine() -> None:
    async with CentralSystem() as cs, simulator(cs, "1.6", scenario="normal,fault", speed=200):
        await cs.wait_for("StartTransaction")
        fault = await cs.wait_for("StatusNotification", lambda p: p["status"] == "Faulted")
        assert fault["errorCode"] == "GroundFailure"


@pytest.mark.parametrize("version", VERSIONS)
async def test_wrong_password_is_refused_and_retried(version: str) -> None:
    passwords = {CP_ID: "correct-horse-battery"}
    async with (
        CentralSystem(passwords=passwords) as cs,
        simulator(cs, version, password=passwords[CP_ID], scenario="wrong-password") as cp,
    ):
        await cs.until(lambda: len(cs.refused) >= 3)
        assert cs.connects == []
        assert cp.connect_attempts >= 3
        assert not cp.connected.is_set()


@pytest.mark.parametrize("version", VERSIONS)
async def test_right_password_is_let_in(version: str) -> None:
    passwords = {CP_ID: "correct-horse-battery"}
    async with (
        CentralSystem(passwords=passwords) as cs,
        simulator(cs, version, password=passwords[CP_ID]) as cp,
    ):
        await booted(cp)
        assert cs.refused == []


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


async def test_basic_auth_over_tls(tmp_path: Path) -> None:
    server, client = tls_contexts(tmp_path)
    passwords = {CP_ID: "correct-horse-battery"}
    async with (
        CentralSystem(passwords=passwords, ssl_context=server) as cs,
        simulator(cs, "2.0.1", password=passwords[CP_ID], ssl=client) as cp,
    ):
        assert cs.url.startswith("wss://")
        await booted(cp)
        assert cs.refused == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_offline_scenario_reconnects_without_reboot(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version, scenario="offline", speed=500) as cp:
        await cs.until(lambda: len(cs.connects) >= 2)
        await cs.until(lambda: len(cs.find("StatusNotification")) >= 2 * len(cp.status))
        assert len(cs.find("BootNotification")) == 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_reboot_scenario(version: str) -> None:
    async with CentralSystem() as cs, simulator(cs, version, scenario="reboot", speed=500):
        boots = await cs.until(lambda: cs.find("BootNotification")[1:])
        if version == "2.0.1":
            assert boots[0].payload["reason"] == "Watchdog"
        assert len(cs.connects) >= 2


@pytest.mark.parametrize("version", VERSIONS)
async def test_run_simulation_normal_scenario(version: str) -> None:
    async with CentralSystem() as cs:
        task = asyncio.create_task(run_simulation(cs.url, 3, version, "normal", speed=100))
        try:
            if version == "1.6":
                await cs.wait_for("StopTransaction")
                await cs.wait_for("MeterValues")
            else:
                await cs.wait_for("TransactionEvent", lambda p: p["eventType"] == "Ended")
            await cs.until(lambda: len({m.cp_id for m in cs.find("BootNotification")}) == 3)
        finally:
            task.cancel()
            await asyncio.wait({task})
        assert task.cancelled()
        assert {m.cp_id for m in cs.find("BootNotification")} == {
            "SIM-0001",
            "SIM-0002",
            "SIM-0003",
        }


async def test_run_simulation_for_a_duration() -> None:
    async with CentralSystem() as cs:
        charge_points = await run_simulation(
            cs.url, 2, "2.0.1", "idle", duration=0.5, id_prefix="DUR-", speed=SPEED
        )
        assert [cp.id for cp in charge_points] == ["DUR-0001", "DUR-0002"]
        assert not any(cp.connected.is_set() for cp in charge_points)


async def test_rejects_unknown_scenario_and_version() -> None:
    with pytest.raises(ValueError, match="scenario"):
        SimulatedChargePoint(CP_ID, "ws://127.0.0.1:1/ocpp", scenario="party")
    with pytest.raises(ValueError, match="version"):
        SimulatedChargePoint(CP_ID, "ws://127.0.0.1:1/ocpp", version="1.5")
    with pytest.raises(ValueError, match="scenario"):
        await run_simulation("ws://127.0.0.1:1/ocpp", 1, "1.6", "normal,party")


# -- the command line -----------------------------------------------------------------------


async def test_cli_simulate_until_sigint() -> None:
    async with CentralSystem() as cs:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub.cli",
            "simulate",
            "--url",
            cs.url,
            "--count",
            "2",
            "--version",
            "2.0.1",
            "--scenario",
            "idle",
            "--speed",
            "10",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await cs.until(lambda: len(cs.find("StatusNotification")) == 4)
            process.send_signal(signal.SIGINT)
            _stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        log = stderr.decode()
        assert process.returncode == 0, log
        assert "SIM-0001: connected" in log
        assert "SIM-0002: boot accepted" in log
        assert "Traceback" not in log
        await cs.until(lambda: not cs.connections)
