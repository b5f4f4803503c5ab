"""Fixtures for the OCPP tests: a hub with the OCPP integration, and charge point clients."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hub.bootstrap import new_hub
from hub.clock import use_manual_clock
from hub.core import Hub
from hub.testing import (  # noqa: F401 (re-exported for the OCPP tests)
    ChargerCallError,
    Connect,
    ErrorAnswer,
    RawChargePoint,
    ocpp_charge_point,
)
from integrations.ocpp import DATA_SYSTEM

# The raw charge point is evhub's pytest plugin's (hub.testing), for third parties too.
connect = ocpp_charge_point


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def ocpp_hub(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Start a hub whose configuration.yaml holds the given ocpp section (with manual_clock,
    on a manual clock starting now: ``manual_clock_of(hub).advance(s)`` moves it)."""
    hubs: list[Hub] = []

    async def start(
        section: str, config_dir: Path | None = None, extra: str = "", *, manual_clock: bool = False
    ) -> Hub:
        directory = config_dir or tmp_path
        directory.joinpath("configuration.yaml").write_text(
            "http:\n  server_host: 127.0.0.1\n  server_port: 0\n"
            + "ocpp:\n"
            + textwrap.indent(textwrap.dedent(section).strip() + "\n", "  ")
            + textwrap.dedent(extra)
        )
        hub = new_hub(directory)
        if manual_clock:
            use_manual_clock(hub, time.time())
        await hub.start()
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        await hub.stop()


def ws_url(hub: Hub, cp_id: str, index: int = 0, scheme: str = "ws") -> str:
    """The URL a charger with cp_id connects to."""
    listener = hub.data[DATA_SYSTEM].listeners[index]
    return f"{scheme}://127.0.0.1:{listener.port}{listener.path}/{cp_id}"


async def wait_state(hub: Hub, entity_id: str, state: str, timeout: float = 5.0) -> None:
    """Wait until an entity has a state."""

    async def poll() -> None:
        while True:
            found = hub.states.get(entity_id)
            if found is not None and found.state == state:
                return
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        found = hub.states.get(entity_id)
        raise AssertionError(
            f"{entity_id} is {found.state if found else None!r}, expected {state!r}"
        ) from None
