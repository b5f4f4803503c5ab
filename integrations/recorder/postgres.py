"""The PostgreSQL backend: asyncpg, batches committed in one transaction each.

Encoding attribute sets runs on a worker thread; asyncpg talks to the server from the loop
without blocking it. Writes and deletes take turns on one connection, reads use the pool.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from hub.migration import MigrationError, Migrations, asyncpg_statements, migrate_asyncpg
from integrations.recorder import schema
from integrations.recorder.backend import (
    POSTGRESQL_LIMITS,
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
from integrations.recorder.sqlite import PRIORITY_SQL

if TYPE_CHECKING:
    import asyncpg

_LOGGER = logging.getLogger(__name__)

_PLACEHOLDER: Final = re.compile(r"\?")
# Serialises schema changes of concurrent hubs on one database.
_MIGRATION_LOCK_KEY: Final = 0x65766875625F7263


def to_dollar(sql: str) -> str:
    """Turn ? placeholders into $1, $2, ... (our SQL has no ? inside literals)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


_PRIORITY_SQL: Final = {kind: to_dollar(sql) for kind, sql in PRIORITY_SQL.items()}
_STATE_COLUMNS: Final = (
    "metadata_id",
    "state",
    "attributes_id",
    "last_changed_ts",
    "last_updated_ts",
    "context_id",
    "context_user_id",
)
_INSERT_EVENT: Final = to_dollar(schema.INSERT_EVENT)


def is_row_error(err: BaseException) -> bool:
    """Tell whether the server (or asyncpg encoding for it) refused a row for its data."""
    import asyncpg

    # Class 22 (data exception, asyncpg's own encoding errors included), 23 (integrity
    # constraint violation) and 54 (a value beyond a limit, such as an index entry over
    # 2,704 bytes); values asyncpg cannot encode for COPY raise plain Python errors.
    return isinstance(
        err,
        asyncpg.DataError
        | asyncpg.IntegrityConstraintViolationError
        | asyncpg.ProgramLimitExceededError
        | OverflowError
        | ValueError
        | TypeError,
    )


