"""The set-up context: an integration's door into the hub for one set-up.

Everything an integration registers through it (listeners, per-entity watches, services with
their role, chargers, entities, HTTP views, WebSocket commands, dashboard panels, Prometheus
collectors, the history store, timers on the hub clock, background tasks) is recorded, and
undone together, last first: when the set-up attempt fails, when the integration unloads and
before it is set up again on reload.
Home Assistant's ``ConfigEntry.async_on_unload`` is the model.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from hub.auth import Role
from hub.charger import Admission, Charger, register_admission, register_charger
from hub.clock import Timer, clock
from hub.core import EventListener, Hub, ServiceHandler, StateWatcher, Unsubscribe
from hub.entity import EntityPlatform
from hub.exceptions import HubStateError
from hub.history import History, provide_history

if TYPE_CHECKING:
    import voluptuous as vol
    from prometheus_client.registry import Collector

    from hub.http.extensions import Extensions, Handler, WsHandler
    from hub.plugins import Integration

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

UndoFunc = Callable[[], Any]


class SetupContext:
    """What one set-up of an integration registered, and the means to register it."""

    def __init__(self, hub: Hub, integration: Integration, config: Any) -> None:
        self.hub = hub
        self.integration = integration
        self.domain = integration.domain
        self.config = config
        # The integration's own state for this set-up (Home Assistant's runtime_data).
        self.data: Any = None
        self._undo: list[UndoFunc] = []
        # The undos of listeners, watchers and timers (run first; see async_undo).
        self._quiet: set[UndoFunc] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._platform: EntityPlatform | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"<SetupContext {self.domain}: {len(self._undo)} to undo>"

    def _check_open(self) -> None:
        if self.closed:
            raise HubStateError(f"the set-up of {self.domain} was undone; register nothing more")

    def on_unload(self, undo: UndoFunc) -> None:
        """Call undo (a function or coroutine function) when this set-up is undone."""
        self._check_open()
        self._undo.append(undo)

    def _keep(self, undo: Unsubscribe) -> Unsubscribe:
        self.on_unload(undo)

        def forget() -> None:
            if undo in self._undo:
                self._undo.remove(undo)
            self._quiet.discard(undo)
            undo()

        return forget

    def _keep_quiet(self, undo: Unsubscribe) -> Unsubscribe:
        """Like _keep, for what makes the integration's code run (listeners, watchers,
        timers): undone first, before anything awaits, so nothing of a closed set-up runs
        while the rest is being undone."""
        self._quiet.add(undo)
        return self._keep(undo)

    # The bus and the states ----------------------------------------------------------

    def listen(
        self,
        event_type: str,
        callback: EventListener,
        event_filter: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> Unsubscribe:
        """Listen to an event type (hub.bus.listen) until this set-up is undone."""
        self._check_open()
        return self._keep_quiet(self.hub.bus.listen(event_type, callback, event_filter))

    def watch(
        self,
        entity_ids: str | Iterable[str],
        watcher: StateWatcher,
        *,
        between: tuple[float, float] | None = None,
    ) -> Unsubscribe:
        """Be told of every change of these entities (hub.states.watch) until undone."""
        self._check_open()
        return self._keep_quiet(self.hub.states.watch(entity_ids, watcher, between=between))

    # Services, chargers, entities ----------------------------------------------------

    def register_service(
        self,
        service: str,
        handler: ServiceHandler,
        schema: vol.Schema | Mapping[Any, Any] | None = None,
        *,
        role: Role = Role.ADMIN,
        description: str = "",
        domain: str | None = None,
    ) -> Unsubscribe:
        """Register ``<domain>.<service>`` with the least role an API caller needs.

        domain defaults to the integration's own; a shared domain (``notify``) may be named.
        """
        self._check_open()
        return self._keep(
            self.hub.services.register(
                domain or self.domain, service, handler, schema, description, role=str(role)
            )
        )

    def register_charger(self, charger: Charger) -> Unsubscribe:
        """Make a charger reachable by the charger.* services until undone."""
        self._check_open()
        return self._keep(register_charger(self.hub, charger))

    def register_admission(self, admission: Admission) -> Unsubscribe:
        """List the chargers this integration holds for approval (GET /api/pending_chargers)."""
        self._check_open()
        return self._keep(register_admission(self.hub, self.domain, admission))

    def register_discovery_property(self, key: str, value: Callable[[str], str | None]) -> None:
        """Add a property to the hub's zeroconf advertisement: value(address) -> text or None."""
        self._check_open()
        self._keep(self._extensions().add_discovery_property(key, value))

    def device_profiles(self) -> list[Path]:
        """The device profile files loaded plugins offer this integration (the
        ``evhub_device_profiles`` hook), in the order the plugins answer."""
        self._check_open()
        from hub.plugins import plugin_registry

        answers = plugin_registry(self.hub).pm.hook.evhub_device_profiles(domain=self.domain)
        return [Path(path) for answer in answers if answer for path in answer]

    @property
    def entities(self) -> EntityPlatform:
        """The integration's entity platform: its entities are detached when undone."""
        self._check_open()
        if self._platform is None:
            platform = self._platform = EntityPlatform(self.hub, self.domain)
            self.on_unload(platform.unload)
        return self._platform

    # The API and the dashboard -------------------------------------------------------

    def _extensions(self) -> Extensions:
        # Imported here: the HTTP package imports the views of integrations built into the
        # tree, which import hub.plugins.
        from hub.http.extensions import extensions

        return extensions(self.hub)

    def register_view(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        role: Role,
        summary: str,
        query: tuple[str, ...] = (),
        body: Mapping[str, str] | None = None,
        responses: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Unsubscribe:
        """Serve an HTTP view at ``/api/<domain>`` or under it to users with at least role.

        query names the query parameters and body the JSON body's fields (name -> type or
        description), responses what a success answers (status -> {media type: JSON Schema},
        built with hub.http.schemas), for the API's OpenAPI description.
        """
        self._check_open()
        added = self._extensions().add_view(
            self.domain, method, path, handler, role, summary, query, body, responses
        )
        return self._keep(added)

    def register_metrics(self, collector: Collector) -> Unsubscribe:
        """Add a Prometheus collector's metrics to /metrics until undone."""
        self._check_open()
        return self._keep(self._extensions().add_collector(collector))

    def provide_history(self, history: History) -> Unsubscribe:
        """Be the hub's history store (hub.history) for the monitoring API until undone."""
        self._check_open()
        return self._keep(provide_history(self.hub, history))

    def register_ws_command(self, command: str, handler: WsHandler, *, role: Role) -> Unsubscribe:
        """Answer the WebSocket command ``<domain>/<name>`` for users with at least role."""
        self._check_open()
        return self._keep(self._extensions().add_command(self.domain, command, handler, role))

    def register_panel(
        self,
        name: str,
        title: str,
        module: Path,
        element: str,
        *,
        role: Role = Role.VIEWER,
        icon: str = "extension",
        placement: Literal["page", "station"] = "page",
    ) -> Unsubscribe:
        """List a dashboard panel: a JavaScript module defining the custom element element.

        placement ``page``: a page of its own in the navigation. ``station``: a section of
        the station page of each station this integration provides (its element also gets
        the ``station`` property: device_id, charge_point_id, name).
        """
        self._check_open()
        from hub.http.extensions import Panel

        if placement not in ("page", "station"):
            raise ValueError(f"a panel's placement is page or station, not {placement!r}")
        panel = Panel(self.domain, name, title, Path(module), element, Role(role), icon, placement)
        return self._keep(self._extensions().add_panel(panel))

    # Time and tasks ------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        """Run callback after delay seconds of the hub clock, unless undone first."""
        self._check_open()
        cancel: list[UndoFunc] = []

        def fire() -> None:
            # Fired: nothing left to undo (a set-up calling later again and again keeps no
            # list of its past timers).
            self._quiet.discard(cancel[0])
            if cancel[0] in self._undo:
                self._undo.remove(cancel[0])
            callback()

        timer = clock(self.hub).call_later(delay, fire)
        cancel.append(timer.cancel)
        self._quiet.add(timer.cancel)
        self.on_unload(timer.cancel)
        return timer

    def track_interval(self, interval: float, callback: Callable[[], Any]) -> Unsubscribe:
        """Run callback every interval seconds of the hub clock until undone."""
        self._check_open()
        if interval <= 0:
            raise ValueError("interval must be positive")
        current: list[Timer] = []

        def tick() -> None:
            current[0] = clock(self.hub).call_later(interval, tick)
            result = callback()
            if inspect.isawaitable(result):
                self.create_task(_await(result), f"{self.domain} interval")

        current.append(clock(self.hub).call_later(interval, tick))

        def stop() -> None:
            current[0].cancel()

        return self._keep_quiet(stop)

    def create_task(self, coro: Coroutine[Any, Any, _T], name: str) -> asyncio.Task[_T]:
        """Run a background task of the integration; it is cancelled when undone."""
        self._check_open()
        task = self.hub.create_background_task(coro, f"{self.domain}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Undo ----------------------------------------------------------------------------

    async def async_undo(self) -> None:
        """Undo everything registered, last first; an error in one step is logged."""
        self.closed = True
        # Listeners, watchers and timers first, at once: events fired while the rest is
        # undone (a connection closing, a task finishing) must not reach a closed set-up.
        for undo in list(self._undo):
            if undo in self._quiet:
                self._undo.remove(undo)
                try:
                    undo()
                except Exception:
                    _LOGGER.exception("Error undoing the set-up of %s (%r)", self.domain, undo)
        self._quiet.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._undo:
            undo = self._undo.pop()
            try:
                result = undo()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _LOGGER.exception("Error undoing the set-up of %s (%r)", self.domain, undo)

    @property
    def pending(self) -> int:
        """How many registrations are waiting to be undone (tests)."""
        return len(self._undo) + len(self._tasks)


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable
