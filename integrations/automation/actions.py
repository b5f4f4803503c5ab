"""Actions: what an automation does, run step by step with a trace of each step."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import voluptuous as vol

from hub.clock import clock
from hub.config import (
    UnknownKeyInvalid,
    did_you_mean,
    duration,
    each_item,
    validate_with_hints,
)
from hub.core import Context, Hub, State
from hub.exceptions import HubError
from hub.notify import DOMAIN as NOTIFY_DOMAIN
from hub.notify import delivery_error
from hub.template import syntax_error, valid_template
from integrations.automation.conditions import check, validate_condition

_LOGGER = logging.getLogger(__name__)

_SERVICE_NAME = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
_SERVICE = vol.Match(_SERVICE_NAME)
# What a step's key says it does; the first of these it has decides.
KINDS = (
    "action",
    "delay",
    "event",
    "stop",
    "log",
    "condition",
    "wait_template",
    "wait_for_trigger",
    "repeat",
    "variables",
    "if",
    "choose",
)
# Home Assistant's older name of an action step's key.
_LEGACY_ACTION = "service"


def templates(value: Any) -> Any:
    """Voluptuous validator: every template among value's strings (nested too) compiles."""
    errors = list(_template_errors(value, []))
    if errors:
        raise vol.MultipleInvalid(errors)
    return value


def _template_errors(value: Any, path: list[Any]) -> Iterator[vol.Invalid]:
    if isinstance(value, str):
        problem = syntax_error(value)
        if problem is not None:
            yield vol.Invalid(problem, path=path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _template_errors(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _template_errors(item, [*path, index])


def _validate_sequence(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of actions")
    return _each_action(value)


def _conditions(value: Any) -> list[dict[str, Any]]:
    """One condition or a list of them, each validated."""
    checked: list[dict[str, Any]] = each_item(validate_condition)(
        [value] if isinstance(value, dict) else value
    )
    return checked


def validate_action(value: Any) -> dict[str, Any]:
    """Validate one action step by what it contains."""
    if not isinstance(value, Mapping):
        raise vol.Invalid("an action must be a mapping")
    step = dict(value)
    if _LEGACY_ACTION in step and "action" not in step:
        step = {("action" if key == _LEGACY_ACTION else key): item for key, item in step.items()}
    base: dict[Any, Any] = {
        vol.Optional("alias"): str,
        vol.Optional("enabled", default=True): bool,
    }
    schema: vol.Schema
    if "action" in step:
        schema = vol.Schema(
            {
                **base,
                vol.Required("action"): _SERVICE,
                vol.Optional("target", default={}): vol.All(dict, templates),
                vol.Optional("data", default={}): vol.All(dict, templates),
                vol.Optional("continue_on_error", default=False): bool,
            }
        )
    elif "delay" in step:
        schema = vol.Schema({**base, vol.Required("delay"): duration})
    elif "event" in step:
        schema = vol.Schema(
            {
                **base,
                vol.Required("event"): str,
                vol.Optional("event_data", default={}): vol.All(dict, templates),
            }
        )
    elif "stop" in step:
        schema = vol.Schema({**base, vol.Required("stop"): str, vol.Optional("error"): bool})
    elif "log" in step:
        schema = vol.Schema(
            {
                **base,
                vol.Required("log"): vol.All(str, valid_template),
                vol.Optional("level", default="info"): vol.In(
                    ["debug", "info", "warning", "error"]
                ),
            }
        )
    elif "condition" in step:
        checked = validate_condition({k: v for k, v in step.items() if k not in base})
        return {**checked, "_kind": "condition"}
    elif "wait_template" in step:
        schema = vol.Schema(
            {
                **base,
                vol.Required("wait_template"): valid_template,
                vol.Optional("timeout"): duration,
                vol.Optional("continue_on_timeout", default=True): bool,
            }
        )
    elif "wait_for_trigger" in step:
        from integrations.automation.triggers import validate_trigger

        schema = vol.Schema(
            {
                **base,
                vol.Required("wait_for_trigger"): vol.All(
                    vol.Any(dict, list),
                    lambda v: [v] if isinstance(v, dict) else v,
                    each_item(validate_trigger),
                ),
                vol.Optional("timeout"): duration,
                vol.Optional("continue_on_timeout", default=True): bool,
            }
        )
    elif "repeat" in step:
        conditions = vol.All(vol.Any(dict, list), _conditions)
        schema = vol.Schema(
            {
                **base,
                vol.Required("repeat"): vol.All(
                    {
                        vol.Exclusive("count", "kind"): vol.All(int, vol.Range(min=0, max=10_000)),
                        vol.Exclusive("while", "kind"): conditions,
                        vol.Exclusive("until", "kind"): conditions,
                        vol.Exclusive("for_each", "kind"): vol.All(list, templates),
                        vol.Required("sequence"): _validate_sequence,
                    },
                    _one_repeat_kind,
                ),
            }
        )
    elif "variables" in step:
        schema = vol.Schema({**base, vol.Required("variables"): vol.All(dict, templates)})
    elif "if" in step:
        schema = vol.Schema(
            {
                **base,
                vol.Required("if"): vol.All(vol.Any(dict, list), _conditions),
                vol.Required("then"): _validate_sequence,
                vol.Optional("else", default=[]): _validate_sequence,
            }
        )
    elif "choose" in step:
        option = vol.Schema(
            {
                vol.Required("conditions"): vol.All(vol.Any(dict, list), _conditions),
                vol.Required("sequence"): _validate_sequence,
            }
        )
        schema = vol.Schema(
            {
                **base,
                vol.Required("choose"): each_item(option),
                vol.Optional("default", default=[]): _validate_sequence,
            }
        )
    else:
        raise _unknown_step(step, base)
    result: dict[str, Any] = validate_with_hints(schema, step)
    return result


def _unknown_step(step: dict[str, Any], base: dict[Any, Any]) -> vol.Invalid:
    """Say a step does nothing known, with the kind a misspelled key may have meant."""
    message = f"unknown action: expected a step with one of {', '.join(KINDS)}"
    common = {str(key) for key in base}
    for key in step:
        close = did_you_mean(key, [*KINDS, _LEGACY_ACTION])
        if str(key) not in common and close is not None:
            return UnknownKeyInvalid(f"{message}; did you mean '{close}'?", [key], meant=close)
    return vol.Invalid(message)


def service_calls(steps: Any, path: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    """Yield each service a loaded (valid) action sequence calls, nested ones too, with the
    path to the key that names it (path: the sequence's own)."""
    single = isinstance(steps, Mapping)
    for index, step in enumerate([steps] if single else steps if isinstance(steps, list) else []):
        here = path if single else [*path, index]
        if not isinstance(step, Mapping):
            continue
        for key in ("action", _LEGACY_ACTION):
            name = step.get(key)
            if isinstance(name, str) and _SERVICE_NAME.match(name):
                yield name, [*here, key]
                break
        for key in ("then", "else", "default"):
            yield from service_calls(step.get(key), [*here, key])
        options = step.get("choose")
        for number, option in enumerate(options if isinstance(options, list) else []):
            if isinstance(option, Mapping):
                found = option.get("sequence")
                yield from service_calls(found, [*here, "choose", number, "sequence"])
        repeat = step.get("repeat")
        if isinstance(repeat, Mapping):
            yield from service_calls(repeat.get("sequence"), [*here, "repeat", "sequence"])


_each_action = each_item(validate_action)


def _one_repeat_kind(value: dict[str, Any]) -> dict[str, Any]:
    if not any(kind in value for kind in ("count", "while", "until", "for_each")):
        raise vol.Invalid("repeat needs one of count, while, until, for_each")
    return value


# A while/until loop stops here even if its condition never changes.
MAX_REPEAT = 10_000


class ActionFailed(HubError):
    """A service answered that it did not do what was asked: a notification not delivered."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


# Control flow, not an error: deliberately not a HubError.
class StopRun(Exception):
    """A stop action ended the run (a `stop:` step or a failed step that stops it)."""

    def __init__(self, reason: str, error: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(slots=True)
class TraceStep:
    """One step of a run."""

    path: str
    kind: str
    started: float
    duration: float = 0.0
    result: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            "path": self.path,
            "kind": self.kind,
            "started": self.started,
            "duration": round(self.duration, 6),
            "result": self.result,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TraceStep:
        """Build a step from its as_dict form; raises KeyError, TypeError, ValueError."""
        error = data.get("error")
        return cls(
            path=str(data["path"]),
            kind=str(data["kind"]),
            started=float(data["started"]),
            duration=float(data.get("duration") or 0.0),
            result=data.get("result"),
            error=None if error is None else str(error),
        )


@dataclass(slots=True)
class Trace:
    """One run of an automation: why it ran, what it checked, what it did."""

    automation_id: str
    run_id: str
    trigger: dict[str, Any]
    started: float
    conditions: list[dict[str, Any]] = field(default_factory=list)
    steps: list[TraceStep] = field(default_factory=list)
    finished: float | None = None
    outcome: str = "running"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            "automation_id": self.automation_id,
            "run_id": self.run_id,
            "trigger": _plain(self.trigger),
            "started": self.started,
            "finished": self.finished,
            "outcome": self.outcome,
            "error": self.error,
            "conditions": self.conditions,
            "steps": [step.as_dict() for step in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trace:
        """Build a trace from its as_dict form (a saved run); raises KeyError, TypeError,
        ValueError."""
        finished, error = data.get("finished"), data.get("error")
        trigger = data.get("trigger") or {}
        return cls(
            automation_id=str(data["automation_id"]),
            run_id=str(data["run_id"]),
            trigger=dict(trigger) if isinstance(trigger, Mapping) else {},
            started=float(data["started"]),
            conditions=[dict(c) for c in data.get("conditions") or ()],
            steps=[TraceStep.from_dict(step) for step in data.get("steps") or ()],
            finished=None if finished is None else float(finished),
            outcome=str(data.get("outcome") or "unknown"),
            error=None if error is None else str(error),
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not hasattr(value, "as_dict"):
        return [_plain(v) for v in value]
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class Runner:
    """Runs a validated action sequence for one automation run, tracing each step."""

    def __init__(self, hub: Hub, trace: Trace, context: Context, variables: dict[str, Any]):
        self.hub = hub
        self.trace = trace
        self.context = context
        self.variables = variables

    def _passes(self, conditions: list[dict[str, Any]]) -> bool:
        """Whether every condition holds, templates seeing this run's variables."""
        return all(check(self.hub, condition, self.variables) for condition in conditions)

    async def _wait_template(self, step: dict[str, Any]) -> dict[str, Any]:
        from hub.template import Template, extract_entities

        template = Template(step["wait_template"], self.hub)

        def done() -> bool:
            return bool(template.render(self.variables, parse_result=True))

        if done():
            self.variables["wait"] = {"completed": True}
            return {"completed": True}
        future: asyncio.Future[Any] = self.hub.loop.create_future()

        def recheck(entity_id: str, old: State | None, new: State | None, ctx: Context) -> None:
            if not future.done() and done():
                future.set_result(True)

        unsub = self.hub.states.watch(extract_entities(step["wait_template"]), recheck)
        try:
            completed = await _wait(self.hub, future, step.get("timeout"))
        finally:
            unsub()
        self.variables["wait"] = {"completed": completed}
        if not completed and not step["continue_on_timeout"]:
            raise StopRun("wait_template timed out", True)
        return {"completed": completed}

    async def _wait_for_trigger(self, step: dict[str, Any]) -> dict[str, Any]:
        from integrations.automation.triggers import attach_trigger

        future: asyncio.Future[Any] = self.hub.loop.create_future()

        def fired(trigger: dict[str, Any], context: Context | None) -> None:
            if not future.done():
                future.set_result(trigger)

        variables = dict(self.variables)

        def bound(trigger: dict[str, Any]) -> dict[str, Any]:
            # A template trigger's template is evaluated as the wait goes on (with the run's
            # variables); templates in other triggers (the station that faulted) now.
            if trigger["trigger"] == "template":
                return trigger
            rendered: dict[str, Any] = _render(self.hub, trigger, variables, False)
            return rendered

        unsubs = [
            attach_trigger(self.hub, bound(trigger), fired, variables)
            for trigger in step["wait_for_trigger"]
        ]
        try:
            completed = await _wait(self.hub, future, step.get("timeout"))
        finally:
            for unsub in unsubs:
                unsub()
        trigger = future.result() if completed else None
        self.variables["wait"] = {"completed": completed, "trigger": trigger}
        if not completed and not step["continue_on_timeout"]:
            raise StopRun("wait_for_trigger timed out", True)
        return {"completed": completed}

    async def _repeat(self, repeat: dict[str, Any], path: str) -> int:
        iterations = 0
        outer = self.variables.get("repeat")

        def enter(item: Any = None) -> None:
            # Set before a while check too: it sees the index of the iteration it guards.
            index = iterations + 1
            self.variables["repeat"] = {"index": index, "first": index == 1, "item": item}

        async def once(item: Any = None) -> None:
            nonlocal iterations
            enter(item)
            iterations += 1
            await self.run(repeat["sequence"], f"{path}/repeat/{iterations}")

        try:
            if "count" in repeat:
                for _ in range(repeat["count"]):
                    await once()
            elif "for_each" in repeat:
                for item in _render(self.hub, repeat["for_each"], self.variables):
                    await once(item)
            elif "while" in repeat:
                while iterations < MAX_REPEAT:
                    enter()
                    if not self._passes(repeat["while"]):
                        break
                    await once()
            else:
                while iterations < MAX_REPEAT:
                    await once()
                    if self._passes(repeat["until"]):
                        break
        finally:
            # A nested repeat gives the outer one its variables back.
            if outer is None:
                self.variables.pop("repeat", None)
            else:
                self.variables["repeat"] = outer
        return iterations

    async def run(self, sequence: list[dict[str, Any]], path: str = "action") -> None:
        """Run the steps in order."""
        for index, step in enumerate(sequence):
            if not step.get("enabled", True):
                continue
            await self._step(step, f"{path}/{index}")

    async def _step(self, step: dict[str, Any], path: str) -> None:
        kind = _kind(step)
        record = TraceStep(path, kind, clock(self.hub).time())
        self.trace.steps.append(record)
        started = time.perf_counter()
        try:
            record.result = await self._do(kind, step, path)
        except StopRun:
            raise
        except ActionFailed as err:
            # The step failed, with what the service answered (the failed delivery's id).
            record.result = err.result
            record.error = str(err)
            if not step.get("continue_on_error"):
                raise
        except Exception as err:
            record.error = f"{type(err).__name__}: {err}"
            if not (kind == "action" and step.get("continue_on_error")):
                raise
        finally:
            record.duration = time.perf_counter() - started

    async def _do(self, kind: str, step: dict[str, Any], path: str) -> Any:
        hub = self.hub
        if kind == "action":
            domain, service = step["action"].split(".", 1)
            data = _render(hub, step["data"], self.variables)
            # Targets are ids: never turned into numbers.
            target = _render(hub, step["target"], self.variables, False)
            result = await hub.services.call(
                domain, service, data, target or None, self.context.child()
            )
            if domain == NOTIFY_DOMAIN:
                failure = delivery_error(result)
                if failure is not None:
                    raise ActionFailed(f"{step['action']} failed: {failure}", _plain(result))
            return _plain(result)
        if kind == "delay":
            await clock(hub).sleep(step["delay"])
            return {"delay": step["delay"]}
        if kind == "event":
            hub.bus.fire(
                step["event"], _render(hub, step["event_data"], self.variables), self.context
            )
            return None
        if kind == "stop":
            raise StopRun(step["stop"], bool(step.get("error", False)))
        if kind == "log":
            message = _render(hub, step["log"], self.variables)
            _LOGGER.log(
                logging.getLevelName(step["level"].upper()),
                "[%s] %s",
                self.trace.automation_id,
                message,
            )
            return message
        if kind == "condition":
            passed = check(hub, step, self.variables)
            if not passed:
                raise StopRun("condition failed", False)
            return True
        if kind == "variables":
            self.variables.update(_render(hub, step["variables"], self.variables))
            return None
        if kind == "if":
            passed = self._passes(step["if"])
            await self.run(
                step["then"] if passed else step["else"], f"{path}/{'then' if passed else 'else'}"
            )
            return passed
        if kind == "wait_template":
            return await self._wait_template(step)
        if kind == "wait_for_trigger":
            return await self._wait_for_trigger(step)
        if kind == "repeat":
            return await self._repeat(step["repeat"], path)
        if kind == "choose":
            for index, option in enumerate(step["choose"]):
                if self._passes(option["conditions"]):
                    await self.run(option["sequence"], f"{path}/choose/{index}")
                    return index
            await self.run(step["default"], f"{path}/default")
            return "default"
        raise ValueError(f"unknown action kind {kind}")


def _kind(step: dict[str, Any]) -> str:
    if step.get("_kind") == "condition":
        return "condition"
    for kind in (
        "action",
        "delay",
        "event",
        "stop",
        "log",
        "variables",
        "if",
        "choose",
        "wait_template",
        "wait_for_trigger",
        "repeat",
    ):
        if kind in step:
            return kind
    raise ValueError(f"unknown action {step}")


async def _wait(hub: Hub, future: asyncio.Future[Any], timeout: float | None) -> bool:
    """Wait for future on the hub's clock; False on timeout."""
    if timeout is None:
        await future
        return True
    the_clock = clock(hub)

    def expire() -> None:
        if not future.done():
            future.set_result(_TIMED_OUT)

    timer = the_clock.call_later(timeout, expire)
    task = asyncio.current_task()
    if task is not None:
        hub.park(task)
    try:
        return await future is not _TIMED_OUT
    finally:
        timer.cancel()
        if task is not None:
            hub.unpark(task)


_TIMED_OUT = object()


def _render(hub: Hub, value: Any, variables: dict[str, Any], parse: bool = True) -> Any:
    """Render templates inside action data (parse: "32" becomes 32, as service data wants)."""
    from hub.template import render_complex

    return render_complex(value, variables, hub, parse_result=parse)
