"""Jinja2 templates (automations, MQTT value templates), rendered in an immutable sandbox.

Templates read the hub's states through ``states()``, ``state_attr()``, ``is_state()`` and
friends, and get number and time filters. Anything that goes wrong while compiling or
rendering (a syntax error, a bad filter input, an attribute escape refused by the sandbox)
is raised as one ``TemplateError`` with a clear message; it never reaches the hub's loop.
"""

from __future__ import annotations

import ast
import functools
import math
import re
import string
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, cast

import jinja2
import jinja2.ext
import jinja2.filters
import jinja2.lexer
import jinja2.nodes
import voluptuous as vol
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hub.clock import DATA_CLOCK, Clock
from hub.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from hub.core import Hub, HubKey
from hub.exceptions import TemplateError

DATA_TEMPLATE_ENV: Final[HubKey[TemplateEnvironment]] = HubKey("template_environment")

MAX_TEMPLATE_LENGTH: Final = 10_000
MAX_OUTPUT_LENGTH: Final = 1_048_576
MAX_CACHED_TEMPLATES: Final = 512
# Loop iterations plus function calls one render may make: nested loops over bounded
# things (``'x' * 100000`` twice) or a macro calling itself twice would otherwise run for
# hours on the hub's loop with no single operation large.
MAX_STEPS: Final = 200_000
# An exponent larger than this on a big base would stall the loop computing a huge integer.
_MAX_POW_BITS: Final = 100_000
_SNIPPET_LENGTH: Final = 60

