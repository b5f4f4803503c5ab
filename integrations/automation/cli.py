"""``evhub automation trace``: the saved runs of an automation, read from a config dir."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from hub.commands import CliCommands, add_config_argument
from hub.hookspecs import hookimpl


@hookimpl
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub automation trace``."""
    trace = commands.add(
        "trace",
        "show the last runs of an automation",
        _run_trace,
        group="automation",
        group_help="inspect automations",
    )
    trace.add_argument("automation_id")
    add_config_argument(trace)
    trace.add_argument("--json", action="store_true", help="print the traces as JSON")


def _run_trace(args: argparse.Namespace) -> int:
    return cmd_automation_trace(args.config, args.automation_id, args.json)


def cmd_automation_trace(config_dir: Path, automation_id: str, as_json: bool) -> int:
    """Print the saved traces of an automation, newest last."""
    from integrations.automation import read_traces

    runs = read_traces(config_dir, automation_id)
    if not runs:
        print(f"no traces of automation {automation_id!r} in {config_dir}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(runs, indent=2))
        return 0
    for run in runs:
        started = datetime.fromtimestamp(run["started"], UTC).isoformat(timespec="seconds")
        took = (run["finished"] or run["started"]) - run["started"]
        print(
            f"run {run['run_id']} at {started}: {run['outcome']} in {took:.3f} s"
            + (f" ({run['error']})" if run.get("error") else "")
        )
        print(f"  trigger: {run['trigger'].get('platform')} {run['trigger'].get('id') or ''}")
        for condition in run["conditions"]:
            print(f"  {condition['path']}: {condition['result']}")
        for step in run["steps"]:
            outcome = f"error {step['error']}" if step["error"] else f"-> {step['result']}"
            print(f"  {step['path']} {step['kind']} {outcome}")
    return 0
