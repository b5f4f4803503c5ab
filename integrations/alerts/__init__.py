"""Alerts: raised, deduplicated by key while open, acknowledged, resolved, with history.

An alert is raised by the ``alert.raise`` service (automations call it) or by a built-in rule,
each of which a site owner gets without writing YAML and can tune or turn off::

    alerts:
      station_offline: {enabled: true, minutes: 10}
      connector_faulted: {enabled: true}
      security_event: {enabled: true, min_severity: warning}
      uptime_below_target: {enabled: true, target: 97.0, min_hours_in_service: 24}
      charge_success_below_target: {enabled: true, target: 80.0, days: 7, min_attempts: 5,
                                    interval_minutes: 15}

Open alerts and the most recent resolved ones are kept in ``.storage/core.alerts``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.charger import EVENT_CHARGER, ChargerEventKind
from hub.clock import Timer, clock
from hub.const import EVENT_UPTIME_UPDATED
from hub.core import Context, Event, Hub, HubKey, ServiceCall, Unsubscribe, new_id
from hub.exceptions import HubError
from hub.hookspecs import hookimpl
from hub.origins import origin_of
from hub.plugins import Integration, SetupContext
from hub.registry import device_registry
from hub.security import EVENT_SECURITY
from hub.storage import Store
from integrations.alerts.views import register_views

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "alerts"
SERVICE_DOMAIN: Final = "alert"
DATA_ALERTS: Final[HubKey[_Setup]] = HubKey("alerts.manager")
STORAGE_KEY: Final = "core.alerts"
STORAGE_VERSION: Final = 1
MAX_RESOLVED: Final = 1000
SAVE_DELAY: Final = 1.0

EVENT_ALERT_RAISED: Final = "alert_raised"
EVENT_ALERT_UPDATED: Final = "alert_updated"
EVENT_ALERT_ACKNOWLEDGED: Final = "alert_acknowledged"
EVENT_ALERT_RESOLVED: Final = "alert_resolved"
# Fired by the uptime engine: {device_id (or port_id), uptime_percent, window_min}.

SEVERITIES: Final = ("info", "warning", "critical")
STATE_OPEN: Final = "open"
STATE_ACKNOWLEDGED: Final = "acknowledged"
STATE_RESOLVED: Final = "resolved"
RESOLUTION_MANUAL: Final = "manual"
RESOLUTION_AUTO: Final = "auto"

CONF_ENABLED: Final = "enabled"
CONF_MINUTES: Final = "minutes"
CONF_MIN_SEVERITY: Final = "min_severity"
CONF_TARGET: Final = "target"
# A port a few minutes in service with a minute's fault is far below any target: judged
# only once its window is this long.
CONF_MIN_HOURS_IN_SERVICE: Final = "min_hours_in_service"
RULE_STATION_OFFLINE: Final = "station_offline"
RULE_CONNECTOR_FAULTED: Final = "connector_faulted"
RULE_SECURITY_EVENT: Final = "security_event"
RULE_UPTIME_BELOW_TARGET: Final = "uptime_below_target"
# Per station: the share of charge attempts that succeeded over the trailing days, checked
# every interval_minutes once min_attempts were judged (integrations.charge_success defines
# success).
RULE_CHARGE_SUCCESS_BELOW_TARGET: Final = "charge_success_below_target"
CONF_DAYS: Final = "days"
CONF_MIN_ATTEMPTS: Final = "min_attempts"
CONF_INTERVAL_MINUTES: Final = "interval_minutes"

ATTR_ALERT: Final = "alert"
ATTR_KEY: Final = "key"
ATTR_TITLE: Final = "title"
ATTR_MESSAGE: Final = "message"
ATTR_SEVERITY: Final = "severity"
ATTR_NOTE: Final = "note"
ATTR_STATION_ID: Final = "station_id"
ATTR_DEVICE_ID: Final = "device_id"
ATTR_ENTITY_ID: Final = "entity_id"

# The charger events a charge attempt's outcome shows in.
_ATTEMPT_KINDS = (ChargerEventKind.SESSION_ENDED, ChargerEventKind.STATUS)


class AlertError(HubError):
    """An alert operation was refused."""


class AlertNotFoundError(AlertError, LookupError):
    """No alert has that id, and no open alert has that key."""

    http_status = 404
    error_code = "not_found"


class AlertResolvedError(AlertError):
    """The alert is resolved already: it cannot be acknowledged or resolved again."""

    http_status = 409
    error_code = "conflict"


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(slots=True)
class Alert:
    """One alert and what happened to it."""

    id: str
    key: str
    title: str
    message: str
    severity: str
    source: str
    raised_at: float
    last_seen_at: float
    station_id: str | None = None
    device_id: str | None = None
    entity_id: str | None = None
    state: str = STATE_OPEN
    count: int = 1
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Tell whether the alert is not resolved yet (open or acknowledged)."""
        return self.state != STATE_RESOLVED

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Rebuild an alert from as_dict() output."""
        alert = cls(**data)
        if alert.severity not in SEVERITIES or alert.state not in (
            STATE_OPEN,
            STATE_ACKNOWLEDGED,
            STATE_RESOLVED,
        ):
            raise ValueError(f"invalid stored alert {alert.id!r}")
        alert.history = [dict(entry) for entry in alert.history]
        return alert

    def _log(self, now: float, action: str, by: str | None, note: str | None = None) -> None:
        """Note what happened; repeated updates keep the latest HISTORY_UPDATES only (an
        alert re-raised every minute for months must not grow without end: ``count`` says
        how often it was seen)."""
        self.history.append({"time": now, "action": action, "by": by, "note": note})
        if action == "updated":
            updates = [i for i, item in enumerate(self.history) if item["action"] == "updated"]
            if len(updates) > HISTORY_UPDATES:
                del self.history[updates[0]]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        data = {name: getattr(self, name) for name in _ALERT_FIELDS}
        data["history"] = [dict(item) for item in self.history]
        return data


_ALERT_FIELDS: Final = tuple(f.name for f in fields(Alert) if f.name != "history")
# The most recent "updated" entries an alert's history keeps.
HISTORY_UPDATES: Final = 20


class AlertManager:
    """The hub's alerts: active ones by key, resolved ones kept for history, persisted."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._by_id: dict[str, Alert] = {}
        self._active: dict[str, Alert] = {}  # by key
        self._resolved: deque[Alert] = deque()  # oldest resolved first
        self._store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY)

    async def load(self) -> None:
        """Read the alerts kept at the last stop."""
        data = await self._store.load()
        resolved: list[Alert] = []
        for raw in (data or {}).get("alerts", []):
            try:
                alert = Alert.from_dict(raw)
            except (TypeError, ValueError) as err:
                _LOGGER.warning("Skipping a stored alert: %s", err)
                continue
            if alert.active:
                if alert.key in self._active:
                    continue
                self._active[alert.key] = alert
            else:
                resolved.append(alert)
            self._by_id[alert.id] = alert
        resolved.sort(key=lambda alert: alert.resolved_at or 0.0)
        self._resolved.extend(resolved)
        self._trim()

    async def flush(self) -> None:
        """Write pending changes now."""
        await self._store.flush()

    # Queries

    def open(self, *, include_acknowledged: bool = True) -> list[Alert]:
        """Return the alerts not resolved yet, oldest first."""
        return sorted(
            (
                alert
                for alert in self._active.values()
                if include_acknowledged or alert.state == STATE_OPEN
            ),
            key=lambda alert: alert.raised_at,
        )

    def get(self, id_or_key: str) -> Alert | None:
        """Return an alert by id, or the active alert with that key."""
        return self._by_id.get(id_or_key) or self._active.get(id_or_key)

    def active(self, key: str) -> Alert | None:
        """Return the open or acknowledged alert with that key."""
        return self._active.get(key)

    def history(self, limit: int = 100) -> list[Alert]:
        """Return resolved alerts, most recently resolved first."""
        if limit <= 0:
            return []
        found: list[Alert] = []
        for alert in reversed(self._resolved):
            found.append(alert)
            if len(found) >= limit:
                break
        return found

    # Changes

    def raise_alert(
        self,
        key: str,
        title: str,
        message: str = "",
        severity: str = "warning",
        source: str = "service",
        *,
        station_id: str | None = None,
        device_id: str | None = None,
        entity_id: str | None = None,
        context: Context | None = None,
    ) -> Alert:
        """Raise an alert; an active one with the same key is updated, not duplicated."""
        if severity not in SEVERITIES:
            raise AlertError(f"invalid severity {severity!r}; expected one of {SEVERITIES}")
        now = clock(self.hub).time()
        by = context.user_id if context is not None else None
        alert = self._active.get(key)
        if alert is not None:
            alert.count += 1
            alert.last_seen_at = now
            alert.title = title
            alert.message = message
            alert.severity = severity
            alert.station_id = station_id or alert.station_id
            alert.device_id = device_id or alert.device_id
            alert.entity_id = entity_id or alert.entity_id
            alert._log(now, "updated", by, message or None)
            self._changed(EVENT_ALERT_UPDATED, alert, context)
            return alert
        alert = Alert(
            id=new_id(),
            key=key,
            title=title,
            message=message,
            severity=severity,
            source=source,
            raised_at=now,
            last_seen_at=now,
            station_id=station_id,
            device_id=device_id,
            entity_id=entity_id,
        )
        alert._log(now, "raised", by, message or None)
        self._active[key] = alert
        self._by_id[alert.id] = alert
        self._changed(EVENT_ALERT_RAISED, alert, context)
        return alert

    def acknowledge(
        self,
        id_or_key: str,
        by: str | None = None,
        note: str | None = None,
        *,
        context: Context | None = None,
    ) -> Alert:
        """Acknowledge an active alert (again is a no-op); it stays until resolved."""
        alert = self._require_active(id_or_key, "acknowledge")
        if alert.state == STATE_ACKNOWLEDGED:
            return alert
        now = clock(self.hub).time()
        by = by if by is not None else (context.user_id if context is not None else None)
        alert.state = STATE_ACKNOWLEDGED
        alert.acknowledged_at = now
        alert.acknowledged_by = by
        alert._log(now, "acknowledged", by, note)
        self._changed(EVENT_ALERT_ACKNOWLEDGED, alert, context)
        return alert

    def resolve(
        self,
        id_or_key: str,
        by: str | None = None,
        resolution: str = RESOLUTION_MANUAL,
        *,
        note: str | None = None,
        context: Context | None = None,
    ) -> Alert:
        """Resolve an active alert; a later raise with its key opens a new one."""
        if resolution not in (RESOLUTION_MANUAL, RESOLUTION_AUTO):
            raise AlertError(f"invalid resolution {resolution!r}")
        alert = self._require_active(id_or_key, "resolve")
        now = clock(self.hub).time()
        by = by if by is not None else (context.user_id if context is not None else None)
        alert.state = STATE_RESOLVED
        alert.resolved_at = now
        alert.resolved_by = by
        alert.resolution = resolution
        alert._log(now, "resolved", by, note)
        del self._active[alert.key]
        self._resolved.append(alert)
        self._trim()
        self._changed(EVENT_ALERT_RESOLVED, alert, context)
        return alert

    def auto_resolve(self, key: str, note: str | None = None) -> Alert | None:
        """Resolve the active alert with that key because its condition cleared, if any."""
        if key not in self._active:
            return None
        return self.resolve(key, resolution=RESOLUTION_AUTO, note=note)

    # Internals

    def _require_active(self, id_or_key: str, action: str) -> Alert:
        alert = self.get(id_or_key)
        if alert is None:
            raise AlertNotFoundError(f"no alert with id or open key {id_or_key!r}")
        if not alert.active:
            raise AlertResolvedError(f"cannot {action} alert {alert.id} ({alert.key}): resolved")
        return alert

    def _trim(self) -> None:
        while len(self._resolved) > MAX_RESOLVED:
            dropped = self._resolved.popleft()
            self._by_id.pop(dropped.id, None)

    def _changed(self, event_type: str, alert: Alert, context: Context | None) -> None:
        self._store.delay_save(self._data, SAVE_DELAY)
        self.hub.bus.fire(event_type, alert.as_dict(), context)

    def _data(self) -> dict[str, Any]:
        return {
            "alerts": [
                *(alert.as_dict() for alert in self.open()),
                *(alert.as_dict() for alert in self._resolved),
            ]
        }