_ENTITY_REFERENCE = re.compile(
    r"\b(?:states|is_state|is_state_attr|state_attr|has_value|last_changed)\s*\(\s*"
    r"['\"]([a-z0-9_]+\.[a-z0-9_]+)['\"]"
)
_INT_RESULT = re.compile(r"^[+-]?(?:0|[1-9][0-9]*)$")
_FLOAT_RESULT = re.compile(r"^[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


class _Unset:
    """Marks a filter's default argument as not given."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


def _now() -> datetime:
    """The current time when the hub runs on the real clock (tests monkeypatch this)."""
    return datetime.now(UTC)


def _hub_now(hub: Hub) -> datetime:
    """The hub's time: a test's ManualClock when one is installed, else ``_now()``."""
    found = hub.data.get(DATA_CLOCK)
    if found is not None and type(found) is not Clock:
        return found.now()
    return _now()


def _hub_zone(hub: Hub) -> zoneinfo.ZoneInfo:
    """The hub's configured time zone (``hub.time_zone``), UTC without a configuration."""
    return zoneinfo.ZoneInfo(hub.config.time_zone if hub.config is not None else "UTC")


def _snippet(source: str) -> str:
    """A short, one-line quote of a template for error messages."""
    flat = " ".join(source.split())
    if len(flat) > _SNIPPET_LENGTH:
        flat = flat[: _SNIPPET_LENGTH - 3] + "..."
    return repr(flat)


def _invalid(name: str, value: Any) -> ValueError:
    return ValueError(f"{name} got invalid input {value!r} and no default was given")


# --- conversions shared by functions and filters -------------------------------------------


def _to_float(value: Any, default: Any = _UNSET) -> Any:
    """A float, or default when the value is not a number."""
    try:
        return float(value)
    except (ValueError, TypeError, OverflowError):
        if default is _UNSET:
            raise _invalid("float", value) from None
        return default


def _to_int(value: Any, default: Any = _UNSET, base: int = 10) -> Any:
    """An int (from a number or a numeric string), or default."""
    try:
        if isinstance(value, str) and base != 10:
            return int(value, base)
        try:
            return int(value)
        except (ValueError, TypeError):
            return int(float(value))
    except (ValueError, TypeError, OverflowError):
        if default is _UNSET:
            raise _invalid("int", value) from None
        return default


def _round(value: Any, precision: int = 0, method: str = "common", default: Any = _UNSET) -> Any:
    """Round a number; ``method`` is common, ceil, floor or half (to the nearest .5)."""
    try:
        number = float(value)
        if method == "ceil":
            factor = 10**precision
            rounded = math.ceil(number * factor) / factor
        elif method == "floor":
            factor = 10**precision
            rounded = math.floor(number * factor) / factor
        elif method == "half":
            rounded = round(number * 2) / 2
        else:
            rounded = round(number, precision)
    except (ValueError, TypeError, OverflowError):
        if default is _UNSET:
            raise _invalid("round", value) from None
        return default
    return int(rounded) if precision == 0 and method != "half" else rounded


def _multiply(value: Any, amount: Any, default: Any = _UNSET) -> Any:
    """value times amount as numbers, or default."""
    try:
        return float(value) * float(amount)
    except (ValueError, TypeError, OverflowError):
        if default is _UNSET:
            raise _invalid("multiply", value) from None
        return default


def _aware(moment: datetime) -> datetime:
    """Treat a naive datetime as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_datetime(value: Any) -> datetime | None:
    """A timezone-aware datetime from a datetime, a timestamp or an ISO string; else None."""
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            text = value.strip()
            if _INT_RESULT.match(text) or _FLOAT_RESULT.match(text):
                return datetime.fromtimestamp(float(text), UTC)
            return _aware(datetime.fromisoformat(text))
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    return None


def _as_timestamp(value: Any, default: Any = None) -> Any:
    """Seconds since the epoch from a datetime or ISO string; default when it is not one."""
    moment = _parse_datetime(value)
    return moment.timestamp() if moment is not None else default


def _as_datetime(value: Any, default: Any = None) -> Any:
    """A timezone-aware datetime from a datetime, timestamp or ISO string; else default."""
    moment = _parse_datetime(value)
    return moment if moment is not None else default


def _timestamp_utc(value: Any, default: Any = _UNSET) -> Any:
    """A timestamp as an ISO string in UTC."""
    try:
        return datetime.fromtimestamp(float(value), UTC).isoformat()
    except (ValueError, TypeError, OverflowError, OSError):
        if default is _UNSET:
            raise _invalid("timestamp_utc", value) from None
        return default


_UNITS: Final = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)


def _relative_time(value: Any, now: datetime) -> Any:
    """How long ago a moment was, in its largest unit ("5 minutes"); other values unchanged."""
    if not isinstance(value, datetime):
        return value
    moment = _aware(value)
    if moment > now:
        return value
    seconds = int((now - moment).total_seconds())
    for unit, size in _UNITS:
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "0 seconds"


def _min_max(pick: Callable[..., Any]) -> Callable[..., Any]:
    """``min``/``max`` that take either several arguments or one iterable."""

    def func(*args: Any) -> Any:
        if len(args) == 1:
            return pick(args[0])
        return pick(args)

    return func


# --- the step budget -------------------------------------------------------------------------

_LOOP_ITER_END = frozenset({"if", "recursive"})
_OPENING = frozenset({"lparen", "lbracket", "lbrace"})
_CLOSING = frozenset({"rparen", "rbracket", "rbrace"})


class _StepBudget(jinja2.ext.Extension):
    """Rewrites ``{% for x in EXPR %}`` as ``{% for x in (EXPR)|_steps %}`` when compiling.

    The loop's own filter (``if``) and ``recursive`` stay outside the parentheses; Jinja
    parses a loop's iterable without a conditional expression, so they end it.
    """

    def filter_stream(self, stream: jinja2.lexer.TokenStream) -> Iterator[jinja2.lexer.Token]:
        tokens = iter(stream)
        for token in tokens:
            yield token
            if token.type != "block_begin":
                continue
            keyword = next(tokens, None)
            if keyword is None:
                return
            yield keyword
            if keyword.type == "name" and keyword.value == "for":
                yield from self._rewrite_for(tokens)

    @staticmethod
    def _rewrite_for(tokens: Iterator[jinja2.lexer.Token]) -> Iterator[jinja2.lexer.Token]:
        Token = jinja2.lexer.Token
        for token in tokens:  # the loop target, up to "in"
            yield token
            if token.type == "name" and token.value == "in":
                yield Token(token.lineno, "lparen", "(")
                break
            if token.type == "block_end":
                return
        depth = 0
        for token in tokens:  # the iterable, up to the end of the loop header
            if token.type in _OPENING:
                depth += 1
            elif token.type in _CLOSING:
                depth -= 1
            elif depth == 0 and (
                token.type == "block_end"
                or (token.type == "name" and token.value in _LOOP_ITER_END)
            ):
                yield Token(token.lineno, "rparen", ")")
                yield Token(token.lineno, "pipe", "|")
                yield Token(token.lineno, "name", "_steps")
                yield token
                return
            yield token


# --- the environment --------------------------------------------------------------------------


def _too_long(what: str) -> jinja2.exceptions.SecurityError:
    return jinja2.exceptions.SecurityError(f"{what} would be longer than {MAX_OUTPUT_LENGTH}")


def _check_length(size: int, what: str) -> None:
    if size > MAX_OUTPUT_LENGTH:
        raise _too_long(what)


# Widths and precisions in printf-style (``%9d``) and format (``{:>9}``) specifications.
_PRINTF_SPEC: Final = re.compile(r"%[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
_SPEC_NUMBER: Final = re.compile(r"\d+")


def _check_printf(fmt: str) -> None:
    """Refuse a %-format whose widths would build a huge string (``'%999999999d' % 1``)."""
    for width, precision in _PRINTF_SPEC.findall(fmt):
        for number in (width, precision):
            if number == "*":
                raise jinja2.exceptions.SecurityError("'*' widths are not allowed in templates")
            if number and int(number) > MAX_OUTPUT_LENGTH:
                raise _too_long("formatted text")


def _check_format_spec(spec: str) -> None:
    if "{" in spec:
        raise jinja2.exceptions.SecurityError("nested format fields are not allowed in templates")
    if any(int(number) > MAX_OUTPUT_LENGTH for number in _SPEC_NUMBER.findall(spec)):
        raise _too_long("formatted text")


def _check_format(fmt: str) -> None:
    """Refuse a str.format string whose widths would build a huge string."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as err:
        raise jinja2.exceptions.SecurityError(f"bad format string: {err}") from err
    for _literal, _field, spec, _conversion in fields:
        if spec:
            _check_format_spec(spec)


def _replaced_length(text: str, old: str, new: str, count: int = -1) -> int:
    """How long text.replace(old, new, count) would be, without building it."""
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _joined_length(separator: str, items: list[Any]) -> int:
    return sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)


