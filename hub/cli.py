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


# The commands of the core. An integration adds none under them (hub.commands), so they parse
# without importing every integration: `evhub user list` takes 0.1 s instead of 0.8.
CORE_COMMANDS = frozenset(
    {"run", "user", "ban", "token", "unban", "backup", "restore", "check-config"}
)


def build_parser(integrations: bool = True) -> argparse.ArgumentParser:
    """Return the argument parser of the evhub command; without integrations, the core's
    commands only (what a core command needs to parse)."""
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
    _add_user_commands(user_commands)

    ban = commands.add_parser("ban", help="addresses banned from password logins")
    ban_commands = ban.add_subparsers(dest="ban_command", metavar="ACTION")
    ban_list = ban_commands.add_parser("list", help="list the banned addresses")
    add_config_argument(ban_list)
    ban_remove = ban_commands.add_parser(
        "remove", help="lift the ban of an address (run it while the hub is stopped)"
    )
    ban_remove.add_argument("address", type=address_arg)
    add_config_argument(ban_remove)
    _add_admin_commands(commands)

    check = commands.add_parser("check-config", help="check the configuration and exit")
    add_config_argument(check)

    if integrations:
        _add_integration_commands(commands)
    return parser


def address_arg(text: str) -> str:
    """argparse type: an IP address, written as the hub keys its bans (IPv4-mapped as IPv4)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _add_user_commands(
    user_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """``evhub user list|delete|passwd`` (beside ``user add``)."""
    user_list = user_commands.add_parser("list", help="list the users (safe while the hub runs)")
    add_config_argument(user_list)
    user_list.add_argument("--json", action="store_true", help="print the users as JSON")
    user_list.set_defaults(**{ATTR_RUN: lambda args: cmd_user_list(args.config, args.json)})

    user_delete = user_commands.add_parser(
        "delete", help="delete a user with their sessions and tokens (hub stopped)"
    )
    user_delete.add_argument("name", help="the user's name (or id)")
    user_delete.add_argument("--yes", action="store_true", help="delete without asking")
    add_config_argument(user_delete)
    user_delete.set_defaults(
        **{ATTR_RUN: lambda args: cmd_user_delete(args.config, args.name, args.yes)}
    )

    user_passwd = user_commands.add_parser(
        "passwd", help="set a user's password, ending their sessions and tokens (hub stopped)"
    )
    user_passwd.add_argument("name", help="the user's name (or id)")
    user_passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add_config_argument(user_passwd)
    user_passwd.set_defaults(
        **{ATTR_RUN: lambda args: cmd_user_passwd(args.config, args.name, args.password_stdin)}
    )


def _add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``evhub token create|list|revoke``, ``evhub unban``, ``evhub backup``, ``evhub restore``."""
    token = commands.add_parser("token", help="long-lived access tokens for the API")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION")
    create = token_commands.add_parser(
        "create", help="make a token for a user and print it (once) (hub stopped)"
    )
    create.add_argument("name", help="what the token is for, e.g. grafana")
    create.add_argument("--user", required=True, help="whose token it is: it has their role")
    create.add_argument(
        "--lifespan-days", type=float, help="expire after this many days (default: until revoked)"
    )
    add_config_argument(create)
    create.set_defaults(
        **{
            ATTR_RUN: lambda args: cmd_token_create(
                args.config, args.name, args.user, args.lifespan_days
            )
        }
    )
    token_list = token_commands.add_parser(
        "list", help="list the tokens, never their values (safe while the hub runs)"
    )
    token_list.add_argument("--user", help="only this user's tokens")
    token_list.add_argument("--json", action="store_true", help="print the tokens as JSON")
    add_config_argument(token_list)
    token_list.set_defaults(
        **{ATTR_RUN: lambda args: cmd_token_list(args.config, args.user, args.json)}
    )
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id (hub stopped)")
    revoke.add_argument("token_id", help="the id `evhub token list` shows")
    add_config_argument(revoke)
    revoke.set_defaults(**{ATTR_RUN: lambda args: cmd_token_revoke(args.config, args.token_id)})

    unban = commands.add_parser(
        "unban", help="lift the ban of an address, as `ban remove` (hub stopped)"
    )
    unban.add_argument("address", type=address_arg)
    add_config_argument(unban)
    unban.set_defaults(**{ATTR_RUN: lambda args: cmd_ban_remove(args.config, args.address)})

    backup = commands.add_parser(
        "backup", help="archive the config dir, its stores and databases (while the hub runs too)"
    )
    add_config_argument(backup)
    backup.add_argument(
        "--output", "-o", type=Path, help="the archive to write (default: evhub-backup-TIME.tar.gz)"
    )
    backup.set_defaults(**{ATTR_RUN: lambda args: cmd_backup(args.config, args.output)})
    restore = commands.add_parser(
        "restore", help="restore a backup archive into a config dir (hub stopped)"
    )
    restore.add_argument("archive", type=Path, help="an archive `evhub backup` wrote")
    add_config_argument(restore)
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore into a config dir that is not empty (its files are moved aside first)",
    )
    restore.set_defaults(
        **{ATTR_RUN: lambda args: cmd_restore(args.archive, args.config, args.force)}
    )


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
        from hub.auth import AuthError

        auth = await _read_auth(config_dir)
        try:
            user = await auth.add_user(name, password, role)
        except AuthError as err:
            return await _refused(auth, "user.add", name[:64], err)
        await auth.audit_offline("user.add", f"{user.username} ({user.role})")
        await auth.flush()
        print(f"added {user.username} ({user.role})")
        return 0

    return _with_auth_store(
        config_dir, add, "add the user in the web page (or with POST /api/users)"
    )


