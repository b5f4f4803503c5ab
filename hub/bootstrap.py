"""Start-up and shut-down of a hub: config, storage, integrations, HTTP."""

from __future__ import annotations

from hub.core import Hub


async def setup_hub(hub: Hub) -> None:
    """Load everything a hub needs before it runs."""


async def shutdown_hub(hub: Hub) -> None:
    """Unload integrations and close servers."""
