"""The transaction store on SQLite: a WAL file written by one thread, batches committed once.

A charger is told "Accepted" only after its transaction is committed and fsync'd
(synchronous=FULL). The connection lives on one dedicated thread; every operation here runs
on it, inside the batch's SQLite transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from hub.migration import MigrationError, Migrations, migrate_sqlite
from integrations.ocpp.transactions.backend import (
    BatchResult,
    Outcome,
    Request,
    TransactionBackend,
    wrap,
    wrap_commit,
)
from integrations.ocpp.transactions.model import TransactionStoreError
from integrations.ocpp.transactions.operations import ALL, INSERT, ONE, VAL, Op, bind

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

SCHEMA_VERSION: Final = 2

Migration = Callable[[sqlite3.Connection], None]


def _add_ledger(conn: sqlite3.Connection) -> None:
    """Version 2: marks of what other stores have durably taken (the session ledger)."""
    conn.execute("CREATE TABLE ledger (name TEXT PRIMARY KEY, value REAL NOT NULL)")
    conn.execute("CREATE INDEX transactions_updated ON transactions (updated_at, id)")


# Schema upgrades by the version they start from: MIGRATIONS[n] turns version n into n + 1.
# Each runs in a transaction of its own (hub.migration), on the writer thread.
MIGRATIONS: dict[int, Migration] = {1: _add_ledger}

_SCHEMA_V1: Final = (
    # id is the internal id and, for OCPP 1.6, the transactionId the charger was given.
    # AUTOINCREMENT: an id is never handed out twice, even after rows are deleted.
    # charger_tx_id is the charger's own transactionId (2.0.1), NULL when we assigned it.
    """
    CREATE TABLE transactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_tx_id TEXT,
        charge_point_id TEXT NOT NULL,
        ocpp_version TEXT NOT NULL,
        connector_id INTEGER,
        evse_id INTEGER,
        id_tag TEXT,
        remote_id INTEGER,
        started_at REAL NOT NULL,
        meter_start_wh REAL,
        stopped_at REAL,
        meter_stop_wh REAL,
        energy_wh REAL,
        stop_reason TEXT,
        stop_id_tag TEXT,
        start_replay_key TEXT,
        stop_replay_key TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )
    """,
    """
    CREATE UNIQUE INDEX transactions_start_replay
    ON transactions (charge_point_id, start_replay_key) WHERE start_replay_key IS NOT NULL
    """,
    """
    CREATE UNIQUE INDEX transactions_charger_tx
    ON transactions (charge_point_id, charger_tx_id) WHERE charger_tx_id IS NOT NULL
    """,
    "CREATE INDEX transactions_cp_started ON transactions (charge_point_id, started_at)",
    "CREATE INDEX transactions_started ON transactions (started_at)",
    """
    CREATE INDEX transactions_open ON transactions (charge_point_id, started_at)
    WHERE stopped_at IS NULL
    """,
    """
    CREATE TABLE transaction_events (
        transaction_row INTEGER NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
        seq_no INTEGER NOT NULL,
        event_type TEXT NOT NULL CHECK (event_type IN ('Started', 'Updated', 'Ended')),
        timestamp REAL NOT NULL,
        offline INTEGER NOT NULL,
        meter_wh REAL,
        data TEXT NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (transaction_row, seq_no)
    ) WITHOUT ROWID
    """,
)


def rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            _LOGGER.exception("transaction store rollback failed")


# Schema


def _create(conn: sqlite3.Connection) -> None:
    """Version 1: transactions and their 2.0.1 events."""
    for statement in _SCHEMA_V1:
        conn.execute(statement)


def migrate_schema(
    conn: sqlite3.Connection,
    target: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] | None = None,
) -> int:
    """Create the schema or upgrade it to target; return the version found (0: new).

    A database newer than target, or one the migrations cannot take to target, is refused.
    """
    steps = {0: _create, **(MIGRATIONS if migrations is None else migrations)}
    try:
        return migrate_sqlite(conn, Migrations("transaction database", target, steps))
    except MigrationError as err:
        raise TransactionStoreError(str(err)) from err


# Operations: each runs on the writer thread, inside the batch's SQLite transaction.


def _run(conn: sqlite3.Connection, op: Op[_T]) -> _T:
    """Run an operation to its end on conn, sending it each query's answer."""
    send = op.send
    answer: Any = None
    try:
        while True:
            # Each cursor goes at once: a live one keeps its statement open under the next.
            how, sql, args = send(answer)
            if how is ONE:
                answer = conn.execute(sql, args).fetchone()
            elif how is VAL:
                row = conn.execute(sql, args).fetchone()
                answer = None if row is None else row[0]
            elif how is ALL:
                answer = conn.execute(sql, args).fetchall()
            elif how is INSERT:
                answer = conn.execute(sql, args).lastrowid
            else:
                conn.execute(sql, args)
                answer = None
    except StopIteration as done:
        result: _T = done.value
        return result


