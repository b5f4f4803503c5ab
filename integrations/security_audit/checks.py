"""The security audit's checks: findings as a pure function of a config dir and a time.

``run_audit(config_dir, now)`` reads ``configuration.yaml`` (with its ``!secret`` and
``!include`` files), ``secrets.yaml``, the file modes, and what the hub keeps in ``.storage``
(users and tokens, admitted and rotated charger passwords, the OCPP CA, the device registry
for firmware versions), and runs each check of ``CHECKS`` over that. A check is a small
function of an ``AuditInput`` that yields ``Finding``s; it never writes anything and never
raises for what it reads (a file it cannot read is a finding or nothing, never a crash).

Everything here blocks (file reads): the hub runs it in the executor.
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
import math
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography import x509

from hub.config import SECRETS_FILE, ConfigError, NodeDict, NodeList, NodeStr, load_config_file
from hub.const import STORAGE_DIR
from hub.redact import is_secret_name

DAY: Final = 86400.0

CONF_PASSWORD_MAX_AGE_DAYS: Final = "password_max_age_days"
CONF_TOKEN_UNUSED_DAYS: Final = "token_unused_days"
CONF_CERTIFICATE_WARN_DAYS: Final = "certificate_warn_days"
DEFAULT_PASSWORD_MAX_AGE_DAYS: Final = 365
DEFAULT_TOKEN_UNUSED_DAYS: Final = 90
DEFAULT_CERTIFICATE_WARN_DAYS: Final = 30
# A certificate file is read only up to this size (a chain of a few certificates is ~10 kB).
MAX_CERTIFICATE_FILE: Final = 1024 * 1024
# A certificate this close to its end (or past it) is a high finding.
CERTIFICATE_CRITICAL_DAYS: Final = 7

# Stores of other parts of the hub the audit reads (read only, never written).
AUTH_STORE: Final = "core.auth"
DEVICE_STORE: Final = "core.device_registry"
OCPP_CHARGERS_STORE: Final = "ocpp.chargers"
OCPP_PASSWORDS_STORE: Final = "ocpp.passwords"
OCPP_CA_STORE: Final = "ocpp.certificate_authority"
_JOURNAL_INFIX: Final = ".journal."

# Passwords chargers are shipped with or people type; with the length OCPP asks (16 to 40).
KNOWN_WEAK: Final = frozenset(
    {
        "password",
        "passwordpassword",
        "password12345678",
        "1234567890123456",
        "12345678901234567890",
        "0123456789abcdef",
        "abcdefghijklmnop",
        "abcdefghijklmnopqrst",
        "qwertyuiopasdfgh",
        "qwertzuiopasdfgh",
        "changemechangeme",
        "changeme12345678",
        "defaultpassword1",
        "defaultdefaultde",
        "adminadminadmin1",
        "evchargerpassword",
        "chargepoint12345",
        "ocppocppocppocpp",
        "authorizationkey",
        "secretsecretsecr",
        *(c * n for c in "0123456789abcdefx" for n in (16, 20, 32, 40)),
        *(("0123456789" * 4)[:n] for n in (16, 20, 32, 40)),
        *(("1234567890" * 4)[:n] for n in (16, 20, 32, 40)),
    }
)
# Below this estimated strength (length x log2 of the alphabet it draws from) a password is
# weak: 16 digits are 53 bits, 16 random letters and digits 95.
MIN_PASSWORD_BITS: Final = 64
MIN_DISTINCT_CHARACTERS: Final = 8
# Clear-text passwords checked against other chargers' hashes at most this many times.
MAX_CROSS_CHECKS: Final = 100_000

_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# Keys named like secrets whose values are not secrets.
_NOT_SECRET_KEYS: Final = frozenset({"master_pass_group", "ocsp_pass_through"})


class Severity(enum.StrEnum):
    """How urgent a finding is: high ones fail the audit and raise alerts."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """high 0, medium 1, low 2: for sorting."""
        return _RANK[self]


_RANK: Final = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing wrong with the set-up, where it is and how to fix it."""

    check: str
    severity: Severity
    subject: str  # what it is about: a listener, a charger id, a file, a user
    message: str
    fix: str
    where: str | None = None  # file:line when it is written somewhere

    @property
    def key(self) -> str:
        """A stable key: the same finding keeps it from one run to the next."""
        return f"{self.check}:{self.subject}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (CLI --format json, the API)."""
        return {**asdict(self), "severity": str(self.severity), "key": self.key}


