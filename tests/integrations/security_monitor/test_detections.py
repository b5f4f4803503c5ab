"""Each detection rule, triggered by real OCPP traffic over real websockets to a real hub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.core import Event, Hub
from hub.security import security_log
from hub.testing import (
    ApiUser,
    ChargerCallError,
    Connect,
    http_url,
    manual_clock_of,
    open_charge_point,
)
from integrations.alerts import alert_manager
from integrations.ocpp import DATA_SYSTEM
from integrations.security_monitor.const import EVENT_DETECTION
from tests.integrations.ocpp.conftest import HubFactory, wait_state, ws_url
from tests.integrations.ocpp.test_security_profiles import Pki, client_context
from tests.integrations.ocpp.test_security_profiles import pki as pki  # noqa: PLC0414 (fixture)

ROOT = Path(__file__).resolve().parents[3]

OPEN = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
heartbeat_interval: 30
call_timeout: 2
id_tags: [TAG-OK]
chargers:
  - id: CP-1
    name: Bay 1
  - id: CP-2
    name: Bay 2
"""

PASSWORD = "correct-horse-battery-1"
WITH_PASSWORD = f"""
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 1
  - port: 0
    host: 127.0.0.1
    security_profile: 0
chargers:
  - id: CP-1
    password: {PASSWORD}
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Detections:
    """The security_detection events a hub fired, and the alerts they raised."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.events: list[dict[str, Any]] = []
        self.charger_events: list[dict[str, Any]] = []
        hub.bus.listen(EVENT_DETECTION, self._on)
        hub.bus.listen("charger_event", self._on_charger)

    def _on(self, event: Event) -> None:
        self.events.append(dict(event.data))

    def _on_charger(self, event: Event) -> None:
        if event.data.get("detection"):
            self.charger_events.append(dict(event.data))

    def of(self, rule: str) -> list[dict[str, Any]]:
        return [d for d in self.events if d["rule"] == rule]

    async def alert(self, rule: str, subject: str) -> dict[str, Any]:
        await self.hub.block_till_done()
        found = alert_manager(self.hub).active(f"security_monitor:{rule}:{subject}")
        assert found is not None, [a.key for a in alert_manager(self.hub).open()]
        return found.as_dict()


async def start(
    ocpp_hub: HubFactory, section: str = OPEN, extra: str = "", *, manual_clock: bool = False
) -> tuple[Hub, Any]:
    hub = await ocpp_hub(section, extra=extra, manual_clock=manual_clock)
    return hub, Detections(hub)


async def boot(cp: Any, serial: str = "SN-1", firmware: str = "1.0", model: str = "M") -> None:
    await cp.call(
        "BootNotification",
        {
            "chargePointVendor": "ACME",
            "chargePointModel": model,
            "chargePointSerialNumber": serial,
            "firmwareVersion": firmware,
        },
    )


# Identity ---------------------------------------------------------------------------------


async def test_two_sockets_with_one_id(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(ocpp_hub)
    real = await connect(ws_url(hub, "CP-1"))
    await boot(real)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await connect(ws_url(hub, "CP-1"))
    [detection] = seen.of("duplicate_connection")
    assert detection["severity"] == "critical"
    assert detection["charge_point_id"] == "CP-1"
    assert detection["remote"] == "127.0.0.1"
    alert = await seen.alert("duplicate_connection", "CP-1")
    assert alert["severity"] == "critical"
    assert alert["station_id"] == detection["station_id"]
    # The charger trigger sees it as a security_event of the station.
    [event] = [e for e in seen.charger_events if e["rule"] == "duplicate_connection"]
    assert event["type"] == "evhub.duplicate_connection"
    assert event["kind"] == "security_event"


async def test_an_id_from_a_new_address_soon_after(ocpp_hub: HubFactory) -> None:
    hub, seen = await start(ocpp_hub)
    first = await open_charge_point(ws_url(hub, "CP-1"))
    try:
        await boot(first)
    finally:
        await first.close()
    await wait_state(hub, "sensor.bay_1_connectivity", "offline")
    # The same id from another address (127.0.0.2 is loopback too, on Linux).
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)))
    try:
        ws = await session.ws_connect(ws_url(hub, "CP-1"), protocols=("ocpp1.6",))
        await wait_state(hub, "sensor.bay_1_connectivity", "online")
        await ws.close()
    finally:
        await session.close()
    [detection] = seen.of("address_change")
    assert detection["remote"] == "127.0.0.2"
    assert detection["data"]["previous"] == "127.0.0.1"
    await seen.alert("address_change", detection["station_id"])


