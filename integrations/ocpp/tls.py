"""TLS for the OCPP listeners: the server context, handshakes the hub sees fail, revocation.

asyncio runs a server's TLS handshakes itself and, outside debug mode, tells nobody when one
fails: a charger offering TLS 1.0, a client certificate from another CA, a revoked one or a
scanner would leave no trace. So a TLS listener accepts plain TCP and runs the handshake
with ``loop.start_tls``; a failure becomes a security event, classified as the OCPP
security events name it, and a success hands the TLS transport to the HTTP server.

Certificates, keys, the CA and the certificate revocation list (``crl_file``) are read into
a new context when the listener starts and whenever they change (or ``ocpp.reload_tls`` is
called); connections made after that use it. A reload that revokes a connected charger's
client certificate closes that connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509

from hub.certificates import read_crls
from hub.security import Severity

_LOGGER = logging.getLogger(__name__)

# The TLS 1.2 suites OCPP requires (2.0.1 Part 2 A00.FR.318/319; 1.6 security whitepaper):
# ECDHE_ECDSA and ECDHE_RSA with AES-GCM first, then TLS_RSA_WITH_AES_128/256_GCM.
OCPP_TLS12_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    )
)

SEC_TLS_FAILURE: Final = "ocpp_tls_failure"
SEC_CERTIFICATE_REVOKED: Final = "ocpp_certificate_revoked"

# OpenSSL's X509_V_ERR_* codes the hub tells apart (x509_vfy.h).
_V_ERR_CERT_HAS_EXPIRED: Final = 10
_V_ERR_CERT_NOT_YET_VALID: Final = 9
_V_ERR_UNABLE_TO_GET_CRL: Final = 3
_V_ERR_CRL_HAS_EXPIRED: Final = 12
_V_ERR_CERT_REVOKED: Final = 23

# OpenSSL reasons (lower case, as ssl.SSLError.reason gives them upper case) by the OCPP
# security event type they amount to (2.0.1 Appendix 1, 1.6 security whitepaper).
_VERSION_REASONS: Final = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "WRONG_VERSION_NUMBER",
        "VERSION_TOO_LOW",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNKNOWN_PROTOCOL",
    }
)
_CIPHER_REASONS: Final = frozenset(
    {"NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "NO_SHARED_SIGNATURE_ALGORITHMS"}
)
# The charger refused the hub's certificate (a TLS alert it sent).
_CSMS_CERTIFICATE_REASONS: Final = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_DECRYPT_ERROR",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    }
)
_NO_CLIENT_CERTIFICATE_REASONS: Final = frozenset(
    {"PEER_DID_NOT_RETURN_A_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED"}
)


@dataclass(frozen=True, slots=True)
class TlsFailure:
    """A failed handshake as the hub reports it."""

    kind: str
    # The OCPP security event type it amounts to, or a name of the hub's own.
    type: str
    reason: str
    severity: Severity


def classify(err: BaseException) -> TlsFailure | None:
    """What a failed handshake means, or None for a peer that left without a word (a TCP
    health check, a port scan's connect) or a local cancellation."""
    if isinstance(err, ssl.SSLCertVerificationError):
        code = err.verify_code
        message = err.verify_message or str(err)
        if code == _V_ERR_CERT_REVOKED:
            return TlsFailure(
                SEC_CERTIFICATE_REVOKED,
                "InvalidChargingStationCertificate",
                "client certificate revoked",
                Severity.CRITICAL,
            )
        if code in (_V_ERR_UNABLE_TO_GET_CRL, _V_ERR_CRL_HAS_EXPIRED):
            # The hub's own CRL is missing or stale: the charger is not to blame.
            return TlsFailure(SEC_TLS_FAILURE, "CrlUnavailable", message, Severity.CRITICAL)
        if code in (_V_ERR_CERT_HAS_EXPIRED, _V_ERR_CERT_NOT_YET_VALID):
            return TlsFailure(
                SEC_TLS_FAILURE, "InvalidChargingStationCertificate", message, Severity.WARNING
            )
        return TlsFailure(
            SEC_TLS_FAILURE,
            "InvalidChargingStationCertificate",
            f"client certificate not trusted: {message}",
            Severity.WARNING,
        )
    if isinstance(err, ssl.SSLError):
        reason = (err.reason or "").upper()
        text = (err.reason or str(err)).lower().replace("_", " ")
        if reason in _NO_CLIENT_CERTIFICATE_REASONS:
            return TlsFailure(
                SEC_TLS_FAILURE,
                "InvalidChargingStationCertificate",
                "no client certificate",
                Severity.WARNING,
            )
        if reason == "HTTP_REQUEST":
            return TlsFailure(
                SEC_TLS_FAILURE,
                "PlainTextOnTlsPort",
                "plain HTTP sent to a TLS port",
                Severity.WARNING,
            )
        if reason in _VERSION_REASONS:
            return TlsFailure(SEC_TLS_FAILURE, "InvalidTLSVersion", text, Severity.WARNING)
        if reason in _CIPHER_REASONS:
            return TlsFailure(SEC_TLS_FAILURE, "InvalidTLSCipherSuite", text, Severity.WARNING)
        if reason in _CSMS_CERTIFICATE_REASONS:
            return TlsFailure(
                SEC_TLS_FAILURE,
                "InvalidCsmsCertificate",
                f"the client refused the hub's certificate ({text})",
                Severity.WARNING,
            )
        return TlsFailure(SEC_TLS_FAILURE, "TlsHandshakeFailed", text, Severity.WARNING)
    if isinstance(err, ConnectionResetError) and err.errno is not None:
        # A TCP reset in the handshake: a client refusing the hub's certificate without an
        # alert, or a scanner taking the server's hello. (An end of stream with no reset, as
        # from a TCP health check, has no errno: nothing to report.)
        return TlsFailure(
            SEC_TLS_FAILURE,
            "TlsHandshakeAborted",
            "the client broke off the handshake (did it refuse the hub's certificate?)",
            Severity.WARNING,
        )
    if isinstance(err, ConnectionAbortedError) and "handshake" in str(err):
        # asyncio's handshake timeout: a slow or stalled handshake (slowloris).
        return TlsFailure(
            SEC_TLS_FAILURE, "TlsHandshakeTimeout", "TLS handshake timed out", Severity.WARNING
        )
    return None


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The files one TLS listener is made of."""

    certfiles: tuple[str, ...]
    keyfiles: tuple[str, ...]
    ca_certs: str | None
    crl_file: str | None

    @classmethod
    def of(cls, config: dict[str, Any]) -> TlsFiles:
        """From a listener's configuration: certfile and keyfile are one name or a list."""

        def names(value: str | list[str]) -> tuple[str, ...]:
            return (value,) if isinstance(value, str) else tuple(value)

        return cls(
            names(config["certfile"]),
            names(config["keyfile"]),
            config.get("ca_certs"),
            config.get("crl_file"),
        )

    def paths(self) -> list[str]:
        found = [*self.certfiles, *self.keyfiles]
        found += [name for name in (self.ca_certs, self.crl_file) if name]
        return found

    def stamp(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when any of the files is replaced (blocking: run in the executor)."""
        stamps = []
        for name in self.paths():
            try:
                stat = os.stat(name)
            except OSError:
                stamps.append((name, -1, -1))
            else:
                stamps.append((name, stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2 or newer with the cipher suites OCPP lists; two certificate files are an RSA
    and an ECDSA pair, and the handshake picks the one the charger's suites can use. With a
    CA, client certificates are required (profile 3); with a CRL as well, the client's
    certificate is checked against it (blocking: reads files)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(OCPP_TLS12_CIPHERS)
    for certfile, keyfile in zip(files.certfiles, files.keyfiles, strict=True):
        context.load_cert_chain(certfile, keyfile)
    if files.ca_certs is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=files.ca_certs)
        if files.crl_file is not None:
            read_crls(Path(files.crl_file))  # a clear error for a bad file, before OpenSSL's
            context.load_verify_locations(cafile=files.crl_file)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def revoked(crls: Iterable[x509.CertificateRevocationList], issuer: x509.Name, serial: int) -> bool:
    """Whether a CRL of that issuer lists the serial number."""
    return any(
        crl.issuer == issuer and crl.get_revoked_certificate_by_serial_number(serial) is not None
        for crl in crls
    )


def peer_certificate(transport: asyncio.BaseTransport | None) -> x509.Certificate | None:
    """The client certificate a TLS peer presented, parsed, or None."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


class _HandOff(asyncio.Protocol):
    """Holds what the TLS transport delivers between the end of the handshake and the moment
    the HTTP server's protocol takes over: ``start_tls`` may pass on the first request's
    bytes before it returns."""

    __slots__ = ("early", "eof", "lost")

    def __init__(self) -> None:
        self.early: list[bytes] = []
        self.eof = False
        self.lost: tuple[Exception | None] | None = None

    def data_received(self, data: bytes) -> None:
        self.early.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        return True  # keep the transport: the HTTP protocol decides

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = (exc,)


class _Accept(asyncio.Protocol):
    """A new TCP connection to a TLS listener: reading paused until the handshake starts."""

    __slots__ = ("_tls",)

    def __init__(self, tls: TlsServer) -> None:
        self._tls = tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._tls.accepted(transport)


class TlsServer:
    """The TLS side of one listener: the current context, the handshakes, and reloads."""

    def __init__(
        self,
        files: TlsFiles,
        make_protocol: Callable[[], asyncio.Protocol],
        timeout: float,
        on_failure: Callable[[TlsFailure, str | None, dict[str, Any]], None],
    ) -> None:
        self.files = files
        self.context = server_context(files)
        self.crls: list[x509.CertificateRevocationList] = (
            read_crls(Path(files.crl_file)) if files.crl_file else []
        )
        self._stamp = files.stamp()
        self._make_protocol = make_protocol
        self.timeout = timeout
        self._on_failure = on_failure
        self._handshakes: set[asyncio.Task[None]] = set()

    def factory(self) -> asyncio.Protocol:
        return _Accept(self)

    def accepted(self, transport: asyncio.Transport) -> None:
        task = asyncio.get_running_loop().create_task(self._handshake(transport))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if transport.is_closing():
            return
        hand_off = _HandOff()
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                hand_off,
                self.context,
                server_side=True,
                ssl_handshake_timeout=self.timeout or None,
            )
        except asyncio.CancelledError:
            transport.abort()
            raise
        except OSError as err:
            transport.abort()
            failure = classify(err)
            if failure is None:
                _LOGGER.debug("TLS connection from %s ended in its handshake: %r", remote, err)
                return
            self._on_failure(failure, remote, _failure_data(err, failure))
            return
        if tls is None or hand_off.lost is not None:
            return
        protocol = self._make_protocol()
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        for chunk in hand_off.early:
            protocol.data_received(chunk)
        if hand_off.eof:
            protocol.eof_received()

    def changed(self) -> bool:
        """Whether a file changed since the context was made (blocking: run in the
        executor)."""
        return self.files.stamp() != self._stamp

    def reload(self) -> None:
        """Make a new context from the files (blocking: run in the executor). On an error the
        old context stays and the error is raised."""
        stamp = self.files.stamp()
        context = server_context(self.files)
        crls = read_crls(Path(self.files.crl_file)) if self.files.crl_file else []
        self.context, self.crls, self._stamp = context, crls, stamp

    def stop(self) -> None:
        for task in list(self._handshakes):
            task.cancel()


def _failure_data(err: BaseException, failure: TlsFailure) -> dict[str, Any]:
    data: dict[str, Any] = {"type": failure.type, "reason": failure.reason[:200]}
    if isinstance(err, ssl.SSLCertVerificationError):
        data["verify_code"] = err.verify_code
    elif isinstance(err, ssl.SSLError) and err.reason:
        data["openssl_reason"] = err.reason
    return data
