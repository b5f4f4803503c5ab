"""Fixtures for the OCPP tests: a hub with the OCPP integration, and charge point clients."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def plain_ocpp(options: str = "") -> str:
    """An ocpp section with one plain (security profile 0) listener on a free loopback port,
    then the options given (YAML, dedented)."""
    listener = "listeners:\n  - {port: 0, host: 127.0.0.1, security_profile: 0}\n"
    return listener + textwrap.dedent(options).lstrip("\n")


def ocpp_config(options: str = "") -> str:
    """plain_ocpp as the ocpp: section of a configuration.yaml."""
    return "ocpp:\n" + textwrap.indent(plain_ocpp(options), "  ")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def start_transaction(
    cp: RawChargePoint,
    connector: int = 1,
    *,
    meter_start: int = 0,
    id_tag: str = "TAG-1",
    timestamp: str | None = None,
) -> int:
    """An OCPP 1.6 StartTransaction (now, unless told); the transaction id the hub gave."""
    started = await cp.call(
        "StartTransaction",
        {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": timestamp or now_iso(),
        },
    )
    transaction_id: int = started["transactionId"]
    return transaction_id


async def stop_transaction(
    cp: RawChargePoint,
    transaction_id: int,
    meter_stop: int,
    *,
    timestamp: str | None = None,
    reason: str | None = None,
) -> None:
    """An OCPP 1.6 StopTransaction (now, unless told)."""
    payload: dict[str, Any] = {
        "transactionId": transaction_id,
        "meterStop": meter_stop,
        "timestamp": timestamp or now_iso(),
    }
    if reason is not None:
        payload["reason"] = reason
    await cp.call("StopTransaction", payload)


async def meter_values(
    cp: RawChargePoint,
    watts: float,
    wh: float | None = None,
    *,
    connector: int = 1,
    transaction_id: int | None = None,
    timestamp: str | None = None,
) -> None:
    """An OCPP 1.6 MeterValues of the power drawn (W) and, if given, the energy register (Wh),
    sampled now unless told."""
    sampled = [{"value": str(watts), "measurand": "Power.Active.Import", "unit": "W"}]
    if wh is not None:
        sampled.append(
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        )
    payload: dict[str, Any] = {
        "connectorId": connector,
        "meterValue": [{"timestamp": timestamp or now_iso(), "sampledValue": sampled}],
    }
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    await cp.call("MeterValues", payload)


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