@dataclass(slots=True)
class AuditInput:
    """What the checks look at: the config dir read once."""

    config_dir: Path
    now: float
    raw: NodeDict
    http: dict[str, Any] | None
    sections: dict[str, Any]
    options: dict[str, Any]
    stores: dict[str, Any] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)

    def store(self, key: str) -> Any:
        """The data of a store in .storage (None if absent or unreadable), read once."""
        if key not in self.stores:
            self.stores[key] = read_store(self.config_dir / STORAGE_DIR / key)
        return self.stores[key]

    def option(self, key: str, default: float) -> float:
        """A setting of the security_audit: section."""
        value = self.options.get(key, default)
        return float(value) if isinstance(value, int | float) else float(default)

    def path(self, name: str) -> Path:
        """A file named in the config: absolute, else in the config dir if there, else in
        the working directory (where the hub opens relative paths from)."""
        path = Path(name).expanduser()
        if path.is_absolute():
            return path
        beside = self.config_dir / path
        return beside if beside.exists() else Path.cwd() / path


Check = Callable[[AuditInput], Iterator[Finding]]


# Reading -----------------------------------------------------------------------------


def read_small_file(path: Path, limit: int = MAX_CERTIFICATE_FILE) -> bytes:
    """A regular file's bytes; OSError for anything else (a FIFO or a device would stall
    the read, /dev/zero would never end) or for a file larger than limit."""
    with open(path, "rb", opener=_nonblocking) as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > limit:
            raise OSError(0, f"larger than {limit} bytes: not a certificate")
        return file.read(limit + 1)[:limit]


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def read_store(path: Path) -> Any:
    """A store's data, None when the file is absent or unreadable."""
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return document.get("data") if isinstance(document, dict) else None


def read_journaled_store(path: Path) -> tuple[Any, list[Any]]:
    """A journaled store's snapshot and the journal records since it (read only)."""
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        document = None
    if not isinstance(document, dict):
        document = {}
    generation = document.get("journal", 0)
    generation = generation if isinstance(generation, int) else 0
    prefix = f"{path.name}{_JOURNAL_INFIX}"
    numbers: list[int] = []
    try:
        for name in os.listdir(path.parent):
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                numbers.append(int(name[len(prefix) :]))
    except OSError:
        pass
    records: list[Any] = []
    for number in sorted(n for n in numbers if n >= generation):
        try:
            lines = path.with_name(f"{prefix}{number}").read_bytes().split(b"\n")
        except OSError:
            continue
        lines.pop()  # a torn last line (or the empty text after the last newline)
        for line in lines:
            try:
                records.append(orjson.loads(line))
            except ValueError:
                continue
    return document.get("data"), records


def load_input(config_dir: Path, now: float, options: dict[str, Any] | None = None) -> AuditInput:
    """Read and validate a config dir; raise ConfigError when configuration.yaml is unusable."""
    from hub.bootstrap import process_config
    from hub.plugins import PluginLoader

    raw = load_config_file(config_dir)
    processed = process_config(raw, PluginLoader())
    sections = dict(processed.integrations)
    if options is None:
        section = raw.get("security_audit")
        options = dict(section) if isinstance(section, dict) else {}
    return AuditInput(
        config_dir=config_dir,
        now=now,
        raw=raw,
        http=processed.http,
        sections=sections,
        options=options,
        errors=list(processed.errors),
    )


def run_audit(config_dir: Path, now: float, options: dict[str, Any] | None = None) -> list[Finding]:
    """Every finding of every check, worst first. ConfigError if there is nothing to audit."""
    data = load_input(config_dir, now, options)
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(data))
        except Exception as err:  # a check that breaks is reported, the others still run
            findings.append(
                Finding(
                    check="audit_error",
                    severity=Severity.MEDIUM,
                    subject=check.__name__,
                    message=f"the check {check.__name__} failed: {type(err).__name__}: {err}",
                    fix="report this as a bug in evhub; the other checks ran",
                )
            )
    findings.sort(key=lambda f: (f.severity.rank, f.check, f.subject))
    return findings


