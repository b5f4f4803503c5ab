"""Certificates nearing expiry: the hub's own (HTTPS, OCPP listeners) and the chargers'."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509

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
                )
            )
    return found, problems


def threshold(days_left: float, days: Iterable[int]) -> int | None:
    """The smallest configured number of days the certificate is within (0: expired)."""
    if days_left <= 0:
        return 0
    within = [d for d in days if days_left <= d]
    return min(within) if within else None
