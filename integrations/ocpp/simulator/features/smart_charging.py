"""The simulated charger's side of the hub's smart charging feature (features/smart_charging.py).

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint


class SmartCharging16:
    """OCPP 1.6."""

    sim: SimulatedChargePoint


class SmartCharging201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint
