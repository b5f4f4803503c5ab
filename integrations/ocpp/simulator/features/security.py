"""The simulated charger's side of the hub's security feature (features/security.py).

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint.

The simulated charger keeps a certificate store (root certificates installed by the central
system, its own certificate once signed): InstallCertificate, GetInstalledCertificateIds and
DeleteCertificate work on it; asked for a new certificate (1.6 ExtendedTriggerMessage
SignChargePointCertificate, 2.0.1 TriggerMessage SignChargingStationCertificate) it makes a
key and sends SignCertificate, and accepts a CertificateSigned whose leaf carries that key
and its identity.

Its Basic auth password can be rotated (A01; 1.6 security whitepaper): SetVariables
SecurityCtrlr.BasicAuthPassword (16 to 40 characters) or ChangeConfiguration
AuthorizationKey (the password hex-encoded, 16 to 20 bytes) is accepted, and the charger
then reconnects with the new password. The password is write-only: never reported, never
read back.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v16 import call as v16_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call_result as v16_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.features.security_ca import hash_data
from integrations.ocpp.simulator.link import on_call
from integrations.ocpp.simulator.model import VERSION_201, Setting

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint

# Root certificates the simulated store holds at most (InstallCertificate answers Failed).
MAX_ROOTS: Final = 10
# The write-only password variable of each version, as the device model names it.
PASSWORD_KEY_16: Final = "AuthorizationKey"
PASSWORD_KEY_201: Final = "SecurityCtrlr/BasicAuthPassword"
PASSWORD_KEYS: Final = frozenset({PASSWORD_KEY_16, PASSWORD_KEY_201})
_TYPES_16: Final = {"CentralSystemRootCertificate", "ManufacturerRootCertificate"}


def password_settings(version: str) -> dict[str, Setting]:
    """The password variable of the device model: its value stays empty (write-only)."""
    key = PASSWORD_KEY_201 if version == VERSION_201 else PASSWORD_KEY_16
    return {key: Setting("")}


def parse_password(key: str, value: str) -> str | None:
    """The new Basic auth password a SetVariables / ChangeConfiguration carries, or None
    if it is not one: 2.0.1 takes 16 to 40 printable characters, 1.6 the hex form of 16
    to 20 bytes (at most 40 hex digits) that are text."""
    if key == PASSWORD_KEY_201:
        if 16 <= len(value) <= 40 and value.isprintable() and value.isascii():
            return value
        return None
    if len(value) > 40 or len(value) % 2:
        return None
    try:
        raw = bytes.fromhex(value)
        password = raw.decode()
    except ValueError:
        return None
    if not 16 <= len(raw) <= 20 or not password.isprintable():
        return None
    return password


@dataclass
class CertificateStore:
    """One simulated charger's certificates."""

    # (certificate type, certificate)
    roots: list[tuple[str, x509.Certificate]] = field(default_factory=list)
    pending_key: ec.EllipticCurvePrivateKey | None = None
    own: x509.Certificate | None = None


_STORES: weakref.WeakKeyDictionary[SimulatedChargePoint, CertificateStore] = (
    weakref.WeakKeyDictionary()
)


def store_of(sim: SimulatedChargePoint) -> CertificateStore:
    """The certificate store of a simulated charger (it outlives its links)."""
    store = _STORES.get(sim)
    if store is None:
        store = _STORES[sim] = CertificateStore()
    return store


def _snake(data: dict[str, str]) -> dict[str, str]:
    return {
        "hash_algorithm": data["hashAlgorithm"],
        "issuer_name_hash": data["issuerNameHash"],
        "issuer_key_hash": data["issuerKeyHash"],
        "serial_number": data["serialNumber"],
    }


def _install(sim: SimulatedChargePoint, certificate_type: str, pem: str) -> str:
    store = store_of(sim)
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return "Rejected"
    if certificate.issuer != certificate.subject:
        return "Rejected"  # a root certificate is self-signed
    if len(store.roots) >= MAX_ROOTS:
        return "Failed"
    store.roots.append((certificate_type, certificate))
    return "Accepted"


def _matching(sim: SimulatedChargePoint, wanted: dict[str, str]) -> int | None:
    for index, (_, certificate) in enumerate(store_of(sim).roots):
        algorithm = wanted.get("hash_algorithm", "SHA256")
        if algorithm not in ("SHA256", "SHA384", "SHA512"):
            return None
        data = _snake(hash_data(certificate, algorithm=algorithm))
        if all(data[key].lower() == str(wanted.get(key, "")).lower() for key in data):
            return index
    return None


