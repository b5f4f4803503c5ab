"""Last states restored on restart, so that a restart does not look like an outage.

At start, before integrations set up, the states saved when the hub last stopped go back into
the state machine as they were (state, attributes, timestamps, context), without events.
States are saved at the final write of a stop and every 15 minutes while the hub runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from hub.clock import Timer, clock
from hub.const import EVENT_HUB_FINAL_WRITE, EVENT_HUB_STOP, STATE_UNAVAILABLE
from hub.core import Context, CoreState, Event, Hub, HubKey, State, Unsubscribe
from hub.exceptions import StorageError
from hub.storage import Store

_LOGGER = logging.getLogger(__name__)

DATA_RESTORE_STATE: Final[HubKey[RestoreStateData]] = HubKey("restore_state")
_DATA_LOAD_LOCK: Final[HubKey[asyncio.Lock]] = HubKey("restore_state.load_lock")

STORAGE_KEY: Final = "core.restore_state"
STORAGE_VERSION: Final = 1
SAVE_INTERVAL: Final = 15 * 60.0


class RestoreStateData:
    """The states saved at the last stop, and the timers and listeners that save them."""

    def __init__(self, hub: Hub, *, save_interval: float | None = None) -> None:
        self.hub = hub
        self.save_interval = SAVE_INTERVAL if save_interval is None else save_interval
        self.store: Store[dict[str, Any]] = Store(hub, STORAGE_VERSION, STORAGE_KEY)
        self.last_states: dict[str, State] = {}
        self._timer: Timer | None = None
        self._unsubs: list[Unsubscribe] = []
        self._at_stop: dict[str, State] | None = None

    async def async_load(self) -> None:
        """Read the saved states and put back those the state machine does not have."""
        try:
            data = await self.store.load()
        except StorageError as err:
            # Restored states are a convenience: start without them rather than not at all.
            _LOGGER.error("Not restoring states: %s", err)
            data = None
        self.last_states = _parse_states(data)
        restored = self.hub.states.restore(self.last_states.values())
        if restored:
            _LOGGER.info("Restored %d states saved at the last stop", restored)

    def start(self) -> None:
        """Save periodically while the hub runs, and at its final write."""
        self._unsubs.append(self.hub.bus.listen(EVENT_HUB_STOP, self._on_stop))
        self._unsubs.append(self.hub.bus.listen(EVENT_HUB_FINAL_WRITE, self._on_final_write))
        if self.hub.state not in (CoreState.stopping, CoreState.stopped):
            self._schedule()

    def states_to_save(self) -> list[State]:
        """Return the states to save now.

        After the hub was asked to stop, integrations unload and may remove their states or
        mark them unavailable; what they looked like when the stop began is what should come
        back, so a later unavailable or missing state does not replace it.
        """
        current = {state.entity_id: state for state in self.hub.states.all()}
        if self._at_stop is None:
            return list(current.values())
        merged = dict(self._at_stop)
        for entity_id, state in current.items():
            if state.state != STATE_UNAVAILABLE or entity_id not in merged:
                merged[entity_id] = state
        return list(merged.values())

    async def async_dump(self) -> None:
        """Write the states to save now."""
        data = {"saved_at": clock(self.hub).time(), "states": _StateRows(self.states_to_save())}
        try:
            # The snapshot holds immutable States: rows are built and encoded in slices.
            await self.store.save(data, immutable=True)
        except StorageError as err:
            _LOGGER.error("Could not save states for restore: %s", err)

    def _schedule(self) -> None:
        self._timer = clock(self.hub).call_later(self.save_interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.hub.state in (CoreState.stopping, CoreState.stopped):
            return
        self.hub.create_task(self.async_dump(), "save states for restore")
        self._schedule()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_stop(self, _event: Event) -> None:
        self._cancel_timer()
        self._at_stop = {state.entity_id: state for state in self.hub.states.all()}

    def _on_final_write(self, _event: Event) -> None:
        self._cancel_timer()
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self.hub.create_task(self.async_dump(), "save states for restore")


class _StateRows:
    """States saved as compact rows, built a slice at a time as the store encodes them.

    A row: [entity_id, state, attributes, last_changed, last_updated, last_reported,
    context id, context parent id, context user id]. A fleet's hundreds of thousands of
    states encode in a fraction of the time dictionaries with ISO dates would take.
    """

    __slots__ = ("states",)

    def __init__(self, states: list[State]) -> None:
        self.states = states

    def __len__(self) -> int:
        return len(self.states)

    def json_slice(self, start: int, stop: int) -> list[tuple[Any, ...]]:
        """Rows of states[start:stop], for the store's slice-at-a-time encoding."""
        return [
            (*state[:6], state.context.id, state.context.parent_id, state.context.user_id)
            for state in self.states[start:stop]
        ]


