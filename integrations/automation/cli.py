"""``evhub automation list`` and ``evhub automation trace``, read from a config dir.

Both read the configuration and the traces the hub saved (``.storage/automation.traces``,
written a few seconds after a run), so they work whether the hub runs or not.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    listing = commands.add(
        "list",
        "list the configured automations with their last run",
        lambda args: cmd_automation_list(args.config, args.json),
        group="automation",
        group_help="inspect automations",
    )
    add_config_argument(listing)
    listing.add_argument("--json", action="store_true", help="print the automations as JSON")


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


def _last_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest saved run, with its error (the run's, or the first failed step's)."""
    if not runs:
        return None
    run = max(runs, key=lambda r: r.get("started") or 0.0)
    error = run.get("error") or next(
        (step["error"] for step in run.get("steps", []) if step.get("error")), None
    )
    return {"started": run.get("started"), "outcome": run.get("outcome"), "error": error}


def automation_rows(config_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The configured automations with their last saved run, and the configuration errors."""
    from hub.config import load_config_file
    from hub.const import CONFIG_FILE
    from integrations.automation import DOMAIN, _config_mapping, read_traces, validate_each

    if not (config_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {config_dir}")
    raw = load_config_file(config_dir)
    section = _config_mapping(raw.get(DOMAIN) if isinstance(raw, dict) else None)
    if section is None or section is False:
        section = []
    if not isinstance(section, list):
        return [], [f"{CONFIG_FILE}: {DOMAIN}: expected a list of automations"]
    valid, errors = validate_each(section, log=False)
    rows = []
    for config in valid:
        rows.append(
            {
                "id": config["id"],
                "alias": config.get("alias") or config["id"],
                "enabled": config["enabled"],
                "mode": config["mode"],
                "last_run": _last_run(read_traces(config_dir, config["id"])),
            }
        )
    return rows, [str(error) for error in errors]


def cmd_automation_list(config_dir: Path, as_json: bool) -> int:
    """Print the automations: id, alias, enabled, last run and its error; 1 on config errors."""
    from hub.config import ConfigError

    try:
        rows, errors = automation_rows(config_dir)
    except (ConfigError, OSError, ValueError) as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows and not errors:
        print("no automations configured")
    elif rows:
        table = [("ID", "ALIAS", "ENABLED", "LAST RUN", "RESULT", "ERROR")]
        for row in rows:
            last = row["last_run"] or {}
            started = last.get("started")
            table.append(
                (
                    row["id"],
                    _printable(row["alias"]),
                    "yes" if row["enabled"] else "no",
                    datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
                    if started
                    else "never",
                    str(last.get("outcome") or "-"),
                    _printable(str(last.get("error") or "")),
                )
            )
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        for line in table:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
