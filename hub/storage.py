"""Versioned JSON stores in ``<config>/.storage/``, written atomically off the loop.

A store may keep a journal beside its file: JSON lines of idempotent records (an upsert, a
removal) written within a loop iteration of the change, so a change survives the process
being killed long before the next full snapshot; ``sync()`` makes them survive power loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import orjson

from hub.clock import Timer, clock
from hub.const import EVENT_HUB_CLOSE, EVENT_HUB_FINAL_WRITE, STORAGE_DIR
from hub.core import CoreState, Event, Hub, Unsubscribe
from hub.exceptions import StorageError
from hub.util import release_free_memory

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

MigrateFunc = Callable[[int, int, Any], Any]

_MODE_PRIVATE = 0o600
_MODE_PUBLIC = 0o600  # stores hold personal data (names, id tags): none is for other users
_MODE_DIR = 0o700


class Store(Generic[_T]):
    """One JSON document under ``.storage/<key>``, with a version and migrations.

    The file holds ``{"version", "minor_version", "key", "data"}``. Reads and writes run in
    the executor, one at a time and in the order they were asked for.

    With journal=True, records given to append() go to ``<key>.journal.<generation>`` within
    a loop iteration, and load_with_journal() returns those made since the snapshot for the
    owner to replay over it. Each snapshot starts a new generation when its data is taken
    (the file records which) and deletes the older ones once it is on disk.
    """

    def __init__(
        self,
        hub: Hub,
        version: int,
        key: str,
        *,
        minor_version: int = 1,
        migrate: MigrateFunc | None = None,
        private: bool = False,
        journal: bool = False,
    ) -> None:
        self.hub = hub
        self.version = version
        self.minor_version = minor_version
        self.key = key
        self._migrate = migrate
        self._private = private
        self._lock = asyncio.Lock()
        self._data_func: Callable[[], _T] | None = None
        self._timer: Timer | None = None
        self._unsub_final_write: Unsubscribe | None = None
        self._write_task: asyncio.Task[None] | None = None
        # Why writes are refused (a newer version on disk); None until one is found.
        self._refusal: str | None = None
        self._disk_checked = False
        self._journal = _Journal(hub, self.path, private) if journal else None
        # The journal generation of the newest snapshot written: an older one never follows.
        self._snapshot_generation = -1

    def __repr__(self) -> str:
        return f"<Store {self.key} v{self.version}.{self.minor_version}>"

    @property
    def path(self) -> Path:
        """Where the store lives."""
        return self.hub.path(STORAGE_DIR, self.key)

    # Reading

    async def load(self) -> _T | None:
        """Return the stored data, migrated to this version; None if nothing is stored.

        Data waiting for a delayed save is newer than the file, so it is returned instead.
        """
        if self._journal is not None:
            raise StorageError(f"{self.path} has a journal: load it with load_with_journal()")
        data, _records = await self._load()
        return data

    async def load_with_journal(self) -> tuple[_T | None, list[Any]]:
        """Return the snapshot (as load() does) and the journal records made since, in order.

        The owner replays the records over the snapshot; a record is any JSON value it gave
        to append(). A torn last line (a crash in mid-write) is logged and skipped.
        """
        if self._journal is None:
            raise StorageError(f"{self.path} has no journal: load it with load()")
        return await self._load()

    async def _load(self) -> tuple[_T | None, list[Any]]:
        if self._data_func is not None:
            return self._data_func(), []
        journal = self._journal
        async with self._lock:
            raw = await self.hub.run_in_executor(_read_store_file, self.path)
            records: list[Any] = []
            if journal is not None:
                generation = 0 if raw is None else raw[3]
                records = await journal.load(generation)
                self._snapshot_generation = generation
        self._disk_checked = True
        if raw is None:
            return None, records
        version, minor, data, _generation = raw
        if version > self.version:
            self._refusal = (
                f"{self.path}: stored version {version} is newer than {self.version} that this "
                "evhub understands; refusing to read or overwrite it"
            )
            raise StorageError(self._refusal)
        if version == self.version and minor >= self.minor_version:
            return data, records
        if self._migrate is None:
            if version < self.version:
                raise StorageError(
                    f"{self.path}: stored version {version} needs a migration to "
                    f"{self.version} and none is defined"
                )
            # Minor versions are compatible: the next save records the new minor version.
            return data, records
        try:
            migrated = self._migrate(version, minor, data)
            if inspect.isawaitable(migrated):
                migrated = await migrated
        except Exception as err:
            raise StorageError(
                f"{self.path}: migration from version {version}.{minor} to "
                f"{self.version}.{self.minor_version} failed: {err!r}"
            ) from err
        _LOGGER.info(
            "Migrated %s from version %s.%s to %s.%s",
            self.path,
            version,
            minor,
            self.version,
            self.minor_version,
        )
        if journal is None:
            await self.save(migrated)
        # With a journal, the owner's next save writes the migrated data and the records
        # replayed over it: saving the migrated snapshot alone now would drop the records.
        return migrated, records

    # Writing

    async def save(self, data: _T, *, immutable: bool = False) -> None:
        """Write data now; a pending delayed save is dropped, this data being newer.

        With immutable (data nobody will change: frozen entries, a snapshot list) the
        serialisation runs in the executor instead of the loop.
        """
        self._cancel_pending()
        await self._write(data, immutable)

    def delay_save(self, data_func: Callable[[], _T], delay: float = 1.0) -> None:
        """Write data_func() within delay seconds; calls meanwhile share one write.

        The latest data_func wins. The first pending call sets the deadline (a later call
        may only bring it closer), so steady changes cannot postpone the write forever.
        A pending write is also done when the hub fires its final write, and by flush().
        """
        self._data_func = data_func
        if self.hub.state in (CoreState.stopping, CoreState.stopped):
            # The final write may be over already: no timer, write as soon as possible.
            self._cancel_timer()
            self._schedule_write()
            return
        if self._unsub_final_write is None:
            self._unsub_final_write = self.hub.bus.listen(
                EVENT_HUB_FINAL_WRITE, self._on_final_write
            )
        hub_clock = clock(self.hub)
        if self._timer is not None:
            if self._timer.when <= hub_clock.time() + delay:
                return
            self._timer.cancel()
        self._timer = hub_clock.call_later(delay, self._on_timer)

    async def flush(self) -> None:
        """Write a pending delayed save now and wait until every write is on disk."""
        self._cancel_timer()
        self._unsubscribe_final_write()
        data_func, self._data_func = self._data_func, None
        if data_func is not None:
            await self._write(data_func(), True)
        else:
            async with self._lock:
                pass  # wait for a write in flight

    async def remove(self) -> None:
        """Delete the file (and its journal) and drop any pending delayed save."""
        self._cancel_pending()
        async with self._lock:
            await self.hub.run_in_executor(_remove_file, self.path)
            if self._journal is not None:
                await self._journal.remove_before(None)

    def append(self, record: Any) -> None:
        """Add a record to the journal; it reaches the OS within a loop iteration.

        Records must be idempotent (set this entry to X, remove Y): the last snapshot may
        already hold some of those replayed at load. The record is encoded now.
        """
        if self._journal is None:
            raise StorageError(f"{self.path} has no journal")
        try:
            line = _dumps(record, _COMPACT) + b"\n"
        except (TypeError, ValueError) as err:
            raise StorageError(f"cannot serialise a record for {self.path}: {err}") from err
        self._journal.append(line)

    async def sync(self) -> None:
        """Return once every record appended so far is on disk (written and fsync'd).

        Concurrent callers share one write and one fsync. Raises StorageError if the
        journal cannot be written.
        """
        if self._journal is None:
            raise StorageError(f"{self.path} has no journal")
        await self._journal.sync()

    # Internals

    async def _write(self, data: _T, immutable: bool = False) -> None:
        # The data was taken just now: records made from here on go to a new generation,
        # which this snapshot does not hold and so must outlive it.
        generation = None if self._journal is None else self._journal.rotate()
        if immutable:
            # Large stores (a fleet's registries) would stall the loop for tenths of seconds:
            # encode them a slice at a time, yielding between slices. (Not in a thread: a
            # thread holding the GIL makes every loop iteration wait for it.)
            try:
                payload = await _encode_cooperatively(self._document(data, generation))
            except (TypeError, ValueError) as err:
                raise StorageError(f"cannot serialise data for {self.path}: {err}") from err
        else:
            # Serialise on the loop, now: the caller may change data as soon as we yield.
            payload = self._serialize(data, generation)
        async with self._lock:
            if self._refusal is not None:
                raise StorageError(self._refusal)
            if generation is not None and generation < self._snapshot_generation:
                return  # a newer snapshot overtook this one (it was encoded faster)
            if not self._disk_checked:
                version = await self.hub.run_in_executor(_checked_version, self.path)
                self._disk_checked = True
                if version is not None and version > self.version:
                    self._refusal = (
                        f"{self.path}: stored version {version} is newer than {self.version}; "
                        "refusing to overwrite it"
                    )
                    raise StorageError(self._refusal)
            try:
                await self.hub.run_in_executor(_write_atomic, self.path, payload, self._private)
            except OSError as err:
                raise StorageError(f"{self.path}: cannot write: {err}") from err
            if len(payload) >= _LARGE_PAYLOAD:
                # Encoding a fleet's registry leaves megabytes of freed slices in the heap.
                del payload
                release_free_memory()
            if generation is not None and self._journal is not None:
                # The snapshot is durable: the generations it holds can go.
                self._snapshot_generation = generation
                await self._journal.remove_before(generation)

    def _document(self, data: _T, generation: int | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {
            "version": self.version,
            "minor_version": self.minor_version,
            "key": self.key,
        }
        if generation is not None:
            document[_JOURNAL_KEY] = generation
        document["data"] = data
        return document

    def _serialize(self, data: _T, generation: int | None = None) -> bytes:
        try:
            return _dumps(self._document(data, generation), _INDENTED)
        except (TypeError, ValueError) as err:
            raise StorageError(f"cannot serialise data for {self.path}: {err}") from err

    def _on_timer(self) -> None:
        self._timer = None
        self._schedule_write()

    def _on_final_write(self, _event: Event) -> None:
        self._cancel_timer()
        self._unsubscribe_final_write()
        self._schedule_write()

    def _schedule_write(self) -> None:
        # The task reads data_func when it runs, so calls until then share this write.
        if self._write_task is None:
            self._write_task = self.hub.create_task(
                self._write_delayed(), f"delayed save {self.key}"
            )

    async def _write_delayed(self) -> None:
        self._write_task = None
        data_func, self._data_func = self._data_func, None
        if data_func is None:
            return
        # Everything pending is in this write: no timer or final write is needed any more.
        self._cancel_timer()
        self._unsubscribe_final_write()
        try:
            # Delayed saves build their data from immutable entries: serialise off the loop.
            await self._write(data_func(), True)
        except Exception:
            _LOGGER.exception("Error writing %s", self.path)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _unsubscribe_final_write(self) -> None:
        if self._unsub_final_write is not None:
            self._unsub_final_write()
            self._unsub_final_write = None

    def _cancel_pending(self) -> None:
        self._cancel_timer()
        self._unsubscribe_final_write()
        self._data_func = None


# Keys may be str subclasses (names from YAML carry their line): OPT_NON_STR_KEYS takes them.
_COMPACT = orjson.OPT_NON_STR_KEYS
_INDENTED = orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2

# Long lists are encoded this many items at a time, the loop running other work between.
_CHUNK = 100
# A store this large (bytes) gives the allocator's freed memory back once written.
_LARGE_PAYLOAD = 4 * 1024 * 1024
# Loop time one slice of a large encoding may take before it yields.
_SLICE_S = 0.004


def _is_large(value: Any) -> bool:
    return hasattr(value, "json_slice") or (isinstance(value, list) and len(value) > _CHUNK)


def _dumps(value: Any, option: int) -> bytes:
    """Encode as JSON; what orjson refuses (integers beyond 64 bits, lone surrogates in a
    string) is encoded by the standard library instead, never failing a whole store."""
    try:
        return orjson.dumps(value, default=_json_default, option=option)
    except TypeError:
        return json.dumps(_plain(value), ensure_ascii=True, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    """Value as plain JSON types for the standard library: NaN and infinities as null."""
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return _plain(_json_default(value))


async def _encode_cooperatively(document: dict[str, Any]) -> bytes:
    """Encode a store document; long lists (or json_slice objects) a slice at a time."""
    data = document["data"]
    if not isinstance(data, dict) or not any(_is_large(value) for value in data.values()):
        return _dumps(document, _INDENTED)
    head = {key: value for key, value in document.items() if key != "data"}
    parts = [orjson.dumps(head)[:-1], b',"data":{']
    for index, (key, value) in enumerate(data.items()):
        if index:
            parts.append(b",")
        parts.append(orjson.dumps(str(key)) + b":")
        if not _is_large(value):
            parts.append(_dumps(value, _COMPACT))
            continue
        parts.append(b"[")
        began = time.perf_counter()
        for start in range(0, len(value), _CHUNK):
            rows = (
                value.json_slice(start, start + _CHUNK)
                if hasattr(value, "json_slice")
                else value[start : start + _CHUNK]
            )
            if start:
                parts.append(b",")
            parts.append(_dumps(rows, _COMPACT)[1:-1])
            if time.perf_counter() - began >= _SLICE_S:
                await asyncio.sleep(0)
                began = time.perf_counter()
        parts.append(b"]")
    parts.append(b"}}")
    return b"".join(parts)


def _json_default(value: Any) -> Any:
    """Serialise what orjson does not know: objects with as_json/as_dict, sets."""
    as_json = getattr(value, "as_json", None)
    if as_json is not None:
        return as_json()
    as_dict = getattr(value, "as_dict", None)
    if as_dict is not None:
        return as_dict()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot store a {type(value).__name__}")


def _read_store_file(path: Path) -> tuple[int, int, Any, int] | None:
    """Read and check a store file: (version, minor_version, data, journal generation).

    None if missing. Temporary files left by writes this store had in progress when the
    process died are removed first.
    """
    _remove_stale_temp_files(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StorageError(f"{path}: cannot read: {err.strerror or err}") from err
    try:
        document = json.loads(content)
    except json.JSONDecodeError as err:
        raise StorageError(
            f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from err
    except UnicodeDecodeError as err:
        raise StorageError(f"{path}: not UTF-8 text: {err.reason}") from err
    if not isinstance(document, dict):
        raise StorageError(f"{path}: expected a JSON object, found {type(document).__name__}")
    version = document.get("version")
    minor = document.get("minor_version", 1)
    if type(version) is not int or type(minor) is not int:
        raise StorageError(f"{path}: 'version' and 'minor_version' must be integers")
    if "data" not in document:
        raise StorageError(f"{path}: no 'data' key")
    generation = document.get(_JOURNAL_KEY, 0)
    if type(generation) is not int or generation < 0:
        raise StorageError(f"{path}: {_JOURNAL_KEY!r} must be a non-negative integer")
    return version, minor, document["data"], generation


def _checked_version(path: Path) -> int | None:
    """Remove this store's stale temporary files; return the version stored at path."""
    _remove_stale_temp_files(path)
    return _stored_version(path)


def _stored_version(path: Path) -> int | None:
    """Return the version of the file at path, or None if missing or unreadable."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    version = document.get("version") if isinstance(document, dict) else None
    return version if type(version) is int else None


def _write_atomic(path: Path, payload: bytes, private: bool) -> None:
    """Replace path with payload so that a crash leaves either the old or the new file."""
    directory = path.parent
    directory.mkdir(mode=_MODE_DIR, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), _MODE_PRIVATE if private else _MODE_PUBLIC)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    # The rename is durable only once the directory entry is on disk.
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


_TEMP_SUFFIX: Final = ".tmp"
# mkstemp's random part: 8 characters of this alphabet (CPython's _RandomNameSequence).
_TEMP_RANDOM: Final = "[a-z0-9_]{8}"


def _remove_stale_temp_files(path: Path) -> int:
    """Delete ``.<name>.XXXXXXXX.tmp`` files left by writes of this store a crash cut short.

    Only names _write_atomic makes for this very store match: not another store's (whose
    name may start with this one's), nor anything else in the directory.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{_TEMP_RANDOM}{re.escape(_TEMP_SUFFIX)}")
    removed = 0
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return 0
    for name in names:
        if pattern.fullmatch(name) is None:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.parent / name)
            removed += 1
    if removed:
        _LOGGER.info("Removed %d temporary file(s) of interrupted writes of %s", removed, path)
    return removed


