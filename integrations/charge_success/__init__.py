"""Did the charge work? Charge attempts, their success and visits, per port, station and site.

On without YAML (like alerts, recorder and uptime); every threshold of the success definition
is configuration::

    charge_success:
      min_energy_kwh: 0.1            # a session must deliver more than this
      stop_reasons: [Local, Remote, EVDisconnected, StoppedByEV]
      fault_window_seconds: 60       # ... and its port must not go Faulted this soon after
      visit_window_minutes: 10       # retries this soon after, same id tag and site: one visit
      attempt_timeout_minutes: 10    # Preparing this long without a session: a failed attempt
      error_codes: {ACME-E42: CX017} # vendor or OCPP codes onto ChargeX MRECs
      metrics_days: 30               # /metrics: the trailing window of the per-station figures
      metrics_max_age_seconds: 60    # /metrics: figures older than this are recomputed

The figures come from the recorder's sessions and port status tables (see ``attempts``); the
HTTP API, ``/metrics``, the ``charge_success_below_target`` alert rule and ``evhub report
charge-success`` read them through ``report`` and ``station_rates``.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.clock import clock
from hub.core import Hub, HubKey
from hub.exceptions import HubError
from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext
from hub.registry import DeviceKind, DeviceRegistry, device_registry
from integrations.charge_success.attempts import (
    PortInfo,
    SuccessRules,
    aggregate,
    attempts,
)
from integrations.charge_success.cli import evhub_cli_commands as evhub_cli_commands  # the CLI hook
from integrations.charge_success.error_codes import ErrorMapping, valid_mrec
from integrations.charge_success.views import register_views

if TYPE_CHECKING:
    import asyncio

    from prometheus_client.core import Metric

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "charge_success"
DATA_CHARGE_SUCCESS: Final[HubKey[_Setup]] = HubKey("charge_success.setup")
DAY: Final = 86400.0

CONF_MIN_ENERGY_KWH: Final = "min_energy_kwh"
CONF_STOP_REASONS: Final = "stop_reasons"
CONF_FAULT_WINDOW: Final = "fault_window_seconds"
CONF_VISIT_WINDOW: Final = "visit_window_minutes"
CONF_ATTEMPT_TIMEOUT: Final = "attempt_timeout_minutes"
CONF_ERROR_CODES: Final = "error_codes"
CONF_METRICS_DAYS: Final = "metrics_days"
CONF_METRICS_MAX_AGE: Final = "metrics_max_age_seconds"

# Stop reasons as OCPP 1.6 (StopTransaction.reason) and 2.0.1 (stoppedReason) name them.
STOP_REASONS_16: Final = frozenset(
    {
        "EmergencyStop",
        "EVDisconnected",
        "HardReset",
        "Local",
        "Other",
        "PowerLoss",
        "Reboot",
        "Remote",
        "SoftReset",
        "UnlockCommand",
        "DeAuthorized",
    }
)
STOP_REASONS_201: Final = frozenset(
    {
        "DeAuthorized",
        "EmergencyStop",
        "EnergyLimitReached",
        "EVDisconnected",
        "GroundFault",
        "ImmediateReset",
        "Local",
        "LocalOutOfCredit",
        "MasterPass",
        "Other",
        "OvercurrentFault",
        "PowerLoss",
        "PowerQuality",
        "Reboot",
        "Remote",
        "SOCLimitReached",
        "StoppedByEV",
        "TimeLimitReached",
        "Timeout",
    }
)
STOP_REASONS: Final = STOP_REASONS_16 | STOP_REASONS_201
# ChargeX counts Local, Remote and EVDisconnected; 2.0.1's StoppedByEV is the vehicle ending
# the charge itself (full, or the driver stopped it from the car): a driver's normal stop.
DEFAULT_STOP_REASONS: Final = ("Local", "Remote", "EVDisconnected", "StoppedByEV")


class ChargeSuccessError(HubError):
    """The charge_success integration is not set up, or its data cannot be read."""


def _stop_reason(value: Any) -> str:
    if not isinstance(value, str) or value not in STOP_REASONS:
        raise vol.Invalid(
            f"unknown stop reason {value!r}; OCPP 1.6/2.0.1 name them: "
            + ", ".join(sorted(STOP_REASONS))
        )
    return value


def _mrec(value: Any) -> str:
    try:
        return valid_mrec(value)
    except ValueError as err:
        raise vol.Invalid(str(err)) from None


def _code(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise vol.Invalid(f"expected an error code (text), got {value!r}")
    text = str(value).strip()
    if not 1 <= len(text) <= 64:
        raise vol.Invalid("an error code is 1 to 64 characters")
    return text


CONFIG_SCHEMA: Final = vol.All(
    lambda value: {} if value is None else value,
    vol.Schema(
        {
            vol.Optional(CONF_MIN_ENERGY_KWH, default=0.1): vol.All(
                vol.Coerce(float), vol.Range(min=0, max=1000)
            ),
            vol.Optional(CONF_STOP_REASONS, default=list(DEFAULT_STOP_REASONS)): vol.All(
                [_stop_reason], vol.Length(min=1)
            ),
            vol.Optional(CONF_FAULT_WINDOW, default=60.0): vol.All(
                vol.Coerce(float), vol.Range(min=0, max=3600)
            ),
            vol.Optional(CONF_VISIT_WINDOW, default=10.0): vol.All(
                vol.Coerce(float), vol.Range(min=0, max=24 * 60)
            ),
            vol.Optional(CONF_ATTEMPT_TIMEOUT, default=10.0): vol.All(
                vol.Coerce(float), vol.Range(min=0.5, max=24 * 60)
            ),
            vol.Optional(CONF_ERROR_CODES, default={}): vol.All(
                lambda value: {} if value is None else value, {_code: _mrec}
            ),
            vol.Optional(CONF_METRICS_DAYS, default=30.0): vol.All(
                vol.Coerce(float), vol.Range(min=1, max=366)
            ),
            vol.Optional(CONF_METRICS_MAX_AGE, default=60.0): vol.All(
                vol.Coerce(float), vol.Range(min=0, max=86400)
            ),
        }
    ),
)


def rules_from_config(config: Mapping[str, Any]) -> SuccessRules:
    """The success definition a validated ``charge_success`` section gives."""
    return SuccessRules(
        min_energy_kwh=config[CONF_MIN_ENERGY_KWH],
        stop_reasons=frozenset(config[CONF_STOP_REASONS]),
        fault_window=config[CONF_FAULT_WINDOW],
        visit_window=config[CONF_VISIT_WINDOW] * 60.0,
        attempt_timeout=config[CONF_ATTEMPT_TIMEOUT] * 60.0,
        errors=ErrorMapping(dict(config[CONF_ERROR_CODES])),
    )


@dataclass(slots=True)
class _Snapshot:
    """The per-station figures /metrics shows, and when they were computed (monotonic)."""

    stations: list[dict[str, Any]] = field(default_factory=list)
    computed_at: float | None = None


@dataclass(slots=True)
class _Setup:
    config: dict[str, Any]
    rules: SuccessRules
    snapshot: _Snapshot = field(default_factory=_Snapshot)
    refreshing: asyncio.Task[None] | None = None


def _setup(hub: Hub) -> _Setup:
    found = hub.data.get(DATA_CHARGE_SUCCESS)
    if found is None:
        raise ChargeSuccessError("the charge_success integration is not set up")
    return found


def rules_of(hub: Hub) -> SuccessRules:
    """The hub's success definition; ChargeSuccessError when the integration is not set up."""
    return _setup(hub).rules


