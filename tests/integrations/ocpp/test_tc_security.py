"""OCA test cases of block A (security), CSMS side, and their OCPP 1.6 security whitepaper
equivalents: password rotation, certificates signed by the hub, TLS of profiles 2 and 3.

Each test plays the charging station over a real (TLS) websocket.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hub.charger import EVENT_CHARGER
from hub.core import Hub
from hub.exceptions import ServiceValidationError
from hub.security import security_log
from hub.testing import Connect
from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp.features.security_ca import register_certificate_signer
from tests.integrations.ocpp.conftest import HubFactory, ws_url

PASSWORD = "correct-horse-battery-1"
BOOT_201 = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
BOOT_16 = {"chargePointVendor": "V", "chargePointModel": "M"}


# A test PKI: a CA whose key the hub may hold, RSA and ECDSA server certificates, clients.


@dataclass
class Pki:
    ca: Path
    ca_key: Path
    ca_cert: x509.Certificate
    ca_private: ec.EllipticCurvePrivateKey
    server_ec: tuple[Path, Path]
    server_rsa: tuple[Path, Path]
    clients: dict[str, tuple[Path, Path]]
    base: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _issue(
    pki_key: ec.EllipticCurvePrivateKey, issuer: x509.Name, cn: str, key: Any, server: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(pki_key, hashes.SHA256())


def make_pki(base: Path) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("evhub test CA"))
        .issuer_name(_name("evhub test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca, ca_key_path = base / "ca.pem", base / "ca.key"
    ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key_path.write_bytes(_key_pem(ca_key))
    pairs: dict[str, tuple[Path, Path]] = {}
    for label, key in (
        ("server-ec", ec.generate_private_key(ec.SECP256R1())),
        ("server-rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("CP-1", ec.generate_private_key(ec.SECP256R1())),
    ):
        server = label.startswith("server")
        cert = _issue(ca_key, ca_cert.subject, "127.0.0.1" if server else label, key, server)
        cert_path, key_path = base / f"{label}.pem", base / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_key_pem(key))
        pairs[label] = (cert_path, key_path)
    return Pki(
        ca,
        ca_key_path,
        ca_cert,
        ca_key,
        pairs["server-ec"],
        pairs["server-rsa"],
        {"CP-1": pairs["CP-1"]},
        base,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_context(pki: Pki, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def read_text(path: Path) -> str:
    return path.read_text()


def file_mode(path: Path) -> int:
    return path.stat().st_mode


def csr_for(cn: str, key: Any | None = None) -> tuple[str, Any]:
    key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evhub test CSO"),
                ]
            )
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def profile_1(protocol_chargers: str = "") -> str:
    return (
        "listeners:\n  - port: 0\n    host: 127.0.0.1\n    security_profile: 1\n"
        f"chargers:\n  - id: CP-1\n    name: Bay 1\n    password: {PASSWORD}\n" + protocol_chargers
    )


def profile_3(pki: Pki, ca: bool = True) -> str:
    section = f"""
        listeners:
          - port: 0
            host: 127.0.0.1
            security_profile: 3
            certfile: {pki.server_ec[0]}
            keyfile: {pki.server_ec[1]}
            ca_certs: {pki.ca}
        chargers:
          - id: CP-1
            name: Bay 1
        """
    if ca:
        section += f"""
        certificates:
          ca_certfile: {pki.ca}
          ca_keyfile: {pki.ca_key}
        """
    return section


def set_variables_answer(status: str) -> Any:
    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        data = payload["setVariableData"][0]
        return {
            "setVariableResult": [
                {
                    "attributeType": data.get("attributeType", "Actual"),
                    "attributeStatus": status,
                    "component": data["component"],
                    "variable": data["variable"],
                }
            ]
        }

    return answer


async def refused(connect: Connect, url: str, password: str) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(url, protocol="ocpp2.0.1", password=password)
    return info.value.status


# A00: Basic authentication (security profiles 1 and 2) ---------------------------------


async def test_tc_a_01_csms_basic_authentication_valid(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """A00.FR.204: <id>:<password> in the upgrade request opens the socket; the station
    boots (Accepted) and reports its connectors."""
    hub = await ocpp_hub(profile_1())
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1", password=PASSWORD)
    assert (await cp.call("BootNotification", BOOT_201))["status"] == "Accepted"
    status = {
        "timestamp": "2026-12-06T12:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }
    assert await cp.call("StatusNotification", status) == {}


@pytest.mark.parametrize(
    ("test_case", "user", "password"),
    [("TC_A_02", "CP-1Invalid", PASSWORD), ("TC_A_03", None, "not-" + PASSWORD)],
)
async def test_tc_a_02_03_csms_basic_authentication_refused(
    ocpp_hub: HubFactory,
    connect: Connect,
    test_case: str,
    user: str | None,
    password: str,
) -> None:
    """A00.FR.204: a username that is not the charging station id in the URL (TC_A_02) or a
    wrong password (TC_A_03) is refused at the upgrade (401), and is a security event."""
    hub = await ocpp_hub(profile_1())
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1", password=password, user=user)
    assert info.value.status == 401
    assert security_log(hub).query(charge_point_id="CP-1")


# A01: update the Basic auth password ---------------------------------------------------


async def test_tc_a_09_csms_update_charging_station_password(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """SetVariables SecurityCtrlr.BasicAuthPassword; once accepted, the new password opens
    the next connection and retires the old one."""
    hub = await ocpp_hub(profile_1())
    url = ws_url(hub, "CP-1")
    cp = await connect(url, protocol="ocpp2.0.1", password=PASSWORD)
    assert (await cp.call("BootNotification", BOOT_201))["status"] == "Accepted"
    cp.handlers["SetVariables"] = set_variables_answer("Accepted")
    result = await hub.services.call("ocpp", "update_password", {"charge_point_id": "CP-1"})
    assert result == {"status": "Accepted"}
    sent = await cp.wait_for_call("SetVariables")
    [data] = sent["setVariableData"]
    assert data["component"] == {"name": "SecurityCtrlr"}
    assert data["variable"] == {"name": "BasicAuthPassword"}
    assert data.get("attributeType", "Actual") == "Actual"
    new = data["attributeValue"]
    assert 16 <= len(new) <= 40
    assert new != PASSWORD
    await cp.close()
    # Until the station has used the new one, the old one still opens (the station may not
    # have switched yet).
    old = await connect(url, protocol="ocpp2.0.1", password=PASSWORD)
    assert (await old.call("Heartbeat", {}))["currentTime"]
    await old.close()
    # The station reconnects with the new password: accepted.
    again = await connect(url, protocol="ocpp2.0.1", password=new)
    assert (await again.call("BootNotification", BOOT_201))["status"] == "Accepted"
    await again.close()
    # From now on the old one is refused.
    assert await refused(connect, url, PASSWORD) == 401
    # Only hashes are kept, and the password was never logged as an event.
    stored = read_text(Path(hub.path(".storage", "ocpp.passwords")))
    assert new not in stored
    assert "sha256$" in stored
    for event in security_log(hub).query(charge_point_id="CP-1"):
        assert new not in str(event.data)
        assert new not in event.message


async def test_tc_a_10_csms_update_password_rejected(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """The station rejects the new password: it never opens a connection, the old one does."""
    hub = await ocpp_hub(profile_1())
    url = ws_url(hub, "CP-1")
    cp = await connect(url, protocol="ocpp2.0.1", password=PASSWORD)
    cp.handlers["SetVariables"] = set_variables_answer("Rejected")
    result = await hub.services.call("ocpp", "update_password", {"charge_point_id": "CP-1"})
    assert result == {"status": "Rejected"}
    new = (await cp.wait_for_call("SetVariables"))["setVariableData"][0]["attributeValue"]
    await cp.close()
    assert await refused(connect, url, new) == 401
    again = await connect(url, protocol="ocpp2.0.1", password=PASSWORD)
    assert (await again.call("Heartbeat", {}))["currentTime"]


async def test_update_password_survives_a_restart(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Path
) -> None:
    """A rotated password outlives the hub: the configured one does not come back."""
    hub = await ocpp_hub(profile_1())
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1", password=PASSWORD)
    cp.handlers["SetVariables"] = set_variables_answer("Accepted")
    await hub.services.call("ocpp", "update_password", {"charge_point_id": "CP-1"})
    new = (await cp.wait_for_call("SetVariables"))["setVariableData"][0]["attributeValue"]
    await cp.close()
    await hub.stop()
    hub = await ocpp_hub(profile_1(), tmp_path)
    url = ws_url(hub, "CP-1")
    first = await connect(url, protocol="ocpp2.0.1", password=new)
    assert (await first.call("Heartbeat", {}))["currentTime"]
    await first.close()
    assert await refused(connect, url, PASSWORD) == 401


async def test_tc_073_csms_update_charge_point_password_16(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    """1.6 whitepaper: ChangeConfiguration AuthorizationKey, the password hex-encoded (16 to
    20 bytes, at most 40 hex digits); the charger then connects with it."""
    hub = await ocpp_hub(profile_1())
    url = ws_url(hub, "CP-1")
    cp = await connect(url, password=PASSWORD)
    assert (await cp.call("BootNotification", BOOT_16))["status"] == "Accepted"
    cp.handlers["ChangeConfiguration"] = lambda payload: {"status": "Accepted"}
    result = await hub.services.call("ocpp", "update_password", {"charge_point_id": "CP-1"})
    assert result == {"status": "Accepted"}
    sent = await cp.wait_for_call("ChangeConfiguration")
    assert sent["key"] == "AuthorizationKey"
    value = sent["value"]
    assert len(value) <= 40
    password = bytes.fromhex(value)
    assert 16 <= len(password) <= 20
    await cp.close()
    again = await connect(url, password=password.decode())
    assert (await again.call("BootNotification", BOOT_16))["status"] == "Accepted"
    await again.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(url, password=PASSWORD)
    assert info.value.status == 401


async def test_update_password_needs_an_online_admitted_charger(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(profile_1())
    with pytest.raises(Exception, match="offline"):
        await hub.services.call("ocpp", "update_password", {"charge_point_id": "CP-1"})
    with pytest.raises(Exception, match=r"length|value"):
        await hub.services.call(
            "ocpp", "update_password", {"charge_point_id": "CP-1", "length": 41}
        )
    # Nothing changed: the configured password still opens.
    cp = await connect(ws_url(hub, "CP-1"), password=PASSWORD)
    assert (await cp.call("Heartbeat", {}))["currentTime"]


# A02 / A03: the station's certificate, signed by the hub --------------------------------


async def _signed_chain(
    hub: Hub, cp: Any, csr: str, certificate_type: str | None = "ChargingStationCertificate"
) -> tuple[dict[str, Any], list[x509.Certificate]]:
    payload: dict[str, Any] = {"csr": csr}
    if certificate_type is not None:
        payload["certificateType"] = certificate_type
    answer = await cp.call("SignCertificate", payload)
    assert answer["status"] == "Accepted"
    signed = await cp.wait_for_call("CertificateSigned")
    return signed, x509.load_pem_x509_certificates(signed["certificateChain"].encode())


async def test_tc_a_11_csms_update_certificate_by_request_of_csms(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """TriggerMessage SignChargingStationCertificate -> SignCertificate (Accepted) ->
    CertificateSigned with a chain of the hub's CA; the station reconnects with it."""
    hub = await ocpp_hub(profile_3(pki))
    url = ws_url(hub, "CP-1", scheme="wss")
    cp = await connect(
        url, protocol="ocpp2.0.1", ssl_context=client_context(pki, pki.clients["CP-1"])
    )
    result = await hub.services.call("ocpp", "renew_certificate", {"charge_point_id": "CP-1"})
    assert result == {"status": "Accepted"}
    trigger = await cp.wait_for_call("TriggerMessage")
    assert trigger == {"requestedMessage": "SignChargingStationCertificate"}
    csr, key = csr_for("CP-1")
    signed, chain = await _signed_chain(hub, cp, csr)
    assert signed["certificateType"] == "ChargingStationCertificate"
    leaf = chain[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert leaf.issuer == pki.ca_cert.subject
    leaf.verify_directly_issued_by(pki.ca_cert)
    # The station switches to the new certificate: the listener admits it.
    new_cert, new_key = pki.base / "cp1-renewed.pem", pki.base / "cp1-renewed.key"
    new_cert.write_text(signed["certificateChain"])
    new_key.write_bytes(_key_pem(key))
    await cp.close()
    renewed = await connect(
        url, protocol="ocpp2.0.1", ssl_context=client_context(pki, (new_cert, new_key))
    )
    assert (await renewed.call("BootNotification", BOOT_201))["status"] == "Accepted"


async def test_tc_a_14_csms_update_certificate_invalid_certificate(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """The station rejects the signed certificate: the hub records it and carries on."""
    hub = await ocpp_hub(profile_3(pki))
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"),
        protocol="ocpp2.0.1",
        ssl_context=client_context(pki, pki.clients["CP-1"]),
    )
    await hub.services.call("ocpp", "renew_certificate", {"charge_point_id": "CP-1"})
    assert (await cp.wait_for_call("TriggerMessage"))[
        "requestedMessage"
    ] == "SignChargingStationCertificate"
    cp.handlers["CertificateSigned"] = lambda payload: {"status": "Rejected"}
    csr, _ = csr_for("CP-1")
    await _signed_chain(hub, cp, csr)
    for _ in range(200):
        if security_log(hub).query(kind="ocpp_certificate_rejected"):
            break
        await asyncio.sleep(0.01)
    [event] = security_log(hub).query(kind="ocpp_certificate_rejected")
    assert event.charge_point_id == "CP-1"
    assert (await cp.call("Heartbeat", {}))["currentTime"]


async def test_a03_update_certificate_initiated_by_station(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, tmp_path: Path
) -> None:
    """A03: the station asks on its own; without a configured CA the hub makes one, keeps
    its key private and publishes its certificate for ca_certs."""
    hub = await ocpp_hub(profile_3(pki, ca=False))
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"),
        protocol="ocpp2.0.1",
        ssl_context=client_context(pki, pki.clients["CP-1"]),
    )
    csr, _ = csr_for("CP-1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _, chain = await _signed_chain(hub, cp, csr, certificate_type=None)
    ca = x509.load_pem_x509_certificate(read_text(Path(hub.path("ocpp_ca.pem"))).encode())
    chain[0].verify_directly_issued_by(ca)
    assert chain[1] == ca
    stored = Path(hub.path(".storage", "ocpp.certificate_authority"))
    assert "PRIVATE KEY" in read_text(stored)
    assert file_mode(stored) & 0o077 == 0


@pytest.mark.parametrize(
    ("cn", "key", "reason"),
    [
        ("CP-2", None, "commonName"),
        ("CP-1", "rsa1024", "RSA key of 1024 bits"),
        ("CP-1", "garbage", "PEM"),
    ],
)
async def test_a02_csr_refused(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, cn: str, key: str | None, reason: str
) -> None:
    """A CSR for another identity, with a weak key or unreadable: Rejected, a security
    event, nothing signed."""
    hub = await ocpp_hub(profile_3(pki))
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"),
        protocol="ocpp2.0.1",
        ssl_context=client_context(pki, pki.clients["CP-1"]),
    )
    if key == "garbage":
        csr = "-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----"
    else:
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024) if key else None
        csr, _ = csr_for(cn, weak)
    answer = await cp.call(
        "SignCertificate", {"csr": csr, "certificateType": "ChargingStationCertificate"}
    )
    assert answer["status"] == "Rejected"
    assert answer["statusInfo"]["reasonCode"] == "InvalidCSR"
    [event] = security_log(hub).query(kind="ocpp_bad_csr")
    assert reason in event.message
    await asyncio.sleep(0.05)
    assert "CertificateSigned" not in [action for action, _ in cp.received]


