"""Tests for the template engine (hub.template): functions, filters, errors, limits, sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub import template as template_module
from hub.clock import use_manual_clock
from hub.core import Hub
from hub.exceptions import HubError, TemplateError
from hub.template import (
    MAX_OUTPUT_LENGTH,
    MAX_TEMPLATE_LENGTH,
    Template,
    environment,
    extract_entities,
    render_complex,
)

FIXED_NOW = datetime(2027, 1, 15, 12, 0, 0, tzinfo=UTC)


def render(hub: Hub, source: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    return Template(source, hub).render(variables, **kw)


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(template_module, "_now", lambda: FIXED_NOW)
    return FIXED_NOW


# --- state functions ---------------------------------------------------------------------------


async def test_states_returns_state_or_unknown(hub: Hub) -> None:
    hub.states.set("sensor.cp_1_power", "7.4", {"unit": "kW"})
    assert render(hub, "{{ states('sensor.cp_1_power') }}") == "7.4"
    assert render(hub, "{{ states('sensor.missing') }}") == "unknown"


async def test_state_attr(hub: Hub) -> None:
    hub.states.set("sensor.cp_1_power", "7.4", {"unit": "kW"})
    assert render(hub, "{{ state_attr('sensor.cp_1_power', 'unit') }}") == "kW"
    assert render(hub, "{{ state_attr('sensor.cp_1_power', 'nope') }}") == "None"
    assert render(hub, "{{ state_attr('sensor.missing', 'unit') is none }}") == "True"


async def test_is_state_with_value_and_list(hub: Hub) -> None:
    hub.states.set("sensor.cp_1_status", "Faulted")
    assert render(hub, "{{ is_state('sensor.cp_1_status', 'Faulted') }}") == "True"
    assert render(hub, "{{ is_state('sensor.cp_1_status', 'Available') }}") == "False"
    assert render(hub, "{{ is_state('sensor.cp_1_status', ['Available', 'Faulted']) }}") == "True"
    assert render(hub, "{{ is_state('sensor.missing', 'unknown') }}") == "False"


async def test_is_state_attr(hub: Hub) -> None:
    hub.states.set("sensor.cp_1_status", "Faulted", {"error_code": "GroundFailure"})
    assert (
        render(hub, "{{ is_state_attr('sensor.cp_1_status', 'error_code', 'GroundFailure') }}")
        == "True"
    )
    assert render(hub, "{{ is_state_attr('sensor.cp_1_status', 'error_code', 'x') }}") == "False"
    assert render(hub, "{{ is_state_attr('sensor.missing', 'error_code', None) }}") == "False"


async def test_has_value(hub: Hub) -> None:
    hub.states.set("sensor.a", "3")
    hub.states.set("sensor.b", "unavailable")
    hub.states.set("sensor.c", "unknown")
    out = render(
        hub,
        "{{ [has_value('sensor.a'), has_value('sensor.b'), has_value('sensor.c'),"
        " has_value('sensor.missing')] }}",
    )
    assert out == "[True, False, False, False]"


async def test_last_changed(hub: Hub) -> None:
    clock = use_manual_clock(hub, start=FIXED_NOW.timestamp())
    assert clock.now() == FIXED_NOW
    hub.states.set("sensor.a", "1")
    state = hub.states.get("sensor.a")
    assert state is not None
    assert render(hub, "{{ last_changed('sensor.a') }}") == str(state.last_changed)
    assert render(hub, "{{ last_changed('sensor.a') is none }}") == "False"
    assert render(hub, "{{ last_changed('sensor.missing') is none }}") == "True"


# --- time functions ----------------------------------------------------------------------------


async def test_now_and_utcnow_use_the_patched_clock(hub: Hub, fixed_now: datetime) -> None:
    assert render(hub, "{{ now().isoformat() }}") == fixed_now.isoformat()
    assert render(hub, "{{ utcnow().year }}") == "2027"
    assert render(hub, "{{ now().tzinfo is not none }}") == "True"


async def test_now_and_timestamp_local_are_in_the_hub_time_zone(
    hub: Hub, fixed_now: datetime
) -> None:
    """now() and timestamp_local read the hub's zone (as time triggers and conditions do),
    not the machine's; utcnow() stays UTC."""
    from hub.config import HubConfig

    hub.config = HubConfig(time_zone="Pacific/Auckland")  # UTC+13 in January
    assert render(hub, "{{ now().isoformat() }}") == "2027-01-16T01:00:00+13:00"
    assert render(hub, "{{ now().strftime('%Y-%m-%d') }}") == "2027-01-16"
    assert render(hub, "{{ as_timestamp(now()) }}") == str(fixed_now.timestamp())
    assert render(hub, "{{ utcnow().isoformat() }}") == "2027-01-15T12:00:00+00:00"
    assert render(hub, "{{ 1800000000 | timestamp_local }}") == "2027-01-15T21:00:00+13:00"


