"""The simulated charger's side of each hub feature: one module per integrations/ocpp/features
module, each with a mixin per OCPP version that the links (v16.py, v201.py) inherit."""

from __future__ import annotations

from .authorization import Authorization16, Authorization201
from .device_management import DeviceManagement16, DeviceManagement201
from .display_messages import DisplayMessages16, DisplayMessages201
from .firmware import Firmware16, Firmware201
from .provisioning import Provisioning16, Provisioning201
from .reservation import Reservation16, Reservation201
from .security import Security16, Security201
from .smart_charging import SmartCharging16, SmartCharging201

MIXINS_16 = (
    Provisioning16,
    Authorization16,
    SmartCharging16,
    Reservation16,
    DisplayMessages16,
    DeviceManagement16,
    Firmware16,
    Security16,
)
MIXINS_201 = (
    Provisioning201,
    Authorization201,
    SmartCharging201,
    Reservation201,
    DisplayMessages201,
    DeviceManagement201,
    Firmware201,
    Security201,
)

__all__ = ["MIXINS_16", "MIXINS_201"]