async def test_a_changed_serial_and_an_unordered_reboot(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, seen = await start(ocpp_hub)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp, serial="SN-1")
    assert not seen.events  # the first boot is what is on record
    await boot(cp, serial="SN-EVIL")
    [detection] = seen.of("boot_identity")
    assert detection["data"] == {"serial": {"was": "SN-1", "now": "SN-EVIL"}}
    assert detection["severity"] == "critical"
    [reboot] = seen.of("unordered_reboot")
    assert reboot["charge_point_id"] == "CP-1"
    await seen.alert("boot_identity", detection["station_id"])


async def test_an_ordered_reset_is_no_detection(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(ocpp_hub)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp)
    await hub.services.call("charger", "reset", {"type": "soft"}, target=_target(hub, "CP-1"))
    await boot(cp)
    assert not seen.of("unordered_reboot")


async def test_the_boot_after_an_approval_is_no_detection(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, seen = await start(
        ocpp_hub,
        "listeners:\n  - port: 0\n    host: 127.0.0.1\n    security_profile: 1\n"
        "unknown_chargers: pending\n",
    )
    cp = await connect(ws_url(hub, "NEW-7"), password="new-charger-key-123")
    assert (await cp.call("BootNotification", BOOT_W1))["status"] == "Pending"
    cp.handlers["TriggerMessage"] = lambda payload: {"status": "Accepted"}
    await hub.services.call("ocpp", "approve_charger", {"charge_point_id": "NEW-7"})
    await cp.wait_for_call("TriggerMessage")
    assert (await cp.call("BootNotification", BOOT_W1))["status"] == "Accepted"
    assert not seen.events


BOOT_W1 = {"chargePointVendor": "ACME", "chargePointModel": "W1"}


async def test_a_security_profile_downgrade_attempt(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(ocpp_hub, WITH_PASSWORD)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await connect(ws_url(hub, "CP-1", index=1))  # the profile 0 listener
    [detection] = seen.of("downgrade")
    assert detection["severity"] == "critical"
    await seen.alert("downgrade", "CP-1")


async def test_a_reconnect_storm(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(
        ocpp_hub, extra="security_monitor:\n  reconnect_storm: {count: 3, window_seconds: 60}\n"
    )
    for _ in range(3):
        cp = await connect(ws_url(hub, "CP-1"))
        await wait_state(hub, "sensor.bay_1_connectivity", "online")
        await cp.close()
        await wait_state(hub, "sensor.bay_1_connectivity", "offline")
    [detection] = seen.of("reconnect_storm")
    assert detection["data"]["count"] == 3


# Authentication ---------------------------------------------------------------------------


async def test_wrong_password_bursts(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(
        ocpp_hub,
        WITH_PASSWORD,
        extra="security_monitor:\n  charger_auth_failures: {count: 3, window_seconds: 60}\n",
    )
    for _ in range(2):
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await connect(ws_url(hub, "CP-1"), password="wrong-password-1234567")
    assert not seen.of("charger_auth_failures")
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await connect(ws_url(hub, "CP-1"), password="wrong-password-7654321")
    subjects = sorted(d["subject"] for d in seen.of("charger_auth_failures"))
    assert subjects == ["address:127.0.0.1", "charge point:CP-1"]
    await seen.alert("charger_auth_failures", "charge point:CP-1")
    # The right password still works: a detection refuses nobody by itself.
    await connect(ws_url(hub, "CP-1"), password=PASSWORD)


async def test_api_login_failures_and_a_ban(ocpp_hub: HubFactory) -> None:
    hub, seen = await start(
        ocpp_hub,
        extra="security_monitor:\n  api_login_failures: {count: 3}\n",
        manual_clock=True,
    )
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            async with session.post(
                f"{http_url(hub)}/api/auth/login",
                json={"username": f"nobody{n}", "password": "wrong-wrong-wrong"},
            ) as answer:
                assert answer.status == 401
            # Past the throttle, within the rule's window.
            await manual_clock_of(hub).advance(31)
    [failures] = seen.of("api_login_failures")
    assert failures["subject"] == "address:127.0.0.1"
    assert seen.of("api_ban")
    await seen.alert("api_login_failures", "address:127.0.0.1")


async def test_new_users_and_tokens(ocpp_hub: HubFactory, api_user: ApiUser) -> None:
    hub, seen = await start(ocpp_hub)
    token = await api_user(hub, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{http_url(hub)}/api/users",
            json={"username": "mallory", "password": "a-long-enough-password-1", "role": "admin"},
        ) as answer:
            assert answer.status in (200, 201), await answer.text()
        async with session.post(f"{http_url(hub)}/api/tokens", json={"name": "backdoor"}) as answer:
            assert answer.status in (200, 201), await answer.text()
    actions = [d["data"]["action"] for d in seen.of("account_change")]
    assert actions == ["user.add", "token.create"]
    assert "mallory" in seen.of("account_change")[0]["title"]
    assert seen.of("account_change")[0]["severity"] == "info"


# Integrity --------------------------------------------------------------------------------


async def test_a_firmware_change_nobody_ordered(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(ocpp_hub)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp, firmware="1.0")
    await boot(cp, firmware="6.6.6")
    [detection] = seen.of("unordered_firmware")
    assert detection["data"] == {"was": "1.0", "now": "6.6.6"}
    assert detection["severity"] == "critical"
    # Ordered through the hub, a new version is expected.
    cp.handlers["UpdateFirmware"] = lambda payload: {}
    await hub.services.call(
        "ocpp",
        "update_firmware",
        {"charge_point_id": "CP-1", "location": "https://fw.example.com/2.0.bin"},
    )
    await boot(cp, firmware="2.0")
    assert len(seen.of("unordered_firmware")) == 1


async def test_a_meter_going_backwards(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(ocpp_hub)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp)
    # An energy register that goes down.
    for value in ("5000", "4000"):
        await cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "meterValue": [{"timestamp": now_iso(), "sampledValue": [{"value": value}]}],
            },
        )
    [register] = seen.of("meter_backwards")
    assert register["data"]["was"] == 5000.0
    assert register["data"]["now"] == 4000.0
    # A session whose meterStop is below its meterStart.
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 2, "idTag": "TAG-OK", "meterStart": 9000, "timestamp": now_iso()},
    )
    await cp.call(
        "StopTransaction",
        {"transactionId": started["transactionId"], "meterStop": 100, "timestamp": now_iso()},
    )
    await hub.block_till_done()
    sessions = [d for d in seen.of("meter_backwards") if "transaction_id" in d["data"]]
    assert sessions, seen.events
    assert sessions[0]["data"]["energy_wh"] < 0


