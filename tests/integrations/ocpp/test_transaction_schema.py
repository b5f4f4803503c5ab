"""Transaction databases made by earlier code open, data kept, and migrate to the current schema.

The SQL below is copied from the store as it was before hub.migration: the test must keep
opening what that code wrote, whatever the store's own SQL becomes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from integrations.ocpp.transactions import DB_FILENAME, SCHEMA_VERSION, TransactionStore

T0 = 1_700_000_000.0

V1_SQL = (
    """
    CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY,
        applied_at REAL NOT NULL
    )
    """,
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
V2_SQL = (
    "CREATE TABLE ledger (name TEXT PRIMARY KEY, value REAL NOT NULL)",
    "CREATE INDEX transactions_updated ON transactions (updated_at, id)",
)
ROW = (
    "INSERT INTO transactions (charge_point_id, ocpp_version, connector_id, id_tag,"
    " started_at, meter_start_wh, start_replay_key, created_at, updated_at)"
    " VALUES ('CP1', '1.6', 1, 'TAG', ?, 1000, 'key-1', ?, ?)"
)


def make_database(path: Path, version: int) -> None:
    """Write a database as the earlier code did: one transaction, a row per version."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in V1_SQL + (V2_SQL if version >= 2 else ()):
            conn.execute(statement)
        for reached in range(1, version + 1):
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (reached, T0))
        conn.execute(ROW, (T0, T0, T0))


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


async def test_a_version_2_database_opens_unchanged(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    make_database(path, 2)

    store = TransactionStore(path)
    await store.open()
    try:
        [kept] = await store.open_transactions_all()
        replayed = await store.start_transaction(
            charge_point_id="CP1",
            connector_id=1,
            id_tag="TAG",
            meter_start_wh=1000,
            started_at=T0,
            ocpp_version="1.6",
            replay_key="key-1",
        )
        await store.set_ledger_mark("history", 1.5)
    finally:
        await store.close()

    assert (kept.charge_point_id, kept.started_at, kept.meter_start_wh) == ("CP1", T0, 1000)
    assert replayed.replayed
    assert replayed.id == kept.id
    assert SCHEMA_VERSION == 2
    assert query(path, "SELECT version, applied_at FROM schema_version") == [(1, T0), (2, T0)]


async def test_a_version_1_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    make_database(path, 1)

    store = TransactionStore(path)
    await store.open()
    try:
        [kept] = await store.open_transactions_all()
        await store.set_ledger_mark("history", 1.5)
        assert await store.ledger_mark("history") == 1.5
        changed = await store.changed_since(None)
    finally:
        await store.close()

    assert [transaction.id for _, transaction in changed] == [kept.id]
    assert query(path, "SELECT version FROM schema_version ORDER BY version") == [(1,), (2,)]
