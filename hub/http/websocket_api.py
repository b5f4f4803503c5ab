"""The WebSocket API: auth, then commands with ids; state subscriptions send compact diffs.

Bad input is answered with an error message; the socket stays open. Rights are not kept
from the handshake: every command re-checks the credential (token or session) and the
user's role, and a change to them (demotion, password change, deletion, revocation,
logout, expiry) closes the socket at once, with its subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import orjson
import voluptuous as vol
from aiohttp import WSCloseCode, WSMsgType, web

from hub import __version__
from hub.auth import (
    CREDENTIAL_TOKEN,
    AuthManager,
    Credential,
    Role,
    User,
    auth_manager,
)
from hub.clock import Timer, clock
from hub.const import (
    EVENT_DEVICE_REGISTRY_UPDATED,
    EVENT_ENTITY_REGISTRY_UPDATED,
    EVENT_EXCLUSION,
    EVENT_OUTAGE,
    EVENT_SERVICE_REGISTERED,
    EVENT_SERVICE_REMOVED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    MATCH_ALL,
)
from hub.core import Context, Event, State, Unsubscribe
from hub.exceptions import HubError, TemplateError
from hub.http.extensions import extensions
from hub.http.service_call import call_service
from hub.http.template_render import TEMPLATE_ROLE, Rendered, render_tracked
from hub.http.triggers import trigger_platform
from hub.http.view import (
    KEY_HUB,
    REQ_SESSION,
    REQ_USER,
    Route,
    _error_for,
    dumps,
    humanize,
    remote,
)
from hub.registry import DeviceKind, device_registry, entity_registry
from hub.security import EVENT_SECURITY, public_event

_LOGGER = logging.getLogger(__name__)

KEY_SOCKETS: Final[web.AppKey[set[web.WebSocketResponse]]] = web.AppKey("websockets")
AUTH_TIMEOUT: Final = 10.0
MAX_QUEUED: Final = 4096
MAX_MESSAGE: Final = 1024 * 1024
CLOSE_REVOKED: Final = b"credentials revoked or rights changed; authenticate again"
# A subscribed template that reads the time is rendered again this often (seconds).
TEMPLATE_TIME_INTERVAL: Final = 60.0
MAX_TRIGGERS: Final = 20

# Who may subscribe to which event type. Anything not listed (call_service, audit_entry,
# integration events, MATCH_ALL...) needs an admin: service data, vendor payloads and
# error texts are not for every account. Security events reach viewers and operators
# without their admin-only data (hub.security.PRIVATE_DATA).
EVENT_ROLES: Final[Mapping[str, Role]] = {
    EVENT_STATE_CHANGED: Role.VIEWER,
    EVENT_STATE_REPORTED: Role.VIEWER,
    EVENT_SECURITY: Role.VIEWER,
    EVENT_OUTAGE: Role.VIEWER,
    EVENT_EXCLUSION: Role.VIEWER,
    EVENT_DEVICE_REGISTRY_UPDATED: Role.VIEWER,
    EVENT_ENTITY_REGISTRY_UPDATED: Role.VIEWER,
    EVENT_SERVICE_REGISTERED: Role.VIEWER,
    EVENT_SERVICE_REMOVED: Role.VIEWER,
    # Named here so the core need not import them (hub.charger, integrations.alerts, hub.notify,
    # integrations.automation).
    "charger_event": Role.VIEWER,
    "alert_raised": Role.VIEWER,
    "alert_updated": Role.VIEWER,
    "alert_acknowledged": Role.VIEWER,
    "alert_resolved": Role.VIEWER,
    "uptime_updated": Role.VIEWER,
    "automation_triggered": Role.VIEWER,
    "automation_run_finished": Role.VIEWER,
    "persistent_notifications_updated": Role.VIEWER,
}


def event_role(event_type: str) -> Role:
    """The least role that may subscribe to an event type."""
    return EVENT_ROLES.get(event_type, Role.ADMIN)


class CommandError(HubError):
    """A command failed: answered with its code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def compact_state(state: State) -> dict[str, Any]:
    """A state as subscribe_entities sends it."""
    return {
        "s": state.state,
        "a": dict(state.attributes),
        "lc": state.last_changed_ts,
        "lu": state.last_updated_ts,
    }


