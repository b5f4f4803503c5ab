"""``evhub report uptime``: the NEVI/CEC uptime report of a config dir's history."""

from __future__ import annotations

import argparse

from hub.commands import CliCommands, add_config_argument
from hub.hookspecs import hookimpl


@hookimpl
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub report uptime``."""
    uptime = commands.add("uptime", "NEVI/CEC uptime report per port", _run, group="report")
    uptime.add_argument(
        "--from", dest="start", help="YYYY-MM-DD or ISO time (default: the last full month)"
    )
    uptime.add_argument("--to", dest="end", help="YYYY-MM-DD (inclusive) or time")
    uptime.add_argument("--format", choices=["csv", "json"], default="csv")
    add_config_argument(uptime)


def _run(args: argparse.Namespace) -> int:
    from integrations.uptime.report import cmd_report_uptime

    return cmd_report_uptime(args.config, args.start, args.end, args.format)
