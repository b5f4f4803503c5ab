"""Durable store of OCPP charging transactions: SQLite, one writer thread, group commit.

A charger is told "Accepted" only after its transaction is committed and fsync'd. All SQLite
work runs on one dedicated thread; requests queued from the event loop are taken in batches,
run in one SQLite transaction and committed once, and only then are the callers' futures
resolved. A request that fails (a SQLite error, a bad value) fails only its own future.

Replays are answered from the store: a charger resends what was not acknowledged before a
reconnect, and the resent message finds the record it made the first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import orjson

from integrations.ocpp.transactions import sqlite as sql
from integrations.ocpp.transactions.model import (
    DATA_TRANSACTION_STORE,
    DB_FILENAME,
    DEFAULT_LIMIT,
    DEFAULT_MAX_BATCH,
    EVENT_TYPES,
    OCPP_201,
    Transaction,
    TransactionEvent,
    TransactionStoreClosedError,
    TransactionStoreError,
)
from integrations.ocpp.transactions.sqlite import MIGRATIONS, SCHEMA_VERSION, Migration

if TYPE_CHECKING:
    from hub.core import Hub

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(slots=True)
class _Request:
    op: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    write: bool
    what: str


# (future, result, error): what the loop is told once the batch is committed.
_Outcome: TypeAlias = tuple[asyncio.Future[Any], Any, BaseException | None]


class TransactionStore:
    """Transactions in ``<config>/ocpp_transactions.db``, written by one thread in batches.

    Coroutines run in the event loop; the SQLite connection lives on the writer thread only.
    ``commits`` counts commits that wrote something (each is one fsync of the WAL).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        schema_version: int = SCHEMA_VERSION,
        migrations: Mapping[int, Migration] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.path = Path(path)
        self.max_batch = max_batch
        self.schema_version = schema_version
        self._migrations: Mapping[int, Migration] = MIGRATIONS if migrations is None else migrations
        self.commits = 0
        self.batches = 0
        self.requests = 0
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._opened: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._accepting = False
        self._closing = False
        # Told in the loop when writing starts failing (the reason) and works again (None).
        self.on_health: Callable[[str | None], None] | None = None
        self._failing = False  # writer thread only

    def __repr__(self) -> str:
        return f"<TransactionStore {self.path} commits={self.commits}>"

    @property
    def is_open(self) -> bool:
        """Tell whether requests are accepted."""
        return self._accepting

    # Lifecycle

    async def open(self) -> None:
        """Start the writer thread, create or migrate the schema; idempotent."""
        if self._closing:
            raise TransactionStoreClosedError(f"transaction store {self.path} is closed")
        if self._opened is None:
            loop = asyncio.get_running_loop()
            self._loop = loop
            self._opened = loop.create_future()
            self._closed = loop.create_future()
            self._thread = threading.Thread(
                target=self._run, name=f"ocpp-transactions {self.path.name}", daemon=True
            )
            # Requests made while the schema is set up wait in the queue.
            self._accepting = True
            self._thread.start()
        try:
            await asyncio.shield(self._opened)
        except TransactionStoreError:
            # The thread has given up; wait for its last word so it can be joined.
            assert self._closed is not None
            assert self._thread is not None
            await asyncio.shield(self._closed)
            self._thread.join()
            raise

    async def close(self) -> None:
        """Finish every queued request, commit, close the database; idempotent."""
        if self._thread is None:
            self._closing = True
            return
        if not self._closing:
            self._closing = True
            self._accepting = False
            # Queued after every accepted request: the writer reaches it last.
            self._queue.put(None)
        assert self._closed is not None
        await asyncio.shield(self._closed)
        # The thread's last act was to report it closed; the join is immediate.
        self._thread.join()

    # OCPP 1.6

    async def start_transaction(
        self,
        *,
        charge_point_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: float,
        started_at: float,
        ocpp_version: str,
        replay_key: str,
        evse_id: int | None = None,
        remote_id: int | None = None,
    ) -> Transaction:
        """Store a new transaction and return it with its id, once it is on disk.

        A replay_key seen before for this charge point returns that transaction, with
        ``replayed`` set, and writes nothing.
        """
        op = functools.partial(
            sql.start_transaction,
            charge_point_id=charge_point_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start_wh=meter_start_wh,
            started_at=started_at,
            ocpp_version=ocpp_version,
            replay_key=replay_key,
            evse_id=evse_id,
            remote_id=remote_id,
        )
        result: Transaction = await self._call(
            op, write=True, what=f"start_transaction {charge_point_id}/{connector_id}"
        )
        return result

    async def stop_transaction(
        self,
        *,
        charge_point_id: str,
        transaction_id: int,
        meter_stop_wh: float,
        stopped_at: float,
        reason: str | None,
        replay_key: str,
        id_tag: str | None = None,
    ) -> Transaction | None:
        """Close a transaction and return it once on disk; None if the charger has no such id.

        A transaction already stopped is returned as stored, with ``replayed`` set.
        """
        op = functools.partial(
            sql.stop_transaction,
            charge_point_id=charge_point_id,
            transaction_id=transaction_id,
            meter_stop_wh=meter_stop_wh,
            stopped_at=stopped_at,
            reason=reason,
            replay_key=replay_key,
            id_tag=id_tag,
        )
        result: Transaction | None = await self._call(
            op, write=True, what=f"stop_transaction {charge_point_id}/{transaction_id}"
        )
        return result

    # OCPP 2.0.1

    async def upsert_event(
        self,
        *,
        charge_point_id: str,
        transaction_id: str,
        seq_no: int,
        event_type: str,
        timestamp: float,
        offline: bool,
        meter_wh: float | None,
        data: Mapping[str, Any],
        evse_id: int | None = None,
        connector_id: int | None = None,
        id_tag: str | None = None,
        remote_id: int | None = None,
        stop_reason: str | None = None,
        ocpp_version: str = OCPP_201,
    ) -> tuple[Transaction, bool]:
        """Store a TransactionEvent once per seqNo; return the transaction and whether replayed.

        The first event seen creates the transaction, whatever its type; "Ended" closes it.
        Start time and meter come from the lowest seqNo, so events may arrive in any order.
        """
        if event_type not in EVENT_TYPES:
            raise ValueError(f"event_type must be one of {sorted(EVENT_TYPES)}, not {event_type!r}")
        if seq_no < 0:
            raise ValueError(f"seq_no must not be negative, got {seq_no}")
        try:
            encoded = orjson.dumps(data).decode()
        except TypeError as err:
            raise TransactionStoreError(f"event data is not JSON-serialisable: {err}") from err
        op = functools.partial(
            sql.upsert_event,
            charge_point_id=charge_point_id,
            transaction_id=transaction_id,
            seq_no=seq_no,
            event_type=event_type,
            timestamp=timestamp,
            offline=offline,
            meter_wh=meter_wh,
            data=encoded,
            evse_id=evse_id,
            connector_id=connector_id,
            id_tag=id_tag,
            remote_id=remote_id,
            stop_reason=stop_reason,
            ocpp_version=ocpp_version,
        )
        result: tuple[Transaction, bool] = await self._call(
            op,
            write=True,
            what=f"transaction event {charge_point_id}/{transaction_id}#{seq_no}",
        )
        return result

    # Reads

    async def get(self, transaction_id: int) -> Transaction | None:
        """Return a transaction by its internal id (the OCPP 1.6 transactionId)."""
        result: Transaction | None = await self._call(
            functools.partial(sql.get, transaction_id=transaction_id),
            write=False,
            what=f"get {transaction_id}",
        )
        return result

    async def get_by_ocpp_id(self, charge_point_id: str, ocpp_id: str) -> Transaction | None:
        """Return a charge point's transaction by the id the charger knows."""
        result: Transaction | None = await self._call(
            functools.partial(sql.get_by_ocpp_id, charge_point_id=charge_point_id, ocpp_id=ocpp_id),
            write=False,
            what=f"get {charge_point_id}/{ocpp_id}",
        )
        return result

    async def open_transactions(self, charge_point_id: str) -> list[Transaction]:
        """Return a charge point's transactions that have not ended, oldest first."""
        result: list[Transaction] = await self._call(
            functools.partial(sql.open_transactions, charge_point_id=charge_point_id),
            write=False,
            what=f"open transactions of {charge_point_id}",
        )
        return result

    async def open_transactions_all(self) -> list[Transaction]:
        """Return every transaction that has not ended, oldest first."""
        result: list[Transaction] = await self._call(
            sql.open_transactions_all, write=False, what="open transactions"
        )
        return result

    async def changed_since(
        self, since: float | None, after_id: int = 0, limit: int = DEFAULT_LIMIT
    ) -> list[tuple[float, Transaction]]:
        """Return (updated_at, transaction) changed at or after since, in change order.

        Pages go on from the last row of the previous page: (its updated_at, its id).
        """
        result: list[tuple[float, Transaction]] = await self._call(
            functools.partial(sql.changed_since, since=since, after_id=after_id, limit=limit),
            write=False,
            what="changed transactions",
        )
        return result

    async def ledger_mark(self, name: str) -> float | None:
        """Return the mark kept under name, or None."""
        result: float | None = await self._call(
            functools.partial(sql.ledger_mark, name=name), write=False, what=f"ledger {name}"
        )
        return result

    async def set_ledger_mark(self, name: str, value: float) -> None:
        """Keep a mark under name (on disk once this returns)."""
        await self._call(
            functools.partial(sql.set_ledger_mark, name=name, value=value),
            write=True,
            what=f"set ledger {name}",
        )

    async def transactions(
        self,
        charge_point_id: str | None = None,
        since: float | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Transaction]:
        """Return transactions started at or after since, oldest first, at most limit."""
        result: list[Transaction] = await self._call(
            functools.partial(
                sql.transactions, charge_point_id=charge_point_id, since=since, limit=limit
            ),
            write=False,
            what="transactions",
        )
        return result

    async def events(self, charge_point_id: str, transaction_id: str) -> list[TransactionEvent]:
        """Return the events of a 2.0.1 transaction in seqNo order."""
        result: list[TransactionEvent] = await self._call(
            functools.partial(sql.events, charge_point_id=charge_point_id, ocpp_id=transaction_id),
            write=False,
            what=f"events of {charge_point_id}/{transaction_id}",
        )
        return result

    # Loop side of the queue

    async def _call(self, op: Callable[[sqlite3.Connection], _T], *, write: bool, what: str) -> _T:
        """Queue op for the writer thread and wait until its batch is committed."""
        if not self._accepting:
            state = "closed" if self._closing else "not open"
            raise TransactionStoreClosedError(f"transaction store {self.path} is {state}")
        assert self._loop is not None
        future: asyncio.Future[_T] = self._loop.create_future()
        self._queue.put(_Request(op, future, write, what))
        return await future

    def _set_opened(self, error: BaseException | None) -> None:
        """Report the outcome of opening (in the loop)."""
        assert self._opened is not None
        if error is not None:
            self._accepting = False
            self._closing = True
            # Nobody will serve what was queued while opening: fail it here, in the loop,
            # where nothing new can be queued in between.
            while True:
                try:
                    request = self._queue.get_nowait()
                except queue.Empty:
                    break
                if request is not None and not request.future.done():
                    request.future.set_exception(
                        TransactionStoreClosedError(f"transaction store did not open: {error}")
                    )
            if not self._opened.done():
                self._opened.set_exception(error)
        elif not self._opened.done():
            self._opened.set_result(None)

    def _set_closed(self) -> None:
        """Report that the writer thread is done (in the loop)."""
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # Writer thread

    def _health(self, problem: str | None) -> None:
        """Tell the loop (on_health) when writing starts failing or works again."""
        if problem is None and not self._failing:
            return
        self._failing = problem is not None
        if self.on_health is not None:
            self._post(self.on_health, problem)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run callback in the loop (from the writer thread)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            # The loop is closed: nobody is waiting for an answer any more.
            _LOGGER.debug("event loop closed before %s", callback)

    def _run(self) -> None:
        """The writer thread: open, then serve batches until the close marker."""
        try:
            conn = self._connect()
        except BaseException as err:
            _LOGGER.error("cannot open transaction store %s: %s", self.path, err)
            error = (
                err
                if isinstance(err, TransactionStoreError)
                else TransactionStoreError(f"cannot open {self.path}: {err}")
            )
            if error is not err:
                error.__cause__ = err
            self._post(self._set_opened, error)
            self._post(self._set_closed)
            return
        self._post(self._set_opened, None)
        try:
            self._serve(conn)
        finally:
            try:
                conn.close()
            except sqlite3.Error:
                _LOGGER.exception("error closing transaction store %s", self.path)
            self._post(self._set_closed)

    def _connect(self) -> sqlite3.Connection:
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
            sql.migrate_schema(conn, self.schema_version, self._migrations)
        except BaseException:
            conn.close()
            raise
        return conn

    def _serve(self, conn: sqlite3.Connection) -> None:
        """Take what is queued in batches until the close marker; never raise."""
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        max_batch = self.max_batch
        while True:
            first = get()
            stop = first is None
            batch: list[_Request] = [] if first is None else [first]
            while not stop and len(batch) < max_batch:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                try:
                    outcomes = self._run_batch(conn, batch)
                except Exception as err:  # a bug here must not kill the thread
                    _LOGGER.exception("transaction store batch failed")
                    outcomes = [(r.future, None, _wrap(r, err)) for r in batch]
                self.batches += 1
                self.requests += len(batch)
                self._post(_deliver, outcomes)
            if stop:
                return

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Request]) -> list[_Outcome]:
        """Run a batch in as few SQLite transactions as it takes (one, unless one is lost)."""
        outcomes: list[_Outcome] = []
        todo = batch
        while todo:
            done, retry = self._try_transaction(conn, todo)
            outcomes.extend(done)
            todo = retry
        return outcomes

    def _try_transaction(
        self, conn: sqlite3.Connection, todo: list[_Request]
    ) -> tuple[list[_Outcome], list[_Request]]:
        """Run todo in one transaction and commit; return outcomes and what to run again.

        Each write runs inside a savepoint, so a failing request is undone alone. If SQLite
        rolls the whole transaction back (disk full, I/O error), the failing request fails and
        the others, whose work was lost unacknowledged, are returned to be run again.
        """
        write = any(request.write for request in todo)
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as err:
            _LOGGER.error("transaction store cannot begin a transaction: %s", err)
            self._health(f"cannot begin a transaction: {err}")
            return [(r.future, None, _wrap(r, err)) for r in todo], []
        outcomes: list[_Outcome] = []
        failures: list[_Outcome] = []
        succeeded: list[_Request] = []
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
                failures.append((request.future, None, _wrap(request, err)))
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
                sql.rollback(conn)
                return failures, succeeded + todo[index + 1 :]
            succeeded.append(request)
            outcomes.append((request.future, value, None))
            if conn.total_changes != changes:
                wrote = True
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            _LOGGER.error("transaction store commit failed: %s", err)
            self._health(f"commit failed: {err}")
            sql.rollback(conn)
            return failures + [(f, None, _wrap_commit(err)) for f, _, _ in outcomes], []
        if wrote:
            self.commits += 1
            if self._failing:
                self._health(None)
        return failures + outcomes, []


