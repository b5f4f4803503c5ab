"""Advanced security (A, M): password rotation, certificates the hub signs, installs and
revokes, certificate status, and the TLS of profiles 2 and 3.

- A01 (1.6 whitepaper: AuthorizationKey): ``ocpp.update_password`` makes, sends and rotates
  a charger's Basic auth password (security_passwords.py; the listeners ask it first).
- A02/A03 (1.6: ExtendedTriggerMessage SignChargePointCertificate, SignCertificate,
  CertificateSigned): ``ocpp.renew_certificate`` asks for a CSR; a SignCertificate is
  checked (security_ca.check_csr), answered, then signed by the hub's CA or a registered
  signer and sent back with CertificateSigned.
- M03-M05 (1.6: InstallCertificate, GetInstalledCertificateIds, DeleteCertificate):
  ``ocpp.install_certificate``, ``ocpp.get_installed_certificate_ids``,
  ``ocpp.delete_certificate``.
- M06: GetCertificateStatus is an OCSP request passed on to the responder the charger
  names (or the configured one); Failed when it cannot be reached or answers nonsense.
- A04: SecurityEventNotification is the station's own (station/common.py).
"""

from __future__ import annotations

import base64
import datetime
import logging
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import voluptuous as vol
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from hub.auth import Role
from hub.core import Context, HubKey, ServiceCall
from hub.exceptions import ServiceValidationError
from hub.security import Severity
from integrations.ocpp.connection import OcppCallError
from integrations.ocpp.features.base import (
    TARGET,
    MessageHandler,
    register_station_services,
    station_for,
)
from integrations.ocpp.features.security_ca import (
    DATA_SIGNER,
    HASH_ALGORITHMS,
    CaProvider,
    CsrError,
    check_csr,
    hash_data,
    load_certificates,
)
from integrations.ocpp.features.security_passwords import (
    PASSWORD_LENGTH_16,
    PASSWORD_LENGTH_201,
    PasswordRotation,
    new_password,
)

if TYPE_CHECKING:
    from hub.core import Hub
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

CONF_CERTIFICATES: Final = "certificates"
CONF_CA_CERTFILE: Final = "ca_certfile"
CONF_CA_KEYFILE: Final = "ca_keyfile"
CONF_VALIDITY_DAYS: Final = "validity_days"
CONF_OCSP_RESPONDER: Final = "ocsp_responder"
CONF_OCSP_PASS_THROUGH: Final = "ocsp_pass_through"
CONF_OCSP_TIMEOUT: Final = "ocsp_timeout"

SEC_BAD_CSR: Final = "ocpp_bad_csr"
SEC_CERTIFICATE_REJECTED: Final = "ocpp_certificate_rejected"
SEC_PASSWORD_ROTATED: Final = "ocpp_password_rotated"

# The largest OCSP response that fits ocspResult (5500 base64 characters).
MAX_OCSP_RESPONSE: Final = 5500 * 3 // 4
MAX_CHAIN: Final = 10000

_CERTIFICATES_SCHEMA = vol.Schema(
    {
        # A CA of the operator's (PEM, unencrypted key); default: one the hub makes.
        vol.Inclusive(CONF_CA_CERTFILE, "ca"): str,
        vol.Inclusive(CONF_CA_KEYFILE, "ca"): str,
        vol.Optional(CONF_VALIDITY_DAYS, default=365): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=3650)
        ),
        # Where GetCertificateStatus goes instead of the responder the charger names.
        vol.Optional(CONF_OCSP_RESPONDER): vol.All(str, vol.Length(max=512), vol.Url()),
        # Whether the responderURL a charger names may be asked at all.
        vol.Optional(CONF_OCSP_PASS_THROUGH, default=False): bool,
        vol.Optional(CONF_OCSP_TIMEOUT, default=5.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.5, max=30)
        ),
    }
)
CONFIG: dict[Any, Any] = {vol.Optional(CONF_CERTIFICATES, default={}): _CERTIFICATES_SCHEMA}

