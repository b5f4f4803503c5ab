"""The OCPP transaction store: durable before acknowledged, replays found, batched commits.

Tests of the store run against both backends (SQLite, PostgreSQL); what only a file has
(its mode, WAL, a SIGKILL'd child writing it) runs on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hub.core import Hub
from integrations.ocpp.transactions import (
    DB_FILENAME,
    MAX_TRANSACTION_ID,
    OCPP_16,
    Transaction,
    TransactionStore,
    TransactionStoreClosedError,
    TransactionStoreError,
    async_get_store,
)
from integrations.ocpp.transactions.postgres import PostgresTransactionBackend

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_700_000_000.0


def query(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the database file through a connection of its own, as another process would."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, args).fetchall()


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_exists(path: Path) -> bool:
    return path.exists()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / DB_FILENAME


@dataclass
class Database:
    """One database under test: stores opened on it, and SQL run on it from outside."""

    kind: str
    path: Path
    url: str

    def new_store(self, **options: Any) -> TransactionStore:
        if self.kind == "sqlite":
            return TransactionStore(self.path, **options)
        return TransactionStore(backend=PostgresTransactionBackend(self.url), **options)

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run SQL through a connection of its own, as another process would."""
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.path)) as conn, conn:
                return conn.execute(sql, args).fetchall()
        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, db_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", db_path, "")
    else:
        yield Database("postgresql", db_path, request.getfixturevalue("pg_schema"))


@pytest.fixture
async def store(db: Database) -> AsyncIterator[TransactionStore]:
    instance = db.new_store()
    await instance.open()
    yield instance
    await instance.close()


async def start(
    store: TransactionStore,
    cp: str = "CP1",
    connector: int = 1,
    id_tag: str = "TAG1",
    meter: float = 1000,
    at: float = T0,
) -> Transaction:
    return await store.start_transaction(
        charge_point_id=cp,
        connector_id=connector,
        id_tag=id_tag,
        meter_start_wh=meter,
        started_at=at,
        ocpp_version=OCPP_16,
        replay_key=f"{cp}|{connector}|{id_tag}|{at}|{meter}",
    )


async def stop(
    store: TransactionStore,
    tx_id: int,
    cp: str = "CP1",
    meter: float = 5000,
    at: float = T0 + 3600,
    reason: str | None = "EVDisconnected",
) -> Transaction | None:
    return await store.stop_transaction(
        charge_point_id=cp,
        transaction_id=tx_id,
        meter_stop_wh=meter,
        stopped_at=at,
        reason=reason,
        id_tag="TAG1",
        replay_key=f"{cp}|{tx_id}|{at}|{meter}",
    )


async def event(
    store: TransactionStore,
    seq_no: int,
    event_type: str,
    *,
    tx: str = "tx-A",
    cp: str = "CP2",
    meter: float | None = None,
    offline: bool = False,
    **extra: Any,
) -> tuple[Transaction, bool]:
    return await store.upsert_event(
        charge_point_id=cp,
        transaction_id=tx,
        seq_no=seq_no,
        event_type=event_type,
        timestamp=T0 + 60 * seq_no,
        offline=offline,
        meter_wh=meter,
        data={"seqNo": seq_no, "eventType": event_type, "transactionInfo": {"transactionId": tx}},
        **extra,
    )


# OCPP 1.6


async def test_start_then_stop_round_trip(store: TransactionStore, db: Database) -> None:
    started = await start(store, meter=1234.5)

    assert started.id > 0
    assert started.ocpp_id == str(started.id)
    assert (started.charge_point_id, started.connector_id, started.id_tag) == ("CP1", 1, "TAG1")
    assert started.started_at == T0
    assert started.meter_start_wh == 1234.5
    assert started.is_open
    assert not started.replayed
    assert await store.get(started.id) == started

    stopped = await stop(store, started.id, meter=9234.5, reason="Local")

    assert stopped is not None
    assert stopped.id == started.id
    assert not stopped.is_open
    assert stopped.stopped_at == T0 + 3600
    assert stopped.meter_stop_wh == 9234.5
    assert stopped.energy_wh == 8000
    assert stopped.stop_reason == "Local"
    assert stopped.stop_id_tag == "TAG1"
    assert not stopped.replayed
    assert await store.get(started.id) == stopped
    assert await db.query("SELECT energy_wh, stop_reason FROM transactions") == [(8000, "Local")]