# Journals

_JOURNAL_KEY: Final = "journal"
_JOURNAL_INFIX: Final = ".journal."


def _journal_path(path: Path, generation: int) -> Path:
    return path.with_name(f"{path.name}{_JOURNAL_INFIX}{generation}")


def _journal_generations(path: Path) -> list[int]:
    """Return the generations of path's journal files on disk, oldest first."""
    prefix = f"{path.name}{_JOURNAL_INFIX}"
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        rest = name[len(prefix) :] if name.startswith(prefix) else ""
        if rest.isascii() and rest.isdigit():
            found.append(int(rest))
    return sorted(found)


class _Journal:
    """A store's journal, loop side: lines waiting to be written, and callers of sync()."""

    def __init__(self, hub: Hub, path: Path, private: bool) -> None:
        self.hub = hub
        self.path = path
        self._files = _JournalFiles(path, private)
        self._loaded = False
        # New records go to this generation; a snapshot starts the next one.
        self._generation = 0
        # Lines not yet handed to the OS, by generation, in the order they were made.
        self._segments: list[tuple[int, list[bytes]]] = []
        # Records appended, written to the OS and fsync'd, counted since start.
        self._appended = 0
        self._written = 0
        self._synced = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        # One file operation at a time, in the executor.
        self._io = asyncio.Lock()
        hub.bus.listen(EVENT_HUB_CLOSE, self._on_close)

    async def load(self, generation: int) -> list[Any]:
        """Return the records of generation and later; records go to a new one from now."""
        async with self._io:
            records, self._generation = await self.hub.run_in_executor(
                _read_journal, self.path, generation
            )
        self._loaded = True
        return records

    def append(self, line: bytes) -> None:
        """Queue one encoded record (ending in a newline) for the writer."""
        self._check_loaded()
        if self._segments and self._segments[-1][0] == self._generation:
            self._segments[-1][1].append(line)
        else:
            self._segments.append((self._generation, [line]))
        self._appended += 1
        self._kick()

    async def sync(self) -> None:
        """Return once every record appended so far is written and fsync'd."""
        target = self._appended
        if target <= self._synced:
            return
        future: asyncio.Future[None] = self.hub.loop.create_future()
        self._waiters.append((target, future))
        self._kick()
        await future

    def rotate(self) -> int:
        """Start a new generation (a snapshot's data is being taken); return its number."""
        self._check_loaded()
        self._generation += 1
        return self._generation

    async def remove_before(self, generation: int | None) -> None:
        """Delete the generations older than generation (every one with None).

        Called once a snapshot holding them is on disk: lines of theirs not written yet
        need not be.
        """
        self._segments = [
            segment
            for segment in self._segments
            if generation is not None and segment[0] >= generation
        ]
        async with self._io:
            await self.hub.run_in_executor(self._files.remove_before, generation)

    def _check_loaded(self) -> None:
        if not self._loaded:
            raise StorageError(f"{self.path}: load_with_journal() first")

    def _kick(self) -> None:
        # The writer starts at the next loop iteration: records made until then share a write.
        if self._task is None:
            self._task = self.hub.create_task(self._run(), f"journal {self.path.name}")

    async def _run(self) -> None:
        try:
            while self._segments or self._waiters:
                segments, self._segments = self._segments, []
                upto = self._appended
                sync = bool(self._waiters)
                try:
                    async with self._io:
                        await self.hub.run_in_executor(self._files.write, segments, sync)
                except Exception as err:
                    # Kept for the next attempt: the next record, sync() or snapshot. Nobody
                    # may wait forever, whatever went wrong.
                    self._segments[:0] = segments
                    message = f"{self.path}: cannot write the journal: {err}"
                    _LOGGER.error("%s", message, exc_info=not isinstance(err, OSError))
                    self._fail(StorageError(message))
                    return
                self._written = upto
                if sync:
                    self._synced = upto
                    self._resolve(upto)
        finally:
            self._task = None

    def _resolve(self, synced: int) -> None:
        waiting = []
        for target, future in self._waiters:
            if target > synced:
                waiting.append((target, future))
            elif not future.done():
                future.set_result(None)
        self._waiters = waiting

    def _fail(self, error: StorageError) -> None:
        waiters, self._waiters = self._waiters, []
        for _target, future in waiters:
            if not future.done():
                future.set_exception(error)

    def _on_close(self, _event: Event) -> None:
        self.hub.create_task(self._close(), f"close journal {self.path.name}")

    async def _close(self) -> None:
        if self._task is not None:
            await asyncio.wait([self._task])
        async with self._io:
            await self.hub.run_in_executor(self._files.close)


