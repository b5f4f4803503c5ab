"""OCA CSMS test cases of OCPP 2.0.1 left over from the earlier rounds: TLS of security
profiles 2 and 3 (A), provisioning (B), transactions (E), availability (G), meter values (J),
certificates (M) and custom data (P). Each test plays the charging station's side over a real
(TLS) websocket and checks what the hub sends and answers, step by step as the test case
describes; the 1.6 equivalent is named where 1.6 has the message."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from hub.core import Hub
from hub.security import security_log
from hub.testing import Connect, RawChargePoint
from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp.features.security_ca import hash_data
from tests.integrations.ocpp.conftest import HubFactory, wait_state, ws_url
from tests.integrations.ocpp.test_tc_certificates import (  # noqa: F401 (TC_M_24's fixture)
    responder,
)
from tests.integrations.ocpp.test_tc_security import PASSWORD, Pki, make_pki, profile_1
from tests.integrations.ocpp.test_tc_transactions import (
    CONFIG,
    TOKEN,
    Station201,
    at,
    energy,
    occupied,
    port_of,
    start,
    stored,
)

BOOT = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}


async def notify_connector(cp: RawChargePoint, status: str, when: str | None = None) -> None:
    """StatusNotification of EVSE 1 connector 1 and its NotifyEvent (Delta), as the OCTT
    reports the state of its connectors; each answered with an empty response."""
    when = when or at(0)
    answer = await cp.call(
        "StatusNotification",
        {"timestamp": when, "connectorStatus": status, "evseId": 1, "connectorId": 1},
    )
    assert answer == {}
    answer = await cp.call(
        "NotifyEvent",
        {
            "generatedAt": when,
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": when,
                    "trigger": "Delta",
                    "actualValue": status,
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                    "variable": {"name": "AvailabilityState"},
                }
            ],
        },
    )
    assert answer == {}


# A00: TLS, server-side and client-side certificates ----------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA (whose key signs station certificates here), an RSA and an ECDSA server
    certificate for 127.0.0.1 and CP-1's client certificate."""
    return make_pki(tmp_path_factory.mktemp("pki-201-more"))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_pair(base: Path, label: str, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
    cert_path, key_path = base / f"{label}.pem", base / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _client_certificate(
    base: Path,
    label: str,
    cn: str,
    issuer_key: Any,
    issuer: x509.Name | None,
    *,
    expired: bool = False,
) -> tuple[Path, Path]:
    """A charging station certificate for cn, signed by issuer_key (self-signed when issuer
    is None), valid now or expired yesterday."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    start_at, end_at = (
        (now - datetime.timedelta(days=3), now - datetime.timedelta(days=1))
        if expired
        else (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer if issuer is not None else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start_at)
        .not_valid_after(end_at)
        .sign(issuer_key if issuer is not None else key, hashes.SHA256())
    )
    return _write_pair(base, label, cert, key)


def _context(pki: Pki, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def _tls_section(pki: Pki, profile: int) -> str:
    """A profile 2 or 3 listener with the RSA and the ECDSA server certificate, and CP-1
    (with a password for profile 2)."""
    lines = [
        "listeners:",
        "  - port: 0",
        "    host: 127.0.0.1",
        f"    security_profile: {profile}",
        f"    certfile: [{pki.server_rsa[0]}, {pki.server_ec[0]}]",
        f"    keyfile: [{pki.server_rsa[1]}, {pki.server_ec[1]}]",
    ]
    if profile == 3:
        lines.append(f"    ca_certs: {pki.ca}")
    lines += ["chargers:", "  - id: CP-1", "    name: Bay 1"]
    if profile == 2:
        lines.append(f"    password: {PASSWORD}")
    return "\n".join(lines) + "\n"


async def _tls_station(
    hub: Hub, connect: Connect, pki: Pki, profile: int, context: ssl.SSLContext | None = None
) -> RawChargePoint:
    """Steps "HTTP upgrade, BootNotification PowerUp, the state of all connectors": each
    answered, the boot Accepted."""
    url = ws_url(hub, "CP-1", scheme="wss")
    if context is None:
        context = _context(pki, pki.clients["CP-1"] if profile == 3 else None)
    password = PASSWORD if profile == 2 else None
    cp = await connect(url, protocol="ocpp2.0.1", password=password, ssl_context=context)
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    await notify_connector(cp, "Available")
    return cp


async def _server_hello(
    port: int, pki: Pki, cipher: str, cert: tuple[Path, Path] | None
) -> tuple[str, str, Any, x509.Certificate]:
    """A TLS 1.2 handshake offering one suite: (version, suite, compression, certificate)."""
    context = _context(pki, cert)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher)
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True)
        return (
            tls.version(),
            tls.cipher()[0],
            tls.compression(),
            x509.load_der_x509_certificate(der),
        )
    finally:
        writer.close()


@pytest.mark.parametrize("profile", [2, 3])
async def test_tc_a_04_csms_tls_server_side_certificate_valid(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, profile: int
) -> None:
    """TC_A_04_CSMS (A00.FR.306/307/312/318/321/502/503/507/508/510): the hub is the TLS
    server with its configured certificate: TLS 1.2 or above, the four suites OCPP lists,
    no compression, an RSA key of 2048 bits or more and an ECDSA key of 224 or more, with a
    serial number and the endpoint's name in the CN. Then the secured websocket, boot
    Accepted, the connectors' state answered. Profile 2 (password) and 3 (client cert)."""
    hub = await ocpp_hub(_tls_section(pki, profile))
    port = hub.data[DATA_SYSTEM].listeners[0].port
    client = pki.clients["CP-1"] if profile == 3 else None
    for suite, key_type, bits in (
        ("ECDHE-ECDSA-AES128-GCM-SHA256", ec.EllipticCurvePublicKey, 224),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", ec.EllipticCurvePublicKey, 224),
        ("AES128-GCM-SHA256", rsa.RSAPublicKey, 2048),
        ("AES256-GCM-SHA384", rsa.RSAPublicKey, 2048),
    ):
        version, cipher, compression, certificate = await _server_hello(port, pki, suite, client)
        assert (version, cipher, compression) == ("TLSv1.2", suite, None)
        public_key = certificate.public_key()
        assert isinstance(public_key, key_type)
        assert public_key.key_size >= bits
        assert certificate.serial_number > 0
        [cn] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert cn.value == "127.0.0.1"
        # A00.FR.507: the certificate travels as X.509 and is kept as PEM.
        assert certificate.public_bytes(serialization.Encoding.PEM).startswith(b"-----BEGIN")
    cp = await _tls_station(hub, connect, pki, profile)
    assert (await cp.call("Heartbeat", {}))["currentTime"]
    await wait_state(hub, "sensor.bay_1_connectivity", "online")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("profile", [2, 3])
async def test_tc_a_06_csms_tls_version_too_low(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, profile: int
) -> None:
    """TC_A_06_CSMS (A00.FR.314/315, 416-418): a Client Hello of TLS 1.1 or lower is refused
    by the hub (a protocol version alert, no connection); the same station then connects
    with TLS 1.2 and boots."""
    hub = await ocpp_hub(_tls_section(pki, profile))
    port = hub.data[DATA_SYSTEM].listeners[0].port
    old = _context(pki, pki.clients["CP-1"] if profile == 3 else None)
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    # The client may offer TLS 1.0/1.1 at all: the refusal is the hub's, not the client's.
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as info:
        await asyncio.open_connection("127.0.0.1", port, ssl=old, server_hostname="127.0.0.1")
    # Not the client's own refusal (it has TLS 1.0/1.1 to offer): the hub's.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(info.value)
    assert hub.data[DATA_SYSTEM].stations.get("CP-1") is None or not (
        hub.data[DATA_SYSTEM].stations["CP-1"].online
    )
    with pytest.raises(aiohttp.ClientError):
        await connect(
            ws_url(hub, "CP-1", scheme="wss"),
            protocol="ocpp2.0.1",
            password=PASSWORD if profile == 2 else None,
            ssl_context=old,
        )
    await _tls_station(hub, connect, pki, 2 if profile == 2 else 3)
    await wait_state(hub, "sensor.bay_1_connectivity", "online")


async def test_tc_a_07_csms_tls_client_side_certificate_valid(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """TC_A_07_CSMS (A00.FR.409/410/415/416/421): profile 3, the station presents its
    certificate (CN = its id, signed by the CA the hub trusts): the handshake completes with
    TLS 1.2 or above, the websocket is upgraded without any password, boot Accepted and the
    connectors' state answered; no bad-certificate event is logged."""
    hub = await ocpp_hub(_tls_section(pki, 3))
    port = hub.data[DATA_SYSTEM].listeners[0].port
    version, _, _, _ = await _server_hello(
        port, pki, "ECDHE-ECDSA-AES128-GCM-SHA256", pki.clients["CP-1"]
    )
    assert version == "TLSv1.2"
    cp = await _tls_station(hub, connect, pki, 3)
    assert (await cp.call("Heartbeat", {}))["currentTime"]
    await wait_state(hub, "sensor.bay_1_connectivity", "online")
    assert security_log(hub).query(kind="ocpp_bad_certificate") == []


@pytest.mark.parametrize("kind", ["unknown", "expired", "other_cn"])
async def test_tc_a_08_csms_tls_client_side_certificate_invalid(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, tmp_path: Path, kind: str
) -> None:
    """TC_A_08_CSMS (A00.FR.405/407): an invalid client certificate, each kind the test case
    names (unknown issuer, expired, CN not the station's id), ends the connection before any
    OCPP message; the station then connects with its valid certificate and boots."""
    hub = await ocpp_hub(_tls_section(pki, 3))
    url = ws_url(hub, "CP-1", scheme="wss")
    if kind == "unknown":
        stranger = ec.generate_private_key(ec.SECP256R1())
        invalid = _client_certificate(tmp_path, kind, "CP-1", stranger, None)
    elif kind == "expired":
        invalid = _client_certificate(
            tmp_path, kind, "CP-1", pki.ca_private, pki.ca_cert.subject, expired=True
        )
    else:
        invalid = _client_certificate(tmp_path, kind, "CP-99", pki.ca_private, pki.ca_cert.subject)
    with pytest.raises(aiohttp.ClientError) as info:
        await connect(url, protocol="ocpp2.0.1", ssl_context=_context(pki, invalid))
    if kind == "other_cn":
        # A valid chain for another id: the TLS handshake completes, the upgrade is refused.
        assert isinstance(info.value, aiohttp.WSServerHandshakeError)
        assert info.value.status == 403
        [event] = security_log(hub).query(kind="ocpp_bad_certificate")
        assert event.data["cn"] == "CP-99"
    station = hub.data[DATA_SYSTEM].stations.get("CP-1")
    assert station is None or not station.online
    await _tls_station(hub, connect, pki, 3)
    await wait_state(hub, "sensor.bay_1_connectivity", "online")


# B: provisioning ---------------------------------------------------------------------------

OPEN_201 = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
call_timeout: 2
chargers:
  - id: CP-2
    name: Bay 2
"""
CP2 = {"charge_point_id": "CP-2"}


async def _station_cp2(ocpp_hub: HubFactory, connect: Connect) -> tuple[Hub, RawChargePoint]:
    hub = await ocpp_hub(OPEN_201)
    cp = await connect(ws_url(hub, "CP-2"), protocol="ocpp2.0.1")
    assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
    return hub, cp


def _state(hub: Hub, entity_id: str) -> str:
    found = hub.states.get(entity_id)
    assert found is not None, entity_id
    return found.state


def _sent(cp: RawChargePoint, action: str) -> list[dict[str, Any]]:
    return [payload for name, payload in cp.received if name == action]


async def test_tc_b_08_csms_get_variables_limit_to_maximum_number_of_values(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_B_08_CSMS (B06.FR.04): the station reported DeviceDataCtrlr.ItemsPerMessage
    [GetVariables] = 4 (NotifyReport); asked for five variables, the hub sends one
    GetVariablesRequest of four and one of one, never more than four, and merges the
    answers in order."""
    hub, cp = await _station_cp2(ocpp_hub, connect)
    reported = [
        ("DeviceDataCtrlr", "ItemsPerMessage", "GetReport", "4"),
        ("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables", "4"),
        ("DeviceDataCtrlr", "BytesPerMessage", "GetReport", "4096"),
        ("DeviceDataCtrlr", "BytesPerMessage", "GetVariables", "4096"),
        ("AuthCtrlr", "AuthorizeRemoteStart", None, "true"),
    ]
    report = {
        "requestId": 0,
        "generatedAt": at(0),
        "seqNo": 0,
        "tbc": False,
        "reportData": [
            {
                "component": {"name": component},
                "variable": {"name": name, **({"instance": instance} if instance else {})},
                "variableAttribute": [{"type": "Actual", "value": value}],
            }
            for component, name, instance, value in reported
        ],
    }
    assert await cp.call("NotifyReport", report) == {}
    values = {(c, n, i): v for c, n, i, v in reported}

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "getVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "attributeValue": values[
                        (
                            item["component"]["name"],
                            item["variable"]["name"],
                            item["variable"].get("instance"),
                        )
                    ],
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in payload["getVariableData"]
            ]
        }

    cp.handlers["GetVariables"] = answer
    wanted = [
        {
            "component": {"name": component},
            "variable": {"name": name, **({"instance": instance} if instance else {})},
        }
        for component, name, instance, _ in reported
    ]
    result = await hub.services.call("ocpp", "get_variables", {**CP2, "variables": wanted})
    requests = _sent(cp, "GetVariables")
    assert [len(r["getVariableData"]) for r in requests] == [4, 1]
    assert [item for r in requests for item in r["getVariableData"]] == wanted
    assert [r["attributeValue"] for r in result["getVariableResult"]] == [v for *_, v in reported]