async def test_ids_are_unique_positive_int32(store: TransactionStore) -> None:
    started = await asyncio.gather(
        *(start(store, cp=f"CP{n % 7}", connector=n % 3 + 1, at=T0 + n) for n in range(60))
    )

    ids = [tx.id for tx in started]
    assert len(set(ids)) == 60
    assert all(0 < tx_id <= MAX_TRANSACTION_ID for tx_id in ids)


async def test_ids_are_not_reused_after_a_restart(db: Database) -> None:
    first = db.new_store()
    await first.open()
    before = await start(first)
    await first.close()
    # Even a transaction removed by retention must not give its id away again.
    await db.query("DELETE FROM transactions")

    second = db.new_store()
    await second.open()
    after = await start(second, at=T0 + 1)
    await second.close()

    assert after.id > before.id


async def test_replayed_start_returns_the_same_transaction(
    store: TransactionStore, db: Database
) -> None:
    first = await start(store)
    again = await start(store)

    assert again.replayed
    assert again.id == first.id
    assert again == Transaction(**{**_fields(first), "replayed": True})
    assert await db.query("SELECT id FROM transactions") == [(first.id,)]


async def test_replayed_start_in_the_same_batch_and_after_restart(db: Database) -> None:
    store = db.new_store()
    await store.open()
    first, second = await asyncio.gather(start(store), start(store))
    await store.close()
    reopened = db.new_store()
    await reopened.open()
    third = await start(reopened)
    await reopened.close()

    assert first.id == second.id == third.id
    assert [first.replayed, second.replayed, third.replayed] == [False, True, True]
    assert await db.query("SELECT COUNT(*) FROM transactions") == [(1,)]


async def test_replayed_stop_returns_the_stored_record_unchanged(
    store: TransactionStore, db: Database
) -> None:
    started = await start(store, meter=100)
    stopped = await stop(store, started.id, meter=600)
    again = await stop(store, started.id, meter=600)
    conflicting = await stop(store, started.id, meter=9999, at=T0 + 7200, reason="Other")

    assert stopped is not None
    assert again is not None
    assert conflicting is not None
    assert again.replayed
    assert conflicting.replayed
    assert _fields(again) == _fields(stopped) == _fields(conflicting)
    assert await db.query(
        "SELECT id, meter_stop_wh, energy_wh, stopped_at, stop_reason FROM transactions"
    ) == [(started.id, 600, 500, T0 + 3600, "EVDisconnected")]


async def test_stop_of_an_unknown_or_foreign_transaction_is_none(store: TransactionStore) -> None:
    mine = await start(store, cp="CP1")

    assert await stop(store, mine.id + 1000) is None
    assert await stop(store, -5) is None
    assert await stop(store, 2**40) is None
    # Another charger cannot stop CP1's session.
    assert await stop(store, mine.id, cp="CP9") is None
    current = await store.get(mine.id)
    assert current is not None
    assert current.is_open


# OCPP 2.0.1


async def test_events_are_idempotent_and_kept_in_seq_no_order(
    store: TransactionStore, db: Database
) -> None:
    # Arrival order after an offline period: Updated 2, Started 0, Updated 1, Updated 1 again.
    tx2, replayed2 = await event(store, 2, "Updated", meter=1500, offline=True)
    tx0, replayed0 = await event(
        store, 0, "Started", meter=1000, offline=True, evse_id=1, connector_id=1, id_tag="RFID1"
    )
    tx1, replayed1 = await event(store, 1, "Updated", meter=1200, offline=True)
    tx1b, replayed1b = await event(store, 1, "Updated", meter=7777, offline=False)

    assert [replayed2, replayed0, replayed1, replayed1b] == [False, False, False, True]
    assert tx1b.replayed
    assert tx1b == Transaction(**{**_fields(tx1), "replayed": True})
    # The transaction row was made by the first event seen, and the start fixed by seqNo 0.
    assert tx2.id == tx0.id == tx1.id
    assert tx2.started_at == T0 + 120
    assert tx0.started_at == T0
    assert tx0.meter_start_wh == 1000
    assert (tx0.ocpp_id, tx0.charge_point_id, tx0.ocpp_version) == ("tx-A", "CP2", "2.0.1")
    assert (tx0.evse_id, tx0.connector_id, tx0.id_tag) == (1, 1, "RFID1")
    assert tx1.is_open

    events = await store.events("CP2", "tx-A")
    assert [e.seq_no for e in events] == [0, 1, 2]
    assert [e.event_type for e in events] == ["Started", "Updated", "Updated"]
    assert [e.meter_wh for e in events] == [1000, 1200, 1500]
    assert all(e.offline for e in events)
    assert events[1].data == {
        "seqNo": 1,
        "eventType": "Updated",
        "transactionInfo": {"transactionId": "tx-A"},
    }
    assert await db.query("SELECT COUNT(*) FROM transaction_events") == [(3,)]
    assert await db.query("SELECT COUNT(*) FROM transactions") == [(1,)]