# Helpers -----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Tell whether a listening address is reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _where(node: Any, key: Any = None) -> str | None:
    """file:line of a key in a mapping or list from the YAML loader, if known."""
    if isinstance(node, NodeDict) and key is not None and key in node.key_lines:
        return f"{node.__config_file__}:{node.key_lines[key]}"
    if isinstance(node, NodeList) and isinstance(key, int) and key < len(node.item_lines):
        return f"{node.__config_file__}:{node.item_lines[key]}"
    if isinstance(node, NodeDict | NodeList | NodeStr) and node.__line__ is not None:
        return f"{node.__config_file__}:{node.__line__}"
    return None


def _raw_section(data: AuditInput, domain: str) -> Any:
    section = data.raw.get(domain)
    return section if isinstance(section, dict) else {}


def _listeners(data: AuditInput) -> list[tuple[int, dict[str, Any]]]:
    ocpp = data.sections.get("ocpp")
    if not isinstance(ocpp, dict):
        return []
    return list(enumerate(ocpp.get("listeners") or []))


def _listener_name(listener: dict[str, Any]) -> str:
    return f"{listener.get('host', '0.0.0.0')}:{listener.get('port')}{listener.get('path', '')}"


def _raw_listener(data: AuditInput, index: int) -> Any:
    listeners = _raw_section(data, "ocpp").get("listeners")
    return listeners if isinstance(listeners, NodeList) else None


def password_strength_bits(password: str) -> float:
    """Length times log2 of the alphabet the password draws from: a rough upper bound."""
    alphabet = 0
    if any(c.islower() for c in password):
        alphabet += 26
    if any(c.isupper() for c in password):
        alphabet += 26
    if any(c.isdigit() for c in password):
        alphabet += 10
    if any(not c.isalnum() for c in password):
        alphabet += 33
    return len(password) * math.log2(alphabet) if alphabet else 0.0


def weakness(password: str) -> str | None:
    """Why a charger password is weak, or None."""
    if password.lower() in KNOWN_WEAK:
        return "it is on the list of known default and common passwords"
    if len(password) < 16:
        return f"it has {len(password)} characters (OCPP asks for 16 to 40)"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return f"it uses only {len(set(password))} different characters"
    bits = password_strength_bits(password)
    if bits < MIN_PASSWORD_BITS:
        return f"it holds at most {bits:.0f} bits (digits or one case only); at least 64 needed"
    return None


def _verify_charger_hash(password: str, stored: str) -> bool:
    from integrations.ocpp.system import verify_password

    return verify_password(password, stored)


# The checks --------------------------------------------------------------------------


def check_ocpp_listeners(data: AuditInput) -> Iterator[Finding]:
    """OCPP listeners without TLS, or without authentication, on non-loopback addresses."""
    for index, listener in _listeners(data):
        host = str(listener.get("host", "0.0.0.0"))
        if is_loopback(host):
            continue
        profile = listener.get("security_profile")
        where = _where(_raw_listener(data, index), index)
        name = _listener_name(listener)
        if profile == 0:
            yield Finding(
                check="ocpp_profile_0",
                severity=Severity.HIGH,
                subject=name,
                message=f"the OCPP listener {name} takes chargers without any authentication"
                f" (security profile 0) on the non-loopback address {host}: anyone who"
                " knows a charge point id can connect as that charger",
                fix="use security_profile 2 or 3 (TLS) on this listener, or bind profile 0"
                " to 127.0.0.1 for a local test only",
                where=where,
            )
        elif profile == 1:
            yield Finding(
                check="ocpp_listener_no_tls",
                severity=Severity.HIGH,
                subject=name,
                message=f"the OCPP listener {name} has no TLS (security profile 1) on the"
                f" non-loopback address {host}: charger passwords and every message travel"
                " in clear text",
                fix="use security_profile 2 (Basic auth over TLS) or 3 (client certificates)"
                " with certfile and keyfile; see the README's Security section",
                where=where,
            )


def _charger_min_profile(data: AuditInput, charger: dict[str, Any]) -> int:
    listeners = [listener for _, listener in _listeners(data)]
    highest = max((int(listener.get("security_profile", 0)) for listener in listeners), default=0)
    given = charger.get("security_profile")
    profile = int(given) if isinstance(given, int) else highest
    stored = data.store(OCPP_CHARGERS_STORE)
    seen = stored.get("profiles", {}) if isinstance(stored, dict) else {}
    seen_profile = seen.get(charger.get("id")) if isinstance(seen, dict) else None
    if isinstance(seen_profile, int):
        profile = max(profile, seen_profile)
    return profile


