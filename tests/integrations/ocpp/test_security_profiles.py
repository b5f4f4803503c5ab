"""OCPP security profiles 1-3 and admission of unknown chargers, over real (TLS) sockets."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.security import security_log
from integrations.ocpp import DATA_SYSTEM
from tests.integrations.ocpp.conftest import Connect, HubFactory, wait_state, ws_url

PASSWORD = "correct-horse-battery-1"


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    cn: str,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
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
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA, a server certificate for 127.0.0.1 and client certificates."""
    base = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("evhub test CA"))
        .issuer_name(_name("evhub test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca = base / "ca.pem"
    ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_cert, server_key = _issue(ca_key, ca_cert.subject, "127.0.0.1", server=True)
    server_cert_path, server_key_path = base / "server.pem", base / "server.key"
    server_cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, server_key_path)
    clients = {}
    for cn in ("CP-1", "CP-2"):
        cert, key = _issue(ca_key, ca_cert.subject, cn, server=False)
        cert_path, key_path = base / f"{cn}.pem", base / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        clients[cn] = (cert_path, key_path)
    return Pki(ca, server_cert_path, server_key_path, clients)


def client_context(pki: Pki, cn: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cn is not None:
        cert, key = pki.clients[cn]
        context.load_cert_chain(str(cert), str(key))
    return context


CHARGERS = f"""
chargers:
  - id: CP-1
    name: Bay 1
    password: {PASSWORD}
  - id: CP-2
    name: Bay 2
    password: {PASSWORD}
"""


async def test_profile_1_basic_auth(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(
        "listeners:\n  - port: 0\n    host: 127.0.0.1\n    security_profile: 1\n" + CHARGERS
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(ws_url(hub, "CP-1"))
    assert info.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(ws_url(hub, "CP-1"), password="wrong-password-1234567")
    assert info.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError):
        # CP-2's password is right, but not for the id CP-1.
        await connect(ws_url(hub, "CP-1"), password=PASSWORD, user="CP-2")
    cp = await connect(ws_url(hub, "CP-1"), password=PASSWORD)
    assert (await cp.call("Heartbeat", {}))["currentTime"]
    kinds = [e.kind for e in security_log(hub).query(charge_point_id="CP-1")]
    assert kinds == ["ocpp_no_credentials", "ocpp_bad_password", "ocpp_bad_password"]
    # The password is stored hashed, never in clear.
    stored = hub.data[DATA_SYSTEM].chargers["CP-1"].password_hash
    assert PASSWORD not in stored
    assert stored.startswith("sha256$")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
async def test_profile_2_basic_over_tls(ocpp_hub: HubFactory, connect: Connect, pki: Pki) -> None:
    hub = await ocpp_hub(
        f"""
        listeners:
          - port: 0
            host: 127.0.0.1
            security_profile: 2
            certfile: {pki.server_cert}
            keyfile: {pki.server_key}
        """
        + CHARGERS
    )
    url = ws_url(hub, "CP-1", scheme="wss")
    cp = await connect(url, password=PASSWORD, ssl_context=client_context(pki))
    assert (await cp.call("Heartbeat", {}))["currentTime"]
    old = client_context(pki)
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises(aiohttp.ClientError):
        await connect(url, password=PASSWORD, ssl_context=old)


async def test_profile_3_mutual_tls(ocpp_hub: HubFactory, connect: Connect, pki: Pki) -> None:
    hub = await ocpp_hub(
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
          - id: CP-2
            name: Bay 2
        """
    )
    url = ws_url(hub, "CP-1", scheme="wss")
    cp = await connect(url, ssl_context=client_context(pki, "CP-1"))
    assert (await cp.call("Heartbeat", {}))["currentTime"]
    await wait_state(hub, "sensor.bay_1_connectivity", "online")
    # CP-2's certificate presented for CP-1's id.
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(url, ssl_context=client_context(pki, "CP-2"))
    assert info.value.status == 403
    # No client certificate: the TLS handshake itself fails.
    with pytest.raises(aiohttp.ClientError):
        await connect(url, ssl_context=client_context(pki))
    events = security_log(hub).query(kind="ocpp_bad_certificate")
    assert events
    assert events[0].data["cn"] == "CP-2"


async def test_pending_charger_is_approved(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(
        "listeners:\n  - port: 0\n    host: 127.0.0.1\n    security_profile: 1\n"
        "unknown_chargers: pending\n"
    )
    cp = await connect(ws_url(hub, "NEW-7"), password="new-charger-key-123")
    boot = {"chargePointVendor": "ACME", "chargePointModel": "W1"}
    assert (await cp.call("BootNotification", boot))["status"] == "Pending"
    assert hub.data[DATA_SYSTEM].pending() == ["NEW-7"]
    await wait_state(hub, "sensor.new_7_connectivity", "pending")
    cp.handlers["TriggerMessage"] = lambda payload: {"status": "Accepted"}
    await hub.services.call("ocpp", "approve_charger", {"charge_point_id": "NEW-7"})
    assert (await cp.wait_for_call("TriggerMessage"))["requestedMessage"] == "BootNotification"
    assert (await cp.call("BootNotification", boot))["status"] == "Accepted"
    await wait_state(hub, "sensor.new_7_connectivity", "online")
    # The key it used while pending is now its password.
    await cp.close()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await connect(ws_url(hub, "NEW-7"), password="another-key-1234567")
    again = await connect(ws_url(hub, "NEW-7"), password="new-charger-key-123")
    assert (await again.call("BootNotification", boot))["status"] == "Accepted"


async def test_rejected_pending_charger_stays_out(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(
        "listeners:\n  - port: 0\n    host: 127.0.0.1\n    security_profile: 0\n"
        "unknown_chargers: pending\n"
    )
    cp = await connect(ws_url(hub, "ROGUE"))
    assert (await cp.call("BootNotification", {"chargePointVendor": "X", "chargePointModel": "Y"}))[
        "status"
    ] == "Pending"
    await hub.services.call("ocpp", "reject_charger", {"charge_point_id": "ROGUE"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connect(ws_url(hub, "ROGUE"))
    assert info.value.status == 403


async def test_accept_policy_admits_unknown(ocpp_hub: HubFactory, connect: Connect) -> None:
    hub = await ocpp_hub(
        "listeners:\n  - port: 0\n    host: 127.0.0.1\n    security_profile: 0\n"
        "unknown_chargers: accept\n"
    )
    cp = await connect(ws_url(hub, "ANY-1"))
    assert (await cp.call("BootNotification", {"chargePointVendor": "X", "chargePointModel": "Y"}))[
        "status"
    ] == "Accepted"
