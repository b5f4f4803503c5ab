"""`evhub check-config` as an operator runs it: a config dir on disk, the command as a process,
every finding with its file, line and keys, in plain words."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from hub.bootstrap import new_hub, process_config
from hub.clock import ManualClock, use_manual_clock
from hub.config import (
    ConfigError,
    duration,
    humanize_error,
    load_config_file,
    plain_message,
    validate_section,
)
from hub.config_check import provided_services, service_problem
from hub.core import Hub, ServiceCall
from hub.plugins import PluginLoader, plugin_registry
from hub.template import syntax_error

ROOT = Path(__file__).resolve().parents[2]
START = 1_800_000_000.0


def check(config_dir: Path, **files: str) -> subprocess.CompletedProcess[str]:
    """Write the files (dedented; configuration="..." is configuration.yaml) and run
    `evhub check-config --config config_dir`."""
    for name, text in files.items():
        filename = "configuration.yaml" if name == "configuration" else f"{name}.yaml"
        config_dir.joinpath(filename).write_text(textwrap.dedent(text).lstrip("\n"))
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "check-config", "--config", str(config_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def findings(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The error lines, without the count that ends them; never a traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1].endswith("configuration.yaml"), lines
    return lines[:-1]


CLEAN = """
hub:
  name: Depot
  time_zone: Europe/Berlin
http:
  server_host: 127.0.0.1
  server_port: 8300
notify_webhook:
  - name: ops
    url: http://127.0.0.1:9/hook
automations: !include automations.yaml
"""

CLEAN_AUTOMATIONS = """
- id: faulted
  triggers:
    - trigger: state
      entity_id: sensor.bay_1_status
      to: Faulted
      for: "00:05:00"
    - trigger: template
      value_template: "{{ states('sensor.bay_1_power') | float(0) > 22 }}"
      for: {minutes: 1, seconds: 30}
  conditions:
    - condition: state
      entity_id: sensor.bay_1_status
      state: Faulted
      for: 300
  actions:
    - service: notify.ops
      data:
        title: "{{ trigger.entity_id }}"
        message: >
          {% if trigger.to_state %}Bay 1 is {{ trigger.to_state.state }}{% endif %}
    - delay: "00:00:30"
    - action: charger.reset
      target: {entity_id: sensor.bay_1_status}
    - action: notify.persistent
      data: {message: reset sent}
    - action: alert.raise
      data: {key: bay_1, title: Bay 1 faulted}
    - action: automation.turn_off
      data: {automation_id: faulted}
    - wait_template: "{{ is_state('sensor.bay_1_status', 'Available') }}"
      timeout: {hours: 1}
    - repeat:
        count: 2
        sequence:
          - action: recorder.purge
