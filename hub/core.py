"""The async core: Hub, EventBus, StateMachine, ServiceRegistry, Event, State, Context.

Every API here runs in the hub's one event loop. Plain methods are loop-safe callbacks,
coroutines are ``async def``; whatever subscribes returns an unsubscribe callable.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import itertools
import logging
import math
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    NamedTuple,
    NoReturn,
    Protocol,
    Self,
    TypeAlias,
    TypeVar,
    overload,
)

import voluptuous as vol

from hub.const import (
    ATTR_DOMAIN,
    ATTR_ENTITY_ID,
    ATTR_NEW_STATE,
    ATTR_OLD_STATE,
    ATTR_SERVICE,
    ATTR_SERVICE_DATA,
    ATTR_TARGET,
    EVENT_CALL_SERVICE,
    EVENT_HUB_CLOSE,
    EVENT_HUB_FINAL_WRITE,
    EVENT_HUB_START,
    EVENT_HUB_STARTED,
    EVENT_HUB_STOP,
    EVENT_SERVICE_REGISTERED,
    EVENT_SERVICE_REMOVED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    MATCH_ALL,
    MAX_LENGTH_STATE,
)
from hub.exceptions import (
    HubStateError,
    InvalidEntityIdError,
    InvalidStateError,
    ServiceExistsError,
    ServiceNotFoundError,
    ServiceValidationError,
)
from hub.redact import redact, secret_paths

if TYPE_CHECKING:
    from hub.config import HubConfig

_LOGGER = logging.getLogger(__name__)

EventData: TypeAlias = Mapping[str, Any]
EventListener: TypeAlias = "Callable[[Event], Any]"
EventFilter: TypeAlias = Callable[[EventData], bool]
Unsubscribe: TypeAlias = Callable[[], None]
ServiceHandler: TypeAlias = "Callable[[ServiceCall], Any]"
StateWatcher: TypeAlias = "Callable[[str, State | None, State | None, Context], None]"
_Range: TypeAlias = "tuple[float, float, StateWatcher]"
_Watchers: TypeAlias = "tuple[float, float, tuple[_Range, ...], tuple[StateWatcher, ...]]"
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

_VALID_ENTITY_ID = re.compile(r"^(?!_)[a-z0-9_]+(?<!_)\.(?!_)[a-z0-9_]+(?<!_)$")
_VALID_SLUG = re.compile(r"^(?!_)[a-z0-9_]+(?<!_)$")

# Context ids: sortable by creation within a node, unique across nodes without coordination.
_NODE_TAG = os.urandom(4).hex()
_ID_COUNTER = itertools.count()
_time = time.time


def new_id() -> str:
    """Return a new unique id, ordered by creation time within one process."""
    return f"{int(_time() * 1000):011x}{_NODE_TAG}{next(_ID_COUNTER) & 0xFFFFFF:06x}"


@functools.lru_cache(maxsize=8192)
def valid_entity_id(entity_id: str) -> bool:
    """Tell whether entity_id is of the form domain.object_id in lower-case slug form."""
    return _VALID_ENTITY_ID.match(entity_id) is not None


def valid_domain(domain: str) -> bool:
    """Tell whether domain is a lower-case slug."""
    return _VALID_SLUG.match(domain) is not None


def split_entity_id(entity_id: str) -> tuple[str, str]:
    """Split an entity id into domain and object id."""
    domain, _, object_id = entity_id.partition(".")
    return domain, object_id


def ts_to_datetime(timestamp: float) -> datetime:
    """Return a UTC datetime for a POSIX timestamp."""
    return datetime.fromtimestamp(timestamp, UTC)


def callback(func: _F) -> _F:
    """Mark a function as a loop-safe callback (documentation only; plain functions are)."""
    return func


class Context:
    """Why something happened: carried through events, states and service calls."""

    __slots__ = ("_id", "parent_id", "user_id")

    def __init__(
        self, id: str | None = None, parent_id: str | None = None, user_id: str | None = None
    ) -> None:
        self._id = id
        self.parent_id = parent_id
        self.user_id = user_id

    @property
    def id(self) -> str:
        """The context id, made on first use so contexts nobody reads cost little."""
        if self._id is None:
            self._id = new_id()
        return self._id

    def child(self, user_id: str | None = None) -> Context:
        """Return a new context caused by this one."""
        return Context(parent_id=self.id, user_id=user_id if user_id is not None else self.user_id)

    def as_dict(self) -> dict[str, str | None]:
        """Return a JSON-serialisable form."""
        return {"id": self.id, "parent_id": self.parent_id, "user_id": self.user_id}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<Context {self.id} parent={self.parent_id} user={self.user_id}>"


class EventOrigin(enum.StrEnum):
    """Where an event came from: this node or another node of a cluster."""

    local = "LOCAL"
    remote = "REMOTE"


class Event:
    """An event on the bus."""

    __slots__ = ("_context", "data", "event_type", "origin", "time_fired_ts")

    def __init__(
        self,
        event_type: str,
        data: EventData | None = None,
        origin: EventOrigin = EventOrigin.local,
        time_fired_ts: float | None = None,
        context: Context | None = None,
    ) -> None:
        self.event_type = event_type
        self.data: EventData = data if data is not None else {}
        self.origin = origin
        self.time_fired_ts = time_fired_ts if time_fired_ts is not None else _time()
        self._context = context

    @property
    def context(self) -> Context:
        """The event's context, made on first use."""
        if self._context is None:
            self._context = Context()
        return self._context

    @property
    def time_fired(self) -> datetime:
        """When the event was fired, as a UTC datetime."""
        return ts_to_datetime(self.time_fired_ts)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form (states inside data become dicts)."""
        data = {
            key: value.as_dict() if isinstance(value, State) else value
            for key, value in self.data.items()
        }
        return {
            "event_type": self.event_type,
            "data": data,
            "origin": str(self.origin),
            "time_fired": self.time_fired.isoformat(),
            "context": self.context.as_dict(),
        }

    def __repr__(self) -> str:
        return f"<Event {self.event_type}[{self.origin.value[0]}]: {dict(self.data)}>"


class ReadOnlyDict(dict[str, Any]):
    """A dict that refuses changes: the attributes of a State."""

    __slots__ = ()

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError("state attributes are read-only")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return dict(self)


_EMPTY_ATTRIBUTES = ReadOnlyDict()
_NAN = math.nan
_NO_WATCHERS: _Watchers = (math.inf, -math.inf, (), ())


def _without(items: tuple[_T, ...], item: _T) -> tuple[_T, ...]:
    """items less the first entry that is item (by identity)."""
    for index, present in enumerate(items):
        if present is item:
            return items[:index] + items[index + 1 :]
    return items


class _StateFields(NamedTuple):
    entity_id: str
    state: str
    attributes: ReadOnlyDict
    last_changed_ts: float
    last_updated_ts: float
    last_reported_ts: float
    context: Context


_tuple_new = tuple.__new__


class State(_StateFields):
    """An entity's state at one moment: immutable, slotted, with read-only attributes.

    ``last_changed`` moves when the state string changes, ``last_updated`` when the state or
    the attributes change, ``last_reported`` whenever the state is written, even unchanged.
    """

    __slots__ = ()

    def __new__(
        cls,
        entity_id: str,
        state: str,
        attributes: Mapping[str, Any] | None = None,
        last_changed_ts: float | None = None,
        last_updated_ts: float | None = None,
        last_reported_ts: float | None = None,
        context: Context | None = None,
    ) -> Self:
        if not valid_entity_id(entity_id):
            raise InvalidEntityIdError(f"invalid entity id: {entity_id!r}")
        if not isinstance(state, str) or len(state) > MAX_LENGTH_STATE:
            raise InvalidStateError(
                f"state of {entity_id} must be a string of at most {MAX_LENGTH_STATE} characters"
            )
        now = _time()
        changed = last_changed_ts if last_changed_ts is not None else now
        updated = last_updated_ts if last_updated_ts is not None else changed
        reported = last_reported_ts if last_reported_ts is not None else updated
        attrs = attributes if type(attributes) is ReadOnlyDict else ReadOnlyDict(attributes or {})
        return _tuple_new(
            cls, (entity_id, state, attrs, changed, updated, reported, context or Context())
        )

    # A State is a value: it hashes by identity of its fields' meaning, not as a tuple.
    __hash__ = None  # type: ignore[assignment]

    @property
    def domain(self) -> str:
        """The part of the entity id before the dot."""
        return self.entity_id.partition(".")[0]

    @property
    def object_id(self) -> str:
        """The part of the entity id after the dot."""
        return self.entity_id.partition(".")[2]

    @property
    def name(self) -> str:
        """The friendly name, or the object id with spaces."""
        name = self.attributes.get("friendly_name")
        return str(name) if name else self.object_id.replace("_", " ")

    @property
    def last_changed(self) -> datetime:
        """When the state string last changed (UTC)."""
        return ts_to_datetime(self.last_changed_ts)

    @property
    def last_updated(self) -> datetime:
        """When the state or attributes last changed (UTC)."""
        return ts_to_datetime(self.last_updated_ts)

    @property
    def last_reported(self) -> datetime:
        """When the state was last written, changed or not (UTC)."""
        return ts_to_datetime(self.last_reported_ts)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            "entity_id": self.entity_id,
            "state": self.state,
            "attributes": dict(self.attributes),
            "last_changed": self.last_changed.isoformat(),
            "last_updated": self.last_updated.isoformat(),
            "last_reported": self.last_reported.isoformat(),
            # The ISO strings stop at microseconds; the floats restore a state exactly.
            "last_changed_ts": self.last_changed_ts,
            "last_updated_ts": self.last_updated_ts,
            "last_reported_ts": self.last_reported_ts,
            "context": self.context.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State:
        """Build a State from the output of as_dict; raises ValueError on bad data."""
        ctx = data.get("context") or {}

        def stamp(key: str, fallback: str) -> float:
            raw = data.get(f"{key}_ts")
            if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
                return float(raw)
            return datetime.fromisoformat(data.get(key) or data[fallback]).timestamp()

        return cls(
            data["entity_id"],
            data["state"],
            data.get("attributes") or {},
            stamp("last_changed", "last_changed"),
            stamp("last_updated", "last_updated"),
            stamp("last_reported", "last_updated"),
            Context(ctx.get("id"), ctx.get("parent_id"), ctx.get("user_id")),
        )

    def __repr__(self) -> str:
        attrs = f"; {dict(self.attributes)}" if self.attributes else ""
        return f"<state {self.entity_id}={self.state}{attrs} @ {self.last_changed.isoformat()}>"


class _Listener(NamedTuple):
    callback: EventListener
    event_filter: EventFilter | None
    is_coroutine: bool


def _is_coroutine_function(func: Callable[..., Any]) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func)


class EventBus:
    """Listeners per event type and for all events; dispatch runs in the loop."""

    __slots__ = ("_hub", "_listeners", "_match_all")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        # Tuples, replaced on change: a listener may (un)subscribe while an event dispatches.
        self._listeners: dict[str, tuple[_Listener, ...]] = {}
        self._match_all: tuple[_Listener, ...] = ()

    def listeners(self) -> dict[str, int]:
        """Return the number of listeners per event type."""
        counts = {event_type: len(found) for event_type, found in self._listeners.items()}
        if self._match_all:
            counts[MATCH_ALL] = len(self._match_all)
        return counts

    def listen(
        self,
        event_type: str,
        listener: EventListener,
        event_filter: EventFilter | None = None,
    ) -> Unsubscribe:
        """Call listener for each event of event_type (or MATCH_ALL) the filter lets through.

        The filter runs on the raw event data before an Event is built.
        """
        entry = _Listener(listener, event_filter, _is_coroutine_function(listener))
        if event_type == MATCH_ALL:
            self._match_all = (*self._match_all, entry)
        else:
            self._listeners[event_type] = (*self._listeners.get(event_type, ()), entry)

        def unsubscribe() -> None:
            self._remove(event_type, entry)

        return unsubscribe

    def listen_once(
        self,
        event_type: str,
        listener: EventListener,
        event_filter: EventFilter | None = None,
    ) -> Unsubscribe:
        """Call listener for the next matching event only."""
        done = False

        def once(event: Event) -> Any:
            nonlocal done
            if done:
                return None
            done = True
            unsubscribe()
            return listener(event)

        unsubscribe = self.listen(event_type, once, event_filter)
        # Keep a coroutine listener a coroutine, so its task is tracked.
        if _is_coroutine_function(listener):
            self._remove(event_type, self._find(event_type, once))

            async def once_async(event: Event) -> None:
                nonlocal done
                if done:
                    return
                done = True
                unsubscribe()
                await listener(event)

            unsubscribe = self.listen(event_type, once_async, event_filter)
        return unsubscribe

    def _find(self, event_type: str, callback: EventListener) -> _Listener:
        pool = self._match_all if event_type == MATCH_ALL else self._listeners[event_type]
        return next(entry for entry in pool if entry.callback is callback)

    def _remove(self, event_type: str, entry: _Listener) -> None:
        if event_type == MATCH_ALL:
            self._match_all = tuple(e for e in self._match_all if e is not entry)
            return
        remaining = tuple(e for e in self._listeners.get(event_type, ()) if e is not entry)
        if remaining:
            self._listeners[event_type] = remaining
        else:
            self._listeners.pop(event_type, None)

    def fire(
        self,
        event_type: str,
        data: EventData | None = None,
        context: Context | None = None,
        origin: EventOrigin = EventOrigin.local,
        time_fired_ts: float | None = None,
    ) -> None:
        """Fire an event: callbacks run now, coroutine listeners as tracked tasks."""
        listeners = self._listeners.get(event_type, ())
        if self._match_all:
            listeners = (*listeners, *self._match_all)
        if not listeners:
            return
        if data is None:
            data = {}
        event: Event | None = None
        for listener, event_filter, is_coroutine in listeners:
            if event_filter is not None:
                try:
                    if not event_filter(data):
                        continue
                except Exception:
                    _LOGGER.exception("Error in event filter of %s for %s", listener, event_type)
                    continue
            if event is None:
                event = Event(event_type, data, origin, time_fired_ts, context)
            if is_coroutine:
                self._hub.create_task(self._run_async(listener, event), f"listener {event_type}")
                continue
            try:
                listener(event)
            except Exception:
                _LOGGER.exception("Error running listener %s for %s", listener, event)

    @staticmethod
    async def _run_async(listener: EventListener, event: Event) -> None:
        try:
            await listener(event)
        except Exception:
            _LOGGER.exception("Error running listener %s for %s", listener, event)


class StateMachine:
    """The current state of every entity."""

    __slots__ = ("_bus", "_states", "_watchers")

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._states: dict[str, State] = {}
        # Per-entity watchers called straight from set(): no Event is built for them. For
        # hot subscribers (an automation trigger per entity); others use the bus. Each entry
        # is (low, high, range watchers as (low, high, watcher), plain watchers), low and
        # high being the loosest bounds of its range watchers.
        self._watchers: dict[str, _Watchers] = {}

    def watch(
        self,
        entity_ids: str | Iterable[str],
        watcher: StateWatcher,
        *,
        between: tuple[float, float] | None = None,
    ) -> Unsubscribe:
        """Call watcher(entity_id, old_state, new_state, context) on each change of them.

        The one per-entity subscription: a write costs one dict lookup, and the watcher
        runs inside set() (and remove(), with new_state None) after the state_changed
        event. It must be a quick callback; async work it schedules itself with
        hub.create_task. With between=(low, high) it is called only when the new state
        is a number strictly between low and high: set() parses the state once and
        compares it inline, so a write outside the range costs no call at all. Range
        watchers of an entity run before its plain ones, each kind in subscription
        order. Ids listed twice count once; the same watcher subscribed twice is called
        twice; a watcher added or removed during a write takes effect from the next one.
        """
        if isinstance(entity_ids, str):
            entity_ids = (entity_ids,)
        ids = list(dict.fromkeys(entity_ids))
        # A fresh tuple per subscription: unwatch finds its own entry by identity, so the
        # same watcher subscribed twice is undone once per unsubscribe.
        entry: _Range | None = None if between is None else (between[0], between[1], watcher)
        watchers = self._watchers
        for entity_id in ids:
            _low, _high, ranges, plain = watchers.get(entity_id, _NO_WATCHERS)
            if entry is None:
                self._put_watchers(entity_id, ranges, (*plain, watcher))
            else:
                self._put_watchers(entity_id, (*ranges, entry), plain)
        subscribed = True

        def unwatch() -> None:
            nonlocal subscribed
            if not subscribed:
                return
            subscribed = False
            for entity_id in ids:
                _low, _high, ranges, plain = watchers.get(entity_id, _NO_WATCHERS)
                if entry is None:
                    self._put_watchers(entity_id, ranges, _without(plain, watcher))
                else:
                    self._put_watchers(entity_id, _without(ranges, entry), plain)

        return unwatch

    def _put_watchers(
        self, entity_id: str, ranges: tuple[_Range, ...], plain: tuple[StateWatcher, ...]
    ) -> None:
        if not ranges and not plain:
            self._watchers.pop(entity_id, None)
            return
        # The loosest bounds of all range watchers: one comparison settles most writes.
        low = min((r[0] for r in ranges), default=math.inf)
        high = max((r[1] for r in ranges), default=-math.inf)
        self._watchers[entity_id] = (low, high, ranges, plain)

    def _enter_ranges(
        self,
        ranges: tuple[_Range, ...],
        value: float,
        entity_id: str,
        old: State | None,
        new: State,
        context: Context,
    ) -> None:
        for low, high, watcher in ranges:
            if low < value < high:
                try:
                    watcher(entity_id, old, new, context)
                except Exception:
                    _LOGGER.exception("Error in state watcher %s for %s", watcher, entity_id)

    def _notify(
        self, entity_id: str, old: State | None, new: State | None, context: Context
    ) -> None:
        plain = self._watchers.get(entity_id, _NO_WATCHERS)[3]
        for watcher in plain:
            try:
                watcher(entity_id, old, new, context)
            except Exception:
                _LOGGER.exception("Error in state watcher %s for %s", watcher, entity_id)

    def get(self, entity_id: str) -> State | None:
        """Return the state of entity_id, or None."""
        return self._states.get(entity_id)

    def all(self, domain: str | None = None) -> list[State]:
        """Return all states, or those of one domain."""
        if domain is None:
            return list(self._states.values())
        prefix = f"{domain}."
        return [s for eid, s in self._states.items() if eid.startswith(prefix)]

    def entity_ids(self, domain: str | None = None) -> list[str]:
        """Return all entity ids, or those of one domain."""
        if domain is None:
            return list(self._states)
        prefix = f"{domain}."
        return [eid for eid in self._states if eid.startswith(prefix)]

    def is_state(self, entity_id: str, state: str) -> bool:
        """Tell whether entity_id currently has the given state."""
        found = self._states.get(entity_id)
        return found is not None and found.state == state

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._states

    def remove(self, entity_id: str, context: Context | None = None) -> bool:
        """Remove an entity's state; fires state_changed with new_state None."""
        old_state = self._states.pop(entity_id, None)
        if old_state is None:
            return False
        if context is None:
            context = Context()
        self._bus.fire(
            EVENT_STATE_CHANGED,
            {ATTR_ENTITY_ID: entity_id, ATTR_OLD_STATE: old_state, ATTR_NEW_STATE: None},
            context,
        )
        if entity_id in self._watchers:
            self._notify(entity_id, old_state, None, context)
        return True

    def set(
        self,
        entity_id: str,
        new_state: str,
        attributes: Mapping[str, Any] | None = None,
        context: Context | None = None,
        *,
        force_update: bool = False,
        timestamp: float | None = None,
    ) -> State:
        """Set an entity's state and fire state_changed (or state_reported if unchanged).

        force_update treats an unchanged state as a change: state_changed fires and
        last_changed moves.
        """
        old_state = self._states.get(entity_id)
        if old_state is None and not valid_entity_id(entity_id):
            raise InvalidEntityIdError(f"invalid entity id: {entity_id!r}")
        if type(new_state) is not str or len(new_state) > MAX_LENGTH_STATE:
            raise InvalidStateError(
                f"state of {entity_id} must be a string of at most {MAX_LENGTH_STATE} characters"
            )
        now = _time() if timestamp is None else timestamp
        if attributes is None:
            attributes = _EMPTY_ATTRIBUTES
        if old_state is None:
            last_changed = now
            attrs = attributes if type(attributes) is ReadOnlyDict else ReadOnlyDict(attributes)
        else:
            same_state = old_state.state == new_state and not force_update
            old_attrs = old_state.attributes
            same_attrs = old_attrs == attributes
            if same_state and same_attrs:
                return self._report(old_state, now, context)
            last_changed = old_state.last_changed_ts if same_state else now
            if same_attrs:
                attrs = old_attrs
            else:
                attrs = attributes if type(attributes) is ReadOnlyDict else ReadOnlyDict(attributes)
        if context is None:
            context = Context()
        state = _tuple_new(State, (entity_id, new_state, attrs, last_changed, now, now, context))
        self._states[entity_id] = state
        self._bus.fire(
            EVENT_STATE_CHANGED,
            {ATTR_ENTITY_ID: entity_id, ATTR_OLD_STATE: old_state, ATTR_NEW_STATE: state},
            context,
            EventOrigin.local,
            now,
        )
        # _notify inlined: this runs on every write of a watched entity.
        watched = self._watchers.get(entity_id)
        if watched is not None:
            low, high, ranges, plain = watched
            if ranges:
                try:
                    value = float(new_state)
                except ValueError:
                    value = _NAN
                if low < value < high:
                    self._enter_ranges(ranges, value, entity_id, old_state, state, context)
            if plain:
                for watcher in plain:
                    try:
                        watcher(entity_id, old_state, state, context)
                    except Exception:
                        _LOGGER.exception("Error in state watcher %s for %s", watcher, entity_id)
        return state

    def _report(self, old_state: State, now: float, context: Context | None) -> State:
        """Record an unchanged write: only last_reported moves, no state_changed."""
        state = old_state._replace(last_reported_ts=now)
        self._states[old_state.entity_id] = state
        self._bus.fire(
            EVENT_STATE_REPORTED,
            {
                ATTR_ENTITY_ID: old_state.entity_id,
                "old_last_reported": old_state.last_reported_ts,
                ATTR_NEW_STATE: state,
            },
            context,
            EventOrigin.local,
            now,
        )
        return state

    def restore(
        self, states: Iterable[State], replace: Callable[[State, State], bool] | None = None
    ) -> int:
        """Put states back as they were saved, without events (start-up only).

        A state already present stays, unless replace(present, saved) says otherwise.
        """
        count = 0
        for state in states:
            present = self._states.get(state.entity_id)
            if present is None or (replace is not None and replace(present, state)):
                self._states[state.entity_id] = state
                count += 1
        return count


