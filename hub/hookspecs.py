"""Hook specifications of evhub plugins.

A plugin is a module (or object) named by an entry point in the ``evhub.integrations`` group;
the entry point's name is the integration's domain. pluggy is synchronous: hooks describe and
notify, the core awaits the async set-up the description names.

A minimal plugin::

    from hub.hookspecs import hookimpl
    from hub.plugins import Integration

    async def async_setup(hub, config):
        ...

    @hookimpl
    def evhub_integration():
        return Integration(domain="acme", name="ACME chargers", version="1.0",
                           setup=async_setup)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from hub.commands import CliCommands
    from hub.core import Hub
    from hub.plugins import Integration

PROJECT_NAME = "evhub"
ENTRY_POINT_GROUP = "evhub.integrations"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def evhub_integration() -> Integration:  # type: ignore[empty-body]
    """Describe the integration this plugin provides: domain, name, version, dependencies,
    config schema and the async set-up (and optional unload) the core awaits.
    """


@hookspec(historic=True)
def evhub_hub_started(hub: Hub) -> None:
    """Tell plugins the hub is running, every configured integration having been set up.

    Historic: a plugin registered later (an integration loaded after the start) is told
    when it registers.
    """


@hookspec(historic=True)
def evhub_hub_stopping(hub: Hub) -> None:
    """Tell plugins the hub is stopping, before integrations unload (historic, as started)."""


@hookspec
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add sub-commands to the ``evhub`` command: ``commands.add(name, help, run)``.

    Called for every installed integration when the command line is parsed, whether or not
    the configuration sets it up.
    """


@hookspec
def evhub_device_profiles(domain: str) -> list[Path] | None:
    """Offer device profiles (data files, such as a Modbus register map in YAML) to the
    integration ``domain``; return their paths, or None for another domain.

    The integration asks through ``SetupContext.device_profiles()`` when it sets up, so a
    plugin answers when it is loaded (its domain is in the configuration); the files are
    checked by the integration's own profile schema.
    """