async def test_configuration_changed_outside_the_hub(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, seen = await start(ocpp_hub, manual_clock=True)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp)
    profile = {"value": "1"}
    cp.handlers["GetConfiguration"] = lambda payload: {
        "configurationKey": [{"key": "SecurityProfile", "readonly": False, **profile}],
        "unknownKey": ["AuthorizationKey"],
    }
    await _poll(hub, cp)
    assert not seen.of("config_change")
    profile["value"] = "0"
    await _poll(hub, cp)
    [detection] = seen.of("config_change")
    assert detection["data"] == {"keys": ["SecurityProfile"]}
    assert "'1' → '0'" in detection["message"]
    # Changed by the hub itself: no detection.
    await hub.services.call(
        "ocpp", "change_configuration", {"charge_point_id": "CP-1", "key": "X", "value": "1"}
    )
    profile["value"] = "1"
    await _poll(hub, cp)
    assert len(seen.of("config_change")) == 1


async def test_a_201_security_profile_changed_outside_the_hub(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, seen = await start(ocpp_hub, manual_clock=True)
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1")
    await cp.call(
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M"}},
    )
    profile = {"SecurityProfile": "2", "BasicAuthPassword": None}

    def get_variables(payload: dict[str, Any]) -> dict[str, Any]:
        results = []
        for item in payload["getVariableData"]:
            name = item["variable"]["name"]
            value = profile.get(name)
            results.append(
                {
                    "attributeStatus": "Accepted" if value is not None else "Rejected",
                    "component": item["component"],
                    "variable": item["variable"],
                    **({"attributeValue": value} if value is not None else {}),
                }
            )
        return {"getVariableResult": results}

    cp.handlers["GetVariables"] = get_variables
    await _poll(hub, cp, "GetVariables")
    assert not seen.of("config_change")
    profile["SecurityProfile"] = "1"
    await _poll(hub, cp, "GetVariables")
    [detection] = seen.of("config_change")
    assert detection["data"] == {"keys": ["SecurityCtrlr.SecurityProfile"]}


# Protocol ---------------------------------------------------------------------------------


async def test_a_flood_and_an_oversized_frame(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(
        ocpp_hub, OPEN + "max_frame_size: 2048\nrate_limit:\n  rate: 1\n  burst: 5\n"
    )
    cp = await connect(ws_url(hub, "CP-1"))
    big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "x", "data": "A" * 5000}])
    await cp.send_frame(big, "big1")
    assert seen.of("flood")
    for _ in range(10):
        with contextlib.suppress(ChargerCallError):  # refused: that is the flood
            await cp.call("Heartbeat", {})
    await hub.block_till_done()
    # One detection per subject and cool-down: the oversized frame's; the rate limit's
    # events are counted into the same alert.
    assert {d["data"]["kind"] for d in seen.of("flood")} == {"ocpp_frame_too_large"}
    await seen.alert("flood", "charge point:CP-1")


