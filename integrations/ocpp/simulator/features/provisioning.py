"""The simulated charger's side of the hub's provisioning feature (features/provisioning.py).

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint.

2.0.1: GetBaseReport / GetReport are answered and then reported in NotifyReport parts of at
most REPORT_PART_SIZE variables (tbc on all but the last); SetNetworkProfile keeps the
profile in a slot. Its device model has DeviceDataCtrlr ItemsPerMessage / BytesPerMessage
(reported per instance: GetReport, GetVariables, SetVariables), by which the hub splits
its GetVariables / SetVariables; a write-only variable (the Basic auth password) is
reported without its value.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.simulator.link import on_call
from integrations.ocpp.simulator.model import Setting, now_iso

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint

# Variables per NotifyReport: small, so that a report comes in several parts.
REPORT_PART_SIZE: Final = 4
# Network profile slots the simulated station has.
NETWORK_SLOTS: Final = 2
# DeviceDataCtrlr limits of the simulated 2.0.1 station, the same for each instance.
ITEMS_PER_MESSAGE: Final = 8
BYTES_PER_MESSAGE: Final = 8192
_LIMIT_INSTANCES: Final = ("GetReport", "GetVariables", "SetVariables")
_WRITE_ONLY: Final = frozenset({"SecurityCtrlr/BasicAuthPassword"})


def device_model_201() -> dict[str, Setting]:
    """The variables this feature adds to the simulated 2.0.1 device model."""
    return {
        "DeviceDataCtrlr/ItemsPerMessage": Setting(str(ITEMS_PER_MESSAGE), readonly=True, kind=int),
        "DeviceDataCtrlr/BytesPerMessage": Setting(str(BYTES_PER_MESSAGE), readonly=True, kind=int),
    }


class Provisioning16:
    """OCPP 1.6."""

    sim: SimulatedChargePoint


class Provisioning201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint
    network_profiles: dict[int, dict[str, Any]]
    # The ocpp ChargePoint's, later in the link's MRO.
    call: Callable[..., Awaitable[Any]]

    def _report_entries(self, writable_only: bool) -> list[dict[str, Any]]:
        entries = []
        for key, setting in self.sim.settings.items():
            if writable_only and setting.readonly:
                continue
            component, variable = key.split("/", 1)
            entries.extend(_report_entries(component, variable, setting))
        return entries

    async def _send_report(self, request_id: int, entries: list[dict[str, Any]]) -> None:
        parts = [
            entries[start : start + REPORT_PART_SIZE]
            for start in range(0, len(entries), REPORT_PART_SIZE)
        ] or [[]]
        for seq_no, part in enumerate(parts):
            await self.call(
                v201_call.NotifyReport(
                    request_id=request_id,
                    generated_at=now_iso(),
                    seq_no=seq_no,
                    tbc=seq_no < len(parts) - 1,
                    report_data=part or None,
                ),
                suppress=False,
            )

    @on_call("GetBaseReport")
    def on_get_base_report(self, request_id: int, report_base: str, **kwargs: Any) -> Any:
        if report_base == "SummaryInventory":
            return v201_result.GetBaseReport(status="NotSupported")
        entries = self._report_entries(writable_only=report_base == "ConfigurationInventory")
        self.sim.later(functools.partial(self._send_report, request_id, entries))
        return v201_result.GetBaseReport(status="Accepted")

    @on_call("GetReport")
    def on_get_report(
        self,
        request_id: int,
        component_variable: list[dict[str, Any]] | None = None,
        component_criteria: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        wanted = [
            (
                item["component"]["name"].lower(),
                (item.get("variable") or {}).get("name", "").lower(),
            )
            for item in component_variable or []
        ]
        entries = []
        for key, setting in self.sim.settings.items():
            component, variable = key.split("/", 1)
            if wanted and not any(
                component.lower() == c and (not v or variable.lower() == v) for c, v in wanted
            ):
                continue
            entries.extend(_report_entries(component, variable, setting))
        if component_criteria and "Problem" in component_criteria and not wanted:
            entries = []  # the simulated station has no component with a problem
        if not entries:
            return v201_result.GetReport(status="EmptyResultSet")
        self.sim.later(functools.partial(self._send_report, request_id, entries))
        return v201_result.GetReport(status="Accepted")

    @on_call("SetNetworkProfile")
    def on_set_network_profile(
        self, configuration_slot: int, connection_data: dict[str, Any], **kwargs: Any
    ) -> Any:
        if not 0 <= configuration_slot < NETWORK_SLOTS:
            return v201_result.SetNetworkProfile(status="Rejected")
        if not hasattr(self, "network_profiles"):
            self.network_profiles = {}
        self.network_profiles[configuration_slot] = connection_data
        return v201_result.SetNetworkProfile(status="Accepted")


def _report_entries(component: str, variable: str, setting: Setting) -> list[dict[str, Any]]:
    """A setting's ReportData: one per instance of the DeviceDataCtrlr limits."""
    if component == "DeviceDataCtrlr" and variable in ("ItemsPerMessage", "BytesPerMessage"):
        return [
            _report_entry(component, variable, setting, instance) for instance in _LIMIT_INSTANCES
        ]
    return [_report_entry(component, variable, setting)]


def _report_entry(
    component: str, variable: str, setting: Setting, instance: str | None = None
) -> dict[str, Any]:
    data_type = {int: "integer", bool: "boolean"}.get(setting.kind, "string")
    attribute: dict[str, Any] = {"type": "Actual"}
    if f"{component}/{variable}" in _WRITE_ONLY:
        attribute["mutability"] = "WriteOnly"  # the value is never reported
    else:
        attribute["value"] = setting.value
        attribute["mutability"] = "ReadOnly" if setting.readonly else "ReadWrite"
    name: dict[str, Any] = {"name": variable}
    if instance is not None:
        name["instance"] = instance
    return {
        "component": {"name": component},
        "variable": name,
        "variable_attribute": [attribute],
        "variable_characteristics": {"data_type": data_type, "supports_monitoring": False},
    }
