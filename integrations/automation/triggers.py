"""Triggers: what starts an automation. Each attaches and returns an unsubscribe callable."""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import voluptuous as vol

from hub.charger import CHARGER_EVENT_KINDS, EVENT_CHARGER, ChargerEventKind
from hub.clock import Timer, clock
from hub.config import did_you_mean, duration, validate_with_hints
from hub.const import EVENT_HUB_STARTED, EVENT_HUB_STOP
from hub.core import Context, Event, Hub, State, Unsubscribe
from hub.template import valid_template
from integrations.automation.schedule import next_pattern_match, next_time_of_day

TriggerAction = Callable[[dict[str, Any], Context | None], None]

_ENTITY_IDS = vol.All(vol.Any(str, [str]), lambda v: [v] if isinstance(v, str) else list(v))


STATE_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "state",
        vol.Required("entity_id"): _ENTITY_IDS,
        vol.Optional("from"): vol.Any(str, [str]),
        vol.Optional("to"): vol.Any(str, [str]),
        vol.Optional("not_from"): vol.Any(str, [str]),
        vol.Optional("not_to"): vol.Any(str, [str]),
        vol.Optional("attribute"): str,
        vol.Optional("for"): duration,
        vol.Optional("id"): str,
    }
)
NUMERIC_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "numeric_state",
        vol.Required("entity_id"): _ENTITY_IDS,
        vol.Optional("above"): vol.Coerce(float),
        vol.Optional("below"): vol.Coerce(float),
        vol.Optional("attribute"): str,
        vol.Optional("for"): duration,
        vol.Optional("id"): str,
    }
)
EVENT_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "event",
        vol.Required("event_type"): str,
        vol.Optional("event_data", default={}): dict,
        vol.Optional("id"): str,
    }
)
HUB_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "hub",
        vol.Required("event"): vol.In(["start", "stop"]),
        vol.Optional("id"): str,
    }
)


def _time_of_day(value: Any) -> tuple[int, int, int]:
    from integrations.automation.conditions import _time_of_day as parse

    hour, minute, second = parse(value)
    if not 0 <= second < 60:
        raise vol.Invalid(f"expected a time of day HH:MM[:SS], got {value!r}")
    return hour, minute, second


def _pattern(limit: int) -> Callable[[Any], str]:
    """A time_pattern field: '*', '/N' (N > 0) or a number below limit."""

    def validate(value: Any) -> str:
        text = str(value)
        if text == "*" or (text.startswith("/") and text[1:].isdigit() and int(text[1:]) > 0):
            return text
        if text.isdigit() and int(text) < limit:
            return text
        raise vol.Invalid(f"expected a number below {limit}, '*' or '/N', got {value!r}")

    return validate


TEMPLATE_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "template",
        vol.Required("value_template"): valid_template,
        vol.Optional("for"): duration,
        vol.Optional("id"): str,
    }
)
TIME_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "time",
        vol.Required("at"): vol.All(
            vol.Any(str, [str]),
            lambda v: [v] if isinstance(v, str) else list(v),
            vol.Length(min=1),
            [_time_of_day],
        ),
        vol.Optional("id"): str,
    }
)
TIME_PATTERN_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "time_pattern",
        vol.Optional("hours", default="*"): _pattern(24),
        vol.Optional("minutes", default="*"): _pattern(60),
        vol.Optional("seconds", default="0"): _pattern(60),
        vol.Optional("id"): str,
    }
)
CHARGER_EVENTS = CHARGER_EVENT_KINDS
CHARGER_SCHEMA = vol.Schema(
    {
        vol.Required("trigger"): "charger",
        vol.Required("event"): vol.All(
            vol.Any(str, [str]),
            lambda v: [v] if isinstance(v, str) else list(v),
            [vol.In(CHARGER_EVENTS)],
        ),
        vol.Optional("device_id"): vol.All(
            vol.Any(str, [str]), lambda v: [v] if isinstance(v, str) else list(v)
        ),
        vol.Optional("id"): str,
    }
)