# Certificate types, 2.0.1 words -> 1.6 words (None: 1.6 has no such type).
_TYPES_16: Final[dict[str, str | None]] = {
    "CSMSRootCertificate": "CentralSystemRootCertificate",
    "ManufacturerRootCertificate": "ManufacturerRootCertificate",
    "V2GRootCertificate": None,
    "MORootCertificate": None,
    "V2GCertificateChain": None,
}
_FROM_16: Final = {"CentralSystemRootCertificate": "CSMSRootCertificate"}
INSTALL_TYPES: Final = [
    "CSMSRootCertificate",
    "ManufacturerRootCertificate",
    "V2GRootCertificate",
    "MORootCertificate",
    "CentralSystemRootCertificate",
]
GET_TYPES: Final = [*INSTALL_TYPES, "V2GCertificateChain"]
EXTENDED_TRIGGERS: Final = [
    "BootNotification",
    "LogStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "SignChargePointCertificate",
    "StatusNotification",
]


class Security:
    """The feature's state: the CA, the password rotation, the signings under way."""

    def __init__(self, hub: Hub, system: CentralSystem, config: dict[str, Any]) -> None:
        self.hub = hub
        self.system = system
        self.config = config
        self.ca = CaProvider(
            hub,
            config.get(CONF_CA_CERTFILE),
            config.get(CONF_CA_KEYFILE),
            config[CONF_VALIDITY_DAYS],
        )
        self.passwords = PasswordRotation(hub)
        # Charge points whose certificate is being signed: one at a time each.
        self.signing: set[str] = set()


DATA_SECURITY: Final[HubKey[Security]] = HubKey("ocpp.security")


def _is_201(station: Station) -> bool:
    return station.version is not None and station.version.value == "ocpp2.0.1"