def port_infos(
    devices: DeviceRegistry | None, rows: list[Mapping[str, Any]]
) -> dict[str, PortInfo]:
    """Where each port of the rows sits (station, site) and the names to show."""
    found: dict[str, PortInfo] = {}
    for row in rows:
        port_id = row["port_id"]
        if port_id is None or port_id in found:
            continue
        port_id = str(port_id)
        station_id = row["station_id"]
        port = devices.get(port_id) if devices is not None else None
        station = None
        if devices is not None:
            station = devices.station_of(port_id) or (
                devices.get(station_id) if station_id else None
            )
        site = None
        if devices is not None and station is not None and station.via_device_id:
            parent = devices.get(station.via_device_id)
            site = parent if parent is not None and parent.kind is DeviceKind.SITE else None
        station_name = (
            (station.name if station else None) or row.get("charge_point_id") or (station_id or "")
        )
        number = row.get("port")
        port_name = (port.name if port else None) or (
            f"{station_name} {number}" if number is not None else port_id
        )
        found[port_id] = PortInfo(
            port_id=port_id,
            station_id=station.id if station is not None else station_id,
            site_id=site.id if site is not None else None,
            name=port_name,
            station_name=station_name,
            site_name=site.name or site.id if site is not None else "",
        )
    return found


async def gather(
    recorder: Any,
    devices: DeviceRegistry | None,
    rules: SuccessRules,
    start: float,
    end: float,
    now: float,
) -> tuple[list[Any], dict[str, PortInfo]]:
    """Read what a window's attempts need from the recorder: (attempts, ports)."""
    # A Preparing near the window's end is judged by what came up to its timeout after it; a
    # session by the faults up to its fault window after it ended.
    until = min(now, end + rules.attempt_timeout + rules.fault_window) + 1.0
    since = start - rules.attempt_timeout
    sessions = await recorder.sessions(since, until)
    status = await recorder.port_status(since, until)
    found = attempts(sessions, status, rules, start, end, now)
    return found, port_infos(devices, [*sessions, *status])