def _charger_passwords(data: AuditInput) -> Iterator[tuple[str, str | None, list[str], Any]]:
    """Each charger: (id, plain password or None, hashes, where), from config and .storage."""
    ocpp = data.sections.get("ocpp")
    if not isinstance(ocpp, dict):
        return
    raw_chargers = _raw_section(data, "ocpp").get("chargers")
    rotated = data.store(OCPP_PASSWORDS_STORE)
    rotated = rotated.get("chargers", {}) if isinstance(rotated, dict) else {}
    listed: set[str] = set()
    for index, charger in enumerate(ocpp.get("chargers") or []):
        cp_id = str(charger.get("id"))
        listed.add(cp_id)
        plain = charger.get("password")
        hashes = [charger["password_hash"]] if charger.get("password_hash") else []
        entry = rotated.get(cp_id) if isinstance(rotated, dict) else None
        if isinstance(entry, dict) and entry.get("accepted"):
            # A rotated password replaces the configured one.
            plain = None
            hashes = [h for h in entry["accepted"] if isinstance(h, str)]
        where = _where(raw_chargers, index) if isinstance(raw_chargers, NodeList) else None
        yield cp_id, str(plain) if plain else None, hashes, where
    approved = data.store(OCPP_CHARGERS_STORE)
    approved = approved.get("approved", {}) if isinstance(approved, dict) else {}
    for cp_id, entry in approved.items() if isinstance(approved, dict) else ():
        if cp_id in listed or not isinstance(entry, dict):
            continue
        hashes = [entry["password_hash"]] if isinstance(entry.get("password_hash"), str) else []
        rotated_entry = rotated.get(cp_id) if isinstance(rotated, dict) else None
        if isinstance(rotated_entry, dict) and rotated_entry.get("accepted"):
            hashes = [h for h in rotated_entry["accepted"] if isinstance(h, str)]
        yield str(cp_id), None, hashes, f"{STORAGE_DIR}/{OCPP_CHARGERS_STORE}"


def check_charger_passwords(data: AuditInput) -> Iterator[Finding]:
    """Chargers without a password, with a weak one, or sharing one with another charger."""
    chargers = list(_charger_passwords(data))
    ocpp = data.sections.get("ocpp") or {}
    configured = {str(c.get("id")): c for c in ocpp.get("chargers") or []}
    for cp_id, plain, hashes, where in chargers:
        if plain is None and not hashes:
            profile = _charger_min_profile(data, configured.get(cp_id, {"id": cp_id}))
            if profile >= 3:
                continue  # a client certificate identifies it
            yield Finding(
                check="charger_no_password",
                severity=Severity.HIGH if profile == 0 else Severity.MEDIUM,
                subject=cp_id,
                message=f"the charger {cp_id} has no password"
                + (
                    ": it may connect on a profile 0 listener, where anyone can take its id"
                    if profile == 0
                    else ": it is refused on profile 1 and 2 listeners until it has one"
                ),
                fix=f"give {cp_id} a password of 16-40 random characters in secrets.yaml"
                " (password: !secret ...), or a client certificate on a profile 3 listener",
                where=where,
            )
            continue
        reason = weakness(plain) if plain is not None else None
        if reason is None and plain is None:
            for weak in KNOWN_WEAK:
                if any(_verify_charger_hash(weak, stored) for stored in hashes):
                    reason = "it is on the list of known default and common passwords"
                    break
        if reason is not None:
            yield Finding(
                check="charger_weak_password",
                severity=Severity.HIGH,
                subject=cp_id,
                message=f"the password of charger {cp_id} is weak: {reason}",
                fix=f"rotate it: call ocpp.update_password for {cp_id} (the hub makes a random"
                " one), or write a random 16-40 character password in secrets.yaml",
                where=where,
            )
    # Reuse: the same clear text twice, a clear text that matches another's hash, or one
    # hash kept for two chargers.
    shared: dict[str, set[str]] = {}
    by_plain: dict[str, set[str]] = {}
    by_hash: dict[str, set[str]] = {}
    for cp_id, plain, hashes, _ in chargers:
        if plain is not None:
            by_plain.setdefault(plain, set()).add(cp_id)
        for stored in hashes:
            by_hash.setdefault(stored, set()).add(cp_id)
    groups = [ids for ids in (*by_plain.values(), *by_hash.values()) if len(ids) > 1]
    # A clear text against the others' salted hashes: bounded, a fleet of thousands would
    # otherwise cost millions of hashes.
    if len(by_plain) * len(by_hash) <= MAX_CROSS_CHECKS:
        for plain, plain_ids in by_plain.items():
            for stored, hash_ids in by_hash.items():
                if hash_ids - plain_ids and _verify_charger_hash(plain, stored):
                    groups.append(plain_ids | hash_ids)
    for ids in groups:
        for cp_id in ids:
            shared.setdefault(cp_id, set()).update(ids - {cp_id})
    for cp_id, _plain, _hashes, where in chargers:
        others = shared.get(cp_id)
        if others:
            yield Finding(
                check="charger_reused_password",
                severity=Severity.HIGH,
                subject=cp_id,
                message=f"the charger {cp_id} shares its password with"
                f" {', '.join(sorted(others))}: whoever reads it from one charger can connect"
                " as the others",
                fix="give every charger its own random password (ocpp.update_password rotates one)",
                where=where,
            )