async def test_a_firmware_with_an_invalid_signature(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(ocpp_hub)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp)
    await cp.call("SignedFirmwareStatusNotification", {"status": "InvalidSignature"})
    [detection] = seen.of("firmware_integrity")
    assert detection["severity"] == "critical"
    assert detection["data"]["kind"] == "ocpp_firmware_signature"


async def test_invalid_messages_above_a_rate(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(
        ocpp_hub, extra="security_monitor:\n  invalid_messages: {count: 3, window_seconds: 60}\n"
    )
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp)
    for n in range(3):
        assert not seen.of("invalid_messages")
        with pytest.raises(ChargerCallError):
            await cp.call(
                "StatusNotification",
                {"connectorId": 2**40 + n, "errorCode": "NoError", "status": "Available"},
            )
    subjects = sorted(d["subject"] for d in seen.of("invalid_messages"))
    assert subjects == ["address:127.0.0.1", "charge point:CP-1"]


# Charger security events ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "severity"),
    [
        ("TamperDetectionActivated", "critical"),
        ("StartupOfTheDevice", "critical"),
        ("InvalidFirmwareSignature", "critical"),
        ("InvalidMessages", "warning"),
        ("AttemptedReplayAttacks", "warning"),
        ("AcmeDoorOpened", "warning"),
    ],
)
async def test_charger_security_events_are_classified(
    ocpp_hub: HubFactory, connect: Connect, event_type: str, severity: str
) -> None:
    hub, seen = await start(ocpp_hub)
    cp = await connect(ws_url(hub, "CP-1"))
    await boot(cp)
    await cp.call(
        "SecurityEventNotification",
        {"type": event_type, "timestamp": now_iso(), "techInfo": "enclosure"},
    )
    [logged] = security_log(hub).query(kind="ocpp_charger_security_event")
    assert logged.severity == severity
    assert logged.source == "charger"
    assert bool(seen.of("charger_reported")) == (severity == "critical")


async def test_a_201_maintenance_login_is_critical(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub, seen = await start(ocpp_hub)
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1")
    await cp.call(
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M"}},
    )
    await cp.call(
        "SecurityEventNotification", {"type": "MaintenanceLoginFailed", "timestamp": now_iso()}
    )
    [detection] = seen.of("charger_reported")
    assert detection["severity"] == "critical"


def readme_lock_automation() -> str:
    """The README's automation that locks a station whose rules fire, as written."""
    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("## Automations") : text.index("## Alerts")]
    (block,) = [
        b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "lock_on_detection" in b
    ]
    return "automations:\n" + textwrap.indent(block, "  ")


async def test_a_tamper_from_the_simulator(ocpp_hub: HubFactory) -> None:
    """The simulator's tamper scenario: the station reports TamperDetectionActivated, the
    rule raises a critical alert; the charger's own security_event is not fired twice."""
    extra = textwrap.dedent(
        """
        simulator:
          speed: 50
          stations:
            - {id: CP-1, version: "1.6", scenario: tamper}
        """
    )
    _, seen = await start(ocpp_hub, extra=extra)
    for _ in range(1000):
        if seen.of("charger_reported"):
            break
        await asyncio.sleep(0.01)
    [detection] = seen.of("charger_reported")
    assert detection["data"] == {"type": "TamperDetectionActivated"}
    assert detection["severity"] == "critical"
    alert = await seen.alert("charger_reported", "CP-1:TamperDetectionActivated")
    assert alert["severity"] == "critical"
    assert not seen.charger_events