class _OpenJournal:
    """One open journal file."""

    __slots__ = ("dirty", "fd", "size")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.dirty = False


class _JournalFiles:
    """A store's journal files, by generation; used in the executor, one call at a time."""

    def __init__(self, path: Path, private: bool) -> None:
        self.path = path
        self.mode = _MODE_PRIVATE if private else _MODE_PUBLIC
        self.open: dict[int, _OpenJournal] = {}
        # A file was created since the directory was last fsync'd.
        self.directory_dirty = False

    def write(self, segments: list[tuple[int, list[bytes]]], sync: bool) -> None:
        """Append each generation's lines to its file; with sync, fsync what was written."""
        for generation, lines in segments:
            handle = self.open.get(generation) or self._open(generation)
            data = b"".join(lines)
            try:
                _write_all(handle.fd, data)
            except OSError:
                # No partial record may stay for the retry to follow.
                with contextlib.suppress(OSError):
                    os.ftruncate(handle.fd, handle.size)
                raise
            handle.size += len(data)
            handle.dirty = True
        if sync:
            for handle in self.open.values():
                if handle.dirty:
                    os.fsync(handle.fd)
                    handle.dirty = False
            if self.directory_dirty:
                _fsync_directory(self.path.parent)
                self.directory_dirty = False

    def remove_before(self, generation: int | None) -> None:
        """Close and delete the files of generations older than generation (all with None)."""
        for number in list(self.open):
            if generation is None or number < generation:
                os.close(self.open.pop(number).fd)
        for number in _journal_generations(self.path):
            if generation is None or number < generation:
                _journal_path(self.path, number).unlink(missing_ok=True)

    def close(self) -> None:
        """Close every file, fsync'd: the hub stops."""
        self.write([], True)
        for handle in self.open.values():
            os.close(handle.fd)
        self.open.clear()

    def _open(self, generation: int) -> _OpenJournal:
        directory = self.path.parent
        directory.mkdir(mode=_MODE_DIR, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(_journal_path(self.path, generation), flags, self.mode)
        try:
            os.fchmod(fd, self.mode)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A torn line from a crash: end it, so the next record starts a line.
                os.write(fd, b"\n")
                size += 1
        except BaseException:
            os.close(fd)
            raise
        self.directory_dirty = True
        handle = self.open[generation] = _OpenJournal(fd, size)
        return handle


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_journal(path: Path, generation: int) -> tuple[list[Any], int]:
    """Return the records of generation and later, and the generation to write next.

    Older generations are left by a snapshot whose clean-up a crash cut short: the
    snapshot holds them, so they are deleted.
    """
    generations = _journal_generations(path)
    records: list[Any] = []
    for number in generations:
        file = _journal_path(path, number)
        if number < generation:
            file.unlink(missing_ok=True)
            continue
        try:
            content = file.read_bytes()
        except OSError as err:
            raise StorageError(f"{file}: cannot read: {err.strerror or err}") from err
        lines = content.split(b"\n")
        # Every record ends with a newline written with it: text after the last one is
        # what a crash left of a write in progress, whatever it looks like.
        torn = lines.pop()
        for line_number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                records.append(orjson.loads(line))
            except ValueError as err:
                _LOGGER.error("Skipping a bad record in %s, line %d: %s", file, line_number, err)
        if torn:
            _LOGGER.warning(
                "Skipping the torn last line of %s (%d bytes): a write cut short by a crash",
                file,
                len(torn),
            )
    # A fresh generation: never append to a file that may end in a torn line.
    following = max(generation, generations[-1] + 1) if generations else generation
    return records, following
