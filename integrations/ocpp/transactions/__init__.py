"""Durable store of OCPP charging transactions; the public names.

store.py: the TransactionStore API and its request queue; backend.py: the interface its
databases implement; operations.py: the operations and their SQL, written once; sqlite.py
and postgres.py: the two backends, each with its schema and its driver for the operations;
model.py: the records, limits and errors.
"""

from __future__ import annotations

from integrations.ocpp.transactions.backend import TransactionBackend
from integrations.ocpp.transactions.model import (
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
from integrations.ocpp.transactions.store import (
    CONF_TRANSACTIONS_DB_URL,
    DATA_TRANSACTION_STORE,
    TransactionStore,
    async_get_store,
    make_backend,
    store_for,
    valid_db_url,
)

__all__ = [
    "CONF_TRANSACTIONS_DB_URL",
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
    "TransactionBackend",
    "TransactionEvent",
    "TransactionStore",
    "TransactionStoreClosedError",
    "TransactionStoreError",
    "async_get_store",
    "make_backend",
    "migrate_schema",
    "store_for",
    "valid_db_url",
]
