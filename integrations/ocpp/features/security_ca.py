"""Certificates for OCPP's advanced security: the hub's certificate authority, the checks a
charger's certificate signing request must pass, and OCPP's CertificateHashDataType.

The CA signs the Charging Station (1.6: Charge Point) certificates of use cases A02/A03 (1.6
security whitepaper: SignCertificate / CertificateSigned). It is the one configured
(``certificates: ca_certfile / ca_keyfile``) or, at first use, one the hub makes: its key is
kept in ``.storage`` with private permissions, its certificate also written to
``ocpp_ca.pem`` in the config directory, for the listeners' ``ca_certs`` (profile 3).
Another integration may take over signing (a company CA, a cloud PKI) through
``register_certificate_signer``.

Everything here is synchronous CPU work on small inputs: callers run it in the executor.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.core import Hub, HubKey
from hub.storage import Store

CA_STORE_KEY: Final = "ocpp.certificate_authority"
CA_PUBLIC_FILE: Final = "ocpp_ca.pem"
CA_COMMON_NAME: Final = "evhub OCPP CA"
# Keys a charger certificate may carry (OCPP 2.0.1 Part 2 A00.FR.3xx and the 1.6 security
# whitepaper: RSA/DSA at least 2048 bits, elliptic curves at least 224 bits).
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
MIN_EC_BITS: Final = 224
HASH_ALGORITHMS: Final = {
    "SHA256": hashlib.sha256,
    "SHA384": hashlib.sha384,
    "SHA512": hashlib.sha512,
}

# An external signer: (charge point id, CSR as PEM, certificate type) -> the chain as PEM.
CertificateSigner = Callable[[str, str, str], Awaitable[str]]
DATA_SIGNER: Final[HubKey[CertificateSigner]] = HubKey("ocpp.certificate_signer")


def register_certificate_signer(hub: Hub, signer: CertificateSigner) -> Callable[[], None]:
    """Let another integration sign charger certificates instead of the hub's own CA.

    Returns the undo; only one signer at a time.
    """
    if DATA_SIGNER in hub.data:
        raise ValueError("a certificate signer is already registered")
    hub.data[DATA_SIGNER] = signer

    def undo() -> None:
        if hub.data.get(DATA_SIGNER) is signer:
            hub.data.pop(DATA_SIGNER)

    return undo


class CsrError(ValueError):
    """A certificate signing request the hub refuses to sign."""


@dataclass(frozen=True, slots=True)
class CheckedCsr:
    """A CSR that passed the checks."""

    csr: x509.CertificateSigningRequest
    common_name: str


def check_csr(pem: str, cp_id: str) -> CheckedCsr:
    """Parse and check a charger's CSR: well formed, self-signed, a strong key, and its
    subject's commonName the charge point's identity (the listeners of profile 3 admit a
    client certificate whose CN is the id in the URL, and only it)."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except (ValueError, TypeError):
        raise CsrError("not a PEM-encoded PKCS#10 request") from None
    try:
        if not csr.is_signature_valid:
            raise CsrError("its signature does not verify")
        key = csr.public_key()
    except (ValueError, InvalidSignature):
        raise CsrError("its key or signature cannot be read") from None
    check_key(key)
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise CsrError("its subject must hold exactly one commonName")
    common_name = str(names[0].value)
    if common_name != cp_id:
        raise CsrError(f"its commonName {common_name[:48]!r} is not the charge point id")
    return CheckedCsr(csr, common_name)


def check_key(key: Any) -> None:
    """Refuse keys weaker than OCPP allows."""
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise CsrError(f"an RSA key of {key.key_size} bits (needs {MIN_RSA_BITS} or more)")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            raise CsrError(f"an EC key of {key.curve.key_size} bits (needs {MIN_EC_BITS} or more)")
    elif not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        raise CsrError(f"a key of an unsupported type ({type(key).__name__})")


def serial_hex(serial: int) -> str:
    """A serial number as OCPP writes it: hexadecimal, no 0x, no leading zeroes."""
    return format(serial, "x")