# Built-in rules -------------------------------------------------------------------------


class BuiltinRules:
    """The alert rules every site gets: offline stations, faults, security, uptime."""

    def __init__(self, hub: Hub, manager: AlertManager, config: dict[str, Any]) -> None:
        self.hub = hub
        self.manager = manager
        self.config = config
        self._unsubs: list[Unsubscribe] = []
        self._offline_timers: dict[str, Timer] = {}
        self._success_timer: Timer | None = None
        self._success_task: asyncio.Task[None] | None = None
        self._success_checked: float | None = None

    def attach(self) -> None:
        """Listen to the events of the enabled rules."""
        config = self.config
        charger_rules = (
            config[RULE_STATION_OFFLINE][CONF_ENABLED]
            or config[RULE_CONNECTOR_FAULTED][CONF_ENABLED]
        )
        if charger_rules:
            self._unsubs.append(self.hub.bus.listen(EVENT_CHARGER, self._on_charger_event))
        if config[RULE_SECURITY_EVENT][CONF_ENABLED]:
            self._unsubs.append(self.hub.bus.listen(EVENT_SECURITY, self._on_security_event))
        if config[RULE_UPTIME_BELOW_TARGET][CONF_ENABLED]:
            self._unsubs.append(self.hub.bus.listen(EVENT_UPTIME_UPDATED, self._on_uptime))
        if config[RULE_CHARGE_SUCCESS_BELOW_TARGET][CONF_ENABLED]:
            self._unsubs.append(
                self.hub.bus.listen(
                    EVENT_CHARGER,
                    self._on_attempt_event,
                    lambda data: (
                        data.get("kind")
                        in (ChargerEventKind.SESSION_ENDED, ChargerEventKind.STATUS)
                    ),
                )
            )

    def detach(self) -> None:
        """Stop listening and cancel pending offline timers."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        for timer in self._offline_timers.values():
            timer.cancel()
        self._offline_timers.clear()
        if self._success_timer is not None:
            self._success_timer.cancel()
            self._success_timer = None
        if self._success_task is not None and not self._success_task.done():
            self._success_task.cancel()
        self._success_task = None

    def _on_charger_event(self, event: Event) -> None:
        data = event.data
        kind = data.get("kind")
        station_id = data.get("station_id")
        if not isinstance(station_id, str):
            return
        device_id = data.get("device_id") or station_id
        if self.config[RULE_STATION_OFFLINE][CONF_ENABLED]:
            if kind == ChargerEventKind.OFFLINE:
                self._station_offline(station_id, data)
            elif kind == ChargerEventKind.ONLINE:
                self._station_online(station_id)
        if self.config[RULE_CONNECTOR_FAULTED][CONF_ENABLED]:
            if kind == ChargerEventKind.FAULT:
                self._connector_faulted(station_id, device_id, data, event.context)
            elif kind == ChargerEventKind.RECOVERED:
                self.manager.auto_resolve(f"fault:{device_id}", "recovered")

    def _name(self, device_id: str, data: Mapping[str, Any], fallback: str) -> str:
        """The device's name as the operator gave it, with the charge point id beside it."""
        device = device_registry(self.hub).get(device_id)
        charge_point_id = data.get("charge_point_id")
        name = device.name if device is not None and device.name else None
        if name and charge_point_id and charge_point_id not in name:
            return f"{name} ({charge_point_id})"
        return name or charge_point_id or fallback

    def _station_offline(self, station_id: str, data: Mapping[str, Any]) -> None:
        if station_id in self._offline_timers:
            return  # already counting from the first offline
        minutes: float = self.config[RULE_STATION_OFFLINE][CONF_MINUTES]
        name = self._name(station_id, data, station_id)
        reason = data.get("reason")

        def fire() -> None:
            self._offline_timers.pop(station_id, None)
            message = f"Station {name} has been offline for {minutes:g} minutes"
            if reason:
                message += f" ({reason})"
            self.manager.raise_alert(
                f"offline:{station_id}",
                f"Station {name} offline",
                message,
                "critical",
                RULE_STATION_OFFLINE,
                station_id=station_id,
                device_id=station_id,
            )

        if minutes <= 0:
            fire()
            return
        self._offline_timers[station_id] = clock(self.hub).call_later(minutes * 60, fire)

    def _station_online(self, station_id: str) -> None:
        timer = self._offline_timers.pop(station_id, None)
        if timer is not None:
            timer.cancel()
        self.manager.auto_resolve(f"offline:{station_id}", "back online")

    def _connector_faulted(
        self, station_id: str, device_id: str, data: Mapping[str, Any], context: Context
    ) -> None:
        port = data.get("port") or data.get("connector_id")
        station = data.get("charge_point_id") or station_id
        fallback = f"{station} connector {port}" if port is not None else device_id
        where = self._name(device_id, data, fallback)
        error_code = data.get("error_code") or "unknown"
        self.manager.raise_alert(
            f"fault:{device_id}",
            f"Connector faulted: {where}",
            f"{where} reported a fault, error code {error_code}",
            "warning",
            RULE_CONNECTOR_FAULTED,
            station_id=station_id,
            device_id=device_id,
            context=context,
        )

    def _on_security_event(self, event: Event) -> None:
        data = event.data
        severity = str(data.get("severity", "warning"))
        if severity not in SEVERITIES:
            return
        minimum: str = self.config[RULE_SECURITY_EVENT][CONF_MIN_SEVERITY]
        if _severity_rank(severity) < _severity_rank(minimum):
            return
        kind = str(data.get("kind", "unknown"))
        charge_point_id = data.get("charge_point_id")
        subject = charge_point_id or "hub"
        self.manager.raise_alert(
            f"security:{kind}:{subject}",
            f"Security event: {kind} ({subject})",
            str(data.get("message", "")),
            severity,
            RULE_SECURITY_EVENT,
            context=event.context,
        )

    def _on_uptime(self, event: Event) -> None:
        data = event.data
        device_id = data.get("device_id") or data.get("port_id")
        # The lower of the NEVI and the CEC figures: a port below target under either
        # regulation needs attention.
        figures = {
            label: value
            for label, value in (
                ("NEVI", data.get("uptime_percent")),
                ("CEC", data.get("cec_uptime_percent")),
            )
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        if not isinstance(device_id, str) or not figures:
            return
        regulation = min(figures, key=lambda label: figures[label])
        percent = figures[regulation]
        rule = self.config[RULE_UPTIME_BELOW_TARGET]
        target: float = rule[CONF_TARGET]
        key = f"uptime:{device_id}"
        if percent >= target:
            self.manager.auto_resolve(key, f"uptime {percent:.2f}% at or above {target:g}%")
            return
        window = data.get("window_min")
        if isinstance(window, int | float) and window < rule[CONF_MIN_HOURS_IN_SERVICE] * 60:
            return
        name = self._name(device_id, {}, device_id)
        self.manager.raise_alert(
            key,
            f"Uptime below target: {name}",
            f"Uptime of {name} is {percent:.2f}% ({regulation}), below the {target:g}% target",
            "warning",
            RULE_UPTIME_BELOW_TARGET,
            device_id=device_id,
            context=event.context,
        )

    def _on_attempt_event(self, event: Event) -> None:
        """An attempt may have ended: check the rates, at most once per interval."""
        if self._success_timer is not None:
            return
        minutes: float = self.config[RULE_CHARGE_SUCCESS_BELOW_TARGET][CONF_INTERVAL_MINUTES]
        now = clock(self.hub).time()
        wait = 0.0 if self._success_checked is None else self._success_checked + minutes * 60 - now
        if wait <= 0:
            self._success_due()
        else:
            self._success_timer = clock(self.hub).call_later(wait, self._success_due)

    def _success_due(self) -> None:
        self._success_timer = None
        self._success_checked = clock(self.hub).time()
        if self._success_task is None or self._success_task.done():
            self._success_task = self.hub.create_task(
                self.check_charge_success(), "charge success alert rule"
            )

    async def check_charge_success(self) -> None:
        """Raise or resolve each station's alert from its success rate over the trailing days."""
        from integrations.charge_success import ChargeSuccessError, station_rates

        rule = self.config[RULE_CHARGE_SUCCESS_BELOW_TARGET]
        target: float = rule[CONF_TARGET]
        days: float = rule[CONF_DAYS]
        now = clock(self.hub).time()
        try:
            stations = await station_rates(self.hub, now - days * 86400.0, now)
        except ChargeSuccessError:
            return  # the integration or the recorder is off: nothing to judge
        except Exception:
            _LOGGER.exception("Charge success alert rule: the figures could not be read")
            return
        for row in stations:
            station_id = row["id"]
            if not isinstance(station_id, str):
                continue
            judged = row["successful"] + row["failed"]
            if judged < rule[CONF_MIN_ATTEMPTS] or row["success_rate"] is None:
                continue
            percent = 100.0 * row["success_rate"]
            key = f"charge_success:{station_id}"
            if percent >= target:
                self.manager.auto_resolve(
                    key, f"charge success {percent:.1f}% at or above {target:g}%"
                )
                continue
            name = self._name(station_id, {}, row["name"] or station_id)
            self.manager.raise_alert(
                key,
                f"Charge success below target: {name}",
                f"{row['successful']} of {judged} charge attempts at {name} succeeded over the"
                f" last {days:g} days ({percent:.1f}%), below the {target:g}% target",
                "warning",
                RULE_CHARGE_SUCCESS_BELOW_TARGET,
                station_id=station_id,
                device_id=station_id,
            )


# Configuration ----------------------------------------------------------------------------


def _rule(extra: dict[Any, Any]) -> vol.All:
    """A rule's schema: a mapping with enabled and its tunables, or a bare true/false."""

    def shorthand(value: Any) -> Any:
        if isinstance(value, bool):
            return {CONF_ENABLED: value}
        return {} if value is None else value

    return vol.All(shorthand, vol.Schema({vol.Optional(CONF_ENABLED, default=True): bool, **extra}))


CONFIG_SCHEMA: Final = vol.Schema(
    vol.All(
        lambda value: {} if value is None else value,
        {
            vol.Optional(RULE_STATION_OFFLINE, default={}): _rule(
                {
                    vol.Optional(CONF_MINUTES, default=10.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0, max=7 * 24 * 60)
                    )
                }
            ),
            vol.Optional(RULE_CONNECTOR_FAULTED, default={}): _rule({}),
            vol.Optional(RULE_SECURITY_EVENT, default={}): _rule(
                {vol.Optional(CONF_MIN_SEVERITY, default="warning"): vol.In(SEVERITIES)}
            ),
            vol.Optional(RULE_UPTIME_BELOW_TARGET, default={}): _rule(
                {
                    vol.Optional(CONF_TARGET, default=97.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0, max=100)
                    ),
                    vol.Optional(CONF_MIN_HOURS_IN_SERVICE, default=24.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0)
                    ),
                }
            ),
            vol.Optional(RULE_CHARGE_SUCCESS_BELOW_TARGET, default={}): _rule(
                {
                    vol.Optional(CONF_TARGET, default=80.0): vol.All(
                        vol.Coerce(float), vol.Range(min=0, max=100)
                    ),
                    vol.Optional(CONF_DAYS, default=7.0): vol.All(
                        vol.Coerce(float), vol.Range(min=1 / 24, max=366)
                    ),
                    vol.Optional(CONF_MIN_ATTEMPTS, default=5): vol.All(
                        vol.Coerce(int), vol.Range(min=1, max=1_000_000)
                    ),
                    vol.Optional(CONF_INTERVAL_MINUTES, default=15.0): vol.All(
                        vol.Coerce(float), vol.Range(min=1, max=24 * 60)
                    ),
                }
            ),
        },
    )
)

