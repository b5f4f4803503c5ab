"""The one way a database schema is created and upgraded: numbered steps, each committed alone.

A database keeps its version in a table ``schema_version (version, applied_at)``, one row per
version reached; a database without the table is version 0. ``steps[n]`` turns version n
into n + 1, and step 0 creates the tables. Each step runs in a transaction of its own with
the row of the version it reaches, so a database is always at one version or the next,
never in between; the version is read again at the start of each transaction (under the
database's write lock), so hubs opening one database at once run each step once.

A database newer than the code is refused (``SchemaTooNewError``) and left untouched, and so
is one the steps cannot reach the target from (``MigrationError``), before any step runs.

Two thin adapters run the steps: ``migrate_sqlite`` for a ``sqlite3`` connection in autocommit
mode (``isolation_level=None``), ``migrate_asyncpg`` for an asyncpg connection.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from hub.exceptions import StorageError

if TYPE_CHECKING:
    import asyncpg

_LOGGER = logging.getLogger(__name__)

VERSION_TABLE: Final = "schema_version"

SQLiteStep = Callable[[sqlite3.Connection], None]
AsyncpgStep = Callable[["asyncpg.Connection"], Awaitable[None]]
_StepT = TypeVar("_StepT")


class MigrationError(StorageError):
    """A database's schema cannot be brought to the version the code needs."""


class SchemaTooNewError(MigrationError):
    """A database was written by a newer evhub than this one."""


@dataclass(frozen=True, slots=True)
class Migrations(Generic[_StepT]):
    """The steps that bring a database to target: steps[n] turns version n into n + 1."""

    name: str  # what the database is, in messages: "recorder database"
    target: int
    steps: Mapping[int, _StepT]

    def pending(self, current: int) -> list[int]:
        """Return the versions whose steps still have to run; refuse what cannot be done."""
        if current > self.target:
            raise SchemaTooNewError(
                f"{self.name} has schema version {current}, newer than the {self.target} this"
                " evhub knows; refusing to touch it"
            )
        versions = list(range(current, self.target))
        for version in versions:
            if version not in self.steps:
                raise MigrationError(f"{self.name}: no migration from schema version {version}")
        return versions

    def log(self, found: int) -> None:
        """Say that an existing database was upgraded."""
        if found and found != self.target:
            _LOGGER.info("%s migrated from version %s to %s", self.name, found, self.target)


def sqlite_statements(statements: Iterable[str]) -> SQLiteStep:
    """A step that runs DDL statements on SQLite."""
    fixed = tuple(statements)

    def step(conn: sqlite3.Connection) -> None:
        for statement in fixed:
            conn.execute(statement)

    return step


def asyncpg_statements(statements: Iterable[str]) -> AsyncpgStep:
    """A step that runs DDL statements on PostgreSQL."""
    fixed = tuple(statements)

    async def step(conn: asyncpg.Connection) -> None:
        for statement in fixed:
            await conn.execute(statement)

    return step


# SQLite


def _sqlite_version(conn: sqlite3.Connection) -> int:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchone()
    if found is None:
        return 0
    return int(conn.execute(f"SELECT MAX(version) FROM {VERSION_TABLE}").fetchone()[0] or 0)


def migrate_sqlite(conn: sqlite3.Connection, migrations: Migrations[SQLiteStep]) -> int:
    """Create or upgrade a SQLite database's schema; return the version found (0: new)."""
    found: int | None = None
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = _sqlite_version(conn)
            pending = migrations.pending(current)
            if found is None:
                found = current
            if not pending:
                conn.execute("COMMIT")
                break
            if current == 0:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE}"
                    " (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
                )
            migrations.steps[current](conn)
            conn.execute(f"INSERT INTO {VERSION_TABLE} VALUES (?, ?)", (current + 1, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    migrations.log(found)
    return found


# PostgreSQL


async def migrate_asyncpg(
    conn: asyncpg.Connection, migrations: Migrations[AsyncpgStep], *, lock_key: int
) -> int:
    """Create or upgrade a PostgreSQL schema; return the version found (0: new).

    lock_key names the transaction-scoped advisory lock that serialises the hubs migrating
    one database; the version table is the one the connection's search_path finds.
    """
    found: int | None = None
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
            current = await _asyncpg_version(conn)
            pending = migrations.pending(current)
            if found is None:
                found = current
            if not pending:
                break
            if current == 0:
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE}"
                    " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
                )
            await migrations.steps[current](conn)
            await conn.execute(
                f"INSERT INTO {VERSION_TABLE} VALUES ($1, $2)", current + 1, time.time()
            )
    migrations.log(found)
    return found


async def _asyncpg_version(conn: asyncpg.Connection) -> int:
    exists: Any = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", VERSION_TABLE)
    if not exists:
        return 0
    return int(await conn.fetchval(f"SELECT MAX(version) FROM {VERSION_TABLE}") or 0)
