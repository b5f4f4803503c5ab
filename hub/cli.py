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
from hub.commands import ATTR_RUN, CliCommands, add_config_argument
from hub.const import CONFIG_FILE
from hub.core import Hub
from hub.exceptions import HubError

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


def _add_integration_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Ask every installed integration for its sub-commands (the evhub_cli_commands hook)."""
    from hub.plugins import PluginLoader

    loader = PluginLoader()
    for domain in sorted(loader.available()):
        try:
            loader.load(domain)
        except HubError as err:
            print(f"evhub: integration {domain} left out: {err}", file=sys.stderr)
    loader.pm.hook.evhub_cli_commands(commands=CliCommands(commands))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the evhub command."""
    parser = argparse.ArgumentParser(
        prog="evhub", description="Self-hosted monitoring hub for EV charging infrastructure."
    )
    parser.add_argument("--version", action="version", version=f"evhub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the hub")
    add_config_argument(run)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    user = commands.add_parser("user", help="manage the users of the web interface and API")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION")
    user_add = user_commands.add_parser("add", help="add a user (asks for the password)")
    user_add.add_argument("name")
    user_add.add_argument("--role", choices=["admin", "operator", "viewer"], required=True)
    add_config_argument(user_add)
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    ban = commands.add_parser("ban", help="addresses banned from password logins")
    ban_commands = ban.add_subparsers(dest="ban_command", metavar="ACTION")
    ban_list = ban_commands.add_parser("list", help="list the banned addresses")
    add_config_argument(ban_list)
    ban_remove = ban_commands.add_parser(
        "remove", help="lift the ban of an address (run it while the hub is stopped)"
    )
    ban_remove.add_argument("address")
    add_config_argument(ban_remove)

    check = commands.add_parser("check-config", help="check the configuration and exit")
    add_config_argument(check)

    _add_integration_commands(commands)
    return parser


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


async def _run(config_dir: Path) -> int:
    from hub.bootstrap import ConfigInvalidError, new_hub
    from hub.util import limit_malloc_arenas, tune_gc_after_start

    # Before the executor and the stores' writer threads exist: a thread's first allocation
    # picks its arena for good.
    limit_malloc_arenas()

    hub = new_hub(config_dir)
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
    run = getattr(args, ATTR_RUN, None)
    if run is not None:
        result: int = run(args)
        return result
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
