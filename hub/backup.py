"""Backups of a config dir: ``evhub backup`` writes one, ``evhub restore`` puts it back.

An archive is a gzip'd tar: ``manifest.json`` first (format, evhub version, every file with
its size, SHA-256 and mode, every directory with its mode), then the config dir under
``config/`` (configuration.yaml, secrets.yaml, other YAML, certificates, ``.storage``, the
SQLite databases), a recorder database kept outside the config dir under ``external/``, and
a PostgreSQL recorder's ``pg_dump`` under ``postgresql/``.

It is consistent while the hub runs: each SQLite database is copied with SQLite's online
backup API (one read transaction, so a snapshot; the hub's writers are not stopped), never
as a file copy, and its ``-wal``/``-shm`` files are left out (the copy holds their pages).
The stores in ``.storage`` are replaced whole by a rename on every write, so a plain copy
reads one version or the next, never half of one. The OCPP transaction store is fsync'd
before a charger is answered and the recorder's sessions are rebuilt from it at start, so
whatever a charger was told before the backup began is in it.

Restore checks the whole archive (format, version, each file's size and checksum, no paths
outside the config dir, no links or devices) in a staging dir inside the target before it
moves anything, refuses a config dir that is not empty unless forced (and then moves the
old files aside rather than deleting them), and holds the config dir so no hub starts
meanwhile. Files get back the modes they had (secrets.yaml and the stores 0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from hub import __version__
from hub.const import CONFIG_FILE
from hub.exceptions import HubError

FORMAT: Final = "evhub-backup"
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
CONFIG_PREFIX: Final = "config"
EXTERNAL_PREFIX: Final = "external"
PG_MEMBER: Final = "postgresql/recorder.dump"
# Where restore leaves a PostgreSQL dump for the operator to load (never backed up again).
PG_RESTORED_NAME: Final = "recorder-postgresql.dump"
KIND_FILE: Final = "file"
KIND_SQLITE: Final = "sqlite"
KIND_PG_DUMP: Final = "pg_dump"

SQLITE_HEADER: Final = b"SQLite format 3\x00"
# SQLite's side files: the online backup's copy holds their pages.
_SQLITE_SIDE_SUFFIXES: Final = ("-wal", "-shm", "-journal")
# The staging dirs of a backup or restore in progress (or one a crash cut short).
_STAGING_PREFIXES: Final = (".evhub-backup-", ".evhub-restore-")
# The lock of a running hub, and the temporary files of a store write in progress.
_LOCK_FILE: Final = ".lock"
_STORE_TEMP_SUFFIX: Final = ".tmp"
# A store's journal (hub.storage): <key>.journal.<generation>, JSON lines appended.
_JOURNAL_INFIX: Final = ".journal."
_MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024
_CHUNK: Final = 1024 * 1024
# How long a copy waits for a database another process holds with a write lock.
_SQLITE_TIMEOUT: Final = 30.0


class BackupError(HubError):
    """A backup cannot be written, or an archive cannot be restored; the message says why."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of an archive, as the manifest lists it."""

    path: str  # the member name: config/..., external/..., postgresql/...
    kind: str
    size: int
    sha256: str
    mode: int
    restore_to: str | None = None  # external files only: the absolute path they came from

    def as_json(self) -> dict[str, Any]:
        """The manifest's entry."""
        entry: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind,
            "size": self.size,
            "sha256": self.sha256,
            "mode": self.mode,
        }
        if self.restore_to is not None:
            entry["restore_to"] = self.restore_to
        return entry


@dataclass(slots=True)
class BackupResult:
    """What ``create_backup`` wrote."""

    path: Path
    files: list[FileEntry]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many files and which databases."""
        return _summary(self.files)


@dataclass(slots=True)
class RestoreResult:
    """What ``restore_backup`` put back."""

    files: list[FileEntry]
    evhub_version: str
    created_at: str
    moved_aside: Path | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many files, which databases, and when the backup was made."""
        return f"{_summary(self.files)} from a backup made {self.created_at}"