async def test_the_readme_automation_locks_a_raw_charger_on_a_second_socket(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, seen = await start(ocpp_hub, extra=readme_lock_automation())
    real = await connect(ws_url(hub, "CP-1"))
    await boot(real)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await connect(ws_url(hub, "CP-1"))
    change = await real.wait_for_call("ChangeAvailability")
    assert change == {"connectorId": 0, "type": "Inoperative"}
    assert seen.of("duplicate_connection")


# Helpers ----------------------------------------------------------------------------------


def _target(hub: Hub, cp_id: str) -> dict[str, Any]:
    from hub.registry import device_registry

    device = device_registry(hub).get_by_identifier(("ocpp", cp_id))
    assert device is not None
    return {"device_id": device.id}


async def _poll(hub: Hub, cp: Any, action: str = "GetConfiguration") -> None:
    """Let an hour pass on the hub clock: the poll runs; wait until the charger answered."""
    asked = sum(1 for name, _ in cp.received if name == action)
    await manual_clock_of(hub).advance(3600)
    for _ in range(500):
        if sum(1 for name, _ in cp.received if name == action) > asked:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError(f"no {action} within 5 s")
    for _ in range(10):
        await asyncio.sleep(0.01)
        await hub.block_till_done()


# Certificates -----------------------------------------------------------------------------


def self_signed(path: Path, days: float) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soon.example.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


async def test_a_hub_certificate_at_30_then_7_days(ocpp_hub: HubFactory, tmp_path: Path) -> None:
    self_signed(tmp_path / "soon.pem", days=7.5)
    (tmp_path / "broken.pem").write_text("not a certificate")
    hub, seen = await start(
        ocpp_hub,
        extra="security_monitor:\n  certificate_expiry: {files: [soon.pem, broken.pem]}\n",
        manual_clock=True,
    )
    # Checked as the monitor sets up: the alert is there once the hub runs.
    await _settle(hub, lambda: certificate_alerts(hub))
    [first] = certificate_alerts(hub)
    assert first["severity"] == "warning"
    assert "CN=soon.example.com" in first["message"]
    assert first["key"].endswith(":30")
    await manual_clock_of(hub).advance(86400)  # the daily check: 6.5 days left
    await _settle(hub, lambda: seen.of("certificate_expiry"))
    [second] = seen.of("certificate_expiry")
    assert second["data"]["days"] == 7
    assert second["severity"] == "critical"
    assert len(certificate_alerts(hub)) == 2


def certificate_alerts(hub: Hub) -> list[dict[str, Any]]:
    return [
        a.as_dict()
        for a in alert_manager(hub).open()
        if a.key.startswith("security_monitor:certificate_expiry:")
    ]


async def test_charger_and_listener_certificates_near_expiry(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """The test PKI's certificates end tomorrow: the listener's, the CA's, the charger's."""
    hub, seen = await start(
        ocpp_hub,
        f"""
        listeners:
          - port: 0
            host: 127.0.0.1
            security_profile: 3
            certfile: {pki.server_cert}
            keyfile: {pki.server_key}
            ca_certs: {pki.ca}
        chargers:
          - id: CP-1
            name: Bay 1
        """,
    )
    await _settle(hub, lambda: len(certificate_alerts(hub)) >= 2)
    messages = " ".join(a["message"] for a in certificate_alerts(hub))
    assert str(pki.ca) in messages
    assert str(pki.server_cert) in messages
    assert {a["severity"] for a in certificate_alerts(hub)} == {"critical"}
    cp = await connect(ws_url(hub, "CP-1", scheme="wss"), ssl_context=client_context(pki, "CP-1"))
    assert (await cp.call("Heartbeat", {}))["currentTime"]
    [charger] = [d for d in seen.of("certificate_expiry") if d["charge_point_id"] == "CP-1"]
    assert charger["severity"] == "critical"
    assert charger["data"]["where"] == "charger CP-1"


async def _settle(hub: Hub, done: Any) -> None:
    for _ in range(500):
        await hub.block_till_done()
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


async def test_a_stop_for_another_stations_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """CP-2 sends StopTransaction for CP-1's transaction: answered, CP-1's session stays open,
    and the hub detects it."""
    hub, seen = await start(ocpp_hub)
    first = await connect(ws_url(hub, "CP-1"))
    await boot(first)
    started = await first.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 0, "timestamp": now_iso()},
    )
    tx = started["transactionId"]
    second = await connect(ws_url(hub, "CP-2"))
    await boot(second, serial="SN-2")
    answer = await second.call(
        "StopTransaction", {"transactionId": tx, "meterStop": 500, "timestamp": now_iso()}
    )
    assert answer == {}
    record = await hub.data[DATA_SYSTEM].transactions.get(tx)
    assert record is not None
    assert (record.charge_point_id, record.stopped_at) == ("CP-1", None)
    [event] = security_log(hub).query(kind="ocpp_foreign_transaction")
    assert event.data == {"transaction_id": tx, "owner": "CP-1"}
    assert event.charge_point_id == "CP-2"
    [detection] = seen.of("foreign_stop")
    assert detection["severity"] == "warning"
    await seen.alert("foreign_stop", "CP-2")
