"""The transaction store on SQLite: a WAL file written by one thread, batches committed once.

A charger is told "Accepted" only after its transaction is committed and fsync'd
(synchronous=FULL). The connection lives on one dedicated thread; every operation here runs
on it, inside the batch's SQLite transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from hub.migration import MigrationError, Migrations, migrate_sqlite
from integrations.ocpp.transactions.backend import (
    BatchResult,
    Operations,
    Outcome,
    Request,
    TransactionBackend,
    wrap,
    wrap_commit,
)
from integrations.ocpp.transactions.model import (
    EVENT_COLUMNS,
    EVENT_ENDED,
    MAX_TRANSACTION_ID,
    TX_COLUMNS,
    Transaction,
    TransactionEvent,
    TransactionStoreError,
    row_to_transaction,
)

_LOGGER = logging.getLogger(__name__)

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


def _fetch(conn: sqlite3.Connection, row_id: int, replayed: bool = False) -> Transaction:
    row = conn.execute(f"SELECT {TX_COLUMNS} FROM transactions WHERE id = ?", (row_id,)).fetchone()
    return row_to_transaction(row, replayed)


def start_transaction(
    conn: sqlite3.Connection,
    *,
    charge_point_id: str,
    connector_id: int,
    id_tag: str,
    meter_start_wh: float,
    started_at: float,
    ocpp_version: str,
    replay_key: str,
    evse_id: int | None,
    remote_id: int | None,
) -> Transaction:
    row = conn.execute(
        f"SELECT {TX_COLUMNS} FROM transactions WHERE charge_point_id = ? AND start_replay_key = ?",
        (charge_point_id, replay_key),
    ).fetchone()
    if row is not None:
        return row_to_transaction(row, replayed=True)
    now = time.time()
    cursor = conn.execute(
        "INSERT INTO transactions (charge_point_id, ocpp_version, connector_id, evse_id, id_tag,"
        " remote_id, started_at, meter_start_wh, start_replay_key, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            charge_point_id,
            ocpp_version,
            connector_id,
            evse_id,
            id_tag,
            remote_id,
            started_at,
            meter_start_wh,
            replay_key,
            now,
            now,
        ),
    )
    row_id = cursor.lastrowid
    assert row_id is not None
    if row_id > MAX_TRANSACTION_ID:
        raise TransactionStoreError(
            f"transaction ids are exhausted: {row_id} does not fit OCPP's 32-bit transactionId"
        )
    return Transaction(
        id=row_id,
        ocpp_id=str(row_id),
        charge_point_id=charge_point_id,
        connector_id=connector_id,
        evse_id=evse_id,
        id_tag=id_tag,
        started_at=started_at,
        stopped_at=None,
        meter_start_wh=meter_start_wh,
        meter_stop_wh=None,
        energy_wh=None,
        stop_reason=None,
        ocpp_version=ocpp_version,
        remote_id=remote_id,
    )


def stop_transaction(
    conn: sqlite3.Connection,
    *,
    charge_point_id: str,
    transaction_id: int,
    meter_stop_wh: float,
    stopped_at: float,
    reason: str | None,
    replay_key: str,
    id_tag: str | None,
) -> Transaction | None:
    if not 0 < transaction_id <= MAX_TRANSACTION_ID:
        return None
    # Only ids we handed to this very charge point: a charger cannot stop another's session.
    row = conn.execute(
        f"SELECT {TX_COLUMNS} FROM transactions"
        " WHERE id = ? AND charge_point_id = ? AND charger_tx_id IS NULL",
        (transaction_id, charge_point_id),
    ).fetchone()
    if row is None:
        return None
    stored = row_to_transaction(row)
    if stored.stopped_at is not None:
        return dataclasses.replace(stored, replayed=True)
    energy = None if stored.meter_start_wh is None else meter_stop_wh - stored.meter_start_wh
    conn.execute(
        "UPDATE transactions SET stopped_at = ?, meter_stop_wh = ?, energy_wh = ?,"
        " stop_reason = ?, stop_id_tag = ?, stop_replay_key = ?, updated_at = ? WHERE id = ?",
        (stopped_at, meter_stop_wh, energy, reason, id_tag, replay_key, time.time(), stored.id),
    )
    return dataclasses.replace(
        stored,
        stopped_at=stopped_at,
        meter_stop_wh=meter_stop_wh,
        energy_wh=energy,
        stop_reason=reason,
        stop_id_tag=id_tag,
    )


def upsert_event(
    conn: sqlite3.Connection,
    *,
    charge_point_id: str,
    transaction_id: str,
    seq_no: int,
    event_type: str,
    timestamp: float,
    offline: bool,
    meter_wh: float | None,
    data: str,
    evse_id: int | None,
    connector_id: int | None,
    id_tag: str | None,
    remote_id: int | None,
    stop_reason: str | None,
    ocpp_version: str,
) -> tuple[Transaction, bool]:
    now = time.time()
    found = conn.execute(
        "SELECT id FROM transactions WHERE charge_point_id = ? AND charger_tx_id = ?",
        (charge_point_id, transaction_id),
    ).fetchone()
    if found is None:
        row_id = conn.execute(
            "INSERT INTO transactions (charger_tx_id, charge_point_id, ocpp_version,"
            " connector_id, evse_id, id_tag, remote_id, started_at, meter_start_wh,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                transaction_id,
                charge_point_id,
                ocpp_version,
                connector_id,
                evse_id,
                id_tag,
                remote_id,
                timestamp,
                meter_wh,
                now,
                now,
            ),
        ).lastrowid
        assert row_id is not None
    else:
        row_id = found[0]
        seen = conn.execute(
            "SELECT 1 FROM transaction_events WHERE transaction_row = ? AND seq_no = ?",
            (row_id, seq_no),
        ).fetchone()
        if seen is not None:
            return _fetch(conn, row_id, replayed=True), True
    conn.execute(
        f"INSERT INTO transaction_events (transaction_row, {EVENT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, seq_no, event_type, timestamp, int(offline), meter_wh, data, now),
    )
    params = {
        "row": row_id,
        "connector": connector_id,
        "evse": evse_id,
        "id_tag": id_tag,
        "remote": remote_id,
        "now": now,
    }
    if found is not None:
        # Events may arrive out of order: the start is whatever has the lowest seqNo.
        conn.execute(
            "UPDATE transactions SET"
            " connector_id = COALESCE(connector_id, :connector),"
            " evse_id = COALESCE(evse_id, :evse),"
            " id_tag = COALESCE(id_tag, :id_tag),"
            " remote_id = COALESCE(remote_id, :remote),"
            " started_at = (SELECT timestamp FROM transaction_events"
            "   WHERE transaction_row = :row ORDER BY seq_no LIMIT 1),"
            " meter_start_wh = (SELECT meter_wh FROM transaction_events"
            "   WHERE transaction_row = :row AND meter_wh IS NOT NULL ORDER BY seq_no LIMIT 1),"
            " updated_at = :now"
            " WHERE id = :row",
            params,
        )
    if event_type == EVENT_ENDED:
        # The first Ended closes the transaction; without a meter value, the last one known.
        conn.execute(
            "UPDATE transactions SET stopped_at = :ts, stop_reason = :reason,"
            " meter_stop_wh = COALESCE(:meter, (SELECT meter_wh FROM transaction_events"
            "   WHERE transaction_row = :row AND meter_wh IS NOT NULL"
            "   ORDER BY seq_no DESC LIMIT 1)),"
            " stop_id_tag = :id_tag, updated_at = :now"
            " WHERE id = :row AND stopped_at IS NULL",
            {**params, "ts": timestamp, "reason": stop_reason, "meter": meter_wh},
        )
    conn.execute(
        "UPDATE transactions SET energy_wh = meter_stop_wh - meter_start_wh WHERE id = ?",
        (row_id,),
    )
    return _fetch(conn, row_id), False


def get(conn: sqlite3.Connection, *, transaction_id: int) -> Transaction | None:
    row = conn.execute(
        f"SELECT {TX_COLUMNS} FROM transactions WHERE id = ?", (transaction_id,)
    ).fetchone()
    return None if row is None else row_to_transaction(row)


def get_by_ocpp_id(
    conn: sqlite3.Connection, *, charge_point_id: str, ocpp_id: str
) -> Transaction | None:
    row = conn.execute(
        f"SELECT {TX_COLUMNS} FROM transactions WHERE charge_point_id = ? AND charger_tx_id = ?",
        (charge_point_id, ocpp_id),
    ).fetchone()
    if row is None and ocpp_id.isascii() and ocpp_id.isdecimal():
        row = conn.execute(
            f"SELECT {TX_COLUMNS} FROM transactions"
            " WHERE id = ? AND charge_point_id = ? AND charger_tx_id IS NULL",
            (int(ocpp_id), charge_point_id),
        ).fetchone()
    return None if row is None else row_to_transaction(row)


def open_transactions(conn: sqlite3.Connection, *, charge_point_id: str) -> list[Transaction]:
    rows = conn.execute(
        f"SELECT {TX_COLUMNS} FROM transactions"
        " WHERE charge_point_id = ? AND stopped_at IS NULL ORDER BY started_at, id",
        (charge_point_id,),
    ).fetchall()
    return [row_to_transaction(row) for row in rows]


def open_transactions_all(conn: sqlite3.Connection) -> list[Transaction]:
    rows = conn.execute(
        f"SELECT {TX_COLUMNS} FROM transactions WHERE stopped_at IS NULL ORDER BY started_at, id"
    ).fetchall()
    return [row_to_transaction(row) for row in rows]


def changed_since(
    conn: sqlite3.Connection, *, since: float | None, after_id: int, limit: int
) -> list[tuple[float, Transaction]]:
    start = -1.0 if since is None else since
    rows = conn.execute(
        f"SELECT updated_at, {TX_COLUMNS} FROM transactions"
        " WHERE (updated_at > ? OR (updated_at = ? AND id > ?))"
        " ORDER BY updated_at, id LIMIT ?",
        (start, start, after_id, limit),
    ).fetchall()
    return [(float(row[0]), row_to_transaction(row[1:])) for row in rows]


def ledger_mark(conn: sqlite3.Connection, *, name: str) -> float | None:
    row = conn.execute("SELECT value FROM ledger WHERE name = ?", (name,)).fetchone()
    return None if row is None else float(row[0])


def set_ledger_mark(conn: sqlite3.Connection, *, name: str, value: float) -> None:
    conn.execute(
        "INSERT INTO ledger (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def transactions(
    conn: sqlite3.Connection, *, charge_point_id: str | None, since: float | None, limit: int
) -> list[Transaction]:
    clauses: list[str] = []
    args: list[Any] = []
    if charge_point_id is not None:
        clauses.append("charge_point_id = ?")
        args.append(charge_point_id)
    if since is not None:
        clauses.append("started_at >= ?")
        args.append(since)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    args.append(limit)
    rows = conn.execute(
        f"SELECT {TX_COLUMNS} FROM transactions{where} ORDER BY started_at, id LIMIT ?", args
    ).fetchall()
    return [row_to_transaction(row) for row in rows]


def events(
    conn: sqlite3.Connection, *, charge_point_id: str, ocpp_id: str
) -> list[TransactionEvent]:
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM transaction_events WHERE transaction_row ="
        " (SELECT id FROM transactions WHERE charge_point_id = ? AND charger_tx_id = ?)"
        " ORDER BY seq_no",
        (charge_point_id, ocpp_id),
    ).fetchall()
    return [
        TransactionEvent(
            charge_point_id=charge_point_id,
            transaction_id=ocpp_id,
            seq_no=seq_no,
            event_type=event_type,
            timestamp=timestamp,
            offline=bool(offline),
            meter_wh=meter_wh,
            data=orjson.loads(data),
            received_at=received_at,
        )
        for seq_no, event_type, timestamp, offline, meter_wh, data, received_at in rows
    ]


OPERATIONS: Final = Operations(
    start_transaction=start_transaction,
    stop_transaction=stop_transaction,
    upsert_event=upsert_event,
    get=get,
    get_by_ocpp_id=get_by_ocpp_id,
    open_transactions=open_transactions,
    open_transactions_all=open_transactions_all,
    changed_since=changed_since,
    ledger_mark=ledger_mark,
    set_ledger_mark=set_ledger_mark,
    transactions=transactions,
    events=events,
)


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