async def test_tc_b_14_csms_get_base_report_summary_inventory(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_B_14_CSMS (B07.FR.03/04/08): GetBaseReportRequest reportBase SummaryInventory with
    a requestId; Accepted; the station's NotifyReport parts (tbc true, then false) answered
    and kept as one report of that kind."""
    hub, cp = await _station_cp2(ocpp_hub, connect)
    answer = await hub.services.call(
        "ocpp", "get_base_report", {**CP2, "report_base": "SummaryInventory"}
    )
    request = await cp.wait_for_call("GetBaseReport")
    assert request == {"requestId": answer["requestId"], "reportBase": "SummaryInventory"}
    assert answer["status"] == "Accepted"

    def part(seq_no: int, tbc: bool, component: str, variable: str, value: str) -> Any:
        return {
            "requestId": request["requestId"],
            "generatedAt": at(0),
            "seqNo": seq_no,
            "tbc": tbc,
            "reportData": [
                {
                    "component": {"name": component, "evse": {"id": 1}},
                    "variable": {"name": variable},
                    "variableAttribute": [{"type": "Actual", "value": value}],
                    "variableCharacteristics": {
                        "dataType": "OptionList",
                        "supportsMonitoring": True,
                    },
                }
            ],
        }

    assert (
        await cp.call("NotifyReport", part(0, True, "EVSE", "AvailabilityState", "Available")) == {}
    )
    assert await cp.call("NotifyReport", part(1, False, "EVSE", "Problem", "false")) == {}, (
        "each part is answered with an empty NotifyReportResponse"
    )
    report = await hub.services.call("ocpp", "get_stored_report", CP2)
    assert (report["request_id"], report["kind"]) == (request["requestId"], "SummaryInventory")
    assert report["missing_seq_nos"] == []
    assert [d["variable"]["name"] for d in report["report_data"]] == [
        "AvailabilityState",
        "Problem",
    ]


async def test_tc_b_18_csms_get_custom_report_with_criteria_and_component_variables(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_B_18_CSMS (B08.FR.03/04/07): GetReportRequest for EVSE 1's AvailabilityState with
    componentCriteria Problem: the station has none, EmptyResultSet, passed on; then with
    Available: Accepted, and the station's NotifyReport for that requestId is answered and
    kept as a custom report."""
    hub, cp = await _station_cp2(ocpp_hub, connect)
    component_variable = [
        {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "AvailabilityState"},
        }
    ]
    cp.handlers["GetReport"] = lambda payload: {"status": "EmptyResultSet"}
    first = await hub.services.call(
        "ocpp",
        "get_report",
        {**CP2, "component_criteria": ["Problem"], "component_variable": component_variable},
    )
    request = await cp.wait_for_call("GetReport")
    assert request == {
        "requestId": first["requestId"],
        "componentCriteria": ["Problem"],
        "componentVariable": component_variable,
    }
    assert first["status"] == "EmptyResultSet"
    cp.handlers["GetReport"] = lambda payload: {"status": "Accepted"}
    second = await hub.services.call(
        "ocpp",
        "get_report",
        {**CP2, "component_criteria": ["Available"], "component_variable": component_variable},
    )
    request = _sent(cp, "GetReport")[-1]
    assert request["componentCriteria"] == ["Available"]
    assert request["requestId"] == second["requestId"] != first["requestId"]
    assert second["status"] == "Accepted"
    notify = {
        "requestId": second["requestId"],
        "generatedAt": at(0),
        "seqNo": 0,
        "tbc": False,
        "reportData": [
            {
                **component_variable[0],
                "variableAttribute": [{"type": "Actual", "value": "Available"}],
                "variableCharacteristics": {"dataType": "OptionList", "supportsMonitoring": False},
            }
        ],
    }
    assert await cp.call("NotifyReport", notify) == {}
    report = await hub.services.call(
        "ocpp", "get_stored_report", {**CP2, "request_id": second["requestId"]}
    )
    assert report["kind"] == "Custom"
    assert report["report_data"][0]["variableAttribute"][0]["value"] == "Available"


