"""Conditions: checks an automation makes before it acts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import voluptuous as vol

from hub.clock import clock
from hub.config import did_you_mean, duration, each_item, validate_with_hints
from hub.core import Hub
from hub.template import valid_template

Check = Callable[[Hub, dict[str, Any]], bool]

_ENTITY_IDS = vol.All(vol.Any(str, [str]), lambda v: [v] if isinstance(v, str) else list(v))
_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_GROUPS = ("and", "or", "not")


def _time_of_day(value: Any) -> tuple[int, int, int]:
    try:
        parts = [int(p) for p in str(value).split(":")]
    except ValueError as err:
        raise vol.Invalid(f"expected a time of day HH:MM[:SS], got {value!r}") from err
    if len(parts) not in (2, 3) or not (0 <= parts[0] < 24 and 0 <= parts[1] < 60):
        raise vol.Invalid(f"expected a time of day HH:MM[:SS], got {value!r}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else 0


SCHEMAS: dict[str, vol.Schema] = {
    "state": vol.Schema(
        {
            vol.Required("condition"): "state",
            vol.Required("entity_id"): _ENTITY_IDS,
            vol.Required("state"): vol.Any(str, [str]),
            vol.Optional("attribute"): str,
            vol.Optional("for"): duration,
        }
    ),
    "numeric_state": vol.Schema(
        {
            vol.Required("condition"): "numeric_state",
            vol.Required("entity_id"): _ENTITY_IDS,
            vol.Optional("above"): vol.Coerce(float),
            vol.Optional("below"): vol.Coerce(float),
            vol.Optional("attribute"): str,
        }
    ),
    "template": vol.Schema(
        {vol.Required("condition"): "template", vol.Required("value_template"): valid_template}
    ),
    "time": vol.Schema(
        {
            vol.Required("condition"): "time",
            vol.Optional("after"): _time_of_day,
            vol.Optional("before"): _time_of_day,
            vol.Optional("weekday"): vol.All(
                vol.Any(vol.In(_WEEKDAYS), [vol.In(_WEEKDAYS)]),
                lambda v: [v] if isinstance(v, str) else list(v),
            ),
        }
    ),
}


def validate_condition(value: Any) -> dict[str, Any]:
    """Validate one condition by its kind (and/or/not nest)."""
    kinds = [*SCHEMAS, *_GROUPS]
    if not isinstance(value, Mapping) or "condition" not in value:
        raise vol.Invalid(f"a condition needs 'condition:' (one of {', '.join(kinds)})")
    kind = str(value["condition"])
    if kind in _GROUPS:
        nested = vol.Schema(
            {
                vol.Required("condition"): kind,
                vol.Required("conditions"): each_item(validate_condition),
            }
        )
        result: dict[str, Any] = validate_with_hints(nested, dict(value))
        return result
    schema = SCHEMAS.get(kind)
    if schema is None:
        close = did_you_mean(kind, kinds)
        hint = f"did you mean '{close}'?" if close else f"use one of {', '.join(kinds)}"
        raise vol.Invalid(f"unknown condition {kind!r}; {hint}")
    checked: dict[str, Any] = validate_with_hints(schema, dict(value))
    return checked


def check(hub: Hub, config: dict[str, Any], variables: Mapping[str, Any]) -> bool:
    """Evaluate a validated condition now, templates seeing the run's variables."""
    kind = config["condition"]
    if kind == "and":
        return all(check(hub, c, variables) for c in config["conditions"])
    if kind == "or":
        return any(check(hub, c, variables) for c in config["conditions"])
    if kind == "not":
        return not any(check(hub, c, variables) for c in config["conditions"])
    if kind == "state":
        return _state(hub, config)
    if kind == "numeric_state":
        return _numeric(hub, config)
    if kind == "time":
        return _time(hub, config)
    if kind == "template":
        return _template(hub, config, variables)
    raise ValueError(f"unknown condition {kind}")


def _template(hub: Hub, config: dict[str, Any], variables: Mapping[str, Any]) -> bool:
    from hub.template import Template

    # A template error propagates: the run's trace records it and the hub runs on.
    return bool(Template(config["value_template"], hub).render(variables, parse_result=True))


def _state(hub: Hub, config: dict[str, Any]) -> bool:
    wanted = config["state"]
    wanted = [wanted] if isinstance(wanted, str) else wanted
    now = clock(hub).time()
    for entity_id in config["entity_id"]:
        state = hub.states.get(entity_id)
        if state is None:
            return False
        value = state.attributes.get(config["attribute"]) if "attribute" in config else state.state
        if str(value) not in wanted:
            return False
        if "for" in config and now - state.last_changed_ts < config["for"]:
            return False
    return True


def _numeric(hub: Hub, config: dict[str, Any]) -> bool:
    for entity_id in config["entity_id"]:
        state = hub.states.get(entity_id)
        if state is None:
            return False
        raw: Any = (
            state.attributes.get(config["attribute"]) if "attribute" in config else state.state
        )
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return False
        if "above" in config and value <= config["above"]:
            return False
        if "below" in config and value >= config["below"]:
            return False
    return True


def _time(hub: Hub, config: dict[str, Any]) -> bool:
    now = clock(hub).now()
    if hub.config is not None:
        import zoneinfo

        now = now.astimezone(zoneinfo.ZoneInfo(hub.config.time_zone))
    current = (now.hour, now.minute, now.second)
    after, before = config.get("after"), config.get("before")
    if after is not None and before is not None and after > before:
        inside = current >= after or current < before  # a window across midnight
    else:
        inside = (after is None or current >= after) and (before is None or current < before)
    if not inside:
        return False
    weekdays = config.get("weekday")
    return weekdays is None or _WEEKDAYS[now.weekday()] in weekdays
