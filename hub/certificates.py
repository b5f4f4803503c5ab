"""Certificate revocation lists, for any integration that checks certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cryptography import x509

# A CRL file larger than this is refused (it is read whole).
MAX_CRL_SIZE: Final = 20_000_000


def read_crls(path: Path) -> list[x509.CertificateRevocationList]:
    """The CRLs of a PEM (one or more) or DER file (blocking)."""
    if path.stat().st_size > MAX_CRL_SIZE:
        raise ValueError(f"{path}: larger than {MAX_CRL_SIZE} bytes")
    data = path.read_bytes()
    if b"-----BEGIN X509 CRL-----" not in data:
        try:
            return [x509.load_der_x509_crl(data)]
        except ValueError as err:
            raise ValueError(f"{path}: not a certificate revocation list ({err})") from err
    crls = []
    marker = b"-----END X509 CRL-----"
    for block in data.split(marker)[:-1]:
        start = block.find(b"-----BEGIN X509 CRL-----")
        try:
            crls.append(x509.load_pem_x509_crl(block[start:] + marker + b"\n"))
        except ValueError as err:
            raise ValueError(f"{path}: a CRL could not be read ({err})") from err
    return crls