class ServiceCall:
    """A call to a service: what was asked, of whom, and why."""

    __slots__ = ("context", "data", "domain", "hub", "service", "target")

    def __init__(
        self,
        hub: Hub,
        domain: str,
        service: str,
        data: dict[str, Any],
        target: dict[str, Any] | None,
        context: Context,
    ) -> None:
        self.hub = hub
        self.domain = domain
        self.service = service
        self.data = data
        self.target = target or {}
        self.context = context

    def __repr__(self) -> str:
        return f"<ServiceCall {self.domain}.{self.service} {self.data} target={self.target}>"


class Service(NamedTuple):
    """A registered service."""

    handler: ServiceHandler
    schema: vol.Schema | None
    is_coroutine: bool
    description: str
    secret_paths: frozenset[tuple[str, ...]] = frozenset()
    # The least user role (hub.auth.Role's value) an API caller needs: admin unless the
    # registering integration says otherwise.
    role: str = "admin"


class ServiceRegistry:
    """Services by domain and name, with voluptuous schemas."""

    __slots__ = ("_hub", "_services")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._services: dict[str, dict[str, Service]] = {}

    def register(
        self,
        domain: str,
        service: str,
        handler: ServiceHandler,
        schema: vol.Schema | Mapping[Any, Any] | None = None,
        description: str = "",
        *,
        role: str = "admin",
    ) -> Unsubscribe:
        """Register a service; a plain dict schema is wrapped in vol.Schema.

        role is the least user role (viewer, operator or admin) an API caller needs.

        A service that exists is refused (ServiceExistsError): a plugin cannot replace
        ``charger.reset`` or another integration's service. Its owner removes it (the
        returned unregister, or unload) before registering it again.
        """
        if not valid_domain(domain) or not valid_domain(service):
            raise ValueError(f"invalid service name {domain}.{service}")
        if service in self._services.get(domain, {}):
            raise ServiceExistsError(domain, service)
        if schema is not None and not isinstance(schema, vol.Schema):
            schema = vol.Schema(schema)
        entry = Service(
            handler,
            schema,
            _is_coroutine_function(handler),
            description,
            secret_paths(schema) if schema is not None else frozenset(),
            role,
        )
        self._services.setdefault(domain, {})[service] = entry
        self._hub.bus.fire(EVENT_SERVICE_REGISTERED, {ATTR_DOMAIN: domain, ATTR_SERVICE: service})

        def unregister() -> None:
            if self._services.get(domain, {}).get(service) is entry:
                self.remove(domain, service)

        return unregister

    def remove(self, domain: str, service: str) -> None:
        """Remove a service."""
        services = self._services.get(domain)
        if services is None or services.pop(service, None) is None:
            raise ServiceNotFoundError(domain, service)
        if not services:
            del self._services[domain]
        self._hub.bus.fire(EVENT_SERVICE_REMOVED, {ATTR_DOMAIN: domain, ATTR_SERVICE: service})

    def secret_paths(self, domain: str, service: str) -> frozenset[tuple[str, ...]]:
        """The data paths a service's schema marks Secret (hub.redact)."""
        entry = self._services.get(domain, {}).get(service)
        return entry.secret_paths if entry is not None else frozenset()

    def role(self, domain: str, service: str) -> str:
        """The least user role an API caller of a service needs (admin for an unknown one)."""
        entry = self._services.get(domain, {}).get(service)
        return entry.role if entry is not None else "admin"

    def has_service(self, domain: str, service: str) -> bool:
        """Tell whether a service exists."""
        return service in self._services.get(domain, {})

    def services(self) -> dict[str, dict[str, Service]]:
        """Return a copy of all services by domain."""
        return {domain: dict(found) for domain, found in self._services.items()}

    async def call(
        self,
        domain: str,
        service: str,
        data: Mapping[str, Any] | None = None,
        target: Mapping[str, Any] | None = None,
        context: Context | None = None,
        *,
        blocking: bool = True,
    ) -> Any:
        """Call a service; blocking returns the handler's result or raises its error."""
        entry = self._services.get(domain, {}).get(service)
        if entry is None:
            raise ServiceNotFoundError(domain, service)
        raw = dict(data or {})
        if entry.schema is not None:
            try:
                validated = entry.schema(raw)
            except vol.Invalid as err:
                raise ServiceValidationError(
                    f"invalid data for {domain}.{service}: {_humanize_invalid(err)}"
                ) from err
        else:
            validated = raw
        if context is None:
            context = Context()
        target_dict = dict(target) if target else None
        # Secrets never reach the bus: subscribers, the recorder and automations see the
        # data redacted; only the handler gets it in clear.
        self._hub.bus.fire(
            EVENT_CALL_SERVICE,
            {
                ATTR_DOMAIN: domain,
                ATTR_SERVICE: service,
                ATTR_SERVICE_DATA: redact(raw, entry.secret_paths),
                ATTR_TARGET: target_dict,
            },
            context,
        )
        call = ServiceCall(self._hub, domain, service, validated, target_dict, context)
        if not blocking:
            self._hub.create_task(self._run_logged(entry, call), f"service {domain}.{service}")
            return None
        return await self._run(entry, call)

    @staticmethod
    async def _run(entry: Service, call: ServiceCall) -> Any:
        if entry.is_coroutine:
            return await entry.handler(call)
        result = entry.handler(call)
        if inspect.isawaitable(result):
            return await result
        return result

    async def _run_logged(self, entry: Service, call: ServiceCall) -> None:
        try:
            await self._run(entry, call)
        except Exception:
            _LOGGER.exception("Error in service %s.%s", call.domain, call.service)


