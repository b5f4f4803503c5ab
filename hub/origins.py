"""What started the work a context carries (an automation run, say), for whoever reports it.

An integration that starts work marks the context it runs under; anything the work causes
(a service call made with a child of that context) can then tell where it came from without
importing the integration that started it: an alert raised by an automation says which one.
"""

from __future__ import annotations

from typing import Final

from hub.core import Context, Hub, HubKey, Unsubscribe

# Context id -> origin, e.g. "automation:nightly_reset".
DATA_ORIGINS: Final[HubKey[dict[str, str]]] = HubKey("origins")


def set_origin(hub: Hub, context: Context, origin: str) -> Unsubscribe:
    """Mark the work done under context as started by origin, until the returned undo."""
    origins = hub.data.setdefault(DATA_ORIGINS, {})
    origins[context.id] = origin

    def forget() -> None:
        if origins.get(context.id) == origin:
            del origins[context.id]

    return forget


def origin_of(hub: Hub, context: Context | None) -> str | None:
    """The origin of context's work: its parent's (a call made from the work), or its own."""
    if context is None:
        return None
    origins = hub.data.get(DATA_ORIGINS)
    if not origins:
        return None
    return origins.get(context.parent_id or "") or origins.get(context.id)
