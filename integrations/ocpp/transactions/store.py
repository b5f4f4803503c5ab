"""Durable store of OCPP charging transactions: one queue, group commit, one backend.

A charger is told "Accepted" only after its transaction is committed. Requests made in the
event loop are queued; one worker takes them in batches and hands each batch to the backend
(SQLite on a thread of its own, or PostgreSQL through asyncpg), which runs it in one
database transaction and commits once; only then are the callers' futures resolved. A
request that fails (a database error, a bad value) fails only its own future.

Replays are answered from the store: a charger resends what was not acknowledged before a
reconnect, and the resent message finds the record it made the first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson
import voluptuous as vol

from hub.core import HubKey
from integrations.ocpp.transactions.backend import (
    BatchResult,
    Outcome,
    Request,
    TransactionBackend,
    wrap,
)
from integrations.ocpp.transactions.model import (
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
from integrations.ocpp.transactions.sqlite import SCHEMA_VERSION, SQLiteTransactionBackend

if TYPE_CHECKING:
    from hub.core import Hub

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

# The OCPP integration's option naming the database (default: the SQLite file in the
# config dir), in the recorder's db_url manner.
CONF_TRANSACTIONS_DB_URL: Final = "transactions_db_url"
DATA_TRANSACTION_STORE: Final[HubKey[TransactionStore]] = HubKey("ocpp_transaction_store")
SQLITE_PREFIX: Final = "sqlite:///"
POSTGRESQL_PREFIXES: Final = ("postgresql://", "postgres://")


def valid_db_url(value: Any) -> str:
    """Check a transactions_db_url: sqlite:///PATH or postgresql://... (for the config schema)."""
    url = str(value)
    if url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX):
        return url
    if url.startswith(POSTGRESQL_PREFIXES):
        return url
    raise vol.Invalid(
        f"unsupported transactions_db_url {url!r}: expected sqlite:///PATH or postgresql://..."
    )


def make_backend(hub: Hub, db_url: str | None) -> TransactionBackend:
    """Return the backend a db_url names (None: ocpp_transactions.db in the config dir)."""
    if db_url is None:
        return SQLiteTransactionBackend(hub.path(DB_FILENAME))
    if db_url.startswith(SQLITE_PREFIX):
        path = Path(db_url[len(SQLITE_PREFIX) :])
        return SQLiteTransactionBackend(path if path.is_absolute() else hub.path(str(path)))
    from integrations.ocpp.transactions.postgres import PostgresTransactionBackend

    return PostgresTransactionBackend(db_url)