@pytest.mark.parametrize("version", ["ocpp2.0.1", "ocpp1.6"])
async def test_tc_b_58_csms_websocket_subprotocol_validation(
    ocpp_hub: HubFactory, version: str
) -> None:
    """TC_B_58_CSMS (Part 4 3.1.2; 1.6J 3.1.2 alike): offered only ocpp0.1, the hub selects
    no subprotocol (no Sec-WebSocket-Protocol in its answer) and closes at once (1002),
    taking no OCPP message; offered ocpp0.1 and a supported version, it selects that one,
    says so in Sec-WebSocket-Protocol, and the station boots."""
    hub = await ocpp_hub(OPEN_201)
    url = ws_url(hub, "CP-2")
    boot = BOOT if version == "ocpp2.0.1" else {"chargePointVendor": "V", "chargePointModel": "M"}
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, protocols=("ocpp0.1",))
        assert ws.protocol is None
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 1002
        await ws.close()
        ws = await session.ws_connect(url, protocols=("ocpp0.1", version))
        try:
            assert ws.protocol == version
            await ws.send_json([2, "b58", "BootNotification", boot])
            reply = await ws.receive_json(timeout=5)
            assert reply[:2] == [3, "b58"]
            assert reply[2]["status"] == "Accepted"
        finally:
            await ws.close()
    assert security_log(hub).query(kind="ocpp_no_subprotocol")


