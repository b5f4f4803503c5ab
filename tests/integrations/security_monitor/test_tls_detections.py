"""TLS handshakes the hub sees fail, and revoked certificates, from real TLS clients."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.core import Hub
from hub.security import security_log
from integrations.alerts import alert_manager
from integrations.ocpp import DATA_SYSTEM
from tests.integrations.ocpp.conftest import Connect, HubFactory, ws_url
from tests.integrations.security_monitor.test_detections import Detections

UTC = datetime.UTC


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Ca:
    """A test CA that can issue certificates and revocation lists."""

    base: Path
    key: ec.EllipticCurvePrivateKey = field(init=False)
    cert: x509.Certificate = field(init=False)
    serials: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = datetime.datetime.now(UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("evhub revocation test CA"))
            .issuer_name(_name("evhub revocation test CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    @property
    def path(self) -> Path:
        return self.base / "ca.pem"

    def issue(self, cn: str, *, server: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(UTC)
        serial = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        self.serials[cn] = serial
        cert_path, key_path = self.base / f"{cn}.pem", self.base / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        return cert_path, key_path

    def write_crl(self, *revoked_cns: str) -> Path:
        now = datetime.datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - datetime.timedelta(minutes=1))
            .next_update(now + datetime.timedelta(days=7))
        )
        for cn in revoked_cns:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(self.serials[cn])
                .revocation_date(now - datetime.timedelta(seconds=30))
                .build()
            )
        crl = builder.sign(self.key, hashes.SHA256())
        path = self.base / "crl.pem"
        # Replaced in one step, as an operator's tool (or the hub's CA) would.
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        tmp.replace(path)
        return path

    def client_context(self, cn: str | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.path))
        if cn is not None:
            cert, key = self.base / f"{cn}.pem", self.base / f"{cn}.key"
            context.load_cert_chain(str(cert), str(key))
        return context


@pytest.fixture
def ca(tmp_path: Path) -> Ca:
    base = tmp_path / "pki"
    base.mkdir()
    authority = Ca(base)
    authority.issue("127.0.0.1", server=True)
    for cn in ("CP-1", "CP-2", "CP-9"):
        authority.issue(cn)
    return authority


def tls_listener(ca: Ca, profile: int, *more: str) -> str:
    """A listeners entry: TLS on a free loopback port with the CA's certificate for
    127.0.0.1, and the more keys given ("key: value")."""
    keys = [
        "port: 0",
        "host: 127.0.0.1",
        f"security_profile: {profile}",
        f"certfile: {ca.base / '127.0.0.1.pem'}",
        f"keyfile: {ca.base / '127.0.0.1.key'}",
        *more,
    ]
    return "  - " + "\n    ".join(keys) + "\n"


def listeners(ca: Ca, *, crl: bool, handshake_timeout: float = 10) -> str:
    crl_line = [f"crl_file: {ca.base / 'crl.pem'}"] if crl else []
    profile_3 = tls_listener(ca, 3, f"ca_certs: {ca.path}", *crl_line)
    return f"""
listeners:
{tls_listener(ca, 2)}{profile_3}handshake_timeout: {handshake_timeout}
chargers:
  - id: CP-1
    password: correct-horse-battery-1
    security_profile: 2
  - id: CP-2
    password: correct-horse-battery-2
    security_profile: 2
  - id: CP-9
"""


def port_of(hub: Hub, index: int) -> int:
    return int(ws_url(hub, "x", index).split(":")[2].split("/")[0])


def tls_events(hub: Hub, kind: str = "ocpp_tls_failure") -> list[dict[str, Any]]:
    return [event.as_dict() for event in security_log(hub).events if event.kind == kind]


async def until(hub: Hub, done: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        await hub.block_till_done()
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout} s")


def _handshake(port: int, context: ssl.SSLContext) -> BaseException | None:
    # A blocking client, as in a charger's firmware: a refusal goes out as a TLS alert.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: x\r\n\r\n")
                tls.recv(100)
        except (OSError, ssl.SSLError) as err:
            return err
    return None


async def handshake(port: int, context: ssl.SSLContext) -> BaseException | None:
    """Open a TLS connection and send a websocket upgrade; the client's error, if any."""
    return await asyncio.to_thread(_handshake, port, context)


