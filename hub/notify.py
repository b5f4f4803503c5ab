"""Notifications: ``notify.<name>`` services with retries, and the hub's persistent notifications.

A notify integration provides a NotifyTarget per configured name and registers it with
register_notifier. A delivery is retried with exponential backoff; one that still fails is
logged, fires ``notification_failed`` and becomes a persistent notification with status
"failed", so it is never lost silently.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, TypeAlias

import aiohttp
import voluptuous as vol

from hub.clock import clock
from hub.core import Hub, HubKey, ServiceCall, Unsubscribe, new_id, valid_domain
from hub.exceptions import HubError
from hub.storage import Store

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "notify"
DATA_PERSISTENT: Final[HubKey[PersistentNotifications]] = HubKey("notify.persistent")
DATA_NOTIFIERS: Final[HubKey[dict[str, NotifyTarget]]] = HubKey("notify.notifiers")

EVENT_NOTIFICATION_SENT: Final = "notification_sent"
EVENT_NOTIFICATION_FAILED: Final = "notification_failed"
EVENT_PERSISTENT_NOTIFICATIONS_UPDATED: Final = "persistent_notifications_updated"

SERVICE_PERSISTENT: Final = "persistent"
SERVICE_DISMISS: Final = "dismiss"
SERVICE_MARK_READ: Final = "mark_read"
RESERVED_NAMES: Final = frozenset({SERVICE_PERSISTENT, SERVICE_DISMISS, SERVICE_MARK_READ})

ATTR_MESSAGE: Final = "message"
ATTR_TITLE: Final = "title"
ATTR_DATA: Final = "data"
ATTR_TARGET: Final = "target"
ATTR_ID: Final = "id"
ATTR_NOTIFICATION_ID: Final = "notification_id"

STORAGE_KEY: Final = "core.notifications"
STORAGE_VERSION: Final = 1
MAX_PERSISTENT: Final = 1000
SAVE_DELAY: Final = 1.0

DEFAULT_RETRIES: Final = 3
DEFAULT_BACKOFF: Final = 1.0
MAX_BACKOFF: Final = 300.0


class NotifyError(HubError):
    """A notification could not be delivered (worth retrying)."""


class NotifyPermanentError(NotifyError):
    """A delivery was refused for a reason retrying cannot fix (bad credentials, 4xx)."""


class NotificationNotFoundError(NotifyError, LookupError):
    """No persistent notification with that id."""

    http_status = 404
    error_code = "not_found"


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to deliver through a notifier."""

    message: str
    title: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    target: list[str] | None = None
    created_at: float = field(default_factory=time.time)
    id: str = field(default_factory=new_id)


class NotifyTarget(abc.ABC):
    """Where a notifier delivers: a webhook, a mailbox, an ntfy topic."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def send(self, message: Notification) -> None:
        """Deliver message; raise on failure (NotifyPermanentError to stop retries)."""


def _target_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise vol.Invalid("expected a string or a list of strings")


NOTIFY_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_MESSAGE): str,
        vol.Optional(ATTR_TITLE): vol.Any(None, str),
        vol.Optional(ATTR_DATA): vol.Any(None, dict),
        vol.Optional(ATTR_TARGET): vol.Any(None, _target_list),
    }
)


def valid_notifier_name(value: Any) -> str:
    """Voluptuous validator of a notifier name: a slug that is not a built-in service."""
    name = str(value)
    if not valid_domain(name):
        raise vol.Invalid(f"invalid notifier name {name!r}: use lower-case letters, digits and _")
    if name in RESERVED_NAMES:
        raise vol.Invalid(f"notifier name {name!r} is reserved")
    return name


def unique_names(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Voluptuous validator: the targets of a notify section have distinct names."""
    seen: set[str] = set()
    for target in targets:
        if target["name"] in seen:
            raise vol.Invalid(f"duplicate notifier name {target['name']!r}")
        seen.add(target["name"])
    return targets


def notifier_services(targets: list[dict[str, Any]]) -> list[str]:
    """The notify.<name> services a notify section's targets register (Integration.services)."""
    return [f"{DOMAIN}.{target['name']}" for target in targets]