def _refusal(station: Station, status: str, reason: str, info: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": status}
    if _is_201(station):
        answer["statusInfo"] = {"reasonCode": reason, "additionalInfo": info[:512]}
    return answer


# Inbound -------------------------------------------------------------------------------


async def on_sign_certificate(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    """A02/A03: check the CSR, answer, then have it signed and send CertificateSigned."""
    security = station.hub.data[DATA_SECURITY]
    certificate_type = payload.get("certificateType")
    signer = station.hub.data.get(DATA_SIGNER)
    if certificate_type == "V2GCertificate" and signer is None:
        return _refusal(station, "Rejected", "NotSupported", "no ISO 15118 (V2G) CA here")
    if station.cp_id in security.signing:
        return _refusal(station, "Rejected", "Busy", "a certificate is being signed already")
    try:
        checked = await station.hub.run_in_executor(check_csr, payload["csr"], station.cp_id)
    except CsrError as err:
        station.system.security_event(
            SEC_BAD_CSR,
            f"{station.cp_id} sent a certificate signing request that is refused: {err}",
            station.connection,
            {"reason": str(err)},
            cp_id=station.cp_id,
        )
        return _refusal(station, "Rejected", "InvalidCSR", f"the CSR is refused: {err}")
    security.signing.add(station.cp_id)
    station.hub.create_task(
        _sign_and_send(security, station, payload["csr"], checked, certificate_type, ctx),
        f"sign the certificate of {station.cp_id}",
    )
    return {"status": "Accepted"}


async def _sign_and_send(
    security: Security,
    station: Station,
    csr_pem: str,
    checked: Any,
    certificate_type: str | None,
    ctx: Context,
) -> None:
    hub = station.hub
    try:
        signer = hub.data.get(DATA_SIGNER)
        if signer is not None:
            chain = await signer(
                station.cp_id, csr_pem, certificate_type or "ChargingStationCertificate"
            )
        else:
            now = datetime.datetime.fromtimestamp(station.now(), datetime.UTC)
            ca = await security.ca.get(now)
            chain = await hub.run_in_executor(ca.sign, checked, now)
        if len(chain) > MAX_CHAIN:
            raise CsrError(f"the certificate chain has {len(chain)} characters, over {MAX_CHAIN}")
        payload: dict[str, Any] = {"certificateChain": chain}
        if certificate_type is not None and _is_201(station):
            payload["certificateType"] = certificate_type
        answer = await station.call("CertificateSigned", payload)
    except Exception as err:  # a signer of another integration may raise anything
        _LOGGER.warning("%s: the certificate could not be signed and sent: %s", station.cp_id, err)
        hub.bus.fire(
            "ocpp_certificate_signed",
            {"charge_point_id": station.cp_id, "status": "Failed", "error": str(err)[:200]},
            ctx,
        )
        return
    finally:
        security.signing.discard(station.cp_id)
    status = answer.get("status") if isinstance(answer, dict) else None
    hub.bus.fire(
        "ocpp_certificate_signed", {"charge_point_id": station.cp_id, "status": status}, ctx
    )
    if status != "Accepted":
        station.system.security_event(
            SEC_CERTIFICATE_REJECTED,
            f"{station.cp_id} rejected the certificate the hub signed for it",
            station.connection,
            {"status_info": answer.get("statusInfo") if isinstance(answer, dict) else None},
            cp_id=station.cp_id,
        )


async def on_get_certificate_status(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    """M06: pass the OCSP request on; Failed when no good answer comes."""
    security = station.hub.data[DATA_SECURITY]
    config = security.config
    data = payload["ocspRequestData"]
    url = config.get(CONF_OCSP_RESPONDER)
    if url is None and config[CONF_OCSP_PASS_THROUGH]:
        url = data["responderURL"]
    if not url or not url.lower().startswith(("http://", "https://")):
        return _failed("NoResponder", "no OCSP responder may be asked")
    try:
        request = _ocsp_request(data)
    except ValueError as err:
        return _failed("InvalidRequest", str(err))
    try:
        timeout = aiohttp.ClientTimeout(total=config[CONF_OCSP_TIMEOUT])
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                url,
                data=request,
                headers={"Content-Type": "application/ocsp-request"},
                allow_redirects=False,
            ) as response,
        ):
            if response.status != 200:
                return _failed("ResponderError", f"the responder answered HTTP {response.status}")
            body = await response.content.read(MAX_OCSP_RESPONSE + 1)
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        return _failed("Unreachable", f"the responder cannot be reached: {type(err).__name__}")
    if len(body) > MAX_OCSP_RESPONSE:
        return _failed("TooLarge", "the OCSP response does not fit ocspResult")
    try:
        parsed = ocsp.load_der_ocsp_response(body)
    except ValueError:
        return _failed("InvalidResponse", "the responder's answer is not an OCSP response")
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return _failed("ResponderError", f"OCSP status {parsed.response_status.name}")
    return {"status": "Accepted", "ocspResult": base64.b64encode(body).decode()}


def _failed(reason: str, info: str) -> dict[str, Any]:
    return {"status": "Failed", "statusInfo": {"reasonCode": reason, "additionalInfo": info}}


_OCSP_HASHES: Final[dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


def _ocsp_request(data: dict[str, Any]) -> bytes:
    """An OCSP request (DER) for the certificate OCPP's OCSPRequestDataType names."""
    algorithm = _OCSP_HASHES[data["hashAlgorithm"]]()
    try:
        name_hash = bytes.fromhex(data["issuerNameHash"])
        key_hash = bytes.fromhex(data["issuerKeyHash"])
        serial = int(data["serialNumber"], 16)
    except ValueError:
        raise ValueError("issuerNameHash, issuerKeyHash and serialNumber must be hex") from None
    if len(name_hash) != algorithm.digest_size or len(key_hash) != algorithm.digest_size:
        raise ValueError(f"the hashes are not {data['hashAlgorithm']} digests")
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name_hash, key_hash, serial, algorithm
    )
    return builder.build().public_bytes(serialization.Encoding.DER)


HANDLERS_16: dict[str, MessageHandler] = {"SignCertificate": on_sign_certificate}
HANDLERS_201: dict[str, MessageHandler] = {
    "SignCertificate": on_sign_certificate,
    "GetCertificateStatus": on_get_certificate_status,
}

# Services ------------------------------------------------------------------------------


def _pem_certificate(value: Any) -> str:
    """A PEM certificate (one), within InstallCertificate's 5500 characters."""
    text = vol.All(str, vol.Length(min=1, max=5500))(value)
    try:
        found = load_certificates(text)
    except ValueError as err:
        raise vol.Invalid(str(err)) from None
    if len(found) != 1:
        raise vol.Invalid("give exactly one certificate")
    return str(text)


_HEX_HASH = vol.All(str, vol.Match(r"^[0-9a-fA-F]{1,128}$", msg="a hash is 1 to 128 hex digits"))
_HASH_DATA = vol.Schema(
    {
        vol.Required("hash_algorithm"): vol.In(list(HASH_ALGORITHMS)),
        vol.Required("issuer_name_hash"): _HEX_HASH,
        vol.Required("issuer_key_hash"): _HEX_HASH,
        vol.Required("serial_number"): vol.All(
            str, vol.Match(r"^[0-9a-fA-F]{1,40}$", msg="a serial number is 1 to 40 hex digits")
        ),
    }
)


def _ocpp_hash_data(data: dict[str, str]) -> dict[str, str]:
    return {
        "hashAlgorithm": data["hash_algorithm"],
        "issuerNameHash": data["issuer_name_hash"].lower(),
        "issuerKeyHash": data["issuer_key_hash"].lower(),
        "serialNumber": data["serial_number"].lower(),
    }


def _type_for(station: Station, certificate_type: str) -> str:
    """A certificate type in the words of the station's version (400 if it has none)."""
    if _is_201(station):
        return _FROM_16.get(certificate_type, certificate_type)
    if certificate_type in _FROM_16:
        return certificate_type
    mapped = _TYPES_16.get(certificate_type)
    if mapped is None:
        raise ServiceValidationError(
            f"OCPP 1.6 has no certificate type {certificate_type} (station {station.cp_id})"
        )
    return mapped


def _online(station: Station) -> None:
    if not station.online:
        raise OcppCallError(f"charger {station.cp_id} is offline")


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the security services and the password check of the listeners."""
    hub = ctx.hub
    security = Security(hub, system, ctx.config[CONF_CERTIFICATES])
    await security.passwords.load()
    hub.data[DATA_SECURITY] = security
    system.password_check = security.passwords.check

    def undo() -> None:
        if system.password_check == security.passwords.check:
            system.password_check = None
        if hub.data.get(DATA_SECURITY) is security:
            hub.data.pop(DATA_SECURITY)

    ctx.on_unload(undo)

    async def update_password(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        known = system.chargers.get(station.cp_id)
        if known is None:
            raise ServiceValidationError(f"{station.cp_id} is not an admitted charger")
        _online(station)
        v201 = _is_201(station)
        password = new_password(
            call.data.get("length") or (PASSWORD_LENGTH_201 if v201 else PASSWORD_LENGTH_16)
        )
        action: str
        payload: dict[str, Any]
        if v201:
            forms = [password]
            action, payload = (
                "SetVariables",
                {
                    "setVariableData": [
                        {
                            "attributeType": "Actual",
                            "attributeValue": password,
                            "component": {"name": "SecurityCtrlr"},
                            "variable": {"name": "BasicAuthPassword"},
                        }
                    ]
                },
            )
        else:
            # The whitepaper's AuthorizationKey is hex; some chargers use the text as is.
            key = password.encode().hex()
            forms = [password, key]
            action, payload = ("ChangeConfiguration", {"key": "AuthorizationKey", "value": key})
        offered = security.passwords.offer(station.cp_id, known.password_hash, forms)
        # On disk before the charger hears it: a hub killed after sending a password it had
        # not written would lock the charger out.
        await security.passwords.flush()
        try:
            answer = await station.call(action, payload)
        except OcppCallError as err:
            if err.code is not None:
                security.passwords.withdraw(station.cp_id, offered)
            # Else no answer: the charger may have taken it; both stay valid until it is used.
            raise
        except Exception:
            security.passwords.withdraw(station.cp_id, offered)  # never sent
            raise
        if v201:
            results = answer.get("setVariableResult") or [{}]
            status = results[0].get("attributeStatus")
        else:
            status = answer.get("status")
        if status not in ("Accepted", "RebootRequired"):
            security.passwords.withdraw(station.cp_id, offered)
        else:
            system.security_event(
                SEC_PASSWORD_ROTATED,
                f"a new Basic auth password was set on {station.cp_id}",
                station.connection,
                {"status": status},
                cp_id=station.cp_id,
                severity=Severity.INFO,
            )
        await security.passwords.flush()
        return {"status": status}

    async def renew_certificate(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        if _is_201(station):
            answer = await station.call(
                "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
            )
        else:
            answer = await station.call(
                "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
            )
        return {"status": answer.get("status")}

    async def extended_trigger_message(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        if _is_201(station):
            raise ServiceValidationError(
                f"{station.cp_id} speaks OCPP 2.0.1: use ocpp.trigger_message"
            )
        payload: dict[str, Any] = {"requestedMessage": call.data["requested_message"]}
        if "connector_id" in call.data:
            payload["connectorId"] = call.data["connector_id"]
        answer = await station.call("ExtendedTriggerMessage", payload)
        return {"status": answer.get("status")}

    async def install_certificate(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        certificate_type = _type_for(station, call.data["certificate_type"])
        answer = await station.call(
            "InstallCertificate",
            {"certificateType": certificate_type, "certificate": call.data["certificate"]},
        )
        result = {"status": answer.get("status")}
        if "statusInfo" in answer:
            result["status_info"] = answer["statusInfo"]
        return result

    async def get_installed_certificate_ids(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        wanted: list[str] = call.data.get("certificate_type") or []
        found: list[dict[str, Any]] = []
        if _is_201(station):
            payload: dict[str, Any] = {}
            if wanted:
                payload["certificateType"] = sorted({_type_for(station, t) for t in wanted})
            answer = await station.call("GetInstalledCertificateIds", payload)
            status = answer.get("status")
            for chain in answer.get("certificateHashDataChain", []):
                found.append(
                    {
                        "certificate_type": chain["certificateType"],
                        "certificate_hash_data": chain["certificateHashData"],
                        "child_certificate_hash_data": chain.get("childCertificateHashData", []),
                    }
                )
            return {"status": status, "certificates": found}
        types = sorted({_type_for(station, t) for t in wanted}) or [
            "CentralSystemRootCertificate",
            "ManufacturerRootCertificate",
        ]
        statuses = []
        for certificate_type in types:
            answer = await station.call(
                "GetInstalledCertificateIds", {"certificateType": certificate_type}
            )
            statuses.append(answer.get("status"))
            for item in answer.get("certificateHashData", []):
                found.append(
                    {
                        "certificate_type": _FROM_16.get(certificate_type, certificate_type),
                        "certificate_hash_data": item,
                    }
                )
        status = "Accepted" if "Accepted" in statuses else "NotFound"
        return {"status": status, "certificates": found}

    async def delete_certificate(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        if "certificate_hash_data" in call.data:
            data = _ocpp_hash_data(call.data["certificate_hash_data"])
        else:
            certificate = load_certificates(call.data["certificate"])[0]
            try:
                data = hash_data(certificate, algorithm=call.data["hash_algorithm"])
            except ValueError as err:
                raise ServiceValidationError(f"{err}; give certificate_hash_data instead") from None
        answer = await station.call("DeleteCertificate", {"certificateHashData": data})
        return {"status": answer.get("status"), "certificate_hash_data": data}

    def one_of_delete(value: dict[str, Any]) -> dict[str, Any]:
        if ("certificate" in value) == ("certificate_hash_data" in value):
            raise vol.Invalid("give either certificate or certificate_hash_data")
        return value

    register_station_services(
        ctx,
        {
            "update_password": (
                update_password,
                {vol.Optional("length"): vol.All(int, vol.Range(min=16, max=40))},
            ),
            "renew_certificate": (renew_certificate, {}),
            "extended_trigger_message": (
                extended_trigger_message,
                {
                    vol.Required("requested_message"): vol.In(EXTENDED_TRIGGERS),
                    vol.Optional("connector_id"): vol.All(int, vol.Range(min=0, max=1000)),
                },
            ),
            "install_certificate": (
                install_certificate,
                {
                    vol.Required("certificate_type"): vol.In(INSTALL_TYPES),
                    vol.Required("certificate"): _pem_certificate,
                },
            ),
        },
        role=Role.ADMIN,
    )
    register_station_services(
        ctx,
        {
            "get_installed_certificate_ids": (
                get_installed_certificate_ids,
                {
                    vol.Optional("certificate_type"): vol.All(
                        [vol.In(GET_TYPES)], vol.Length(min=1, max=len(GET_TYPES))
                    )
                },
            ),
        },
        role=Role.VIEWER,
    )
    ctx.register_service(
        "delete_certificate",
        delete_certificate,
        vol.Schema(
            vol.All(
                {
                    **TARGET,
                    vol.Optional("certificate_hash_data"): _HASH_DATA,
                    vol.Optional("certificate"): _pem_certificate,
                    vol.Optional("hash_algorithm", default="SHA256"): vol.In(list(HASH_ALGORITHMS)),
                },
                one_of_delete,
            )
        ),
        role=Role.ADMIN,
    )
