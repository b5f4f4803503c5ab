"""CLI commands integrations add: a group nests under an existing command, never a core one."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from hub.commands import ATTR_RUN, CliCommands, CommandExistsError


def _parser() -> tuple[argparse.ArgumentParser, CliCommands]:
    parser = argparse.ArgumentParser(prog="evhub")
    commands = CliCommands(parser.add_subparsers(dest="command"))
    simulate = commands.add("simulate", "OCPP charge points", lambda args: 10)
    simulate.add_argument("--url", required=True)
    nested = commands.add("modbus", "a Modbus wallbox", lambda args: 20, group="simulate")
    nested.add_argument("--profile", required=True)
    return parser, commands


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    args = parser.parse_args(argv)
    result: int = getattr(args, ATTR_RUN)(args)
    return result


def test_a_group_nests_under_an_existing_command() -> None:
    parser, _ = _parser()
    assert _run(parser, ["simulate", "--url", "ws://x"]) == 10
    assert _run(parser, ["simulate", "modbus", "--profile", "keba"]) == 20
    # The command's own required option is still required when it runs by itself.
    with pytest.raises(SystemExit):
        _run(parser, ["simulate"])
    with pytest.raises(SystemExit):
        _run(parser, ["simulate", "modbus"])


def test_a_command_named_like_a_group_is_refused() -> None:
    _, commands = _parser()
    with pytest.raises(CommandExistsError):
        commands.add("simulate", "again", lambda args: 0)
    with pytest.raises(CommandExistsError):
        commands.add("modbus", "again", lambda args: 0, group="simulate")


def test_nothing_nests_under_a_core_command() -> None:
    parser = argparse.ArgumentParser(prog="evhub")
    subparsers = parser.add_subparsers(dest="command")
    subparsers.add_parser("backup")
    commands = CliCommands(subparsers)
    with pytest.raises(CommandExistsError, match="'evhub backup' is the core's"):
        commands.add("cloud", "to the cloud", lambda args: 0, group="backup")


def test_a_core_command_parses_without_importing_an_integration(tmp_path: Path) -> None:
    from hub.cli import CORE_COMMANDS, build_parser

    core = build_parser(integrations=False)
    assert core._subparsers is not None
    (choices,) = [a.choices for a in core._subparsers._group_actions if a.choices]
    assert set(choices) == CORE_COMMANDS
    probe = (
        "import sys; from hub.cli import main; code = main(sys.argv[1:]);"
        " print(sorted(m for m in sys.modules if m.split('.')[0] == 'integrations'));"
        " sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "user", "list", "-c", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "does not exist" in result.stderr
    assert result.stdout.strip() == "[]"


def test_a_core_command_without_its_action_shows_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "token"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "report" in result.stdout  # the integrations' commands too
    assert "token" in result.stdout
