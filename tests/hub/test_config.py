"""Tests for YAML configuration loading and schema errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from hub.config import (
    ConfigError,
    NodeDict,
    NodeList,
    NodeStr,
    find_line,
    load_config_file,
    load_yaml,
    validate_section,
)

HTTP_SCHEMA = vol.Schema(
    {
        vol.Required("server_port"): int,
        vol.Optional("server_host", default="0.0.0.0"): str,
        vol.Optional("api_password"): vol.All(str, vol.Length(min=12)),
    }
)

OCPP_SCHEMA = vol.Schema(
    {
        vol.Required("chargers"): [
            {vol.Required("id"): str, vol.Optional("password"): vol.All(str, vol.Length(min=8))}
        ],
        vol.Optional("ports"): [int],
    }
)


def write(path: Path, text: str) -> Path:
    """Write dedented text to path, creating parent dirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_errors(config_dir: Path, key: str, schema: vol.Schema) -> list[str]:
    """Load configuration.yaml and return the section's errors as strings."""
    config = load_config_file(config_dir)
    validated, errors = validate_section(schema, config.get(key), key, config)
    assert validated is None
    return [str(error) for error in errors]


def raised(path: Path, config_dir: Path | None = None) -> ConfigError:
    """Return the ConfigError that loading path raises."""
    with pytest.raises(ConfigError) as info:
        load_yaml(path, config_dir)
    return info.value


def test_nodes_keep_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path / "configuration.yaml",
        """
        # a comment
        http:
          server_port: 8300
          server_host: localhost
        ocpp:
          chargers:
            - id: cp-1
            - id: cp-2
        """,
    )
    config = load_config_file(tmp_path)

    assert isinstance(config, NodeDict)
    assert config.key_lines == {"http": 2, "ocpp": 5}
    http = config["http"]
    assert isinstance(http, NodeDict)
    assert (http.__config_file__, http.__line__) == ("configuration.yaml", 3)
    assert http.key_lines == {"server_port": 3, "server_host": 4}
    assert http["server_port"] == 8300
    assert type(http["server_port"]) is int
    host = http["server_host"]
    assert isinstance(host, NodeStr)
    assert host == "localhost"
    assert (host.__config_file__, host.__line__) == ("configuration.yaml", 4)
    chargers = config["ocpp"]["chargers"]
    assert isinstance(chargers, NodeList)
    assert chargers.__line__ == 7
    assert chargers.item_lines == [7, 8]
    assert chargers[1]["id"].__line__ == 8


