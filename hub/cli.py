"""The ``evhub`` command: run, check-config, --version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub import __version__
from hub.const import CONFIG_FILE

_LOGGER = logging.getLogger("hub")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Everything the hub writes (stores, databases, their journals, the lock) holds personal
# data or credentials: readable by the hub's user only.
PRIVATE_UMASK = 0o077


def setup_logging(level: str) -> None:
    """Readable logs on stderr; colour-free so they read the same in a journal."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    # aiohttp's access log repeats what the API audit log says better.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _config_dir(value: str) -> Path:
    return Path(value).expanduser().resolve()


def _quarter(value: str) -> str:
    from hub.reports import quarter_arg

    return quarter_arg(value)


def _half(value: str) -> str:
    from hub.reports import half_arg

    return half_arg(value)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the evhub command."""
    parser = argparse.ArgumentParser(
        prog="evhub", description="Self-hosted monitoring hub for EV charging infrastructure."
    )
    parser.add_argument("--version", action="version", version=f"evhub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the hub")
    run.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    automation = commands.add_parser("automation", help="inspect automations")
    automation_commands = automation.add_subparsers(dest="automation_command", metavar="ACTION")
    trace = automation_commands.add_parser("trace", help="show the last runs of an automation")
    trace.add_argument("automation_id")
    trace.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")
    trace.add_argument("--json", action="store_true", help="print the traces as JSON")

    user = commands.add_parser("user", help="manage the users of the web interface and API")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION")
    user_add = user_commands.add_parser("add", help="add a user (asks for the password)")
    user_add.add_argument("name")
    user_add.add_argument("--role", choices=["admin", "operator", "viewer"], required=True)
    user_add.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    ban = commands.add_parser("ban", help="addresses banned from password logins")
    ban_commands = ban.add_subparsers(dest="ban_command", metavar="ACTION")
    ban_list = ban_commands.add_parser("list", help="list the banned addresses")
    ban_list.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")
    ban_remove = ban_commands.add_parser(
        "remove", help="lift the ban of an address (run it while the hub is stopped)"
    )
    ban_remove.add_argument("address")
    ban_remove.add_argument(
        "--config", "-c", type=_config_dir, default=Path("."), help="config dir"
    )

    report = commands.add_parser("report", help="reports from the recorder's database")
    report_commands = report.add_subparsers(dest="report_command", metavar="REPORT")
    uptime = report_commands.add_parser("uptime", help="NEVI/CEC uptime report per port")
    uptime.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD or ISO time")
    uptime.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD (inclusive) or time")
    uptime.add_argument("--format", choices=["csv", "json"], default="csv")
    uptime.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")
    from hub.charge_success.cli import add_report_parser

    add_report_parser(report_commands)
    evchart = report_commands.add_parser(
        "evchart", help="EV-ChART modules 2, 3, 4 of a quarter (NEVI, 23 CFR 680.112)"
    )
    evchart.add_argument("--quarter", required=True, type=_quarter, help="e.g. 2026Q3")
    evchart.add_argument(
        "--module", choices=["2", "3", "4"], help="only this module (printed without --output)"
    )
    evchart.add_argument("--output", "-o", type=Path, help="write the CSVs into this dir")
    evchart.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")
    cec = report_commands.add_parser(
        "cec", help="CEC semiannual reliability report of a half-year (and 15-minute data)"
    )
    cec.add_argument("--half", required=True, type=_half, help="e.g. 2026H1")
    cec.add_argument("--intervals", action="store_true", help="the 15-minute interval data too")
    cec.add_argument("--output", "-o", type=Path, help="write the CSVs into this dir")
    cec.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")

    check = commands.add_parser("check-config", help="check the configuration and exit")
    check.add_argument("--config", "-c", type=_config_dir, default=Path("."), help="config dir")

    simulate = commands.add_parser(
        "simulate", help="run virtual OCPP charge points against a central system"
    )
    simulate.add_argument(
        "--url", required=True, help="central system base URL, e.g. ws://127.0.0.1:9000/ocpp"
    )
    simulate.add_argument("--count", type=int, default=1, help="number of charge points")
    simulate.add_argument("--version", choices=["1.6", "2.0.1"], default="1.6", help="OCPP version")
    simulate.add_argument(
        "--scenario",
        default="normal",
        help="idle, normal, fault, offline, reboot, wrong-password or tamper (comma-separated)",
    )
    simulate.add_argument("--password", default=None, help="HTTP Basic auth password")
    simulate.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds"
    )
    simulate.add_argument("--id-prefix", default="SIM-", help="charge point id prefix")
    simulate.add_argument("--speed", type=float, default=1.0, help="time acceleration factor")
    simulate.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def cmd_automation_trace(config_dir: Path, automation_id: str, as_json: bool) -> int:
    """Print the saved traces of an automation, newest last."""
    import json
    from datetime import UTC, datetime

    from hub.automation import read_traces

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


def cmd_user_add(config_dir: Path, name: str, role: str, password_stdin: bool) -> int:
    """Add a user to the config dir's auth store (run it while the hub is stopped)."""
    import getpass

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            print("evhub: the passwords differ", file=sys.stderr)
            return 1

    async def add() -> int:
        from hub.auth import AuthError, AuthManager
        from hub.core import Hub

        hub = Hub(config_dir)
        auth = AuthManager(hub)
        await auth.load()
        try:
            user = await auth.add_user(name, password, role)
        except AuthError as err:
            print(f"evhub: {err}", file=sys.stderr)
            return 1
        await auth.audit_offline("user.add", f"{user.username} ({user.role})")
        await auth.flush()
        print(f"added {user.username} ({user.role})")
        return 0

    return _with_auth_store(
        config_dir, add, "add the user in the web page (or with POST /api/users)"
    )