async def test_now_follows_a_manual_clock(hub: Hub) -> None:
    clock = use_manual_clock(hub, start=FIXED_NOW.timestamp())
    assert render(hub, "{{ as_timestamp(now()) }}") == str(FIXED_NOW.timestamp())
    await clock.advance(60)
    assert render(hub, "{{ as_timestamp(now()) }}") == str(FIXED_NOW.timestamp() + 60)


async def test_as_timestamp(hub: Hub, fixed_now: datetime) -> None:
    ts = fixed_now.timestamp()
    assert render(hub, "{{ as_timestamp(now()) }}") == str(ts)
    assert render(hub, "{{ as_timestamp('2027-01-15T12:00:00+00:00') }}") == str(ts)
    assert render(hub, "{{ as_timestamp('2027-01-15T12:00:00Z') }}") == str(ts)
    assert render(hub, "{{ '2027-01-15T12:00:00Z' | as_timestamp }}") == str(ts)
    assert render(hub, "{{ as_timestamp('garbage') }}") == "None"
    assert render(hub, "{{ as_timestamp('garbage', 0) }}") == "0"
    assert render(hub, "{{ 'garbage' | as_timestamp(-1) }}") == "-1"


async def test_as_datetime(hub: Hub) -> None:
    assert render(hub, "{{ as_datetime('2027-01-15T12:00:00Z').hour }}") == "12"
    assert render(hub, "{{ as_datetime(0).year }}") == "1970"
    assert render(hub, "{{ '1800000000' | as_datetime | as_timestamp }}") == "1800000000.0"
    assert render(hub, "{{ as_datetime('nope') }}") == "None"
    assert render(hub, "{{ 'nope' | as_datetime('bad') }}") == "bad"
    # A naive string is read as UTC, so the result is timezone-aware.
    assert render(hub, "{{ as_datetime('2027-01-15 12:00').tzinfo is not none }}") == "True"


async def test_relative_time(hub: Hub, fixed_now: datetime) -> None:
    variables = {
        "five_min": fixed_now - timedelta(minutes=5, seconds=10),
        "one_hour": fixed_now - timedelta(hours=1),
        "days": fixed_now - timedelta(days=3, hours=2),
        "soon": fixed_now + timedelta(minutes=1),
    }
    assert render(hub, "{{ relative_time(five_min) }}", variables) == "5 minutes"
    assert render(hub, "{{ one_hour | relative_time }}", variables) == "1 hour"
    assert render(hub, "{{ relative_time(days) }}", variables) == "3 days"
    assert render(hub, "{{ relative_time(soon) == soon }}", variables) == "True"
    assert render(hub, "{{ relative_time('not a date') }}") == "not a date"