def _summary(files: list[FileEntry]) -> str:
    databases = [PurePosixPath(f.path).name for f in files if f.kind == KIND_SQLITE]
    text = f"{len(files)} file(s)"
    if databases:
        text += f", {len(databases)} SQLite database(s) ({', '.join(databases)})"
    if any(f.kind == KIND_PG_DUMP for f in files):
        text += ", a PostgreSQL dump"
    return text


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_sqlite(source: Path, target: Path) -> str:
    """Copy a live SQLite database with the online backup API; return its quick_check.

    The copy is one snapshot: the backup runs in a single step, inside one read
    transaction, so writers (in WAL mode) go on and the copy sees none of their later pages.
    """
    uri = f"file:{urllib.parse.quote(str(source))}?mode=rw"
    src = sqlite3.connect(uri, uri=True, timeout=_SQLITE_TIMEOUT)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            # The copy is its own file: a rollback journal, nothing left beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()
        finally:
            dst.close()
    finally:
        src.close()
    return str(check[0]) if check else "no answer"


# The recorder's database --------------------------------------------------------------


def recorder_db_url(config_dir: Path) -> tuple[str | None, str | None]:
    """The recorder's db_url as configured (None: the default evhub.db), and a note if unreadable.

    Read from configuration.yaml directly: the core imports no integration.
    """
    from hub.config import ConfigError, load_config_file

    if not (config_dir / CONFIG_FILE).is_file():
        return None, None
    try:
        raw = load_config_file(config_dir)
    except (ConfigError, OSError) as err:
        return None, (
            f"{CONFIG_FILE} cannot be read ({err}): a recorder database configured outside"
            " the config dir is not in the backup"
        )
    section = raw.get("recorder") if isinstance(raw, dict) else None
    if isinstance(section, dict) and isinstance(section.get("db_url"), str):
        return str(section["db_url"]).strip(), None
    return None, None


def _sqlite_path(config_dir: Path, db_url: str) -> Path:
    path = Path(db_url[len("sqlite:///") :])
    return path if path.is_absolute() else config_dir / path


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


# libpq's environment variables for what a postgresql:// URL may carry.
_PG_ENV: Final = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "database": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
}


def pg_dump_arguments(db_url: str) -> tuple[dict[str, str], list[str]]:
    """The environment and options that make pg_dump dump a recorder's db_url.

    The URL's parts go in the environment, not on the command line, where every user of
    the machine could read the password. A search_path (asyncpg takes server settings in
    the URL, libpq does not) becomes ``--schema``: the recorder's tables live there.
    """
    parts = urllib.parse.urlsplit(db_url)
    env: dict[str, str] = {}
    if parts.hostname:
        env["PGHOST"] = urllib.parse.unquote(parts.hostname)
    if parts.port:
        env["PGPORT"] = str(parts.port)
    if parts.username:
        env["PGUSER"] = urllib.parse.unquote(parts.username)
    if parts.password:
        env["PGPASSWORD"] = urllib.parse.unquote(parts.password)
    database = urllib.parse.unquote(parts.path.lstrip("/"))
    if database:
        env["PGDATABASE"] = database
    options: list[str] = []
    for key, value in urllib.parse.parse_qsl(parts.query):
        if key in _PG_ENV:
            env[_PG_ENV[key]] = value
        elif key == "search_path":
            for schema in value.split(","):
                if schema.strip():
                    options += ["--schema", schema.strip()]
    return env, options