SCHEMAS: dict[str, vol.Schema] = {
    "state": STATE_SCHEMA,
    "numeric_state": NUMERIC_SCHEMA,
    "event": EVENT_SCHEMA,
    "hub": HUB_SCHEMA,
    "template": TEMPLATE_SCHEMA,
    "time": TIME_SCHEMA,
    "time_pattern": TIME_PATTERN_SCHEMA,
    "charger": CHARGER_SCHEMA,
}


def validate_trigger(value: Any) -> dict[str, Any]:
    """Validate one trigger by its kind."""
    if not isinstance(value, Mapping) or "trigger" not in value:
        raise vol.Invalid(f"a trigger needs 'trigger:' (one of {', '.join(SCHEMAS)})")
    kind = str(value["trigger"])
    schema = SCHEMAS.get(kind)
    if schema is None:
        close = did_you_mean(kind, SCHEMAS)
        hint = f"did you mean '{close}'?" if close else f"use one of {', '.join(SCHEMAS)}"
        raise vol.Invalid(f"unknown trigger {kind!r}; {hint}")
    result: dict[str, Any] = validate_with_hints(schema, dict(value))
    return result


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _value(state: State | None, attribute: str | None) -> Any:
    if state is None:
        return None
    return state.attributes.get(attribute) if attribute else state.state


