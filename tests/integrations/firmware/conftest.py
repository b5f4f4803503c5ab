"""A hub with OCPP and firmware on a fixed port (a restart keeps the chargers' URL), and a
fleet of simulated chargers."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import new_hub
from hub.clock import use_manual_clock
from hub.core import Hub
from hub.testing import api_user, ocpp_charge_point  # noqa: F401 (fixtures)
from integrations.ocpp.simulator import SimulatedChargePoint

SPEED = 50.0
WAIT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config(port: int, stations: int = 5, firmware: str = "") -> str:
    chargers = "".join(f"    - {{id: CP-{n}, name: Bay {n}}}\n" for n in range(1, stations + 1))
    return (
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n"
        "ocpp:\n"
        "  listeners:\n"
        f"    - {{port: {port}, host: 127.0.0.1, security_profile: 0}}\n"
        "  heartbeat_interval: 30\n"
        "  call_timeout: 2\n"
        "  chargers:\n" + chargers + textwrap.dedent(firmware)
    )


@dataclass
class Site:
    """A config dir, its listener port and the hubs started on it."""

    directory: Path
    port: int
    hubs: list[Hub] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def start(self, firmware: str, stations: int = 5) -> Hub:
        """Write the configuration and start a hub on the manual clock, starting now."""
        self.directory.joinpath("configuration.yaml").write_text(
            config(self.port, stations, firmware)
        )
        hub = new_hub(self.directory)
        use_manual_clock(hub, time.time())
        await hub.start()
        self.hubs.append(hub)
        return hub

    async def stop(self, hub: Hub) -> None:
        self.hubs.remove(hub)
        await hub.stop()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    found = Site(tmp_path, free_port())
    yield found
    for hub in reversed(found.hubs):
        await hub.stop()


Fleet = Callable[..., Awaitable[list[SimulatedChargePoint]]]


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    """``await fleet(base_url, ids, **kwargs)``: simulated chargers, booted; stopped after."""
    running: list[SimulatedChargePoint] = []

    async def start(base_url: str, ids: list[str], **kwargs: Any) -> list[SimulatedChargePoint]:
        sims = []
        for n, cp_id in enumerate(ids):
            version = "2.0.1" if n % 2 else "1.6"
            sim = SimulatedChargePoint(
                cp_id,
                base_url,
                version=kwargs.get("version", version),
                speed=SPEED,
                **{k: v for k, v in kwargs.items() if k != "version"},
            )
            await sim.__aenter__()
            running.append(sim)
            sims.append(sim)
        await asyncio.wait_for(asyncio.gather(*(sim.booted.wait() for sim in sims)), WAIT)
        return sims

    yield start
    for sim in reversed(running):
        await sim.__aexit__(None, None, None)