def _pg_dump(db_url: str, target: Path) -> None:
    """Dump a PostgreSQL recorder database with pg_dump (custom format) into target."""
    binary = shutil.which("pg_dump")
    if binary is None:
        raise BackupError("pg_dump is not installed")
    env, options = pg_dump_arguments(db_url)
    # The URL decides where to connect, not whatever PG* the caller's shell has set.
    base = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    done = subprocess.run(
        [
            binary,
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={target}",
            *options,
        ],
        env={**base, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(
            "pg_dump of the recorder's PostgreSQL database failed: "
            + (reason[-1] if reason else f"exit status {done.returncode}")
        )


# Writing a backup ----------------------------------------------------------------------


def _default_output(now: float) -> Path:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / f"evhub-backup-{stamp}.tar.gz"


def _is_backup_archive(name: str) -> bool:
    return name.startswith("evhub-backup-") and name.endswith((".tar.gz", ".tgz"))


def _skipped(rel: PurePosixPath, path: Path) -> bool:
    """Files a backup leaves out: the lock, a store write in progress, SQLite side files."""
    name = rel.name
    if rel.parts[0] == ".storage" and (
        name == _LOCK_FILE or (name.startswith(".") and name.endswith(_STORE_TEMP_SUFFIX))
    ):
        return True
    if len(rel.parts) == 1 and (name == PG_RESTORED_NAME or _is_backup_archive(name)):
        return True
    for suffix in _SQLITE_SIDE_SUFFIXES:
        if name.endswith(suffix) and _is_sqlite(path.with_name(name[: -len(suffix)])):
            return True
    return False


def _copy_order(name: str) -> tuple[int, str]:
    """Journals before their snapshots.

    A snapshot taken between the two copies is newer than the journal copied, and holds
    its records; the other way round, a journal deleted after a newer snapshot would leave
    the copied (older) snapshot without them.
    """
    return (0 if _JOURNAL_INFIX in name else 1, name)


def _copy_journal(source: Path, target: Path) -> None:
    """Copy a store's journal up to its last whole line (a record may be half written)."""
    data = source.read_bytes()
    target.write_bytes(data[: data.rfind(b"\n") + 1])


@dataclass(slots=True)
class _Staged:
    files: list[tuple[FileEntry, Path]] = field(default_factory=list)
    dirs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _stage_file(
    source: Path, staged: Path, member: str, staging: _Staged, restore_to: str | None = None
) -> None:
    """Copy one file into the staging dir (SQLite by the online backup API) and list it."""
    staged.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(source.stat().st_mode)
    if _is_sqlite(source):
        try:
            check = copy_sqlite(source, staged)
        except sqlite3.Error as err:
            raise BackupError(f"cannot copy the database {source}: {err}") from err
        if check != "ok":
            staging.notes.append(f"{source} fails SQLite's quick_check ({check}); copied as is")
        kind = KIND_SQLITE
    elif _JOURNAL_INFIX in source.name and source.parent.name == ".storage":
        _copy_journal(source, staged)
        kind = KIND_FILE
    else:
        shutil.copyfile(source, staged)
        kind = KIND_FILE
    entry = FileEntry(member, kind, staged.stat().st_size, _sha256_file(staged), mode, restore_to)
    staging.files.append((entry, staged))


def _stage_config_dir(config_dir: Path, root: Path, leave_out: set[Path]) -> _Staged:
    """Copy the config dir into root (blocking: run it in a thread)."""
    staging = _Staged()
    for directory, dirs, files in os.walk(config_dir):
        here = Path(directory)
        for name in sorted(dirs):
            path = here / name
            rel = PurePosixPath(path.relative_to(config_dir).as_posix())
            if path in leave_out or (len(rel.parts) == 1 and name.startswith(_STAGING_PREFIXES)):
                dirs.remove(name)
            elif path.is_symlink():
                staging.notes.append(f"{rel}: a link to a directory, not followed")
                dirs.remove(name)
            else:
                mode = stat.S_IMODE(path.stat().st_mode)
                staging.dirs.append({"path": f"{CONFIG_PREFIX}/{rel}", "mode": mode})
        dirs.sort()
        for name in sorted(files, key=_copy_order):
            path = here / name
            rel = PurePosixPath(path.relative_to(config_dir).as_posix())
            if path in leave_out or _skipped(rel, path):
                continue
            if not path.is_file():  # a socket, a pipe, a dangling link
                staging.notes.append(f"{rel}: not a regular file, left out")
                continue
            try:
                _stage_file(path, root / CONFIG_PREFIX / rel, f"{CONFIG_PREFIX}/{rel}", staging)
            except FileNotFoundError:
                continue  # removed while we walked (a store's temporary file)
            except PermissionError as err:
                raise BackupError(f"cannot read {path}: {err.strerror}") from err
    return staging


def _write_archive(output: Path, manifest: dict[str, Any], staging: _Staged) -> None:
    """Write the tar.gz: the manifest first, then directories and files (blocking)."""
    temporary = output.with_name(f".{output.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            written = int(time.time())
            payload = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(payload), 0o600, written
            tar.addfile(info, io.BytesIO(payload))
            for directory in staging.dirs:
                info = tarfile.TarInfo(directory["path"])
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, directory["mode"], written
                tar.addfile(info)
            for entry, path in staging.files:
                info = tarfile.TarInfo(entry.path)
                info.size, info.mode = entry.size, entry.mode
                info.mtime = int(path.stat().st_mtime)
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, output)
        _fsync_dir(output.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


async def create_backup(
    config_dir: Path, output: Path | None = None, *, now: float | None = None
) -> BackupResult:
    """Write a backup archive of config_dir (its hub may be running); return what it holds."""
    return await asyncio.to_thread(write_backup, config_dir, output, now)


def write_backup(config_dir: Path, output: Path | None, now: float | None = None) -> BackupResult:
    """Write a backup archive of config_dir (blocking: create_backup runs it in a thread)."""
    config_dir = config_dir.resolve()
    if not config_dir.is_dir():
        raise BackupError(f"config dir {config_dir} does not exist")
    created = time.time() if now is None else now
    output = (output or _default_output(created)).expanduser().absolute()
    if output.exists():
        raise BackupError(f"{output} exists already: choose another --output")
    if not output.parent.is_dir():
        raise BackupError(f"no directory {output.parent} to write {output.name} into")
    try:
        root = Path(tempfile.mkdtemp(prefix=".evhub-backup-", dir=output.parent))
    except OSError as err:
        raise BackupError(f"cannot write into {output.parent}: {err.strerror}") from err
    try:
        leave_out = {
            path.resolve() for path in (root, output, output.with_name(f".{output.name}.tmp"))
        }
        staging = _stage_config_dir(config_dir, root, leave_out)
        postgresql = _stage_recorder(config_dir, root, staging)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "evhub_version": __version__,
            "created_at": datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds"),
            "source": str(config_dir),
            "dirs": staging.dirs,
            "files": [entry.as_json() for entry, _ in staging.files],
            "postgresql": postgresql,
            "notes": staging.notes,
        }
        try:
            _write_archive(output, manifest, staging)
        except OSError as err:
            raise BackupError(f"cannot write {output}: {err}") from err
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return BackupResult(output, [entry for entry, _ in staging.files], staging.notes)


def _stage_recorder(config_dir: Path, root: Path, staging: _Staged) -> dict[str, Any] | None:
    """Add a recorder database the config dir does not hold; the manifest's postgresql part."""
    db_url, note = recorder_db_url(config_dir)
    if note:
        staging.notes.append(note)
    if db_url is not None and db_url.startswith("sqlite:///"):
        path = _sqlite_path(config_dir, db_url)
        if _inside(path, config_dir):
            return None  # copied with the config dir
        if path.is_file():
            member = f"{EXTERNAL_PREFIX}/{path.name}"
            _stage_file(path, root / member, member, staging, str(path))
        else:
            staging.notes.append(f"the recorder's database {path} does not exist yet")
        return None
    if db_url is None or not db_url.startswith(("postgresql://", "postgres://")):
        return None
    if shutil.which("pg_dump") is None:
        staging.notes.append(
            "the recorder's PostgreSQL database is NOT in this backup: pg_dump is not"
            " installed; back it up with pg_dump on a machine that has it"
        )
        return {"included": False}
    target = root / PG_MEMBER
    target.parent.mkdir(parents=True, exist_ok=True)
    _pg_dump(db_url, target)
    entry = FileEntry(PG_MEMBER, KIND_PG_DUMP, target.stat().st_size, _sha256_file(target), 0o600)
    staging.files.append((entry, target))
    return {"included": True, "member": PG_MEMBER}


# Reading an archive --------------------------------------------------------------------


def _version_tuple(version: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in version.split("+", maxsplit=1)[0].split("."))
    except ValueError:
        return None


def _member_path(name: Any) -> PurePosixPath:
    """A member name that stays inside the restore (no absolute path, no ..)."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise BackupError(f"the archive names an unsafe path {str(name)[:100]!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("..", ".", "") for part in name.split("/")):
        raise BackupError(f"the archive names an unsafe path {name[:100]!r}")
    if path.parts[0] not in (CONFIG_PREFIX, EXTERNAL_PREFIX, "postgresql") or len(path.parts) < 2:
        raise BackupError(f"the archive holds an unexpected path {name[:100]!r}")
    return path


def _check_manifest(data: Any) -> tuple[list[FileEntry], list[dict[str, Any]]]:
    """The files and directories of a manifest, every field checked."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError("not an evhub backup (its manifest is not evhub's)")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BackupError("the archive's manifest has no valid format_version")
    if version > FORMAT_VERSION:
        raise BackupError(
            f"the archive is in backup format {version}, newer than this evhub reads"
            f" ({FORMAT_VERSION}): restore it with a newer evhub"
        )
    files: list[FileEntry] = []
    seen: set[str] = set()
    raw_files = data.get("files")
    if not isinstance(raw_files, list):
        raise BackupError("the archive's manifest lists no files")
    for raw in raw_files:
        try:
            entry = FileEntry(
                path=str(_member_path(raw["path"])),
                kind=raw["kind"],
                size=raw["size"],
                sha256=raw["sha256"],
                mode=raw["mode"],
                restore_to=raw.get("restore_to"),
            )
        except (KeyError, TypeError):
            raise BackupError("the archive's manifest has a malformed file entry") from None
        valid = (
            entry.kind in (KIND_FILE, KIND_SQLITE, KIND_PG_DUMP)
            and isinstance(entry.size, int)
            and entry.size >= 0
            and isinstance(entry.sha256, str)
            and len(entry.sha256) == 64
            and isinstance(entry.mode, int)
            and 0 <= entry.mode <= 0o7777
            and entry.path not in seen
        )
        external = entry.path.startswith(EXTERNAL_PREFIX + "/")
        if external and not (
            isinstance(entry.restore_to, str) and Path(entry.restore_to).is_absolute()
        ):
            valid = False
        if not valid:
            raise BackupError(f"the archive's manifest entry for {entry.path!r} is malformed")
        seen.add(entry.path)
        files.append(entry)
    dirs: list[dict[str, Any]] = []
    for raw in data.get("dirs") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("mode"), int):
            raise BackupError("the archive's manifest has a malformed directory entry")
        path = _member_path(raw.get("path"))
        if path.parts[0] != CONFIG_PREFIX:
            raise BackupError(f"the archive holds an unexpected directory {str(path)!r}")
        dirs.append({"path": str(path), "mode": raw["mode"] & 0o777})
    return files, dirs


def _not_empty(config_dir: Path) -> list[str]:
    """What a config dir holds, leaving out a hub's lock and an empty .storage."""
    if not config_dir.exists():
        return []
    found = []
    for entry in config_dir.iterdir():
        if entry.name.startswith(_STAGING_PREFIXES):
            continue
        if entry.name == ".storage" and entry.is_dir() and not entry.is_symlink():
            if any(child.name != _LOCK_FILE for child in entry.iterdir()):
                found.append(entry.name)
        else:
            found.append(entry.name)
    return sorted(found)


def _copy_member(source: IO[bytes], target: Path, entry: FileEntry) -> None:
    """Write one member to target, checking its size and checksum."""
    digest = hashlib.sha256()
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > entry.size:
                break
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if written != entry.size or digest.hexdigest() != entry.sha256:
        raise BackupError(f"the archive is damaged: {entry.path} does not match its checksum")


def _read_archive(archive: Path, staging: Path) -> tuple[dict[str, Any], list[FileEntry]]:
    """Check and unpack an archive into staging; return its manifest and files (blocking)."""
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed below, errors told apart
    except (tarfile.TarError, OSError) as err:
        raise BackupError(f"{archive} is not an evhub backup archive ({err})") from err
    try:
        with tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BackupError(f"{archive} is not an evhub backup (no manifest first)")
            if first.size > _MAX_MANIFEST_BYTES:
                raise BackupError(f"{archive}: the manifest is too large")
            handle = tar.extractfile(first)
            assert handle is not None
            try:
                manifest = json.loads(handle.read())
            except ValueError as err:
                raise BackupError(f"{archive}: the manifest is not JSON ({err})") from err
            files, dirs = _check_manifest(manifest)
            by_path = {entry.path: entry for entry in files}
            dir_paths = {d["path"] for d in dirs}
            found: set[str] = set()
            for member in tar:
                if member.offset == first.offset:
                    continue  # the manifest (iterating starts over from the first member)
                name = member.name.rstrip("/")
                path = _member_path(name)
                if member.isdir():
                    if name not in dir_paths:
                        raise BackupError(f"the archive holds an unlisted directory {name!r}")
                    (staging / path).mkdir(parents=True, exist_ok=True, mode=0o700)
                    continue
                if not member.isfile():
                    raise BackupError(f"the archive holds a link or device {name!r}: refused")
                entry = by_path.get(name)
                if entry is None or name in found:
                    raise BackupError(f"the archive holds an unlisted file {name!r}")
                if member.size != entry.size:
                    raise BackupError(f"the archive is damaged: {name} has the wrong size")
                source = tar.extractfile(member)
                assert source is not None
                _copy_member(source, staging / path, entry)
                found.add(name)
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise BackupError(f"{archive} is damaged or cut short ({err})") from err
    except OSError as err:
        raise BackupError(f"cannot restore {archive}: {err}") from err
    missing = sorted(set(by_path) - found)
    if missing:
        raise BackupError(f"the archive is incomplete: {', '.join(missing[:5])} missing")
    for entry in files:
        if entry.kind == KIND_SQLITE:
            try:
                with contextlib.closing(sqlite3.connect(staging / entry.path)) as db:
                    check = db.execute("PRAGMA quick_check").fetchone()
            except sqlite3.Error as err:
                raise BackupError(f"the database {entry.path} cannot be opened: {err}") from err
            if not check or check[0] != "ok":
                raise BackupError(f"the database {entry.path} is damaged ({check})")
    return manifest, files


# Restoring -----------------------------------------------------------------------------


def _move_aside(config_dir: Path, stamp: str) -> Path:
    """Move what config_dir holds (but a hub's lock) into a sibling dir; return it."""
    aside = config_dir.with_name(f"{config_dir.name}.pre-restore-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = config_dir.with_name(f"{config_dir.name}.pre-restore-{stamp}-{number}")
    try:
        aside.mkdir(mode=0o700)
    except OSError as err:
        raise BackupError(
            f"cannot make {aside} to move the config dir's files aside: {err.strerror}"
        ) from err
    for entry in sorted(config_dir.iterdir()):
        if entry.name.startswith(_STAGING_PREFIXES):
            continue
        if entry.name == ".storage" and entry.is_dir() and not entry.is_symlink():
            (aside / ".storage").mkdir(mode=0o700)
            for child in entry.iterdir():
                if child.name != _LOCK_FILE:
                    shutil.move(child, aside / ".storage" / child.name)
            continue
        shutil.move(entry, aside / entry.name)
    return aside


def _place_external(entry: FileEntry, staged: Path, stamp: str) -> None:
    """Put a database that lived outside the config dir back where it was."""
    assert entry.restore_to is not None
    target = Path(entry.restore_to)
    olds = [target, *(target.with_name(target.name + s) for s in _SQLITE_SIDE_SUFFIXES)]
    for old in olds:
        if old.exists():
            # A stale -wal beside a restored database would be replayed into it.
            old.rename(old.with_name(f"{old.name}.pre-restore-{stamp}"))
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.move(staged, target)
    os.chmod(target, entry.mode & 0o777)


def _install(
    config_dir: Path,
    staging: Path,
    files: list[FileEntry],
    manifest: dict[str, Any],
    force: bool,
) -> tuple[Path | None, list[str]]:
    """Move the checked files from staging into place (blocking)."""
    notes: list[str] = []
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for entry in files:
        if entry.restore_to is None:
            continue
        # Written outside the config dir only where the restored configuration's recorder
        # keeps its database: an archive cannot name any other path.
        db_url, _ = recorder_db_url(staging / CONFIG_PREFIX)
        wanted = None
        if db_url is not None and db_url.startswith("sqlite:///"):
            wanted = _sqlite_path(config_dir, db_url)
        if wanted is None or Path(entry.restore_to) != wanted:
            raise BackupError(
                f"the archive would write {entry.restore_to}, which is not the database the"
                " restored configuration's recorder uses: refused"
            )
        if Path(entry.restore_to).exists() and not force:
            raise BackupError(
                f"{entry.restore_to} (the recorder's database outside the config dir) exists:"
                " add --force to move it aside and restore the backup's"
            )
    aside = _move_aside(config_dir, stamp) if _not_empty(config_dir) else None
    source = staging / CONFIG_PREFIX
    if source.is_dir():
        for entry_path in sorted(source.iterdir()):
            target = config_dir / entry_path.name
            if entry_path.name == ".storage" and target.is_dir():
                for child in entry_path.iterdir():
                    os.replace(child, target / child.name)
            else:
                os.replace(entry_path, target)
    for entry in files:
        member = PurePosixPath(entry.path)
        if member.parts[0] == CONFIG_PREFIX:
            os.chmod(config_dir.joinpath(*member.parts[1:]), entry.mode & 0o777)
        elif member.parts[0] == EXTERNAL_PREFIX:
            _place_external(entry, staging / entry.path, stamp)
            notes.append(f"the recorder's database is back at {entry.restore_to}")
        elif entry.kind == KIND_PG_DUMP:
            dump = config_dir / PG_RESTORED_NAME
            shutil.move(staging / entry.path, dump)
            os.chmod(dump, 0o600)
            notes.append(
                f"the PostgreSQL recorder's dump is at {dump}: load it into the database the"
                f" recorder's db_url names with `pg_restore --clean --if-exists --no-owner"
                f" --dbname URL {dump}` before starting the hub"
            )
    # Deepest first, so a parent's mode never stops setting a child's.
    for member, mode in sorted(manifest_dirs(manifest), key=lambda d: -len(d[0].parts)):
        path = config_dir.joinpath(*member.parts[1:])
        if path.is_dir():
            os.chmod(path, mode)
    storage = config_dir / ".storage"
    if storage.is_dir():
        os.chmod(storage, 0o700)
    postgresql = manifest.get("postgresql")
    if isinstance(postgresql, dict) and not postgresql.get("included"):
        notes.append(
            "the backup does not hold the recorder's PostgreSQL database (pg_dump was missing"
            " when it was made)"
        )
    for walked, _, _ in os.walk(config_dir):
        _fsync_dir(Path(walked))
    return aside, notes


def manifest_dirs(manifest: dict[str, Any]) -> Iterator[tuple[PurePosixPath, int]]:
    """The directories a (checked) manifest lists, with their modes."""
    for raw in manifest.get("dirs") or []:
        yield PurePosixPath(raw["path"]), int(raw["mode"]) & 0o777


async def restore_backup(archive: Path, config_dir: Path, *, force: bool = False) -> RestoreResult:
    """Restore an archive into config_dir; no hub may run on it while it does."""
    held, result = await asyncio.to_thread(_restore, archive, config_dir, force)
    with held:
        # Inside the hold: the entry is in the auth store before any hub can start.
        await _audit_restore(config_dir, archive, result)
    return result


def _restore(archive: Path, config_dir: Path, force: bool) -> tuple[IO[bytes], RestoreResult]:
    """Check and install an archive; return the config dir's lock, still held (blocking)."""
    from hub.util import ConfigDirBusyError, lock_config_dir

    archive = archive.expanduser().absolute()
    config_dir = config_dir.expanduser().absolute()
    if not archive.is_file():
        raise BackupError(f"no backup archive at {archive}")
    if config_dir.exists() and not config_dir.is_dir():
        raise BackupError(f"{config_dir} is not a directory")
    present = _not_empty(config_dir)
    if present and not force:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise BackupError(
            f"{config_dir} is not empty ({shown}): restore into an empty dir, or add --force"
            " to move its files aside first"
        )
    try:
        config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        held = lock_config_dir(config_dir)
    except ConfigDirBusyError:
        raise BackupError(f"a hub is running on {config_dir}: stop it first") from None
    except OSError as err:
        raise BackupError(f"cannot write {config_dir}: {err.strerror}") from err
    try:
        # What an earlier restore a crash cut short left (the lock says none runs now).
        for stale in config_dir.glob(".evhub-restore-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".evhub-restore-", dir=config_dir))
        try:
            manifest, files = _read_archive(archive, staging)
            version = str(manifest.get("evhub_version", "?"))
            made, ours = _version_tuple(version), _version_tuple(__version__)
            if made is not None and ours is not None and made > ours and not force:
                raise BackupError(
                    f"the backup was made by evhub {version}, newer than this evhub"
                    f" ({__version__}): its stores may not be readable; upgrade evhub first"
                    " (or add --force)"
                )
            try:
                aside, notes = _install(config_dir, staging, files, manifest, force)
            except OSError as err:
                raise BackupError(f"cannot restore into {config_dir}: {err}") from err
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        held.close()
        raise
    result = RestoreResult(files, version, str(manifest.get("created_at", "?")), aside, notes)
    if aside is not None:
        result.notes.insert(0, f"the config dir's previous files are in {aside}")
    return held, result


async def _audit_restore(config_dir: Path, archive: Path, result: RestoreResult) -> None:
    """Keep the restore in the restored hub's audit log (fired when it next starts)."""
    from hub.auth import AuthManager
    from hub.core import Hub

    auth = AuthManager(Hub(config_dir))
    await auth.load()
    await auth.audit_offline(
        "backup.restore",
        f"{archive.name} (made {result.created_at} by evhub {result.evhub_version})",
    )
