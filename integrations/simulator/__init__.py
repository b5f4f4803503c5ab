"""Simulated chargers inside the hub: virtual OCPP charge points on the hub's own listener.

They speak real OCPP over real websockets to the ``ocpp`` integration, so a new installation
shows live chargers at once. Configuration::

    simulator:
      stations:
        - id: SIM-0001
          version: "1.6"
          scenario: normal
          password: !secret sim_0001
          failed_start_rate: 0.1     # share of attempts that never start a transaction
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import voluptuous as vol

from hub.core import Hub, HubKey
from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext

if TYPE_CHECKING:
    from integrations.ocpp.simulator import SimulatedChargePoint

_LOGGER = logging.getLogger(__name__)

DOMAIN = "simulator"


def _scenario(value: Any) -> str:
    from integrations.ocpp.simulator import SCENARIOS

    text = str(value)
    unknown = [name for name in text.split(",") if name.strip() not in SCENARIOS]
    if unknown:
        raise vol.Invalid(f"unknown scenario {unknown[0]!r}; use one of {', '.join(SCENARIOS)}")
    return text


STATION_SCHEMA = vol.Schema(
    {
        vol.Required("id"): vol.All(str, vol.Length(min=1, max=48)),
        vol.Optional("version", default="1.6"): vol.In(["1.6", "2.0.1"]),
        vol.Optional("scenario", default="normal"): _scenario,
        vol.Optional("connectors", default=2): vol.All(int, vol.Range(min=1, max=8)),
        vol.Optional("password"): str,
        # The share of the normal scenario's charge attempts that never start a transaction.
        vol.Optional("failed_start_rate", default=0.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.0, max=1.0)
        ),
    }
)

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Required("stations"): vol.All([STATION_SCHEMA], vol.Length(min=1)),
        vol.Optional("url"): vol.All(str, vol.Match(r"^wss?://")),
        vol.Optional("speed", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0.01)),
        vol.Optional("meter_interval", default=10.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.1)
        ),
    }
)


# The running simulated charge points (tests and the README's examples look at them).
DATA_CHARGERS: Final[HubKey[list[SimulatedChargePoint]]] = HubKey("simulator.chargers")


def _own_url(hub: Hub) -> str:
    """The hub's own first plain (profile 0 or 1) OCPP listener."""
    from integrations.ocpp import charger_urls

    found = charger_urls(hub, max_profile=1)
    if not found:
        raise vol.Invalid("no OCPP listener with security profile 0 or 1 for the simulator")
    return found[0]


async def async_setup(ctx: SetupContext) -> bool:
    """Start one simulated charge point per configured station."""
    from integrations.ocpp.simulator import SimulatedChargePoint

    hub, config = ctx.hub, ctx.config
    url = config.get("url") or _own_url(hub)
    session = aiohttp.ClientSession()
    stations: list[SimulatedChargePoint] = []

    async def stop() -> None:
        for charge_point in stations:
            await charge_point.stop()
        await session.close()

    ctx.on_unload(stop)
    hub.data[DATA_CHARGERS] = stations
    ctx.on_unload(lambda: hub.data.pop(DATA_CHARGERS, None))
    for number, station in enumerate(config["stations"]):
        charge_point = SimulatedChargePoint(
            station["id"],
            url,
            version=station["version"],
            connectors=station["connectors"],
            scenario=station["scenario"],
            password=station.get("password"),
            meter_interval=config["meter_interval"],
            speed=config["speed"],
            start_delay=0.2 * number,
            session=session,
            failed_start_rate=station["failed_start_rate"],
        )
        charge_point.start()
        stations.append(charge_point)
    _LOGGER.info("Simulating %d charger(s) at %s", len(stations), url)
    return True


@hookimpl
def evhub_integration() -> Integration:
    """Describe the simulator integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Simulated OCPP chargers",
        version=__version__,
        setup=async_setup,
        dependencies=("ocpp",),
        config_schema=CONFIG_SCHEMA,
    )