_WIDTH_METHODS: Final = frozenset({"ljust", "rjust", "center", "zfill"})


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A str method a template calls: refused when its result would be too long."""
    if name in _WIDTH_METHODS:
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int):
            _check_length(width, f"str.{name}")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            _check_length(len(text) + text.count("\t") * max(size, 0), "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if isinstance(old, str) and isinstance(new, str) and isinstance(count, int):
            _check_length(_replaced_length(text, old, new, count), "str.replace")
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, list | tuple):
            _check_length(_joined_length(text, list(items)), "str.join")


def _bounded_center(value: Any, width: int = 80) -> str:
    _check_length(int(width), "center")
    return jinja2.filters.do_center(value, width)


def _bounded_indent(
    value: Any, width: int | str = 4, first: bool = False, blank: bool = False
) -> str:
    text = str(value)
    prefix = width if isinstance(width, str) else " " * min(max(int(width), 0), MAX_OUTPUT_LENGTH)
    _check_length(len(text) + len(prefix) * (text.count("\n") + 1), "indent")
    return jinja2.filters.do_indent(text, prefix, first, blank)


def _bounded_format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_printf(str(value))
    result = jinja2.filters.do_format(value, *args, **kwargs)
    _check_length(len(result), "format")
    return result


@jinja2.pass_eval_context
def _bounded_replace(
    eval_ctx: jinja2.nodes.EvalContext, value: Any, old: Any, new: Any, count: int | None = None
) -> Any:
    text, old_text, new_text = str(value), str(old), str(new)
    _check_length(
        _replaced_length(text, old_text, new_text, -1 if count is None else int(count)), "replace"
    )
    return jinja2.filters.do_replace(eval_ctx, value, old, new, count)


@jinja2.pass_eval_context
def _bounded_join(
    eval_ctx: jinja2.nodes.EvalContext, value: Any, d: str = "", attribute: Any = None
) -> str:
    items = list(value)
    if attribute is None:
        _check_length(_joined_length(str(d), items), "join")
    result = str(jinja2.filters.do_join(eval_ctx, items, d, attribute))
    _check_length(len(result), "join")
    return result


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join that refuses a huge result: a loop doubling a string
    with ``~`` would otherwise reach gigabytes in forty steps."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    """A hub's immutable sandbox, with its functions, filters and compiled-template cache.

    Whatever a template builds is bounded by MAX_OUTPUT_LENGTH before it is built:
    repetition, concatenation (``+`` and ``~``), powers, %-format and str.format widths, and
    the string methods and filters that pad, replace or join."""

    # Intercepted so ``'x' * 10**9`` or ``9 ** 9 ** 9`` cannot stall the loop or eat memory
    # (interception also stops the compiler from folding them as constants).
    intercepted_binops = frozenset(["*", "**", "+", "%"])
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, hub: Hub) -> None:
        super().__init__(
            undefined=jinja2.Undefined,
            autoescape=False,
            keep_trailing_newline=False,
            extensions=[_StepBudget],
        )
        self.hub = hub
        self.steps_left = MAX_STEPS
        self._compiled: OrderedDict[str, jinja2.Template] = OrderedDict()
        # lipsum has no use here and is one more object to poke at.
        self.globals.pop("lipsum", None)
        self.globals.update(
            states=self._states,
            state_attr=self._state_attr,
            is_state=self._is_state,
            is_state_attr=self._is_state_attr,
            has_value=self._has_value,
            last_changed=self._last_changed,
            now=self._now_global,
            utcnow=self._utcnow_global,
            as_timestamp=_as_timestamp,
            as_datetime=_as_datetime,
            relative_time=self._relative_time,
            float=_to_float,
            int=_to_int,
            min=_min_max(min),
            max=_min_max(max),
        )
        self.filters.update(
            float=_to_float,
            int=_to_int,
            round=_round,
            multiply=_multiply,
            timestamp_local=self._timestamp_local,
            timestamp_utc=_timestamp_utc,
            as_timestamp=_as_timestamp,
            as_datetime=_as_datetime,
            relative_time=self._relative_time,
            _steps=self._steps,
            center=_bounded_center,
            indent=_bounded_indent,
            format=_bounded_format,
            replace=_bounded_replace,
            join=_bounded_join,
        )

    def _spend(self) -> None:
        self.steps_left -= 1
        if self.steps_left < 0:
            raise jinja2.exceptions.SecurityError(
                f"more than {MAX_STEPS} loop iterations and calls in one render"
            )

    def _steps(self, iterable: Any) -> Iterator[Any]:
        """Count a loop's iterations against the render's budget."""
        for item in iterable:
            self._spend()
            yield item

    def call(
        __self,
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Count every call a template makes (macros included) against the budget, and
        refuse string methods whose result would be huge."""
        __self._spend()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map (wrapped by the sandbox as they are read), with their
        widths bounded."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__
        inner = wrapped

        def bounded(*args: Any, **kwargs: Any) -> str:
            _check_format(text)
            result = inner(*args, **kwargs)
            _check_length(len(result), "formatted text")
            return result

        return bounded

    @staticmethod
    def bounded_concat(items: tuple[Any, ...]) -> str:
        """``a ~ b ~ c``, refused when the result would be too long."""
        texts = [str(item) for item in items]
        _check_length(sum(len(text) for text in texts), "concatenation")
        return "".join(texts)

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        """Refuse repetitions, concatenations, formats and powers whose result would be
        huge."""
        if operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _check_length(len(left) + len(right), "concatenation")
            return left + right
        if operator == "%":
            if isinstance(left, str):
                _check_printf(left)
            return left % right
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_OUTPUT_LENGTH
                ):
                    raise jinja2.exceptions.SecurityError(
                        f"repetition would be longer than {MAX_OUTPUT_LENGTH}"
                    )
            return left * right
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and abs(left).bit_length() * right > _MAX_POW_BITS
        ):
            raise jinja2.exceptions.SecurityError("power result would be too large")
        return left**right

    def compile_source(self, source: str) -> jinja2.Template:
        """Compile a template, reusing a cached one for the same source."""
        found = self._compiled.get(source)
        if found is not None:
            self._compiled.move_to_end(source)
            return found
        compiled = self.from_string(source)
        self._compiled[source] = compiled
        if len(self._compiled) > MAX_CACHED_TEMPLATES:
            self._compiled.popitem(last=False)
        return compiled

    def _states(self, entity_id: str) -> str:
        state = self.hub.states.get(str(entity_id))
        return state.state if state is not None else STATE_UNKNOWN

    def _state_attr(self, entity_id: str, name: str) -> Any:
        state = self.hub.states.get(str(entity_id))
        return state.attributes.get(name) if state is not None else None

    def _is_state(self, entity_id: str, value: Any) -> bool:
        state = self.hub.states.get(str(entity_id))
        if state is None:
            return False
        if isinstance(value, list | tuple | set | frozenset):
            return state.state in value
        return bool(state.state == value)

    def _is_state_attr(self, entity_id: str, name: str, value: Any) -> bool:
        state = self.hub.states.get(str(entity_id))
        return state is not None and name in state.attributes and state.attributes[name] == value

    def _has_value(self, entity_id: str) -> bool:
        state = self.hub.states.get(str(entity_id))
        return state is not None and state.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)

    def _last_changed(self, entity_id: str) -> datetime | None:
        state = self.hub.states.get(str(entity_id))
        return state.last_changed if state is not None else None

    def _now_global(self) -> datetime:
        # The hub's local time, as a time condition or a time trigger reads the day.
        return _hub_now(self.hub).astimezone(_hub_zone(self.hub))

    def _utcnow_global(self) -> datetime:
        return _hub_now(self.hub).astimezone(UTC)

    def _timestamp_local(self, value: Any, default: Any = _UNSET) -> Any:
        """A timestamp as an ISO string in the hub's time zone."""
        try:
            return datetime.fromtimestamp(float(value), _hub_zone(self.hub)).isoformat()
        except (ValueError, TypeError, OverflowError, OSError):
            if default is _UNSET:
                raise _invalid("timestamp_local", value) from None
            return default

    def _relative_time(self, value: Any) -> Any:
        return _relative_time(value, _hub_now(self.hub))