def state_diff(old: State, new: State) -> dict[str, Any]:
    """What changed between two states of an entity, in the compact form."""
    added: dict[str, Any] = {}
    if new.state != old.state:
        added["s"] = new.state
    if new.attributes is not old.attributes:
        changed = {
            key: value
            for key, value in new.attributes.items()
            if key not in old.attributes or old.attributes[key] != value
        }
        if changed:
            added["a"] = changed
    if new.last_changed_ts != old.last_changed_ts:
        added["lc"] = new.last_changed_ts
    if new.last_updated_ts != old.last_updated_ts:
        added["lu"] = new.last_updated_ts
    diff: dict[str, Any] = {"+": added}
    removed = [key for key in old.attributes if key not in new.attributes]
    if removed:
        diff["-"] = {"a": removed}
    return diff


class Connection:
    """One authenticated client: its credential, subscriptions and outgoing queue."""

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, user: User, credential: Credential
    ) -> None:
        self.hub = request.app[KEY_HUB]
        self.auth: AuthManager = auth_manager(self.hub)
        self.ws = ws
        self.user = user
        self.credential = credential
        self.source = remote(request)
        self.last_id = 0
        self.subscriptions: dict[int, Unsubscribe] = {}
        self.queue: asyncio.Queue[bytes | tuple[int, bytes]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.revoked = False
        self._unsub_auth = self.auth.listen_changes(self._on_auth_change)
        self._expiry: Timer | None = None
        expires = self.auth.credential_expiry(credential)
        if expires is not None:
            delay = max(expires - clock(self.hub).time(), 0.0)
            self._expiry = clock(self.hub).call_later(delay, self.check_rights)

    def _on_auth_change(self, user_id: str) -> None:
        if user_id == self.user.id:
            self.check_rights()

    def check_rights(self, msg_id: int | None = None) -> bool:
        """Re-check the credential and role; close the socket if either changed.

        msg_id: the command being refused, answered with an error before the close.
        """
        if self.revoked:
            return False
        user = self.auth.current_user(self.credential)
        if user is not None and user.role is self.user.role:
            self.user = user
            return True
        if msg_id is not None:
            self.error(msg_id, "unauthorized", CLOSE_REVOKED.decode())
        self.revoked = True
        _LOGGER.info(
            "Closing the WebSocket of %s from %s: credentials revoked or role changed",
            self.user.username,
            self.source,
        )
        self._drop_subscriptions()
        self.queue.put_nowait((WSCloseCode.POLICY_VIOLATION, CLOSE_REVOKED))
        return False

    def send(self, message: Mapping[str, Any]) -> None:
        """Queue a message; a client that cannot keep up is disconnected."""
        if self.revoked:
            return
        if self.queue.qsize() >= MAX_QUEUED:
            _LOGGER.warning("WebSocket client %s too slow, closing", self.source)
            self._drop_subscriptions()
            self.revoked = True
            self.queue.put_nowait((WSCloseCode.POLICY_VIOLATION, b"too slow"))
            return
        self.queue.put_nowait(dumps(message))

    def result(self, msg_id: Any, result: Any = None) -> None:
        """Answer a command successfully."""
        self.send({"id": msg_id, "type": "result", "success": True, "result": result})

    def error(self, msg_id: Any, code: str, message: str) -> None:
        """Answer a command with an error."""
        self.send(
            {
                "id": msg_id,
                "type": "result",
                "success": False,
                "error": {"code": code, "message": message},
            }
        )

    async def writer(self) -> None:
        """Send queued messages in order."""
        while True:
            payload = await self.queue.get()
            if isinstance(payload, tuple):
                code, reason = payload
                await self.ws.close(code=code, message=reason)
                return
            try:
                await self.ws.send_str(payload.decode())
            except ConnectionError:
                return

    def _drop_subscriptions(self) -> None:
        for unsub in self.subscriptions.values():
            unsub()
        self.subscriptions.clear()

    def close(self) -> None:
        """Drop subscriptions, the auth listener and running commands."""
        self._drop_subscriptions()
        self._unsub_auth()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for task in self.tasks:
            task.cancel()

    # Commands -------------------------------------------------------------------------

    def handle(self, raw: str) -> None:
        """Parse and dispatch one text message."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.error(None, "invalid_format", "message is not valid JSON")
            return
        if not isinstance(msg, dict):
            self.error(None, "invalid_format", "message must be a JSON object")
            return
        msg_id = msg.get("id")
        if type(msg_id) is not int:
            self.error(msg_id, "invalid_format", "message needs an integer id")
            return
        if msg_id <= self.last_id:
            self.error(msg_id, "id_reuse", f"ids must increase; last was {self.last_id}")
            return
        self.last_id = msg_id
        if not self.check_rights(msg_id):
            return
        handler = COMMANDS.get(msg.get("type"))  # type: ignore[arg-type]
        if handler is None:
            handler = self._integration_command(msg.get("type"))
        if handler is None:
            self.error(msg_id, "unknown_command", f"unknown command type {msg.get('type')!r}")
            return
        try:
            outcome = handler(self, msg_id, msg)
        except CommandError as err:
            self.error(msg_id, err.code, err.message)
            return
        if outcome is not None:
            task = asyncio.get_running_loop().create_task(self._run(msg_id, outcome))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _integration_command(
        self, command: Any
    ) -> Callable[[Connection, int, dict[str, Any]], Any] | None:
        """The handler of a command an integration registered (hub.http.extensions)."""
        if not isinstance(command, str):
            return None
        entry = extensions(self.hub).commands.get(command)
        if entry is None:
            return None

        def run(conn: Connection, msg_id: int, msg: dict[str, Any]) -> Any:
            if not conn.user.role.allows(entry.role):
                raise CommandError(
                    "forbidden", f"{command} needs the {entry.role} role; you are {conn.user.role}"
                )
            return entry.handler(conn.hub, conn.user, msg)

        return run

    async def _run(self, msg_id: int, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            self.result(msg_id, await coro)
        except CommandError as err:
            self.error(msg_id, err.code, err.message)
        except Exception as err:
            mapped = _error_for(err)
            if mapped is None:
                _LOGGER.exception("Error in WebSocket command %s", msg_id)
                self.error(msg_id, "internal", "internal error; see the hub's log")
            else:
                self.error(msg_id, mapped.code, mapped.message)


def _ping(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    conn.send({"id": msg_id, "type": "pong"})


def _get_states(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    from hub.http.rest import state_json

    conn.result(msg_id, [state_json(state) for state in conn.hub.states.all()])


def _string_list(msg: dict[str, Any], key: str) -> list[str] | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CommandError("invalid_format", f"{key} must be a list of strings")
    return value


def _subscribe_entities(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    entity_ids = _string_list(msg, "entity_ids")
    wanted = frozenset(entity_ids) if entity_ids is not None else None
    hub = conn.hub

    def on_change(event: Event) -> None:
        entity_id = event.data["entity_id"]
        old: State | None = event.data.get("old_state")
        new: State | None = event.data.get("new_state")
        if new is None:
            conn.send({"id": msg_id, "type": "event", "event": {"r": [entity_id]}})
        elif old is None:
            conn.send(
                {"id": msg_id, "type": "event", "event": {"a": {entity_id: compact_state(new)}}}
            )
        else:
            conn.send(
                {"id": msg_id, "type": "event", "event": {"c": {entity_id: state_diff(old, new)}}}
            )

    event_filter: Callable[[Mapping[str, Any]], bool] | None = None
    if wanted is not None:

        def event_filter(data: Mapping[str, Any]) -> bool:
            return data["entity_id"] in wanted

    conn.subscriptions[msg_id] = hub.bus.listen(EVENT_STATE_CHANGED, on_change, event_filter)
    conn.result(msg_id)
    states = hub.states.all()
    initial = {
        state.entity_id: compact_state(state)
        for state in states
        if wanted is None or state.entity_id in wanted
    }
    conn.send({"id": msg_id, "type": "event", "event": {"a": initial}})


def _subscribe_events(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    event_type = msg.get("event_type", MATCH_ALL)
    if not isinstance(event_type, str) or not event_type:
        raise CommandError("invalid_format", "event_type must be a string")
    needed = event_role(event_type)
    if not conn.user.role.allows(needed):
        raise CommandError("forbidden", f"subscribing to {event_type} needs the {needed} role")
    # The role cannot drop while subscribed: a change closes the socket (check_rights).
    private = conn.user.role.allows(Role.ADMIN)

    def forward(event: Event) -> None:
        body = event.as_dict()
        if not private and event.event_type == EVENT_SECURITY:
            body = {**body, "data": public_event(body["data"])}
        conn.send({"id": msg_id, "type": "event", "event": body})

    conn.subscriptions[msg_id] = conn.hub.bus.listen(event_type, forward)
    conn.result(msg_id)


def _unsubscribe_events(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    subscription = msg.get("subscription")
    unsub = conn.subscriptions.pop(subscription, None) if type(subscription) is int else None
    if unsub is None:
        raise CommandError("not_found", f"no subscription {subscription!r}")
    unsub()
    conn.result(msg_id)


def _call_service(conn: Connection, msg_id: int, msg: dict[str, Any]) -> Coroutine[Any, Any, Any]:
    domain, service = msg.get("domain"), msg.get("service")
    data = msg.get("service_data", {})
    target = msg.get("target")
    if not isinstance(domain, str) or not isinstance(service, str):
        raise CommandError("invalid_format", "domain and service must be strings")
    if not isinstance(data, dict):
        raise CommandError("invalid_format", "service_data must be an object")
    if target is not None and not isinstance(target, dict):
        raise CommandError("invalid_format", "target must be an object")

    async def run() -> dict[str, Any]:
        result = await call_service(conn.hub, conn.user, conn.source, domain, service, data, target)
        return {"result": result}

    return run()


# Home Assistant's commands, as its users know them ----------------------------------------


def _needs(conn: Connection, role: Role, command: str) -> None:
    if not conn.user.role.allows(role):
        raise CommandError(
            "forbidden", f"{command} needs the {role} role; you are {conn.user.role}"
        )


def _get_config(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    from hub.http.ha_api import config_json

    conn.result(msg_id, config_json(conn.hub))


def _get_services(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    from hub.http.ha_api import services_json

    conn.result(msg_id, services_json(conn.hub))


def _current_user(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    user = conn.user
    conn.result(
        msg_id,
        {
            **user.as_public(),
            "name": user.username,
            "is_admin": user.role is Role.ADMIN,
            "credential": conn.credential[0],
        },
    )


def _device_registry(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    devices = sorted(device_registry(conn.hub).devices(), key=lambda d: d.id)
    conn.result(msg_id, [device.as_dict() for device in devices])


def _entity_registry(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    entries = sorted(entity_registry(conn.hub).entities(), key=lambda e: e.entity_id)
    conn.result(msg_id, [entry.as_dict() for entry in entries])


def _site_registry(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    devices = device_registry(conn.hub)
    sites = sorted(devices.devices(kind=DeviceKind.SITE), key=lambda d: ((d.name or ""), d.id))
    conn.result(
        msg_id,
        [
            {
                "site_id": site.id,
                "name": site.name,
                "integration": site.integration,
                "station_ids": sorted(
                    d.id for d in devices.descendants(site.id) if d.kind is DeviceKind.STATION
                ),
            }
            for site in sites
        ],
    )


def _optional_dict(msg: dict[str, Any], key: str) -> dict[str, Any]:
    value = msg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CommandError("invalid_format", f"{key} must be an object")
    return value


def _render_template(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    """Render a template now and again whenever an entity it read changes (or, if it reads
    the time, every minute); an event is sent when the text changes."""
    _needs(conn, TEMPLATE_ROLE, "render_template")
    source = msg.get("template")
    if not isinstance(source, str):
        raise CommandError("invalid_format", "template must be a string")
    variables = _optional_dict(msg, "variables")
    report_errors = msg.get("report_errors", False)
    if not isinstance(report_errors, bool):
        raise CommandError("invalid_format", "report_errors must be true or false")
    try:
        first = render_tracked(conn.hub, source, variables)
    except TemplateError as err:
        raise CommandError("template_error", str(err)) from None
    conn.subscriptions[msg_id] = _TemplateSubscription(
        conn, msg_id, source, variables, report_errors, first
    ).stop
    conn.result(msg_id)
    conn.send({"id": msg_id, "type": "event", "event": _template_event(first)})


def _template_event(rendered: Rendered) -> dict[str, Any]:
    return {
        "result": rendered.text,
        "listeners": {
            "all": False,
            "domains": [],
            "entities": sorted(rendered.entities),
            "time": rendered.uses_time,
        },
    }


class _TemplateSubscription:
    """Re-renders a subscribed template when what it read changes; at most once per loop turn."""

    def __init__(
        self,
        conn: Connection,
        msg_id: int,
        source: str,
        variables: dict[str, Any],
        report_errors: bool,
        first: Rendered,
    ) -> None:
        self.conn = conn
        self.msg_id = msg_id
        self.source = source
        self.variables = variables
        self.report_errors = report_errors
        self.last: str | None = first.text
        self.entities: frozenset[str] = frozenset()
        self._unwatch: Unsubscribe | None = None
        self._pending: asyncio.Handle | None = None
        self._timer: Timer | None = None
        self._stopped = False
        self.uses_time = first.uses_time
        self._track(first)

    def _track(self, rendered: Rendered) -> None:
        if rendered.entities != self.entities:
            if self._unwatch is not None:
                self._unwatch()
                self._unwatch = None
            self.entities = rendered.entities
            if self.entities:
                self._unwatch = self.conn.hub.states.watch(self.entities, self._changed)
        self._arm()

    def _arm(self) -> None:
        if self.uses_time and self._timer is None and not self._stopped:
            self._timer = clock(self.conn.hub).call_later(TEMPLATE_TIME_INTERVAL, self._tick)

    def _changed(self, *_args: Any) -> None:
        if self._pending is None and not self._stopped:
            self._pending = asyncio.get_running_loop().call_soon(self._render)

    def _tick(self) -> None:
        self._timer = None
        self._render()

    def _render(self) -> None:
        self._pending = None
        if self._stopped:
            return
        try:
            rendered = render_tracked(self.conn.hub, self.source, self.variables)
        except TemplateError as err:
            if self.report_errors:
                event = {"error": str(err), "level": "ERROR"}
                self.conn.send({"id": self.msg_id, "type": "event", "event": event})
            else:
                _LOGGER.warning("Subscribed template of %s: %s", self.conn.user.username, err)
            self.last = None
            self._arm()
            return
        self._track(rendered)
        if rendered.text != self.last:
            self.last = rendered.text
            self.conn.send({"id": self.msg_id, "type": "event", "event": _template_event(rendered)})

    def stop(self) -> None:
        """Stop watching and forget pending renders."""
        self._stopped = True
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _subscribe_trigger(conn: Connection, msg_id: int, msg: dict[str, Any]) -> None:
    """Send an event each time an automation trigger fires, until unsubscribed."""
    platform = trigger_platform(conn.hub)
    if platform is None:
        raise CommandError("unavailable", "automations are not running: no triggers to attach")
    raw = msg.get("trigger")
    specs = raw if isinstance(raw, list) else [raw]
    if not specs or len(specs) > MAX_TRIGGERS:
        raise CommandError("invalid_format", f"give 1 to {MAX_TRIGGERS} triggers")
    variables = _optional_dict(msg, "variables")
    checked: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        try:
            trigger = platform.validate(spec)
        except vol.Invalid as err:
            where = f"trigger {index}: " if len(specs) > 1 else ""
            raise CommandError("invalid_format", where + humanize(err)) from None
        if trigger.get("trigger") == "template":
            _needs(conn, TEMPLATE_ROLE, "a template trigger")
        if trigger.get("trigger") == "event":
            # The event trigger reaches any event type: the same roles as subscribe_events.
            needed = event_role(str(trigger.get("event_type")))
            if not conn.user.role.allows(needed):
                raise CommandError(
                    "forbidden",
                    f"a trigger on {trigger.get('event_type')} events needs the {needed} role",
                )
        checked.append(trigger)
    private = conn.user.role.allows(Role.ADMIN)

    def fired(data: dict[str, Any], context: Context | None) -> None:
        event = data.get("event")
        if not private and isinstance(event, Event) and event.event_type == EVENT_SECURITY:
            body = event.as_dict()
            data = {**data, "event": {**body, "data": public_event(body["data"])}}
        conn.send(
            {
                "id": msg_id,
                "type": "event",
                "event": {
                    "variables": {"trigger": data},
                    "context": context.as_dict() if context is not None else None,
                },
            }
        )

    detachers: list[Unsubscribe] = []
    try:
        for trigger in checked:
            detachers.append(platform.attach(conn.hub, trigger, fired, variables))
    except Exception as err:
        for detach in detachers:
            detach()
        raise CommandError("invalid_format", f"the trigger cannot be attached: {err}") from None

    def detach_all() -> None:
        for detach in detachers:
            detach()
        detachers.clear()

    conn.subscriptions[msg_id] = detach_all
    conn.result(msg_id)


COMMANDS: Final[dict[str, Callable[[Connection, int, dict[str, Any]], Any]]] = {
    "ping": _ping,
    "get_states": _get_states,
    "subscribe_entities": _subscribe_entities,
    "subscribe_events": _subscribe_events,
    "unsubscribe_events": _unsubscribe_events,
    "call_service": _call_service,
    "get_config": _get_config,
    "get_services": _get_services,
    "auth/current_user": _current_user,
    "render_template": _render_template,
    "subscribe_trigger": _subscribe_trigger,
    "config/device_registry/list": _device_registry,
    "config/entity_registry/list": _entity_registry,
    "config/site_registry/list": _site_registry,
}


def _same_origin(request: web.Request) -> bool:
    """A cookie may authenticate a socket only from the hub's own pages."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


async def _authenticate(
    request: web.Request, ws: web.WebSocketResponse
) -> tuple[User, Credential] | None:
    """Read the auth message; answer auth_ok, or auth_invalid (the caller closes)."""
    auth = auth_manager(request.app[KEY_HUB])
    address = remote(request)
    try:
        msg = await ws.receive(timeout=AUTH_TIMEOUT)
    except TimeoutError:
        await ws.send_json({"type": "auth_invalid", "message": "no auth message in time"})
        return None
    if msg.type is not WSMsgType.TEXT:
        return None
    try:
        data = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("type") != "auth":
        await ws.send_json({"type": "auth_invalid", "message": 'expected {"type": "auth"}'})
        return None
    token = data.get("access_token")
    user: User | None = None
    # A token is not a password login: a banned address may still use a valid one.
    if token is not None:
        found = auth.validate_token(token) if isinstance(token, str) else None
        if found is None:
            auth.record_invalid_token(address, "a WebSocket auth")
            await ws.send_json(
                {"type": "auth_invalid", "message": "invalid, expired or revoked access token"}
            )
            return None
        user = found[0]
        credential: Credential = (CREDENTIAL_TOKEN, found[1].id)
    else:
        user = request.get(REQ_USER)
        session = request.get(REQ_SESSION)
        if user is None or session is None or not _same_origin(request):
            await ws.send_json(
                {"type": "auth_invalid", "message": "no access_token and no valid session"}
            )
            return None
        credential = auth.session_credential(session)
    await ws.send_json({"type": "auth_ok", "user": user.as_public()})
    return user, credential


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Serve one WebSocket API client."""
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    sockets = request.app[KEY_SOCKETS]
    sockets.add(ws)
    try:
        await ws.send_json({"type": "auth_required", "version": __version__})
        authenticated = await _authenticate(request, ws)
        if authenticated is None:
            await ws.close(message=b"auth failed")
            return ws
        conn = Connection(request, ws, *authenticated)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    conn.handle(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    conn.error(None, "invalid_format", "send JSON text messages")
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            conn.close()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if conn.tasks:
                await asyncio.gather(*conn.tasks, return_exceptions=True)
    finally:
        sockets.discard(ws)
    return ws


async def close_all(app: web.Application) -> None:
    """Close every open socket (the server stops)."""
    sockets: set[web.WebSocketResponse] = app[KEY_SOCKETS]
    for ws in list(sockets):
        await ws.close(message=b"hub stopping")


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/websocket",
        websocket,
        None,
        "The WebSocket API (auth in the socket)",
        responses={"101": {}},
    ),
)