def check_unknown_chargers(data: AuditInput) -> Iterator[Finding]:
    """An unknown-charger policy other than reject."""
    ocpp = data.sections.get("ocpp")
    if not isinstance(ocpp, dict):
        return
    policy = ocpp.get("unknown_chargers", "reject")
    if policy == "reject":
        return
    yield Finding(
        check="ocpp_unknown_chargers",
        severity=Severity.HIGH if policy == "accept" else Severity.MEDIUM,
        subject="unknown_chargers",
        message=f"unknown_chargers is {policy}: "
        + (
            "any charger that connects is admitted and its key becomes its password"
            if policy == "accept"
            else "unknown chargers may connect and wait for approval (an approval admits"
            " whoever claimed the id)"
        ),
        fix="set unknown_chargers: reject and list each charger under chargers:",
        where=_where(_raw_section(data, "ocpp"), "unknown_chargers"),
    )


def _stations(data: AuditInput) -> list[dict[str, Any]]:
    """Station devices of the device registry: its snapshot with the journal replayed."""
    snapshot, records = read_journaled_store(data.config_dir / STORAGE_DIR / DEVICE_STORE)
    devices: dict[str, dict[str, Any]] = {}
    for raw in snapshot.get("devices", ()) if isinstance(snapshot, dict) else ():
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            devices[raw["id"]] = raw
    for record in records:
        if isinstance(record, list) and len(record) == 2:
            op, value = record
            if op == "set" and isinstance(value, dict) and isinstance(value.get("id"), str):
                devices[value["id"]] = value
            elif op == "del" and isinstance(value, str):
                devices.pop(value, None)
    return [d for d in devices.values() if d.get("kind") == "station"]


def check_firmware_minimum(data: AuditInput) -> Iterator[Finding]:
    """Stations below their model's minimum firmware (firmware: minimum_versions), if set."""
    section = data.sections.get("firmware")
    if not isinstance(section, dict) or not section.get("minimum_versions"):
        return
    try:
        from integrations.firmware import minimums_of
        from integrations.firmware.version import below
    except ImportError:  # the firmware integration is not installed: nothing to compare
        return
    minimums = minimums_of(section)
    for device in _stations(data):
        vendor, model, version = (
            device.get("manufacturer"),
            device.get("model"),
            device.get("sw_version"),
        )
        if not isinstance(vendor, str) or not isinstance(version, str):
            continue
        minimum = minimums.of(vendor, model if isinstance(model, str) else None)
        if minimum is None or below(version, minimum.version) is not True:
            continue
        name = device.get("name") or device.get("id")
        yield Finding(
            check="firmware_below_minimum",
            severity=Severity.HIGH,
            subject=str(device.get("id")),
            message=f"{name} ({vendor} {model or ''}) runs firmware {version}, below the"
            f" minimum {minimum.version} set for it",
            fix="update its firmware (a firmware.start_campaign, or charger.update_firmware)",
            where=_where(_raw_section(data, "firmware"), "minimum_versions"),
        )