def environment(hub: Hub) -> TemplateEnvironment:
    """The hub's template environment, created once and kept in ``hub.data``."""
    found = hub.data.get(DATA_TEMPLATE_ENV)
    if found is None:
        found = hub.data[DATA_TEMPLATE_ENV] = TemplateEnvironment(hub)
    return found


# --- templates --------------------------------------------------------------------------------


def parse_result(rendered: str) -> Any:
    """Turn a rendered string into a number, bool, list, dict or tuple when it is one."""
    text = rendered.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    # A leading zero ("0123") is an id, not a number: _INT_RESULT keeps it a string.
    if _INT_RESULT.match(text):
        return int(text)
    if _FLOAT_RESULT.match(text):
        number = float(text)
        return number if math.isfinite(number) else rendered
    if text[:1] in ("[", "{", "(") and len(text) <= MAX_TEMPLATE_LENGTH:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return rendered
        if isinstance(value, list | dict | tuple):
            return value
    return rendered


def compile_checked(env: TemplateEnvironment, source: str) -> jinja2.Template:
    """Compile a template in env; TemplateError with the line and reason if it is bad."""
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(
            f"template error in {_snippet(source)}: template is longer than "
            f"{MAX_TEMPLATE_LENGTH} characters"
        )
    try:
        return env.compile_source(source)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(
            f"template error in {_snippet(source)}: line {err.lineno}: {err.message}"
        ) from err
    except Exception as err:
        raise TemplateError(
            f"template error in {_snippet(source)}: {type(err).__name__}: {err}"
        ) from err