async def test_relative_time_of_last_changed(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.states.set("sensor.cp_1_status", "Faulted")
    state = hub.states.get("sensor.cp_1_status")
    assert state is not None
    monkeypatch.setattr(
        template_module, "_now", lambda: state.last_changed + timedelta(seconds=125)
    )
    assert render(hub, "{{ relative_time(last_changed('sensor.cp_1_status')) }}") == "2 minutes"


async def test_timestamp_filters(hub: Hub) -> None:
    assert render(hub, "{{ 0 | timestamp_utc }}") == "1970-01-01T00:00:00+00:00"
    local = render(hub, "{{ 1800000000 | timestamp_local }}")
    assert datetime.fromisoformat(local).timestamp() == 1800000000
    assert render(hub, "{{ 'x' | timestamp_utc('n/a') }}") == "n/a"
    assert render(hub, "{{ 'x' | timestamp_local('n/a') }}") == "n/a"
    with pytest.raises(TemplateError, match="timestamp_utc"):
        render(hub, "{{ 'x' | timestamp_utc }}")


# --- number filters -----------------------------------------------------------------------------


async def test_float_and_int_filters(hub: Hub) -> None:
    hub.states.set("sensor.power", "7.46")
    assert render(hub, "{{ states('sensor.power') | float + 1 }}") == "8.46"
    assert render(hub, "{{ states('sensor.power') | int }}") == "7"
    assert render(hub, "{{ 'abc' | float(0) }}") == "0"
    assert render(hub, "{{ 'abc' | int(-1) }}") == "-1"
    assert render(hub, "{{ 'ff' | int(base=16) }}") == "255"
    assert render(hub, "{{ float('2.5') * 2 }}") == "5.0"
    assert render(hub, "{{ int('3') + 1 }}") == "4"
    with pytest.raises(TemplateError, match="float got invalid input 'abc'"):
        render(hub, "{{ 'abc' | float }}")
    with pytest.raises(TemplateError, match="int got invalid input"):
        render(hub, "{{ states('sensor.missing') | int }}")


async def test_round_and_multiply(hub: Hub) -> None:
    assert render(hub, "{{ 7.456 | round(2) }}") == "7.46"
    assert render(hub, "{{ '7.6' | round }}") == "8"
    assert render(hub, "{{ 7.21 | round(1, 'ceil') }}") == "7.3"
    assert render(hub, "{{ 7.29 | round(1, 'floor') }}") == "7.2"
    assert render(hub, "{{ 'x' | round(1, default=0) }}") == "0"
    assert render(hub, "{{ '230' | multiply(16) }}") == "3680.0"
    assert render(hub, "{{ 'x' | multiply(2, 0) }}") == "0"
    with pytest.raises(TemplateError, match="round"):
        render(hub, "{{ 'x' | round }}")
    with pytest.raises(TemplateError, match="multiply"):
        render(hub, "{{ 'x' | multiply(2) }}")


async def test_min_max_and_default(hub: Hub) -> None:
    assert render(hub, "{{ [3, 1, 2] | min }}") == "1"
    assert render(hub, "{{ [3, 1, 2] | max }}") == "3"
    assert render(hub, "{{ min(4, 2, 9) }} {{ max([4, 2, 9]) }}") == "2 9"
    assert render(hub, "{{ missing | default('fallback') }}") == "fallback"


# --- variables, undefined, parse_result, static -------------------------------------------------


async def test_trigger_variables(hub: Hub) -> None:
    hub.states.set("sensor.cp_1_status", "Available")
    hub.states.set("sensor.cp_1_status", "Faulted", {"error_code": "GroundFailure"})
    state = hub.states.get("sensor.cp_1_status")
    variables = {"trigger": {"entity_id": "sensor.cp_1_status", "to_state": state}}
    assert render(hub, "{{ trigger.to_state.state }}", variables) == "Faulted"
    assert render(hub, "{{ trigger.to_state.attributes.error_code }}", variables) == "GroundFailure"
    assert render(hub, "{{ trigger.entity_id }}", variables) == "sensor.cp_1_status"


async def test_undefined_renders_empty_and_is_defined_works(hub: Hub) -> None:
    assert render(hub, "a{{ nothing }}b") == "ab"
    assert render(hub, "{{ nothing is defined }}") == "False"
    assert render(hub, "{{ x is defined }}", {"x": 1}) == "True"


async def test_parse_result(hub: Hub) -> None:
    assert render(hub, "{{ 12.5 }}", parse_result=True) == 12.5
    assert render(hub, "{{ 3 }}", parse_result=True) == 3
    assert render(hub, "{{ 1 > 0 }}", parse_result=True) is True
    assert render(hub, "{{ 'false' }}", parse_result=True) is False
    assert render(hub, "{{ [1, 2] }}", parse_result=True) == [1, 2]
    assert render(hub, "{{ {'a': 1} }}", parse_result=True) == {"a": 1}
    # Leading zeros are ids (an RFID tag), not numbers; non-literals stay strings.
    assert render(hub, "{{ '0042' }}", parse_result=True) == "0042"
    assert render(hub, "{{ 'hello' }}", parse_result=True) == "hello"
    assert render(hub, "[1, __import__('os')]{{ '' }}", parse_result=True) == (
        "[1, __import__('os')]"
    )
    assert render(hub, "{{ 12.5 }}") == "12.5"


async def test_static_template(hub: Hub) -> None:
    template = Template("just text", hub)
    assert template.is_static
    assert template.render() == "just text"
    assert Template("42", hub).render(parse_result=True) == 42
    assert not Template("{{ 1 }}", hub).is_static
    assert not Template("{% if true %}x{% endif %}", hub).is_static
    assert not Template("{# note #}", hub).is_static


async def test_environment_and_compiled_templates_are_cached(hub: Hub) -> None:
    env = environment(hub)
    assert environment(hub) is env
    first = env.compile_source("{{ 1 + 1 }}")
    assert env.compile_source("{{ 1 + 1 }}") is first


# --- errors -------------------------------------------------------------------------------------


async def test_ensure_valid(hub: Hub) -> None:
    Template("{{ states('sensor.a') | float(0) }}", hub).ensure_valid()
    with pytest.raises(TemplateError, match=r"line 2: .*") as info:
        Template("ok\n{{ states('a' }}", hub).ensure_valid()
    assert "template error in" in str(info.value)
    assert isinstance(info.value, HubError)


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ no_such_function() }}", "'no_such_function' is undefined"),
        ("{{ 1 | no_such_filter }}", "No filter named 'no_such_filter'"),
        ("{% if %}", "line 1"),
        ("{{ x.y.z }}", "'x' is undefined"),
    ],
)
async def test_render_errors_are_template_errors(hub: Hub, source: str, cause: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(hub, source)
    message = str(info.value)
    assert message.startswith("template error in ")
    assert source[:20] in message
    assert cause in message


async def test_long_sources_are_quoted_short(hub: Hub) -> None:
    source = "{{ 1 / 0 }}" + "x" * 500
    with pytest.raises(TemplateError) as info:
        render(hub, source)
    assert len(str(info.value)) < 200


# --- limits -------------------------------------------------------------------------------------


async def test_template_length_limit(hub: Hub) -> None:
    source = "{{ 1 }}" + " " * MAX_TEMPLATE_LENGTH
    with pytest.raises(TemplateError, match="longer than 10000 characters"):
        render(hub, source)
    with pytest.raises(TemplateError, match="longer than"):
        Template(source, hub).ensure_valid()


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
        "{{ 'a' * 2000000 }}",
        "{{ [0] * 10 ** 7 }}",
        "{{ 10 ** 1000000 }}",
        "{{ range(1000000) | list }}",
    ],
)
async def test_output_and_size_limits(hub: Hub, source: str) -> None:
    with pytest.raises(TemplateError):
        render(hub, source)