def check_http_tls(data: AuditInput) -> Iterator[Finding]:
    """The web interface and API without TLS on a non-loopback address; open metrics."""
    http = data.http
    if http is None:
        return
    host = str(http.get("server_host", "0.0.0.0"))
    raw = _raw_section(data, "http")
    if not is_loopback(host) and not http.get("ssl_certificate"):
        yield Finding(
            check="http_no_tls",
            severity=Severity.HIGH,
            subject=f"http {host}:{http.get('server_port')}",
            message=f"the web interface and API listen on {host} without TLS: passwords,"
            " session cookies and tokens travel in clear text",
            fix="set http: ssl_certificate and ssl_key, or bind server_host: 127.0.0.1 behind"
            " a reverse proxy that terminates TLS (list it in trusted_proxies)",
            where=_where(raw, "server_host") or _where(data.raw, "http"),
        )
    if http.get("metrics_open") and not is_loopback(host):
        yield Finding(
            check="metrics_open",
            severity=Severity.MEDIUM,
            subject="metrics_open",
            message=f"/metrics is served without a token on {host}: anyone who reaches the"
            " hub sees every charger's id, state and uptime",
            fix="set http: metrics_open: false and give Prometheus a token (Authorization: Bearer)",
            where=_where(raw, "metrics_open"),
        )


def _plain_secrets(node: Any, path: str) -> Iterator[tuple[str, str | None]]:
    """Keys named like secrets holding a string written in the file, not via !secret."""
    if isinstance(node, dict):
        for key, value in node.items():
            name = str(key)
            dotted = f"{path}.{name}" if path else name
            secret_name = (
                is_secret_name(name)
                and name not in _NOT_SECRET_KEYS
                and not name.endswith(("_hash", "file", "_path"))
            )
            came_from_secret = isinstance(node, NodeDict) and key in node.secrets
            if (
                secret_name
                and isinstance(value, str)
                and value
                and not came_from_secret
                and not (isinstance(value, NodeStr) and value.__secret__)
            ):
                yield dotted, _where(node, key)
            else:
                yield from _plain_secrets(value, dotted)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _plain_secrets(item, f"{path}[{index}]")


