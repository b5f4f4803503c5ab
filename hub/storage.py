"""Versioned JSON stores in ``<config>/.storage/``, written atomically off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

from hub.const import EVENT_HUB_FINAL_WRITE, STORAGE_DIR
from hub.core import CoreState, Event, Hub, Unsubscribe
from hub.exceptions import StorageError

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

MigrateFunc = Callable[[int, int, Any], Any]

_MODE_PRIVATE = 0o600
_MODE_PUBLIC = 0o644
_MODE_DIR = 0o700


class Store(Generic[_T]):
    """One JSON document under ``.storage/<key>``, with a version and migrations.

    The file holds ``{"version", "minor_version", "key", "data"}``. Reads and writes run in
    the executor, one at a time and in the order they were asked for.
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
    ) -> None:
        self.hub = hub
        self.version = version
        self.minor_version = minor_version
        self.key = key
        self._migrate = migrate
        self._private = private
        self._lock = asyncio.Lock()
        self._data_func: Callable[[], _T] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._unsub_final_write: Unsubscribe | None = None
        self._write_task: asyncio.Task[None] | None = None
        # Why writes are refused (a newer version on disk); None until one is found.
        self._refusal: str | None = None
        self._disk_checked = False

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
        if self._data_func is not None:
            return self._data_func()
        async with self._lock:
            raw = await self.hub.run_in_executor(_read_store_file, self.path)
        self._disk_checked = True
        if raw is None:
            return None
        version, minor, data = raw
        if version > self.version:
            self._refusal = (
                f"{self.path}: stored version {version} is newer than {self.version} that this "
                "evhub understands; refusing to read or overwrite it"
            )
            raise StorageError(self._refusal)
        if version == self.version and minor >= self.minor_version:
            return data  # type: ignore[no-any-return]
        if self._migrate is None:
            if version < self.version:
                raise StorageError(
                    f"{self.path}: stored version {version} needs a migration to "
                    f"{self.version} and none is defined"
                )
            # Minor versions are compatible: the next save records the new minor version.
            return data  # type: ignore[no-any-return]
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
        await self.save(migrated)
        return migrated  # type: ignore[no-any-return]

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
        loop = self.hub.loop
        if self._timer is not None:
            if self._timer.when() <= loop.time() + delay:
                return
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._on_timer)

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
        """Delete the file and drop any pending delayed save."""
        self._cancel_pending()
        async with self._lock:
            await self.hub.run_in_executor(_remove_file, self.path)

    # Internals

    async def _write(self, data: _T, immutable: bool = False) -> None:
        if immutable:
            # Large stores (a fleet's registries) would stall the loop for tenths of seconds:
            # encode them a slice at a time, yielding between slices. (Not in a thread: a
            # thread holding the GIL makes every loop iteration wait for it.)
            try:
                payload = await _encode_cooperatively(self._document(data))
            except (TypeError, ValueError) as err:
                raise StorageError(f"cannot serialise data for {self.path}: {err}") from err
        else:
            # Serialise on the loop, now: the caller may change data as soon as we yield.
            payload = self._serialize(data)
        async with self._lock:
            if self._refusal is not None:
                raise StorageError(self._refusal)
            if not self._disk_checked:
                version = await self.hub.run_in_executor(_stored_version, self.path)
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

    def _document(self, data: _T) -> dict[str, Any]:
        return {
            "version": self.version,
            "minor_version": self.minor_version,
            "key": self.key,
            "data": data,
        }

    def _serialize(self, data: _T) -> bytes:
        try:
            return orjson.dumps(self._document(data), default=_json_default, option=_INDENTED)
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
_CHUNK = 1000


def _is_large(value: Any) -> bool:
    return hasattr(value, "json_slice") or (isinstance(value, list) and len(value) > _CHUNK)


async def _encode_cooperatively(document: dict[str, Any]) -> bytes:
    """Encode a store document; long lists (or json_slice objects) a slice at a time."""
    data = document["data"]
    if not isinstance(data, dict) or not any(_is_large(value) for value in data.values()):
        return orjson.dumps(document, default=_json_default, option=_INDENTED)
    head = {key: value for key, value in document.items() if key != "data"}
    parts = [orjson.dumps(head)[:-1], b',"data":{']
    for index, (key, value) in enumerate(data.items()):
        if index:
            parts.append(b",")
        parts.append(orjson.dumps(str(key)) + b":")
        if not _is_large(value):
            parts.append(orjson.dumps(value, default=_json_default, option=_COMPACT))
            continue
        parts.append(b"[")
        for start in range(0, len(value), _CHUNK):
            rows = (
                value.json_slice(start, start + _CHUNK)
                if hasattr(value, "json_slice")
                else value[start : start + _CHUNK]
            )
            if start:
                parts.append(b",")
            parts.append(orjson.dumps(rows, default=_json_default, option=_COMPACT)[1:-1])
            await asyncio.sleep(0)
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


def _read_store_file(path: Path) -> tuple[int, int, Any] | None:
    """Read and check a store file: (version, minor_version, data), or None if missing."""
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
    return version, minor, document["data"]


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
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
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
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)
