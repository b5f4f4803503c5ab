"""Fixtures for the Modbus tests: simulated wallboxes on real pymodbus servers over TCP, a
serial line of two pseudo-terminals, and a wallbox announced over zeroconf."""

from __future__ import annotations

import asyncio
import os
import socket
import tty
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from hub.testing import (  # noqa: F401 (evhub's pytest plugin's fixtures)
    api_user,
    hub_factory,
)
from integrations.modbus.profile import Profile, load_profiles
from integrations.modbus.simulator import SimulatedWallbox, SimulatorServer

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

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


@pytest.fixture
async def serial_line() -> AsyncIterator[tuple[str, str]]:
    """Two pseudo-terminals joined back to back: (the simulator's end, the hub's end)."""
    loop = asyncio.get_running_loop()
    master_a, slave_a = os.openpty()
    master_b, slave_b = os.openpty()
    for fd in (slave_a, slave_b):
        tty.setraw(fd)

    def relay(source: int, target: int) -> Callable[[], None]:
        def move() -> None:
            try:
                os.write(target, os.read(source, 4096))
            except OSError:
                loop.remove_reader(source)

        return move

    loop.add_reader(master_a, relay(master_a, master_b))
    loop.add_reader(master_b, relay(master_b, master_a))
    yield os.ttyname(slave_a), os.ttyname(slave_b)
    for fd in (master_a, master_b):
        loop.remove_reader(fd)
    for fd in (master_a, master_b, slave_a, slave_b):
        os.close(fd)


@dataclass
class Announcement:
    """A service announced over zeroconf until withdrawn."""

    zeroconf: AsyncZeroconf
    info: AsyncServiceInfo

    async def withdraw(self) -> None:
        await (await self.zeroconf.async_unregister_service(self.info))
        await self.zeroconf.async_close()


async def announce_keba(unique: str) -> Announcement:
    """A KEBA KeContact P30 announcing itself on the loopback LAN, as "KEBA KeContact P30
    {unique}" (a name of its own: other hubs and chargers may be announced on this machine)."""
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    zeroconf = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    info = AsyncServiceInfo(
        "_http._tcp.local.",
        f"KEBA KeContact P30 {unique}._http._tcp.local.",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=80,
        properties={"path": "/"},
        server=f"keba-{unique}.local.",
    )
    await (await zeroconf.async_register_service(info))
    return Announcement(zeroconf, info)
