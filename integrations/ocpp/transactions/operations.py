"""The transaction store's operations, written once for SQLite and PostgreSQL.

Each operation is a generator: it yields queries, (answer, sql, args), and is sent their
answers, and what it returns is the operation's result. A backend runs it with its own driver
(bind): sqlite3 on its writer thread, asyncpg on the loop. SQL is written with ``?``
placeholders, which PostgreSQL gets numbered; arguments are coerced to the exact types
asyncpg wants (float for DOUBLE PRECISION, int for flags), which SQLite takes as they are.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import time
from collections.abc import Callable, Generator
from typing import Any, Final, TypeAlias, TypeVar

import orjson

from integrations.ocpp.transactions.backend import Operations
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

_T = TypeVar("_T")

# The largest id either database can hold (SQLite INTEGER, PostgreSQL BIGINT).
MAX_ROW_ID: Final = 2**63 - 1


class Answer(enum.Enum):
    """What an operation is sent back for a query."""

    ONE = "one"  # the first row, or None
    ALL = "all"  # every row
    VAL = "val"  # the first column of the first row, or None
    EXECUTE = "execute"  # nothing
    INSERT = "insert"  # the new row's id (SQLite's lastrowid, PostgreSQL's RETURNING id)


ONE: Final = Answer.ONE
ALL: Final = Answer.ALL
VAL: Final = Answer.VAL
EXECUTE: Final = Answer.EXECUTE
INSERT: Final = Answer.INSERT

# A query is a plain tuple, (answer, sql, args): a few are made for every request, and a
# tuple is made tens of times faster than a NamedTuple or a dataclass instance.
Query: TypeAlias = tuple[Answer, str, tuple[Any, ...]]
Op: TypeAlias = Generator[Query, Any, _T]


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def bind(run: Callable[[Any, Op[Any]], Any]) -> Operations:
    """The operations, each called with a connection and run there by run(conn, operation)."""

    def runner(op: Callable[..., Op[Any]]) -> Callable[..., Any]:
        @functools.wraps(op)
        def call(conn: Any, /, **kwargs: Any) -> Any:
            return run(conn, op(**kwargs))

        return call

    return Operations(
        start_transaction=runner(start_transaction),
        stop_transaction=runner(stop_transaction),
        upsert_event=runner(upsert_event),
        get=runner(get),
        get_by_ocpp_id=runner(get_by_ocpp_id),
        open_transactions=runner(open_transactions),
        open_transactions_all=runner(open_transactions_all),
        changed_since=runner(changed_since),
        ledger_mark=runner(ledger_mark),
        set_ledger_mark=runner(set_ledger_mark),
        transactions=runner(transactions),
        events=runner(events),
    )


# Operations: each runs inside the batch's transaction, a write under a savepoint of its own.


def _fetch(row_id: int, replayed: bool = False) -> Op[Transaction]:
    row = yield (ONE, f"SELECT {TX_COLUMNS} FROM transactions WHERE id = ?", (row_id,))
    return row_to_transaction(row, replayed)


def start_transaction(
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
) -> Op[Transaction]:
    row = yield (
        ONE,
        f"SELECT {TX_COLUMNS} FROM transactions WHERE charge_point_id = ? AND start_replay_key = ?",
        (charge_point_id, replay_key),
    )
    if row is not None:
        return row_to_transaction(row, replayed=True)
    now = time.time()
    row_id: int = yield (
        INSERT,
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
            float(started_at),
            float(meter_start_wh),
            replay_key,
            now,
            now,
        ),
    )
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
    *,
    charge_point_id: str,
    transaction_id: int,
    meter_stop_wh: float,
    stopped_at: float,
    reason: str | None,
    replay_key: str,
    id_tag: str | None,
) -> Op[Transaction | None]:
    if not 0 < transaction_id <= MAX_TRANSACTION_ID:
        return None
    # Only ids we handed to this very charge point: a charger cannot stop another's session.
    row = yield (
        ONE,
        f"SELECT {TX_COLUMNS} FROM transactions"
        " WHERE id = ? AND charge_point_id = ? AND charger_tx_id IS NULL",
        (transaction_id, charge_point_id),
    )
    if row is None:
        return None
    stored = row_to_transaction(row)
    if stored.stopped_at is not None:
        return dataclasses.replace(stored, replayed=True)
    energy = None if stored.meter_start_wh is None else meter_stop_wh - stored.meter_start_wh
    yield (
        EXECUTE,
        "UPDATE transactions SET stopped_at = ?, meter_stop_wh = ?, energy_wh = ?,"
        " stop_reason = ?, stop_id_tag = ?, stop_replay_key = ?, updated_at = ? WHERE id = ?",
        (
            float(stopped_at),
            float(meter_stop_wh),
            _float(energy),
            reason,
            id_tag,
            replay_key,
            time.time(),
            stored.id,
        ),
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
) -> Op[tuple[Transaction, bool]]:
    now = time.time()
    meter = _float(meter_wh)
    found: int | None = yield (
        VAL,
        "SELECT id FROM transactions WHERE charge_point_id = ? AND charger_tx_id = ?",
        (charge_point_id, transaction_id),
    )
    if found is None:
        row_id: int = yield (
            INSERT,
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
                float(timestamp),
                meter,
                now,
                now,
            ),
        )
    else:
        row_id = found
        seen = yield (
            VAL,
            "SELECT 1 FROM transaction_events WHERE transaction_row = ? AND seq_no = ?",
            (row_id, seq_no),
        )
        if seen is not None:
            return (yield from _fetch(row_id, replayed=True)), True
    yield (
        EXECUTE,
        f"INSERT INTO transaction_events (transaction_row, {EVENT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, seq_no, event_type, float(timestamp), int(offline), meter, data, now),
    )
    if found is not None:
        # Events may arrive out of order: the start is whatever has the lowest seqNo.
        yield (
            EXECUTE,
            "UPDATE transactions SET"
            " connector_id = COALESCE(connector_id, ?),"
            " evse_id = COALESCE(evse_id, ?),"
            " id_tag = COALESCE(id_tag, ?),"
            " remote_id = COALESCE(remote_id, ?),"
            " started_at = (SELECT timestamp FROM transaction_events"
            "   WHERE transaction_row = ? ORDER BY seq_no LIMIT 1),"
            " meter_start_wh = (SELECT meter_wh FROM transaction_events"
            "   WHERE transaction_row = ? AND meter_wh IS NOT NULL ORDER BY seq_no LIMIT 1),"
            " updated_at = ?"
            " WHERE id = ?",
            (connector_id, evse_id, id_tag, remote_id, row_id, row_id, now, row_id),
        )
    if event_type == EVENT_ENDED:
        # The first Ended closes the transaction; without a meter value, the last one known.
        # The CAST tells PostgreSQL the type of a NULL argument.
        yield (
            EXECUTE,
            "UPDATE transactions SET stopped_at = ?, stop_reason = ?,"
            " meter_stop_wh = COALESCE(CAST(? AS DOUBLE PRECISION), (SELECT meter_wh"
            "   FROM transaction_events WHERE transaction_row = ? AND meter_wh IS NOT NULL"
            "   ORDER BY seq_no DESC LIMIT 1)),"
            " stop_id_tag = ?, updated_at = ?"
            " WHERE id = ? AND stopped_at IS NULL",
            (float(timestamp), stop_reason, meter, row_id, id_tag, now, row_id),
        )
    yield (
        EXECUTE,
        "UPDATE transactions SET energy_wh = meter_stop_wh - meter_start_wh WHERE id = ?",
        (row_id,),
    )
    return (yield from _fetch(row_id)), False


def get(*, transaction_id: int) -> Op[Transaction | None]:
    if not 0 < transaction_id <= MAX_ROW_ID:
        return None
    row = yield (ONE, f"SELECT {TX_COLUMNS} FROM transactions WHERE id = ?", (transaction_id,))
    return None if row is None else row_to_transaction(row)


def get_by_ocpp_id(*, charge_point_id: str, ocpp_id: str) -> Op[Transaction | None]:
    row = yield (
        ONE,
        f"SELECT {TX_COLUMNS} FROM transactions WHERE charge_point_id = ? AND charger_tx_id = ?",
        (charge_point_id, ocpp_id),
    )
    if (
        row is None
        and ocpp_id.isascii()
        and ocpp_id.isdecimal()
        and 0 < int(ocpp_id) <= MAX_TRANSACTION_ID
    ):
        row = yield (
            ONE,
            f"SELECT {TX_COLUMNS} FROM transactions"
            " WHERE id = ? AND charge_point_id = ? AND charger_tx_id IS NULL",
            (int(ocpp_id), charge_point_id),
        )
    return None if row is None else row_to_transaction(row)


def open_transactions(*, charge_point_id: str) -> Op[list[Transaction]]:
    rows = yield (
        ALL,
        f"SELECT {TX_COLUMNS} FROM transactions"
        " WHERE charge_point_id = ? AND stopped_at IS NULL ORDER BY started_at, id",
        (charge_point_id,),
    )
    return [row_to_transaction(row) for row in rows]


def open_transactions_all() -> Op[list[Transaction]]:
    rows = yield (
        ALL,
        f"SELECT {TX_COLUMNS} FROM transactions WHERE stopped_at IS NULL ORDER BY started_at, id",
        (),
    )
    return [row_to_transaction(row) for row in rows]


def changed_since(
    *, since: float | None, after_id: int, limit: int
) -> Op[list[tuple[float, Transaction]]]:
    start = -1.0 if since is None else float(since)
    rows = yield (
        ALL,
        f"SELECT updated_at, {TX_COLUMNS} FROM transactions"
        " WHERE (updated_at > ? OR (updated_at = ? AND id > ?))"
        " ORDER BY updated_at, id LIMIT ?",
        (start, start, after_id, limit),
    )
    return [(float(row[0]), row_to_transaction(tuple(row)[1:])) for row in rows]


def ledger_mark(*, name: str) -> Op[float | None]:
    value = yield (VAL, "SELECT value FROM ledger WHERE name = ?", (name,))
    return None if value is None else float(value)


def set_ledger_mark(*, name: str, value: float) -> Op[None]:
    yield (
        EXECUTE,
        "INSERT INTO ledger (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, float(value)),
    )


def transactions(
    *, charge_point_id: str | None, since: float | None, limit: int
) -> Op[list[Transaction]]:
    clauses: list[str] = []
    args: list[Any] = []
    if charge_point_id is not None:
        clauses.append("charge_point_id = ?")
        args.append(charge_point_id)
    if since is not None:
        clauses.append("started_at >= ?")
        args.append(float(since))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = yield (
        ALL,
        f"SELECT {TX_COLUMNS} FROM transactions{where} ORDER BY started_at, id LIMIT ?",
        (*args, limit),
    )
    return [row_to_transaction(row) for row in rows]


def events(*, charge_point_id: str, ocpp_id: str) -> Op[list[TransactionEvent]]:
    rows = yield (
        ALL,
        f"SELECT {EVENT_COLUMNS} FROM transaction_events WHERE transaction_row ="
        " (SELECT id FROM transactions WHERE charge_point_id = ? AND charger_tx_id = ?)"
        " ORDER BY seq_no",
        (charge_point_id, ocpp_id),
    )
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