def render_checked(compiled: jinja2.Template, source: str, variables: Mapping[str, Any]) -> str:
    """Render a compiled template with a fresh step budget and the output bounded;
    TemplateError with the reason if it fails (source names it in the message)."""
    chunks: list[str] = []
    size = 0
    env = compiled.environment
    if isinstance(env, TemplateEnvironment):
        env.steps_left = MAX_STEPS
    try:
        for chunk in compiled.generate(variables):
            size += len(chunk)
            if size > MAX_OUTPUT_LENGTH:
                raise TemplateError(
                    f"template error in {_snippet(source)}: output is longer than "
                    f"{MAX_OUTPUT_LENGTH} characters"
                )
            chunks.append(chunk)
    except TemplateError:
        raise
    except jinja2.TemplateError as err:
        raise TemplateError(f"template error in {_snippet(source)}: {err}") from err
    except Exception as err:
        raise TemplateError(
            f"template error in {_snippet(source)}: {type(err).__name__}: {err}"
        ) from err
    return "".join(chunks)


class Template:
    """A template string bound to a hub."""

    __slots__ = ("hub", "is_static", "source")

    def __init__(self, source: str, hub: Hub) -> None:
        self.source = source
        self.hub = hub
        self.is_static = not any(mark in source for mark in ("{{", "{%", "{#"))

    def __repr__(self) -> str:
        return f"<Template {self.source!r}>"

    def _compile(self) -> jinja2.Template:
        return compile_checked(environment(self.hub), self.source)

    def ensure_valid(self) -> None:
        """Compile the template, raising TemplateError with the message and line if invalid."""
        if not self.is_static:
            self._compile()

    def render(
        self, variables: Mapping[str, Any] | None = None, *, parse_result: bool = False
    ) -> Any:
        """Render with the given variables; with parse_result, return native types."""
        if self.is_static:
            output = self.source
        else:
            compiled = self._compile()
            output = render_checked(compiled, self.source, dict(variables) if variables else {})
        return _parse(output) if parse_result else output