def _humanize_invalid(err: vol.Invalid) -> str:
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    parts = []
    for error in errors:
        path = ".".join(str(p) for p in error.path)
        parts.append(f"{path}: {error.msg}" if path else str(error.msg))
    return "; ".join(parts)


_MISSING: Any = object()


class HubKey(str, Generic[_T]):
    """A typed key of ``hub.data``, defined by the one module that owns its value.

    ``DATA_X: HubKey[Thing] = HubKey("x")`` makes ``hub.data[DATA_X]`` a ``Thing`` to the
    type checker (Home Assistant's HassKey is the model).
    """

    __slots__ = ()


class HubData(dict[str, Any]):
    """``hub.data``: per-integration state, each value under its owner's typed HubKey."""

    def __getitem__(self, key: HubKey[_T]) -> _T:  # type: ignore[override]
        return super().__getitem__(key)  # type: ignore[no-any-return]

    def __setitem__(self, key: HubKey[_T], value: _T) -> None:  # type: ignore[override]
        super().__setitem__(key, value)

    @overload  # type: ignore[override]
    def get(self, key: HubKey[_T], default: None = None) -> _T | None: ...
    @overload
    def get(self, key: HubKey[_T], default: _T) -> _T: ...
    def get(self, key: HubKey[_T], default: _T | None = None) -> _T | None:
        return super().get(key, default)

    def setdefault(self, key: HubKey[_T], default: _T) -> _T:  # type: ignore[override]
        return super().setdefault(key, default)  # type: ignore[no-any-return]

    @overload  # type: ignore[override]
    def pop(self, key: HubKey[_T]) -> _T: ...
    @overload
    def pop(self, key: HubKey[_T], default: _T | None) -> _T | None: ...
    def pop(self, key: HubKey[_T], default: Any = _MISSING) -> Any:
        if default is _MISSING:
            return super().pop(key)
        return super().pop(key, default)

    def provide(self, key: HubKey[_T], value: _T, taken: Exception) -> Unsubscribe:
        """Hold value under key until the returned callable is called; raise taken if the
        key holds one already (one provider at a time)."""
        if key in self:
            raise taken
        self[key] = value

        def remove() -> None:
            if self.get(key) is value:
                del self[key]

        return remove


