"""OCA test cases of block M (certificate management), CSMS side, and the OCPP 1.6 security
whitepaper equivalents: install, list and delete certificates on a charger; certificate
status (OCSP) for a charger. Each test plays the charging station over a real websocket."""

from __future__ import annotations

import asyncio
import base64
import datetime
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from hub.core import Hub
from hub.testing import Connect, RawChargePoint
from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp.features.security_ca import hash_data
from integrations.ocpp.simulator.charger import SimulatedChargePoint
from tests.integrations.ocpp.conftest import HubFactory, ws_url
from tests.integrations.ocpp.test_tc_security import (
    PASSWORD,
    Pki,
    make_pki,
    profile_1,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki-m"))


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


# The charger names the OCSP responder the hub asks (off by default).
PASS_THROUGH = "certificates:\n  ocsp_pass_through: true\n"


async def _station(
    ocpp_hub: HubFactory, connect: Connect, version: str, extra: str = ""
) -> tuple[Hub, Any]:
    hub = await ocpp_hub(profile_1() + extra)
    cp = await connect(ws_url(hub, "CP-1"), protocol=version, password=PASSWORD)
    return hub, cp


async def _call(hub: Hub, service: str, data: dict[str, Any]) -> Any:
    return await hub.services.call("ocpp", service, {"charge_point_id": "CP-1", **data})


# M05: install a CA certificate ----------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "certificate_type"),
    [
        ("TC_M_01_CSMS", "CSMSRootCertificate"),
        ("TC_M_02_CSMS", "ManufacturerRootCertificate"),
    ],
)
async def test_tc_m_01_02_csms_install_ca_certificate(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, case: str, certificate_type: str
) -> None:
    """TC_M_01_CSMS / TC_M_02_CSMS: InstallCertificateRequest with the type and the PEM."""
    hub, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    result = await _call(
        hub,
        "install_certificate",
        {"certificate_type": certificate_type, "certificate": _pem(pki.ca_cert)},
    )
    assert result == {"status": "Accepted"}
    sent = await cp.wait_for_call("InstallCertificate")
    assert sent == {"certificateType": certificate_type, "certificate": _pem(pki.ca_cert)}