def _config_dir_missing(config_dir: Path) -> bool:
    """Whether the config dir does not exist (said on stderr)."""
    if config_dir.is_dir():
        return False
    print(f"evhub: config dir {config_dir} does not exist", file=sys.stderr)
    return True


def _with_auth_store(config_dir: Path, command: Any, instead: str) -> int:
    """Run a command that changes the auth store, holding the config dir (no hub running)."""
    if _config_dir_missing(config_dir):
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
        auth = await _read_auth(config_dir)
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
        auth = await _read_auth(config_dir)
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


def _when(ts: float | None, never: str = "never") -> str:
    """A time as the commands print it: ISO 8601 in UTC, to the second."""
    from datetime import UTC, datetime

    if ts is None:
        return never
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _printable(text: str) -> str:
    """Text safe to print to a terminal (a token name may hold control characters)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)
    ]
    for row in (headers, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _find_user(auth: Any, name: str) -> Any:
    """The user of a name (case-insensitive) or an id; None if there is none."""
    return auth.find_user(name) or auth.get_user(name)


async def _read_auth(config_dir: Path) -> Any:
    """The auth store as on disk: safe to read while a hub runs (stores are replaced whole),
    to change only under _with_auth_store."""
    from hub.auth import AuthManager

    auth = AuthManager(Hub(config_dir))
    await auth.load()
    return auth


async def _refused(auth: Any, action: str, target: str, reason: object) -> int:
    """Audit a refused change and say why on stderr; the exit status (1)."""
    await auth.audit_offline(action, target, f"error: {reason}")
    print(f"evhub: {reason}", file=sys.stderr)
    return 1


async def _user_or_refuse(auth: Any, name: str, action: str, target: str) -> Any:
    """The user of a name or id; None, audited and said on stderr, if there is none."""
    user = _find_user(auth, name)
    if user is None:
        await auth.audit_offline(action, target, "error: no such user")
        print(f"evhub: {_no_user(name)}", file=sys.stderr)
    return user


def cmd_user_list(config_dir: Path, as_json: bool) -> int:
    """Print the users with their role, when they were made and how many tokens they have."""
    if _config_dir_missing(config_dir):
        return 1

    async def show() -> int:
        import json

        auth = await _read_auth(config_dir)
        users = sorted(auth.users.values(), key=lambda u: u.created_at)
        rows = [{**u.as_public(), "tokens": len(auth.user_tokens(u.id))} for u in users]
        if as_json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("no users yet: add the first admin with `evhub user add NAME --role admin`")
        else:
            _print_table(
                ("USERNAME", "ROLE", "CREATED", "TOKENS", "ID"),
                [
                    (r["username"], r["role"], _when(r["created_at"]), str(r["tokens"]), r["id"])
                    for r in rows
                ],
            )
        return 0

    return asyncio.run(show())


def _no_user(name: str) -> str:
    return f"no user {name[:64]!r} (`evhub user list` shows them)"


def cmd_user_delete(config_dir: Path, name: str, yes: bool) -> int:
    """Delete a user with their sessions and tokens; never the last admin."""
    if not yes and not sys.stdin.isatty():
        print("evhub: add --yes to delete a user without being asked", file=sys.stderr)
        return 1

    async def delete() -> int:
        from hub.auth import AuthError

        auth = await _read_auth(config_dir)
        user = await _user_or_refuse(auth, name, "user.delete", name[:64])
        if user is None:
            return 1
        if not yes:
            prompt = f"delete {user.username} ({user.role}) with their sessions and tokens? [y/N] "
            answer = await asyncio.get_running_loop().run_in_executor(None, input, prompt)
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        tokens = len(auth.user_tokens(user.id))
        try:
            await auth.remove_user(user.id)
        except AuthError as err:
            return await _refused(auth, "user.delete", user.username, err)
        await auth.audit_offline("user.delete", user.username)
        print(f"deleted {user.username} ({user.role}) and {tokens} token(s)")
        return 0

    return _with_auth_store(
        config_dir, delete, "delete the user in the web page (or with DELETE /api/users/ID)"
    )


def _read_new_password(name: str, password_stdin: bool) -> str | None:
    """A new password from stdin or asked twice on the terminal; None if the two differ."""
    import getpass

    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"new password for {name}: ")
    if getpass.getpass("again: ") != password:
        return None
    return password


def cmd_user_passwd(config_dir: Path, name: str, password_stdin: bool) -> int:
    """Set a user's password; their sessions and tokens end (whoever knew the old one)."""

    async def passwd() -> int:
        from hub.auth import AuthError

        auth = await _read_auth(config_dir)
        user = await _user_or_refuse(auth, name, "user.update", name[:64])
        if user is None:
            return 1
        loop = asyncio.get_running_loop()
        password = await loop.run_in_executor(
            None, _read_new_password, user.username, password_stdin
        )
        if password is None:
            print("evhub: the passwords differ", file=sys.stderr)
            return 1
        tokens = len(auth.user_tokens(user.id))
        try:
            await auth.update_user(user.id, password=password)
        except AuthError as err:
            return await _refused(auth, "user.update", user.username, err)
        await auth.audit_offline("user.update", f"{user.username} (password)")
        print(f"password of {user.username} changed; their sessions and {tokens} token(s) ended")
        return 0

    return _with_auth_store(
        config_dir,
        passwd,
        "set it in the web page (or with PATCH /api/users/ID as an admin)",
    )