async def test_handshake_failures_are_security_events_and_a_rate_alerts(
    ocpp_hub: HubFactory, ca: Ca
) -> None:
    hub = await ocpp_hub(listeners(ca, crl=False))
    seen = Detections(hub)
    profile2 = port_of(hub, 0)

    # A client that does not trust the hub's certificate refuses it with an alert.
    untrusting = ssl.create_default_context()
    assert await handshake(profile2, untrusting) is not None
    # A client offering only suites OCPP does not allow.
    weak = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    weak.load_verify_locations(cafile=str(ca.path))
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
    assert await handshake(profile2, weak) is not None
    # Plain HTTP (a charger set to ws:// on the wss port).
    reader, writer = await asyncio.open_connection("127.0.0.1", profile2)
    writer.write(b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed: no TLS, no answer
    writer.close()
    await until(hub, lambda: len(tls_events(hub)) >= 3)
    types = [event["data"]["type"] for event in tls_events(hub)]
    assert types == ["InvalidCsmsCertificate", "InvalidTLSCipherSuite", "PlainTextOnTlsPort"]
    assert {event["remote"] for event in tls_events(hub)} == {"127.0.0.1"}
    assert all(event["data"]["port"] == profile2 for event in tls_events(hub))
    # Three within five minutes from one address: the tls_failure rule's default.
    await until(hub, lambda: seen.of("tls_failure"))
    alert = await seen.alert("tls_failure", "address:127.0.0.1")
    assert alert["severity"] == "warning"

    # A good charger is unaffected (and its first bytes right after the handshake arrive).
    good = ca.client_context(None)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            ws_url(hub, "CP-1", 0, scheme="wss"),
            protocols=("ocpp1.6",),
            ssl=good,
            headers={
                "Authorization": aiohttp.BasicAuth("CP-1", "correct-horse-battery-1").encode()
            },
        ) as ws,
    ):
        await ws.send_str('[2,"1","Heartbeat",{}]')
        reply = await ws.receive_json(timeout=5)
        assert reply[0] == 3


async def test_a_missing_client_certificate_and_a_scanner(ocpp_hub: HubFactory, ca: Ca) -> None:
    hub = await ocpp_hub(listeners(ca, crl=False))
    profile3 = port_of(hub, 1)
    # A TCP connect that says nothing and leaves (a health check, a port scan): no event.
    with socket.create_connection(("127.0.0.1", profile3)):
        pass
    # (With TLS 1.3 the client learns of the refusal only when it reads.)
    await handshake(profile3, ca.client_context(None))
    await until(hub, lambda: tls_events(hub))
    [event] = tls_events(hub)
    assert event["data"]["type"] == "InvalidChargingStationCertificate"
    assert event["message"].endswith("no client certificate")


async def test_a_stalled_handshake_times_out_as_an_event(ocpp_hub: HubFactory, ca: Ca) -> None:
    hub = await ocpp_hub(listeners(ca, crl=False, handshake_timeout=0.5))
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(hub, 0))
    # The start of a TLS record, then nothing (slowloris on the handshake).
    writer.write(b"\x16\x03\x01")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the hub
    writer.close()
    await until(hub, lambda: tls_events(hub))
    assert tls_events(hub)[0]["data"]["type"] == "TlsHandshakeTimeout"


async def test_a_revoked_client_certificate_is_refused_and_alerts(
    ocpp_hub: HubFactory, ca: Ca, connect: Connect
) -> None:
    ca.write_crl("CP-2")
    hub = await ocpp_hub(listeners(ca, crl=True))
    seen = Detections(hub)
    await handshake(port_of(hub, 1), ca.client_context("CP-2"))
    await until(hub, lambda: tls_events(hub, "ocpp_certificate_revoked"))
    [event] = tls_events(hub, "ocpp_certificate_revoked")
    assert event["severity"] == "critical"
    assert event["data"]["type"] == "InvalidChargingStationCertificate"
    await until(hub, lambda: seen.of("certificate_revoked"))
    alert = await seen.alert("certificate_revoked", "127.0.0.1")
    assert alert["severity"] == "critical"
    # A certificate the list does not name still connects.
    cp = await connect(ws_url(hub, "CP-1", 1, scheme="wss"), ssl_context=ca.client_context("CP-1"))
    assert (await cp.call("Heartbeat", {}))["currentTime"]


