"""Integrations as pluggy plugins: discovery by entry point, set-up in dependency order.

An integration that fails to set up is reported and retried with backoff; the others run on.
Once running, each part of an integration (a writer, a connection) reports through a
HealthReporter when it stops working and when it works again; /api/health shows it.
"""

from __future__ import annotations

import asyncio
import enum
import importlib.metadata
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import pluggy

from hub import hookspecs
from hub.clock import clock
from hub.const import EVENT_INTEGRATION_FAILED, EVENT_INTEGRATION_LOADED
from hub.core import Hub, HubKey, valid_domain
from hub.exceptions import HubError, IntegrationError
from hub.setup_context import SetupContext

if TYPE_CHECKING:
    from hub.config import ServiceCallSite

__all__ = ["Integration", "IntegrationNotReadyError", "SetupContext", "health_reporter"]

_LOGGER = logging.getLogger(__name__)

DATA_PLUGINS: Final[HubKey[PluginRegistry]] = HubKey("plugins")

# The set-up gets its context (hub, domain, config, and everything it may register); it
# returns False or raises to fail. The optional unload runs before the context is undone.
SetupFunc = Callable[[SetupContext], Awaitable[bool | None]]
UnloadFunc = Callable[[SetupContext], Awaitable[None]]


class IntegrationNotReadyError(HubError):
    """Raised by a set-up that should be retried later without a traceback (device away)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    """What a plugin declares about the integration it provides."""

    domain: str
    name: str
    version: str
    setup: SetupFunc
    unload: UnloadFunc | None = None
    dependencies: tuple[str, ...] = ()
    config_schema: Callable[[Any], Any] | None = None
    # Errors in parts of a section that set-up skips while loading the rest (one bad
    # automation among many): check-config and start-up report them with file and line.
    config_errors: Callable[[Any], list[Any]] | None = None
    # The services set-up registers for a validated config, as "domain.service" or
    # "domain.*" (any service of that domain): check-config reports an automation calling
    # one that no integration provides. None stands for "<domain>.*".
    services: Callable[[Any], Iterable[str]] | None = None
    # The services the section calls (an automation's actions), each with where it is
    # written, from the section as loaded (with its lines, not yet validated).
    service_calls: Callable[[Any], Iterable[ServiceCallSite]] | None = None
    documentation: str = ""
    # Listens to what the others fire (history, uptime, alerts, automations): its first
    # set-up attempt, and those of what it depends on, end before any other integration's
    # begins, so a driver's first events (a fault reported right after a restart) reach it.
    infrastructure: bool = False

    def __post_init__(self) -> None:
        if not valid_domain(self.domain):
            raise IntegrationError(f"invalid integration domain {self.domain!r}")


class SetupState(enum.StrEnum):
    """Where an integration is in its life."""

    pending = "pending"
    setting_up = "setting_up"
    loaded = "loaded"
    retrying = "retrying"
    waiting = "waiting_for_dependencies"
    failed = "failed"
    unloaded = "unloaded"


class Health(enum.StrEnum):
    """How a running part of an integration fares."""

    ok = "ok"
    degraded = "degraded"
    failed = "failed"


_SEVERITY: Final = {Health.ok: 0, Health.degraded: 1, Health.failed: 2}


@dataclass(slots=True)
class ComponentHealth:
    """The health of one part of an integration, since when, and why."""

    health: Health
    reason: str | None
    since: float

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {"health": str(self.health), "reason": self.reason, "since": self.since}


@dataclass(slots=True)
class IntegrationStatus:
    """The set-up state of one integration and the health of its parts, shown by /api/health."""

    domain: str
    state: SetupState = SetupState.pending
    error: str | None = None
    attempts: int = 0
    next_retry_at: float | None = None
    loaded_at: float | None = None
    components: dict[str, ComponentHealth] = field(default_factory=dict)

    @property
    def health(self) -> Health:
        """The worst health of the integration's parts (ok when none reported)."""
        worst = Health.ok
        for component in self.components.values():
            if _SEVERITY[component.health] > _SEVERITY[worst]:
                worst = component.health
        return worst

    @property
    def working(self) -> bool:
        """Tell whether the integration does its job: set up (or on its way) and healthy."""
        if self.state in (SetupState.failed, SetupState.retrying):
            return False
        return self.state is not SetupState.loaded or self.health is Health.ok

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form.

        A loaded integration with a failed or degraded part shows that as its state, with
        the part's reason as its error.
        """
        state = str(self.state)
        error = self.error
        health = self.health
        if self.state is SetupState.loaded and health is not Health.ok:
            state = str(health)
            error = "; ".join(
                f"{name}: {component.reason}"
                for name, component in sorted(self.components.items())
                if component.health is health
            )
        return {
            "state": state,
            "error": error,
            "attempts": self.attempts,
            "next_retry_at": self.next_retry_at,
            "loaded_at": self.loaded_at,
            "components": {
                name: component.as_dict() for name, component in sorted(self.components.items())
            },
        }


class HealthReporter:
    """What one part of an integration uses to say it works, limps or stopped working.

    Reports are cheap when nothing changes; a change is logged and shown by /api/health
    until the part reports again. Reporting fires no event: the recorder, which records
    events, reports through one too.
    """

    __slots__ = ("_status", "component", "domain")

    def __init__(self, status: IntegrationStatus, component: str) -> None:
        self._status = status
        self.domain = status.domain
        self.component = component

    def __repr__(self) -> str:
        return f"<HealthReporter {self.domain}.{self.component}: {self.health}>"

    @property
    def health(self) -> Health:
        """What this part reported last (ok when it never reported)."""
        found = self._status.components.get(self.component)
        return Health.ok if found is None else found.health

    def ok(self) -> None:
        """The part works (again)."""
        self._report(Health.ok, None)

    def degraded(self, reason: str) -> None:
        """The part works, but not fully (slow, behind, dropping some of its work)."""
        self._report(Health.degraded, reason)

    def failed(self, reason: str) -> None:
        """The part does not do its job until it reports ok again."""
        self._report(Health.failed, reason)

    def _report(self, health: Health, reason: str | None) -> None:
        components = self._status.components
        found = components.get(self.component)
        if found is None and health is Health.ok:
            return
        if found is not None and found.health is health and found.reason == reason:
            return
        previous = Health.ok if found is None else found.health
        if health is Health.ok:
            del components[self.component]
            _LOGGER.warning("%s %s works again", self.domain, self.component)
            return
        since = found.since if found is not None and found.health is health else time.time()
        components[self.component] = ComponentHealth(health, reason, since)
        if health is not previous:
            _LOGGER.error("%s %s %s: %s", self.domain, self.component, health, reason)


def health_reporter(hub: Hub, domain: str, component: str) -> HealthReporter:
    """Return the reporter through which a part of an integration tells /api/health its health."""
    return plugin_registry(hub).health_reporter(domain, component)


@dataclass(slots=True)
class _Running:
    integration: Integration
    config: Any
    status: IntegrationStatus
    done: asyncio.Future[bool]
    first_attempt: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    context: SetupContext | None = None
    unloaded: bool = False
    dependents: list[str] = field(default_factory=list)


class PluginLoader:
    """A pluggy PluginManager that finds integrations by entry point and describes them."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._integrations: dict[str, Integration] = {}

    @staticmethod
    def available() -> dict[str, importlib.metadata.EntryPoint]:
        """Return the entry points of every installed integration by domain."""
        found = importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
        return {ep.name: ep for ep in found}

    def register(self, plugin: ModuleType | object) -> Integration:
        """Register a plugin object or module (tests, embedded use) and return its integration."""
        self.pm.register(plugin)
        return self._describe(plugin, None)

    def load(self, domain: str) -> Integration:
        """Return the integration of domain, loading its plugin through its entry point."""
        if domain in self._integrations:
            return self._integrations[domain]
        entry_point = self.available().get(domain)
        if entry_point is None:
            raise IntegrationError(f"integration {domain!r} not found")
        try:
            plugin = entry_point.load()
        except Exception as err:
            raise IntegrationError(
                f"integration {domain!r} could not be imported ({entry_point.value}): {err}"
            ) from err
        if self.pm.is_registered(plugin):
            return self._describe(plugin, domain)
        self.pm.register(plugin, name=domain)
        return self._describe(plugin, domain)

    def _describe(self, plugin: object, domain: str | None) -> Integration:
        if not any(
            impl.plugin is plugin for impl in self.pm.hook.evhub_integration.get_hookimpls()
        ):
            self.pm.unregister(plugin)
            raise IntegrationError(f"plugin {plugin!r} implements no evhub_integration hook")
        # This plugin's hook alone, called through pluggy.
        others = [other for other in self.pm.get_plugins() if other is not plugin]
        results = self.pm.subset_hook_caller("evhub_integration", remove_plugins=others)()
        integration = results[0] if results else None
        if not isinstance(integration, Integration):
            self.pm.unregister(plugin)
            raise IntegrationError(f"evhub_integration of {plugin!r} did not return Integration")
        if domain is not None and integration.domain != domain:
            self.pm.unregister(plugin)
            raise IntegrationError(
                f"entry point {domain!r} provides integration {integration.domain!r}; "
                "the entry point name must be the domain"
            )
        self._integrations[integration.domain] = integration
        return integration

    def integration(self, domain: str) -> Integration | None:
        """Return a loaded integration's description."""
        return self._integrations.get(domain)