DOUBLING = (
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s OP ns.s %}{% endfor %}{{ ns.s | length }}"
)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("{{ '%999999999d' % 1 }}", "formatted text"),
        ("{{ '%.999999999f' % 1 }}", "formatted text"),
        ("{{ '%*d' % (5, 1) }}", "'*' widths"),
        ("{{ '%999999999d' | format(1) }}", "formatted text"),
        ("{{ '{:>999999999}'.format(1) }}", "formatted text"),
        ("{{ '{:{}}'.format(1, 999999999) }}", "nested format fields"),
        ("{{ '{x:>999999999}'.format_map({'x': 1}) }}", "formatted text"),
        ("{{ 'x' | center(10 ** 9) }}", "center"),
        ("{{ 'x'.center(10 ** 9) }}", "str.center"),
        ("{{ 'x'.ljust(10 ** 9) }}", "str.ljust"),
        ("{{ 'x'.rjust(10 ** 9) }}", "str.rjust"),
        ("{{ '1'.zfill(10 ** 9) }}", "str.zfill"),
        ("{{ ('\t' * 1000).expandtabs(10 ** 6) }}", "str.expandtabs"),
        ("{{ ('x' * 100000) | replace('x', 'x' * 100000) }}", "replace"),
        ("{{ ('x' * 100000).replace('x', 'x' * 100000) }}", "str.replace"),
        ("{{ ('x\n' * 100000) | indent(100) }}", "indent"),
        ("{{ ','.join(['x' * 100000] * 20) }}", "str.join"),
        ("{{ (['x' * 100000] * 20) | join(',') }}", "join"),
        (DOUBLING.replace("OP", "~"), "concatenation"),
        (DOUBLING.replace("OP", "+"), "concatenation"),
    ],
)
async def test_what_a_template_builds_is_bounded_before_it_is_built(
    hub: Hub, source: str, what: str
) -> None:
    """Padding, formatting, replacing, joining and doubling that would build a string of
    gigabytes are refused before it is built, not after (the output limit comes too late)."""
    with pytest.raises(TemplateError, match=what):
        render(hub, source)