def _wrap(request: _Request, err: BaseException) -> BaseException:
    if isinstance(err, TransactionStoreError):
        return err
    wrapped = TransactionStoreError(f"{request.what} failed: {err}")
    wrapped.__cause__ = err
    return wrapped


def _wrap_commit(err: BaseException) -> BaseException:
    wrapped = TransactionStoreError(f"commit failed, nothing of the batch was stored: {err}")
    wrapped.__cause__ = err
    return wrapped


def _deliver(outcomes: list[_Outcome]) -> None:
    """Resolve the futures of a committed batch (in the loop)."""
    for future, result, error in outcomes:
        if future.done():  # the caller gave up waiting
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


# Hub wiring


async def async_get_store(hub: Hub) -> TransactionStore:
    """Return the hub's open transaction store, opening it on first use; closed at shutdown."""
    store: TransactionStore | None = hub.data.get(DATA_TRANSACTION_STORE)
    if store is None:
        store = TransactionStore(hub.path(DB_FILENAME))
        hub.data[DATA_TRANSACTION_STORE] = store
        remove = hub.on_shutdown(store.close)
        try:
            await store.open()
        except BaseException:
            hub.data.pop(DATA_TRANSACTION_STORE, None)
            remove()
            with contextlib.suppress(TransactionStoreError):
                await store.close()
            raise
        return store
    await store.open()
    return store