def cmd_token_create(
    config_dir: Path, name: str, username: str, lifespan_days: float | None
) -> int:
    """Make a named token for a user; print its value on stdout, this once only."""

    async def create() -> int:
        from hub.auth import AuthError

        auth = await _read_auth(config_dir)
        user = await _user_or_refuse(auth, username, "token.create", name[:100])
        if user is None:
            return 1
        try:
            value, token = await auth.create_token(user, name, lifespan_days)
        except AuthError as err:
            return await _refused(auth, "token.create", name[:100], err)
        await auth.audit_offline("token.create", f"{token.name} ({user.username})")
        print(
            f"token {_printable(token.name)!r} (id {token.id}) of {user.username} ({user.role}),"
            f" expires {_when(token.expires_at)}; shown only now, keep it secret:",
            file=sys.stderr,
        )
        print(value)
        return 0

    return _with_auth_store(
        config_dir, create, "create it in the web page (or with POST /api/tokens as the user)"
    )


def cmd_token_list(config_dir: Path, username: str | None, as_json: bool) -> int:
    """Print the tokens (never their values): id, name, user, created, last used, expiry."""
    if _config_dir_missing(config_dir):
        return 1

    async def show() -> int:
        import json

        auth = await _read_auth(config_dir)
        tokens = sorted(auth.tokens.values(), key=lambda t: t.created_at)
        if username is not None:
            user = _find_user(auth, username)
            if user is None:
                print(f"evhub: {_no_user(username)}", file=sys.stderr)
                return 1
            tokens = [t for t in tokens if t.user_id == user.id]
        names = {u.id: u.username for u in auth.users.values()}
        if as_json:
            rows = [{**t.as_public(), "username": names.get(t.user_id)} for t in tokens]
            print(json.dumps(rows, indent=2))
        elif not tokens:
            print("no tokens")
        else:
            _print_table(
                ("ID", "NAME", "USER", "CREATED", "LAST USED", "EXPIRES"),
                [
                    (
                        t.id,
                        _printable(t.name),
                        names.get(t.user_id, "?"),
                        _when(t.created_at),
                        _when(t.last_used_at),
                        _when(t.expires_at),
                    )
                    for t in tokens
                ],
            )
        return 0

    return asyncio.run(show())