class TransactionStore:
    """Transactions in one database (by default ``<config>/ocpp_transactions.db``).

    Coroutines run in the event loop. ``commits`` counts commits that wrote something (on
    SQLite, each is one fsync of the WAL).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        backend: TransactionBackend | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        schema_version: int = SCHEMA_VERSION,
        migrations: Mapping[int, Any] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if backend is None:
            if path is None:
                raise ValueError("give the store a path or a backend")
            backend = SQLiteTransactionBackend(path)
        self.backend = backend
        # The SQLite file, None on PostgreSQL.
        self.path = backend.path if isinstance(backend, SQLiteTransactionBackend) else None
        self.max_batch = max_batch
        self.schema_version = schema_version
        self._migrations = migrations
        self._ops = backend.ops
        self.commits = 0
        self.batches = 0
        self.requests = 0
        # Wall-clock time (time.time(), which rows' updated_at follow) by which every row this
        # store wrote had its updated_at: the session ledger's mark past it need not move.
        # Rows written before this store existed are older than now.
        self.changed_until = time.time()
        # Set (and replaced) after each batch that may have changed rows: see next_change.
        self._changed = asyncio.Event()
        self._queue: asyncio.Queue[Request | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._opened: asyncio.Future[None] | None = None
        self._accepting = False
        self._closing = False
        # Told when writing starts failing (the reason) and works again (None).
        self.on_health: Callable[[str | None], None] | None = None
        self._failing = False

    def __repr__(self) -> str:
        return f"<TransactionStore {_redacted(self.backend.name)} commits={self.commits}>"

    @property
    def is_open(self) -> bool:
        """Tell whether requests are accepted."""
        return self._accepting

    # Lifecycle

    async def open(self) -> None:
        """Connect, create or migrate the schema, start taking requests; idempotent."""
        if self._closing:
            raise TransactionStoreClosedError(f"transaction store {self._name} is closed")
        if self._worker is None:
            self._opened = asyncio.get_running_loop().create_future()
            # Requests made while the schema is set up wait in the queue.
            self._accepting = True
            self._worker = asyncio.create_task(self._work(), name=f"ocpp-transactions {self._name}")
        assert self._opened is not None
        try:
            await asyncio.shield(self._opened)
        except TransactionStoreError:
            # The worker has given up; let it finish so nothing is left running.
            await asyncio.shield(self._worker)
            raise

    async def close(self) -> None:
        """Finish every queued request, commit, close the database; idempotent."""
        if self._worker is None:
            self._closing = True
            return
        if not self._closing:
            self._closing = True
            self._accepting = False
            # Queued after every accepted request: the worker reaches it last.
            self._queue.put_nowait(None)
        await asyncio.shield(self._worker)

    @property
    def _name(self) -> str:
        return _redacted(self.backend.name)

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
            self._ops.start_transaction,
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
            self._ops.stop_transaction,
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
            self._ops.upsert_event,
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
            functools.partial(self._ops.get, transaction_id=transaction_id),
            write=False,
            what=f"get {transaction_id}",
        )
        return result

    async def get_by_ocpp_id(self, charge_point_id: str, ocpp_id: str) -> Transaction | None:
        """Return a charge point's transaction by the id the charger knows."""
        result: Transaction | None = await self._call(
            functools.partial(
                self._ops.get_by_ocpp_id, charge_point_id=charge_point_id, ocpp_id=ocpp_id
            ),
            write=False,
            what=f"get {charge_point_id}/{ocpp_id}",
        )
        return result

    async def open_transactions(self, charge_point_id: str) -> list[Transaction]:
        """Return a charge point's transactions that have not ended, oldest first."""
        result: list[Transaction] = await self._call(
            functools.partial(self._ops.open_transactions, charge_point_id=charge_point_id),
            write=False,
            what=f"open transactions of {charge_point_id}",
        )
        return result

    async def open_transactions_all(self) -> list[Transaction]:
        """Return every transaction that has not ended, oldest first."""
        result: list[Transaction] = await self._call(
            functools.partial(self._ops.open_transactions_all),
            write=False,
            what="open transactions",
        )
        return result

    async def changed_since(
        self, since: float | None, after_id: int = 0, limit: int = DEFAULT_LIMIT
    ) -> list[tuple[float, Transaction]]:
        """Return (updated_at, transaction) changed at or after since, in change order.

        Pages go on from the last row of the previous page: (its updated_at, its id).
        """
        result: list[tuple[float, Transaction]] = await self._call(
            functools.partial(self._ops.changed_since, since=since, after_id=after_id, limit=limit),
            write=False,
            what="changed transactions",
        )
        return result

    async def ledger_mark(self, name: str) -> float | None:
        """Return the mark kept under name, or None."""
        result: float | None = await self._call(
            functools.partial(self._ops.ledger_mark, name=name), write=False, what=f"ledger {name}"
        )
        return result

    async def set_ledger_mark(self, name: str, value: float) -> None:
        """Keep a mark under name (on disk once this returns); changes no transaction."""
        await self._call(
            functools.partial(self._ops.set_ledger_mark, name=name, value=value),
            write=True,
            what=f"set ledger {name}",
            changes=False,
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
                self._ops.transactions, charge_point_id=charge_point_id, since=since, limit=limit
            ),
            write=False,
            what="transactions",
        )
        return result

    async def events(self, charge_point_id: str, transaction_id: str) -> list[TransactionEvent]:
        """Return the events of a 2.0.1 transaction in seqNo order."""
        result: list[TransactionEvent] = await self._call(
            functools.partial(
                self._ops.events, charge_point_id=charge_point_id, ocpp_id=transaction_id
            ),
            write=False,
            what=f"events of {charge_point_id}/{transaction_id}",
        )
        return result

    async def next_change(self) -> None:
        """Return after the next batch that may have changed transaction rows."""
        await self._changed.wait()

    # The queue

    async def _call(
        self, op: Callable[[Any], _T], *, write: bool, what: str, changes: bool | None = None
    ) -> _T:
        """Queue op for the backend and wait until its batch is committed; changes (default:
        write) says whether it may change transaction rows."""
        if not self._accepting:
            state = "closed" if self._closing else "not open"
            raise TransactionStoreClosedError(f"transaction store {self._name} is {state}")
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(
            Request(op, future, write, what, write if changes is None else changes)
        )
        return await future

    async def _work(self) -> None:
        """Open the backend, then serve batches until the close marker; never raise."""
        assert self._opened is not None
        try:
            await self.backend.open(self.schema_version, self._migrations)
        except Exception as err:
            _LOGGER.error("cannot open transaction store %s: %s", self._name, err)
            error = (
                err
                if isinstance(err, TransactionStoreError)
                else TransactionStoreError(f"cannot open {self._name}: {err}")
            )
            if error is not err:
                error.__cause__ = err
            self._accepting = False
            self._closing = True
            # Nobody will serve what was queued while opening.
            while not self._queue.empty():
                request = self._queue.get_nowait()
                if request is not None and not request.future.done():
                    request.future.set_exception(
                        TransactionStoreClosedError(f"transaction store did not open: {error}")
                    )
            self._opened.set_exception(error)
            return
        self._opened.set_result(None)
        try:
            await self._serve()
        finally:
            await self.backend.close()

    async def _serve(self) -> None:
        """Take what is queued in batches until the close marker."""
        queue = self._queue
        max_batch = self.max_batch
        while True:
            first = await queue.get()
            stop = first is None
            batch: list[Request] = [] if first is None else [first]
            while not stop and len(batch) < max_batch:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                try:
                    result = await self.backend.run(batch)
                except Exception as err:  # a bug here must not stop the store
                    _LOGGER.exception("transaction store batch failed")
                    result = BatchResult([(r.future, None, wrap(r, err)) for r in batch])
                if any(request.changes for request in batch):
                    # Taken after the batch's rows were stamped (in the operations).
                    self.changed_until = time.time()
                    self._changed.set()
                    self._changed = asyncio.Event()
                self.batches += 1
                self.requests += len(batch)
                self.commits += result.commits
                self._account(result)
                _deliver(result.outcomes)
            if stop:
                return

    def _account(self, result: BatchResult) -> None:
        """Tell on_health when writing starts failing or works again."""
        if result.problem is not None:
            self._failing = True
            problem: str | None = result.problem
        elif result.commits and self._failing:
            self._failing = False
            problem = None
        else:
            return
        if self.on_health is not None:
            self.on_health(problem)


def _deliver(outcomes: list[Outcome]) -> None:
    """Resolve the futures of a committed batch."""
    for future, result, error in outcomes:
        if future.done():  # the caller gave up waiting
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


def _redacted(name: str) -> str:
    """A database's name without the password a URL may carry."""
    return re.sub(r"//[^@/]*@", "//***@", name)


# Hub wiring


def store_for(hub: Hub, db_url: str | None = None) -> TransactionStore:
    """Return a (not yet open) store on the database a transactions_db_url names."""
    return TransactionStore(backend=make_backend(hub, db_url))


async def async_get_store(hub: Hub, db_url: str | None = None) -> TransactionStore:
    """Return the hub's open transaction store, opening it on first use; closed at shutdown."""
    store = hub.data.get(DATA_TRANSACTION_STORE)
    if store is None:
        store = store_for(hub, db_url)
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
