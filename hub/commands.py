"""What an integration adds to the ``evhub`` command (the ``evhub_cli_commands`` hook).

``evhub simulate``, ``evhub report uptime`` and the like come from the integrations that own
them: the CLI asks every installed integration through pluggy, and runs the function the
chosen sub-command names. A command runs without a hub (a report reads the database of a
stopped one), so it is not part of the set-up context.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Final

from hub.exceptions import HubError

CommandFunc = Callable[[argparse.Namespace], int]

# Sub-command groups the core makes, that integrations add to: `evhub report <name>`.
GROUPS: Final = {"report": "reports from the recorder's database"}
ATTR_RUN: Final = "evhub_run"


class CommandExistsError(HubError):
    """Two integrations (or an integration and the core) claim one command name."""


def last_full_month(zone: tzinfo, now: float) -> tuple[str, str]:
    """The first and last day (YYYY-MM-DD) of the last calendar month over by now, in zone.

    What ``evhub report ...`` covers when given no period.
    """
    today = datetime.fromtimestamp(now, zone).date()
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1).isoformat(), last.isoformat()


def config_dir(value: str) -> Path:
    """The --config argument: a config dir, user-expanded and absolute."""
    return Path(value).expanduser().resolve()


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The --config/-c argument every command that reads a config dir takes."""
    parser.add_argument("--config", "-c", type=config_dir, default=Path("."), help="config dir")


class CliCommands:
    """The ``evhub`` sub-command parsers integrations add to."""

    def __init__(self, commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._commands = commands
        self._groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
        self._group_help: dict[str, str] = {}
        self.names: set[str] = set(commands.choices)
        # The core's commands (there before any integration's): nothing nests under them, so
        # the CLI parses them without loading the integrations.
        self._core: frozenset[str] = frozenset(commands.choices)

    def add(
        self,
        name: str,
        help: str,
        run: CommandFunc,
        *,
        group: str | None = None,
        group_help: str | None = None,
    ) -> argparse.ArgumentParser:
        """Add ``evhub [group] name``; return its parser to add arguments to.

        run gets the parsed arguments and returns the exit status. A group other than the
        core's (``report``) is made by the first command in it, with group_help. A group
        named like an existing top-level command nests under it (``evhub simulate modbus``
        beside ``evhub simulate --url ...``): that command still runs without a sub-command,
        its required options required only then. Nest from a hook implementation marked
        ``trylast=True`` so the command exists first. Nothing nests under the core's own
        commands (``evhub user``, ``evhub backup``, ...): CommandExistsError.
        """
        if group is not None and group in self._core:
            raise CommandExistsError(
                f"the command 'evhub {group}' is the core's: integrations add nothing under it"
            )
        if group is not None and group not in GROUPS and group not in self._groups:
            if group in self.names and group not in self._commands.choices:
                raise CommandExistsError(f"the command 'evhub {group}' exists already")
            self._group_help[group] = group_help or group
        full = f"{group} {name}" if group else name
        if full in self.names:
            raise CommandExistsError(f"the command 'evhub {full}' exists already")
        self.names.add(full)
        target = self._commands if group is None else self._group(group)
        parser = target.add_parser(name, help=help)
        parser.set_defaults(**{ATTR_RUN: run})
        return parser

    def _group(self, group: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        found = self._groups.get(group)
        existing = self._commands.choices.get(group)
        if found is None and existing is not None:
            found = self._groups[group] = _nest(existing, group)
        if found is None:
            parser = self._commands.add_parser(
                group, help=GROUPS.get(group) or self._group_help[group]
            )
            self.names.add(group)
            found = self._groups[group] = parser.add_subparsers(
                dest=f"{group}_command", metavar=group.upper()
            )
        return found


def _nest(parser: argparse.ArgumentParser, group: str) -> argparse._SubParsersAction[Any]:
    """Give an existing command sub-commands, keeping it runnable without one.

    argparse checks the parent's required options even when a sub-command was chosen, so
    they become optional and the command's own run checks them instead.
    """
    required = [action for action in parser._actions if action.required and action.option_strings]
    for action in required:
        action.required = False
    run: CommandFunc | None = parser.get_default(ATTR_RUN)

    def checked(args: argparse.Namespace) -> int:
        missing = [action for action in required if getattr(args, action.dest, None) is None]
        if missing:
            names = ", ".join("/".join(action.option_strings) for action in missing)
            parser.error(f"the following arguments are required: {names}")
        return run(args) if run is not None else 2

    parser.set_defaults(**{ATTR_RUN: checked})
    return parser.add_subparsers(dest=f"{group}_command", metavar="KIND")