async def test_bounded_operations_still_work_in_range(hub: Hub) -> None:
    source = (
        "{{ '%05.1f' % 3.14159 }}|{{ '{:>4}'.format('a') }}|{{ 'x' | center(5) }}|"
        "{{ 'ab' | replace('a', 'c') }}|{{ [1, 2] | join('-') }}|{{ 'a' ~ 'b' }}|{{ 1 + 2 }}|"
        "{{ [1] + [2] }}|{{ '7'.zfill(3) }}|{{ '%s=%d' | format('n', 4) }}|{{ 7 % 4 }}"
    )
    assert render(hub, source) == "003.1|   a|  x  |cb|1-2|ab|3|[1, 2]|007|n=4|3"


async def test_output_just_under_the_limit_renders(hub: Hub) -> None:
    assert len(render(hub, "{{ 'x' * n }}", {"n": MAX_OUTPUT_LENGTH})) == MAX_OUTPUT_LENGTH


async def test_runaway_recursion_is_a_template_error(hub: Hub) -> None:
    with pytest.raises(TemplateError, match="RecursionError"):
        render(hub, "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")


# --- the sandbox --------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config.items() }}",
    "{{ lipsum.__globals__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ states.__self__.hub }}",
    "{{ states.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '%s' | format(''.__class__) }}",
    "{{ dict.__mro__ }}",
    "{{ trigger.to_state._asdict() }}",
    "{{ trigger.__class__ }}",
]
LEAKS = ("class", "object", "global", "module", "function", "builtins", "hub", "<")


@pytest.mark.parametrize("source", ESCAPES)
async def test_sandbox_refuses_attribute_escapes(hub: Hub, source: str) -> None:
    hub.states.set("sensor.a", "1")
    variables = {"trigger": {"to_state": hub.states.get("sensor.a")}}
    try:
        output = render(hub, source, variables)
    except TemplateError:
        return
    assert not any(leak in output.lower() for leak in LEAKS), output


@pytest.mark.parametrize(
    "source",
    [
        "{% set x = [] %}{{ x.append(1) }}",
        "{% set d = {} %}{{ d.update({'a': 1}) }}",
        "{% set d = {'a': 1} %}{{ d.pop('a') }}",
        "{{ trigger.to_state.attributes.clear() }}",
    ],
)
async def test_immutable_sandbox_refuses_mutation(hub: Hub, source: str) -> None:
    hub.states.set("sensor.a", "1", {"x": 1})
    variables = {"trigger": {"to_state": hub.states.get("sensor.a")}}
    with pytest.raises(TemplateError, match="unsafe"):
        render(hub, source, variables)
    state = hub.states.get("sensor.a")
    assert state is not None
    assert dict(state.attributes) == {"x": 1}