async def report(
    hub: Hub, start: float, end: float, group: str = "station", by: str = "day"
) -> dict[str, Any]:
    """Charge success per group and period over [start, end) from the hub's recorder."""
    from integrations.recorder import RecorderError, get_recorder

    rules = rules_of(hub)
    try:
        recorder = get_recorder(hub)
    except RecorderError as err:
        raise ChargeSuccessError(str(err)) from err
    # What happened a moment ago counts: rows still queued for the writer are committed first.
    await recorder.flush()
    now = clock(hub).time()
    found, ports = await gather(recorder, device_registry(hub), rules, start, end, now)
    zone = zoneinfo.ZoneInfo(hub.config.time_zone if hub.config is not None else "UTC")
    # The arithmetic runs beside the loop: a year of a large fleet is many rows.
    result: dict[str, Any] = await hub.run_in_executor(
        aggregate, found, ports, rules, start, end, group, by, zone
    )
    result["attempt_list"] = found
    return result


async def station_rates(hub: Hub, start: float, end: float) -> list[dict[str, Any]]:
    """Per station over [start, end): id, name and the figures (attempts, success_rate, ...)."""
    found = await report(hub, start, end, "station", "month")
    return list(found["totals"])


# /metrics ----------------------------------------------------------------------------------


async def _refresh(hub: Hub, setup: _Setup) -> None:
    try:
        now = clock(hub).time()
        days: float = setup.config[CONF_METRICS_DAYS]
        stations = await station_rates(hub, now - days * DAY, now)
    except Exception as err:  # a scrape must never fail for it: keep the last figures
        _LOGGER.debug("charge success metrics not refreshed: %s", err)
        setup.snapshot.computed_at = time.monotonic()
        return
    setup.snapshot = _Snapshot(stations, time.monotonic())


def _refresh_if_stale(hub: Hub) -> _Setup | None:
    setup = hub.data.get(DATA_CHARGE_SUCCESS)
    if setup is None:
        return None
    snapshot = setup.snapshot
    stale = snapshot.computed_at is None or (
        time.monotonic() - snapshot.computed_at >= setup.config[CONF_METRICS_MAX_AGE]
    )
    if stale and (setup.refreshing is None or setup.refreshing.done()):
        setup.refreshing = hub.create_background_task(
            _refresh(hub, setup), "charge success metrics"
        )
    return setup


def metric_families(hub: Hub) -> Iterator[Metric]:
    """The per-station gauges for /metrics, from figures computed at most max-age ago.

    A scrape never waits for the database: it shows the last figures and, when they are
    stale, starts their recomputation for the next scrape.
    """
    from prometheus_client.core import GaugeMetricFamily

    setup = _refresh_if_stale(hub)
    if setup is None:
        return
    days = setup.config[CONF_METRICS_DAYS]
    labels = ["station_id", "name"]
    attempts_total = GaugeMetricFamily(
        "evhub_charge_attempts_total",
        f"Charge attempts per station over the trailing {days:g} days",
        labels=labels,
    )
    successful = GaugeMetricFamily(
        "evhub_charge_attempts_successful",
        f"Successful charge attempts per station over the trailing {days:g} days",
        labels=labels,
    )
    ratio = GaugeMetricFamily(
        "evhub_charge_attempt_success_ratio",
        f"Charge attempt success rate (0-1) per station over the trailing {days:g} days",
        labels=labels,
    )
    visit_ratio = GaugeMetricFamily(
        "evhub_charge_visit_success_ratio",
        f"Visit success rate (0-1) per station over the trailing {days:g} days",
        labels=labels,
    )
    for row in setup.snapshot.stations:
        key = [str(row["id"] or ""), str(row["name"] or "")]
        attempts_total.add_metric(key, row["attempts"])
        successful.add_metric(key, row["successful"])
        if row["success_rate"] is not None:
            ratio.add_metric(key, row["success_rate"])
        if row["visit_success_rate"] is not None:
            visit_ratio.add_metric(key, row["visit_success_rate"])
    yield attempts_total
    yield successful
    yield ratio
    yield visit_ratio


# Set-up ----------------------------------------------------------------------------------


async def async_setup(ctx: SetupContext) -> bool:
    """Keep the success definition; the figures are computed when asked for."""
    hub, config = ctx.hub, ctx.config
    ctx.on_unload(lambda: _unload(hub))
    hub.data[DATA_CHARGE_SUCCESS] = _Setup(dict(config), rules_from_config(config))
    ctx.register_metrics(_Metrics(hub))
    register_views(ctx)
    return True


class _Metrics:
    """The per-station charge success gauges for /metrics (see metric_families)."""

    __slots__ = ("_hub",)

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        """The gauges, from figures computed at most max-age ago."""
        return metric_families(self._hub)


async def _unload(hub: Hub) -> None:
    """Stop a metrics refresh that is running."""
    setup = hub.data.pop(DATA_CHARGE_SUCCESS, None)
    if setup is not None and setup.refreshing is not None and not setup.refreshing.done():
        setup.refreshing.cancel()


@hookimpl
def evhub_integration() -> Integration:
    """Describe the charge_success integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Charge success",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        # Attempts are read from the recorder's history.
        dependencies=("recorder",),
        infrastructure=True,
    )