OPERATIONS: Final = bind(_run)


class SQLiteTransactionBackend(TransactionBackend):
    """Transactions in a SQLite file (WAL, synchronous=FULL), on a thread of their own."""

    ops = OPERATIONS

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        # Made on open: a store that is never opened starts no thread.
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<SQLiteTransactionBackend {self.path}>"

    async def open(self, target_version: int, migrations: Mapping[int, Any] | None) -> int:
        self._thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"ocpp-transactions {self.path.name}"
        )
        loop = asyncio.get_running_loop()
        try:
            conn, found = await loop.run_in_executor(
                self._thread, self._connect, target_version, migrations
            )
        except BaseException:
            await self.close()
            raise
        self._conn = conn
        return found

    def _connect(
        self, target_version: int, migrations: Mapping[int, Any] | None
    ) -> tuple[sqlite3.Connection, int]:
        """Open the database (WAL, synchronous=FULL) and bring its schema up to date."""
        if not self.path.exists():
            # Id tags identify people: the file is private from the start.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise TransactionStoreError(f"{self.path} cannot use WAL (journal mode {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            found = migrate_schema(conn, target_version, migrations)
        except BaseException:
            conn.close()
            raise
        return conn, found

    async def run(self, batch: list[Request]) -> BatchResult:
        assert self._thread is not None
        assert self._conn is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, _run_batch, self._conn, batch)

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        conn, self._conn = self._conn, None
        loop = asyncio.get_running_loop()
        if conn is not None:
            try:
                await loop.run_in_executor(thread, conn.close)
            except sqlite3.Error:
                _LOGGER.exception("error closing transaction store %s", self.path)
        await loop.run_in_executor(None, thread.shutdown)


# The batch, on the backend's thread


def _run_batch(conn: sqlite3.Connection, batch: list[Request]) -> BatchResult:
    """Run a batch in as few SQLite transactions as it takes (one, unless one is lost)."""
    result = BatchResult()
    todo = batch
    while todo:
        todo = _try_transaction(conn, todo, result)
    return result


def _try_transaction(
    conn: sqlite3.Connection, todo: list[Request], result: BatchResult
) -> list[Request]:
    """Run todo in one transaction and commit; add the outcomes, return what to run again.

    Each write runs inside a savepoint, so a failing request is undone alone. If SQLite
    rolls the whole transaction back (disk full, I/O error), the failing request fails and
    the others, whose work was lost unacknowledged, are returned to be run again.
    """
    write = any(request.write for request in todo)
    try:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    except sqlite3.Error as err:
        _LOGGER.error("transaction store cannot begin a transaction: %s", err)
        result.problem = f"cannot begin a transaction: {err}"
        result.outcomes.extend((r.future, None, wrap(r, err)) for r in todo)
        return []
    outcomes: list[Outcome] = []
    succeeded: list[Request] = []
    wrote = False
    for index, request in enumerate(todo):
        changes = conn.total_changes
        try:
            if request.write:
                conn.execute("SAVEPOINT request")
            value = request.op(conn)
            if request.write:
                conn.execute("RELEASE request")
        except Exception as err:
            result.outcomes.append((request.future, None, wrap(request, err)))
            if not isinstance(err, TransactionStoreError):
                _LOGGER.error("%s failed: %r", request.what, err)
            if request.write and conn.in_transaction:
                try:
                    conn.execute("ROLLBACK TO request")
                    conn.execute("RELEASE request")
                    continue
                except sqlite3.Error:
                    _LOGGER.exception("transaction store cannot undo %s", request.what)
            elif conn.in_transaction:
                continue
            rollback(conn)
            return succeeded + todo[index + 1 :]
        succeeded.append(request)
        outcomes.append((request.future, value, None))
        if conn.total_changes != changes:
            wrote = True
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        _LOGGER.error("transaction store commit failed: %s", err)
        result.problem = f"commit failed: {err}"
        rollback(conn)
        result.outcomes.extend((f, None, wrap_commit(err)) for f, _, _ in outcomes)
        return []
    if wrote:
        result.commits += 1
    result.outcomes.extend(outcomes)
    return []