RAISE_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_KEY): vol.All(str, vol.Length(min=1, max=255)),
        vol.Required(ATTR_TITLE): vol.All(str, vol.Length(min=1, max=255)),
        vol.Optional(ATTR_MESSAGE, default=""): str,
        vol.Optional(ATTR_SEVERITY, default="warning"): vol.In(SEVERITIES),
        vol.Optional(ATTR_STATION_ID): str,
        vol.Optional(ATTR_DEVICE_ID): str,
        vol.Optional(ATTR_ENTITY_ID): str,
    }
)
CHANGE_SCHEMA: Final = vol.Schema(
    {vol.Required(ATTR_ALERT): vol.All(str, vol.Length(min=1)), vol.Optional(ATTR_NOTE): str}
)


# Set-up ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Setup:
    manager: AlertManager
    rules: BuiltinRules
    unsubs: list[Unsubscribe]


def alert_manager(hub: Hub) -> AlertManager:
    """Return the hub's alert manager (the alerts integration is set up)."""
    setup = hub.data.get(DATA_ALERTS)
    if setup is None:
        raise AlertError("the alerts integration is not set up")
    return setup.manager


async def async_setup(ctx: SetupContext) -> bool:
    """Load stored alerts, attach the built-in rules and register the alert.* services."""
    hub, config = ctx.hub, ctx.config
    ctx.on_unload(lambda: _unload(hub))
    manager = AlertManager(hub)
    await manager.load()
    rules = BuiltinRules(hub, manager, config)
    rules.attach()

    def raise_alert(call: ServiceCall) -> dict[str, Any]:
        data = call.data
        return manager.raise_alert(
            data[ATTR_KEY],
            data[ATTR_TITLE],
            data[ATTR_MESSAGE],
            data[ATTR_SEVERITY],
            origin_of(hub, call.context) or "service",
            station_id=data.get(ATTR_STATION_ID),
            device_id=data.get(ATTR_DEVICE_ID),
            entity_id=data.get(ATTR_ENTITY_ID),
            context=call.context,
        ).as_dict()

    def acknowledge(call: ServiceCall) -> dict[str, Any]:
        return manager.acknowledge(
            call.data[ATTR_ALERT], note=call.data.get(ATTR_NOTE), context=call.context
        ).as_dict()

    def resolve(call: ServiceCall) -> dict[str, Any]:
        return manager.resolve(
            call.data[ATTR_ALERT], note=call.data.get(ATTR_NOTE), context=call.context
        ).as_dict()

    hub.data[DATA_ALERTS] = _Setup(manager, rules, [])
    for name, handler, schema, description in (
        ("raise", raise_alert, RAISE_SCHEMA, "Raise an alert"),
        ("acknowledge", acknowledge, CHANGE_SCHEMA, "Acknowledge an alert"),
        ("resolve", resolve, CHANGE_SCHEMA, "Resolve an alert"),
    ):
        ctx.register_service(
            name,
            handler,
            schema,
            role=Role.OPERATOR,
            description=description,
            domain=SERVICE_DOMAIN,
        )
    register_views(ctx, manager, SERVICE_DOMAIN)
    return True


async def _unload(hub: Hub) -> None:
    """Detach the rules, cancel their timers and write what is pending."""
    setup = hub.data.pop(DATA_ALERTS, None)
    if setup is None:
        return
    setup.rules.detach()
    for unsub in setup.unsubs:
        unsub()
    await setup.manager.flush()


@hookimpl
def evhub_integration() -> Integration:
    """Describe the alerts integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Alerts",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        services=lambda _config: (f"{SERVICE_DOMAIN}.*",),
        infrastructure=True,
    )
