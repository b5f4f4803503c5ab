"""CLI commands integrations add: a group nests under an existing command."""

from __future__ import annotations

import argparse

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
