"""Templates rendered for API callers: the hub's sandbox, with a time limit, and the entities read.

``POST /api/template`` and the WebSocket ``render_template`` use the same immutable sandbox,
functions and filters as automations (hub.template), in an environment of their own whose
every loop step, call, filter and test checks a deadline: a caller's template never holds
the event loop longer than ``RENDER_SECONDS`` (plus one filter call on at most a million
items). The output is bounded as the hub's templates are (hub.template.MAX_OUTPUT_LENGTH).

``render_tracked`` also tells which entities a render read, through the functions that read
states, so a subscription re-renders when one of them changes, and whether it read the time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jinja2

from hub.auth import Role
from hub.core import Hub, HubKey
from hub.template import TemplateEnvironment, compile_checked, render_checked

RENDER_SECONDS: Final = 0.25
# Templates are code: who may render one, as who may write automations (and as in Home
# Assistant); the engine's bounds are about time and output, not about what a template does
# with memory on the way.
TEMPLATE_ROLE: Final = Role.ADMIN
# The functions of hub.template that read an entity's state, its first argument the entity id.
STATE_READERS: Final = ("states", "state_attr", "is_state", "is_state_attr", "has_value")
STATE_READERS_ALL: Final = (*STATE_READERS, "last_changed")
# Names whose result moves with the clock: a subscription re-renders them every minute.
TIME_NAMES: Final = ("now(", "utcnow(", "relative_time")


class _BoundedEnvironment(TemplateEnvironment):
    """The hub's sandbox whose renders stop at a deadline."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        self.deadline = float("inf")
        self.filters = {name: self._checked(func) for name, func in self.filters.items()}
        self.tests = {name: self._checked(func) for name, func in self.tests.items()}  # type: ignore[arg-type]

    def _checked(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)  # keeps jinja's pass_context/pass_environment marks
        def checked(*args: Any, **kwargs: Any) -> Any:
            self.check_deadline()
            return func(*args, **kwargs)

        return checked

    def check_deadline(self) -> None:
        """Stop the render once its time is up."""
        if time.monotonic() > self.deadline:
            raise jinja2.exceptions.SecurityError(f"rendering took longer than {RENDER_SECONDS} s")

    def _spend(self) -> None:
        super()._spend()
        self.check_deadline()

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        """The engine's checked * and **, after the deadline check."""
        self.check_deadline()
        return super().call_binop(context, operator, left, right)


DATA_API_TEMPLATES: Final[HubKey[_BoundedEnvironment]] = HubKey("http.template_environment")


def _environment(hub: Hub) -> _BoundedEnvironment:
    found = hub.data.get(DATA_API_TEMPLATES)
    if found is None:
        found = hub.data[DATA_API_TEMPLATES] = _BoundedEnvironment(hub)
    return found


@dataclass(frozen=True, slots=True)
class Rendered:
    """A render's text, the entities it read and whether it read the time."""

    text: str
    entities: frozenset[str]
    uses_time: bool


def compile_template(hub: Hub, source: str) -> jinja2.Template:
    """Compile a caller's template; TemplateError with the line and reason if it is bad."""
    return compile_checked(_environment(hub), source)


def render_tracked(hub: Hub, source: str, variables: Mapping[str, Any] | None = None) -> Rendered:
    """Render a caller's template within the time limit, noting the entities it reads."""
    compiled = compile_template(hub, source)
    env = _environment(hub)
    read: set[str] = set()

    def tracking(name: str) -> Callable[..., Any]:
        original: Callable[..., Any] = env.globals[name]  # type: ignore[assignment]

        def reader(entity_id: Any, *args: Any) -> Any:
            read.add(str(entity_id))
            return original(entity_id, *args)

        return reader

    # The caller's variables cannot hide the readers: tracking is what re-renders them.
    context = {**(variables or {}), **{name: tracking(name) for name in STATE_READERS_ALL}}
    env.deadline = time.monotonic() + RENDER_SECONDS
    try:
        text = render_checked(compiled, source, context)
    finally:
        env.deadline = float("inf")
    return Rendered(text, frozenset(read), any(name in source for name in TIME_NAMES))