# HTTP client errors that a later attempt may get past.
RETRYABLE_4XX: Final = frozenset({408, 425, 429})


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL: its path and query may be the secret (a webhook's)."""
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname
        port = parsed.port
    except ValueError:
        return "the receiver"
    if not host:
        return "the receiver"
    shown = f"[{host}]" if ":" in host else host
    return f"{parsed.scheme}://{shown}" + (f":{port}" if port is not None else "")


def check_http_status(status: int, body: str, url: str) -> None:
    """Raise NotifyError for a non-2xx answer; NotifyPermanentError if retrying cannot help.

    The error names the receiver's origin only: a webhook's path or query is often its secret,
    and the error reaches the log, the persistent notification and the automation's trace.
    """
    if 200 <= status < 300:
        return
    detail = body.strip()[:200]
    text = f"{_origin(url)} answered HTTP {status}" + (f": {detail}" if detail else "")
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        raise NotifyPermanentError(text)
    raise NotifyError(text)


def _error_text(err: BaseException) -> str:
    if isinstance(err, NotifyError):
        return str(err)
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def register_notifiers(
    hub: Hub,
    entries: list[dict[str, Any]],
    make_target: Callable[[dict[str, Any]], NotifyTarget],
) -> Unsubscribe:
    """Register notify.<name> for each configured entry (with its retries and backoff).

    All or nothing: if one fails, those registered before it are removed again.
    """
    unsubs: list[Unsubscribe] = []

    def unregister_all() -> None:
        for unsub in unsubs:
            unsub()
        unsubs.clear()

    try:
        for entry in entries:
            unsubs.append(
                register_notifier(
                    hub,
                    entry["name"],
                    make_target(entry),
                    retries=entry["retries"],
                    backoff=entry["backoff"],
                )
            )
    except Exception:
        unregister_all()
        raise
    return unregister_all


# An HTTP notifier integration's client session and the unregister of its notifiers.
HttpNotifiers: TypeAlias = tuple[aiohttp.ClientSession, Unsubscribe]


async def setup_http_notifiers(
    hub: Hub,
    key: HubKey[HttpNotifiers],
    entries: list[dict[str, Any]],
    make_target: Callable[[aiohttp.ClientSession, dict[str, Any]], NotifyTarget],
) -> None:
    """Register HTTP notifiers sharing one client session, kept in hub.data[key]."""
    session = aiohttp.ClientSession()
    try:
        unregister = register_notifiers(hub, entries, lambda entry: make_target(session, entry))
    except Exception:
        await session.close()
        raise
    hub.data[key] = (session, unregister)


async def unload_http_notifiers(hub: Hub, key: HubKey[HttpNotifiers]) -> None:
    """Remove notifiers set up by setup_http_notifiers and close their session."""
    found = hub.data.pop(key, None)
    if found is not None:
        found[1]()
        await found[0].close()


def register_notifier(
    hub: Hub,
    name: str,
    target: NotifyTarget,
    *,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
) -> Unsubscribe:
    """Register service notify.<name> delivering through target.

    A delivery is tried once and retried up to retries times, waiting backoff, 2*backoff, ...
    (at most max_backoff) between attempts. The service returns
    ``{"id", "status": "delivered"|"failed", "attempts", "error"}``.
    """
    try:
        valid_notifier_name(name)
    except vol.Invalid as err:
        raise NotifyError(str(err.msg)) from err
    notifiers = hub.data.setdefault(DATA_NOTIFIERS, {})
    if name in notifiers:
        raise NotifyError(f"notifier notify.{name} is already registered")
    notifiers[name] = target

    async def handle(call: ServiceCall) -> dict[str, Any]:
        notification = Notification(
            message=call.data[ATTR_MESSAGE],
            title=call.data.get(ATTR_TITLE),
            data=dict(call.data.get(ATTR_DATA) or {}),
            target=call.data.get(ATTR_TARGET),
            created_at=clock(hub).time(),
        )
        return await deliver(
            hub,
            name,
            target,
            notification,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )

    unregister_service = hub.services.register(
        DOMAIN, name, handle, NOTIFY_SCHEMA, description=f"Send a notification via {name}"
    )

    def unregister() -> None:
        unregister_service()
        if notifiers.get(name) is target:
            del notifiers[name]

    return unregister


async def deliver(
    hub: Hub,
    name: str,
    target: NotifyTarget,
    notification: Notification,
    *,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
) -> dict[str, Any]:
    """Deliver notification through target with retries; record a final failure."""
    attempts = 0
    error = "not attempted"
    while True:
        attempts += 1
        try:
            await target.send(notification)
        except NotifyPermanentError as err:
            error = _error_text(err)
            break
        except Exception as err:
            error = _error_text(err)
            if attempts > retries:
                break
            delay = min(max_backoff, backoff * 2 ** (attempts - 1))
            _LOGGER.warning(
                "Notification %s via notify.%s failed (attempt %d): %s; retrying in %.1f s",
                notification.id,
                name,
                attempts,
                error,
                delay,
            )
            await clock(hub).sleep(delay)
            continue
        hub.bus.fire(
            EVENT_NOTIFICATION_SENT,
            {"notifier": name, "id": notification.id, "attempts": attempts},
        )
        return {"id": notification.id, "status": "delivered", "attempts": attempts, "error": None}
    await _record_failure(hub, name, notification, error, attempts)
    return {"id": notification.id, "status": "failed", "attempts": attempts, "error": error}


def delivery_error(result: Any) -> str | None:
    """The error of a ``notify.<name>`` service result that reports a failed delivery.

    A notify service answers a failed delivery (kept as a failed persistent notification)
    rather than raising; an automation's run marks its step failed with this.
    """
    if isinstance(result, Mapping) and result.get("status") == "failed":
        return str(result.get("error") or "delivery failed")
    return None


async def _record_failure(
    hub: Hub, name: str, notification: Notification, error: str, attempts: int
) -> None:
    _LOGGER.error(
        "Notification %s via notify.%s failed after %d attempt(s): %s",
        notification.id,
        name,
        attempts,
        error,
    )
    persistent_id: str | None = None
    try:
        manager = await setup_persistent_notifications(hub)
    except Exception:
        _LOGGER.exception("Cannot record the failed notification %s", notification.id)
    else:
        original = (
            f"{notification.title}: {notification.message}"
            if notification.title
            else notification.message
        )
        record = manager.create(
            f"Delivery via notify.{name} failed after {attempts} attempt(s): {error}\n"
            f"Message: {original}",
            title=f"Notification via {name} failed",
            status=PersistentStatus.failed,
            notifier=name,
            error=error,
        )
        persistent_id = record.id
    hub.bus.fire(
        EVENT_NOTIFICATION_FAILED,
        {
            "notifier": name,
            "id": notification.id,
            "error": error,
            "attempts": attempts,
            "title": notification.title,
            "message": notification.message,
            "persistent_id": persistent_id,
        },
    )


# Persistent notifications -----------------------------------------------------------------


class PersistentStatus(enum.StrEnum):
    """Where a persistent notification stands."""

    unread = "unread"
    read = "read"
    failed = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistentNotification:
    """A notification kept by the hub until dismissed."""

    id: str
    message: str
    title: str | None = None
    created_at: float
    status: PersistentStatus = PersistentStatus.unread
    notifier: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        result = asdict(self)
        result["status"] = str(self.status)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PersistentNotification:
        """Build one from its as_dict form."""
        return cls(
            id=str(data["id"]),
            message=str(data["message"]),
            title=data.get("title"),
            created_at=float(data["created_at"]),
            status=PersistentStatus(data.get("status", "unread")),
            notifier=data.get("notifier"),
            error=data.get("error"),
        )


PERSISTENT_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_MESSAGE): str,
        vol.Optional(ATTR_TITLE): vol.Any(None, str),
        vol.Optional(ATTR_NOTIFICATION_ID): vol.All(str, vol.Length(min=1, max=64)),
    }
)
ID_SCHEMA: Final = vol.Schema({vol.Required(ATTR_ID): vol.All(str, vol.Length(min=1, max=64))})


