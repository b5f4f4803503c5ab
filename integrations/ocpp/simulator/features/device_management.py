"""The simulated charger's side of the hub's device management (features/device_management.py).

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint.

2.0.1: the charger keeps the monitors it is given (SetVariableMonitoring, cleared by
ClearVariableMonitoring, custom ones dropped by SetMonitoringBase FactoryDefault/HardWiredOnly),
reports them in NotifyMonitoringReport (two per message, so the hub assembles parts), honours
SetMonitoringLevel 0..9, and answers CustomerInformation with a NotifyCustomerInformation.
Its threshold monitors fire: when a watched value (the power of an EVSE or of the station)
goes past an UpperThreshold / LowerThreshold monitor at or below the monitoring level, the
charger sends a NotifyEvent (trigger Alerting), and another, cleared, when it comes back.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.simulator.link import on_call
from integrations.ocpp.simulator.model import now_iso

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint

# The components and variables the simulated charger can monitor.
MONITORABLE: Final = {
    ("ChargingStation", "AvailabilityState"),
    ("ChargingStation", "Power"),
    ("EVSE", "AvailabilityState"),
    ("EVSE", "Power"),
    ("Connector", "AvailabilityState"),
    ("Connector", "Temperature"),
    ("AccessBarrier", "Active"),
}
CRITERIA: Final = {
    "ThresholdMonitoring": ("UpperThreshold", "LowerThreshold"),
    "DeltaMonitoring": ("Delta",),
    "PeriodicMonitoring": ("Periodic", "PeriodicClockAligned"),
}
REPORT_PART: Final = 2  # monitors per NotifyMonitoringReport


@dataclass
class _Monitoring:
    monitors: dict[int, dict[str, Any]] = field(default_factory=dict)
    level: int = 9
    # Monitor id -> whether its threshold is passed (as last reported).
    tripped: dict[int, bool] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


# Each simulated charger's monitors: they outlive its connections.
_STATE: weakref.WeakKeyDictionary[SimulatedChargePoint, _Monitoring] = weakref.WeakKeyDictionary()


def _of(sim: SimulatedChargePoint) -> _Monitoring:
    return _STATE.setdefault(sim, _Monitoring())


class DeviceManagement16:
    """OCPP 1.6: GetLog and GetDiagnostics are the link's own (v16.py)."""

    sim: SimulatedChargePoint


