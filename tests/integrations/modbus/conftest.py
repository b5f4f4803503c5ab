"""Fixtures for the Modbus tests: simulated wallboxes on real pymodbus servers over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hub.testing import (  # noqa: F401 (evhub's pytest plugin's fixtures)
    api_user,
    hub_factory,
)
from integrations.modbus.profile import Profile, load_profiles
from integrations.modbus.simulator import SimulatedWallbox, SimulatorServer

PROFILES, _ERRORS = load_profiles()
assert not _ERRORS, _ERRORS

StartServer = Callable[..., Awaitable[SimulatorServer]]


@pytest.fixture
async def wallbox_server() -> AsyncIterator[StartServer]:
    """``await wallbox_server(profile)``: a simulated wallbox on a free loopback port."""
    servers: list[SimulatorServer] = []

    async def start(
        profile: Profile | str, *, port: int = 0, framer: str | None = None
    ) -> SimulatorServer:
        found = PROFILES[profile] if isinstance(profile, str) else profile
        server = SimulatorServer(
            SimulatedWallbox(found, scenario="fixed"), "127.0.0.1", port, framer=framer
        )
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