class PersistentNotifications:
    """The hub's own notifications, kept in ``.storage/core.notifications``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._items: dict[str, PersistentNotification] = {}
        self._store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY)
        self._lock = asyncio.Lock()
        self._loaded = False

    async def async_load(self) -> None:
        """Load stored notifications and register the services, once."""
        async with self._lock:
            if self._loaded:
                return
            stored = await self._store.load()
            for raw in (stored or {}).get("notifications", []):
                try:
                    item = PersistentNotification.from_dict(raw)
                except (KeyError, TypeError, ValueError) as err:
                    _LOGGER.warning("Skipping a malformed stored notification: %s", err)
                    continue
                self._items[item.id] = item
            services = self.hub.services
            services.register(DOMAIN, SERVICE_PERSISTENT, self._handle_create, PERSISTENT_SCHEMA)
            services.register(
                DOMAIN, SERVICE_DISMISS, self._handle_dismiss, ID_SCHEMA, role="operator"
            )
            services.register(
                DOMAIN, SERVICE_MARK_READ, self._handle_mark_read, ID_SCHEMA, role="operator"
            )
            self._loaded = True

    def all(self) -> list[PersistentNotification]:
        """Return every notification, oldest first."""
        return list(self._items.values())

    def get(self, notification_id: str) -> PersistentNotification | None:
        """Return one notification by id."""
        return self._items.get(notification_id)

    def create(
        self,
        message: str,
        *,
        title: str | None = None,
        notification_id: str | None = None,
        status: PersistentStatus = PersistentStatus.unread,
        notifier: str | None = None,
        error: str | None = None,
    ) -> PersistentNotification:
        """Add a notification (replacing one with the same id); the oldest go past the cap."""
        item = PersistentNotification(
            id=notification_id or new_id(),
            message=message,
            title=title,
            created_at=clock(self.hub).time(),
            status=status,
            notifier=notifier,
            error=error,
        )
        self._items.pop(item.id, None)
        self._items[item.id] = item
        while len(self._items) > MAX_PERSISTENT:
            del self._items[next(iter(self._items))]
        self._changed("created", item.id)
        return item

    def dismiss(self, notification_id: str) -> None:
        """Remove a notification."""
        if self._items.pop(notification_id, None) is None:
            raise NotificationNotFoundError(f"no persistent notification {notification_id!r}")
        self._changed("dismissed", notification_id)

    def mark_read(self, notification_id: str) -> None:
        """Mark an unread notification read (a failed one keeps its status)."""
        item = self._items.get(notification_id)
        if item is None:
            raise NotificationNotFoundError(f"no persistent notification {notification_id!r}")
        if item.status is PersistentStatus.unread:
            self._items[notification_id] = PersistentNotification(
                id=item.id,
                message=item.message,
                title=item.title,
                created_at=item.created_at,
                status=PersistentStatus.read,
                notifier=item.notifier,
                error=item.error,
            )
            self._changed("read", notification_id)

    async def flush(self) -> None:
        """Write pending changes now."""
        await self._store.flush()

    def _changed(self, action: str, notification_id: str) -> None:
        self._store.delay_save(self._snapshot, SAVE_DELAY)
        self.hub.bus.fire(
            EVENT_PERSISTENT_NOTIFICATIONS_UPDATED, {"action": action, "id": notification_id}
        )

    def _snapshot(self) -> dict[str, Any]:
        return {"notifications": [item.as_dict() for item in self._items.values()]}

    def _handle_create(self, call: ServiceCall) -> dict[str, Any]:
        item = self.create(
            call.data[ATTR_MESSAGE],
            title=call.data.get(ATTR_TITLE),
            notification_id=call.data.get(ATTR_NOTIFICATION_ID),
        )
        return {"id": item.id}

    def _handle_dismiss(self, call: ServiceCall) -> None:
        self.dismiss(call.data[ATTR_ID])

    def _handle_mark_read(self, call: ServiceCall) -> None:
        self.mark_read(call.data[ATTR_ID])


async def setup_persistent_notifications(hub: Hub) -> PersistentNotifications:
    """Load the hub's persistent notifications and register notify.persistent/dismiss/mark_read.

    Safe to call more than once; a failed delivery calls it if the hub has not.
    """
    manager = hub.data.get(DATA_PERSISTENT)
    if manager is None:
        manager = hub.data[DATA_PERSISTENT] = PersistentNotifications(hub)
    await manager.async_load()
    return manager


def persistent_notifications(hub: Hub) -> list[PersistentNotification]:
    """Return the hub's persistent notifications, oldest first (none before set-up)."""
    manager = hub.data.get(DATA_PERSISTENT)
    return manager.all() if manager is not None else []