def _state_from_row(row: list[Any]) -> State:
    entity_id, value, attributes, changed, updated, reported, ctx_id, parent, user = row
    for stamp in (changed, updated, reported):
        if not isinstance(stamp, int | float) or isinstance(stamp, bool):
            raise ValueError(f"bad timestamp {stamp!r}")
    return State(
        entity_id, value, attributes, changed, updated, reported, Context(ctx_id, parent, user)
    )


def _parse_states(data: Mapping[str, Any] | None) -> dict[str, State]:
    """Turn saved entries into States, skipping (and logging) those that are broken."""
    if not data:
        return {}
    entries = data.get("states")
    if not isinstance(entries, list):
        _LOGGER.error("Not restoring states: 'states' is not a list")
        return {}
    states: dict[str, State] = {}
    for entry in entries:
        try:
            state = (
                _state_from_row(entry)
                if isinstance(entry, list)
                else State.from_dict(entry["state"])
            )
        except Exception as err:
            # Whatever is wrong with one entry, the others are restored and the hub starts.
            _LOGGER.warning("Skipping a saved state that cannot be restored: %r (%r)", entry, err)
            continue
        states[state.entity_id] = state
    return states


async def async_load_restore_state(hub: Hub) -> None:
    """Restore the states saved at the last stop and start saving them; once per hub."""
    lock = hub.data.setdefault(_DATA_LOAD_LOCK, asyncio.Lock())
    async with lock:
        if DATA_RESTORE_STATE in hub.data:
            return
        restore = RestoreStateData(hub)
        await restore.async_load()
        hub.data[DATA_RESTORE_STATE] = restore
        restore.start()


def restore_state_data(hub: Hub) -> RestoreStateData | None:
    """Return the hub's restore state data, or None if not loaded."""
    return hub.data.get(DATA_RESTORE_STATE)


def last_state(hub: Hub, entity_id: str) -> State | None:
    """Return entity_id's state as it was saved at the last stop, or None."""
    data = restore_state_data(hub)
    return None if data is None else data.last_states.get(entity_id)


def saved_states(hub: Hub) -> Iterable[State]:
    """Return every state saved at the last stop."""
    data = restore_state_data(hub)
    return () if data is None else tuple(data.last_states.values())


def restore_newer(hub: Hub, states: Iterable[State]) -> int:
    """Put back states newer than those restored from the last save (the recorder's, after
    a crash: it is at most a second behind, the periodic save up to 15 minutes).

    A state some integration has set since start-up is left alone.
    """
    data = restore_state_data(hub)
    saved = {} if data is None else data.last_states

    def replace(present: State, newer: State) -> bool:
        return (
            saved.get(present.entity_id) is present
            and newer.last_updated_ts > present.last_updated_ts
        )

    fresh = [s for s in states if s.entity_id not in saved or replace(saved[s.entity_id], s)]
    restored = hub.states.restore(fresh, replace)
    for state in fresh:
        if hub.states.get(state.entity_id) is state:
            saved[state.entity_id] = state
    if restored:
        _LOGGER.info("Restored %d states newer than the last save from the history", restored)
    return restored


def mark_orphans_unavailable(hub: Hub, loaded: set[str]) -> int:
    """Mark restored states whose integration did not load as unavailable (restored: true).

    Called once the integrations' first set-up attempts are over: an entity registered by an
    integration that is gone from the config, or failing to set up, would otherwise show its
    last value as if it were current. States an integration has set since start-up, and
    states of entities outside the registry, are left alone.
    """
    from hub.registry import entity_registry

    data = restore_state_data(hub)
    if data is None:
        return 0
    registry = entity_registry(hub)
    marked = 0
    for entity_id, saved in data.last_states.items():
        if hub.states.get(entity_id) is not saved or saved.state == STATE_UNAVAILABLE:
            continue
        entry = registry.get(entity_id)
        if entry is None or entry.platform in loaded:
            continue
        hub.states.set(entity_id, STATE_UNAVAILABLE, {**saved.attributes, "restored": True})
        marked += 1
    if marked:
        _LOGGER.info("%d restored states belong to integrations not loaded: unavailable", marked)
    return marked