async def test_shared_variables_are_not_mutated(hub: Hub) -> None:
    items: list[int] = [1]
    with pytest.raises(TemplateError):
        render(hub, "{{ items.append(2) }}", {"items": items})
    assert items == [1]


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
        "{% for a in range(1000) if a %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
    ],
)
async def test_runaway_loops_and_calls_are_cut_short(hub: Hub, source: str) -> None:
    with pytest.raises(TemplateError, match="loop iterations and calls"):
        render(hub, source)
    # The budget is per render: the next one starts afresh.
    assert render(hub, "{% for a in range(3) %}{{ a }}{% endfor %}") == "012"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% for a, b in [(1, 2), (3, 4)] if a > 1 %}{{ a }}{{ b }}{% endfor %}", "34"),
        ("{% for a in [1, [2, 3]] recursive %}{{ a }}{% endfor %}", "1[2, 3]"),
        (
            "{% for a in [1, [2, 3]] recursive %}"
            "{% if a is iterable %}{{ loop(a) }}{% else %}{{ a }}{% endif %}{% endfor %}",
            "123",
        ),
        ("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/3 2/3 3/3 "),
        ("{%- for a in (range(2)) -%}{{ a }}{%- else -%}none{%- endfor -%}", "01"),
        ("{% for a in [] %}{{ a }}{% else %}empty{% endfor %}", "empty"),
        ("{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}", "a=1"),
    ],
)
async def test_loops_still_work_under_the_budget(hub: Hub, source: str, expected: str) -> None:
    assert render(hub, source) == expected


# --- render_complex and extract_entities --------------------------------------------------------


async def test_render_complex_nested(hub: Hub) -> None:
    hub.states.set("sensor.limit", "16")
    value = {
        "entity_id": "switch.cp_1",
        "current": "{{ states('sensor.limit') | int * 2 }}",
        "message": "Charger {{ name }} is {{ status }}",
        "nested": [{"a": "{{ 1 + 1 }}"}, "plain {text}", 5, None, ("{{ 'x' }}",)],
        "flag": True,
    }
    out = render_complex(value, {"name": "cp_1", "status": "Faulted"}, hub)
    assert out == {
        "entity_id": "switch.cp_1",
        "current": 32,
        "message": "Charger cp_1 is Faulted",
        "nested": [{"a": 2}, "plain {text}", 5, None, ["x"]],
        "flag": True,
    }
    assert value["current"] == "{{ states('sensor.limit') | int * 2 }}"


async def test_render_complex_without_parsing_and_without_variables(hub: Hub) -> None:
    assert render_complex({"a": "{{ 1 + 1 }}"}, None, hub, parse_result=False) == {"a": "2"}
    assert render_complex("no template", None, hub) == "no template"
    with pytest.raises(TemplateError):
        render_complex({"a": ["{{ 1 / 0 }}"]}, {}, hub)


async def test_extract_entities() -> None:
    source = (
        "{% if is_state('sensor.cp_1_status', 'Faulted') and states(\"sensor.cp_2_power\")"
        " | float(0) > state_attr('sensor.cp_3', 'max') %}"
        "{{ is_state_attr('sensor.cp_4', 'a', 1) or has_value('sensor.cp_5') }}"
        "{{ last_changed('sensor.cp_6') }}{{ states(trigger.entity_id) }}{% endif %}"
        "{{ 'sensor.not_read' }}"
    )
    assert extract_entities(source) == {
        "sensor.cp_1_status",
        "sensor.cp_2_power",
        "sensor.cp_3",
        "sensor.cp_4",
        "sensor.cp_5",
        "sensor.cp_6",
    }
    assert extract_entities("no templates here") == set()