def _numeric(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _ForWatch:
    """A pending `for:` deadline of one entity: fires unless the condition breaks first."""

    def __init__(self) -> None:
        self.timers: dict[str, Timer] = {}

    def cancel(self, entity_id: str) -> None:
        timer = self.timers.pop(entity_id, None)
        if timer is not None:
            timer.cancel()

    def cancel_all(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()


def _attach_state_like(
    hub: Hub,
    config: dict[str, Any],
    action: TriggerAction,
    matches: Callable[[State | None, State | None], bool],
    holds: Callable[[State | None], bool],
) -> Unsubscribe:
    """State and numeric_state triggers share this: match on change, optional `for:`."""
    hold_for: float | None = config.get("for")
    watch = _ForWatch()
    the_clock = clock(hub)

    def fire(entity_id: str, old: State | None, new: State | None, ctx: Context | None) -> None:
        action(
            {
                "platform": config["trigger"],
                "id": config.get("id"),
                "entity_id": entity_id,
                "from_state": old,
                "to_state": new,
                "for": hold_for,
            },
            ctx,
        )

    def arm(entity_id: str, old: State | None, new: State | None, delay: float) -> None:
        def due() -> None:
            watch.timers.pop(entity_id, None)
            current = hub.states.get(entity_id)
            if holds(current):
                fire(entity_id, old, current, None)

        watch.cancel(entity_id)
        watch.timers[entity_id] = the_clock.call_later(delay, due)

    def on_change(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        if hold_for is None:
            if matches(old, new):
                fire(entity_id, old, new, ctx)
            return
        if matches(old, new):
            arm(entity_id, old, new, hold_for)
        elif not holds(new):
            watch.cancel(entity_id)

    # Straight from the state machine: a trigger per entity must not cost an Event per write.
    unsub = hub.states.watch(config["entity_id"], on_change)
    if hold_for is not None:
        # A restart must not forget a deadline: re-arm from the restored last_changed.
        now = the_clock.time()
        for entity_id in config["entity_id"]:
            state = hub.states.get(entity_id)
            if state is not None and holds(state):
                remaining = hold_for - (now - state.last_changed_ts)
                arm(entity_id, None, state, max(0.0, remaining))

    def detach() -> None:
        unsub()
        watch.cancel_all()

    return detach


def attach_trigger(
    hub: Hub,
    config: dict[str, Any],
    action: TriggerAction,
    variables: Mapping[str, Any] | None = None,
) -> Unsubscribe:
    """Attach a validated trigger; action(trigger_data, context) runs when it fires.

    variables: what a template trigger's template sees (a run's, for wait_for_trigger).
    """
    kind = config["trigger"]
    if kind == "state":
        return _attach_state(hub, config, action)
    if kind == "numeric_state":
        return _attach_numeric(hub, config, action)
    if kind == "event":
        return _attach_event(hub, config, action)
    if kind == "hub":
        return _attach_hub(hub, config, action)
    if kind == "template":
        return _attach_template(hub, config, action, variables or {})
    if kind in ("time", "time_pattern"):
        return _attach_time(hub, config, action)
    if kind == "charger":
        return _attach_charger(hub, config, action)
    raise ValueError(f"unknown trigger {kind}")


def _attach_state(hub: Hub, config: dict[str, Any], action: TriggerAction) -> Unsubscribe:
    attribute = config.get("attribute")
    to = _as_list(config.get("to"))
    from_ = _as_list(config.get("from"))
    not_to = _as_list(config.get("not_to"))
    not_from = _as_list(config.get("not_from"))

    def holds(new: State | None) -> bool:
        value = _value(new, attribute)
        if new is None:
            return False
        if to is not None and value not in to:
            return False
        return not (not_to is not None and value in not_to)

    def matches(old: State | None, new: State | None) -> bool:
        before, after = _value(old, attribute), _value(new, attribute)
        if new is None or before == after:
            return False
        if from_ is not None and before not in from_:
            return False
        if not_from is not None and before in not_from:
            return False
        return holds(new)

    return _attach_state_like(hub, config, action, matches, holds)


def _attach_numeric(hub: Hub, config: dict[str, Any], action: TriggerAction) -> Unsubscribe:
    attribute = config.get("attribute")
    above, below = config.get("above"), config.get("below")
    if config.get("for") is None and attribute is None:
        return _attach_numeric_fast(hub, config, action, above, below)

    def holds(state: State | None) -> bool:
        value = _numeric(_value(state, attribute))
        if value is None:
            return False
        if above is not None and value <= above:
            return False
        return not (below is not None and value >= below)

    def matches(old: State | None, new: State | None) -> bool:
        # Fires when the value crosses into the range, not on every change within it;
        # most writes stay outside, and the first test settles those.
        return holds(new) and not holds(old)

    return _attach_state_like(hub, config, action, matches, holds)


def _attach_event(hub: Hub, config: dict[str, Any], action: TriggerAction) -> Unsubscribe:
    wanted: dict[str, Any] = config["event_data"]

    def event_filter(data: Mapping[str, Any]) -> bool:
        return all(data.get(key) == value for key, value in wanted.items())

    def on_event(event: Event) -> None:
        action(
            {"platform": "event", "id": config.get("id"), "event": event},
            event.context,
        )

    return hub.bus.listen(config["event_type"], on_event, event_filter if wanted else None)


def _attach_hub(hub: Hub, config: dict[str, Any], action: TriggerAction) -> Unsubscribe:
    event_type = EVENT_HUB_STARTED if config["event"] == "start" else EVENT_HUB_STOP

    def on_event(event: Event) -> None:
        action({"platform": "hub", "id": config.get("id"), "event": config["event"]}, None)

    return hub.bus.listen_once(event_type, on_event)


def _attach_template(
    hub: Hub, config: dict[str, Any], action: TriggerAction, variables: Mapping[str, Any]
) -> Unsubscribe:
    """Fire when the template turns true, re-evaluated when an entity it reads changes."""
    from hub.exceptions import TemplateError
    from hub.template import Template, extract_entities

    template = Template(config["value_template"], hub)
    hold_for: float | None = config.get("for")
    the_clock = clock(hub)
    timer: list[Timer] = []
    was_true = [False]

    def truthy() -> bool:
        try:
            return bool(template.render(variables, parse_result=True))
        except TemplateError as err:
            import logging

            logging.getLogger(__name__).error("template trigger: %s", err)
            return False

    def fire(ctx: Context | None) -> None:
        action({"platform": "template", "id": config.get("id"), "for": hold_for}, ctx)

    def evaluate(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        now_true = truthy()
        if now_true and not was_true[0]:
            if hold_for is None:
                fire(ctx)
            else:

                def due() -> None:
                    timer.clear()
                    if truthy():
                        fire(None)

                timer.append(the_clock.call_later(hold_for, due))
        elif not now_true:
            for pending in timer:
                pending.cancel()
            timer.clear()
        was_true[0] = now_true

    entities = extract_entities(config["value_template"])
    was_true[0] = truthy()
    unsub = hub.states.watch(entities, evaluate) if entities else None

    def detach() -> None:
        if unsub is not None:
            unsub()
        for pending in timer:
            pending.cancel()

    return detach


def _matching(pattern: str, limit: int) -> list[int]:
    """The values of 0..limit-1 a time_pattern field matches, in order."""
    if pattern == "*":
        return list(range(limit))
    if pattern.startswith("/"):
        return list(range(0, limit, int(pattern[1:])))
    return [int(pattern)]


def _attach_time(hub: Hub, config: dict[str, Any], action: TriggerAction) -> Unsubscribe:
    """Time of day (at) or a pattern in the hub's zone: one timer for the next fire time.

    A fire time the loop (or the wall clock) overshot fires once, late, as soon as it can;
    the next is counted from then, so a stall never fires a burst of missed times.
    """
    the_clock = clock(hub)
    zone = zoneinfo.ZoneInfo(hub.config.time_zone if hub.config is not None else "UTC")
    timer: list[Timer] = []
    if config["trigger"] == "time":
        times = config["at"]

        def next_after(after: float) -> float:
            return next_time_of_day(after, times, zone)
    else:
        hours = frozenset(_matching(config["hours"], 24))
        minutes = frozenset(_matching(config["minutes"], 60))
        seconds = _matching(config["seconds"], 60)

        def next_after(after: float) -> float:
            return next_pattern_match(after, hours, minutes, seconds, zone)

    def schedule(due: float) -> None:
        timer[:] = [the_clock.call_later(due - the_clock.time(), lambda: fire(due))]

    def fire(due: float) -> None:
        now = the_clock.time()
        if now < due:
            # The loop's timers keep monotonic time; the wall clock was set back meanwhile.
            schedule(due)
            return
        action(
            {
                "platform": config["trigger"],
                "id": config.get("id"),
                "now": datetime.fromtimestamp(now, zone).isoformat(),
            },
            None,
        )
        schedule(next_after(now))

    schedule(next_after(the_clock.time()))

    def detach() -> None:
        for pending in timer:
            pending.cancel()
        timer.clear()

    return detach


def _attach_charger(hub: Hub, config: dict[str, Any], action: TriggerAction) -> Unsubscribe:
    """Vendor-neutral charger events (hub.charger.EVENT_CHARGER) of given kinds and devices."""
    kinds = {ChargerEventKind(kind) for kind in config["event"]}
    devices = set(config.get("device_id", ()))

    def event_filter(data: Mapping[str, Any]) -> bool:
        if data.get("kind") not in kinds:
            return False
        return (
            not devices or data.get("device_id") in devices or (data.get("station_id") in devices)
        )

    def on_event(event: Event) -> None:
        action(
            {"platform": "charger", "id": config.get("id"), **event.data, "event": event},
            event.context,
        )

    return hub.bus.listen(EVENT_CHARGER, on_event, event_filter)


def _attach_numeric_fast(
    hub: Hub,
    config: dict[str, Any],
    action: TriggerAction,
    above: float | None,
    below: float | None,
) -> Unsubscribe:
    """numeric_state on the state itself, without for: the common case, written inline
    because it runs on every write to its entity (a fleet has thousands of them)."""
    low = above if above is not None else -math.inf
    high = below if below is not None else math.inf
    trigger_id = config.get("id")

    def inside(state: State | None) -> bool:
        if state is None:
            return False
        try:
            value = float(state.state)
        except ValueError:
            return False
        return low < value < high

    def on_enter(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
        # The state machine calls this only when new is inside the range.
        if inside(old):
            return
        action(
            {
                "platform": "numeric_state",
                "id": trigger_id,
                "entity_id": entity_id,
                "from_state": old,
                "to_state": new,
                "for": None,
            },
            ctx,
        )

    return hub.states.watch(config["entity_id"], on_enter, between=(low, high))