async def test_ended_event_closes_the_transaction(store: TransactionStore) -> None:
    await event(store, 0, "Started", meter=1000)
    await event(store, 1, "Updated", meter=2500)
    ended, replayed = await event(store, 2, "Ended", meter=4000, stop_reason="EVDisconnected")
    again, replayed_again = await event(store, 2, "Ended", meter=4000)

    assert not replayed
    assert replayed_again
    assert not ended.is_open
    assert ended.stopped_at == T0 + 120
    assert ended.meter_stop_wh == 4000
    assert ended.energy_wh == 3000
    assert ended.stop_reason == "EVDisconnected"
    assert _fields(again) == _fields(ended)
    assert await store.open_transactions("CP2") == []
    found = await store.get_by_ocpp_id("CP2", "tx-A")
    assert found == ended


async def test_ended_without_meter_uses_the_last_value_and_late_start_fixes_energy(
    store: TransactionStore,
) -> None:
    await event(store, 1, "Updated", meter=1800)
    ended, _ = await event(store, 3, "Ended")
    assert ended.meter_stop_wh == 1800
    assert ended.energy_wh == 0  # only one meter value so far

    late_start, _ = await event(store, 0, "Started", meter=1000)

    assert late_start.started_at == T0
    assert late_start.meter_start_wh == 1000
    assert late_start.energy_wh == 800
    assert not late_start.is_open


async def test_transaction_ids_of_different_chargers_do_not_mix(store: TransactionStore) -> None:
    a, _ = await event(store, 0, "Started", cp="CP-A", tx="1")
    b, _ = await event(store, 0, "Started", cp="CP-B", tx="1")
    legacy = await start(store, cp="CP-C")

    assert a.id != b.id
    assert (await store.get_by_ocpp_id("CP-A", "1")) == a
    assert (await store.get_by_ocpp_id("CP-B", "1")) == b
    assert (await store.get_by_ocpp_id("CP-C", legacy.ocpp_id)) == legacy
    assert await store.get_by_ocpp_id("CP-A", "nope") is None
    assert await store.events("CP-A", "nope") == []


async def test_bad_event_input_gets_a_clear_error(store: TransactionStore) -> None:
    with pytest.raises(ValueError, match="event_type"):
        await event(store, 0, "Begun")
    with pytest.raises(ValueError, match="seq_no"):
        await event(store, -1, "Started")
    with pytest.raises(TransactionStoreError, match="JSON"):
        await store.upsert_event(
            charge_point_id="CP2",
            transaction_id="tx",
            seq_no=0,
            event_type="Started",
            timestamp=T0,
            offline=False,
            meter_wh=None,
            data={"bad": object()},
        )


# Reads


async def test_reads(store: TransactionStore) -> None:
    one = await start(store, cp="CP1", connector=1, at=T0)
    two = await start(store, cp="CP1", connector=2, at=T0 + 10)
    other = await start(store, cp="CP2", connector=1, at=T0 + 20)
    await stop(store, one.id)
    two_201, _ = await event(store, 0, "Started", cp="CP1", tx="uuid-1")

    assert [t.id for t in await store.open_transactions("CP1")] == [two_201.id, two.id]
    assert [t.id for t in await store.transactions()] == [one.id, two_201.id, two.id, other.id]
    assert [t.id for t in await store.transactions("CP1", since=T0 + 5)] == [two.id]
    assert [t.id for t in await store.transactions("CP1")] == [one.id, two_201.id, two.id]
    assert [t.id for t in await store.transactions(limit=2)] == [one.id, two_201.id]
    assert await store.get(999_999) is None


# Durability


async def test_acknowledged_transaction_is_in_the_file(
    store: TransactionStore, db: Database
) -> None:
    started = await start(store)
    assert await db.query("SELECT id, charge_point_id FROM transactions") == [(started.id, "CP1")]

    await stop(store, started.id)
    assert await db.query("SELECT stopped_at FROM transactions") == [(T0 + 3600,)]

    await event(store, 0, "Started")
    assert await db.query("SELECT seq_no FROM transaction_events") == [(0,)]

    if db.kind == "sqlite":
        assert await db.query("PRAGMA journal_mode") == [("wal",)]
        assert file_mode(db.path) == 0o600


