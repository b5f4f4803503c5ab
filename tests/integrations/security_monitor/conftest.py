"""Fixtures of the security monitor's tests: the OCPP tests' hub and raw charge points."""

from __future__ import annotations

from hub.testing import api_user  # noqa: F401 (fixtures used here)
from tests.integrations.ocpp.conftest import (  # noqa: F401
    connect,
    ocpp_charge_point,
    ocpp_hub,
)