async def test_a_new_crl_closes_the_revoked_chargers_connection(
    ocpp_hub: HubFactory, ca: Ca, connect: Connect
) -> None:
    ca.write_crl()
    hub = await ocpp_hub(listeners(ca, crl=True))
    seen = Detections(hub)
    one = await connect(ws_url(hub, "CP-1", 1, scheme="wss"), ssl_context=ca.client_context("CP-1"))
    nine = await connect(
        ws_url(hub, "CP-9", 1, scheme="wss"), ssl_context=ca.client_context("CP-9")
    )
    assert (await one.call("Heartbeat", {}))["currentTime"]
    assert (await nine.call("Heartbeat", {}))["currentTime"]

    ca.write_crl("CP-9")
    result = await hub.services.call("ocpp", "reload_tls", {})
    [_profile2, profile3] = result["listeners"]
    assert profile3["reloaded"] is True
    assert profile3["closed"] == ["CP-9"]
    await until(hub, lambda: nine.ws.closed)
    assert nine.ws.close_code == 1008
    await until(hub, lambda: seen.of("certificate_revoked"))
    [detection] = seen.of("certificate_revoked")
    assert detection["charge_point_id"] == "CP-9"
    # CP-1 stays connected; CP-9 cannot come back.
    assert (await one.call("Heartbeat", {}))["currentTime"]
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, OSError)):
        await connect(ws_url(hub, "CP-9", 1, scheme="wss"), ssl_context=ca.client_context("CP-9"))


async def test_a_broken_crl_keeps_the_old_one(
    ocpp_hub: HubFactory, ca: Ca, connect: Connect
) -> None:
    ca.write_crl()
    hub = await ocpp_hub(listeners(ca, crl=True))
    (ca.base / "crl.pem").write_text(
        "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n"
    )
    result = await hub.services.call("ocpp", "reload_tls", {})
    profile3 = result["listeners"][1]
    assert profile3["reloaded"] is False
    assert "could not be read" in profile3["error"]
    cp = await connect(ws_url(hub, "CP-1", 1, scheme="wss"), ssl_context=ca.client_context("CP-1"))
    assert (await cp.call("Heartbeat", {}))["currentTime"]


async def test_a_hub_certificate_on_the_crl_alerts(ocpp_hub: HubFactory, ca: Ca) -> None:
    ca.write_crl("127.0.0.1")
    hub = await ocpp_hub(listeners(ca, crl=True))

    def revoked_alerts() -> list[dict[str, Any]]:
        return [
            alert.as_dict()
            for alert in alert_manager(hub).open()
            if alert.key.startswith("security_monitor:certificate_revoked:")
        ]

    # Checked as the monitor sets up, with the expiry.
    await until(hub, revoked_alerts)
    [alert] = revoked_alerts()
    where = str(ca.base / "127.0.0.1.pem")
    assert (
        alert["key"] == f"security_monitor:certificate_revoked:{where}:{ca.serials['127.0.0.1']:x}"
    )
    assert alert["severity"] == "critical"
    assert "CN=127.0.0.1" in alert["message"]
    assert "is on its issuer's revocation list" in alert["message"]


async def test_crl_file_needs_profile_3(
    ocpp_hub: HubFactory, ca: Ca, caplog: pytest.LogCaptureFixture
) -> None:
    section = "listeners:\n" + tls_listener(ca, 2, f"crl_file: {ca.base / 'crl.pem'}")
    hub = await ocpp_hub(section)
    assert DATA_SYSTEM not in hub.data
    assert "crl_file checks client certificates: only security_profile 3 has them" in caplog.text