class PostgresBackend(RecorderBackend):
    """A PostgreSQL database reached with asyncpg."""

    dialect = schema.POSTGRESQL

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._meta: dict[str, int] = {}
        self._attrs = AttributeCache()

    def __repr__(self) -> str:
        return f"<PostgresBackend {re.sub(r'//[^@/]*@', '//***@', self.url)}>"

    def _p(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RecorderError("recorder database is not open")
        return self._pool

    async def open(self, target_version: int = schema.SCHEMA_VERSION) -> int:
        import asyncpg

        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=3)
        except (OSError, asyncpg.PostgresError) as err:
            raise RecorderError(f"cannot connect to the recorder database: {err}") from err
        steps = {n: asyncpg_statements(sql) for n, sql in schema.steps(schema.POSTGRESQL).items()}
        migrations = Migrations("recorder database", target_version, steps)
        try:
            async with self._p().acquire() as conn:
                return await migrate_asyncpg(conn, migrations, lock_key=_MIGRATION_LOCK_KEY)
        except MigrationError as err:
            await self.close()
            raise RecorderError(str(err)) from err
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            async with self._lock:
                await pool.close()

    async def write(self, batch: Batch) -> list[Skipped]:
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(None, prepare, batch, POSTGRESQL_LIMITS)
        async with self._lock, self._p().acquire() as conn:
            try:
                async with conn.transaction():
                    if prepared.rows:
                        rows = await self._state_rows(conn, prepared)
                        # COPY: the cheapest way in for many rows, on the server and here.
                        await conn.copy_records_to_table(
                            "states", records=rows, columns=_STATE_COLUMNS
                        )
                    if prepared.events:
                        await conn.executemany(_INSERT_EVENT, prepared.events)
                    for kind, params in prepared.priority:
                        await conn.execute(_PRIORITY_SQL[kind], *params)
            except Exception as err:
                self._meta.clear()
                self._attrs.clear()
                if not is_row_error(err):
                    raise
                _LOGGER.warning(
                    "Recorder batch refused (%s): finding the rows at fault", type(err).__name__
                )
                await self._write_isolating(conn, prepared)
            except BaseException:
                self._meta.clear()
                self._attrs.clear()
                raise
        return prepared.skipped

    async def _write_isolating(self, conn: asyncpg.Connection, prepared: PreparedStates) -> None:
        """Write a batch in parts under savepoints, halving refused parts down to single rows,
        which are skipped."""
        try:
            async with conn.transaction():
                rows = await self._state_rows(conn, prepared) if prepared.rows else []
                parts = [units_of(rows, prepared)]
                while parts:
                    part = parts.pop()
                    try:
                        async with conn.transaction():
                            await _insert_units(conn, part)
                    except Exception as err:
                        if not is_row_error(err):
                            raise
                        if len(part) == 1:
                            prepared.skipped.append(refused(part[0], err))
                        else:
                            first, second = halves(part)
                            parts.extend((second, first))
        except BaseException:
            self._meta.clear()
            self._attrs.clear()
            raise

    async def _state_rows(
        self, conn: asyncpg.Connection, prepared: PreparedStates
    ) -> list[tuple[Any, ...]]:
        meta = self._meta
        missing = [entity_id for entity_id in prepared.entity_ids if entity_id not in meta]
        if missing:
            await conn.execute(
                "INSERT INTO states_meta (entity_id) SELECT unnest($1::text[])"
                " ON CONFLICT (entity_id) DO NOTHING",
                missing,
            )
            for metadata_id, entity_id in await conn.fetch(
                "SELECT metadata_id, entity_id FROM states_meta WHERE entity_id = ANY($1::text[])",
                missing,
            ):
                meta[entity_id] = metadata_id
        loop = asyncio.get_running_loop()
        encoded = await loop.run_in_executor(None, _encode_all, prepared, self._attrs)
        unknown: dict[int, list[bytes]] = {}
        for attributes_id, data, digest in encoded:
            if attributes_id is None and data not in unknown.setdefault(digest, []):
                unknown[digest].append(data)
        resolved: dict[bytes, int] = {}
        if unknown:
            for attributes_id, _digest, shared in await conn.fetch(
                "SELECT attributes_id, hash, shared_attrs FROM state_attributes"
                " WHERE hash = ANY($1::bigint[])",
                list(unknown),
            ):
                resolved[shared.encode()] = attributes_id
            for digest, datas in unknown.items():
                for data in datas:
                    if data not in resolved:
                        resolved[data] = await conn.fetchval(
                            "INSERT INTO state_attributes (hash, shared_attrs) VALUES ($1, $2)"
                            " RETURNING attributes_id",
                            digest,
                            data.decode(),
                        )
        rows: list[tuple[Any, ...]] = []
        cache = self._attrs
        for (entity_id, state, attrs, changed, updated, ctx, user), (
            known,
            data,
            digest,
        ) in zip(prepared.rows, encoded, strict=True):
            attributes_id = known
            if attrs is not None and known is None:
                attributes_id = resolved[data]
                cache.remember(entity_id, attrs, data, digest, attributes_id)
            rows.append((meta[entity_id], state, attributes_id, changed, updated, ctx, user))
        return rows

    async def delete_batch(self, table: str, where: str, params: Sequence[Any], limit: int) -> int:
        sql = to_dollar(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {table} WHERE {where} LIMIT ?))"
        )
        async with self._lock, self._p().acquire() as conn:
            status = await conn.execute(sql, *params, limit)
        return _count(status)

    async def purge_orphans(self, limit: int) -> int:
        sql = (
            "DELETE FROM state_attributes WHERE attributes_id IN (SELECT a.attributes_id"
            " FROM state_attributes a WHERE NOT EXISTS (SELECT 1 FROM states s"
            " WHERE s.attributes_id = a.attributes_id) LIMIT $1)"
        )
        async with self._lock, self._p().acquire() as conn:
            try:
                status = await conn.execute(sql, limit)
            finally:
                self._attrs.clear()
        return _count(status)

    async def reclaim(self) -> None:
        # PostgreSQL's autovacuum reuses the space of deleted rows; nothing to do here.
        return

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._p().acquire() as conn:
            records = await conn.fetch(to_dollar(sql), *params)
        return [tuple(record) for record in records]

    async def schema_version(self) -> int:
        rows = await self.fetch("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0)


def _encode_all(
    prepared: PreparedStates, cache: AttributeCache
) -> list[tuple[int | None, bytes, int]]:
    """Encode the attribute sets of a batch's rows (on a worker thread)."""
    result: list[tuple[int | None, bytes, int]] = []
    for row in prepared.rows:
        entity_id, attrs = row[0], row[2]
        if attrs is None:
            result.append((None, b"", 0))
            continue
        attributes_id, data, digest = encode_attributes(entity_id, attrs, cache)
        if attributes_id is not None and data:
            cache.remember(entity_id, attrs, data, digest, attributes_id)
        result.append((attributes_id, data, digest))
    return result


async def _insert_units(conn: asyncpg.Connection, units: list[Unit]) -> None:
    """Write rows of several kinds, each run of one kind in one statement."""
    for kind, run in itertools.groupby(units, key=lambda unit: unit[0]):
        params = [unit[1] for unit in run]
        if kind == UNIT_STATE:
            await conn.copy_records_to_table("states", records=params, columns=_STATE_COLUMNS)
        elif kind == UNIT_EVENT:
            await conn.executemany(_INSERT_EVENT, params)
        else:
            await conn.executemany(_PRIORITY_SQL[kind], params)


def _count(status: str) -> int:
    """The row count of a command status such as 'DELETE 12'."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0