async def test_tc_m_05_csms_install_ca_certificate_failed(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    hub, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    cp.handlers["InstallCertificate"] = lambda payload: {
        "status": "Failed",
        "statusInfo": {"reasonCode": "CertStoreFull"},
    }
    result = await _call(
        hub,
        "install_certificate",
        {"certificate_type": "CSMSRootCertificate", "certificate": _pem(pki.ca_cert)},
    )
    assert result == {"status": "Failed", "status_info": {"reasonCode": "CertStoreFull"}}
    assert (await cp.wait_for_call("InstallCertificate"))["certificateType"] == (
        "CSMSRootCertificate"
    )


@pytest.mark.parametrize(
    ("case", "certificate_type", "sent_type"),
    [
        ("TC_075_1_CSMS", "ManufacturerRootCertificate", "ManufacturerRootCertificate"),
        ("TC_075_2_CSMS", "CSMSRootCertificate", "CentralSystemRootCertificate"),
    ],
)
async def test_tc_075_1_2_csms_install_certificate_16(
    ocpp_hub: HubFactory,
    connect: Connect,
    pki: Pki,
    case: str,
    certificate_type: str,
    sent_type: str,
) -> None:
    """1.6 whitepaper: InstallCertificate, then GetInstalledCertificateIds of that type
    lists it."""
    hub, cp = await _station(ocpp_hub, connect, "ocpp1.6")
    result = await _call(
        hub,
        "install_certificate",
        {"certificate_type": certificate_type, "certificate": _pem(pki.ca_cert)},
    )
    assert result == {"status": "Accepted"}
    assert await cp.wait_for_call("InstallCertificate") == {
        "certificateType": sent_type,
        "certificate": _pem(pki.ca_cert),
    }
    data = hash_data(pki.ca_cert)
    cp.handlers["GetInstalledCertificateIds"] = lambda payload: {
        "status": "Accepted",
        "certificateHashData": [data],
    }
    listed = await _call(hub, "get_installed_certificate_ids", {"certificate_type": [sent_type]})
    assert await cp.wait_for_call("GetInstalledCertificateIds") == {"certificateType": sent_type}
    assert listed["status"] == "Accepted"
    assert listed["certificates"][0]["certificate_hash_data"] == data


# M03: list installed certificates -------------------------------------------------------


async def test_tc_m_18_csms_get_installed_certificates_all_types(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """GetInstalledCertificateIdsRequest without certificateType; the chain is returned."""
    hub, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    chain = [
        {"certificateType": "CSMSRootCertificate", "certificateHashData": hash_data(pki.ca_cert)}
    ]
    cp.handlers["GetInstalledCertificateIds"] = lambda payload: {
        "status": "Accepted",
        "certificateHashDataChain": chain,
    }
    result = await _call(hub, "get_installed_certificate_ids", {})
    assert await cp.wait_for_call("GetInstalledCertificateIds") == {}
    assert result["status"] == "Accepted"
    assert result["certificates"] == [
        {
            "certificate_type": "CSMSRootCertificate",
            "certificate_hash_data": hash_data(pki.ca_cert),
            "child_certificate_hash_data": [],
        }
    ]


async def test_tc_m_19_csms_get_installed_certificates_none_found(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    cp.handlers["GetInstalledCertificateIds"] = lambda payload: {"status": "NotFound"}
    result = await _call(
        hub, "get_installed_certificate_ids", {"certificate_type": ["ManufacturerRootCertificate"]}
    )
    assert await cp.wait_for_call("GetInstalledCertificateIds") == {
        "certificateType": ["ManufacturerRootCertificate"]
    }
    assert result == {"status": "NotFound", "certificates": []}


# M04: delete a certificate ----------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
async def test_tc_m_20_csms_delete_certificate(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki, algorithm: str
) -> None:
    """GetInstalledCertificateIds (CSMSRootCertificate), then DeleteCertificate with the
    hash data returned, for each hash algorithm."""
    hub, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    data = hash_data(pki.ca_cert, algorithm=algorithm)
    cp.handlers["GetInstalledCertificateIds"] = lambda payload: {
        "status": "Accepted",
        "certificateHashDataChain": [
            {"certificateType": "CSMSRootCertificate", "certificateHashData": data}
        ],
    }
    listed = await _call(
        hub, "get_installed_certificate_ids", {"certificate_type": ["CSMSRootCertificate"]}
    )
    assert (await cp.wait_for_call("GetInstalledCertificateIds"))["certificateType"] == [
        "CSMSRootCertificate"
    ]
    found = listed["certificates"][0]["certificate_hash_data"]
    result = await _call(
        hub,
        "delete_certificate",
        {
            "certificate_hash_data": {
                "hash_algorithm": found["hashAlgorithm"],
                "issuer_name_hash": found["issuerNameHash"],
                "issuer_key_hash": found["issuerKeyHash"],
                "serial_number": found["serialNumber"],
            }
        },
    )
    assert result["status"] == "Accepted"
    assert await cp.wait_for_call("DeleteCertificate") == {"certificateHashData": data}


async def test_tc_m_21_csms_delete_certificate_failed(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """The station fails to delete: the status comes back; the hash data was computed from
    the certificate by the hub (issuer name, issuer key, serial)."""
    hub, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    cp.handlers["DeleteCertificate"] = lambda payload: {"status": "Failed"}
    result = await _call(hub, "delete_certificate", {"certificate": _pem(pki.ca_cert)})
    assert result["status"] == "Failed"
    sent = (await cp.wait_for_call("DeleteCertificate"))["certificateHashData"]
    ca = pki.ca_cert
    assert sent["hashAlgorithm"] == "SHA256"
    assert sent["serialNumber"] == format(ca.serial_number, "x")
    assert sent["issuerNameHash"] == hashes_hex(ca.issuer.public_bytes())
    point = ca.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert sent["issuerKeyHash"] == hashes_hex(point)


def hashes_hex(data: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize().hex()


async def test_tc_076_csms_delete_certificate_16(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    """1.6: GetInstalledCertificateIds (both types when none is named), DeleteCertificate."""
    hub, cp = await _station(ocpp_hub, connect, "ocpp1.6")
    data = hash_data(pki.ca_cert)

    def listed(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["certificateType"] == "CentralSystemRootCertificate":
            return {"status": "Accepted", "certificateHashData": [data]}
        return {"status": "NotFound"}

    cp.handlers["GetInstalledCertificateIds"] = listed
    result = await _call(hub, "get_installed_certificate_ids", {})
    asked = [p["certificateType"] for a, p in cp.received if a == "GetInstalledCertificateIds"]
    assert sorted(asked) == ["CentralSystemRootCertificate", "ManufacturerRootCertificate"]
    assert result == {
        "status": "Accepted",
        "certificates": [
            {"certificate_type": "CSMSRootCertificate", "certificate_hash_data": data}
        ],
    }
    deleted = await _call(hub, "delete_certificate", {"certificate": _pem(pki.ca_cert)})
    assert deleted["status"] == "Accepted"
    assert await cp.wait_for_call("DeleteCertificate") == {"certificateHashData": data}


# Hostile input: the API answers 400, nothing is sent -------------------------------------


@pytest.mark.parametrize(
    ("service", "data", "match"),
    [
        ("install_certificate", {"certificate_type": "CSMSRootCertificate"}, "certificate"),
        (
            "install_certificate",
            {"certificate_type": "CSMSRootCertificate", "certificate": "not a certificate"},
            "PEM",
        ),
        (
            "install_certificate",
            {"certificate_type": "NoSuchType", "certificate": "x"},
            "certificate_type",
        ),
        ("delete_certificate", {}, "either"),
        (
            "delete_certificate",
            {
                "certificate_hash_data": {
                    "hash_algorithm": "MD5",
                    "issuer_name_hash": "00",
                    "issuer_key_hash": "00",
                    "serial_number": "1",
                }
            },
            "hash_algorithm",
        ),
        (
            "delete_certificate",
            {
                "certificate_hash_data": {
                    "hash_algorithm": "SHA256",
                    "issuer_name_hash": "zz",
                    "issuer_key_hash": "00",
                    "serial_number": "1" * 41,
                }
            },
            "hex",
        ),
        ("get_installed_certificate_ids", {"certificate_type": []}, "certificate_type"),
    ],
)
async def test_certificate_services_refuse_bad_input(
    ocpp_hub: HubFactory, connect: Connect, service: str, data: dict[str, Any], match: str
) -> None:
    hub, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    with pytest.raises(Exception, match=match) as info:
        await _call(hub, service, data)
    assert getattr(info.value, "http_status", 400) == 400
    assert cp.received == []


async def test_v2g_types_do_not_exist_in_16(
    ocpp_hub: HubFactory, connect: Connect, pki: Pki
) -> None:
    hub, cp = await _station(ocpp_hub, connect, "ocpp1.6")
    with pytest.raises(Exception, match=r"1\.6 has no certificate type") as info:
        await _call(
            hub,
            "install_certificate",
            {"certificate_type": "V2GRootCertificate", "certificate": _pem(pki.ca_cert)},
        )
    assert getattr(info.value, "http_status", None) == 400
    assert cp.received == []


# M06: certificate status through OCSP ---------------------------------------------------


@pytest.fixture
async def responder(pki: Pki) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A local OCSP responder for the test CA: GOOD for the CP-1 certificate."""
    leaf = x509.load_pem_x509_certificate(pki.clients["CP-1"][0].read_bytes())
    requests: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        requests.append(body)
        if request.path == "/garbage":
            return web.Response(body=b"no OCSP here")
        asked = ocsp.load_der_ocsp_request(body)
        assert asked.serial_number == leaf.serial_number
        now = datetime.datetime.now(datetime.UTC)
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=leaf,
                issuer=pki.ca_cert,
                algorithm=hashes.SHA256(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now + datetime.timedelta(hours=1),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, pki.ca_cert)
            .sign(pki.ca_private, hashes.SHA256())
        )
        return web.Response(
            body=response.public_bytes(serialization.Encoding.DER),
            content_type="application/ocsp-response",
        )

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", requests
    await runner.cleanup()


def _ocsp_data(pki: Pki, url: str) -> dict[str, Any]:
    leaf = x509.load_pem_x509_certificate(pki.clients["CP-1"][0].read_bytes())
    data = hash_data(leaf, issuer=pki.ca_cert)
    return {**data, "responderURL": url}


async def _status(cp: RawChargePoint, data: dict[str, Any]) -> dict[str, Any]:
    return await cp.call("GetCertificateStatus", {"ocspRequestData": data})


async def test_m06_get_certificate_status_ocsp(
    ocpp_hub: HubFactory,
    connect: Connect,
    pki: Pki,
    responder: tuple[str, list[bytes]],
) -> None:
    """The hub passes the OCSP request on to the responder the station names and returns
    its DER response, base64-encoded."""
    url, requests = responder
    _, cp = await _station(ocpp_hub, connect, "ocpp2.0.1", PASS_THROUGH)
    answer = await _status(cp, _ocsp_data(pki, url + "/ocsp"))
    assert answer["status"] == "Accepted"
    parsed = ocsp.load_der_ocsp_response(base64.b64decode(answer["ocspResult"]))
    assert parsed.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
    [request] = requests
    asked = ocsp.load_der_ocsp_request(request)
    leaf = x509.load_pem_x509_certificate(pki.clients["CP-1"][0].read_bytes())
    assert asked.serial_number == leaf.serial_number


async def test_m06_get_certificate_status_failed(
    ocpp_hub: HubFactory,
    connect: Connect,
    pki: Pki,
    responder: tuple[str, list[bytes]],
) -> None:
    """Unreachable responder, an answer that is no OCSP response, malformed hashes, a
    scheme other than HTTP: Failed, never a crash."""
    url, _ = responder
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    _, cp = await _station(ocpp_hub, connect, "ocpp2.0.1", PASS_THROUGH)
    for data, reason in (
        (_ocsp_data(pki, f"http://127.0.0.1:{closed_port}/"), "Unreachable"),
        (_ocsp_data(pki, url + "/garbage"), "InvalidResponse"),
        ({**_ocsp_data(pki, url), "issuerNameHash": "abcd"}, "InvalidRequest"),
        ({**_ocsp_data(pki, url), "serialNumber": "xyz"}, "InvalidRequest"),
        (_ocsp_data(pki, "file:///etc/passwd"), "NoResponder"),
    ):
        answer = await _status(cp, data)
        assert answer["status"] == "Failed", data
        assert answer["statusInfo"]["reasonCode"] == reason
        assert "ocspResult" not in answer


async def test_m06_no_pass_through_unless_configured(
    ocpp_hub: HubFactory,
    connect: Connect,
    pki: Pki,
    responder: tuple[str, list[bytes]],
) -> None:
    """By default the hub asks no responder a charger names: a charger must not make the
    hub send requests to any address it likes. Failed, and nothing reaches the responder."""
    url, requests = responder
    _, cp = await _station(ocpp_hub, connect, "ocpp2.0.1")
    answer = await _status(cp, _ocsp_data(pki, url + "/ocsp"))
    assert answer["status"] == "Failed"
    assert answer["statusInfo"]["reasonCode"] == "NoResponder"
    assert requests == []


async def test_m06_configured_responder_wins(
    ocpp_hub: HubFactory,
    connect: Connect,
    pki: Pki,
    responder: tuple[str, list[bytes]],
    tmp_path: Path,
) -> None:
    """A configured responder is asked instead of the URL the station names."""
    url, requests = responder
    hub = await ocpp_hub(
        profile_1() + f"certificates:\n  ocsp_responder: {url}/configured\n",
    )
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1", password=PASSWORD)
    answer = await _status(cp, _ocsp_data(pki, "http://198.51.100.1/never"))
    assert answer["status"] == "Accepted"
    assert len(requests) == 1


def test_hash_data_of_an_ec_key_matches_ocsp(pki: Pki) -> None:
    """issuerNameHash / issuerKeyHash are what an OCSP CertID holds (RFC 6960)."""
    leaf = x509.load_pem_x509_certificate(pki.clients["CP-1"][0].read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, pki.ca_cert, hashes.SHA256()).build()
    data = hash_data(leaf, issuer=pki.ca_cert)
    assert data["issuerNameHash"] == request.issuer_name_hash.hex()
    assert data["issuerKeyHash"] == request.issuer_key_hash.hex()
    assert data["serialNumber"] == format(leaf.serial_number, "x")


# The simulator's side: `evhub simulate` shows every step against the hub -----------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_simulator_certificate_lifecycle(
    ocpp_hub: HubFactory, pki: Pki, version: str
) -> None:
    """A simulated charger installs, lists and deletes a root, and gets its certificate
    renewed by the hub's CA."""
    hub = await ocpp_hub(
        "listeners:\n  - port: 0\n    host: 127.0.0.1\n    security_profile: 0\n"
        "chargers:\n  - id: SIM-1\n"
    )
    system = hub.data[DATA_SYSTEM]
    url = f"ws://127.0.0.1:{system.listeners[0].port}{system.listeners[0].path}"
    signed: list[dict[str, Any]] = []
    hub.bus.listen("ocpp_certificate_signed", lambda event: signed.append(event.data))
    async with SimulatedChargePoint("SIM-1", url, version=version, speed=50) as sim:
        await asyncio.wait_for(sim.booted.wait(), 10)
        target = {"charge_point_id": "SIM-1"}
        root = _pem(pki.ca_cert)
        installed = await hub.services.call(
            "ocpp",
            "install_certificate",
            {**target, "certificate_type": "CSMSRootCertificate", "certificate": root},
        )
        assert installed["status"] == "Accepted"
        listed = await hub.services.call("ocpp", "get_installed_certificate_ids", target)
        assert listed["status"] == "Accepted"
        [entry] = listed["certificates"]
        assert entry["certificate_type"] == "CSMSRootCertificate"
        assert entry["certificate_hash_data"] == hash_data(pki.ca_cert)
        deleted = await hub.services.call(
            "ocpp", "delete_certificate", {**target, "certificate": root}
        )
        assert deleted["status"] == "Accepted"
        again = await hub.services.call(
            "ocpp", "delete_certificate", {**target, "certificate": root}
        )
        assert again["status"] == "NotFound"
        renewed = await hub.services.call("ocpp", "renew_certificate", target)
        assert renewed == {"status": "Accepted"}
        for _ in range(500):
            if signed:
                break
            await asyncio.sleep(0.01)
        assert signed == [{"charge_point_id": "SIM-1", "status": "Accepted"}]