def cmd_token_revoke(config_dir: Path, token_id: str) -> int:
    """Revoke a token by its id."""

    async def revoke() -> int:
        from hub.auth import NotFoundError

        auth = await _read_auth(config_dir)
        try:
            token = await auth.revoke_token(token_id)
        except NotFoundError:
            await auth.audit_offline("token.revoke", token_id[:64], "error: not found")
            print(
                f"evhub: no token {token_id[:64]!r} (`evhub token list` shows the ids)",
                file=sys.stderr,
            )
            return 1
        user = auth.get_user(token.user_id)
        owner = user.username if user is not None else token.user_id
        await auth.audit_offline("token.revoke", f"{token.name} ({owner})")
        print(f"revoked token {_printable(token.name)!r} of {owner}")
        return 0

    return _with_auth_store(
        config_dir, revoke, f"revoke it with DELETE /api/tokens/{token_id[:64]} as an admin"
    )


def cmd_backup(config_dir: Path, output: Path | None) -> int:
    """Write a backup archive of a config dir, consistent while its hub runs."""
    from hub.backup import BackupError, create_backup

    os.umask(PRIVATE_UMASK)
    try:
        result = asyncio.run(create_backup(config_dir, output))
    except BackupError as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {result.path}: {result.summary()}")
    return 0


def cmd_restore(archive: Path, config_dir: Path, force: bool) -> int:
    """Restore a backup archive into a config dir (no hub may run on it)."""
    from hub.backup import BackupError, restore_backup

    os.umask(PRIVATE_UMASK)
    try:
        result = asyncio.run(restore_backup(archive, config_dir, force=force))
    except BackupError as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"restored {result.summary()} into {config_dir}")
    return 0


def cmd_check_config(config_dir: Path) -> int:
    """Print every configuration error; exit status 1 if there is one."""
    from hub.bootstrap import check_config

    errors = check_config(config_dir)
    # Each file's errors together, by line, the files in the order their first error came.
    files: dict[str, int] = {}
    for error in errors:
        files.setdefault(error.file or "", len(files))
    for error in sorted(errors, key=lambda error: (files[error.file or ""], error.line or 0)):
        print(f"error: {error.plain()}", file=sys.stderr)
    if errors:
        count = "1 error" if len(errors) == 1 else f"{len(errors)} errors"
        print(f"{count} in {config_dir / CONFIG_FILE}", file=sys.stderr)
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
    arguments = sys.argv[1:] if argv is None else list(argv)
    # A core command needs no integration's commands to parse (--help lists them all).
    core = bool(arguments) and arguments[0] in {*CORE_COMMANDS, "--version"}
    parser = build_parser(integrations=not core)
    args = parser.parse_args(arguments)
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
    # The help lists every command, the integrations' too.
    (build_parser() if core else parser).print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
