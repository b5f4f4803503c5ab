"""Advanced security (A, M): password rotation, certificates the hub signs, installs and
revokes, certificate status, and the TLS of profiles 2 and 3."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from integrations.ocpp.features.base import MessageHandler

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.system import CentralSystem

HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {}
CONFIG: dict[Any, Any] = {}


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the security services."""