def _with_auth_store(config_dir: Path, command: Any, instead: str) -> int:
    """Run a command that changes the auth store, holding the config dir (no hub running)."""
    if not config_dir.is_dir():
        print(f"evhub: config dir {config_dir} does not exist", file=sys.stderr)
        return 1
    from hub.util import ConfigDirBusyError, lock_config_dir

    os.umask(PRIVATE_UMASK)
    try:
        held = lock_config_dir(config_dir)
    except ConfigDirBusyError:
        # The running hub would overwrite the store at its next save: the change would be lost.
        print(
            f"evhub: a hub is running on {config_dir}; {instead}, or stop the hub first",
            file=sys.stderr,
        )
        return 1
    with held:
        result: int = asyncio.run(command())
        return result


def cmd_ban_list(config_dir: Path) -> int:
    """Print the addresses banned from password logins, with when each ban ends."""
    from datetime import UTC, datetime

    async def show() -> int:
        from hub.auth import AuthManager
        from hub.core import Hub

        auth = AuthManager(Hub(config_dir))
        await auth.load()
        bans = auth.banned()
        if not bans:
            print("no address is banned")
        for address, until in sorted(bans.items()):
            ends = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
            print(f"{address}\tbanned until {ends}")
        return 0

    if not (config_dir / ".storage").is_dir():
        print("no address is banned")
        return 0
    # Read-only: safe while a hub runs, though it saves bans a few seconds after they start.
    return asyncio.run(show())


def cmd_ban_remove(config_dir: Path, address: str) -> int:
    """Lift the ban of an address; audited when the hub next starts."""

    async def remove() -> int:
        from hub.auth import AuthManager
        from hub.core import Hub

        auth = AuthManager(Hub(config_dir))
        await auth.load()
        if not await auth.unban(address):
            print(f"evhub: {address} is not banned", file=sys.stderr)
            return 1
        await auth.audit_offline("ban.remove", address)
        print(f"unbanned {address}")
        return 0

    return _with_auth_store(
        config_dir,
        remove,
        f"lift it with DELETE /api/bans/{address} as an admin (a token or session works from"
        " a banned address too)",
    )


