"""Helpers that track changes: per-entity routing through one filtered bus listener."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from hub.const import ATTR_ENTITY_ID, EVENT_STATE_CHANGED
from hub.core import Event, EventData, Hub, Unsubscribe

_LOGGER = logging.getLogger(__name__)

_DATA_KEY = "track.state_change_dispatcher"

StateChangeAction = Callable[[Event], Any]


class _StateChangeDispatcher:
    """Route state_changed events to the actions tracking that entity.

    One bus listener whose filter is a dict lookup: a write costs O(1) however many
    entities are tracked, and writes to untracked entities build no Event at all.
    """

    __slots__ = ("_by_entity", "_hub", "_unsub")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        # Tuples, replaced on change: an action may (un)track while an event dispatches.
        self._by_entity: dict[str, tuple[StateChangeAction, ...]] = {}
        self._unsub: Unsubscribe | None = None

    def _filter(self, data: EventData) -> bool:
        return data[ATTR_ENTITY_ID] in self._by_entity

    def _dispatch(self, event: Event) -> None:
        for action in self._by_entity.get(event.data[ATTR_ENTITY_ID], ()):
            try:
                result = action(event)
            except Exception:
                _LOGGER.exception("Error in state change action %s for %s", action, event)
                continue
            # Most actions are callbacks returning None: skip the costlier awaitable test.
            if result is not None and inspect.isawaitable(result):
                self._hub.create_task(
                    self._await_logged(action, result, event), f"state change action {action}"
                )

    @staticmethod
    async def _await_logged(
        action: StateChangeAction, result: Awaitable[Any], event: Event
    ) -> None:
        try:
            await result
        except Exception:
            _LOGGER.exception("Error in state change action %s for %s", action, event)

    def add(self, entity_ids: Iterable[str], action: StateChangeAction) -> Unsubscribe:
        ids = list(dict.fromkeys(entity_ids))
        for entity_id in ids:
            self._by_entity[entity_id] = (*self._by_entity.get(entity_id, ()), action)
        if self._unsub is None:
            self._unsub = self._hub.bus.listen(EVENT_STATE_CHANGED, self._dispatch, self._filter)

        def remove() -> None:
            for entity_id in ids:
                actions = self._by_entity.get(entity_id, ())
                if action not in actions:
                    continue
                index = actions.index(action)
                remaining = actions[:index] + actions[index + 1 :]
                if remaining:
                    self._by_entity[entity_id] = remaining
                else:
                    del self._by_entity[entity_id]
            if not self._by_entity and self._unsub is not None:
                self._unsub()
                self._unsub = None

        return remove


def track_state_change(
    hub: Hub, entity_ids: str | Iterable[str], action: StateChangeAction
) -> Unsubscribe:
    """Call action with each state_changed event of the given entities.

    An async action runs as a tracked task.
    """
    dispatcher: _StateChangeDispatcher | None = hub.data.get(_DATA_KEY)
    if dispatcher is None:
        dispatcher = hub.data[_DATA_KEY] = _StateChangeDispatcher(hub)
    if isinstance(entity_ids, str):
        entity_ids = (entity_ids,)
    return dispatcher.add(entity_ids, action)
