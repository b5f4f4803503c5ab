"""Helpers that track changes: per-entity routing through one filtered bus listener."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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
        self._by_entity: dict[str, list[StateChangeAction]] = {}
        self._unsub: Unsubscribe | None = None

    def _filter(self, data: EventData) -> bool:
        return data[ATTR_ENTITY_ID] in self._by_entity

    def _dispatch(self, event: Event) -> None:
        actions = self._by_entity.get(event.data[ATTR_ENTITY_ID])
        if not actions:
            return
        for action in tuple(actions) if len(actions) > 1 else actions:
            try:
                result = action(event)
                if result is not None and hasattr(result, "__await__"):
                    self._hub.create_task(result, f"state change action {action}")
            except Exception:
                _LOGGER.exception("Error in state change action %s for %s", action, event)

    def add(self, entity_ids: Iterable[str], action: StateChangeAction) -> Unsubscribe:
        ids = list(dict.fromkeys(entity_ids))
        for entity_id in ids:
            self._by_entity.setdefault(entity_id, []).append(action)
        if self._unsub is None:
            self._unsub = self._hub.bus.listen(EVENT_STATE_CHANGED, self._dispatch, self._filter)

        def remove() -> None:
            for entity_id in ids:
                actions = self._by_entity.get(entity_id)
                if actions is None or action not in actions:
                    continue
                actions.remove(action)
                if not actions:
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
