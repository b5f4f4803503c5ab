"""Certificates nearing expiry: the hub's own (HTTPS, OCPP listeners) and the chargers'."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509

from hub.certificates import read_crls

_LOGGER = logging.getLogger(__name__)

# A certificate file larger than this is no certificate: never read whole.
MAX_FILE_SIZE: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate the monitor watches: where it is, whose it is, when it ends."""

    where: str
    subject: str
    serial: str
    not_after: float
    # The issuer's name (RFC 4514), to look the serial up in that issuer's CRL.
    issuer: str = ""


def hub_certificate_files(
    config_dir: Path, http: Mapping[str, Any] | None, integrations: Mapping[str, Any]
) -> list[Path]:
    """The certificate files the hub's configuration names: HTTPS and the OCPP listeners'."""
    names: list[str] = []
    if http and isinstance(http.get("ssl_certificate"), str):
        names.append(http["ssl_certificate"])
    ocpp = integrations.get("ocpp")
    listeners = ocpp.get("listeners") if isinstance(ocpp, Mapping) else None
    for listener in listeners if isinstance(listeners, list) else []:
        if not isinstance(listener, Mapping):
            continue
        for key in ("certfile", "ca_certs"):
            value = listener.get(key)
            names.extend([value] if isinstance(value, str) else list(value or []))
    return [resolve(config_dir, name) for name in names]


def crl_files(config_dir: Path, integrations: Mapping[str, Any]) -> list[Path]:
    """The certificate revocation lists the OCPP listeners name (``crl_file``)."""
    ocpp = integrations.get("ocpp")
    listeners = ocpp.get("listeners") if isinstance(ocpp, Mapping) else None
    names = [
        listener["crl_file"]
        for listener in (listeners if isinstance(listeners, list) else [])
        if isinstance(listener, Mapping) and isinstance(listener.get("crl_file"), str)
    ]
    return [resolve(config_dir, name) for name in names]


def read_revoked(paths: Iterable[Path]) -> tuple[set[tuple[str, str]], list[str]]:
    """The (issuer, serial) pairs the CRL files revoke, and the problems met (blocking)."""
    found: set[tuple[str, str]] = set()
    problems: list[str] = []
    for path in dict.fromkeys(paths):
        try:
            crls = read_crls(path)
        except (OSError, ValueError) as err:
            problems.append(f"{path}: {err}")
            continue
        for crl in crls:
            issuer = crl.issuer.rfc4514_string()
            found.update((issuer, format(entry.serial_number, "x")) for entry in crl)
    return found, problems


def resolve(config_dir: Path, name: str) -> Path:
    """A configured path: absolute as written, else relative to the config dir."""
    path = Path(name)
    return path if path.is_absolute() else config_dir / path


def read_certificates(paths: Iterable[Path]) -> tuple[list[Certificate], list[str]]:
    """Every certificate in the PEM files (blocking: run in the executor), and the problems
    met (a file missing, too large or unreadable), one line each."""
    found: list[Certificate] = []
    problems: list[str] = []
    for path in dict.fromkeys(paths):
        try:
            if path.stat().st_size > MAX_FILE_SIZE:
                problems.append(f"{path}: larger than {MAX_FILE_SIZE} bytes")
                continue
            certificates = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as err:
            problems.append(f"{path}: {err}")
            continue
        for certificate in certificates:
            found.append(
                Certificate(
                    str(path),
                    certificate.subject.rfc4514_string(),
                    format(certificate.serial_number, "x"),
                    certificate.not_valid_after_utc.timestamp(),
                    certificate.issuer.rfc4514_string(),
                )
            )
    return found, problems


def threshold(days_left: float, days: Iterable[int]) -> int | None:
    """The smallest configured number of days the certificate is within (0: expired)."""
    if days_left <= 0:
        return 0
    within = [d for d in days if days_left <= d]
    return min(within) if within else None