"""


def test_a_clean_config_has_no_findings(tmp_path: Path) -> None:
    result = check(tmp_path, configuration=CLEAN, automations=CLEAN_AUTOMATIONS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == f"configuration ok: {tmp_path / 'configuration.yaml'}\n"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "configuration": CLEAN,
                "automations": """
                    - id: faulted
                      triggers: [{trigger: state, entity_id: sensor.bay_1_status, to: Faulted}]
                      actions:
                        - service: notify.nobody
                          data: {message: faulted}
                        - action: charger.reset_all_the_things
                        - choose:
                            - conditions: [{condition: state, entity_id: sensor.x, state: "on"}]
                              sequence:
                                - action: notify.opps
                                  data: {message: hi}
                          default:
                            - if: {condition: template, value_template: "{{ true }}"}
                              then:
                                - action: chargr.reset
                              else:
                                - action: zaptec.refresh
                                - action: acme.go
                    """,
            },
            [
                "error: automations.yaml, line 4: automations[0] → actions[0] → service: unknown"
                " notify target 'nobody' (notify.nobody); the configured targets are: ops",
                "error: automations.yaml, line 6: automations[0] → actions[1] → action: unknown"
                " service 'charger.reset_all_the_things'; charger has: reset, set_availability,"
                " set_current_limit, set_phases, start_charging, stop_charging, trigger_status,"
                " unlock_connector, update_firmware",
                "error: automations.yaml, line 10: automations[0] → actions[2] → choose[0] →"
                " sequence[0] → action: unknown notify target 'opps' (notify.opps); did you mean"
                " 'notify.ops'?",
                "error: automations.yaml, line 15: automations[0] → actions[2] → default[0] →"
                " then[0] → action: unknown service 'chargr.reset'; did you mean 'charger.reset'?",
                "error: automations.yaml, line 17: automations[0] → actions[2] → default[0] →"
                " else[0] → action: unknown service 'zaptec.refresh': the zaptec integration is"
                " not set up (add a zaptec: section)",
                "error: automations.yaml, line 18: automations[0] → actions[2] → default[0] →"
                " else[1] → action: unknown service 'acme.go': nothing here provides acme.*"
                " services",
            ],
            id="unknown_services_and_notify_targets",
        ),
        pytest.param(
            {
                "configuration": """
                    alerts: false
                    automations:
                      - id: a
                        triggers: {trigger: hub, event: start}
                        actions: {action: alert.raise, data: {key: k, title: t}}
                    """,
            },
            [
                "error: configuration.yaml, line 1: alerts: alerts is turned off (alerts: false)"
                " but an integration needs it",
                "error: configuration.yaml, line 5: automations[0] → actions → action: unknown"
                " service 'alert.raise': the alerts integration is turned off (alerts: false)",
            ],
            id="a_service_of_an_integration_turned_off_is_unknown",
        ),
        pytest.param(
            {
                "configuration": """
                    automations:
                      - id: a
                        triggers: {trigger: hub, event: start}
                        actions: [{action: notify.mobile_app, data: {message: up}}]
                    """,
            },
            [
                "error: configuration.yaml, line 4: automations[0] → actions[0] → action: unknown"
                " notify target 'mobile_app' (notify.mobile_app); no notify target is configured"
                " (notify_email, notify_ntfy or notify_webhook)",
            ],
            id="notify_without_any_target_configured",
        ),
        pytest.param(
            {
                "configuration": """
                    notify_webhook:
                      - name: ops
                        url: http://127.0.0.1:9/hook
                    automations:
                      - id: templates
                        triggers:
                          - trigger: template
                            value_template: "{{ states('sensor.power') | float(0) > 22 "
                        conditions:
                          - condition: template
                            value_template: "{{ is_state('sensor.x', 'on') }"
                        actions:
                          - action: notify.ops
                            data:
                              message: |
                                Bay {{ trigger.entity_id }}
                                is {% if x %}down
                          - log: "{{ 1 | no_such_filter }}"
                          - variables:
                              level: "{{ [1, 2 }}"
                    """,
            },
            [
                "error: configuration.yaml, line 8: automations[0] → triggers[0] → value_template:"
                " template syntax error: unexpected end of template, expected 'end of print"
                " statement'., got \"{{ states('sensor.power') | float(0) > 22 \"",
                "error: configuration.yaml, line 11: automations[0] → conditions[0] →"
                " value_template: template syntax error: unexpected '}', got \"{{"
                " is_state('sensor.x', 'on') }\"",
                "error: configuration.yaml, line 15: automations[0] → actions[0] → data → message:"
                " template syntax error: Unexpected end of template. Jinja was looking for the"
                " following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to"
                " be closed is 'if'. (line 2 of the template), got 'Bay {{ trigger.entity_id"
                " }}\\nis {% if x %}down\\n'",
                "error: configuration.yaml, line 18: automations[0] → actions[1] → log: template"
                " syntax error: No filter named 'no_such_filter'., got '{{ 1 | no_such_filter }}'",
                "error: configuration.yaml, line 20: automations[0] → actions[2] → variables →"
                " level: template syntax error: unexpected '}', expected ']', got '{{ [1, 2 }}'",
            ],
            id="template_syntax_errors_in_automations",
        ),
        pytest.param(
            {
                "configuration": """
                    http:
                      server_port: abc
                    ocpp:
                      listeners:
                        - host: 127.0.0.1
                          port: 70000
                          security_profile: 1
                      unknown_chargers: pendng
                      heartbeat_interval: often
                      authorize_unknown_id_tags: maybe
                      id_tags: RFID-1
                      chargers:
                        - name: Bay 1
                          password: short
                    recorder: [1, 2]
                    automations:
                      - id: has spaces
                        mode: sometimes
                        max: 0
                        triggers: []
                        actions: [{delay: forever}]
                    """,
            },
            [
                "error: configuration.yaml, line 2: http → server_port: expected a whole number,"
                " got 'abc'",
                "error: configuration.yaml, line 6: ocpp → listeners[0] → port: must be at most"
                " 65535, got 70000",
                "error: configuration.yaml, line 8: ocpp → unknown_chargers: expected one of:"
                " accept, pending, reject, got 'pendng'; did you mean 'pending'?",
                "error: configuration.yaml, line 9: ocpp → heartbeat_interval: expected a whole"
                " number, got 'often'",
                "error: configuration.yaml, line 10: ocpp → authorize_unknown_id_tags: expected"
                " true or false, got 'maybe'",
                "error: configuration.yaml, line 11: ocpp → id_tags: expected a list, got 'RFID-1'",
                "error: configuration.yaml, line 13: ocpp → chargers[0] → id: required, but"
                " missing",
                "error: configuration.yaml, line 14: ocpp → chargers[0] → password: must be at"
                " least 16 characters long, got 'short'",
                "error: configuration.yaml, line 15: recorder: expected a mapping (key: value),"
                " got [1, 2]",
                "error: configuration.yaml, line 17: automations[0] → id: does not have the"
                " expected form ^[A-Za-z0-9_\\-]+$, got 'has spaces'",
                "error: configuration.yaml, line 18: automations[0] → mode: expected one of:"
                " parallel, queued, restart, single, got 'sometimes'",
                "error: configuration.yaml, line 19: automations[0] → max: must be at least 1, got"
                " 0",
                "error: configuration.yaml, line 20: automations[0] → triggers: must have at least"
                " 1 item, got []",
                "error: configuration.yaml, line 21: automations[0] → actions[0] → delay: expected"
                " a duration: seconds (300), 'HH:MM:SS' ('00:05:00') or a mapping ({minutes: 5}),"
                " got 'forever'",
            ],
            id="plain_language_instead_of_voluptuous_jargon",
        ),
        pytest.param(
            {
                "configuration": ("automations: !include automations.yaml\n"),
                "automations": (
                    "- id: a\n  triggers: [{trigger: hub, event: start}\n  actions: []\n"
                ),
            },
            [
                "error: automations.yaml, line 3: YAML syntax error at column 3: did not find"
                " expected ',' or ']'; the list in [brackets] that begins on line 2, column 13 is"
                " not closed or lacks a ','",
            ],
            id="a_yaml_error_in_an_included_file",
        ),
    ],
)
def test_findings_with_file_line_and_keys(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    """What check-config finds in the files (configuration is configuration.yaml), line by
    line, in plain words."""
    assert findings(check(tmp_path, **files)) == expected


def test_did_you_mean_for_integrations_and_keys(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        configuration="""
        hub:
          name: Depot
          time_zon: Europe/Berlin
        recoder:
          purge_keep_days: 10
        http:
          server_prot: 8300
        automation:
          - id: a
        automations:
          - id: b
            trigger:
              - trigger: stat
                entity_id: sensor.x
              - trigger: state
                entity: sensor.x
                for: {minuts: 5}
            actions:
              - actoin: notify.ops
        """,
    )
    assert findings(result) == [
        "error: configuration.yaml, line 3: hub → time_zon: unknown key; did you mean 'time_zone'?",
        "error: configuration.yaml, line 4: recoder: integration 'recoder' not found; did you"
        " mean 'recorder'?",
        "error: configuration.yaml, line 7: http → server_prot: unknown key; did you mean"
        " 'server_port'?",
        "error: configuration.yaml, line 8: automation: integration 'automation' not found; did"
        " you mean 'automations'?",
        "error: configuration.yaml, line 12: automations[0] → trigger: unknown key; did you mean"
        " 'triggers'?",
        "error: configuration.yaml, line 19: automations[0] → actions[0] → actoin: unknown"
        " action: expected a step with one of action, delay, event, stop, log, condition,"
        " wait_template, wait_for_trigger, repeat, variables, if, choose; did you mean"
        " 'action'?",
    ]
    # Once the automation key is right, its triggers are checked, each key by its own.
    text = tmp_path.joinpath("configuration.yaml").read_text()
    tmp_path.joinpath("configuration.yaml").write_text(
        text.replace("    trigger:", "    triggers:")
    )
    result = check(tmp_path)
    assert [line for line in findings(result) if "triggers[" in line] == [
        "error: configuration.yaml, line 13: automations[0] → triggers[0]: unknown trigger"
        " 'stat'; did you mean 'state'?",
        "error: configuration.yaml, line 16: automations[0] → triggers[1] → entity: unknown"
        " key; did you mean 'entity_id'?",
        "error: configuration.yaml, line 17: automations[0] → triggers[1] → for → minuts:"
        " unknown key; did you mean 'minutes'?",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "hub:\n  name: [Depot\nhttp:\n  server_port: 8300\n",
            "error: configuration.yaml, line 3: YAML syntax error at column 5: did not find"
            " expected ',' or ']'; the list in [brackets] that begins on line 2, column 9 is"
            " not closed or lacks a ','",
        ),
        (
            'hub:\n  name: "Depot\nhttp:\n  server_port: 8300\n',
            "error: configuration.yaml, line 4: YAML syntax error at the end of the file: found"
            " unexpected end of the file; the quoted text that begins on line 2, column 9 has"
            " no closing quote",
        ),
        (
            "hub: {name: Depot\nhttp:\n  server_port: 8300\n",
            "error: configuration.yaml, line 2: YAML syntax error at column 5: did not find"
            " expected ',' or '}'; the mapping in {braces} that begins on line 1, column 6 is"
            " not closed or lacks a ','",
        ),
        (
            "http:\n  server_host: 127.0.0.1\n server_port: 8300\n",
            "error: configuration.yaml, line 3: YAML syntax error at column 2: did not find"
            " expected key; the mapping that begins on line 1, column 1 has a key indented"
            " differently",
        ),
        (
            "hub:\n\tname: Depot\n",
            "error: configuration.yaml, line 2: YAML syntax error at column 1: found character"
            " that cannot start any token (a tab: YAML is indented with spaces only)",
        ),
        (
            "hub:\n  name: Depot: north\n",
            "error: configuration.yaml, line 2: YAML syntax error at column 14: mapping values"
            " are not allowed in this context (a value with ': ' in it needs quotes)",
        ),
    ],
    ids=["bracket", "quote", "brace", "indentation", "tab", "colon"],
)
def test_yaml_syntax_errors_name_where_the_construct_began(
    tmp_path: Path, text: str, expected: str
) -> None:
    tmp_path.joinpath("configuration.yaml").write_text(text)
    assert findings(check(tmp_path)) == [expected]


# --- the parts, one by one ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (300, 300.0),
        (2.5, 2.5),
        ("300", 300.0),
        ("00:05:00", 300.0),
        ("01:30", 5400.0),  # HH:MM, as Home Assistant reads it
        ("0:00:01.5", 1.5),
        ("48:00:00", 172800.0),
        ({"minutes": 5}, 300.0),
        ({"days": 1, "hours": 1, "minutes": 1, "seconds": 1, "milliseconds": 500}, 90061.5),
        ({"hours": "2"}, 7200.0),
    ],
)
def test_duration_accepts_what_home_assistant_users_write(value: Any, seconds: float) -> None:
    assert duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("forever", "expected a duration"),
        ("-00:05:00", "expected a duration"),
        (-1, "a duration cannot be negative"),
        ({"minutes": -1}, "a duration cannot be negative"),
        (True, "expected a duration"),
        ([5], "expected a duration"),
        ("nan", "expected a duration"),
        ({}, "a duration needs one of days, hours, minutes, seconds, milliseconds"),
        ({"mins": 5}, "unknown key; did you mean 'minutes'?"),
    ],
)
def test_duration_refuses_the_rest(value: Any, message: str) -> None:
    with pytest.raises(vol.Invalid) as info:
        duration(value)
    assert info.value.msg.startswith(message)


@pytest.mark.parametrize(
    ("raw", "got", "plain"),
    [
        ("expected int", "x", "expected a whole number"),
        ("expected float", "x", "expected a number"),
        ("expected bool", "x", "expected true or false"),
        ("expected boolean", "x", "expected true or false"),
        ("expected str", 1, "expected text"),
        ("expected list", 1, "expected a list"),
        ("expected a list", 1, "expected a list"),
        ("expected dict", 1, "expected a mapping (key: value)"),
        ("expected a dictionary", 1, "expected a mapping (key: value)"),
        ("not a valid value", 1, "not an accepted value"),
        ("required key not provided", None, "required, but missing"),
        ("extra keys not allowed", None, "unknown key"),
        ("value must be at least 1", 0, "must be at least 1"),
        ("value must be at most 9", 10, "must be at most 9"),
        ("value must be higher than 1", 1, "must be more than 1"),
        ("value must be lower than 9", 9, "must be less than 9"),
        ("length of value must be at least 8", "short", "must be at least 8 characters long"),
        ("length of value must be at most 2", [1, 2, 3], "must have at most 2 items"),
        ("value must be one of ['a', 'b']", "c", "expected one of: a, b"),
        ("value must be one of [1, 3]", 2, "expected one of: 1, 3"),
        ("does not match regular expression ^x$", "y", "does not have the expected form ^x$"),
        (
            "two or more values in the same group of exclusion 'kind'",
            None,
            "give only one of the keys of the group 'kind'",
        ),
        ("unknown time zone 'Mars/X'", "Mars/X", "unknown time zone 'Mars/X'"),
    ],
)
def test_plain_messages(raw: str, got: Any, plain: str) -> None:
    assert plain_message(raw, got) == plain


def test_humanized_errors_name_what_they_got_and_hide_secrets(tmp_path: Path) -> None:
    tmp_path.joinpath("secrets.yaml").write_text("mode: sometimez\n")
    tmp_path.joinpath("configuration.yaml").write_text(
        "section:\n  mode: !secret mode\n  level: loud\n  size: [1]\n"
    )
    config = load_config_file(tmp_path)
    schema = vol.Schema(
        {
            "mode": vol.In(["sometimes", "never"]),
            "level": vol.In(["loud", "quiet"]),
            "size": vol.All([int], vol.Length(min=2)),
        }
    )
    _, errors = validate_section(schema, config["section"], "section", config)
    assert [error.plain() for error in errors] == [
        # A secret is neither shown nor guessed at.
        "configuration.yaml, line 2: section → mode: expected one of: never, sometimes, got"
        " <secret mode>",
        "configuration.yaml, line 4: section → size: must have at least 2 items, got [1]",
    ]
    error = vol.Invalid("expected int", path=["size", 0])
    assert humanize_error({"size": [None]}, error) == "expected a whole number, got nothing"


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    tmp_path.joinpath("configuration.yaml").write_text("hub:\n  colour: blue\n")
    result = process_config(load_config_file(tmp_path), PluginLoader(), http_default=False)
    assert [error.plain() for error in result.errors] == [
        "configuration.yaml, line 2: hub → colour: unknown key; expected one of: name, time_zone"
    ]


def test_plain_keys_of_an_error_made_elsewhere() -> None:
    error = ConfigError("bad", "configuration.yaml", 4, "ocpp.chargers[1].id")
    assert error.plain() == "configuration.yaml, line 4: ocpp → chargers[1] → id: bad"
    assert str(error) == "configuration.yaml:4: ocpp.chargers[1].id: bad"


def test_template_syntax_needs_no_hub() -> None:
    assert syntax_error("no template here {") is None
    assert syntax_error("{{ states('sensor.x') | float(0) | round(1) }}") is None
    assert syntax_error("{% for i in range(3) %}{{ i }}{% endfor %}") is None
    assert syntax_error("{{ x }") == "template syntax error: unexpected '}'"
    assert syntax_error("a\n{{ x }\n") == (
        "template syntax error: unexpected '}' (line 2 of the template)"
    )


def test_service_problem() -> None:
    provided = {"charger.reset", "notify.persistent", "notify.ops", "ocpp.*"}
    assert service_problem("charger.reset", provided) is None
    assert service_problem("ocpp.anything", provided) is None  # declared by domain
    assert service_problem("notify.op", provided) == (
        "unknown notify target 'op' (notify.op); did you mean 'notify.ops'?"
    )
    assert service_problem("ocp.reset", provided) == (
        "unknown service 'ocp.reset'; did you mean 'ocpp.reset'?"
    )
    assert service_problem("modbus.refresh", provided, {"modbus": "modbus is off"}) == (
        "unknown service 'modbus.refresh': modbus is off"
    )


# --- at run time, and against what a real hub registers -------------------------------------


Started = Callable[[str], Awaitable[tuple[Hub, ManualClock]]]


class Recorder:
    """A test.record service that remembers its calls."""

    def __init__(self, hub: Hub) -> None:
        self.calls: list[ServiceCall] = []
        hub.services.register("test", "record", self.calls.append)


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[Started]:
    """Start a hub of the given configuration.yaml (HTTP on a free loopback port added) on a
    manual clock."""
    hubs: list[Hub] = []

    async def start(configuration: str) -> tuple[Hub, ManualClock]:
        tmp_path.joinpath("configuration.yaml").write_text(
            "http:\n  server_host: 127.0.0.1\n  server_port: 0\n"
            + textwrap.dedent(configuration).lstrip("\n")
        )
        hub = new_hub(tmp_path)
        manual = use_manual_clock(hub, START)
        hubs.append(hub)
        await hub.start()
        return hub, manual

    yield start
    for hub in hubs:
        await hub.stop()


async def test_hh_mm_ss_durations_at_run_time(started: Started) -> None:
    hub, manual = await started(
        """
        automations:
          - id: faulted
            triggers:
              - trigger: state
                entity_id: sensor.bay_1_status
                to: Faulted
                for: "00:05:00"
            conditions:
              - condition: state
                entity_id: sensor.bay_1_status
                state: Faulted
                for: "00:04:59"
            actions:
              - service: test.record
                data: {step: first}
              - delay: "00:01:30"
              - service: test.record
                data: {step: second}
        """
    )
    recorder = Recorder(hub)
    hub.states.set("sensor.bay_1_status", "Faulted", timestamp=manual.time())
    await manual.advance(299)
    assert recorder.calls == []
    await manual.advance(1)
    assert [call.data for call in recorder.calls] == [{"step": "first"}]
    await manual.advance(89)
    assert len(recorder.calls) == 1
    await manual.advance(1)
    assert [call.data for call in recorder.calls] == [{"step": "first"}, {"step": "second"}]


async def test_declared_services_are_what_set_up_registers(started: Started) -> None:
    """Every service a real hub registers is one check-config knows it provides."""
    hub, _manual = await started(
        """
        notify_webhook:
          - name: hook
            url: http://127.0.0.1:9/hook
        notify_ntfy:
          - name: phone
            topic: evhub-test
        notify_email:
          - name: mail
            host: 127.0.0.1
            sender: hub@example.com
            recipients: [ops@example.com]
        firmware: {}
        """
    )
    plugins = plugin_registry(hub)
    assert hub.config is not None
    provided = provided_services(hub.config, plugins)
    registered = {
        f"{domain}.{service}"
        for domain, services in hub.services.services().items()
        for service in services
    }
    unknown = {name for name in registered if service_problem(name, provided) is not None}
    assert unknown == set()
    for name in ("notify.hook", "notify.phone", "notify.mail", "automation.trigger", "alert.raise"):
        assert name in registered
    # And nothing is declared that is not there (exact names only; "domain.*" is open).
    exact = {name for name in provided if not name.endswith(".*")}
    assert exact <= registered
