"""Durable store of OCPP charging transactions (see store.py); the public names."""

from __future__ import annotations

from integrations.ocpp.transactions.model import (
    DATA_TRANSACTION_STORE,
    DB_FILENAME,
    DEFAULT_LIMIT,
    DEFAULT_MAX_BATCH,
    EVENT_ENDED,
    EVENT_STARTED,
    EVENT_TYPES,
    EVENT_UPDATED,
    MAX_TRANSACTION_ID,
    OCPP_16,
    OCPP_201,
    Transaction,
    TransactionEvent,
    TransactionStoreClosedError,
    TransactionStoreError,
)
from integrations.ocpp.transactions.sqlite import MIGRATIONS, SCHEMA_VERSION, migrate_schema
from integrations.ocpp.transactions.store import TransactionStore, async_get_store

__all__ = [
    "DATA_TRANSACTION_STORE",
    "DB_FILENAME",
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_BATCH",
    "EVENT_ENDED",
    "EVENT_STARTED",
    "EVENT_TYPES",
    "EVENT_UPDATED",
    "MAX_TRANSACTION_ID",
    "MIGRATIONS",
    "OCPP_16",
    "OCPP_201",
    "SCHEMA_VERSION",
    "Transaction",
    "TransactionEvent",
    "TransactionStore",
    "TransactionStoreClosedError",
    "TransactionStoreError",
    "async_get_store",
    "migrate_schema",
]