_CRASH_CHILD = """
import asyncio, sys
from pathlib import Path
from integrations.ocpp.transactions import TransactionStore

async def main() -> None:
    store = TransactionStore(Path(sys.argv[1]))
    await store.open()

    async def one(n: int) -> None:
        tx = await store.start_transaction(
            charge_point_id=f"CP{n % 50}", connector_id=1, id_tag="TAG", meter_start_wh=n,
            started_at=float(n), ocpp_version="1.6", replay_key=f"key-{n}",
        )
        sys.stdout.write(f"{tx.id}\\n")
        sys.stdout.flush()

    tasks = set()
    n = 0
    while True:
        for _ in range(25):
            task = asyncio.ensure_future(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.sleep(0.001)

asyncio.run(main())
"""


def test_crash_loses_nothing_acknowledged(db_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH_CHILD, str(db_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(acknowledged) < 400 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged.append(int(line))
        os.kill(child.pid, signal.SIGKILL)
        rest, errors = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # A line cut short by the kill was never a whole acknowledgement.
    acknowledged += [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]

    assert child.returncode == -signal.SIGKILL, errors
    assert len(acknowledged) >= 400, errors
    stored = {row[0] for row in query(db_path, "SELECT id FROM transactions")}
    assert set(acknowledged) <= stored
    assert len(set(acknowledged)) == len(acknowledged)


# Group commit and lifecycle


async def test_concurrent_requests_share_commits(store: TransactionStore, db: Database) -> None:
    commits_before = store.commits

    started = await asyncio.gather(
        *(start(store, cp=f"CP{n}", connector=1, at=T0 + n) for n in range(500))
    )

    commits = store.commits - commits_before
    assert len({tx.id for tx in started}) == 500
    assert 1 <= commits <= 25, commits
    assert await db.query("SELECT COUNT(*) FROM transactions") == [(500,)]


async def test_replays_alone_do_not_commit(store: TransactionStore) -> None:
    started = await start(store)
    commits = store.commits

    await asyncio.gather(*(start(store) for _ in range(20)))
    await store.get(started.id)

    assert store.commits == commits


async def test_close_drains_queued_requests(db: Database) -> None:
    store = db.new_store()
    await store.open()
    tasks = [asyncio.create_task(start(store, cp=f"CP{n}", at=T0 + n)) for n in range(200)]
    await asyncio.sleep(0)  # every task has queued its request

    await store.close()

    results = [task.result() for task in tasks]
    assert len({tx.id for tx in results}) == 200
    assert await db.query("SELECT COUNT(*) FROM transactions") == [(200,)]


async def test_close_is_idempotent_and_refuses_later_requests(db: Database) -> None:
    store = db.new_store()
    with pytest.raises(TransactionStoreClosedError, match="not open"):
        await start(store)
    await store.open()
    await store.open()
    opened = store.is_open

    await asyncio.gather(store.close(), store.close())
    await store.close()

    assert opened
    assert not store.is_open
    with pytest.raises(TransactionStoreClosedError, match="closed"):
        await start(store)
    with pytest.raises(TransactionStoreClosedError):
        await store.open()
    # Closed means closed: no -wal left behind by the last connection.
    assert not file_exists(Path(f"{db.path}-wal"))


async def test_caller_that_stops_waiting_still_gets_its_record(store: TransactionStore) -> None:
    impatient = asyncio.create_task(start(store))
    await asyncio.sleep(0)
    impatient.cancel()

    resent = await start(store)

    assert impatient.cancelled()
    assert resent.replayed


# Errors


async def test_database_error_fails_only_its_request(store: TransactionStore, db: Database) -> None:
    broken_sql = "INSERT INTO transactions (charge_point_id) VALUES ('CPX')"  # NOT NULL

    def broken_sqlite(conn: sqlite3.Connection) -> None:
        conn.execute(broken_sql)

    async def broken_postgres(conn: asyncpg.Connection) -> None:
        await conn.execute(broken_sql)

    broken: Any = broken_sqlite if db.kind == "sqlite" else broken_postgres

    good_before = [start(store, cp=f"CP{n}", at=T0 + n) for n in range(20)]
    good_after = [start(store, cp=f"CP{n}", at=T0 + 100 + n) for n in range(20)]
    results = await asyncio.gather(
        *good_before,
        store._call(broken, write=True, what="broken request"),
        *good_after,
        return_exceptions=True,
    )

    failure = results[20]
    assert isinstance(failure, TransactionStoreError)
    assert "broken request failed" in str(failure)
    refusal = sqlite3.IntegrityError if db.kind == "sqlite" else asyncpg.NotNullViolationError
    assert isinstance(failure.__cause__, refusal)
    assert all(isinstance(r, Transaction) for r in results[:20] + results[21:])
    assert await db.query("SELECT COUNT(*) FROM transactions") == [(40,)]
    # The store lives on.
    assert (await start(store, cp="CP-late")).id > 0


async def test_exhausted_ids_fail_that_start_only(db: Database) -> None:
    store = db.new_store()
    await store.open()
    await start(store)
    await store.close()
    if db.kind == "sqlite":
        await db.query("UPDATE sqlite_sequence SET seq = ?", MAX_TRANSACTION_ID)
    else:
        await db.query(f"ALTER TABLE transactions ALTER COLUMN id RESTART {MAX_TRANSACTION_ID + 1}")
    store = db.new_store()
    await store.open()
    try:
        failed, created = await asyncio.gather(
            start(store, cp="CP9"), event(store, 0, "Started"), return_exceptions=True
        )
        assert isinstance(failed, TransactionStoreError)
        assert "exhausted" in str(failed)
        assert isinstance(created, tuple)
        cp9 = await db.query("SELECT COUNT(*) FROM transactions WHERE charge_point_id = 'CP9'")
        assert cp9 == [(0,)]
    finally:
        await store.close()


async def test_unopenable_database_fails_open_clearly(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db.db"
    path.write_bytes(b"this is not sqlite" * 100)
    store = TransactionStore(path)

    with pytest.raises(TransactionStoreError, match=r"not-a-db\.db"):
        await store.open()

    assert not store.is_open
    await store.close()


async def test_unreachable_postgresql_fails_open_clearly(pg_database: str) -> None:
    url = pg_database.rsplit("/", 1)[0] + "/no_such_database_here"
    store = TransactionStore(backend=PostgresTransactionBackend(url))

    with pytest.raises(TransactionStoreError, match="cannot connect to the transaction database"):
        await store.open()

    assert not store.is_open
    assert store.path is None
    await store.close()


# Schema


async def test_schema_is_versioned_and_migrated_through_the_hook(db_path: Path) -> None:
    store = TransactionStore(db_path, schema_version=1)
    await store.open()
    kept = await start(store)
    await store.close()
    assert query(db_path, "SELECT version FROM schema_version") == [(1,)]

    calls: list[int] = []

    def add_tariff(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE transactions ADD COLUMN tariff TEXT")

    for _ in range(2):
        upgraded = TransactionStore(db_path, schema_version=2, migrations={1: add_tariff})
        await upgraded.open()
        assert await upgraded.get(kept.id) == kept
        await upgraded.close()

    assert calls == [1]
    assert query(db_path, "SELECT version FROM schema_version ORDER BY version") == [(1,), (2,)]
    assert query(db_path, "SELECT tariff FROM transactions") == [(None,)]

    older = TransactionStore(db_path, schema_version=1)
    with pytest.raises(TransactionStoreError, match="newer"):
        await older.open()
    await older.close()


async def test_version_1_database_gains_the_ledger(db: Database) -> None:
    old = db.new_store(schema_version=1)
    await old.open()
    kept = await start(old)
    await old.close()

    store = db.new_store()
    await store.open()
    assert await store.get(kept.id) == kept
    assert await store.ledger_mark("history") is None
    await store.set_ledger_mark("history", 12.5)
    assert await store.ledger_mark("history") == 12.5
    changed = await store.changed_since(None)
    assert [transaction.id for _, transaction in changed] == [kept.id]
    assert await store.changed_since(changed[0][0], kept.id) == []
    await store.close()
    assert await db.query("SELECT MAX(version) FROM schema_version") == [(2,)]


async def test_missing_migration_is_refused(db: Database) -> None:
    store = db.new_store(schema_version=1)
    await store.open()
    await store.close()

    newer = db.new_store(schema_version=3, migrations={})
    with pytest.raises(TransactionStoreError, match="no migration from schema version 1"):
        await newer.open()
    await newer.close()
    assert await db.query("SELECT MAX(version) FROM schema_version") == [(1,)]


# Hub wiring


async def test_hub_store_lives_in_config_dir_and_closes_with_the_hub(hub: Hub) -> None:
    store = await async_get_store(hub)
    assert await async_get_store(hub) is store
    assert store.path == hub.path(DB_FILENAME)
    started = await start(store)

    await hub.stop()

    assert not store.is_open
    assert query(hub.path(DB_FILENAME), "SELECT id FROM transactions") == [(started.id,)]


def _fields(tx: Transaction) -> dict[str, Any]:
    return {name: getattr(tx, name) for name in Transaction.__slots__ if name != "replayed"}
