"""The transaction store's database behind one interface: SQLite or PostgreSQL.

The store queues requests and hands them to its backend in batches; a backend runs a batch
in one database transaction, each write under a savepoint of its own so a failing request
is undone alone, commits, and only then returns the outcomes the callers are told. Nothing
is acknowledged that is not committed.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from integrations.ocpp.transactions.model import TransactionStoreError


@dataclass(slots=True)
class Request:
    """One queued request: an operation of the backend's, and the future told its outcome."""

    op: Callable[[Any], Any]
    future: asyncio.Future[Any]
    write: bool
    what: str
    # It may change transaction rows (a write other than the ledger's mark).
    changes: bool = False


# (future, result, error): what the loop is told once the batch is committed.
Outcome: TypeAlias = tuple[asyncio.Future[Any], Any, BaseException | None]


@dataclass(slots=True)
class BatchResult:
    """What running a batch did: the outcomes, commits that wrote, and why writing failed."""

    outcomes: list[Outcome] = field(default_factory=list)
    commits: int = 0
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Operations:
    """A backend's operations, each called with its connection and keyword arguments.

    SQLite's are plain functions run on its thread; PostgreSQL's are coroutine functions.
    """

    start_transaction: Callable[..., Any]
    stop_transaction: Callable[..., Any]
    upsert_event: Callable[..., Any]
    get: Callable[..., Any]
    get_by_ocpp_id: Callable[..., Any]
    open_transactions: Callable[..., Any]
    open_transactions_all: Callable[..., Any]
    changed_since: Callable[..., Any]
    ledger_mark: Callable[..., Any]
    set_ledger_mark: Callable[..., Any]
    transactions: Callable[..., Any]
    events: Callable[..., Any]


class TransactionBackend(abc.ABC):
    """One database the transaction store keeps its transactions in."""

    ops: Operations
    # What the database is called in messages (a path, or a URL without its password).
    name: str

    @abc.abstractmethod
    async def open(self, target_version: int, migrations: Mapping[int, Any] | None) -> int:
        """Connect, create or migrate the schema; return the version found (0: new).

        migrations replaces the backend's own upgrades (steps from version 1 on).
        """

    @abc.abstractmethod
    async def run(self, batch: list[Request]) -> BatchResult:
        """Run a batch, commit it, and return the outcomes; never raise for one request."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect (every batch has been run)."""


def wrap(request: Request, err: BaseException) -> BaseException:
    """The error a request's caller is told."""
    if isinstance(err, TransactionStoreError):
        return err
    wrapped = TransactionStoreError(f"{request.what} failed: {err}")
    wrapped.__cause__ = err
    return wrapped


def wrap_commit(err: BaseException) -> BaseException:
    """The error every caller of a batch whose commit failed is told."""
    wrapped = TransactionStoreError(f"commit failed, nothing of the batch was stored: {err}")
    wrapped.__cause__ = err
    return wrapped