def _delete(sim: SimulatedChargePoint, wanted: dict[str, str]) -> str:
    store = store_of(sim)
    if store.own is not None:
        own = _snake(hash_data(store.own, algorithm=wanted.get("hash_algorithm", "SHA256")))
        if own["serial_number"] == str(wanted.get("serial_number", "")).lower():
            return "Failed"  # its own certificate is never deleted (M04.FR.06)
    index = _matching(sim, wanted)
    if index is None:
        return "NotFound"
    del store.roots[index]
    return "Accepted"


def _new_csr(sim: SimulatedChargePoint) -> str:
    store = store_of(sim)
    key = ec.generate_private_key(ec.SECP256R1())
    store.pending_key = key
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, sim.id),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evhub simulator"),
                ]
            )
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _signed(sim: SimulatedChargePoint, chain: str) -> str:
    """Accept a signed chain whose leaf is for the pending key and this identity."""
    store = store_of(sim)
    key = store.pending_key
    try:
        leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    except (ValueError, IndexError):
        return "Rejected"
    if key is None:
        return "Rejected"
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    same_key = leaf.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) == key.public_key().public_bytes(serialization.Encoding.DER, public)
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not same_key or not names or names[0].value != sim.id:
        return "Rejected"
    store.own = leaf
    store.pending_key = None
    return "Accepted"


class Security16:
    """OCPP 1.6 (the security whitepaper's messages)."""

    sim: SimulatedChargePoint
    # The ocpp ChargePoint's and the link's, later in the MRO.
    call: Callable[..., Awaitable[Any]]
    on_trigger_message: Callable[..., Any]

    async def send_sign_certificate(self) -> None:
        """Send SignCertificate with a CSR for a new key."""
        await self.call(v16_call.SignCertificate(csr=_new_csr(self.sim)), suppress=False)

    @on_call("ExtendedTriggerMessage")
    def on_extended_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **kwargs: Any
    ) -> Any:
        if requested_message == "SignChargePointCertificate":
            self.sim.later(self.send_sign_certificate)
            return v16_result.ExtendedTriggerMessage(status="Accepted")
        if requested_message == "LogStatusNotification":
            requested_message = "DiagnosticsStatusNotification"
        answer = self.on_trigger_message(
            requested_message=requested_message, connector_id=connector_id
        )
        return v16_result.ExtendedTriggerMessage(status=answer.status)

    @on_call("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> Any:
        return v16_result.CertificateSigned(status=_signed(self.sim, certificate_chain))

    @on_call("InstallCertificate")
    def on_install_certificate(self, certificate_type: str, certificate: str, **kwargs: Any) -> Any:
        return v16_result.InstallCertificate(
            status=_install(self.sim, certificate_type, certificate)
        )

    @on_call("GetInstalledCertificateIds")
    def on_get_installed_certificate_ids(self, certificate_type: str, **kwargs: Any) -> Any:
        found = [
            _snake(hash_data(certificate))
            for kind, certificate in store_of(self.sim).roots
            if kind == certificate_type
        ]
        if not found:
            return v16_result.GetInstalledCertificateIds(status="NotFound")
        return v16_result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data=found)

    @on_call("DeleteCertificate")
    def on_delete_certificate(self, certificate_hash_data: dict[str, str], **kwargs: Any) -> Any:
        return v16_result.DeleteCertificate(status=_delete(self.sim, certificate_hash_data))


class Security201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint
    call: Callable[..., Awaitable[Any]]

    async def send_sign_certificate(self) -> None:
        """Send SignCertificate with a CSR for a new key (TriggerMessage follow-up)."""
        await self.call(
            v201_call.SignCertificate(
                csr=_new_csr(self.sim), certificate_type="ChargingStationCertificate"
            ),
            suppress=False,
        )

    @on_call("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> Any:
        return v201_result.CertificateSigned(status=_signed(self.sim, certificate_chain))

    @on_call("InstallCertificate")
    def on_install_certificate(self, certificate_type: str, certificate: str, **kwargs: Any) -> Any:
        if certificate_type in _TYPES_16:
            return v201_result.InstallCertificate(status="Rejected")
        return v201_result.InstallCertificate(
            status=_install(self.sim, certificate_type, certificate)
        )

    @on_call("GetInstalledCertificateIds")
    def on_get_installed_certificate_ids(
        self, certificate_type: list[str] | None = None, **kwargs: Any
    ) -> Any:
        found = [
            {"certificate_type": kind, "certificate_hash_data": _snake(hash_data(certificate))}
            for kind, certificate in store_of(self.sim).roots
            if not certificate_type or kind in certificate_type
        ]
        if not found:
            return v201_result.GetInstalledCertificateIds(status="NotFound")
        return v201_result.GetInstalledCertificateIds(
            status="Accepted", certificate_hash_data_chain=found
        )

    @on_call("DeleteCertificate")
    def on_delete_certificate(self, certificate_hash_data: dict[str, str], **kwargs: Any) -> Any:
        return v201_result.DeleteCertificate(status=_delete(self.sim, certificate_hash_data))