_parse = parse_result


def render_complex(
    value: Any,
    variables: Mapping[str, Any] | None,
    hub: Hub,
    *,
    parse_result: bool = True,
) -> Any:
    """Render every template string inside nested dicts, lists and tuples.

    Strings that are not templates, and values that are not strings, are returned untouched;
    rendered templates become native types (numbers, bools, lists) unless parse_result is off.
    """
    if isinstance(value, str):
        template = Template(value, hub)
        if template.is_static:
            return value
        return template.render(variables, parse_result=parse_result)
    if isinstance(value, Mapping):
        return {
            key: render_complex(item, variables, hub, parse_result=parse_result)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [render_complex(item, variables, hub, parse_result=parse_result) for item in value]
    return value


class _SyntaxEnvironment(TemplateEnvironment):
    """The hub's environment, its syntax, functions and filters, for compiling only."""

    def __init__(self) -> None:
        # Never renders, so nothing reads the hub's states: compiling needs no hub.
        super().__init__(cast(Hub, None))


@functools.cache
def _syntax_environment() -> _SyntaxEnvironment:
    return _SyntaxEnvironment()


def syntax_error(source: str) -> str | None:
    """Return why source does not compile as a template (its line if it has several), or None.

    Needs no hub: configuration checks call it before any hub runs.
    """
    if not any(mark in source for mark in ("{{", "{%", "{#")):
        return None
    if len(source) > MAX_TEMPLATE_LENGTH:
        return f"a template is at most {MAX_TEMPLATE_LENGTH} characters"
    try:
        _syntax_environment().compile(source)
    except jinja2.TemplateSyntaxError as err:
        where = f" (line {err.lineno} of the template)" if "\n" in source.strip() else ""
        return f"template syntax error: {err.message}{where}"
    except Exception as err:
        return f"template error: {type(err).__name__}: {err}"
    return None


def valid_template(value: Any) -> str:
    """Voluptuous validator: a string that compiles as a template (or has no template in it)."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a template (text)")
    problem = syntax_error(value)
    if problem is not None:
        raise vol.Invalid(problem)
    return value


def extract_entities(source: str) -> set[str]:
    """The entity ids a template reads through states(), is_state(), state_attr() and kin."""
    return set(_ENTITY_REFERENCE.findall(source))
