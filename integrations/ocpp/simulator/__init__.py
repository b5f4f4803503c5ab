"""Virtual OCPP 1.6 and 2.0.1 charge points that talk to a central system over websockets.

Each SimulatedChargePoint is a real OCPP client: the ``ocpp`` package's ChargePoint, with
its schema validation on, over an aiohttp websocket. It boots, reports its connectors,
heartbeats, answers the central system's calls, charges with plausible meter values and
plays a scenario (see SCENARIOS). ``run_simulation`` runs a fleet of them and ``evhub
simulate`` is its command line.

Every wait is divided by ``speed``, the intervals the central system hands out included, so
tests run whole scenarios in a fraction of a second; energy follows the simulated clock.

The modules: ``model`` (what a charger is: connectors, sessions, meters, scenario names and
timings), ``charger`` (SimulatedChargePoint), ``link``, ``v16`` and ``v201`` (its OCPP, one
link per connection), ``websocket`` (the socket under the links) and ``runner`` (the fleet).
"""

from __future__ import annotations

from .charger import SimulatedChargePoint
from .link import WIRE_LOGGER
from .model import (
    SCENARIO_FAULT,
    SCENARIO_IDLE,
    SCENARIO_NORMAL,
    SCENARIO_OFFLINE,
    SCENARIO_REBOOT,
    SCENARIO_TAMPER,
    SCENARIO_WRONG_PASSWORD,
    SCENARIOS,
    SUBPROTOCOLS,
    TAMPER_EVENT,
    VERSION_16,
    VERSION_201,
)
from .runner import run_simulation, simulate_until_signalled
from .websocket import (
    ConnectionClosedError,
    SimulatorError,
    SubprotocolError,
    WebSocketAdapter,
    basic_auth_header,
)

__all__ = [
    "SCENARIOS",
    "SCENARIO_FAULT",
    "SCENARIO_IDLE",
    "SCENARIO_NORMAL",
    "SCENARIO_OFFLINE",
    "SCENARIO_REBOOT",
    "SCENARIO_TAMPER",
    "SCENARIO_WRONG_PASSWORD",
    "SUBPROTOCOLS",
    "TAMPER_EVENT",
    "VERSION_16",
    "VERSION_201",
    "WIRE_LOGGER",
    "ConnectionClosedError",
    "SimulatedChargePoint",
    "SimulatorError",
    "SubprotocolError",
    "WebSocketAdapter",
    "basic_auth_header",
    "run_simulation",
    "simulate_until_signalled",
]