def test_lines_are_the_same_without_libyaml(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "a:\n  b: [x, {c: y}]\n  d: |\n    text\n  e: z\n")
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import yaml
        if len(sys.argv) > 2:
            del yaml.CSafeLoader
        from hub.config import load_config_file
        a = load_config_file(Path(sys.argv[1]))["a"]
        print(a.key_lines, a["b"].item_lines, a["b"][1]["c"].__line__, a["e"].__line__)
        """
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), *extra],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[2],
        ).stdout
        for extra in ([], ["pure"])
    ]

    assert outputs[0] == outputs[1] == "{'b': 2, 'd': 3, 'e': 5} [2, 2] 2 5\n"


def test_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "# nothing yet\n")

    config = load_config_file(tmp_path)

    assert config == {}
    assert isinstance(config, NodeDict)


def test_missing_configuration_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path)

    assert info.value.file == "configuration.yaml"
    assert str(info.value) == f"configuration.yaml: no configuration.yaml in {tmp_path}"


def test_secret_from_the_same_directory(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "api_password: hunter2hunter2\nport: 8300\n")
    write(
        tmp_path / "configuration.yaml",
        "http:\n  server_port: !secret port\n  api_password: !secret api_password\n",
    )

    http = load_config_file(tmp_path)["http"]

    assert http == {"server_port": 8300, "api_password": "hunter2hunter2"}
    assert http["api_password"].__line__ == 3
    assert http["api_password"].__config_file__ == "configuration.yaml"
    assert http["api_password"].__secret__ == "api_password"


def test_secret_from_the_root_in_an_included_file(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "password: from-root\nshared: root-shared\n")
    write(tmp_path / "ocpp" / "secrets.yaml", "shared: sub-shared\n")
    write(
        tmp_path / "ocpp" / "deep" / "chargers.yaml", "- id: cp-1\n  password: !secret password\n"
    )
    write(
        tmp_path / "configuration.yaml",
        "ocpp:\n  chargers: !include ocpp/deep/chargers.yaml\n  extra: !include ocpp/extra.yaml\n",
    )
    write(tmp_path / "ocpp" / "extra.yaml", "!secret shared\n")

    ocpp = load_config_file(tmp_path)["ocpp"]

    assert ocpp["chargers"][0]["password"] == "from-root"
    assert ocpp["extra"] == "sub-shared"


def test_secret_lookup_stops_at_the_config_dir(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "password: above-the-config-dir\n")
    config_dir = tmp_path / "config"
    write(config_dir / "configuration.yaml", "http:\n  api_password: !secret password\n")

    with pytest.raises(ConfigError) as info:
        load_config_file(config_dir)

    assert str(info.value) == "configuration.yaml:2: no secrets.yaml found for secret 'password'"


def test_missing_secret_names_file_line_and_secret(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "other: value\n")
    write(tmp_path / "sub" / "charger.yaml", "id: cp-1\npassword: !secret cp1_password\n")
    write(tmp_path / "configuration.yaml", "charger: !include sub/charger.yaml\n")

    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path)

    error = info.value
    assert (error.file, error.line) == ("sub/charger.yaml", 2)
    assert str(error) == (
        "sub/charger.yaml:2: secret 'cp1_password' is not defined in secrets.yaml"
    )


def test_secret_value_is_never_shown_in_errors(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "api: short\nport: not-a-port\n")
    write(
        tmp_path / "configuration.yaml",
        "http:\n  server_port: !secret port\n  api_password: !secret api\n",
    )

    errors = load_errors(tmp_path, "http", HTTP_SCHEMA)

    assert errors == [
        "configuration.yaml:2: http.server_port: expected a whole number, got <secret port>",
        "configuration.yaml:3: http.api_password: must be at least 12 characters long, "
        "got <secret api>",
    ]


def test_secret_is_hidden_even_when_the_validator_quotes_it(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "token: s3cr3t-t0ken\n")
    write(tmp_path / "configuration.yaml", "notify:\n  token: !secret token\n")

    def no_tokens(value: Any) -> Any:
        raise vol.Invalid(f"token {value} was revoked")

    errors = load_errors(tmp_path, "notify", vol.Schema({"token": no_tokens}))

    assert errors == [
        "configuration.yaml:2: notify.token: token <secret token> was revoked, got <secret token>"
    ]
    assert "s3cr3t" not in " ".join(errors)


def test_include_keeps_the_included_files_lines(tmp_path: Path) -> None:
    write(tmp_path / "http.yaml", "# http settings\nserver_port: abc\n")
    write(tmp_path / "configuration.yaml", "hub:\n  name: Depot\nhttp: !include http.yaml\n")

    config = load_config_file(tmp_path)

    assert config["http"] == {"server_port": "abc"}
    assert config["http"].__config_file__ == "http.yaml"
    errors = load_errors(tmp_path, "http", HTTP_SCHEMA)
    assert errors == ["http.yaml:2: http.server_port: expected a whole number, got 'abc'"]


def test_include_of_a_missing_file(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "hub:\n  name: Depot\nhttp: !include nope.yaml\n")

    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path)

    assert str(info.value) == "configuration.yaml:3: included file not found: nope.yaml"


def test_include_loop(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "b: !include b.yaml\n")
    write(tmp_path / "b.yaml", "a: !include a.yaml\n")

    error = raised(tmp_path / "a.yaml")

    assert (error.file, error.line) == ("b.yaml", 1)
    assert "include loop" in error.message


def test_include_dir_named(tmp_path: Path) -> None:
    write(tmp_path / "chargers" / "west.yaml", "id: cp-west\n")
    write(tmp_path / "chargers" / "east.yaml", "id: cp-east\n")
    write(tmp_path / "chargers" / "row2" / "north.yaml", "- a\n- b\n")
    write(tmp_path / "chargers" / ".hidden.yaml", "id: hidden\n")
    write(tmp_path / "chargers" / ".old" / "south.yaml", "id: old\n")
    write(tmp_path / "chargers" / "notes.txt", "not yaml\n")
    write(tmp_path / "chargers" / "secrets.yaml", "pw: x\n")
    write(tmp_path / "configuration.yaml", "hub:\nchargers: !include_dir_named chargers\n")

    chargers = load_config_file(tmp_path)["chargers"]

    assert list(chargers) == ["east", "north", "west"]
    assert chargers == {"east": {"id": "cp-east"}, "north": ["a", "b"], "west": {"id": "cp-west"}}
    assert chargers["north"].__config_file__ == "chargers/row2/north.yaml"
    assert chargers.key_lines["west"] == 2


def test_include_dir_named_of_a_missing_dir(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "chargers: !include_dir_named chargers\n")

    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path)

    assert str(info.value) == "configuration.yaml:1: included directory not found: chargers"


def test_env_var_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVHUB_TEST_HOST", "10.0.0.5")
    write(tmp_path / "conf.yaml", "host: !env_var EVHUB_TEST_HOST 127.0.0.1\n")

    assert load_yaml(tmp_path / "conf.yaml") == {"host": "10.0.0.5"}


def test_env_var_unset_uses_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVHUB_TEST_HOST", raising=False)
    write(tmp_path / "conf.yaml", "host: !env_var EVHUB_TEST_HOST 127.0.0.1\n")

    host = load_yaml(tmp_path / "conf.yaml")["host"]

    assert host == "127.0.0.1"
    assert host.__line__ == 1


def test_env_var_unset_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVHUB_TEST_HOST", raising=False)
    write(tmp_path / "conf.yaml", "a: 1\nhost: !env_var EVHUB_TEST_HOST\n")

    error = raised(tmp_path / "conf.yaml")

    assert str(error) == "conf.yaml:2: environment variable EVHUB_TEST_HOST is not set"


def test_duplicate_key(tmp_path: Path) -> None:
    write(tmp_path / "conf.yaml", "http:\n  server_port: 1\n  server_host: a\n  server_port: 2\n")

    error = raised(tmp_path / "conf.yaml")

    assert (error.file, error.line) == ("conf.yaml", 4)
    assert "duplicate key 'server_port'" in error.message


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    write(
        tmp_path / "conf.yaml",
        "base: &base\n  power: 11\n  phases: 3\ncp:\n  <<: *base\n  power: 22\n",
    )

    assert load_yaml(tmp_path / "conf.yaml")["cp"] == {"power": 22, "phases": 3}


def test_yaml_syntax_error_has_the_line(tmp_path: Path) -> None:
    write(tmp_path / "conf.yaml", "http:\n  server_port: 1\n server_host: a\n")

    error = raised(tmp_path / "conf.yaml")

    assert (error.file, error.line) == ("conf.yaml", 3)
    assert error.message


def test_unknown_tag_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "conf.yaml", "a: 1\nb: !python/object 1\n")

    error = raised(tmp_path / "conf.yaml")

    assert (error.file, error.line) == ("conf.yaml", 2)


def test_file_outside_the_config_dir_is_shown_in_full(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere" / "conf.yaml", "a: [1\n")

    error = raised(tmp_path / "elsewhere" / "conf.yaml", tmp_path / "config")

    assert error.file == str(tmp_path / "elsewhere" / "conf.yaml")


def test_validate_section_success(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "http:\n  server_port: 8300\n")
    config = load_config_file(tmp_path)

    assert validate_section(HTTP_SCHEMA, config["http"], "http", config) == (
        {"server_port": 8300, "server_host": "0.0.0.0"},
        [],
    )


def test_validate_section_wrong_type_unknown_and_missing_keys(tmp_path: Path) -> None:
    write(
        tmp_path / "configuration.yaml",
        """
        hub:
          name: Depot
        http:
          server_host: 0.0.0.0
          colour: blue
          api_password: 12
        """,
    )

    errors = load_errors(tmp_path, "http", HTTP_SCHEMA)

    assert sorted(errors) == [
        "configuration.yaml:4: http.server_port: required, but missing",
        "configuration.yaml:5: http.colour: unknown key; expected one of: api_password, "
        "server_host, server_port",
        "configuration.yaml:6: http.api_password: expected text, got 12",
    ]


def test_validate_section_error_fields(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "http:\n\n  server_port: abc\n")
    config = load_config_file(tmp_path)

    _, [error] = validate_section(HTTP_SCHEMA, config["http"], "http", config)

    assert (error.file, error.line, error.key) == ("configuration.yaml", 3, "http.server_port")
    assert error.message == "expected a whole number, got 'abc'"
    assert (
        str(error) == "configuration.yaml:3: http.server_port: expected a whole number, got 'abc'"
    )
    assert error.plain() == (
        "configuration.yaml, line 3: http → server_port: expected a whole number, got 'abc'"
    )


def test_validate_section_list_items(tmp_path: Path) -> None:
    write(
        tmp_path / "configuration.yaml",
        """
        ocpp:
          ports: [9000, "x", 9002]
          chargers:
            - id: cp-1
            - id: cp-2
              password: short
            - id: cp-3
        """,
    )

    errors = load_errors(tmp_path, "ocpp", OCPP_SCHEMA)

    assert sorted(errors) == [
        "configuration.yaml:2: ocpp.ports[1]: expected a whole number, got 'x'",
        "configuration.yaml:6: ocpp.chargers[1].password: must be at least 8 characters long, "
        "got 'short'",
    ]


def test_validate_section_missing_key_in_a_list_item(tmp_path: Path) -> None:
    write(
        tmp_path / "configuration.yaml",
        "ocpp:\n  chargers:\n    - id: cp-1\n    - password: longenough\n",
    )

    errors = load_errors(tmp_path, "ocpp", OCPP_SCHEMA)

    assert errors == ["configuration.yaml:4: ocpp.chargers[1].id: required, but missing"]


def test_validate_section_of_a_scalar(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "hub:\n  name: Depot\n\nhttp: 5\n")

    errors = load_errors(tmp_path, "http", HTTP_SCHEMA)

    assert errors == ["configuration.yaml:4: http: expected a mapping (key: value), got 5"]


def test_validate_section_of_an_empty_key(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "hub:\nhttp:\n")

    errors = load_errors(tmp_path, "http", HTTP_SCHEMA)

    assert errors == ["configuration.yaml:2: http: expected a mapping (key: value), got nothing"]


def test_validate_section_with_a_plain_callable(tmp_path: Path) -> None:
    write(tmp_path / "configuration.yaml", "recorder:\n  keep_days: -1\n")
    config = load_config_file(tmp_path)

    def positive_days(value: Any) -> Any:
        if value["keep_days"] < 1:
            raise vol.Invalid("must be at least 1", path=["keep_days"])
        return value

    _, errors = validate_section(positive_days, config["recorder"], "recorder", config)

    assert [str(error) for error in errors] == [
        "configuration.yaml:2: recorder.keep_days: must be at least 1, got -1"
    ]


def test_find_line_for_a_missing_key_is_the_mappings_line(tmp_path: Path) -> None:
    write(tmp_path / "conf.yaml", "a:\n  b:\n    c: 1\n    d: [x, y]\n")
    data = load_yaml(tmp_path / "conf.yaml")

    assert find_line(data, ["a", "b", "d", 1]) == ("conf.yaml", 4)
    assert find_line(data, ["a", "b", "missing"]) == ("conf.yaml", 3)
    assert find_line(data, ["a"]) == ("conf.yaml", 1)
    assert find_line(5, ["a"]) == (None, None)