class Lifecycle(Protocol):
    """What starts and stops a hub's configuration, integrations and HTTP server.

    The composition root (hub.bootstrap, used by the CLI) provides it; the core never imports
    it, and a hub without one runs the bare core (tests of the core).
    """

    async def setup(self, hub: Hub) -> None:
        """Load the configuration and set everything up."""

    async def shutdown(self, hub: Hub) -> None:
        """Unload everything, dependents first."""


class CoreState(enum.StrEnum):
    """The hub's lifecycle."""

    not_running = "NOT_RUNNING"
    starting = "STARTING"
    running = "RUNNING"
    stopping = "STOPPING"
    stopped = "STOPPED"


class Hub:
    """The root object: bus, states, services and the lifecycle that ties them together."""

    def __init__(self, config_dir: str | Path, lifecycle: Lifecycle | None = None) -> None:
        self.config_dir = Path(config_dir)
        self.loop = asyncio.get_running_loop()
        self.bus = EventBus(self)
        self.states = StateMachine(self.bus)
        self.services = ServiceRegistry(self)
        self.data = HubData()
        self.state = CoreState.not_running
        self.config: HubConfig | None = None
        self.started_at: float | None = None
        self.exit_code = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._parked: set[asyncio.Task[Any]] = set()
        self._park_waiters: set[asyncio.Future[None]] = set()
        self._background_tasks: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()
        self._stop_task: asyncio.Task[None] | None = None
        self._shutdown_jobs: list[Callable[[], Awaitable[None]]] = []
        self.lifecycle = lifecycle

    def __repr__(self) -> str:
        return f"<Hub {self.config_dir} {self.state}>"

    @property
    def is_running(self) -> bool:
        """Tell whether the hub is starting or running."""
        return self.state in (CoreState.starting, CoreState.running)

    def path(self, *parts: str) -> Path:
        """Return a path inside the config dir."""
        return self.config_dir.joinpath(*parts)

    def create_task(
        self, coro: Coroutine[Any, Any, _T], name: str | None = None
    ) -> asyncio.Task[_T]:
        """Run a coroutine as a task that block_till_done waits for."""
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def create_background_task(self, coro: Coroutine[Any, Any, _T], name: str) -> asyncio.Task[_T]:
        """Run a long-lived task (a server, a poll loop) that stop() cancels.

        block_till_done does not wait for it.
        """
        task = self.loop.create_task(coro, name=name)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)
        return task

    def track_future(self, future: asyncio.Future[Any]) -> None:
        """Make block_till_done wait for a future made elsewhere (an executor job)."""
        self._tasks.add(future)
        future.add_done_callback(self._tasks.discard)

    async def run_in_executor(self, func: Callable[..., _T], *args: Any) -> _T:
        """Run blocking work in the default executor, tracked by block_till_done."""
        future = self.loop.run_in_executor(None, func, *args)
        self.track_future(future)
        return await future

    def on_shutdown(self, job: Callable[[], Awaitable[None]]) -> Unsubscribe:
        """Run job while the hub stops, after integrations unload and before final writes."""
        self._shutdown_jobs.append(job)

        def remove() -> None:
            if job in self._shutdown_jobs:
                self._shutdown_jobs.remove(job)

        return remove

    def park(self, task: asyncio.Task[Any]) -> None:
        """Mark a task as waiting for the clock (a delay): block_till_done need not wait."""
        self._parked.add(task)
        for waiter in self._park_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def unpark(self, task: asyncio.Task[Any]) -> None:
        """The task's wait for the clock is over."""
        self._parked.discard(task)

    def _busy(self, current: asyncio.Task[Any] | None) -> list[asyncio.Future[Any]]:
        return [
            task
            for task in self._tasks
            if task is not current and not task.done() and task not in self._parked
        ]

    async def block_till_done(self) -> None:
        """Wait until no tracked task or executor job is pending and the loop is idle.

        Tasks waiting for the clock (an automation's delay) do not count: they have nothing
        to do until the time comes.
        """
        current = asyncio.current_task()
        while True:
            # Let callbacks scheduled with call_soon run, they may create tasks.
            await asyncio.sleep(0)
            pending = self._busy(current)
            if not pending:
                await asyncio.sleep(0)
                if not self._busy(current):
                    return
                continue
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._park_waiters.add(waiter)
            try:
                await asyncio.wait([*pending, waiter], return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._park_waiters.discard(waiter)
                waiter.cancel()

    async def start(self) -> None:
        """Start the hub: load config and storage, set up integrations, then run."""
        if self.state is not CoreState.not_running:
            raise HubStateError(f"cannot start a hub that is {self.state}")
        self.state = CoreState.starting
        self.started_at = _time()
        self.bus.fire(EVENT_HUB_START)
        try:
            if self.lifecycle is not None:
                await self.lifecycle.setup(self)
        except BaseException:
            self.state = CoreState.not_running
            raise
        await self.block_till_done()
        self.state = CoreState.running
        self.bus.fire(EVENT_HUB_STARTED)
        # The lifecycle says "evhub started", or what did not start (hub.bootstrap).
        _LOGGER.debug("hub running (%s)", self.config_dir)

    def install_signal_handlers(self) -> None:
        """Stop gracefully on SIGINT and SIGTERM."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(signum, self.request_stop)

    def remove_signal_handlers(self) -> None:
        """Undo install_signal_handlers."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.loop.remove_signal_handler(signum)

    def request_stop(self, exit_code: int = 0) -> None:
        """Ask the hub to stop (from a signal or a service); returns at once."""
        if self._stop_task is None and self.state not in (CoreState.stopping, CoreState.stopped):
            self.exit_code = exit_code
            _LOGGER.info("stop requested")
            self._stop_task = self.loop.create_task(self.stop(), name="hub stop")

    async def wait_stopped(self) -> int:
        """Wait until the hub has stopped; return its exit code."""
        await self._stopped.wait()
        if self._stop_task is not None:
            await self._stop_task
        return self.exit_code

    async def stop(self) -> None:
        """Stop: let integrations close, flush storage, cancel what is left."""
        if self.state in (CoreState.stopping, CoreState.stopped):
            await self._stopped.wait()
            return
        self.state = CoreState.stopping
        self.bus.fire(EVENT_HUB_STOP)
        try:
            if self.lifecycle is not None:
                await self.lifecycle.shutdown(self)
        except Exception:
            _LOGGER.exception("Error while unloading integrations")
        for job in reversed(self._shutdown_jobs):
            try:
                await job()
            except Exception:
                _LOGGER.exception("Error in shutdown job %s", job)
        await self.block_till_done()
        self.bus.fire(EVENT_HUB_FINAL_WRITE)
        await self.block_till_done()
        for task in list(self._background_tasks):
            task.cancel()
        if self._background_tasks:
            await asyncio.gather(*self._background_tasks, return_exceptions=True)
        self.state = CoreState.stopped
        self.bus.fire(EVENT_HUB_CLOSE)
        await self.block_till_done()
        self._stopped.set()
        _LOGGER.info("evhub stopped")
