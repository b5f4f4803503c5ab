"""hub.migration: numbered steps, each committed with its version, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hub.exceptions import StorageError
from hub.migration import (
    MigrationError,
    Migrations,
    SchemaTooNewError,
    asyncpg_statements,
    migrate_asyncpg,
    migrate_sqlite,
    sqlite_statements,
)

LOCK_KEY = 0x7465737400
STEPS = {
    0: ["CREATE TABLE a (x INTEGER)"],
    1: ["ALTER TABLE a ADD COLUMN y INTEGER"],
    2: ["CREATE TABLE b (z INTEGER)"],
}

# (migrate to target with these statements; return the version found, run a query)
Migrate = Callable[[int, dict[int, list[str]]], Awaitable[int]]
Query = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Migrate, Query]]:
    """Run migrations and queries on a new database of each kind."""
    if request.param == "sqlite":
        conn = sqlite3.connect(tmp_path / "test.db", isolation_level=None)

        async def migrate_lite(target: int, steps: dict[int, list[str]]) -> int:
            plan = {n: sqlite_statements(sql) for n, sql in steps.items()}
            return migrate_sqlite(conn, Migrations("test database", target, plan))

        async def query_lite(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()

        with contextlib.closing(conn):
            yield migrate_lite, query_lite
        return
    pg = await asyncpg.connect(request.getfixturevalue("pg_schema"))

    async def migrate_pg(target: int, steps: dict[int, list[str]]) -> int:
        plan = {n: asyncpg_statements(sql) for n, sql in steps.items()}
        return await migrate_asyncpg(
            pg, Migrations("test database", target, plan), lock_key=LOCK_KEY
        )

    async def query_pg(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await pg.fetch(sql)]

    try:
        yield migrate_pg, query_pg
    finally:
        await pg.close()


async def test_a_new_database_is_created_and_later_upgraded(db: tuple[Migrate, Query]) -> None:
    migrate, query = db

    assert await migrate(2, STEPS) == 0
    assert await query("SELECT version FROM schema_version ORDER BY version") == [(1,), (2,)]
    assert await query("SELECT x, y FROM a") == []
    assert await migrate(2, STEPS) == 2  # nothing to do
    assert await migrate(3, STEPS) == 2
    assert await query("SELECT MAX(version) FROM schema_version") == [(3,)]
    assert await query("SELECT z FROM b") == []


async def test_a_newer_database_is_refused_untouched(db: tuple[Migrate, Query]) -> None:
    migrate, query = db
    await migrate(3, STEPS)

    with pytest.raises(SchemaTooNewError, match="test database has schema version 3, newer"):
        await migrate(2, STEPS)

    assert await query("SELECT MAX(version) FROM schema_version") == [(3,)]


async def test_a_missing_step_is_refused_before_any_step_runs(db: tuple[Migrate, Query]) -> None:
    migrate, query = db
    await migrate(1, STEPS)

    with pytest.raises(MigrationError, match="no migration from schema version 2"):
        await migrate(3, {0: STEPS[0], 1: STEPS[1]})

    assert await query("SELECT MAX(version) FROM schema_version") == [(1,)]
    assert issubclass(MigrationError, StorageError)


async def test_each_step_is_committed_alone(db: tuple[Migrate, Query]) -> None:
    migrate, query = db
    broken = {**STEPS, 2: ["CREATE TABLE b (z INTEGER)", "CREATE TABLE a (x INTEGER)"]}

    with pytest.raises(Exception, match="already exists"):
        await migrate(3, broken)

    # Steps 0 and 1 stayed; the failed step left nothing, not even its first table.
    assert await query("SELECT MAX(version) FROM schema_version") == [(2,)]
    assert await query("SELECT x, y FROM a") == []
    assert await migrate(3, STEPS) == 2
    assert await query("SELECT z FROM b") == []


async def test_hubs_opening_one_postgresql_database_run_each_step_once(pg_schema: str) -> None:
    runs: list[int] = []

    def counted(version: int) -> Callable[[asyncpg.Connection], Awaitable[None]]:
        async def step(conn: asyncpg.Connection) -> None:
            runs.append(version)
            await asyncio.sleep(0.05)
            for statement in STEPS[version]:
                await conn.execute(statement)

        return step

    migrations = Migrations("test database", 3, {n: counted(n) for n in STEPS})
    conns = [await asyncpg.connect(pg_schema) for _ in range(3)]
    try:
        found = await asyncio.gather(
            *(migrate_asyncpg(conn, migrations, lock_key=LOCK_KEY) for conn in conns)
        )
        versions = await conns[0].fetch("SELECT version FROM schema_version ORDER BY version")
    finally:
        for conn in conns:
            await conn.close()

    assert sorted(runs) == [0, 1, 2]
    assert 0 in found
    assert [row[0] for row in versions] == [1, 2, 3]
