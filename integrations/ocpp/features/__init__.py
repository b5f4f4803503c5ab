"""OCPP's functional blocks beyond a station's own messages, one module each.

Each module (a feature) gives:

- ``HANDLERS_16`` / ``HANDLERS_201`` (optional): the inbound actions it handles (charger to hub), as
  ``(station, payload, context) -> response payload``; no feature may take an action the
  station's own tables (station/v16.py, v201.py) or another feature handle.
- ``CONFIG`` (optional): the voluptuous keys it adds to the ``ocpp:`` section.
- ``async setup(ctx, system)``: its services, state and entities, registered through the
  set-up context (undone with it).

A feature imports nothing of ``integrations.ocpp.station`` at run time: the station imports
the features.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from integrations.ocpp.features import (
    authorization,
    device_management,
    display_messages,
    firmware,
    panels,
    provisioning,
    reservation,
    security,
    smart_charging,
    transactions,
)
from integrations.ocpp.features.base import MessageHandler
from integrations.ocpp.protocol import OcppVersion

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.system import CentralSystem

FEATURES: tuple[ModuleType, ...] = (
    provisioning,
    authorization,
    smart_charging,
    reservation,
    display_messages,
    device_management,
    firmware,
    security,
    transactions,
    panels,
)


def handlers(version: OcppVersion, own: dict[str, MessageHandler]) -> dict[str, MessageHandler]:
    """A version's full inbound table: the station's own handlers and every feature's."""
    table = dict(own)
    for feature in FEATURES:
        name = "HANDLERS_16" if version is OcppVersion.V16 else "HANDLERS_201"
        extra: dict[str, MessageHandler] = getattr(feature, name, {})
        for action, handler in extra.items():
            if action in table:
                raise RuntimeError(f"{feature.__name__} takes {action}, already handled")
            table[action] = handler
    return table


def config_keys() -> dict[Any, Any]:
    """The keys the features add to the ``ocpp:`` configuration section."""
    keys: dict[Any, Any] = {}
    for feature in FEATURES:
        keys.update(getattr(feature, "CONFIG", {}))
    return keys


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Set every feature up."""
    for feature in FEATURES:
        await feature.setup(ctx, system)