class PluginRegistry(PluginLoader):
    """The plugin loader of a hub and the integrations it set up."""

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.retry_base = 5.0
        self.retry_max = 300.0
        self._running: dict[str, _Running] = {}
        self._order: list[str] = []
        # Statuses of domains that reported health without being set up here (embedded use).
        self._reported: dict[str, IntegrationStatus] = {}

    def statuses(self) -> dict[str, IntegrationStatus]:
        """Return the status of every integration that was asked to set up or reported health."""
        found = dict(self._reported)
        found.update((domain, running.status) for domain, running in self._running.items())
        return found

    def health_reporter(self, domain: str, component: str) -> HealthReporter:
        """Return the reporter of one part of an integration."""
        running = self._running.get(domain)
        if running is not None:
            status = running.status
        else:
            status = self._reported.setdefault(
                domain,
                IntegrationStatus(domain, SetupState.loaded, loaded_at=clock(self.hub).time()),
            )
        return HealthReporter(status, component)

    def is_loaded(self, domain: str) -> bool:
        """Tell whether an integration is set up and running."""
        running = self._running.get(domain)
        return running is not None and running.status.state is SetupState.loaded

    # Set-up ----------------------------------------------------------------------------

    def resolve(self, domains: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """Order domains and their dependencies so each comes after what it needs.

        Returns the order and, per domain that cannot be set up, the reason.
        """
        order: list[str] = []
        failed: dict[str, str] = {}
        visiting: set[str] = set()

        def visit(domain: str, chain: tuple[str, ...]) -> bool:
            if domain in order:
                return True
            if domain in failed:
                return False
            if domain in visiting:
                failed[domain] = "dependency cycle: " + " -> ".join((*chain, domain))
                return False
            try:
                integration = self.load(domain)
            except IntegrationError as err:
                failed[domain] = str(err)
                return False
            visiting.add(domain)
            for dependency in integration.dependencies:
                if not visit(dependency, (*chain, domain)):
                    failed.setdefault(
                        domain, f"dependency {dependency!r} unavailable: {failed.get(dependency)}"
                    )
                    visiting.discard(domain)
                    return False
            visiting.discard(domain)
            order.append(domain)
            return True

        for domain in domains:
            visit(domain, ())
        return order, failed

    async def setup(self, configs: Mapping[str, Any]) -> None:
        """Set up the integrations of configs (validated sections by domain) in order.

        Waits for each first attempt; failures are retried in the background.
        """
        order, failed = self.resolve(configs)
        for domain, reason in failed.items():
            status = IntegrationStatus(domain, SetupState.failed, reason)
            self._running[domain] = _Running(
                self._integrations.get(domain)
                or Integration(domain=domain, name=domain, version="", setup=_never),
                None,
                status,
                self.hub.loop.create_future(),
            )
            self._running[domain].done.set_result(False)
            _LOGGER.error("Integration %s cannot be set up: %s", domain, reason)
        for domain in order:
            if domain in self._running:
                continue
            integration = self._integrations[domain]
            running = _Running(
                integration,
                configs.get(domain, {}),
                IntegrationStatus(domain),
                self.hub.loop.create_future(),
            )
            self._running[domain] = running
            reported = self._reported.pop(domain, None)
            if reported is not None:
                running.status.components = reported.components
            self._order.append(domain)
        for phase in self._phases(order):
            first_attempts = []
            for domain in phase:
                running = self._running[domain]
                if running.task is None and not running.done.done():
                    running.first_attempt = self.hub.loop.create_future()
                    running.task = self.hub.create_background_task(
                        self._run_setup(running, running.first_attempt), f"setup {domain}"
                    )
                    first_attempts.append(running.first_attempt)
            if first_attempts:
                await asyncio.gather(*first_attempts)

    def _phases(self, order: list[str]) -> list[list[str]]:
        """Infrastructure and what it depends on first, then the rest (each in order)."""
        first: set[str] = set()

        def need(domain: str) -> None:
            if domain not in first:
                first.add(domain)
                for dependency in self._integrations[domain].dependencies:
                    need(dependency)

        for domain in order:
            if self._integrations[domain].infrastructure:
                need(domain)
        return [
            [domain for domain in order if domain in first],
            [domain for domain in order if domain not in first],
        ]

    async def _run_setup(self, running: _Running, first_attempt: asyncio.Future[None]) -> None:
        integration = running.integration
        status = running.status
        try:
            for dependency in integration.dependencies:
                dep = self._running[dependency]
                if dep.first_attempt is not None:
                    await asyncio.shield(dep.first_attempt)
                if not dep.done.done():
                    # The dependency is being retried: start need not wait for this one.
                    status.state = SetupState.waiting
                    if not first_attempt.done():
                        first_attempt.set_result(None)
                if not await asyncio.shield(dep.done):
                    status.state = SetupState.failed
                    status.error = f"dependency {dependency!r} failed"
                    running.done.set_result(False)
                    return
            while True:
                status.state = SetupState.setting_up
                # Parts of a failed attempt are gone; a new attempt reports its own.
                status.components.clear()
                status.attempts += 1
                status.next_retry_at = None
                error = await self._attempt(running)
                if error is None:
                    status.state = SetupState.loaded
                    status.error = None
                    status.loaded_at = clock(self.hub).time()
                    running.done.set_result(True)
                    self.hub.bus.fire(EVENT_INTEGRATION_LOADED, {"domain": integration.domain})
                    return
                delay = min(self.retry_max, self.retry_base * 2 ** (status.attempts - 1))
                status.state = SetupState.retrying
                status.error = error
                status.next_retry_at = clock(self.hub).time() + delay
                self.hub.bus.fire(
                    EVENT_INTEGRATION_FAILED,
                    {"domain": integration.domain, "error": error, "retry_in": delay},
                )
                _LOGGER.warning(
                    "Set-up of %s failed (attempt %d): %s; retrying in %.0f s",
                    integration.domain,
                    status.attempts,
                    error,
                    delay,
                )
                if not first_attempt.done():
                    first_attempt.set_result(None)
                await clock(self.hub).sleep(delay)
        finally:
            if not first_attempt.done():
                first_attempt.set_result(None)

    async def _attempt(self, running: _Running) -> str | None:
        """Run one set-up attempt; return None on success, else the reason it failed."""
        integration = running.integration
        context = SetupContext(self.hub, integration, running.config)
        error: str | None = None
        try:
            result = await integration.setup(context)
        except IntegrationNotReadyError as err:
            error = str(err) or "not ready"
        except Exception as err:
            _LOGGER.exception("Error setting up integration %s", integration.domain)
            error = f"{type(err).__name__}: {err}"
        else:
            if result is False:
                error = "set-up returned False"
        if error is not None:
            # A failed attempt leaves nothing behind: the next attempt registers it all again,
            # and a service is never replaced (ServiceRegistry.register).
            await context.async_undo()
        else:
            running.context = context
        return error

    async def _unload(self, running: _Running) -> None:
        """Unload one loaded integration: its unload, then undo what its set-up registered."""
        running.unloaded = True
        running.status.state = SetupState.unloaded
        context = running.context
        running.context = None
        if context is None:
            return
        if running.integration.unload is not None:
            try:
                await running.integration.unload(context)
            except Exception:
                _LOGGER.exception("Error unloading integration %s", running.integration.domain)
        await context.async_undo()

    async def unload(self, domain: str) -> None:
        """Unload one integration and what depends on it, dependents first."""
        for other in reversed(self._order):
            if other != domain and domain not in self._integrations[other].dependencies:
                continue
            if other != domain:
                await self.unload(other)
                continue
            running = self._running[other]
            if running.task is not None and not running.task.done():
                running.task.cancel()
                await asyncio.gather(running.task, return_exceptions=True)
            if running.status.state is SetupState.loaded and not running.unloaded:
                await self._unload(running)

    async def reload(self, domain: str, config: Any = None) -> bool:
        """Unload an integration and set it up again (with config, if given); True if loaded."""
        running = self._running.get(domain)
        if running is None:
            raise IntegrationError(f"integration {domain!r} was never set up")
        await self.unload(domain)
        fresh = _Running(
            running.integration,
            running.config if config is None else config,
            IntegrationStatus(domain),
            self.hub.loop.create_future(),
        )
        fresh.first_attempt = self.hub.loop.create_future()
        self._running[domain] = fresh
        fresh.task = self.hub.create_background_task(
            self._run_setup(fresh, fresh.first_attempt), f"setup {domain}"
        )
        await fresh.first_attempt
        return fresh.status.state is SetupState.loaded

    async def unload_all(self) -> None:
        """Unload every loaded integration, dependents first."""
        for domain in reversed(self._order):
            running = self._running[domain]
            if running.task is not None and not running.task.done():
                running.task.cancel()
                await asyncio.gather(running.task, return_exceptions=True)
            if running.status.state is not SetupState.loaded or running.unloaded:
                continue
            await self._unload(running)


async def _never(context: SetupContext) -> bool:
    return False


def plugin_registry(hub: Hub) -> PluginRegistry:
    """Return the hub's plugin registry, made on first use."""
    registry = hub.data.get(DATA_PLUGINS)
    if registry is None:
        registry = hub.data[DATA_PLUGINS] = PluginRegistry(hub)
    return registry