def cmd_check_config(config_dir: Path) -> int:
    """Print every configuration error; exit status 1 if there is one."""
    from hub.bootstrap import check_config

    errors = check_config(config_dir)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s) in {config_dir / CONFIG_FILE}", file=sys.stderr)
        return 1
    print(f"configuration ok: {config_dir / CONFIG_FILE}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run simulated charge points until SIGINT or SIGTERM (or --duration)."""
    from integrations.ocpp import simulator

    if args.count < 1 or args.speed <= 0:
        print("evhub: --count must be at least 1 and --speed positive", file=sys.stderr)
        return 2
    setup_logging(args.log_level)
    if args.log_level != "debug":
        # The OCPP frames themselves only at debug level.
        simulator.WIRE_LOGGER.setLevel(logging.WARNING)
    try:
        return asyncio.run(
            simulator.simulate_until_signalled(
                args.url,
                args.count,
                args.version,
                args.scenario,
                password=args.password,
                duration=args.duration,
                id_prefix=args.id_prefix,
                speed=args.speed,
            )
        )
    except ValueError as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 2


async def _run(config_dir: Path) -> int:
    from hub.bootstrap import ConfigInvalidError
    from hub.core import Hub
    from hub.util import limit_malloc_arenas, tune_gc_after_start

    # Before the executor and the stores' writer threads exist: a thread's first allocation
    # picks its arena for good.
    limit_malloc_arenas()

    hub = Hub(config_dir)
    hub.install_signal_handlers()
    try:
        try:
            await hub.start()
        except ConfigInvalidError as err:
            for error in err.errors:
                print(f"error: {error}", file=sys.stderr)
            print("evhub: not started, fix the configuration above", file=sys.stderr)
            await hub.stop()
            return 1
        except OSError as err:
            print(f"evhub: could not start: {err}", file=sys.stderr)
            await hub.stop()
            return 1
        # A designed choice: keep collector pauses off the request tail (see hub.util).
        tune_gc_after_start()
        return await hub.wait_stopped()
    finally:
        hub.remove_signal_handlers()


# SQLite files the hub may have made in the config dir before files were private.
_DB_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")


def make_private(config_dir: Path) -> None:
    """Make what an older evhub wrote readable by the hub's user only (.storage, databases)."""
    storage = config_dir / ".storage"
    paths = [config_dir / name for name in os.listdir(config_dir) if name.endswith(_DB_SUFFIXES)]
    if storage.is_dir():
        paths.append(storage)
        for root, dirs, files in os.walk(storage):
            paths += [Path(root, name) for name in (*dirs, *files)]
    for path in paths:
        try:
            if path.is_symlink():
                continue
            mode = 0o700 if path.is_dir() else 0o600
            if path.stat().st_mode & 0o777 != mode:
                os.chmod(path, mode)
        except OSError as err:
            _LOGGER.warning("Cannot make %s private: %s", path, err)


def cmd_run(config_dir: Path, log_level: str) -> int:
    """Run the hub until SIGINT or SIGTERM."""
    if not config_dir.is_dir():
        print(f"evhub: config dir {config_dir} does not exist", file=sys.stderr)
        return 1
    if not (config_dir / CONFIG_FILE).is_file():
        print(
            f"evhub: no {CONFIG_FILE} in {config_dir}; copy config.example.yaml there to start",
            file=sys.stderr,
        )
        return 1
    from hub.util import ConfigDirBusyError, lock_config_dir

    os.umask(PRIVATE_UMASK)

    try:
        held = lock_config_dir(config_dir)
    except ConfigDirBusyError as err:
        print(f"evhub: {err}; one hub per config dir", file=sys.stderr)
        return 1
    setup_logging(log_level)
    _LOGGER.info("evhub %s starting with config dir %s", __version__, config_dir)
    make_private(config_dir)
    with held:
        return asyncio.run(_run(config_dir))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the evhub console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args.config, args.log_level)
    if args.command == "check-config":
        return cmd_check_config(args.config)
    if args.command == "automation" and args.automation_command == "trace":
        return cmd_automation_trace(args.config, args.automation_id, args.json)
    if args.command == "report" and args.report_command == "charge-success":
        from hub.charge_success.cli import cmd_report_charge_success

        return cmd_report_charge_success(args)
    if args.command == "report" and args.report_command == "uptime":
        from hub.uptime.report import cmd_report_uptime

        return cmd_report_uptime(args.config, args.start, args.end, args.format)
    if args.command == "report" and args.report_command == "evchart":
        from hub.reports import cmd_report_evchart

        return cmd_report_evchart(args.config, args.quarter, args.module, args.output)
    if args.command == "report" and args.report_command == "cec":
        from hub.reports import cmd_report_cec

        return cmd_report_cec(args.config, args.half, args.intervals, args.output)
    if args.command == "simulate":
        return cmd_simulate(args)
    if args.command == "user" and args.user_command == "add":
        return cmd_user_add(args.config, args.name, args.role, args.password_stdin)
    if args.command == "ban" and args.ban_command == "list":
        return cmd_ban_list(args.config)
    if args.command == "ban" and args.ban_command == "remove":
        return cmd_ban_remove(args.config, args.address)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
