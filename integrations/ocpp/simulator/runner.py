"""The fleet runner behind ``evhub simulate``: many simulated charge points until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from .charger import SimulatedChargePoint
from .model import SCENARIO_NORMAL, VERSION_16

if TYPE_CHECKING:
    import ssl as ssl_lib

_LOGGER = logging.getLogger(__name__)

# Seconds (simulated) between two charge points' first connections.
RAMP_STEP: Final = 0.01


async def run_simulation(
    url: str,
    count: int,
    version: str = VERSION_16,
    scenario: str = SCENARIO_NORMAL,
    password: str | None = None,
    ssl: ssl_lib.SSLContext | None = None,
    duration: float | None = None,
    id_prefix: str = "SIM-",
    speed: float = 1.0,
    *,
    connectors: int = 2,
    meter_interval: float = 10.0,
) -> list[SimulatedChargePoint]:
    """Run count charge points (ids id_prefix + 0001…) until cancelled or duration elapsed.

    ``duration`` is in real seconds. Returns the charge points, stopped.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    # No connection limit: every charge point holds its websocket for good.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15),
    )
    try:
        charge_points = [
            SimulatedChargePoint(
                f"{id_prefix}{number:04d}",
                url,
                version=version,
                connectors=connectors,
                scenario=scenario,
                password=password,
                ssl=ssl,
                meter_interval=meter_interval,
                speed=speed,
                # Spread the first connections so a big fleet does not arrive in one burst.
                start_delay=(number - 1) * RAMP_STEP * speed,
                session=session,
            )
            for number in range(1, count + 1)
        ]
    except ValueError:
        await session.close()
        raise
    _LOGGER.info(
        "simulating %s OCPP %s charge point(s) at %s, scenario %s, speed %s",
        count,
        version,
        url,
        scenario,
        speed,
    )
    try:
        for charge_point in charge_points:
            charge_point.start()
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
    finally:
        await asyncio.gather(*(cp.stop() for cp in charge_points), return_exceptions=True)
        await session.close()
    return charge_points


async def simulate_until_signalled(
    url: str,
    count: int,
    version: str = VERSION_16,
    scenario: str = SCENARIO_NORMAL,
    **kwargs: Any,
) -> int:
    """Run run_simulation until SIGINT or SIGTERM (or its duration); return an exit status."""
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(run_simulation(url, count, version, scenario, **kwargs))
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, runner.cancel)
    try:
        await asyncio.wait({runner})
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    if runner.cancelled():
        _LOGGER.info("simulation stopped")
        return 0
    runner.result()
    _LOGGER.info("simulation finished")
    return 0