# E: transactions ---------------------------------------------------------------------------


async def _authorized_and_charging(station: Station201, tx: str) -> None:
    """Reusable states Authorized and EnergyTransferStarted (TxStartPoint Authorized): the
    token Accepted at Authorize and in the Started event, then Charging."""
    authorized = await station.cp.call("Authorize", {"idToken": TOKEN})
    assert authorized["idTokenInfo"]["status"] == "Accepted"
    started = await station.event(
        "Started",
        "Authorized",
        tx,
        at(0),
        idToken=TOKEN,
        meterValue=[energy(1000, at(0), "Transaction.Begin")],
    )
    assert started["idTokenInfo"]["status"] == "Accepted"
    await occupied(station, at(1))
    answer = await station.event("Updated", "CablePluggedIn", tx, at(1), state="EVConnected")
    assert answer == {}
    answer = await station.event("Updated", "ChargingStateChanged", tx, at(2), state="Charging")
    assert answer == {}


async def _stop_authorized(station: Station201, tx: str, event_type: str = "Updated") -> None:
    """Reusable state StopAuthorized: the driver's token again (Authorize Accepted), then
    the event with StopAuthorized, its token answered Accepted."""
    authorized = await station.cp.call("Authorize", {"idToken": TOKEN})
    assert authorized["idTokenInfo"]["status"] == "Accepted"
    extra: dict[str, Any] = {"info": {"stoppedReason": "Local"}} if event_type == "Ended" else {}
    answer = await station.event(
        event_type, "StopAuthorized", tx, at(30), state="EVConnected", idToken=TOKEN, **extra
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"


async def _ev_disconnected(station: Station201, when: str) -> None:
    """The cable is unplugged: StatusNotification Available and its NotifyEvent."""
    await notify_connector(station.cp, "Available", when)


async def test_tc_e_01_csms_start_transaction_options_power_path_closed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_01_CSMS (E01.FR.05, TxStartPoint PowerPathClosed): Authorize Accepted, the
    connector Occupied, then Started only when the power path closes (ChargingStateChanged,
    SuspendedEVSE) with the token, answered Accepted; Updated to Charging. One session, the
    token's, started at the event's time."""
    hub, station = await start(ocpp_hub, connect)
    authorized = await station.cp.call("Authorize", {"idToken": TOKEN})
    assert authorized["idTokenInfo"]["status"] == "Accepted"
    await occupied(station, at(1))
    assert port_of(hub).transaction is None
    started = await station.event(
        "Started", "ChargingStateChanged", "TX-E01", at(2), state="SuspendedEVSE", idToken=TOKEN
    )
    assert started["idTokenInfo"]["status"] == "Accepted"
    charging = await station.event(
        "Updated", "ChargingStateChanged", "TX-E01", at(3), state="Charging"
    )
    assert charging == {}
    await wait_state(hub, "sensor.bay_1_1_status", "Charging")
    transaction = port_of(hub).transaction
    assert (transaction.ocpp_id, transaction.id_tag) == ("TX-E01", "TAG-1")
    assert transaction.started_at == datetime.datetime.fromisoformat(at(2)).timestamp()


async def test_tc_e_08_csms_stop_transaction_options_energy_transfer_stopped_stop_authorized(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_08_CSMS (E06.FR.07, TxStopPoint EnergyTransfer): from EnergyTransferStarted the
    driver presents the token: Authorize Accepted, then Ended with StopAuthorized,
    stoppedReason Local and the token, whose idTokenInfo is Accepted; the session ends so."""
    hub, station = await start(ocpp_hub, connect)
    await _authorized_and_charging(station, "TX-E08")
    await _stop_authorized(station, "TX-E08", "Ended")
    record = await stored(hub, "TX-E08")
    assert (record.stop_reason, record.stopped_at) == (
        "Local",
        datetime.datetime.fromisoformat(at(30)).timestamp(),
    )
    assert port_of(hub).transaction is None
    await _ev_disconnected(station, at(31))
    await wait_state(hub, "sensor.bay_1_1_status", "Available")


async def test_tc_e_14_csms_stop_transaction_options_ev_disconnected_charging_station_side(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_14_CSMS (E06.FR.02, TxStopPoint EVConnected): Authorized, EnergyTransferStarted,
    StopAuthorized (Updated, EVConnected: the session goes on), EVConnectedPostSession; then
    the cable is unplugged at the station: Available, and Ended with EVCommunicationLost,
    Idle, stoppedReason EVDisconnected, answered; the session ends then, not before."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-E14"
    await _authorized_and_charging(station, tx)
    await _stop_authorized(station, tx)
    assert port_of(hub).transaction.ocpp_id == tx, "StopAuthorized alone does not end it"
    await _ev_disconnected(station, at(40))
    ended = await station.event(
        "Ended",
        "EVCommunicationLost",
        tx,
        at(40),
        state="Idle",
        info={"stoppedReason": "EVDisconnected"},
        meterValue=[energy(7000, at(40), "Transaction.End")],
    )
    assert ended == {}
    record = await stored(hub, tx)
    assert (record.stop_reason, record.meter_stop_wh, record.energy_wh) == (
        "EVDisconnected",
        7000,
        6000,
    )
    assert port_of(hub).transaction is None


async def test_tc_e_15_csms_stop_transaction_options_stop_authorized_local(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_15_CSMS (E06.FR.03, TxStopPoint Authorized): from EnergyTransferStarted the
    driver's token stops it: Authorize Accepted, Ended with StopAuthorized, EVConnected,
    stoppedReason Local and the token (idTokenInfo Accepted); then the cable goes
    (Available), and the ended session stays ended."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-E15"
    await _authorized_and_charging(station, tx)
    await _stop_authorized(station, tx, "Ended")
    assert port_of(hub).transaction is None
    await _ev_disconnected(station, at(35))
    await wait_state(hub, "sensor.bay_1_1_status", "Available")
    record = await stored(hub, tx)
    assert (record.stop_reason, record.id_tag) == ("Local", "TAG-1")
    assert record.stopped_at == datetime.datetime.fromisoformat(at(30)).timestamp()


async def test_tc_e_19_csms_stop_transaction_options_parking_bay_unoccupied(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_19_CSMS (E06.FR.01, TxStopPoint ParkingBayOccupancy): after StopAuthorized and
    the cable unplugged (Available, Updated EVCommunicationLost / Idle: still open), the EV
    leaves the bay: Ended with EVDeparted and stoppedReason Local, answered; only then is
    the session over."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-E19"
    await _authorized_and_charging(station, tx)
    await _stop_authorized(station, tx)
    await _ev_disconnected(station, at(40))
    lost = await station.event("Updated", "EVCommunicationLost", tx, at(40), state="Idle")
    assert lost == {}
    assert port_of(hub).transaction.ocpp_id == tx
    ended = await station.event("Ended", "EVDeparted", tx, at(45), info={"stoppedReason": "Local"})
    assert ended == {}
    record = await stored(hub, tx)
    assert record.stop_reason == "Local"
    assert record.stopped_at == datetime.datetime.fromisoformat(at(45)).timestamp()
    assert port_of(hub).transaction is None


async def test_tc_e_21_csms_stop_transaction_options_stop_authorized_remote(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_21_CSMS (E06.FR.03, F03.FR.01/09): from EnergyTransferStarted an operator stops
    the session: the hub sends RequestStopTransactionRequest with the transaction's id; the
    station Accepts and ends it with RemoteStop / stoppedReason Remote, answered."""
    hub, station = await start(ocpp_hub, connect)
    tx = "TX-E21"
    await _authorized_and_charging(station, tx)
    station.cp.handlers["RequestStopTransaction"] = lambda payload: {"status": "Accepted"}
    answer = await hub.services.call(
        "charger", "stop_charging", {}, {"entity_id": "sensor.bay_1_1_status"}
    )
    assert list(answer.values()) == ["Accepted"]
    assert await station.cp.wait_for_call("RequestStopTransaction") == {"transactionId": tx}
    ended = await station.event(
        "Ended",
        "RemoteStop",
        tx,
        at(20),
        state="EVConnected",
        info={"stoppedReason": "Remote"},
    )
    assert ended == {}
    assert (await stored(hub, tx)).stop_reason == "Remote"
    assert port_of(hub).transaction is None


async def test_tc_e_53_csms_reset_sequence_number_seq_no_0_at_start_of_transaction(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_E_53_CSMS (E01.FR.07): a transaction from Started (seqNo 0) to its end, then a new
    one whose Started has seqNo 0 again: both answered, both sessions recorded with their
    own events, the second open on the EVSE."""
    hub, station = await start(ocpp_hub, connect)
    for number, tx in enumerate(("TX-E53-A", "TX-E53-B")):
        station.seq = 0
        await _authorized_and_charging(station, tx)
        await _stop_authorized(station, tx)
        await _ev_disconnected(station, at(40))
        ended = await station.event(
            "Ended",
            "EVCommunicationLost",
            tx,
            at(40 + number),
            state="Idle",
            info={"stoppedReason": "EVDisconnected"},
        )
        assert ended == {}
        events = await hub.data[DATA_SYSTEM].transactions.events("CS-1", tx)
        assert [event.seq_no for event in events] == [0, 1, 2, 3, 4]
        assert (await stored(hub, tx)).stop_reason == "EVDisconnected"
    assert port_of(hub).transaction is None


# G: availability ---------------------------------------------------------------------------


async def test_tc_g_01_csms_status_notification(ocpp_hub: HubFactory, connect: Connect) -> None:
    """TC_G_01_CSMS (G01.FR.01-03): the station reports its connector's status in each
    connectorStatus (Available, Occupied, Reserved, Unavailable, Faulted); every
    StatusNotificationRequest is answered with an empty response and the port shows it."""
    hub, station = await start(ocpp_hub, connect)
    expected = {
        "Available": "Available",
        "Occupied": "Preparing",  # occupied, no transaction yet
        "Reserved": "Reserved",
        "Unavailable": "Unavailable",
        "Faulted": "Faulted",
    }
    for minute, (status, shown) in enumerate(expected.items(), start=1):
        answer = await station.cp.call(
            "StatusNotification",
            {"timestamp": at(minute), "connectorStatus": status, "evseId": 1, "connectorId": 1},
        )
        assert answer == {}
        await wait_state(hub, "sensor.bay_1_1_status", shown)


async def test_tc_g_20_csms_connector_status_notification_lock_failure(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_G_20_CSMS (G05.FR.03): the connector could not be locked: NotifyEventRequest
    (Delta) ConnectorPlugRetentionLock.Problem = true: the hub answers with a
    NotifyEventResponse and shows the problem as an entity of the station."""
    hub, station = await start(ocpp_hub, connect)
    seen: list[Any] = []
    hub.bus.listen("ocpp_notify_event", seen.append)
    answer = await station.cp.call(
        "NotifyEvent",
        {
            "generatedAt": at(1),
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": at(1),
                    "trigger": "Delta",
                    "actualValue": "true",
                    "eventNotificationType": "CustomMonitor",
                    "component": {"name": "ConnectorPlugRetentionLock"},
                    "variable": {"name": "Problem"},
                }
            ],
        },
    )
    assert answer == {}
    await hub.block_till_done()
    [event] = seen
    assert (event.data["component"]["name"], event.data["actualValue"]) == (
        "ConnectorPlugRetentionLock",
        "true",
    )
    shown = [
        state
        for state in hub.states.all()
        if "connectorplugretentionlock" in state.entity_id and "problem" in state.entity_id
    ]
    assert [state.state for state in shown] in (["on"], ["true"])


async def test_status_notification_16_every_status(ocpp_hub: HubFactory, connect: Connect) -> None:
    """The 1.6 equivalent of TC_G_01/TC_G_20: StatusNotification in each 1.6 status, each
    answered with an empty response and shown; a connector lock failure (errorCode
    ConnectorLockFailure) is the port's error code until NoError."""
    hub = await ocpp_hub(CONFIG)
    cp = await connect(ws_url(hub, "CP-16"))
    await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    for status in ("Available", "Preparing", "SuspendedEVSE", "Finishing", "Reserved"):
        answer = await cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status}
        )
        assert answer == {}
        await wait_state(hub, "sensor.bay_16_1_status", status)
    answer = await cp.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "ConnectorLockFailure", "status": "Faulted"},
    )
    assert answer == {}
    await wait_state(hub, "sensor.bay_16_1_status", "Faulted")
    await wait_state(hub, "sensor.bay_16_1_error_code", "ConnectorLockFailure")
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    await wait_state(hub, "sensor.bay_16_1_error_code", "NoError")


# J: meter values ---------------------------------------------------------------------------

SIGNED = {
    "signedMeterData": "T0NNRl9TSUdORURfREFUQQ==",
    "signingMethod": "ECDSA-secp256r1-SHA256",
    "encodingMethod": "OCMF",
    "publicKey": "UFVCTElDLUtFWQ==",
}


def _reading(wh: float, when: str, context: str, signed: bool) -> dict[str, Any]:
    value: dict[str, Any] = {
        "value": wh,
        "context": context,
        "measurand": "Energy.Active.Import.Register",
    }
    if signed:
        value["signedMeterValue"] = SIGNED
    return {"timestamp": when, "sampledValue": [value]}


async def _ended_with_readings(
    ocpp_hub: HubFactory, connect: Connect, tx: str, context: str, signed: bool
) -> tuple[Hub, Station201]:
    """EnergyTransferStarted, then EVDisconnected whose Ended event carries the readings of
    the whole transaction in context, the last one Transaction.End."""
    hub, station = await start(ocpp_hub, connect)
    await station.event(
        "Started",
        "Authorized",
        tx,
        at(0),
        state="Charging",
        idToken=TOKEN,
        meterValue=[_reading(100, at(0), "Transaction.Begin", signed)],
    )
    readings = [_reading(100 + 1000 * step, at(step), context, signed) for step in range(1, 4)]
    readings.append(_reading(4600, at(5), "Transaction.End", signed))
    await _ev_disconnected(station, at(5))
    ended = await station.event(
        "Ended",
        "EVCommunicationLost",
        tx,
        at(5),
        state="Idle",
        info={"stoppedReason": "EVDisconnected"},
        meterValue=readings,
    )
    assert ended == {}
    record = await stored(hub, tx)
    assert (record.meter_start_wh, record.meter_stop_wh, record.energy_wh) == (100, 4600, 4500)
    assert _state(hub, "sensor.bay_1_1_energy") == "4600.0"
    assert port_of(hub).transaction is None
    return hub, station


async def _signed_kept(hub: Hub, tx: str) -> None:
    events = await hub.data[DATA_SYSTEM].transactions.events("CS-1", tx)
    values = [
        sampled
        for event in events
        for reading in event.data.get("meterValue", [])
        for sampled in reading["sampledValue"]
    ]
    assert len(values) == 5
    assert all(value["signedMeterValue"] == SIGNED for value in values)


async def test_tc_j_04_csms_clock_aligned_meter_values_signed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_J_04_CSMS (J01.FR.21, AlignedDataSignReadings): as TC_J_03, every sampled value
    signed: the Ended event's clock-aligned readings end the session on the last one, and
    each signed meter value is kept with its event."""
    hub, _ = await _ended_with_readings(ocpp_hub, connect, "TX-J04", "Sample.Clock", True)
    await _signed_kept(hub, "TX-J04")


async def test_tc_j_07_csms_sampled_meter_values_event_type_started_evse_known(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_J_07_CSMS (J02.FR.19): EVConnectedPreSession (Occupied and its NotifyEvent), then
    Started on the cable (CablePluggedIn, EVSE known) with a Transaction.Begin reading:
    answered, the session on that EVSE starts from that reading."""
    hub, station = await start(ocpp_hub, connect)
    await occupied(station, at(1))
    answer = await station.event(
        "Started",
        "CablePluggedIn",
        "TX-J07",
        at(1),
        state="EVConnected",
        meterValue=[energy(2500, at(1), "Transaction.Begin")],
    )
    assert answer == {}
    assert port_of(hub).transaction.ocpp_id == "TX-J07"
    assert (await stored(hub, "TX-J07")).meter_start_wh == 2500
    assert _state(hub, "sensor.bay_1_1_energy") == "2500.0"


async def test_tc_j_10_csms_sampled_meter_values_event_type_ended(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_J_10_CSMS (J02.FR.19): the Ended event carries the transaction's periodic readings
    (Sample.Periodic), the last Transaction.End: the session's final reading is that last
    one, its energy the difference from the Transaction.Begin reading."""
    await _ended_with_readings(ocpp_hub, connect, "TX-J10", "Sample.Periodic", False)


async def test_tc_j_11_csms_sampled_meter_values_signed(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_J_11_CSMS (J02.FR.21, SampledDataSignReadings): as TC_J_10 with every sampled
    value signed; the signed meter values are kept with the events."""
    hub, _ = await _ended_with_readings(ocpp_hub, connect, "TX-J11", "Sample.Periodic", True)
    await _signed_kept(hub, "TX-J11")


# M: certificates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "types"),
    [
        ("TC_M_12_CSMS", ["CSMSRootCertificate"]),
        ("TC_M_13_CSMS", ["ManufacturerRootCertificate"]),
        ("TC_M_17_CSMS", ["CSMSRootCertificate", "ManufacturerRootCertificate"]),
    ],
)
async def test_tc_m_12_13_17_csms_retrieve_certificates(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, case: str, types: list[str]
) -> None:
    """TC_M_12 (CSMSRootCertificate), TC_M_13 (ManufacturerRootCertificate), TC_M_17 (both)
    (M03.FR.01): the hub sends GetInstalledCertificateIdsRequest with the certificateType
    asked, three times; the station answers with hash data made with SHA256, then SHA384,
    then SHA512: each is passed on as it came."""
    hub = await ocpp_hub(profile_1())
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1", password=PASSWORD)
    for algorithm in ("SHA256", "SHA384", "SHA512"):
        data = hash_data(pki.ca_cert, algorithm=algorithm)
        chain = [{"certificateType": kind, "certificateHashData": data} for kind in types]

        def installed(payload: dict[str, Any], chain: list[Any] = chain) -> dict[str, Any]:
            return {"status": "Accepted", "certificateHashDataChain": chain}

        cp.handlers["GetInstalledCertificateIds"] = installed
        result = await hub.services.call(
            "ocpp",
            "get_installed_certificate_ids",
            {"charge_point_id": "CP-1", "certificate_type": types},
        )
        assert await cp.wait_for_call("GetInstalledCertificateIds") == {"certificateType": types}
        assert result["status"] == "Accepted"
        assert [c["certificate_type"] for c in result["certificates"]] == types
        for certificate in result["certificates"]:
            assert certificate["certificate_hash_data"] == data
            assert data["hashAlgorithm"] == algorithm


async def test_tc_m_24_csms_get_charging_station_certificate_status_success(
    ocpp_hub: HubFactory,
    connect: Connect,
    pki: Pki,
    responder: tuple[str, list[bytes]],  # noqa: F811 (the OCSP responder fixture)
) -> None:
    """TC_M_24_CSMS (M06.FR.01/02/08/09): the station asks the status of its certificate
    (GetCertificateStatusRequest with the hashes of its chain's issuer); the hub asks the
    OCSP responder and answers Accepted with ocspResult: a DER OCSPResponse (RFC 6960),
    base64, for that serial number, GOOD."""
    url, requests = responder
    hub = await ocpp_hub(profile_1() + f"certificates:\n  ocsp_responder: {url}/ocsp\n")
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1", password=PASSWORD)
    leaf = x509.load_pem_x509_certificate(pki.clients["CP-1"][0].read_bytes())
    data = {**hash_data(leaf, issuer=pki.ca_cert), "responderURL": url + "/ocsp"}
    answer = await cp.call("GetCertificateStatus", {"ocspRequestData": data})
    assert answer["status"] == "Accepted"
    response = ocsp.load_der_ocsp_response(base64.b64decode(answer["ocspResult"], validate=True))
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.serial_number == leaf.serial_number
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert len(requests) == 1


# P: custom data ----------------------------------------------------------------------------


async def test_tc_p_03_csms_custom_data_receive_custom_data(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """TC_P_03_CSMS: a StatusNotificationRequest with customData (a vendorId and a vendor's
    own field), then a TransactionEventRequest with customData at the top and in
    transactionInfo: each answered as without it (no CALLERROR), the status and the session
    taken."""
    hub, station = await start(ocpp_hub, connect)
    custom = {"vendorId": "com.example.vendor", "customKey": "custom value", "level": 3}
    answer = await station.cp.call(
        "StatusNotification",
        {
            "timestamp": at(1),
            "connectorStatus": "Occupied",
            "evseId": 1,
            "connectorId": 1,
            "customData": custom,
        },
    )
    assert answer == {}
    await wait_state(hub, "sensor.bay_1_1_status", "Preparing")
    answer = await station.event(
        "Started",
        "Authorized",
        "TX-P03",
        at(2),
        state="EVConnected",
        idToken=TOKEN,
        customData=custom,
        info={"customData": custom},
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"
    assert port_of(hub).transaction.ocpp_id == "TX-P03"
