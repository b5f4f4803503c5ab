"""The transaction store's SQL for SQLite: schema, migrations, and the operations.

Every operation runs on the store's writer thread, inside the batch's SQLite transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from hub.migration import MigrationError, Migrations, migrate_sqlite
from integrations.ocpp.transactions.model import (
    EVENT_ENDED,
    MAX_TRANSACTION_ID,
    Transaction,
    TransactionEvent,
    TransactionStoreError,
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

_TX_COLUMNS: Final = (
    "id, charger_tx_id, charge_point_id, connector_id, evse_id, id_tag, started_at, stopped_at,"
    " meter_start_wh, meter_stop_wh, energy_wh, stop_reason, ocpp_version, remote_id, stop_id_tag"
)
_EVENT_COLUMNS: Final = "seq_no, event_type, timestamp, offline, meter_wh, data, received_at"


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


def _row_to_transaction(row: tuple[Any, ...], replayed: bool = False) -> Transaction:
    (
        row_id,
        charger_tx_id,
        charge_point_id,
        connector_id,
        evse_id,
        id_tag,
        started_at,
        stopped_at,
        meter_start_wh,
        meter_stop_wh,
        energy_wh,
        stop_reason,
        ocpp_version,
        remote_id,
        stop_id_tag,
    ) = row
    return Transaction(
        id=row_id,
        ocpp_id=charger_tx_id if charger_tx_id is not None else str(row_id),
        charge_point_id=charge_point_id,
        connector_id=connector_id,
        evse_id=evse_id,
        id_tag=id_tag,
        started_at=started_at,
        stopped_at=stopped_at,
        meter_start_wh=meter_start_wh,
        meter_stop_wh=meter_stop_wh,
        energy_wh=energy_wh,
        stop_reason=stop_reason,
        ocpp_version=ocpp_version,
        remote_id=remote_id,
        stop_id_tag=stop_id_tag,
        replayed=replayed,
    )


def _fetch(conn: sqlite3.Connection, row_id: int, replayed: bool = False) -> Transaction:
    row = conn.execute(f"SELECT {_TX_COLUMNS} FROM transactions WHERE id = ?", (row_id,)).fetchone()
    return _row_to_transaction(row, replayed)


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
        f"SELECT {_TX_COLUMNS} FROM transactions"
        " WHERE charge_point_id = ? AND start_replay_key = ?",
        (charge_point_id, replay_key),
    ).fetchone()
    if row is not None:
        return _row_to_transaction(row, replayed=True)
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
        f"SELECT {_TX_COLUMNS} FROM transactions"
        " WHERE id = ? AND charge_point_id = ? AND charger_tx_id IS NULL",
        (transaction_id, charge_point_id),
    ).fetchone()
    if row is None:
        return None
    stored = _row_to_transaction(row)
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
        f"INSERT INTO transaction_events (transaction_row, {_EVENT_COLUMNS})"
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
        f"SELECT {_TX_COLUMNS} FROM transactions WHERE id = ?", (transaction_id,)
    ).fetchone()
    return None if row is None else _row_to_transaction(row)


def get_by_ocpp_id(
    conn: sqlite3.Connection, *, charge_point_id: str, ocpp_id: str
) -> Transaction | None:
    row = conn.execute(
        f"SELECT {_TX_COLUMNS} FROM transactions WHERE charge_point_id = ? AND charger_tx_id = ?",
        (charge_point_id, ocpp_id),
    ).fetchone()
    if row is None and ocpp_id.isascii() and ocpp_id.isdecimal():
        row = conn.execute(
            f"SELECT {_TX_COLUMNS} FROM transactions"
            " WHERE id = ? AND charge_point_id = ? AND charger_tx_id IS NULL",
            (int(ocpp_id), charge_point_id),
        ).fetchone()
    return None if row is None else _row_to_transaction(row)


def open_transactions(conn: sqlite3.Connection, *, charge_point_id: str) -> list[Transaction]:
    rows = conn.execute(
        f"SELECT {_TX_COLUMNS} FROM transactions"
        " WHERE charge_point_id = ? AND stopped_at IS NULL ORDER BY started_at, id",
        (charge_point_id,),
    ).fetchall()
    return [_row_to_transaction(row) for row in rows]


def open_transactions_all(conn: sqlite3.Connection) -> list[Transaction]:
    rows = conn.execute(
        f"SELECT {_TX_COLUMNS} FROM transactions WHERE stopped_at IS NULL ORDER BY started_at, id"
    ).fetchall()
    return [_row_to_transaction(row) for row in rows]


def changed_since(
    conn: sqlite3.Connection, *, since: float | None, after_id: int, limit: int
) -> list[tuple[float, Transaction]]:
    start = -1.0 if since is None else since
    rows = conn.execute(
        f"SELECT updated_at, {_TX_COLUMNS} FROM transactions"
        " WHERE (updated_at > ? OR (updated_at = ? AND id > ?))"
        " ORDER BY updated_at, id LIMIT ?",
        (start, start, after_id, limit),
    ).fetchall()
    return [(float(row[0]), _row_to_transaction(row[1:])) for row in rows]


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
        f"SELECT {_TX_COLUMNS} FROM transactions{where} ORDER BY started_at, id LIMIT ?", args
    ).fetchall()
    return [_row_to_transaction(row) for row in rows]


def events(
    conn: sqlite3.Connection, *, charge_point_id: str, ocpp_id: str
) -> list[TransactionEvent]:
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM transaction_events WHERE transaction_row ="
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