def key_bits(key: Any) -> bytes:
    """The bytes of a public key's subjectPublicKey BIT STRING (what OCSP hashes)."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise ValueError(f"unsupported key type {type(key).__name__}")


def hash_data(
    certificate: x509.Certificate,
    issuer: x509.Certificate | None = None,
    algorithm: str = "SHA256",
) -> dict[str, str]:
    """OCPP's CertificateHashDataType of a certificate: hashes of its issuer's name (DER)
    and public key, and its serial number. Without ``issuer`` it must be self-signed."""
    if issuer is None:
        if certificate.issuer != certificate.subject:
            raise ValueError("the certificate is not self-signed: its issuer is needed")
        issuer = certificate
    digest = HASH_ALGORITHMS[algorithm]
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": digest(certificate.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": digest(key_bits(issuer.public_key())).hexdigest(),
        "serialNumber": serial_hex(certificate.serial_number),
    }


def load_certificates(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM text (a chain), or ValueError."""
    try:
        found = x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, TypeError):
        raise ValueError("not a PEM-encoded X.509 certificate") from None
    return found


class CertificateAuthority:
    """A CA key and certificate that sign charger certificates."""

    def __init__(self, certificate: x509.Certificate, key: Any, validity_days: int) -> None:
        self.certificate = certificate
        self.key = key
        self.validity_days = validity_days

    @property
    def pem(self) -> str:
        """The CA certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, checked: CheckedCsr, now: datetime.datetime) -> str:
        """Issue a client certificate for a checked CSR; return leaf and CA chain as PEM."""
        csr = checked.csr
        ca_not_after = self.certificate.not_valid_after_utc
        not_after = min(now + datetime.timedelta(days=self.validity_days), ca_not_after)
        if not_after <= now:
            raise CsrError("the CA certificate has expired")
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(csr.public_key(), rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=isinstance(csr.public_key(), ec.EllipticCurvePublicKey),
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        leaf = builder.sign(self.key, _signing_hash(self.key))
        return leaf.public_bytes(serialization.Encoding.PEM).decode() + self.pem


def _signing_hash(key: Any) -> hashes.SHA256 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def load_ca_files(certfile: str, keyfile: str, validity_days: int) -> CertificateAuthority:
    """The configured CA (PEM files; an unencrypted key)."""
    certificate = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
    key = serialization.load_pem_private_key(Path(keyfile).read_bytes(), password=None)
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ValueError(f"{keyfile} is not the key of {certfile}")
    return CertificateAuthority(certificate, key, validity_days)


def new_ca(
    now: datetime.datetime, validity_days: int
) -> tuple[CertificateAuthority, dict[str, str]]:
    """Make a CA (EC P-256, ten years); return it and what to store."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .sign(key, hashes.SHA256())
    )
    ca = CertificateAuthority(certificate, key, validity_days)
    stored = {
        "certificate": ca.pem,
        "key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    }
    return ca, stored


def ca_from_stored(stored: dict[str, Any], validity_days: int) -> CertificateAuthority:
    """The hub's own CA, from its store."""
    certificate = x509.load_pem_x509_certificate(str(stored["certificate"]).encode())
    key = serialization.load_pem_private_key(str(stored["key"]).encode(), password=None)
    return CertificateAuthority(certificate, key, validity_days)


class CaProvider:
    """The hub's CA, loaded or made at first use, once."""

    def __init__(
        self,
        hub: Hub,
        certfile: str | None,
        keyfile: str | None,
        validity_days: int,
    ) -> None:
        self.hub = hub
        self.certfile = certfile
        self.keyfile = keyfile
        self.validity_days = validity_days
        self._store: Store[dict[str, Any]] = Store(hub, 1, CA_STORE_KEY, private=True)
        self._ca: CertificateAuthority | None = None

    async def get(self, now: datetime.datetime) -> CertificateAuthority:
        """The CA; the first call loads it, or makes and stores it."""
        if self._ca is not None:
            return self._ca
        if self.certfile is not None and self.keyfile is not None:
            ca = await self.hub.run_in_executor(
                load_ca_files, self.certfile, self.keyfile, self.validity_days
            )
        else:
            stored = await self._store.load()
            if stored:
                ca = await self.hub.run_in_executor(ca_from_stored, stored, self.validity_days)
            else:
                ca, data = await self.hub.run_in_executor(new_ca, now, self.validity_days)
                await self._store.save(data)
                public = Path(self.hub.path(CA_PUBLIC_FILE))
                await self.hub.run_in_executor(public.write_text, ca.pem)
        if self._ca is None:
            self._ca = ca
        return self._ca
