"""The SQLite backend: WAL, one writer thread committing batches, one reader thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from hub.migration import MigrationError, Migrations, migrate_sqlite, sqlite_statements
from integrations.recorder import schema
from integrations.recorder.backend import (
    KIND_ALERT,
    KIND_AUDIT,
    KIND_EXCLUSION,
    KIND_EXCLUSION_DELETE,
    KIND_OUTAGE,
    KIND_PORT_STATUS,
    KIND_SECURITY,
    KIND_SESSION,
    SQLITE_LIMITS,
    UNIT_EVENT,
    UNIT_STATE,
    AttributeCache,
    Batch,
    PreparedStates,
    RecorderBackend,
    RecorderError,
    Skipped,
    Unit,
    encode_attributes,
    halves,
    prepare,
    refused,
    units_of,
)

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

VACUUM_PAGES: Final = 1024

PRIORITY_SQL: Final = {
    KIND_SESSION: schema.UPSERT_SESSION,
    KIND_PORT_STATUS: schema.INSERT_PORT_STATUS,
    KIND_OUTAGE: schema.UPSERT_OUTAGE,
    KIND_EXCLUSION: schema.UPSERT_EXCLUSION,
    KIND_EXCLUSION_DELETE: schema.DELETE_EXCLUSION,
    KIND_ALERT: schema.UPSERT_ALERT,
    KIND_SECURITY: schema.INSERT_SECURITY,
    KIND_AUDIT: schema.INSERT_AUDIT,
}


def is_row_error(err: BaseException) -> bool:
    """Tell whether the database refused a row for its data (not for its own state)."""
    if isinstance(err, sqlite3.IntegrityError | sqlite3.DataError):
        return True
    if isinstance(err, sqlite3.ProgrammingError):
        return str(err).startswith("Error binding parameter")
    # Raised while binding a value (OverflowError, UnicodeEncodeError, ...), never by SQLite
    # failing to write.
    return isinstance(err, OverflowError | ValueError | TypeError)


class SQLiteBackend(RecorderBackend):
    """A SQLite file in WAL mode; writes and deletes on one thread, reads on another."""

    dialect = schema.SQLITE

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "recorder-sqlite-writer")
        self._reader = concurrent.futures.ThreadPoolExecutor(1, "recorder-sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._meta: dict[str, int] = {}
        self._attrs = AttributeCache()

    def __repr__(self) -> str:
        return f"<SQLiteBackend {self.path}>"

    async def _on(
        self, pool: concurrent.futures.Executor, func: Callable[..., _T], *args: Any
    ) -> _T:
        return await asyncio.get_running_loop().run_in_executor(pool, func, *args)

    # Lifecycle

    async def open(self, target_version: int = schema.SCHEMA_VERSION) -> int:
        return await self._on(self._writer, self._open, target_version)

    def _open(self, target_version: int) -> int:
        new = not self.path.exists()
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            if new or conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                # Only possible before the first table: later it would need a full VACUUM.
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RecorderError(f"{self.path} cannot use WAL (journal mode {mode})")
            # FULL: a commit is on disk, not only in the OS, once it returns (one fsync a second).
            conn.execute("PRAGMA synchronous=FULL")
            # 4 MB: the writer appends; the pages it revisits are the per-entity index
            # leaves (about 3 MB for 150,000 entities), and the OS caches the file anyway.
            conn.execute("PRAGMA cache_size=-4000")
            found = _migrate(conn, target_version)
        except BaseException:
            conn.close()
            raise
        self._wconn = conn
        return found

    async def close(self) -> None:
        await self._on(self._writer, self._close_writer)
        await self._on(self._reader, self._close_reader)
        loop = asyncio.get_running_loop()
        for pool in (self._writer, self._reader):
            await loop.run_in_executor(None, pool.shutdown)

    def _close_writer(self) -> None:
        if self._wconn is not None:
            self._wconn.close()
            self._wconn = None

    def _close_reader(self) -> None:
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None

    def _w(self) -> sqlite3.Connection:
        if self._wconn is None:
            raise RecorderError(f"recorder database {self.path} is not open")
        return self._wconn

    # Writes

    async def write(self, batch: Batch) -> list[Skipped]:
        return await self._on(self._writer, self._write, batch)

    def _write(self, batch: Batch) -> list[Skipped]:
        conn = self._w()
        prepared = prepare(batch, SQLITE_LIMITS)
        try:
            conn.execute("BEGIN IMMEDIATE")
            state_rows = self._state_rows(conn, prepared)
            if state_rows:
                conn.executemany(schema.INSERT_STATE, state_rows)
            if prepared.events:
                conn.executemany(schema.INSERT_EVENT, prepared.events)
            for kind, params in prepared.priority:
                conn.execute(PRIORITY_SQL[kind], params)
            conn.execute("COMMIT")
        except Exception as err:
            self._abandon(conn)
            if not is_row_error(err):
                raise
            _LOGGER.warning(
                "Recorder batch refused (%s): finding the rows at fault", type(err).__name__
            )
            self._write_isolating(conn, prepared)
        except BaseException:
            self._abandon(conn)
            raise
        return prepared.skipped

    def _write_isolating(self, conn: sqlite3.Connection, prepared: PreparedStates) -> None:
        """Write a batch in parts under savepoints, halving refused parts down to single rows,
        which are skipped."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            parts = [units_of(self._state_rows(conn, prepared), prepared)]
            while parts:
                part = parts.pop()
                conn.execute("SAVEPOINT isolate")
                try:
                    _insert_units(conn, part)
                except Exception as err:
                    conn.execute("ROLLBACK TO isolate")
                    conn.execute("RELEASE isolate")
                    if not is_row_error(err):
                        raise
                    if len(part) == 1:
                        prepared.skipped.append(refused(part[0], err))
                    else:
                        first, second = halves(part)
                        parts.extend((second, first))
                else:
                    conn.execute("RELEASE isolate")
            conn.execute("COMMIT")
        except BaseException:
            self._abandon(conn)
            raise

    def _abandon(self, conn: sqlite3.Connection) -> None:
        """Roll back a failed write and forget the ids cached during it."""
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        # Ids cached during the lost transaction may not exist.
        self._meta.clear()
        self._attrs.clear()

    def _state_rows(
        self, conn: sqlite3.Connection, prepared: PreparedStates
    ) -> list[tuple[Any, ...]]:
        """The rows of the states table, with metadata and attribute ids (made as needed)."""
        if not prepared.rows:
            return []
        meta = self._metadata_ids(conn, prepared.entity_ids)
        cache = self._attrs
        rows = []
        for entity_id, state, attrs, changed, updated, ctx, user in prepared.rows:
            attributes_id = None
            if attrs is not None:
                attributes_id, encoded, digest = encode_attributes(entity_id, attrs, cache)
                if attributes_id is None:
                    attributes_id = self._store_attributes(conn, encoded, digest)
                    cache.remember(entity_id, attrs, encoded, digest, attributes_id)
                elif encoded:
                    cache.remember(entity_id, attrs, encoded, digest, attributes_id)
            rows.append((meta[entity_id], state, attributes_id, changed, updated, ctx, user))
        return rows

    def _metadata_ids(self, conn: sqlite3.Connection, entity_ids: list[str]) -> dict[str, int]:
        meta = self._meta
        for entity_id in entity_ids:
            if entity_id in meta:
                continue
            row = conn.execute(
                "SELECT metadata_id FROM states_meta WHERE entity_id = ?", (entity_id,)
            ).fetchone()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO states_meta (entity_id) VALUES (?)", (entity_id,)
                )
                meta[entity_id] = int(cursor.lastrowid or 0)
            else:
                meta[entity_id] = int(row[0])
        return meta

    def _store_attributes(self, conn: sqlite3.Connection, encoded: bytes, digest: int) -> int:
        text = encoded.decode()
        for attributes_id, shared in conn.execute(
            "SELECT attributes_id, shared_attrs FROM state_attributes WHERE hash = ?", (digest,)
        ):
            if shared == text:
                return int(attributes_id)
        cursor = conn.execute(
            "INSERT INTO state_attributes (hash, shared_attrs) VALUES (?, ?)", (digest, text)
        )
        return int(cursor.lastrowid or 0)

    async def delete_batch(self, table: str, where: str, params: Sequence[Any], limit: int) -> int:
        sql = (
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} LIMIT ?)"
        )
        return await self._on(self._writer, self._execute, sql, (*params, limit), False)

    async def purge_orphans(self, limit: int) -> int:
        sql = (
            "DELETE FROM state_attributes WHERE attributes_id IN (SELECT a.attributes_id"
            " FROM state_attributes a WHERE NOT EXISTS (SELECT 1 FROM states s"
            " WHERE s.attributes_id = a.attributes_id) LIMIT ?)"
        )
        return await self._on(self._writer, self._execute, sql, (limit,), True)

    def _execute(self, sql: str, params: Sequence[Any], clear_attrs: bool) -> int:
        conn = self._w()
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = conn.execute(sql, params).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            if clear_attrs:
                self._attrs.clear()
        return int(count)

    async def reclaim(self) -> None:
        while await self._on(self._writer, self._vacuum_step):
            pass

    def _vacuum_step(self) -> bool:
        """Free up to VACUUM_PAGES pages; tell whether free pages are left."""
        conn = self._w()
        conn.execute(f"PRAGMA incremental_vacuum({VACUUM_PAGES})").fetchall()
        return int(conn.execute("PRAGMA freelist_count").fetchone()[0]) > 0

    # Reads

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._on(self._reader, self._fetch, sql, tuple(params))

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._rconn is None:
            self._rconn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._rconn.execute("PRAGMA query_only=ON")
        return self._rconn.execute(sql, params).fetchall()

    async def schema_version(self) -> int:
        rows = await self.fetch("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0)


def _insert_units(conn: sqlite3.Connection, units: list[Unit]) -> None:
    """Write rows of several kinds, each run of one kind in one statement."""
    for kind, run in itertools.groupby(units, key=lambda unit: unit[0]):
        params = [unit[1] for unit in run]
        if kind == UNIT_STATE:
            conn.executemany(schema.INSERT_STATE, params)
        elif kind == UNIT_EVENT:
            conn.executemany(schema.INSERT_EVENT, params)
        else:
            conn.executemany(PRIORITY_SQL[kind], params)


def _migrate(conn: sqlite3.Connection, target: int) -> int:
    """Create or upgrade the schema; return the version found (0: new)."""
    steps = {n: sqlite_statements(sql) for n, sql in schema.steps(schema.SQLITE).items()}
    try:
        return migrate_sqlite(conn, Migrations("recorder database", target, steps))
    except MigrationError as err:
        raise RecorderError(str(err)) from err
