"""Automations in YAML: triggers → conditions → actions, with modes and traces.

Configured under ``automations:`` in configuration.yaml (or ``!include automations.yaml``)::

    automations:
      - id: reset_faulted
        alias: Reset a faulted charger
        triggers:
          - trigger: state
            entity_id: sensor.bay_1_1_status
            to: Faulted
            for: {minutes: 2}
        actions:
          - action: charger.reset
            target: {entity_id: sensor.bay_1_1_status}
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.clock import clock
from hub.config import ServiceCallSite, each_item, find_line
from hub.core import Context, Hub, HubKey, ServiceCall, Unsubscribe, new_id
from hub.hookspecs import hookimpl
from hub.http.triggers import TriggerPlatform, provide_triggers
from hub.origins import set_origin
from hub.plugins import Integration, SetupContext
from hub.template import render_complex
from integrations.automation.actions import (
    ActionFailed,
    Runner,
    StopRun,
    Trace,
    _validate_sequence,
    service_calls,
    templates,
)
from integrations.automation.cli import evhub_cli_commands as evhub_cli_commands  # the CLI hook
from integrations.automation.conditions import check, validate_condition
from integrations.automation.triggers import attach_trigger, validate_trigger
from integrations.automation.views import register_views

_LOGGER = logging.getLogger(__name__)

DOMAIN = "automations"
SERVICE_DOMAIN = "automation"
DATA: Final[HubKey[AutomationManager]] = HubKey("automation.manager")
# A run's context is marked with this origin and the automation's id (hub.origins).
ORIGIN_PREFIX: Final = "automation:"
TRACES_KEPT = 5
# Fired when a run ends, whatever its outcome (finished, error, stopped, condition_failed,
# cancelled): the dashboard's list marks an automation whose last run failed.
EVENT_AUTOMATION_RUN_FINISHED: Final = "automation_run_finished"
# What set-up registers in SERVICE_DOMAIN (Integration.services).
SERVICES: Final = ("reload", "turn_on", "turn_off", "trigger")
MODES = ("single", "restart", "queued", "parallel")


def _listify(value: Any) -> Any:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


AUTOMATION_SCHEMA = vol.Schema(
    {
        vol.Required("id"): vol.All(str, vol.Match(r"^[A-Za-z0-9_\-]+$")),
        vol.Optional("alias"): str,
        vol.Optional("description"): str,
        vol.Optional("enabled", default=True): bool,
        vol.Optional("mode", default="single"): vol.In(MODES),
        vol.Optional("max", default=10): vol.All(int, vol.Range(min=1, max=1000)),
        vol.Required("triggers"): vol.All(_listify, vol.Length(min=1), each_item(validate_trigger)),
        vol.Optional("conditions", default=[]): vol.All(_listify, each_item(validate_condition)),
        vol.Required("actions"): _validate_sequence,
        vol.Optional("variables", default={}): vol.All(dict, templates),
    }
)


class Automation:
    """One automation: attached triggers, a run policy and its recent traces."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self.hub = hub
        self.config = config
        self.id: str = config["id"]
        self.alias: str = config.get("alias") or self.id
        self.mode: str = config["mode"]
        self.max: int = config["max"]
        self.enabled: bool = config["enabled"]
        self.traces: collections.deque[Trace] = collections.deque(maxlen=TRACES_KEPT)
        self.last_triggered: float | None = None
        self._unsubs: list[Unsubscribe] = []
        self._running: set[asyncio.Task[Trace]] = set()
        self._queue: collections.deque[tuple[dict[str, Any], Context | None]] = collections.deque()

    @property
    def running(self) -> int:
        """How many runs are in progress."""
        return len(self._running)

    def attach(self) -> None:
        """Listen to the triggers, if enabled."""
        if not self.enabled or self._unsubs:
            return
        for trigger in self.config["triggers"]:
            self._unsubs.append(attach_trigger(self.hub, trigger, self._on_trigger))

    async def detach(self) -> None:
        """Stop listening and cancel runs in progress."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self._queue.clear()
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _on_trigger(self, trigger: dict[str, Any], context: Context | None) -> None:
        running = len(self._running)
        if running and self.mode == "single":
            _LOGGER.warning("%s: already running, trigger ignored (mode single)", self.alias)
            return
        if running and self.mode == "restart":
            for task in list(self._running):
                task.cancel()
        if running and self.mode == "queued":
            if len(self._queue) >= self.max:
                _LOGGER.warning("%s: queue full (%d), trigger dropped", self.alias, self.max)
                return
            self._queue.append((trigger, context))
            return
        if running >= self.max and self.mode == "parallel":
            _LOGGER.warning("%s: %d runs already, trigger dropped", self.alias, running)
            return
        self._start(trigger, context)

    def _start(self, trigger: dict[str, Any], context: Context | None) -> None:
        task = self.hub.create_task(self.run(trigger, context), f"automation {self.id}")
        self._running.add(task)

        def done(finished: asyncio.Task[Trace]) -> None:
            self._running.discard(finished)
            if self._queue and self.mode == "queued":
                self._start(*self._queue.popleft())

        task.add_done_callback(done)

    async def run(
        self, trigger: dict[str, Any], context: Context | None, *, skip_conditions: bool = False
    ) -> Trace:
        """One run: check conditions, run actions, keep the trace."""
        now = clock(self.hub).time()
        run_context = context.child() if context is not None else Context()
        forget_origin = set_origin(self.hub, run_context, f"{ORIGIN_PREFIX}{self.id}")
        trace = Trace(self.id, new_id(), trigger, now)
        self.traces.append(trace)
        self.last_triggered = now
        variables: dict[str, Any] = {"trigger": trigger, "this": {"id": self.id}}
        try:
            # The automation's own variables may be templates over the trigger; conditions
            # and actions all see the same run variables.
            variables = {
                **render_complex(self.config["variables"], variables, self.hub),
                **variables,
            }
            if not skip_conditions:
                for index, condition in enumerate(self.config["conditions"]):
                    passed = check(self.hub, condition, variables)
                    trace.conditions.append({"path": f"condition/{index}", "result": passed})
                    if not passed:
                        trace.outcome = "condition_failed"
                        return trace
            self.hub.bus.fire(
                "automation_triggered",
                {"automation_id": self.id, "alias": self.alias, "run_id": trace.run_id},
                run_context,
            )
            await Runner(self.hub, trace, run_context, variables).run(self.config["actions"])
            trace.outcome = "finished"
        except StopRun as stop:
            trace.outcome = "error" if stop.error else "stopped"
            trace.error = stop.reason if stop.error else None
        except asyncio.CancelledError:
            trace.outcome = "cancelled"
            raise
        except Exception as err:
            trace.outcome = "error"
            # A failed action says what failed itself ("notify.ops failed: ...").
            trace.error = (
                str(err) if isinstance(err, ActionFailed) else f"{type(err).__name__}: {err}"
            )
            _LOGGER.error("Automation %s failed: %s", self.id, trace.error)
        finally:
            forget_origin()
            trace.finished = clock(self.hub).time()
            manager = self.hub.data.get(DATA)
            if manager is not None:
                manager.save_traces()
            self.hub.bus.fire(
                EVENT_AUTOMATION_RUN_FINISHED,
                {
                    "automation_id": self.id,
                    "alias": self.alias,
                    "run_id": trace.run_id,
                    "outcome": trace.outcome,
                    "error": trace.error,
                },
                run_context,
            )
        return trace


TRACES_STORE_KEY = "automation.traces"


class AutomationManager:
    """All automations of a hub, and their traces kept across restarts."""

    def __init__(self, hub: Hub) -> None:
        from hub.storage import Store

        self.hub = hub
        self.automations: dict[str, Automation] = {}
        self.store: Store[dict[str, Any]] = Store(hub, 1, TRACES_STORE_KEY)

    def save_traces(self) -> None:
        """Write the traces a few seconds from now (and at stop)."""
        self.store.delay_save(
            lambda: {
                automation_id: [trace.as_dict() for trace in automation.traces]
                for automation_id, automation in self.automations.items()
            },
            5.0,
        )

    async def load(self, configs: list[dict[str, Any]]) -> None:
        """Replace every automation by the given validated configs (their traces stay)."""
        for automation in self.automations.values():
            await automation.detach()
        previous = self.automations
        self.automations = {config["id"]: Automation(self.hub, config) for config in configs}
        for automation_id, automation in self.automations.items():
            if automation_id in previous:
                automation.traces.extend(previous[automation_id].traces)
                automation.last_triggered = previous[automation_id].last_triggered
        for automation in self.automations.values():
            automation.attach()
        _LOGGER.info("Loaded %d automation(s)", len(self.automations))

    async def load_traces(self) -> None:
        """Give the automations the runs saved before the hub last stopped."""
        stored = await self.store.load() or {}
        for automation_id, runs in stored.items():
            automation = self.automations.get(automation_id)
            if automation is None or not isinstance(runs, list):
                continue
            for raw in runs:
                try:
                    trace = Trace.from_dict(raw)
                except (KeyError, TypeError, ValueError, AttributeError) as err:
                    _LOGGER.warning("Skipping a saved trace of %s: %s", automation_id, err)
                    continue
                automation.traces.append(trace)
            if automation.traces:
                automation.last_triggered = max(t.started for t in automation.traces)

    def get(self, automation_id: str) -> Automation:
        """Return an automation or raise a clear error."""
        found = self.automations.get(automation_id)
        if found is None:
            raise vol.Invalid(f"no automation {automation_id!r}")
        return found


async def _reload(hub: Hub, manager: AutomationManager) -> int:
    from hub.bootstrap import load_hub_config

    config = await hub.run_in_executor(load_hub_config, hub)
    valid, _errors = validate_each(config.integrations.get(DOMAIN, []))
    await manager.load(valid)
    return len(manager.automations)


def validate_each(raw: list[Any], log: bool = True) -> tuple[list[dict[str, Any]], list[Any]]:
    """Validate automations one by one: a bad one is reported (file, line), the others load."""
    from hub.config import validate_section

    valid: list[dict[str, Any]] = []
    errors: list[Any] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        checked, found = validate_section(AUTOMATION_SCHEMA, item, f"{DOMAIN}[{index}]", raw)
        if found:
            errors.extend(found)
            continue
        if checked["id"] in seen:
            from hub.config import ConfigError, find_line

            file, line = find_line(raw, [index])
            errors.append(
                ConfigError(
                    f"automation id {checked['id']!r} used twice",
                    file=file,
                    line=line,
                    key=f"{DOMAIN}[{index}].id",
                )
            )
            continue
        seen.add(checked["id"])
        valid.append(checked)
    if log:
        for error in errors:
            _LOGGER.error("Automation not loaded: %s", error)
    return valid, errors


def automation_service_calls(raw: Any) -> Iterator[ServiceCallSite]:
    """The services the automations of a loaded section call, each where it is written."""
    items = _config_mapping(raw)
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        # An invalid automation's calls too: one round of check-config shows everything.
        for service, path in service_calls(item.get("actions"), [index, "actions"]):
            file, line = find_line(items, path)
            yield ServiceCallSite(service, file, line, (f"{DOMAIN}[{index}]", *path[1:]))


async def async_setup(ctx: SetupContext) -> bool:
    """Load the automations and register the automation.* services."""
    hub, config = ctx.hub, ctx.config
    ctx.on_unload(lambda: _unload(hub))
    manager = AutomationManager(hub)
    hub.data[DATA] = manager
    # Start-up has reported the errors already (hub.bootstrap).
    valid, _errors = validate_each(config, log=False)
    await manager.load(valid)
    await manager.load_traces()

    async def reload(call: ServiceCall) -> dict[str, Any]:
        return {"automations": await _reload(hub, manager)}

    async def turn_on(call: ServiceCall) -> None:
        automation = manager.get(call.data["automation_id"])
        automation.enabled = True
        automation.attach()

    async def turn_off(call: ServiceCall) -> None:
        automation = manager.get(call.data["automation_id"])
        automation.enabled = False
        await automation.detach()

    async def trigger(call: ServiceCall) -> dict[str, Any]:
        automation = manager.get(call.data["automation_id"])
        trace = await automation.run(
            {"platform": "manual", "id": None},
            call.context,
            skip_conditions=call.data["skip_condition"],
        )
        return trace.as_dict()

    by_id = vol.Schema({vol.Required("automation_id"): str})
    # Reloading reads configuration files: an admin's. Operators run automations.
    ctx.register_service("reload", reload, {}, role=Role.ADMIN, domain=SERVICE_DOMAIN)
    ctx.register_service("turn_on", turn_on, by_id, role=Role.OPERATOR, domain=SERVICE_DOMAIN)
    ctx.register_service("turn_off", turn_off, by_id, role=Role.OPERATOR, domain=SERVICE_DOMAIN)
    ctx.register_service(
        "trigger",
        trigger,
        {
            vol.Required("automation_id"): str,
            vol.Optional("skip_condition", default=True): bool,
        },
        role=Role.OPERATOR,
        domain=SERVICE_DOMAIN,
    )
    register_views(ctx, manager, SERVICE_DOMAIN)
    # The WebSocket API's subscribe_trigger uses the same triggers (hub.http.triggers).
    ctx.on_unload(provide_triggers(hub, TriggerPlatform(validate_trigger, attach_trigger)))
    return True


async def _unload(hub: Hub) -> None:
    """Detach every automation."""
    manager = hub.data.pop(DATA, None)
    if manager is not None:
        for automation in manager.automations.values():
            await automation.detach()


def traces(hub: Hub, automation_id: str) -> list[dict[str, Any]]:
    """Return the kept traces of an automation, oldest first."""
    return [trace.as_dict() for trace in hub.data[DATA].get(automation_id).traces]


def _config_mapping(value: Any) -> Any:
    # No automations: section (a default integration) arrives as {}: no automation.
    if isinstance(value, Mapping):
        return [value] if value else []
    return value


@hookimpl
def evhub_integration() -> Integration:
    """Describe the automations integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Automations",
        version=__version__,
        setup=async_setup,
        # Each automation is validated on its own at set-up, so one bad one skips only itself.
        config_schema=vol.All(_config_mapping, list),
        config_errors=lambda raw: validate_each(raw, log=False)[1],
        services=lambda _config: [f"{SERVICE_DOMAIN}.{service}" for service in SERVICES],
        service_calls=automation_service_calls,
        infrastructure=True,
    )


def read_traces(config_dir: Any, automation_id: str) -> list[dict[str, Any]]:
    """Read an automation's traces as the hub last saved them (for the CLI)."""
    from pathlib import Path

    import orjson

    path = Path(config_dir, ".storage", TRACES_STORE_KEY)
    if not path.exists():
        return []
    data = orjson.loads(path.read_bytes()).get("data", {})
    found: list[dict[str, Any]] = data.get(automation_id, [])
    return found
