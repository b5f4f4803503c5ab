"""What the WebSocket API's ``subscribe_trigger`` needs of the automation integration.

The core imports no integration: the automation integration provides its trigger
validation and attachment here while it is set up (``provide_triggers``), and the
WebSocket API asks for them (``trigger_platform``). Without it, ``subscribe_trigger``
answers that automations are not running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from hub.core import Context, Hub, HubKey, Unsubscribe
from hub.exceptions import HubError

# trigger data (what a run's ``trigger`` variable holds), the context of what caused it
TriggerAction = Callable[[dict[str, Any], Context | None], None]


class TriggerPlatformError(HubError):
    """Another trigger platform is provided already."""


@dataclass(frozen=True, slots=True)
class TriggerPlatform:
    """How to check a trigger spec and how to attach a checked one."""

    # Raises voluptuous.Invalid with the reason; returns the checked spec.
    validate: Callable[[Any], dict[str, Any]]
    # (hub, checked spec, action, variables) -> detach
    attach: Callable[[Hub, dict[str, Any], TriggerAction, Mapping[str, Any] | None], Unsubscribe]


DATA_TRIGGERS: Final[HubKey[TriggerPlatform]] = HubKey("http.trigger_platform")


def provide_triggers(hub: Hub, platform: TriggerPlatform) -> Unsubscribe:
    """Make platform the hub's triggers until the returned callable is called."""
    return hub.data.provide(
        DATA_TRIGGERS, platform, TriggerPlatformError("a trigger platform is provided already")
    )


def trigger_platform(hub: Hub) -> TriggerPlatform | None:
    """The provided trigger platform, or None while automations do not run."""
    return hub.data.get(DATA_TRIGGERS)