class DeviceManagement201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint
    call: Callable[..., Coroutine[Any, Any, Any]]  # the link's (ocpp ChargePoint.call)

    @on_call("SetVariableMonitoring")
    def on_set_variable_monitoring(
        self, set_monitoring_data: list[dict[str, Any]], **kwargs: Any
    ) -> Any:
        state = _of(self.sim)
        results = []
        for item in set_monitoring_data:
            component, variable = item["component"], item["variable"]
            result: dict[str, Any] = {
                "type": item["type"],
                "severity": item["severity"],
                "component": component,
                "variable": variable,
            }
            if (component["name"], variable["name"]) not in MONITORABLE:
                known = any(name == component["name"] for name, _ in MONITORABLE)
                result["status"] = "UnknownVariable" if known else "UnknownComponent"
            else:
                monitor_id = int(item.get("id") or next(state.ids))
                state.monitors[monitor_id] = {
                    "id": monitor_id,
                    "component": component,
                    "variable": variable,
                    "type": item["type"],
                    "severity": item["severity"],
                    "value": item["value"],
                    "transaction": bool(item.get("transaction", False)),
                }
                result.update(status="Accepted", id=monitor_id)
            results.append(result)
        return v201_result.SetVariableMonitoring(set_monitoring_result=results)

    @on_call("ClearVariableMonitoring")
    def on_clear_variable_monitoring(self, id: list[int], **kwargs: Any) -> Any:
        monitors = _of(self.sim).monitors
        results = [
            {"id": key, "status": "Accepted" if monitors.pop(key, None) else "NotFound"}
            for key in id
        ]
        return v201_result.ClearVariableMonitoring(clear_monitoring_result=results)

    @on_call("SetMonitoringBase")
    def on_set_monitoring_base(self, monitoring_base: str, **kwargs: Any) -> Any:
        if monitoring_base != "All":
            _of(self.sim).monitors.clear()  # every monitor here is a custom one
        return v201_result.SetMonitoringBase(status="Accepted")

    @on_call("SetMonitoringLevel")
    def on_set_monitoring_level(self, severity: int, **kwargs: Any) -> Any:
        if not 0 <= severity <= 9:
            return v201_result.SetMonitoringLevel(status="Rejected")
        _of(self.sim).level = severity
        return v201_result.SetMonitoringLevel(status="Accepted")

    @on_call("GetMonitoringReport")
    def on_get_monitoring_report(
        self,
        request_id: int,
        monitoring_criteria: list[str] | None = None,
        component_variable: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        types = {kind for name in monitoring_criteria or CRITERIA for kind in CRITERIA[name]}
        wanted = [
            (item["component"]["name"], (item.get("variable") or {}).get("name"))
            for item in component_variable or []
        ]
        found = [
            monitor
            for monitor in _of(self.sim).monitors.values()
            if monitor["type"] in types
            and (
                not wanted
                or any(
                    monitor["component"]["name"] == name
                    and (variable is None or monitor["variable"]["name"] == variable)
                    for name, variable in wanted
                )
            )
        ]
        if not found:
            return v201_result.GetMonitoringReport(status="EmptyResultSet")
        self.sim.later(lambda: self._report_monitors(request_id, found))
        return v201_result.GetMonitoringReport(status="Accepted")

    async def _report_monitors(self, request_id: int, monitors: list[dict[str, Any]]) -> None:
        parts = [monitors[i : i + REPORT_PART] for i in range(0, len(monitors), REPORT_PART)]
        for seq_no, part in enumerate(parts):
            await self.call(
                v201_call.NotifyMonitoringReport(
                    request_id=request_id,
                    seq_no=seq_no,
                    generated_at=now_iso(),
                    tbc=seq_no < len(parts) - 1,
                    monitor=[
                        {
                            "component": m["component"],
                            "variable": m["variable"],
                            "variable_monitoring": [
                                {
                                    "id": m["id"],
                                    "transaction": m["transaction"],
                                    "value": m["value"],
                                    "type": m["type"],
                                    "severity": m["severity"],
                                }
                            ],
                        }
                        for m in part
                    ],
                ),
                suppress=False,
            )

    async def check_monitors(self) -> None:
        """Send a NotifyEvent for each threshold monitor whose value went past its
        threshold (or came back) since the last check."""
        state = _of(self.sim)
        events = []
        for monitor_id, monitor in list(state.monitors.items()):
            kind = monitor["type"]
            if kind not in CRITERIA["ThresholdMonitoring"] or monitor["severity"] > state.level:
                continue
            component = monitor["component"]
            value = self.sim.monitored_value(
                component["name"],
                (component.get("evse") or {}).get("id"),
                monitor["variable"]["name"],
            )
            if value is None:
                continue
            threshold = float(monitor["value"])
            passed = value > threshold if kind == "UpperThreshold" else value < threshold
            if passed == state.tripped.get(monitor_id, False):
                continue
            state.tripped[monitor_id] = passed
            events.append(
                {
                    "eventId": self.sim.next_event_id(),
                    "timestamp": now_iso(),
                    "trigger": "Alerting",
                    "actualValue": f"{value:g}",
                    "cleared": not passed,
                    "eventNotificationType": "CustomMonitor",
                    "variableMonitoringId": monitor_id,
                    "component": component,
                    "variable": monitor["variable"],
                }
            )
        for gone in set(state.tripped) - set(state.monitors):
            del state.tripped[gone]
        if events:
            await self.call(
                v201_call.NotifyEvent(generated_at=now_iso(), seq_no=0, event_data=events),
                suppress=False,
            )

    @on_call("CustomerInformation")
    def on_customer_information(
        self, request_id: int, report: bool, clear: bool, **kwargs: Any
    ) -> Any:
        token = (kwargs.get("id_token") or {}).get("id_token")
        who = token or kwargs.get("customer_identifier") or "certificate"
        data = f"customer {who}: no data kept" if report else ""
        if clear:
            data = f"{data}; cleared".lstrip("; ")
        self.sim.later(lambda: self._customer_information(request_id, data))
        return v201_result.CustomerInformation(status="Accepted")

    async def _customer_information(self, request_id: int, data: str) -> None:
        await self.call(
            v201_call.NotifyCustomerInformation(
                data=data[:512], seq_no=0, generated_at=now_iso(), request_id=request_id
            ),
            suppress=False,
        )