def _from_environment(config_dir: Path, where: str, cache: dict[str, list[str]]) -> bool:
    """Tell whether the value at file:line is an !env_var (the loader keeps no mark of it)."""
    name, _, number = where.rpartition(":")
    if name not in cache:
        try:
            cache[name] = (config_dir / name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            cache[name] = []
    found = cache[name]
    index = int(number) - 1 if number.isdigit() else -1
    if not 0 <= index < len(found):
        return False
    _, colon, value = found[index].partition(":")
    return bool(colon) and value.strip().startswith("!env_var")


def check_plain_secrets(data: AuditInput) -> Iterator[Finding]:
    """Passwords, keys and tokens written in configuration.yaml instead of secrets.yaml."""
    lines: dict[str, list[str]] = {}
    for dotted, where in _plain_secrets(data.raw, ""):
        if where is not None and _from_environment(data.config_dir, where, lines):
            continue
        yield Finding(
            check="secret_in_config",
            severity=Severity.MEDIUM,
            subject=dotted,
            message=f"{dotted} is written in clear in the configuration: whoever reads or"
            " shares configuration.yaml (a backup, a support request) has it",
            fix=f"move the value to {SECRETS_FILE} and write {dotted.rsplit('.', 1)[-1]}:"
            " !secret NAME; keep secrets.yaml readable by the hub's user only",
            where=where,
        )


def _mode_problem(path: Path) -> str | None:
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        return None
    if mode & stat.S_IROTH:
        return "readable by every user of the machine"
    if mode & stat.S_IWOTH:
        return "writable by every user of the machine"
    if mode & (stat.S_IRGRP | stat.S_IWGRP):
        return "readable or writable by its group"
    return None


def check_file_permissions(data: AuditInput) -> Iterator[Finding]:
    """secrets.yaml and .storage readable by other users."""
    secrets_file = data.config_dir / SECRETS_FILE
    problem = _mode_problem(secrets_file)
    if problem is not None:
        yield Finding(
            check="world_readable_secrets",
            severity=Severity.HIGH if "every user" in problem else Severity.MEDIUM,
            subject=SECRETS_FILE,
            message=f"{SECRETS_FILE} is {problem}: it holds the chargers' passwords",
            fix=f"chmod 600 {secrets_file}",
            where=SECRETS_FILE,
        )
    storage = data.config_dir / STORAGE_DIR
    if not storage.is_dir():
        return
    exposed: list[str] = []
    worst = Severity.MEDIUM
    for root, dirs, files in os.walk(storage):
        for name in (*dirs, *files):
            path = Path(root, name)
            problem = _mode_problem(path)
            if problem is not None:
                exposed.append(str(path.relative_to(data.config_dir)))
                if "every user" in problem:
                    worst = Severity.HIGH
    own = _mode_problem(storage)
    if own is not None:
        exposed.insert(0, STORAGE_DIR)
        if "every user" in own:
            worst = Severity.HIGH
    if exposed:
        shown = ", ".join(exposed[:5]) + (
            f" and {len(exposed) - 5} more" if len(exposed) > 5 else ""
        )
        yield Finding(
            check="world_readable_storage",
            severity=worst,
            subject=STORAGE_DIR,
            message=f"other users may read the hub's stores (password hashes, tokens, the CA"
            f" key): {shown}",
            fix=f"chmod -R go-rwx {storage} (evhub run does this at start and keeps new files"
            " private)",
            where=STORAGE_DIR,
        )


def check_admin_passwords(data: AuditInput) -> Iterator[Finding]:
    """Admin accounts whose password is older than password_max_age_days."""
    auth = data.store(AUTH_STORE)
    if not isinstance(auth, dict):
        return
    max_age = data.option(CONF_PASSWORD_MAX_AGE_DAYS, DEFAULT_PASSWORD_MAX_AGE_DAYS)
    for user in auth.get("users") or []:
        if not isinstance(user, dict) or user.get("role") != "admin":
            continue
        changed = user.get("password_changed_at") or user.get("created_at")
        if not isinstance(changed, int | float):
            continue
        age = (data.now - changed) / DAY
        if age > max_age:
            name = str(user.get("username"))
            yield Finding(
                check="admin_password_old",
                severity=Severity.MEDIUM,
                subject=name,
                message=f"the admin {name} has not changed their password for {age:.0f} days"
                f" (more than {max_age:g})",
                fix=f"{name} sets a new password in the web page (PATCH /api/users/<id>); it"
                " also ends their sessions and tokens",
            )


def check_unused_tokens(data: AuditInput) -> Iterator[Finding]:
    """Access tokens not used for token_unused_days (never used counts from creation)."""
    auth = data.store(AUTH_STORE)
    if not isinstance(auth, dict):
        return
    limit = data.option(CONF_TOKEN_UNUSED_DAYS, DEFAULT_TOKEN_UNUSED_DAYS)
    users = {u.get("id"): u.get("username") for u in auth.get("users") or [] if isinstance(u, dict)}
    for token in auth.get("tokens") or []:
        if not isinstance(token, dict) or token.get("user_id") not in users:
            continue
        expires = token.get("expires_at")
        if isinstance(expires, int | float) and expires <= data.now:
            continue
        last = token.get("last_used_at") or token.get("created_at")
        if not isinstance(last, int | float):
            continue
        idle = (data.now - last) / DAY
        if idle > limit:
            name = f"{users[token.get('user_id')]}/{token.get('name')}"
            used = "never used" if not token.get("last_used_at") else "not used"
            yield Finding(
                check="token_unused",
                severity=Severity.MEDIUM,
                subject=f"{name} ({token.get('id')})",
                message=f"the access token {name} was {used} for {idle:.0f} days: a"
                " forgotten token is a key nobody watches",
                fix=f"revoke it (DELETE /api/tokens/{token.get('id')}) if nothing needs it",
            )


def _certificate_files(data: AuditInput) -> Iterator[tuple[str, str, str | None]]:
    """(what, file name, where) of every certificate file the config names."""
    raw_listeners = _raw_section(data, "ocpp").get("listeners")
    for index, listener in _listeners(data):
        where = _where(raw_listeners, index) if isinstance(raw_listeners, NodeList) else None
        name = _listener_name(listener)
        certfiles = listener.get("certfile") or []
        for certfile in [certfiles] if isinstance(certfiles, str) else certfiles:
            yield f"OCPP listener {name} certificate {certfile}", str(certfile), where
        if listener.get("ca_certs"):
            yield f"OCPP listener {name} ca_certs", str(listener["ca_certs"]), where
    ocpp = data.sections.get("ocpp")
    certificates = ocpp.get("certificates") if isinstance(ocpp, dict) else None
    if isinstance(certificates, dict) and certificates.get("ca_certfile"):
        yield "OCPP charger CA", str(certificates["ca_certfile"]), None
    http = data.http or {}
    if http.get("ssl_certificate"):
        yield (
            "HTTP certificate",
            str(http["ssl_certificate"]),
            _where(_raw_section(data, "http"), "ssl_certificate"),
        )


def _expiry_findings(
    data: AuditInput, what: str, pem: bytes, where: str | None
) -> Iterator[Finding]:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        yield Finding(
            check="certificate_unreadable",
            severity=Severity.HIGH,
            subject=what,
            message=f"{what} is not a PEM certificate",
            fix="point it at a PEM-encoded X.509 certificate",
            where=where,
        )
        return
    warn_days = data.option(CONF_CERTIFICATE_WARN_DAYS, DEFAULT_CERTIFICATE_WARN_DAYS)
    now = datetime.datetime.fromtimestamp(data.now, datetime.UTC)
    # The first is the leaf (or the CA itself); the chain's others expire on their own too.
    for position, certificate in enumerate(certificates):
        left = (certificate.not_valid_after_utc - now).total_seconds() / DAY
        if left > warn_days:
            continue
        subject = certificate.subject.rfc4514_string() or "(no subject)"
        label = what if position == 0 else f"{what} (chain: {subject})"
        ends = certificate.not_valid_after_utc.isoformat(timespec="seconds")
        yield Finding(
            check="certificate_expired" if left <= 0 else "certificate_expiring",
            severity=Severity.HIGH if left <= CERTIFICATE_CRITICAL_DAYS else Severity.MEDIUM,
            subject=label,
            message=f"{label} ({subject}) "
            + (f"expired on {ends}" if left <= 0 else f"expires on {ends}, in {left:.0f} days"),
            fix="renew it and restart the hub (or reload the integration); chargers refuse a"
            " hub whose certificate has expired",
            where=where,
        )


def check_certificates(data: AuditInput) -> Iterator[Finding]:
    """Certificates the hub serves or trusts, near their expiry or unreadable."""
    for what, name, where in _certificate_files(data):
        path = data.path(name)
        try:
            pem = read_small_file(path)
        except OSError as err:
            yield Finding(
                check="certificate_unreadable",
                severity=Severity.HIGH,
                subject=what,
                message=f"{what} {path} cannot be read: {err.strerror or err}",
                fix="fix the path or the file's permissions; the listener cannot start without it",
                where=where,
            )
            continue
        yield from _expiry_findings(data, what, pem, where)
    stored = data.store(OCPP_CA_STORE)
    if isinstance(stored, dict) and isinstance(stored.get("certificate"), str):
        yield from _expiry_findings(
            data,
            "the hub's OCPP CA",
            stored["certificate"].encode(),
            f"{STORAGE_DIR}/{OCPP_CA_STORE}",
        )


def check_config_errors(data: AuditInput) -> Iterator[Finding]:
    """Configuration errors: what fails to validate is not running as written."""
    for error in data.errors:
        location = ":".join(str(part) for part in (error.file, error.line) if part is not None)
        yield Finding(
            check="config_error",
            severity=Severity.MEDIUM,
            subject=error.key or location or "configuration",
            message=f"configuration error: {error}",
            fix="fix it (evhub check-config lists every error); the audit skipped that section",
            where=location or None,
        )


CHECKS: Final[tuple[Check, ...]] = (
    check_config_errors,
    check_ocpp_listeners,
    check_charger_passwords,
    check_unknown_chargers,
    check_firmware_minimum,
    check_http_tls,
    check_plain_secrets,
    check_file_permissions,
    check_admin_passwords,
    check_unused_tokens,
    check_certificates,
)

__all__ = ["CHECKS", "AuditInput", "ConfigError", "Finding", "Severity", "run_audit"]
