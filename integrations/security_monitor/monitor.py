"""The detection rules: what they listen to, what they count, what they raise."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

from hub.charger import (
    EVENT_CHARGER,
    ChargerEventKind,
    SecurityEventData,
    fire_charger_event,
)
from hub.clock import clock
from hub.const import (
    ATTR_DOMAIN,
    ATTR_SERVICE,
    ATTR_SERVICE_DATA,
    ATTR_TARGET,
    EVENT_AUDIT,
    EVENT_CALL_SERVICE,
    EVENT_STATE_CHANGED,
)
from hub.core import Context, Event
from hub.exceptions import HubError, ServiceValidationError
from hub.plugins import SetupContext
from hub.registry import device_registry, entity_registry
from hub.security import EVENT_SECURITY, SEVERITY_RANK, Severity
from hub.storage import Store
from integrations.security_monitor.certificates import (
    Certificate,
    crl_files,
    hub_certificate_files,
    read_certificates,
    read_revoked,
    resolve,
    threshold,
)
from integrations.security_monitor.const import (
    CONF_COOLDOWN,
    CONF_COUNT,
    CONF_DAYS,
    CONF_ENABLED,
    CONF_FILES,
    CONF_INTERVAL,
    CONF_INTERVAL_HOURS,
    CONF_KEYS,
    CONF_KINDS,
    CONF_SEVERITY,
    CONF_TYPES,
    CONF_VARIABLES,
    CONF_WINDOW,
    DETECTION_TYPE_PREFIX,
    EVENT_CLIENT_CERTIFICATE,
    EVENT_DETECTION,
    EVENT_INVALID_MESSAGE,
    ORDERS_CONFIG,
    ORDERS_FIRMWARE,
    ORDERS_REBOOT,
    RULE_ACCOUNT_CHANGE,
    RULE_ADDRESS_CHANGE,
    RULE_BOOT_IDENTITY,
    RULE_CERTIFICATE_EXPIRY,
    RULE_CERTIFICATE_REVOKED,
    RULE_CHARGER_REPORTED,
    RULE_CONFIG_CHANGE,
    RULE_INVALID_MESSAGES,
    RULE_METER_BACKWARDS,
    RULE_RECONNECT_STORM,
    RULE_TLS_FAILURE,
    RULE_UNORDERED_FIRMWARE,
    RULE_UNORDERED_REBOOT,
    STORAGE_KEY,
    STORAGE_VERSION,
)

_LOGGER = logging.getLogger(__name__)

# Bounds on what hostile traffic can make the monitor remember: counting windows and
# cool-downs per subject (an address, a charge point id), oldest forgotten first.
MAX_SUBJECTS: Final = 10_000
# Audit actions that change who may do what (hub/http/auth_views.py).
ACCOUNT_ACTIONS: Final = {
    "user.add": "new user",
    "user.update": "user changed",
    "token.create": "new access token",
    "onboarding": "first user created",
}
# How long one configuration poll of one station may take.
POLL_TIMEOUT: Final = 30.0
# What is kept of a configuration value a charger shows.
MAX_VALUE: Final = 500
# At most this many stations polled at once.
POLL_CONCURRENCY: Final = 4


class _Bounded(OrderedDict[Any, Any]):
    """A dict that forgets its least recently set entries beyond MAX_SUBJECTS."""

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > MAX_SUBJECTS:
            self.popitem(last=False)


class SecurityMonitor:
    """Every rule of the security monitor, attached to one hub through one set-up context."""

    def __init__(self, ctx: SetupContext) -> None:
        self.ctx = ctx
        self.hub = ctx.hub
        self.config: dict[str, Any] = ctx.config or {}
        self.clock = clock(self.hub)
        self._windows = _Bounded()  # (rule, subject) -> deque of times
        self._fired = _Bounded()  # (rule, subject) -> when it last fired
        self._stations: dict[str, str] = {}  # charge point id -> station device id
        self._addresses = _Bounded()  # station id -> (address, time)
        self._orders = _Bounded()  # (station id, service) -> when the hub ordered it
        # Kept across restarts: per station the identity it booted with, its firmware and
        # the configuration values last polled.
        self._records: dict[str, dict[str, Any]] = {}
        self._store: Store[dict[str, Any]] = Store(
            self.hub, STORAGE_VERSION, STORAGE_KEY, private=True
        )
        self._kinds: dict[str, list[str]] = {}
        for rule, options in self.config.items():
            if isinstance(options, Mapping) and options.get(CONF_ENABLED):
                for kind in options.get(CONF_KINDS, ()):
                    self._kinds.setdefault(kind, []).append(rule)
        self._poll: asyncio.Task[None] | None = None
        self._checking: asyncio.Task[None] | None = None
        # Charge point id -> the client certificate it last presented.
        self._charger_certificates: dict[str, Certificate] = {}
        self._announced = _Bounded()  # (where, serial, days) already told

    def _on(self, rule: str) -> bool:
        options = self.config.get(rule)
        return isinstance(options, Mapping) and bool(options.get(CONF_ENABLED))

    async def start(self) -> None:
        """Load the records, listen, and schedule the configuration poll."""
        stored = await self._store.load()
        records = (stored or {}).get("records")
        if isinstance(records, dict):
            self._records = {k: v for k, v in records.items() if isinstance(v, dict)}
        self.ctx.on_unload(self._store.flush)
        ctx = self.ctx
        ctx.listen(EVENT_SECURITY, self._on_security)
        ctx.listen(EVENT_CHARGER, self._on_charger)
        ctx.listen(EVENT_CALL_SERVICE, self._on_call_service)
        if self._on(RULE_INVALID_MESSAGES):
            ctx.listen(EVENT_INVALID_MESSAGE, self._on_invalid_message)
        if self._on(RULE_ACCOUNT_CHANGE):
            ctx.listen(EVENT_AUDIT, self._on_audit)
        if self._on(RULE_METER_BACKWARDS):
            # Filtered on the raw data: the hot path builds no Event for other changes.
            ctx.listen(EVENT_STATE_CHANGED, self._on_energy, event_filter=_energy_register)
        if self._on(RULE_CONFIG_CHANGE):
            ctx.track_interval(self.config[RULE_CONFIG_CHANGE][CONF_INTERVAL] * 60, self.poll)
        if self._on(RULE_CERTIFICATE_EXPIRY):
            ctx.listen(EVENT_CLIENT_CERTIFICATE, self._on_client_certificate)
        if self._on(RULE_CERTIFICATE_EXPIRY) or self._on(RULE_CERTIFICATE_REVOKED):
            hours = self.config[RULE_CERTIFICATE_EXPIRY][CONF_INTERVAL_HOURS]
            ctx.track_interval(hours * 3600, self.check_certificates)
            self.check_certificates()

    def _save(self) -> None:
        self._store.delay_save(lambda: {"records": self._records}, 1.0)

    # Detections -----------------------------------------------------------------------

    def detect(
        self,
        rule: str,
        subject: str,
        title: str,
        message: str,
        *,
        station_id: str | None = None,
        charge_point_id: str | None = None,
        remote: str | None = None,
        data: Mapping[str, Any] | None = None,
        severity: str | None = None,
        context: Context | None = None,
    ) -> bool:
        """A rule fired about subject: raise its alert and tell the bus, once per cool-down."""
        now = self.clock.monotonic()
        key = (rule, subject)
        last = self._fired.get(key)
        if last is not None and now - last < self.config.get(CONF_COOLDOWN, 0):
            return False
        self._fired.put(key, now)
        severity = severity or self.config[rule][CONF_SEVERITY]
        if station_id is None and charge_point_id is not None:
            station_id = self._stations.get(charge_point_id)
        payload: dict[str, Any] = {
            "rule": rule,
            "severity": severity,
            "title": title,
            "message": message,
            "subject": subject,
            "station_id": station_id,
            "charge_point_id": charge_point_id,
            "remote": remote,
            "data": dict(data or {}),
        }
        _LOGGER.warning("Security detection %s: %s", rule, message)
        self.hub.bus.fire(EVENT_DETECTION, payload, context)
        # What a charger reported is a security_event charger event already: not twice.
        if station_id is not None and rule != RULE_CHARGER_REPORTED:
            # Keys beyond SecurityEventData pass along to the trigger (trigger.rule, ...).
            event: dict[str, Any] = {
                "type": DETECTION_TYPE_PREFIX + rule,
                "severity": severity,
                "rule": rule,
                "detection": True,
                "message": message,
                "remote": remote,
            }
            if charge_point_id is not None:
                event["charge_point_id"] = charge_point_id
            fire_charger_event(
                self.hub,
                ChargerEventKind.SECURITY_EVENT,
                station_id=station_id,
                data=cast(SecurityEventData, event),
                context=context,
            )
        alert: dict[str, Any] = {
            "key": f"security_monitor:{rule}:{subject}"[:255],
            "title": title[:255],
            "message": message,
            "severity": severity,
        }
        if station_id is not None:
            alert["station_id"] = station_id
            alert["device_id"] = station_id
        self.ctx.create_task(self._raise_alert(alert, context), f"alert {rule}")
        return True

    async def _raise_alert(self, alert: dict[str, Any], context: Context | None) -> None:
        try:
            await self.hub.services.call(
                "alert",
                "raise",
                alert,
                context=Context(parent_id=context.id if context is not None else None),
            )
        except HubError as err:
            _LOGGER.warning("Could not raise the alert %s: %s", alert["key"], err)

    def _count(self, rule: str, subject: str) -> int | None:
        """Count one occurrence of subject under rule; the count when it reaches the
        threshold within the window (the window then starts afresh), else None."""
        options = self.config[rule]
        threshold: int = options[CONF_COUNT]
        window: float = options[CONF_WINDOW]
        now = self.clock.monotonic()
        key = (rule, subject)
        times: deque[float] | None = self._windows.get(key)
        if times is None:
            times = deque(maxlen=threshold)
        self._windows.put(key, times)
        times.append(now)
        while times and now - times[0] > window:
            times.popleft()
        if len(times) < threshold:
            return None
        times.clear()
        return threshold

    # Security log ---------------------------------------------------------------------

    def _on_security(self, event: Event) -> None:
        data = event.data
        kind = str(data.get("kind") or "")
        rules = self._kinds.get(kind)
        if not rules:
            return
        cp_id = _text(data.get("charge_point_id"))
        remote = _text(data.get("remote"))
        message = str(data.get("message") or kind)
        raw = data.get("data")
        details: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        for rule in rules:
            if rule == RULE_CHARGER_REPORTED:
                self._charger_reported(cp_id, remote, data, details, event.context)
                continue
            options = self.config[rule]
            if CONF_COUNT not in options:
                self.detect(
                    rule,
                    cp_id or remote or "hub",
                    f"{_title(rule)}: {cp_id or remote or 'hub'}",
                    message,
                    charge_point_id=cp_id,
                    remote=remote,
                    data={"kind": kind, **details},
                    context=event.context,
                )
                continue
            self._rate(rule, kind, cp_id, remote, message, event.context)

    def _on_invalid_message(self, event: Event) -> None:
        data = event.data
        self._rate(
            RULE_INVALID_MESSAGES,
            f"invalid message ({data.get('code')})",
            _text(data.get("charge_point_id")),
            _text(data.get("remote")),
            f"{data.get('action') or 'a frame'}: {data.get('code')}",
            event.context,
        )

    def _rate(
        self,
        rule: str,
        kind: str,
        cp_id: str | None,
        remote: str | None,
        message: str,
        context: Context,
    ) -> None:
        """Count one occurrence per charge point and per address; detect above the rate."""
        for what, subject in (("charge point", cp_id), ("address", remote)):
            if subject is None:
                continue
            count = self._count(rule, f"{what}:{subject}")
            if count is None:
                continue
            window = self.config[rule][CONF_WINDOW]
            self.detect(
                rule,
                f"{what}:{subject}",
                f"{_title(rule)}: {what} {subject}",
                f"{count} x {kind} from {what} {subject} within {window:g} s (last: {message})",
                # Per address, the station is not the subject: an attacker may use its id.
                charge_point_id=cp_id if what == "charge point" else None,
                remote=remote,
                data={"kind": kind, "count": count, "window_seconds": window},
                context=context,
            )

    def _charger_reported(
        self,
        cp_id: str | None,
        remote: str | None,
        data: Mapping[str, Any],
        details: Mapping[str, Any],
        context: Context,
    ) -> None:
        event_type = str(details.get("type") or "")
        severity = str(data.get("severity") or "warning")
        if self._on(RULE_TLS_FAILURE) and event_type in self.config[RULE_TLS_FAILURE][CONF_TYPES]:
            subject = f"charge point:{cp_id or remote}"
            count = self._count(RULE_TLS_FAILURE, subject)
            if count is not None:
                self.detect(
                    RULE_TLS_FAILURE,
                    subject,
                    f"TLS failures: {cp_id or remote}",
                    f"{cp_id} reported {count} TLS failures ({event_type})",
                    charge_point_id=cp_id,
                    remote=remote,
                    data={"type": event_type, "count": count},
                    context=context,
                )
        least = self.config[RULE_CHARGER_REPORTED]["min_severity"]
        if SEVERITY_RANK.get(Severity(severity), 0) < SEVERITY_RANK[Severity(least)]:
            return
        self.detect(
            RULE_CHARGER_REPORTED,
            f"{cp_id}:{event_type}",
            f"{cp_id} reported {event_type}",
            f"{cp_id} reported the {severity} security event {event_type}"
            + (f": {details.get('tech_info')}" if details.get("tech_info") else ""),
            charge_point_id=cp_id,
            remote=remote,
            data={"type": event_type},
            severity=severity if severity in ("warning", "critical") else None,
            context=context,
        )

    # Audit ----------------------------------------------------------------------------

    def _on_audit(self, event: Event) -> None:
        data = event.data
        action = str(data.get("action") or "")
        what = ACCOUNT_ACTIONS.get(action)
        if what is None or data.get("result") != "ok":
            return
        target = str(data.get("target") or "")
        by = data.get("username") or "?"
        self.detect(
            RULE_ACCOUNT_CHANGE,
            f"{action}:{target}:{self.clock.time():.0f}",
            f"{what}: {target}",
            f"{what}: {target}, by {by} ({data.get('source')})",
            data={"action": action, "target": target, "by": by},
            context=event.context,
        )

    # Service calls: what the hub itself ordered ----------------------------------------

    def _on_call_service(self, event: Event) -> None:
        data = event.data
        service = str(data.get(ATTR_SERVICE) or "")
        if service not in ORDERS_REBOOT and service not in ORDERS_CONFIG:
            return
        now = self.clock.monotonic()
        for station_id in self._targets(data.get(ATTR_SERVICE_DATA), data.get(ATTR_TARGET)):
            self._orders.put((station_id, service), now)
        _LOGGER.debug("%s.%s ordered", data.get(ATTR_DOMAIN), service)

    def _targets(self, service_data: Any, target: Any) -> set[str]:
        """The stations a service call is for: its charge_point_id or target devices."""
        found: set[str] = set()
        for source in (service_data, target):
            if not isinstance(source, Mapping):
                continue
            cp_id = source.get("charge_point_id")
            if isinstance(cp_id, str) and cp_id in self._stations:
                found.add(self._stations[cp_id])
            device_ids = source.get("device_id")
            entity_ids = source.get("entity_id")
            ids = [device_ids] if isinstance(device_ids, str) else list(device_ids or [])
            for entity_id in [entity_ids] if isinstance(entity_ids, str) else entity_ids or []:
                entry = entity_registry(self.hub).get(str(entity_id))
                if entry is not None and entry.device_id:
                    ids.append(entry.device_id)
            for device_id in ids:
                station = device_registry(self.hub).station_of(str(device_id))
                found.add(station.id if station is not None else str(device_id))
        return found

    def _ordered(self, station_id: str, services: Iterable[str], window: float) -> bool:
        now = self.clock.monotonic()
        for service in services:
            at = self._orders.get((station_id, service))
            if at is not None and now - at <= window:
                return True
        return False

    # Charger events ------------------------------------------------------------------

    def _on_charger(self, event: Event) -> None:
        data = event.data
        station_id = data.get("station_id")
        if not isinstance(station_id, str):
            return
        cp_id = _text(data.get("charge_point_id"))
        if cp_id is not None:
            self._stations[cp_id] = station_id
        kind = data.get("kind")
        if kind == ChargerEventKind.ONLINE:
            self._online(station_id, cp_id, data, event.context)
        elif kind == ChargerEventKind.BOOT:
            self._boot(station_id, cp_id, data, event.context)
        elif kind == ChargerEventKind.SESSION_ENDED and self._on(RULE_METER_BACKWARDS):
            energy = data.get("energy_wh")
            if isinstance(energy, int | float) and energy < 0:
                self.detect(
                    RULE_METER_BACKWARDS,
                    f"{station_id}:{data.get('transaction_id')}",
                    f"Meter went backwards: {cp_id or station_id}",
                    f"{cp_id or station_id}: transaction {data.get('transaction_id')} ended "
                    f"with {energy:g} Wh (its meter stop is below its meter start)",
                    station_id=station_id,
                    charge_point_id=cp_id,
                    data={"transaction_id": data.get("transaction_id"), "energy_wh": energy},
                    context=event.context,
                )

    def _online(
        self, station_id: str, cp_id: str | None, data: Mapping[str, Any], context: Context
    ) -> None:
        name = cp_id or station_id
        if self._on(RULE_RECONNECT_STORM):
            count = self._count(RULE_RECONNECT_STORM, station_id)
            if count is not None:
                window = self.config[RULE_RECONNECT_STORM][CONF_WINDOW]
                self.detect(
                    RULE_RECONNECT_STORM,
                    station_id,
                    f"Reconnect storm: {name}",
                    f"{name} connected {count} times within {window:g} s",
                    station_id=station_id,
                    charge_point_id=cp_id,
                    data={"count": count, "window_seconds": window},
                    context=context,
                )
        if not self._on(RULE_ADDRESS_CHANGE):
            return
        remote = _text(data.get("remote")) or self._remote_of(station_id)
        if remote is None:
            return
        now = self.clock.monotonic()
        last = self._addresses.get(station_id)
        self._addresses.put(station_id, (remote, now))
        window = self.config[RULE_ADDRESS_CHANGE][CONF_WINDOW]
        if last is not None and last[0] != remote and now - last[1] <= window:
            self.detect(
                RULE_ADDRESS_CHANGE,
                station_id,
                f"{name} connected from a new address",
                f"{name} connected from {remote} {now - last[1]:.0f} s after connecting "
                f"from {last[0]}: another device may be using its identity",
                station_id=station_id,
                charge_point_id=cp_id,
                remote=remote,
                data={"previous": last[0], "seconds": round(now - last[1], 1)},
                context=context,
            )

    def _remote_of(self, station_id: str) -> str | None:
        """The address a station's driver shows on its entities (OCPP: connectivity)."""
        for entry in entity_registry(self.hub).entities_for_device(station_id):
            state = self.hub.states.get(entry.entity_id)
            if state is not None and isinstance(state.attributes.get("remote"), str):
                return str(state.attributes["remote"])
        return None

    def _boot(
        self, station_id: str, cp_id: str | None, data: Mapping[str, Any], context: Context
    ) -> None:
        name = cp_id or station_id
        device = device_registry(self.hub).get(station_id)
        now: dict[str, Any] = {
            "vendor": device.manufacturer if device is not None else None,
            "model": device.model if device is not None else None,
            "serial": device.serial_number if device is not None else None,
            "firmware": _text(data.get("firmware"))
            or (device.sw_version if device is not None else None),
        }
        record = self._records.get(station_id)
        self._records[station_id] = {**(record or {}), **{k: v for k, v in now.items() if v}}
        self._save()
        if record is None:
            return  # first boot seen: what it says is what is on record from now
        if self._on(RULE_BOOT_IDENTITY):
            changed = {
                key: {"was": record.get(key), "now": now[key]}
                for key in ("vendor", "model", "serial")
                if record.get(key) and now[key] and record.get(key) != now[key]
            }
            if changed:
                said = ", ".join(f"{k} {v['was']} → {v['now']}" for k, v in changed.items())
                self.detect(
                    RULE_BOOT_IDENTITY,
                    station_id,
                    f"{name} booted as another device",
                    f"{name} booted with {said}: a swapped or impersonated station",
                    station_id=station_id,
                    charge_point_id=cp_id,
                    data=changed,
                    context=context,
                )
        old_fw, new_fw = record.get("firmware"), now["firmware"]
        if self._on(RULE_UNORDERED_FIRMWARE) and old_fw and new_fw and old_fw != new_fw:
            window = self.config[RULE_UNORDERED_FIRMWARE][CONF_WINDOW]
            if not self._ordered(station_id, ORDERS_FIRMWARE, window):
                self.detect(
                    RULE_UNORDERED_FIRMWARE,
                    f"{station_id}:{new_fw}",
                    f"Firmware changed without an order: {name}",
                    f"{name} booted with firmware {new_fw} (was {old_fw}); the hub ordered no "
                    f"firmware update in the last {window:g} s",
                    station_id=station_id,
                    charge_point_id=cp_id,
                    data={"was": old_fw, "now": new_fw},
                    context=context,
                )
        if self._on(RULE_UNORDERED_REBOOT):
            window = self.config[RULE_UNORDERED_REBOOT][CONF_WINDOW]
            reason = _text(data.get("reason"))
            if reason != "Triggered" and not self._ordered(station_id, ORDERS_REBOOT, window):
                self.detect(
                    RULE_UNORDERED_REBOOT,
                    station_id,
                    f"Reboot nobody ordered: {name}",
                    f"{name} booted again ({reason or 'no reason given'}) and the hub ordered "
                    f"no reset in the last {window:g} s",
                    station_id=station_id,
                    charge_point_id=cp_id,
                    data={"reason": reason},
                    context=context,
                )

    # Energy registers -----------------------------------------------------------------

    def _on_energy(self, event: Event) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        try:
            before, after = float(old.state), float(new.state)
        except ValueError:
            return
        if after >= before:
            return
        entry = entity_registry(self.hub).get(new.entity_id)
        device_id = entry.device_id if entry is not None else None
        station = device_registry(self.hub).station_of(device_id) if device_id else None
        station_id = station.id if station is not None else None
        cp_id = next((cp for cp, sid in self._stations.items() if sid == station_id), None)
        self.detect(
            RULE_METER_BACKWARDS,
            new.entity_id,
            f"Energy register went backwards: {new.entity_id}",
            f"{new.entity_id} went from {before:g} to {after:g}",
            station_id=station_id,
            charge_point_id=cp_id,
            data={"entity_id": new.entity_id, "was": before, "now": after},
            context=event.context,
        )

    # Certificates ---------------------------------------------------------------------

    def _on_client_certificate(self, event: Event) -> None:
        data = event.data
        cp_id = _text(data.get("charge_point_id"))
        not_after = data.get("not_after")
        if cp_id is None or not isinstance(not_after, int | float):
            return
        if cp_id not in self._charger_certificates and len(self._charger_certificates) >= (
            MAX_SUBJECTS
        ):
            return
        certificate = Certificate(
            f"charger {cp_id}", str(data.get("subject") or cp_id), "", float(not_after)
        )
        self._charger_certificates[cp_id] = certificate
        self._judge([certificate], charge_point_id=cp_id, context=event.context)

    def check_certificates(self) -> None:
        """Start a check of every watched certificate, unless one is still running."""
        if self._checking is not None and not self._checking.done():
            return
        self._checking = self.ctx.create_task(self.check_certificates_now(), "certificates")

    async def check_certificates_now(self) -> None:
        """Read the hub's certificate files (in the executor) and judge every certificate."""
        hub = self.hub
        options = self.config[RULE_CERTIFICATE_EXPIRY]
        config = hub.config
        paths = hub_certificate_files(
            hub.config_dir,
            config.http if config is not None else None,
            config.integrations if config is not None else {},
        )
        paths += [resolve(hub.config_dir, name) for name in options[CONF_FILES]]
        found, problems = await hub.run_in_executor(read_certificates, paths)
        for problem in problems:
            _LOGGER.warning("Certificate not checked: %s", problem)
        if self._on(RULE_CERTIFICATE_EXPIRY):
            self._judge(found)
        if self._on(RULE_CERTIFICATE_REVOKED):
            crls = crl_files(hub.config_dir, config.integrations if config is not None else {})
            revoked, problems = await hub.run_in_executor(read_revoked, crls)
            for problem in problems:
                _LOGGER.warning("Revocation list not read: %s", problem)
            self._judge_revoked(found, revoked)
        for cp_id, certificate in list(self._charger_certificates.items()):
            self._judge([certificate], charge_point_id=cp_id)

    def _judge_revoked(
        self, certificates: Iterable[Certificate], revoked: set[tuple[str, str]]
    ) -> None:
        """A hub certificate a listener's CRL lists: chargers checking revocation will refuse
        the hub."""
        for certificate in certificates:
            if (certificate.issuer, certificate.serial) not in revoked:
                continue
            key = (certificate.where, certificate.serial, -1)
            if key in self._announced:
                continue
            self._announced.put(key, True)
            self.detect(
                RULE_CERTIFICATE_REVOKED,
                f"{certificate.where}:{certificate.serial}",
                f"Certificate revoked: {certificate.where}",
                f"The certificate {certificate.subject} ({certificate.where}, serial "
                f"{certificate.serial}) is on its issuer's revocation list",
                data={
                    "where": certificate.where,
                    "subject": certificate.subject,
                    "serial": certificate.serial,
                },
            )

    def _judge(
        self,
        certificates: Iterable[Certificate],
        *,
        charge_point_id: str | None = None,
        context: Context | None = None,
    ) -> None:
        days: list[int] = self.config[RULE_CERTIFICATE_EXPIRY][CONF_DAYS]
        now = self.clock.time()
        for certificate in certificates:
            left = (certificate.not_after - now) / 86400
            within = threshold(left, days)
            key = (certificate.where, certificate.serial, within)
            if within is None or key in self._announced:
                continue
            # Once per certificate and threshold: 30 days, then 7, then expired.
            self._announced.put(key, True)
            when = "has expired" if within == 0 else f"expires in {max(left, 0):.1f} days"
            self.detect(
                RULE_CERTIFICATE_EXPIRY,
                f"{certificate.where}:{certificate.serial}:{within}",
                f"Certificate {when}: {certificate.where}",
                f"The certificate {certificate.subject} ({certificate.where}) {when}",
                charge_point_id=charge_point_id,
                data={
                    "where": certificate.where,
                    "subject": certificate.subject,
                    "not_after": certificate.not_after,
                    "days": within,
                },
                severity="critical" if within <= min(days) else None,
                context=context,
            )

    # Configuration poll ---------------------------------------------------------------

    def poll(self) -> None:
        """Start a poll of the watched configuration keys, unless one is still running."""
        if self._poll is not None and not self._poll.done():
            return
        self._poll = self.ctx.create_task(self.poll_now(), "configuration poll")

    async def poll_now(self) -> None:
        """Read the watched keys of every connected station and compare with the last."""
        limit = asyncio.Semaphore(POLL_CONCURRENCY)

        async def one(cp_id: str, station_id: str) -> None:
            async with limit:
                try:
                    values = await asyncio.wait_for(self._read(cp_id), POLL_TIMEOUT)
                except (HubError, TimeoutError) as err:
                    _LOGGER.debug("Configuration poll of %s: %s", cp_id, err)
                    return
                except Exception:  # one station's odd answer never stops the others' poll
                    _LOGGER.exception("Configuration poll of %s failed", cp_id)
                    return
                if values is not None:
                    self._compare(cp_id, station_id, values)

        await asyncio.gather(*(one(cp, sid) for cp, sid in list(self._stations.items())))

    async def _read(self, cp_id: str) -> dict[str, str | None] | None:
        """The watched keys' values (None: the station does not say), or None: no answer."""
        services = self.hub.services
        options = self.config[RULE_CONFIG_CHANGE]
        keys: list[str] = options[CONF_KEYS]
        variables: list[dict[str, str]] = options[CONF_VARIABLES]
        record = self._records.get(self._stations[cp_id], {})
        version = record.get("config_via")
        if (
            version != "get_variables"
            and keys
            and services.has_service("ocpp", "get_configuration")
        ):
            try:
                answer = await services.call(
                    "ocpp", "get_configuration", {"charge_point_id": cp_id, "key": keys}
                )
            except ServiceValidationError:
                pass  # not a 1.6 station: ask with GetVariables
            else:
                found: dict[str, str | None] = dict.fromkeys(keys)
                for item in (answer or {}).get("configurationKey") or []:
                    if isinstance(item, Mapping) and item.get("key") in found:
                        value = item.get("value")
                        found[str(item["key"])] = None if value is None else str(value)
                return found
        if variables and services.has_service("ocpp", "get_variables"):
            answer = await services.call(
                "ocpp",
                "get_variables",
                {
                    "charge_point_id": cp_id,
                    "variables": [
                        {"component": {"name": v["component"]}, "variable": {"name": v["variable"]}}
                        for v in variables
                    ],
                },
            )
            self._records.setdefault(self._stations[cp_id], {})["config_via"] = "get_variables"
            found = {}
            results = answer.get("getVariableResult") if isinstance(answer, Mapping) else answer
            for item in results or []:
                if not isinstance(item, Mapping):
                    continue
                component = item.get("component")
                variable = item.get("variable")
                comp = component.get("name") if isinstance(component, Mapping) else component
                var = variable.get("name") if isinstance(variable, Mapping) else variable
                value = item.get("attributeValue")
                found[f"{comp}.{var}"] = None if value is None else str(value)
            return found
        return None

    def _compare(self, cp_id: str, station_id: str, values: Mapping[str, str | None]) -> None:
        record = self._records.setdefault(station_id, {})
        known: dict[str, str | None] = record.get("config") or {}
        window = self.config[RULE_CONFIG_CHANGE][CONF_INTERVAL] * 60 * 2
        ordered = self._ordered(station_id, ORDERS_CONFIG, window)
        # A secret a charger shows (it should not) is kept only as a digest.
        values = {key: _kept(key, value) for key, value in values.items()}
        changed = {
            key: {"was": known[key], "now": value}
            for key, value in values.items()
            if key in known and known[key] != value
        }
        record["config"] = {**known, **values}
        self._save()
        if not changed or ordered:
            return
        said = ", ".join(
            f"{key} {_shown(key, v['was'])} → {_shown(key, v['now'])}" for key, v in changed.items()
        )
        self.detect(
            RULE_CONFIG_CHANGE,
            f"{station_id}:{','.join(sorted(changed))}",
            f"Configuration changed outside the hub: {cp_id}",
            f"{cp_id}: {said}, and the hub changed no configuration of it",
            station_id=station_id,
            charge_point_id=cp_id,
            data={"keys": sorted(changed)},
        )


def _energy_register(data: Mapping[str, Any]) -> bool:
    """Whether a state change is of an ever-increasing energy register (a bus filter)."""
    old, new = data.get("old_state"), data.get("new_state")
    if old is None or new is None:
        return False
    attributes = new.attributes
    if attributes.get("device_class") != "energy":
        return False
    state_class = attributes.get("state_class")
    if state_class is not None:
        return bool(state_class == "total_increasing")
    # Without a state class: a per-session counter starts from zero each session.
    return "session" not in new.entity_id


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _title(rule: str) -> str:
    return rule.replace("_", " ").capitalize()


def _secret(key: str) -> bool:
    lowered = key.lower()
    return "key" in lowered or "password" in lowered


def _kept(key: str, value: str | None) -> str | None:
    """A configuration value as the monitor keeps it: a secret's SHA-256 only."""
    if value is None:
        return None
    if not _secret(key):
        return value[:MAX_VALUE]
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _shown(key: str, value: str | None) -> str:
    """A configuration value as a detection may show it: secrets never."""
    if value is not None and _secret(key):
        return "(secret)"
    return repr(value)