async def test_a02_external_signer(ocpp_hub: HubFactory, connect: Connect, pki: Pki) -> None:
    """Another integration signs instead of the hub's CA."""
    hub = await ocpp_hub(profile_3(pki))
    asked: list[tuple[str, str]] = []

    async def signer(cp_id: str, csr: str, certificate_type: str) -> str:
        asked.append((cp_id, certificate_type))
        return pki.clients["CP-1"][0].read_text()

    undo = register_certificate_signer(hub, signer)
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"),
        protocol="ocpp2.0.1",
        ssl_context=client_context(pki, pki.clients["CP-1"]),
    )
    csr, _ = csr_for("CP-1")
    signed, _ = await _signed_chain(hub, cp, csr)
    assert signed["certificateChain"] == pki.clients["CP-1"][0].read_text()
    assert asked == [("CP-1", "ChargingStationCertificate")]
    undo()


async def test_tc_074_csms_update_charge_point_certificate_16(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """1.6 whitepaper: ExtendedTriggerMessage SignChargePointCertificate -> SignCertificate
    -> CertificateSigned; the charge point reconnects with the new certificate."""
    hub = await ocpp_hub(profile_3(pki))
    url = ws_url(hub, "CP-1", scheme="wss")
    cp = await connect(url, ssl_context=client_context(pki, pki.clients["CP-1"]))
    result = await hub.services.call("ocpp", "renew_certificate", {"charge_point_id": "CP-1"})
    assert result == {"status": "Accepted"}
    trigger = await cp.wait_for_call("ExtendedTriggerMessage")
    assert trigger == {"requestedMessage": "SignChargePointCertificate"}
    csr, key = csr_for("CP-1")
    assert (await cp.call("SignCertificate", {"csr": csr}))["status"] == "Accepted"
    signed = await cp.wait_for_call("CertificateSigned")
    assert set(signed) == {"certificateChain"}
    new_cert, new_key = pki.base / "cp1-16.pem", pki.base / "cp1-16.key"
    new_cert.write_text(signed["certificateChain"])
    new_key.write_bytes(_key_pem(key))
    await cp.close()
    renewed = await connect(url, ssl_context=client_context(pki, (new_cert, new_key)))
    assert (await renewed.call("BootNotification", BOOT_16))["status"] == "Accepted"


async def test_extended_trigger_message_16(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(profile_1())
    cp = await connect(ws_url(hub, "CP-1"), password=PASSWORD)
    cp.handlers["ExtendedTriggerMessage"] = lambda payload: {"status": "Accepted"}
    result = await hub.services.call(
        "ocpp",
        "extended_trigger_message",
        {"charge_point_id": "CP-1", "requested_message": "StatusNotification", "connector_id": 1},
    )
    assert result == {"status": "Accepted"}
    assert await cp.wait_for_call("ExtendedTriggerMessage") == {
        "requestedMessage": "StatusNotification",
        "connectorId": 1,
    }
    with pytest.raises(Exception, match="requested_message"):
        await hub.services.call(
            "ocpp",
            "extended_trigger_message",
            {"charge_point_id": "CP-1", "requested_message": "NoSuchMessage"},
        )


# A04: security events -------------------------------------------------------------------


async def test_a04_security_event_notification(ocpp_hub: HubFactory, connect: Connect) -> None:
    """SecurityEventNotification is answered and kept in the security log, both versions."""
    hub = await ocpp_hub(profile_1())
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1", password=PASSWORD)
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    answer = await cp.call(
        "SecurityEventNotification",
        {"type": "TamperDetectionActivated", "timestamp": now, "techInfo": "door"},
    )
    assert answer == {}
    [event] = security_log(hub).query(kind="ocpp_charger_security_event")
    assert event.data["type"] == "TamperDetectionActivated"
    await cp.close()
    cp16 = await connect(ws_url(hub, "CP-1"), password=PASSWORD)
    assert (
        await cp16.call(
            "SecurityEventNotification", {"type": "InvalidFirmwareSignature", "timestamp": now}
        )
        == {}
    )
    assert len(security_log(hub).query(kind="ocpp_charger_security_event")) == 2


# TLS: RSA and ECDSA on one listener, OCPP's cipher suites, TLS 1.2 at least ------------


async def _handshake(port: int, pki: Pki, ciphers: str) -> tuple[str, x509.Certificate]:
    context = client_context(pki)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        cipher = ssl_object.cipher()[0]
        der = ssl_object.getpeercert(binary_form=True)
        return cipher, x509.load_der_x509_certificate(der)
    finally:
        writer.close()


async def test_tls_rsa_and_ecdsa_certificates_on_one_listener(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """Profile 2 with two server certificates: the suite the charger offers picks RSA or
    ECDSA; every suite OCPP lists is served; nothing older than TLS 1.2."""
    hub = await ocpp_hub(
        f"""
        listeners:
          - port: 0
            host: 127.0.0.1
            security_profile: 2
            certfile: [{pki.server_rsa[0]}, {pki.server_ec[0]}]
            keyfile: [{pki.server_rsa[1]}, {pki.server_ec[1]}]
        chargers:
          - id: CP-1
            password: {PASSWORD}
        """
    )
    port = hub.data[DATA_SYSTEM].listeners[0].port
    for suite, key_type in (
        ("ECDHE-ECDSA-AES128-GCM-SHA256", ec.EllipticCurvePublicKey),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", ec.EllipticCurvePublicKey),
        ("ECDHE-RSA-AES128-GCM-SHA256", rsa.RSAPublicKey),
        ("ECDHE-RSA-AES256-GCM-SHA384", rsa.RSAPublicKey),
        ("AES128-GCM-SHA256", rsa.RSAPublicKey),
        ("AES256-GCM-SHA384", rsa.RSAPublicKey),
    ):
        cipher, certificate = await _handshake(port, pki, suite)
        assert cipher == suite
        assert isinstance(certificate.public_key(), key_type)
    # A suite OCPP does not list (CBC) is not served.
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(port, pki, "ECDHE-RSA-AES128-SHA256")
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"), password=PASSWORD, ssl_context=client_context(pki)
    )
    assert (await cp.call("Heartbeat", {}))["currentTime"]


async def test_tls_listener_needs_a_key_per_certificate(
    ocpp_hub: HubFactory, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await ocpp_hub(
        f"""
        listeners:
          - port: 0
            host: 127.0.0.1
            security_profile: 2
            certfile: [{pki.server_rsa[0]}, {pki.server_ec[0]}]
            keyfile: {pki.server_rsa[1]}
        """
    )
    assert DATA_SYSTEM not in hub.data
    assert "keyfile: give one keyfile for each certfile" in caplog.text


async def test_a02_one_signing_at_a_time(ocpp_hub: HubFactory, connect: Connect, pki: Pki) -> None:
    """A charger that floods SignCertificate gets Rejected while one is being signed."""
    hub = await ocpp_hub(profile_3(pki))
    release = asyncio.Event()

    async def slow_signer(cp_id: str, csr: str, certificate_type: str) -> str:
        await release.wait()
        return pki.clients["CP-1"][0].read_text()

    undo = register_certificate_signer(hub, slow_signer)
    cp = await connect(
        ws_url(hub, "CP-1", scheme="wss"),
        protocol="ocpp2.0.1",
        ssl_context=client_context(pki, pki.clients["CP-1"]),
    )
    csr, _ = csr_for("CP-1")
    assert (await cp.call("SignCertificate", {"csr": csr}))["status"] == "Accepted"
    busy = await cp.call("SignCertificate", {"csr": csr})
    assert busy["status"] == "Rejected"
    assert busy["statusInfo"]["reasonCode"] == "Busy"
    release.set()
    assert (await cp.wait_for_call("CertificateSigned"))["certificateChain"]
    # Once sent, the next request is taken again.
    for _ in range(200):
        answer = await cp.call("SignCertificate", {"csr": csr})
        if answer["status"] == "Accepted":
            break
        await asyncio.sleep(0.01)
    assert answer["status"] == "Accepted"
    undo()


# A05: upgrade a station's security profile ----------------------------------------------


def profiles_1_and_2(pki: Pki) -> str:
    """A profile 1 and a profile 2 listener; CP-1 configured for profile 1."""
    return f"""
        listeners:
          - port: 0
            host: 127.0.0.1
            security_profile: 1
          - port: 0
            host: 127.0.0.1
            security_profile: 2
            certfile: {pki.server_ec[0]}
            keyfile: {pki.server_ec[1]}
        chargers:
          - id: CP-1
            name: Bay 1
            password: {PASSWORD}
            security_profile: 1
        """


async def _refused_on(connect: Connect, url: str, protocol: str, **kwargs: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(url, protocol=protocol, password=PASSWORD, **kwargs)
    return info.value.status


async def test_tc_a_19_csms_upgrade_security_profile(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, tmp_path: Path
) -> None:
    """A05: SetNetworkProfile with the next profile (2) in a free slot, SetVariables
    NetworkConfigurationPriority naming that slot first, Reset; the station reconnects on
    profile 2 and boots; from then on profile 1 is refused for it (after a restart too),
    profile 2 is accepted."""
    hub = await ocpp_hub(profiles_1_and_2(pki))
    plain = ws_url(hub, "CP-1")
    tls = ws_url(hub, "CP-1", index=1, scheme="wss")
    cp = await connect(plain, protocol="ocpp2.0.1", password=PASSWORD)
    assert (await cp.call("BootNotification", BOOT_201))["status"] == "Accepted"
    target = {"charge_point_id": "CP-1"}
    profile = {
        "configuration_slot": 1,
        "connection_data": {
            "ocpp_csms_url": tls,
            "security_profile": 2,
            "ocpp_interface": "Wired0",
            "message_timeout": 30,
        },
    }
    assert await hub.services.call("ocpp", "set_network_profile", {**target, **profile}) == {
        "status": "Accepted"
    }
    sent = (await cp.wait_for_call("SetNetworkProfile"))["connectionData"]
    assert sent["securityProfile"] == 2
    assert (sent["ocppTransport"], sent["ocppVersion"], sent["ocppCsmsUrl"]) == (
        "JSON",
        "OCPP20",
        tls,
    )
    assert sent["messageTimeout"] == 30
    assert sent["ocppInterface"] == "Wired0"
    cp.handlers["SetVariables"] = set_variables_answer("Accepted")
    priority = {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "NetworkConfigurationPriority"},
        "attributeValue": "1,0",
    }
    result = await hub.services.call("ocpp", "set_variables", {**target, "variables": [priority]})
    assert result["setVariableResult"][0]["attributeStatus"] == "Accepted"
    [data] = (await cp.wait_for_call("SetVariables"))["setVariableData"]
    assert data["component"] == {"name": "OCPPCommCtrlr"}
    assert data["variable"] == {"name": "NetworkConfigurationPriority"}
    assert "1" in data["attributeValue"].split(",")
    assert await hub.services.call("ocpp", "reset", {**target, "type": "Immediate"}) == {
        "status": "Accepted"
    }
    assert await cp.wait_for_call("Reset") == {"type": "Immediate"}
    await cp.close()
    # Until the station has come back on the new profile, the old one still opens: a
    # station that cannot connect with a new profile falls back to the one it had.
    fallback = await connect(plain, protocol="ocpp2.0.1", password=PASSWORD)
    assert (await fallback.call("Heartbeat", {}))["currentTime"]
    await fallback.close()
    # Step 7-9: reconnect on profile 2 and boot.
    context = client_context(pki)
    upgraded = await connect(tls, protocol="ocpp2.0.1", password=PASSWORD, ssl_context=context)
    assert (await upgraded.call("BootNotification", BOOT_201))["status"] == "Accepted"
    status = {"timestamp": "2026-12-06T12:00:00Z", "connectorStatus": "Available"}
    assert (
        await upgraded.call("StatusNotification", {**status, "evseId": 1, "connectorId": 1}) == {}
    )
    await upgraded.close()
    # Step 10-11: profile 1 is refused from now on, and the refusal is a security event.
    assert await _refused_on(connect, plain, "ocpp2.0.1") == 403
    kinds = [event.kind for event in security_log(hub).query(charge_point_id="CP-1")]
    assert "ocpp_security_profile_raised" in kinds
    assert "ocpp_security_profile_downgrade" in kinds
    # Step 12-13: profile 2 still opens.
    again = await connect(tls, protocol="ocpp2.0.1", password=PASSWORD, ssl_context=context)
    assert (await again.call("Heartbeat", {}))["currentTime"]
    await again.close()
    # The raised minimum is kept on disk: a restarted hub refuses profile 1 too.
    await hub.stop()
    hub = await ocpp_hub(profiles_1_and_2(pki), tmp_path)
    assert await _refused_on(connect, ws_url(hub, "CP-1"), "ocpp2.0.1") == 403
    # And the hub will not send the station back down either.
    downgrade = {**profile, "connection_data": {**profile["connection_data"]}}
    downgrade["connection_data"]["security_profile"] = 1
    back = await connect(
        ws_url(hub, "CP-1", index=1, scheme="wss"),
        protocol="ocpp2.0.1",
        password=PASSWORD,
        ssl_context=context,
    )
    assert (await back.call("BootNotification", BOOT_201))["status"] == "Accepted"
    with pytest.raises(ServiceValidationError, match=r"below the 2"):
        await hub.services.call("ocpp", "set_network_profile", {**target, **downgrade})


async def test_upgrade_not_taken_until_the_station_connects_with_it(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """A rejected SetNetworkProfile, or an accepted one the station never uses, leaves the
    minimum where it was."""
    hub = await ocpp_hub(profiles_1_and_2(pki))
    plain = ws_url(hub, "CP-1")
    cp = await connect(plain, protocol="ocpp2.0.1", password=PASSWORD)
    profile = {
        "charge_point_id": "CP-1",
        "configuration_slot": 1,
        "connection_data": {
            "ocpp_csms_url": ws_url(hub, "CP-1", index=1, scheme="wss"),
            "security_profile": 2,
            "ocpp_interface": "Wired0",
        },
    }
    cp.handlers["SetNetworkProfile"] = lambda payload: {"status": "Rejected"}
    assert await hub.services.call("ocpp", "set_network_profile", profile) == {"status": "Rejected"}
    system = hub.data[DATA_SYSTEM]
    assert system.profile_upgrades == {}
    cp.handlers.pop("SetNetworkProfile")
    await hub.services.call("ocpp", "set_network_profile", profile)
    assert system.profile_upgrades == {"CP-1": 2}
    await cp.close()
    # Reconnecting on the old profile does not complete the upgrade.
    again = await connect(plain, protocol="ocpp2.0.1", password=PASSWORD)
    assert (await again.call("Heartbeat", {}))["currentTime"]
    assert system.minimum_profile("CP-1") == 1


async def test_tc_083_csms_upgrade_charge_point_security_profile_16(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """1.6 security whitepaper: ChangeConfiguration SecurityProfile one higher, Reset Hard;
    the charge point boots on profile 2 and profile 1 is refused for it afterwards. A value
    below the current profile, or not a profile, is a 400 and nothing is sent."""
    hub = await ocpp_hub(profiles_1_and_2(pki))
    plain = ws_url(hub, "CP-1")
    cp = await connect(plain, password=PASSWORD)
    assert (await cp.call("BootNotification", BOOT_16))["status"] == "Accepted"
    target = {"charge_point_id": "CP-1"}
    for bad in ("0", "7", "two"):
        with pytest.raises(ServiceValidationError, match=r"SecurityProfile|below"):
            await hub.services.call(
                "ocpp", "change_configuration", {**target, "key": "SecurityProfile", "value": bad}
            )
    answer = await hub.services.call(
        "ocpp", "change_configuration", {**target, "key": "SecurityProfile", "value": 2}
    )
    assert answer == {"status": "Accepted"}
    assert await cp.wait_for_call("ChangeConfiguration") == {
        "key": "SecurityProfile",
        "value": "2",
    }
    assert [name for name, _ in cp.received] == ["ChangeConfiguration"]
    assert await hub.services.call("ocpp", "reset", {**target, "type": "Hard"}) == {
        "status": "Accepted"
    }
    assert await cp.wait_for_call("Reset") == {"type": "Hard"}
    await cp.close()
    tls = ws_url(hub, "CP-1", index=1, scheme="wss")
    upgraded = await connect(tls, password=PASSWORD, ssl_context=client_context(pki))
    assert (await upgraded.call("BootNotification", BOOT_16))["status"] == "Accepted"
    status = {"connectorId": 0, "errorCode": "NoError", "status": "Available"}
    assert await upgraded.call("StatusNotification", status) == {}
    await upgraded.close()
    assert await _refused_on(connect, plain, "ocpp1.6") == 403


@pytest.mark.parametrize("version", ["2.0.1", "1.6"])
async def test_simulator_takes_a_rotated_password(
    ocpp_hub: HubFactory, connect: Connect, version: str
) -> None:
    """A01 / 1.6 AuthorizationKey against the simulator: it accepts the new password,
    reconnects with it, and the hub retires the old one; the password is never read back."""
    from integrations.ocpp.simulator import SimulatedChargePoint

    hub = await ocpp_hub(profile_1())
    url = ws_url(hub, "CP-1")
    base = url.rsplit("/", 1)[0]
    async with SimulatedChargePoint(
        "CP-1", base, version=version, password=PASSWORD, speed=50
    ) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        online = asyncio.Event()
        hub.bus.listen(
            EVENT_CHARGER,
            lambda event: online.set() if event.data.get("kind") == "online" else None,
        )
        attempts = sim.connect_attempts
        result = await hub.services.call("ocpp", "update_password", {"charge_point_id": "CP-1"})
        assert result == {"status": "Accepted"}
        # It drops the connection and comes back with the new password.
        await asyncio.wait_for(online.wait(), 10)
        await asyncio.wait_for(sim.booted.wait(), 10)
        assert sim.connect_attempts == attempts + 1
        assert sim.refused == 0
        protocol = "ocpp2.0.1" if version == "2.0.1" else "ocpp1.6"
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await connect(url, protocol=protocol, password=PASSWORD)
        assert info.value.status == 401
        if version == "2.0.1":
            [new] = [
                item["attributeValue"]
                for action, payload in sim.received_calls
                if action == "SetVariables"
                for item in payload["setVariableData"]
                if item["variable"]["name"] == "BasicAuthPassword"
            ]
            read = await hub.services.call(
                "ocpp",
                "get_variables",
                {
                    "charge_point_id": "CP-1",
                    "variables": [
                        {
                            "component": {"name": "SecurityCtrlr"},
                            "variable": {"name": "BasicAuthPassword"},
                        }
                    ],
                },
            )
            assert new not in str(read)
        else:
            [new] = [
                payload["value"]
                for action, payload in sim.received_calls
                if action == "ChangeConfiguration" and payload["key"] == "AuthorizationKey"
            ]
            read = await hub.services.call(
                "ocpp",
                "get_configuration",
                {"charge_point_id": "CP-1", "key": ["AuthorizationKey"]},
            )
            assert new not in str(read)
            assert bytes.fromhex(new).decode() not in str(read)
